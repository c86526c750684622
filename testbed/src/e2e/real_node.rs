//! The real node's part of the local e2e: the project's image in the real node's containerd,
//! the chart installed unchanged by Helm in a release of its own, the agent DaemonSet's pod on
//! the real node started by a real kubelet with its probes passing, and the gateway (this
//! machine's binary with the chart's arguments and ServiceAccount) routing to that container
//! over `http` (its pod IP on the real node's pod network) and over `exec` (`pods/exec` through
//! the API server and the kubelet's streaming server into the container's `/gpu-mcp-agent`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use super::policies;
use super::secrets::SecretMounts;
use crate::chart::CHART_DIR;
use crate::cluster::{ClusterHandle, RealNode};
use crate::programs;
use crate::util::mcp_client::McpConn;
use crate::util::process::Supervised;
use crate::util::workspace::{self, Workspace};
use crate::util::{fs, net};

/// Release and namespace of the chart on the real node (apart from the kwok runs' release).
const RELEASE: &str = "gpu-mcp-real";
pub(super) const NAMESPACE: &str = "gpu-mcp-real-node";

/// Runs the real node's checks for each routing; `image` is the image archive's tag, already
/// imported into the real node.
pub(super) fn run(
    ws: &Workspace,
    handle: &ClusterHandle,
    image: &str,
    routings: &[&str],
) -> Result<()> {
    let node = handle
        .real_node
        .clone()
        .context("the local cluster has no real node")?;
    let result = routings
        .iter()
        .try_for_each(|routing| run_routing(ws, handle, &node, image, routing))
        .and_then(|()| {
            // The host mounts are the agent's own; one routing reaches them as well as two.
            if routings.contains(&"http") {
                super::host_mounts::run(ws, handle, &node, image)
            } else {
                Ok(())
            }
        });
    let _ = handle.helm_output(&[
        "uninstall",
        RELEASE,
        "-n",
        NAMESPACE,
        "--wait",
        "--timeout",
        "2m",
    ]);
    let _ = handle.kubectl_output(&["delete", "namespace", NAMESPACE, "--wait=false"]);
    result
}

fn run_routing(
    ws: &Workspace,
    handle: &ClusterHandle,
    node: &RealNode,
    image: &str,
    routing: &str,
) -> Result<()> {
    // Only what this machine differs in: the local image, mock GPUs, no NVIDIA RuntimeClass.
    // Auth and NetworkPolicies keep the chart's defaults, as in the kwok runs.
    install(handle, image, routing, "agent.nvmlMode=mock")?;
    let pod = wait_real_pod(handle, node, false)?;
    eprintln!(
        "real node: agent pod {} Running and Ready at {} (image {image}, probes passed)",
        pod.0, pod.1
    );
    let log_dir = ws.scratch(&format!("e2e-real-node-{routing}"));
    fs::create_dir(&log_dir)?;
    let policies = policies::check(handle, RELEASE, NAMESPACE, &log_dir)?;
    eprintln!(
        "real node: NetworkPolicies {} as rendered",
        policies.join(", ")
    );
    let gateway = Gateway::start(ws, handle, routing, &log_dir)?;
    let checked = gateway
        .refuses_without_its_token()
        .and_then(|()| {
            if routing == "http" {
                agent_refuses_client_token(pod.1, &gateway.token)
            } else {
                Ok(())
            }
        })
        .and_then(|()| gateway.call(&node.name, "get_gpu_inventory"))
        .and_then(|answer| check_inventory(&answer, &node.name));
    if let Err(err) = &checked {
        gateway.dump(handle, &pod.0);
        bail!("the gateway did not route to the real node over {routing}: {err:#}");
    }
    let admitted_by = if routing == "http" {
        "the gateway's own token"
    } else {
        "pods/exec, which RBAC admits"
    };
    eprintln!(
        "real node: unauthenticated calls refused (401); the gateway routed get_gpu_inventory \
         to the container over {routing} ({admitted_by})"
    );
    Ok(())
}

/// `helm upgrade --install` of the release on the real node with `routing` and `values`.
pub(super) fn install(
    handle: &ClusterHandle,
    image: &str,
    routing: &str,
    values: &str,
) -> Result<()> {
    let (repository, tag) = image
        .rsplit_once(':')
        .with_context(|| format!("image {image} has no tag"))?;
    let chart = workspace::workspace_root().join(CHART_DIR);
    let set = format!(
        "image.repository={repository},image.tag={tag},gpu.runtimeClass.enabled=false,\
         gateway.enabled=true,gateway.replicas=1,gateway.routing={routing},{values}"
    );
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
        .context("installing the chart with the real node")?;
    Ok(())
}

/// The gateway started on this machine as the chart runs it for the real node's release: the
/// chart's arguments (its `--exec-command` included: on the real node the container's own
/// `/gpu-mcp-agent` runs), its token files copied from the chart's Secret, its ServiceAccount.
pub(super) struct Gateway {
    process: Supervised,
    pub(super) addr: SocketAddr,
    /// The token clients send (the file its `--auth-token-file` names).
    pub(super) token: String,
}

impl Gateway {
    pub(super) fn start(
        ws: &Workspace,
        handle: &ClusterHandle,
        routing: &str,
        log_dir: &Path,
    ) -> Result<Self> {
        let spec = &super::deployment::gateway_pod_spec(handle, NAMESPACE)?;
        let service_account = spec["serviceAccountName"]
            .as_str()
            .context("the gateway Deployment names no ServiceAccount")?;
        let kubeconfig = handle.token_kubeconfig(
            NAMESPACE,
            service_account,
            "1h",
            Some(&log_dir.join("gateway-sa.kubeconfig")),
        )?;
        let secrets =
            SecretMounts::copy(handle, NAMESPACE, spec, "gateway", &log_dir.join("gateway"))?;
        let chart_args: Vec<String> = spec
            .pointer("/containers/0/args")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|s| !s.starts_with("--listen") && !s.starts_with("--log-format"))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let mut args = secrets.local_args(&chart_args);
        let token_file = secrets
            .file_of(&args, "--auth-token-file")
            .context("the gateway runs without --auth-token-file: auth is off in the render")?;
        let token = std::fs::read_to_string(&token_file)
            .with_context(|| format!("reading {}", token_file.display()))?
            .trim()
            .to_owned();
        args.push(format!("--kubeconfig={}", kubeconfig.display()));
        args.push("--log-format=text".to_owned());
        let port = net::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let process = programs::start_gateway(
            ws,
            &format!("gateway-real-node-{routing}"),
            addr,
            &args,
            log_dir,
            Duration::from_secs(90),
        )?;
        Ok(Self {
            process,
            addr,
            token,
        })
    }

    /// `tool` for `node` through the gateway, with the client token.
    pub(super) fn call(&self, node: &str, tool: &str) -> Result<Value> {
        block_on(async {
            let mut conn = McpConn::connect(self.addr).await?.with_token(&self.token);
            let call = conn.call_tool(tool, json!({ "node": node }));
            let (_, result) = tokio::time::timeout(Duration::from_secs(60), call)
                .await
                .with_context(|| format!("{tool} did not answer within 60 s"))??;
            Ok(result)
        })
    }

    /// A call without a token, and one with a wrong token, get 401.
    fn refuses_without_its_token(&self) -> Result<()> {
        ensure_refused(self.addr, None, "the gateway, without a token")?;
        ensure_refused(
            self.addr,
            Some("not-the-token"),
            "the gateway, with a wrong token",
        )
    }

    /// Prints the gateway's log and the agent container's.
    pub(super) fn dump(&self, handle: &ClusterHandle, pod: &str) {
        eprintln!(
            "--- gateway log ({}) ---\n{}",
            self.process.log_path().display(),
            self.process.log_tail(40)
        );
        if let Ok(logs) = handle.kubectl_output(&["logs", "-n", NAMESPACE, pod, "--tail=20"]) {
            eprintln!("--- agent container log ---\n{logs}");
        }
    }
}

/// The agent container refuses the token clients send to the gateway: it takes only the
/// gateway's own token, so a client that reaches an agent directly gets nothing.
fn agent_refuses_client_token(agent: SocketAddr, client_token: &str) -> Result<()> {
    ensure_refused(agent, None, "the agent container, without a token")?;
    ensure_refused(
        agent,
        Some(client_token),
        "the agent container, with the client token",
    )
}

/// A `tools/call` to `addr` with `token` gets HTTP 401.
fn ensure_refused(addr: SocketAddr, token: Option<&str>, what: &str) -> Result<()> {
    let status = block_on(async {
        let mut conn = McpConn::connect(addr).await?;
        if let Some(t) = token {
            conn = conn.with_token(t);
        }
        let call = conn.post_call("get_gpu_inventory", json!({}));
        let (status, _) = tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .context("no answer within 30 s")??;
        Ok(status)
    })
    .with_context(|| format!("calling {what}"))?;
    ensure!(
        status == hyper::StatusCode::UNAUTHORIZED,
        "{what}: HTTP {status}, not 401"
    );
    Ok(())
}

fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime for the MCP client")?
        .block_on(f)
}

/// Waits for the agent pod on the real node: Running, Ready (its readiness probe passed), no
/// restart (its liveness probe never failed), an address of the node's pod subnet, and
/// `/dev/kmsg` mounted or not as `kmsg` says (the pod of the current render). Returns its name
/// and its HTTP address (pod IP and container port).
pub(super) fn wait_real_pod(
    handle: &ClusterHandle,
    node: &RealNode,
    kmsg: bool,
) -> Result<(String, SocketAddr)> {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = String::from("no agent pod on the real node yet");
    while Instant::now() < deadline {
        let list: Value = serde_json::from_str(&handle.kubectl_output(&[
            "-n",
            NAMESPACE,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/component=agent",
            "--field-selector",
            &format!("spec.nodeName={}", node.name),
            "-o",
            "json",
        ])?)?;
        for pod in list["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            let ready = pod["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            let restarts = pod
                .pointer("/status/containerStatuses/0/restartCount")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let ip = pod["status"]["podIP"]
                .as_str()
                .and_then(|s| s.parse::<IpAddr>().ok());
            let mounts_kmsg = pod["spec"]["volumes"]
                .as_array()
                .is_some_and(|v| v.iter().any(|v| v["hostPath"]["path"] == "/dev/kmsg"));
            if mounts_kmsg != kmsg {
                last = format!("agent pod {name} is of an earlier render");
                continue;
            }
            ensure!(
                restarts == 0,
                "agent pod {name} on the real node restarted {restarts} time(s)"
            );
            match ip {
                Some(ip) if ready && pod["metadata"]["deletionTimestamp"].is_null() => {
                    ensure!(
                        node.has_pod_ip(ip),
                        "agent pod {name} got {ip}, outside the real node's {}",
                        node.pod_subnet
                    );
                    let port = pod
                        .pointer("/spec/containers/0/ports/0/containerPort")
                        .and_then(Value::as_u64)
                        .and_then(|p| u16::try_from(p).ok())
                        .context("the agent container declares no port")?;
                    return Ok((name.to_owned(), SocketAddr::new(ip, port)));
                }
                _ => last = format!("agent pod {name}: {}", pod["status"]),
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!("timed out waiting for the agent pod on the real node: {last}")
}

/// The answer comes from the node's own agent (it names the node it runs on, from the pod's
/// downward API) and lists GPUs.
fn check_inventory(result: &Value, node: &str) -> Result<()> {
    ensure!(result["isError"] != true, "the call failed: {result}");
    let s = &result["structuredContent"];
    ensure!(
        s["node"] == node,
        "the answer is not tagged with {node}: {s}"
    );
    ensure!(
        s["result"]["node"] == node,
        "the answer did not come from the agent on {node}: {s}"
    );
    let text = s["result"].to_string();
    ensure!(text.contains("\"uuid\""), "no GPU in the answer: {s}");
    Ok(())
}

/// Imports the archive into the real node.
pub(super) fn import(handle: &ClusterHandle, archive: &Path) -> Result<()> {
    let started = Instant::now();
    handle.import_image(archive)?;
    eprintln!(
        "real node: imported {} in {:.1} s",
        archive.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(tagged: &str, answered_by: &str) -> Value {
        json!({"structuredContent": {"node": tagged, "result": {
            "node": answered_by, "gpus": [{"uuid": "GPU-1"}]
        }}})
    }

    #[test]
    fn only_the_real_nodes_own_agent_passes() {
        let node = "gpu-mcp-real-node";
        assert!(check_inventory(&answer(node, node), node).is_ok());
        let other = check_inventory(&answer(node, "kwok-gpu-node-0"), node).unwrap_err();
        assert!(other.to_string().contains("did not come from"), "{other}");
        assert!(check_inventory(&answer("kwok-gpu-node-0", node), node).is_err());
        let mut failed = answer(node, node);
        failed["isError"] = json!(true);
        assert!(check_inventory(&failed, node).is_err());
        let empty =
            json!({"structuredContent": {"node": node, "result": {"node": node, "gpus": []}}});
        assert!(check_inventory(&empty, node).is_err());
    }
}
