//! `cargo xtask e2e`: the gateway's end-to-end scenarios against a real Kubernetes API.
//!
//! On the local cluster (`--cluster local`, see `cargo xtask cluster`):
//! 1. builds the agent and the gateway, starts (or reuses) the cluster with N kwok GPU nodes;
//! 2. `helm upgrade --install`s the chart (mock agents, gateway on, no RuntimeClass), so the API
//!    server validates every manifest and the DaemonSet's pods land on the kwok nodes with 127.x IPs;
//! 3. gives each agent pod its mock scenario (node 0 runs `xid-79`, the others are healthy):
//!    - http routing: a real agent process listens on each pod's IP and port, playing the container;
//!    - exec routing: kwok runs the agent binary for each `pods/exec`; a per-pod kwok `Exec`
//!      object (when the cluster serves that kind) gives it the pod's node name and scenario;
//! 4. starts the gateway binary with the chart's own arguments, authenticated as the chart's
//!    gateway ServiceAccount (a TokenRequest token), so the chart's Role is what is tested;
//! 5. runs `bins/gpu-mcp-gateway/tests/e2e_cluster.rs` (an `rmcp` client) against it.
//!
//! Every process started here is killed on exit, on success and on failure (logs are printed on
//! failure); the release is uninstalled and a cluster this run started is removed, unless `--keep`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::bench::Workspace;
use crate::bench::supervise::{self, Supervised};
use crate::cluster::{self, ClusterHandle, UpOptions};

/// Namespace the chart is installed into (the gateway's default).
pub(crate) const NAMESPACE: &str = "gpu-diagnostics";
/// Helm release name.
const RELEASE: &str = "gpu-mcp";
/// Mock scenario of the first node; the others run the healthy default.
const XID_SCENARIO: &str = "xid-79";
/// Gateway node timeout during the scenarios.
const NODE_TIMEOUT_SECS: u64 = 5;

/// Arguments of `cargo xtask e2e`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::kind::HELP)]
pub(crate) struct Args {
    /// Where to run: the loopback control plane (`cargo xtask cluster`) or kind.
    #[arg(long, value_enum, default_value_t = ClusterKind::Local)]
    cluster: ClusterKind,
    /// Node transport(s) of the gateway to test.
    #[arg(long, value_enum, default_value_t = RoutingChoice::Both)]
    routing: RoutingChoice,
    /// Number of fake GPU nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=50))]
    nodes: u32,
    /// Leave the cluster and the release in place afterwards (processes started here still stop).
    #[arg(long)]
    keep: bool,
    /// State directory of the local cluster (default: the one `cargo xtask cluster` uses, so a
    /// cluster already up is reused).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ClusterKind {
    Local,
    Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RoutingChoice {
    Http,
    Exec,
    Both,
}

impl RoutingChoice {
    fn list(self) -> &'static [&'static str] {
        match self {
            Self::Http => &["http"],
            Self::Exec => &["exec"],
            Self::Both => &["http", "exec"],
        }
    }
}

pub(crate) fn run(args: Args) -> Result<()> {
    match args.cluster {
        ClusterKind::Local => run_local(&args),
        ClusterKind::Kind => crate::kind::run(&crate::kind::Options {
            routings: args.routing.list(),
            workers: args.nodes,
            keep: args.keep,
        }),
    }
}

fn run_local(args: &Args) -> Result<()> {
    let ws = Workspace::new(false);
    ws.build(&["gpu-mcp-agent", "gpu-mcp-gateway"])?;
    // Build the test binary before the cluster starts, so its compile time is not spent with the
    // control plane competing for the CPUs.
    cargo_test(&ws, &BTreeMap::new(), true)?;
    k8s_layer_tests(&ws, None)?;

    let mut opts = UpOptions::new()?;
    opts.nodes = args.nodes;
    if let Some(dir) = &args.state_dir {
        opts.state_dir.clone_from(dir);
    }
    opts.agent_bin = Some(ws.binary("gpu-mcp-agent"));
    // A cluster that was already up (`cargo xtask cluster up`) is reused and left running.
    let reused = ClusterHandle::load(&opts.state_dir)
        .is_ok_and(|h| h.nodes.len() == opts.nodes as usize && h.is_healthy());
    let handle = cluster::ensure_up(&opts)?;
    eprintln!(
        "cluster: {} with nodes {}",
        handle.server,
        handle.nodes.join(", ")
    );

    let mut failures = Vec::new();
    eprintln!("\n=== e2e: Kubernetes layer against the real API server ===");
    if let Err(e) = k8s_layer_tests(&ws, Some(&handle)) {
        eprintln!("=== e2e Kubernetes layer: FAILED: {e:#} ===");
        failures.push(format!("kubernetes layer: {e:#}"));
    }
    for routing in args.routing.list() {
        eprintln!("\n=== e2e: --routing {routing} ===");
        let started = Instant::now();
        match run_routing(&ws, &handle, routing) {
            Ok(()) => eprintln!(
                "=== e2e --routing {routing}: passed in {:.0} s ===",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("=== e2e --routing {routing}: FAILED: {e:#} ===");
                failures.push(format!("{routing}: {e:#}"));
            }
        }
    }

    if args.keep {
        eprintln!(
            "--keep: cluster and release left running; \
             `cargo xtask cluster down --state-dir {}` removes them\n{}",
            handle.state_dir.display(),
            handle.env_exports()
        );
    } else {
        let _ = helm(
            &handle,
            &[
                "uninstall",
                RELEASE,
                "-n",
                NAMESPACE,
                "--wait",
                "--timeout",
                "2m",
            ],
        );
        if reused {
            eprintln!(
                "the cluster in {} was up before this run and stays up",
                handle.state_dir.display()
            );
        } else {
            cluster::down(&handle.state_dir)?;
        }
    }
    if failures.is_empty() {
        eprintln!("e2e passed: {}", args.routing.list().join(", "));
        Ok(())
    } else {
        bail!("e2e failed:\n{}", failures.join("\n"))
    }
}

/// The Kubernetes layer's own integration tests (discovery watching pods appear, turn ready,
/// move and disappear; HTTP and pods/exec transports reaching real agents) against this cluster.
/// Without a cluster it only compiles them.
fn k8s_layer_tests(ws: &Workspace, cluster: Option<&ClusterHandle>) -> Result<()> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(&ws.root).args([
        "test",
        "-p",
        "gpu-mcp-k8s",
        "--test",
        "cluster",
        "--test",
        "real_agent",
    ]);
    if let Some(handle) = cluster {
        let exec_node = handle.nodes.first().context("the cluster has no nodes")?;
        cmd.env("GPU_MCP_TEST_KUBECONFIG", &handle.kubeconfig)
            .env("GPU_MCP_TEST_EXEC_NODE", exec_node)
            .env(
                "GPU_MCP_TEST_EXEC_COMMAND",
                "gpu-mcp-agent --transport stdio --nvml-mode mock",
            )
            .env("GPU_MCP_TEST_AGENT_BIN", ws.binary("gpu-mcp-agent"))
            .args(["--", "--test-threads=1"]);
    } else {
        cmd.arg("--no-run");
    }
    let status = cmd.status().context("running cargo test")?;
    if !status.success() {
        bail!("cargo test -p gpu-mcp-k8s --test cluster --test real_agent: {status}");
    }
    Ok(())
}

/// Runs `cargo test` of the scenarios with `env`; `build_only` compiles without running.
fn cargo_test(ws: &Workspace, env: &BTreeMap<String, String>, build_only: bool) -> Result<()> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(&ws.root)
        .args(["test", "-p", "gpu-mcp-gateway", "--test", "e2e_cluster"]);
    if build_only {
        cmd.arg("--no-run");
    } else {
        cmd.args(["--", "--ignored", "--test-threads=1"]);
    }
    cmd.envs(env);
    let status = cmd.status().context("running cargo test")?;
    if !status.success() {
        bail!("cargo test -p gpu-mcp-gateway --test e2e_cluster: {status}");
    }
    Ok(())
}

fn helm(handle: &ClusterHandle, args: &[&str]) -> Result<String> {
    let out = Command::new(&handle.helm)
        .arg("--kubeconfig")
        .arg(&handle.kubeconfig)
        .args(args)
        .output()
        .with_context(|| format!("running {}", handle.helm.display()))?;
    if !out.status.success() {
        bail!(
            "`helm {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

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
    /// `--exec-command`.
    pub(crate) gateway_chart_args: Vec<String>,
    /// Kubeconfig authenticating as the chart's gateway ServiceAccount.
    pub(crate) gateway_kubeconfig: PathBuf,
    pub(crate) pods: Vec<AgentPod>,
    /// Whether kwok serves per-pod `Exec` objects (exec routing with per-node scenarios).
    pub(crate) exec_objects: bool,
}

impl Deployment {
    /// `helm upgrade --install` with `routing`, then waits for one ready agent pod per node.
    pub(crate) fn install(handle: &ClusterHandle, routing: &str, log_dir: &Path) -> Result<Self> {
        let chart = crate::bench::workspace_root()
            .join("charts")
            .join("k8s-gpu-mcp-server");
        let set = format!(
            "agent.nvmlMode=mock,agent.kmsg.enabled=false,gateway.enabled=true,\
             gpu.runtimeClass.enabled=false,gateway.routing={routing},gateway.replicas=1"
        );
        eprintln!("helm upgrade --install {RELEASE} ({set})");
        helm(
            handle,
            &[
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
            ],
        )
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
        let agent_port = ds
            .pointer("/items/0/spec/template/spec/containers/0/ports/0/containerPort")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .context("the agent DaemonSet declares no container port")?;
        let deploy: Value = serde_json::from_str(&handle.kubectl_output(&[
            "-n",
            NAMESPACE,
            "get",
            "deployment",
            "-l",
            "app.kubernetes.io/component=gateway",
            "-o",
            "json",
        ])?)?;
        let spec = deploy
            .pointer("/items/0/spec/template/spec")
            .context("the chart installed no gateway Deployment")?;
        let service_account = spec["serviceAccountName"]
            .as_str()
            .context("the gateway Deployment names no ServiceAccount")?
            .to_owned();
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
        std::fs::create_dir_all(log_dir)?;
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
            json!({"name": "GPU_MCP_NODE_NAME", "value": pod.node}),
            json!({"name": "GPU_MCP_NVML_MODE", "value": "mock"}),
        ];
        if let Some(s) = scenario {
            envs.push(json!({"name": "GPU_MCP_MOCK_SCENARIO", "value": s}));
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
        std::fs::write(&path, exec.to_string())?;
        self.handle
            .kubectl_output(&["apply", "-f", &path.display().to_string()])
            .with_context(|| format!("configuring exec for pod {}", pod.name))?;
        Ok(())
    }
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

/// Everything started for one routing; killed on drop.
struct Run {
    agents: BTreeMap<String, Supervised>,
    gateway: Option<Supervised>,
}

fn run_routing(ws: &Workspace, handle: &ClusterHandle, routing: &str) -> Result<()> {
    let log_dir = ws.scratch(&format!("e2e-{routing}"));
    let deployment = Deployment::install(handle, routing, &log_dir)?;
    let nodes: Vec<String> = deployment.pods.iter().map(|p| p.node.clone()).collect();
    let scenario_of = |node: &str| (node == nodes[0]).then_some(XID_SCENARIO);
    let victim = nodes[nodes.len() - 1].clone();

    let mut run = Run {
        agents: BTreeMap::new(),
        gateway: None,
    };
    let mut env = BTreeMap::new();
    match routing {
        "http" => {
            for pod in &deployment.pods {
                let addr = SocketAddr::new(pod.ip, deployment.agent_port);
                let agent = crate::bench::agent_process(
                    ws,
                    &format!("agent-{}", pod.node),
                    addr,
                    &pod.node,
                    8,
                    scenario_of(&pod.node),
                    &log_dir,
                )?;
                run.agents.insert(pod.node.clone(), agent);
            }
            let pid = run.agents[&victim].pid();
            env.insert("GPU_MCP_E2E_KILL_CMD".to_owned(), format!("kill -9 {pid}"));
        }
        _ => {
            if deployment.exec_objects {
                for pod in &deployment.pods {
                    deployment.set_exec_env(pod, scenario_of(&pod.node))?;
                }
                // "Killing" an exec-routed agent: its next start fails (an unknown scenario makes
                // the agent exit non-zero before answering).
                let pod = deployment
                    .pods
                    .iter()
                    .find(|p| p.node == victim)
                    .context("victim pod")?;
                let path = handle.state_dir.join(format!("exec-{}.json", pod.name));
                let text = std::fs::read_to_string(&path)?;
                let broken = text.replace(
                    r#"{"name":"GPU_MCP_NVML_MODE","value":"mock"}"#,
                    r#"{"name":"GPU_MCP_NVML_MODE","value":"mock"},{"name":"GPU_MCP_MOCK_SCENARIO","value":"no-such-scenario"}"#,
                );
                let broken_path = handle
                    .state_dir
                    .join(format!("exec-{}-broken.json", pod.name));
                std::fs::write(&broken_path, broken)?;
                env.insert(
                    "GPU_MCP_E2E_KILL_CMD".to_owned(),
                    format!(
                        "'{}' --kubeconfig '{}' apply -f '{}' >/dev/null",
                        handle.kubectl.display(),
                        handle.kubeconfig.display(),
                        broken_path.display()
                    ),
                );
            } else {
                bail!(
                    "exec routing needs per-pod kwok Exec objects (CRD execs.kwok.x-k8s.io, kwok \
                     started with --enable-crds=Exec) to give each exec'd agent its node name and \
                     scenario; this local cluster does not serve them"
                );
            }
        }
    }

    let port = supervise::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
    let gw_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let gateway = crate::bench::gateway_process(
        ws,
        &format!("gateway-{routing}"),
        gw_addr,
        &deployment.gateway_args(NODE_TIMEOUT_SECS),
        &log_dir,
        Duration::from_secs(90),
    );
    let gateway = match gateway {
        Ok(g) => g,
        Err(e) => {
            dump_logs(&run, handle);
            return Err(e);
        }
    };
    run.gateway = Some(gateway);

    let scenarios: Vec<String> = nodes
        .iter()
        .filter_map(|n| scenario_of(n).map(|s| format!("{n}={s}")))
        .collect();
    env.extend([
        (
            "GPU_MCP_E2E_GATEWAY_URL".to_owned(),
            format!("http://{gw_addr}/mcp"),
        ),
        ("GPU_MCP_E2E_NODES".to_owned(), nodes.join(",")),
        ("GPU_MCP_E2E_SCENARIOS".to_owned(), scenarios.join(",")),
        ("GPU_MCP_E2E_ROUTING".to_owned(), routing.to_owned()),
        (
            "GPU_MCP_E2E_NODE_TIMEOUT_SECS".to_owned(),
            NODE_TIMEOUT_SECS.to_string(),
        ),
        (
            "GPU_MCP_E2E_KUBECTL".to_owned(),
            handle.kubectl.display().to_string(),
        ),
        (
            "GPU_MCP_E2E_KUBECONFIG".to_owned(),
            handle.kubeconfig.display().to_string(),
        ),
        ("GPU_MCP_E2E_NAMESPACE".to_owned(), NAMESPACE.to_owned()),
        (
            "GPU_MCP_E2E_GATEWAY_ROLE".to_owned(),
            deployment.gateway_role.clone(),
        ),
        (
            "GPU_MCP_E2E_AGENT_BIN".to_owned(),
            ws.binary("gpu-mcp-agent").display().to_string(),
        ),
        (
            "GPU_MCP_E2E_AGENT_PORT".to_owned(),
            deployment.agent_port.to_string(),
        ),
        ("GPU_MCP_E2E_KILL_NODE".to_owned(), victim),
    ]);
    let result = cargo_test(ws, &env, false);
    if result.is_err() {
        dump_logs(&run, handle);
    }
    // Exec objects of this run would outlive the pods otherwise.
    if routing == "exec" {
        let _ = handle.kubectl_output(&["-n", NAMESPACE, "delete", "execs.kwok.x-k8s.io", "--all"]);
    }
    drop(run);
    result
}

fn dump_logs(run: &Run, handle: &ClusterHandle) {
    if let Some(g) = &run.gateway {
        eprintln!(
            "--- gateway log ({}) ---\n{}",
            g.log_path().display(),
            g.log_tail(60)
        );
    }
    for (node, a) in &run.agents {
        eprintln!(
            "--- agent {node} log ({}) ---\n{}",
            a.log_path().display(),
            a.log_tail(20)
        );
    }
    if let Ok(pods) = handle.kubectl_output(&["-n", NAMESPACE, "get", "pods", "-o", "wide"]) {
        eprintln!("--- pods ---\n{pods}");
    }
    eprintln!(
        "--- cluster logs: {} ---",
        handle.state_dir.join("logs").display()
    );
}

/// The local cluster prepared for `cargo xtask bench gateway --exec`: the chart installed with
/// exec routing, every agent pod configured, a gateway ServiceAccount kubeconfig.
#[derive(Debug)]
pub(crate) struct ExecBenchTarget {
    deployment: Deployment,
}

impl ExecBenchTarget {
    /// Starts (or reuses) a local cluster in `state_dir` with `nodes` kwok nodes and installs
    /// the chart.
    pub(crate) fn prepare(nodes: usize, state_dir: &Path) -> Result<Self> {
        let ws = Workspace::new(false);
        let mut opts = UpOptions::new()?;
        opts.nodes = u32::try_from(nodes).context("node count")?;
        opts.state_dir = state_dir.to_path_buf();
        // Exec runs the release build that the benchmark measures.
        opts.agent_bin = Some(Workspace::new(true).binary("gpu-mcp-agent"));
        let handle = cluster::ensure_up(&opts)?;
        let deployment = Deployment::install(&handle, "exec", &ws.scratch("bench-exec"))?;
        if !deployment.exec_objects {
            bail!("the local cluster does not serve kwok Exec objects (see `cargo xtask e2e`)");
        }
        for pod in &deployment.pods {
            deployment.set_exec_env(pod, None)?;
        }
        Ok(Self { deployment })
    }

    /// The agent nodes.
    pub(crate) fn nodes(&self) -> Vec<String> {
        self.deployment
            .pods
            .iter()
            .map(|p| p.node.clone())
            .collect()
    }

    /// Gateway arguments without `--routing` (the bench adds its own).
    pub(crate) fn gateway_args(&self) -> Vec<String> {
        self.deployment
            .gateway_args(30)
            .into_iter()
            .filter(|a| !a.starts_with("--routing") && !a.starts_with("--node-timeout"))
            .collect()
    }
}
