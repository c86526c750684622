//! `cargo xtask cluster smoke`: proves a running local cluster does what the e2e tests rely on.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use super::{ClusterHandle, realnode};

const NAMESPACE: &str = "gpu-mcp-smoke";

/// Runs every check in a scratch namespace, deleting it afterwards (also on failure).
pub(super) fn run(handle: &ClusterHandle) -> anyhow::Result<()> {
    let result = checks(handle);
    let _ = handle.kubectl_output(&["delete", "namespace", NAMESPACE, "--wait=false"]);
    result?;
    println!("smoke: all checks passed");
    Ok(())
}

fn manifest(node: &str, real_node: Option<&str>) -> serde_json::Value {
    let container = serde_json::json!([{"name": "agent", "image": "example.invalid/agent:dev"}]);
    let mut list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "placed", "namespace": NAMESPACE},
                "spec": {"nodeName": node, "containers": container},
            },
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"name": "agent", "namespace": NAMESPACE},
                "spec": {
                    "selector": {"matchLabels": {"app.kubernetes.io/name": "smoke-agent"}},
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/name": "smoke-agent"}},
                        "spec": {
                            "nodeSelector": {"nvidia.com/gpu.present": "true"},
                            "containers": container,
                        },
                    },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "unbound", "namespace": NAMESPACE},
            },
        ],
    });
    if let (Some(real), Some(items)) = (real_node, list["items"].as_array_mut()) {
        // The pause image is the one image the real node has without an import.
        items.push(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": REAL_POD, "namespace": NAMESPACE},
            "spec": {
                "nodeName": real,
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "containers": [{
                    "name": "pause",
                    "image": realnode::PAUSE_IMAGE,
                    "imagePullPolicy": "Never",
                }],
            },
        }));
    }
    list
}

/// The smoke pod on the real node.
const REAL_POD: &str = "on-real-node";

/// Pods of the namespace that are Running and Ready: `(name, node, pod IP)`.
fn ready_pods(handle: &ClusterHandle) -> anyhow::Result<Vec<(String, String, String)>> {
    let text = handle.kubectl_output(&["get", "pods", "-n", NAMESPACE, "-o", "json"])?;
    let list: serde_json::Value = serde_json::from_str(&text).context("parsing pod list")?;
    let pods = list["items"].as_array().cloned().unwrap_or_default();
    Ok(pods
        .iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .filter(|p| {
            p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .filter_map(|p| {
            Some((
                p["metadata"]["name"].as_str()?.to_owned(),
                p["spec"]["nodeName"].as_str()?.to_owned(),
                p["status"]["podIP"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

fn checks(handle: &ClusterHandle) -> anyhow::Result<()> {
    let first = handle.nodes.first().context("the cluster has no nodes")?;
    handle.kubectl_output(&["create", "namespace", NAMESPACE])?;
    let file = handle.state_dir.join("smoke.json");
    let real_node = handle.real_node.as_ref().map(|n| n.name.as_str());
    std::fs::write(&file, serde_json::to_vec(&manifest(first, real_node))?)?;
    handle.kubectl_output(&["apply", "-f", &file.display().to_string()])?;

    // One placed pod plus one DaemonSet pod per kwok node (the real node is tainted), and
    // the real node's pod.
    let want = handle.nodes.len() + 1 + usize::from(real_node.is_some());
    let deadline = Instant::now() + Duration::from_secs(120);
    let pods = loop {
        let pods = ready_pods(handle)?;
        if pods.len() >= want {
            break pods;
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {want} pods became Running and Ready: {pods:?}",
                pods.len()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    for (name, node, ip) in &pods {
        let addr: std::net::Ipv4Addr = ip.parse().with_context(|| format!("pod IP {ip}"))?;
        if let Some(real) = handle.real_node.as_ref().filter(|n| &n.name == node) {
            ensure!(
                real.has_pod_ip(addr.into()),
                "pod {name} on the real node got {ip}, outside {}",
                real.pod_subnet
            );
        } else {
            ensure!(addr.is_loopback(), "pod {name} got non-loopback IP {ip}");
        }
        println!("smoke: pod {name} on {node} is Running and Ready at {ip}");
    }
    if real_node.is_some() {
        // Logs come from the kubelet's API: the API server's client certificate and the
        // kubelet's webhook authorisation work.
        handle
            .kubectl_output(&["logs", "-n", NAMESPACE, REAL_POD])
            .context("reading a log through the real node's kubelet")?;
        println!("smoke: the real node's kubelet serves pod logs to the API server");
    }
    for node in &handle.nodes {
        ensure!(
            pods.iter()
                .any(|(name, n, _)| n == node && name.starts_with("agent-")),
            "the DaemonSet has no pod on {node}"
        );
    }

    let out = handle.kubectl_output(&[
        "exec",
        "-n",
        NAMESPACE,
        "placed",
        "--",
        "sh",
        "-c",
        "echo \"local=$GPU_MCP_LOCAL_CLUSTER pid=$$\"",
    ])?;
    ensure!(
        out.starts_with("local=1 pid="),
        "pods/exec did not run the command locally: {out:?}"
    );
    println!("smoke: pods/exec ran a local command: {}", out.trim());

    // The end of the client's stdin reaches the command (the agent's stdio mode needs it).
    let mut cat = handle
        .kubectl_command()
        .args(["exec", "-i", "-n", NAMESPACE, "placed", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = cat.stdin.take() {
        stdin.write_all(b"through stdin\n")?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while cat.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = cat.kill();
            let _ = cat.wait();
            bail!(
                "`kubectl exec -i … cat` did not end after its stdin closed (kwok without the stdin patch?)"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = cat.wait_with_output()?;
    ensure!(
        output.status.success() && output.stdout == b"through stdin\n",
        "exec with stdin returned {:?}: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("smoke: pods/exec passes stdin and its end to the command");

    let token = handle.token_kubeconfig(NAMESPACE, "unbound", "10m", None)?;
    let denied = std::process::Command::new(&handle.kubectl)
        .arg(format!("--kubeconfig={}", token.display()))
        .args(["get", "pods", "-n", NAMESPACE])
        .output()?;
    let stderr = String::from_utf8_lossy(&denied.stderr);
    ensure!(
        !denied.status.success() && stderr.contains("forbidden"),
        "a ServiceAccount without a binding could list pods (RBAC off?): {stderr}"
    );
    let _ = std::fs::remove_file(token);
    println!("smoke: RBAC denies an unbound ServiceAccount token");
    Ok(())
}
