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

use crate::chart::CHART_DIR;
use crate::cluster::{ClusterHandle, RealNode};
use crate::programs;
use crate::util::mcp_client::McpConn;
use crate::util::workspace::{self, Workspace};
use crate::util::{fs, net};

/// Release and namespace of the chart on the real node (apart from the kwok runs' release).
const RELEASE: &str = "gpu-mcp-real";
const NAMESPACE: &str = "gpu-mcp-real-node";

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
        .try_for_each(|routing| run_routing(ws, handle, &node, image, routing));
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
    let (repository, tag) = image
        .rsplit_once(':')
        .with_context(|| format!("image {image} has no tag"))?;
    let chart = workspace::workspace_root().join(CHART_DIR);
    // Only what this machine differs in: the local image, mock GPUs, no NVIDIA RuntimeClass;
    // no bearer tokens and no NetworkPolicies, as in the kwok runs.
    let set = format!(
        "image.repository={repository},image.tag={tag},agent.nvmlMode=mock,\
         gpu.runtimeClass.enabled=false,gateway.enabled=true,gateway.replicas=1,\
         gateway.routing={routing},auth.enabled=false,networkPolicy.enabled=false"
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
    let pod = wait_real_pod(handle, node)?;
    eprintln!(
        "real node: agent pod {} Running and Ready at {} (image {image}, probes passed)",
        pod.0, pod.1
    );

    let log_dir = ws.scratch(&format!("e2e-real-node-{routing}"));
    fs::create_dir(&log_dir)?;
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
        .context("the gateway Deployment names no ServiceAccount")?;
    let kubeconfig = handle.token_kubeconfig(
        NAMESPACE,
        service_account,
        "1h",
        Some(&log_dir.join("gateway-sa.kubeconfig")),
    )?;
    // The chart's arguments as they are, `--exec-command` included: on the real node the
    // container's own `/gpu-mcp-agent` runs.
    let mut args: Vec<String> = spec
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
    args.push(format!("--kubeconfig={}", kubeconfig.display()));
    args.push("--log-format=text".to_owned());
    let port = net::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let gateway = programs::start_gateway(
        ws,
        &format!("gateway-real-node-{routing}"),
        addr,
        &args,
        &log_dir,
        Duration::from_secs(90),
    )?;
    let answer = call_inventory(addr, &node.name);
    let checked = answer.and_then(|answer| check_inventory(&answer, &node.name));
    if let Err(err) = &checked {
        eprintln!(
            "--- gateway log ({}) ---\n{}",
            gateway.log_path().display(),
            gateway.log_tail(40)
        );
        if let Ok(logs) = handle.kubectl_output(&["logs", "-n", NAMESPACE, &pod.0, "--tail=20"]) {
            eprintln!("--- agent container log ---\n{logs}");
        }
        bail!("the gateway did not route to the real node over {routing}: {err:#}");
    }
    eprintln!("real node: the gateway routed get_gpu_inventory to the container over {routing}");
    drop(gateway);
    Ok(())
}

/// Waits for the agent pod on the real node: Running, Ready (its readiness probe passed), no
/// restart (its liveness probe never failed), an address of the node's pod subnet.
fn wait_real_pod(handle: &ClusterHandle, node: &RealNode) -> Result<(String, IpAddr)> {
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
                    return Ok((name.to_owned(), ip));
                }
                _ => last = format!("agent pod {name}: {}", pod["status"]),
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!("timed out waiting for the agent pod on the real node: {last}")
}

/// `get_gpu_inventory` for `node` through the gateway at `addr`.
fn call_inventory(addr: SocketAddr, node: &str) -> Result<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime for the MCP client")?;
    runtime.block_on(async {
        let mut conn = McpConn::connect(addr).await?;
        let call = conn.call_tool("get_gpu_inventory", json!({ "node": node }));
        let (_, result) = tokio::time::timeout(Duration::from_secs(60), call)
            .await
            .context("get_gpu_inventory did not answer within 60 s")??;
        Ok(result)
    })
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
