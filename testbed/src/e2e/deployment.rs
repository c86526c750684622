//! The chart installed on the local cluster with one routing and its defaults for auth and
//! NetworkPolicy, and what the processes playing its pods need from the render: the gateway's
//! arguments, ServiceAccount and Role, the agents' authentication flags, the tokens of the
//! Secret the chart generated (copied as the pods mount them), the agent pods and port.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use super::policies;
use super::secrets::SecretMounts;
use crate::chart::CHART_DIR;
use crate::cluster::ClusterHandle;
use crate::util::{fs, workspace};

/// Namespace the chart is installed into (the gateway's default).
pub(crate) const NAMESPACE: &str = "gpu-diagnostics";
/// Helm release name.
pub(crate) const RELEASE: &str = "gpu-mcp";

/// One agent pod of the release.
#[derive(Debug, Clone)]
pub(crate) struct AgentPod {
    pub(crate) name: String,
    pub(crate) node: String,
    pub(crate) ip: IpAddr,
}

/// The chart installed on the local cluster with one routing, and what the gateway needs.
#[derive(Debug)]
pub(crate) struct Deployment {
    pub(crate) handle: ClusterHandle,
    pub(crate) routing: String,
    pub(crate) agent_port: u16,
    pub(crate) gateway_role: String,
    /// The chart's gateway container arguments, less `--listen`, `--log-format` and
    /// `--exec-command`, with its token files pointed at local copies of its Secret volume.
    pub(crate) gateway_chart_args: Vec<String>,
    /// The agent container's arguments that name its token file, pointed at a local copy of
    /// its Secret volume: what an agent playing a pod is started with.
    pub(crate) agent_auth_args: Vec<String>,
    /// The token clients send to the gateway (the file its `--auth-token-file` names).
    pub(crate) client_token: String,
    /// Kubeconfig authenticating as the chart's gateway ServiceAccount.
    pub(crate) gateway_kubeconfig: PathBuf,
    pub(crate) pods: Vec<AgentPod>,
    /// Whether kwok serves per-pod `Exec` objects (exec routing with per-node scenarios).
    pub(crate) exec_objects: bool,
}

impl Deployment {
    /// `helm upgrade --install` with `routing`, then waits for one ready agent pod per node.
    pub(crate) fn install(handle: &ClusterHandle, routing: &str, log_dir: &Path) -> Result<Self> {
        let chart = workspace::workspace_root().join(CHART_DIR);
        let mut set = format!(
            "agent.nvmlMode=mock,agent.kmsg.enabled=false,gateway.enabled=true,\
             gpu.runtimeClass.enabled=false,gateway.routing={routing},gateway.replicas=1,\
             gateway.tolerations[0].key=nvidia.com/gpu,gateway.tolerations[0].operator=Exists,\
             gateway.tolerations[0].effect=NoSchedule"
        );
        // Auth and NetworkPolicy keep the chart's defaults (on), as a user gets them.
        // The toleration: the workloads taint one node and cordon another, and with two nodes
        // the gateway's pod must still find one.
        // These agents and the gateway are played on this machine: the release stays off the
        // real node, which runs the chart in a release of its own (`real_node`).
        if handle.real_node.is_some() {
            set.push_str(",agent.nodeSelector.type=kwok,gateway.nodeSelector.type=kwok");
        }
        eprintln!("helm upgrade --install {RELEASE} ({set})");
        handle
            .helm_output(&[
                "upgrade",
                "--install",
                RELEASE,
                &chart.display().to_string(),
                "--namespace",
                NAMESPACE,
                "--create-namespace",
                "--set",
                &set,
                "--wait",
                "--timeout",
                "5m",
            ])
            .context("installing the chart into the local cluster")?;

        let pods = wait_agent_pods(handle, handle.nodes.len())?;
        let ds: Value = serde_json::from_str(&handle.kubectl_output(&[
            "-n",
            NAMESPACE,
            "get",
            "daemonset",
            "-l",
            "app.kubernetes.io/component=agent",
            "-o",
            "json",
        ])?)?;
        let agent_spec = ds
            .pointer("/items/0/spec/template/spec")
            .context("the chart installed no agent DaemonSet")?;
        let agent_port = agent_spec
            .pointer("/containers/0/ports/0/containerPort")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .context("the agent DaemonSet declares no container port")?;
        let spec = &gateway_pod_spec(handle, NAMESPACE)?;
        let service_account = spec["serviceAccountName"]
            .as_str()
            .context("the gateway Deployment names no ServiceAccount")?
            .to_owned();
        fs::create_dir(log_dir)?;
        let gateway_secrets =
            SecretMounts::copy(handle, NAMESPACE, spec, "gateway", &log_dir.join("gateway"))?;
        let agent_secrets = SecretMounts::copy(
            handle,
            NAMESPACE,
            agent_spec,
            "agent",
            &log_dir.join("agent"),
        )?;
        let agent_auth_args = agent_secrets.secret_args(&container_args(agent_spec));
        let gateway_chart_args: Vec<String> = spec
            .pointer("/containers/0/args")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    // The chart's exec command names the image's path; kwok runs this machine's.
                    .filter(|s| {
                        !s.starts_with("--listen")
                            && !s.starts_with("--log-format")
                            && !s.starts_with("--exec-command")
                    })
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let gateway_chart_args = gateway_secrets.local_args(&gateway_chart_args);
        let client_token = gateway_secrets
            .file_of(&gateway_chart_args, "--auth-token-file")
            .context("the gateway runs without --auth-token-file: auth is off in the render")
            .and_then(|path| {
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))
            })?
            .trim()
            .to_owned();
        ensure!(
            !agent_auth_args.is_empty(),
            "the agent DaemonSet names no token file: auth is off in the render"
        );
        let network_policies = policies::check(handle, RELEASE, NAMESPACE, log_dir)?;
        eprintln!(
            "auth: tokens read from the chart's Secret; the DaemonSet's token flag: {}; NetworkPolicies {} as rendered",
            agent_auth_args.join(" "),
            network_policies.join(", ")
        );
        let roles: Value = serde_json::from_str(&handle.kubectl_output(&[
            "-n",
            NAMESPACE,
            "get",
            "role",
            "-l",
            "app.kubernetes.io/component=gateway",
            "-o",
            "json",
        ])?)?;
        let gateway_role = roles
            .pointer("/items/0/metadata/name")
            .and_then(Value::as_str)
            .context("the chart installed no gateway Role")?
            .to_owned();
        let gateway_kubeconfig = handle.token_kubeconfig(
            NAMESPACE,
            &service_account,
            "2h",
            Some(&log_dir.join("gateway-sa.kubeconfig")),
        )?;
        let exec_objects = handle
            .kubectl_output(&["get", "crd", "execs.kwok.x-k8s.io"])
            .is_ok();
        Ok(Self {
            handle: handle.clone(),
            routing: routing.to_owned(),
            agent_port,
            gateway_role,
            gateway_chart_args,
            agent_auth_args,
            client_token,
            gateway_kubeconfig,
            pods,
            exec_objects,
        })
    }

    /// Gateway arguments (besides `--listen`): the chart's, the ServiceAccount kubeconfig, the
    /// node timeout and, for exec routing, the agent command kwok runs on this machine.
    pub(crate) fn gateway_args(&self, node_timeout_secs: u64) -> Vec<String> {
        let mut args = self.gateway_chart_args.clone();
        args.push(format!(
            "--kubeconfig={}",
            self.gateway_kubeconfig.display()
        ));
        args.push(format!("--node-timeout={node_timeout_secs}s"));
        args.push("--log-format=text".to_owned());
        if self.routing == "exec" {
            // kwok runs exec commands on this machine with the cluster's bin directory first on
            // PATH, where `gpu-mcp-agent` is the agent built for this run.
            args.push("--exec-command=gpu-mcp-agent --transport stdio --nvml-mode mock".to_owned());
        }
        args
    }

    /// Gives the pod on `node` its scenario for exec routing: a kwok `Exec` object for that pod
    /// whose environment configures the agent kwok starts (node name, mock mode, scenario).
    pub(crate) fn set_exec_env(&self, pod: &AgentPod, scenario: Option<&str>) -> Result<()> {
        let mut envs = vec![
            json!({"name": "GPU_MCP_AGENT_NODE_NAME", "value": pod.node}),
            json!({"name": "GPU_MCP_AGENT_NVML_MODE", "value": "mock"}),
        ];
        if let Some(s) = scenario {
            envs.push(json!({"name": "GPU_MCP_AGENT_MOCK_SCENARIO", "value": s}));
        }
        let exec = json!({
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Exec",
            "metadata": {"name": pod.name, "namespace": NAMESPACE},
            "spec": {"execs": [{"local": {"workDir": self.handle.state_dir.join("exec"), "envs": envs}}]}
        });
        let path = self
            .handle
            .state_dir
            .join(format!("exec-{}.json", pod.name));
        fs::write(&path, exec.to_string())?;
        self.handle
            .kubectl_output(&["apply", "-f", &path.display().to_string()])
            .with_context(|| format!("configuring exec for pod {}", pod.name))?;
        Ok(())
    }
}

/// The first container's arguments in a pod spec.
/// The pod template spec of the gateway Deployment the chart installed in `namespace`.
pub(super) fn gateway_pod_spec(handle: &ClusterHandle, namespace: &str) -> Result<Value> {
    let deploy: Value = serde_json::from_str(&handle.kubectl_output(&[
        "-n",
        namespace,
        "get",
        "deployment",
        "-l",
        "app.kubernetes.io/component=gateway",
        "-o",
        "json",
    ])?)?;
    deploy
        .pointer("/items/0/spec/template/spec")
        .cloned()
        .context("the chart installed no gateway Deployment")
}

fn container_args(pod_spec: &Value) -> Vec<String> {
    pod_spec
        .pointer("/containers/0/args")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Polls until `count` agent pods run with a pod IP and the Ready condition.
fn wait_agent_pods(handle: &ClusterHandle, count: usize) -> Result<Vec<AgentPod>> {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = String::new();
    while Instant::now() < deadline {
        let list: Value = serde_json::from_str(&handle.kubectl_output(&[
            "-n",
            NAMESPACE,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/component=agent",
            "-o",
            "json",
        ])?)?;
        let mut pods = Vec::new();
        for p in list["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let ready = p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            let ip = p["status"]["podIP"]
                .as_str()
                .and_then(|s| s.parse::<IpAddr>().ok());
            if p["metadata"]["deletionTimestamp"].is_null()
                && ready
                && let (Some(ip), Some(node), Some(name)) = (
                    ip,
                    p["spec"]["nodeName"].as_str(),
                    p["metadata"]["name"].as_str(),
                )
            {
                if !ip.is_loopback() {
                    bail!(
                        "pod {name} got the non-loopback IP {ip}; the local cluster must hand out 127.x addresses"
                    );
                }
                pods.push(AgentPod {
                    name: name.to_owned(),
                    node: node.to_owned(),
                    ip,
                });
            }
        }
        if pods.len() >= count {
            pods.sort_by(|a, b| a.node.cmp(&b.node));
            return Ok(pods);
        }
        last = format!("{} of {count} agent pods ready", pods.len());
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!("timed out waiting for the agent pods: {last}")
}
