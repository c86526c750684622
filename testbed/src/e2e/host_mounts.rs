//! The host mounts a GPU node's agent gets, on the real node with the mock backend.
//!
//! The chart mounts the node's `/dev/kmsg`, the kubelet's pod-resources directory and the
//! host's `/proc` only with `agent.nvmlMode=real`, which this machine cannot run (no NVIDIA
//! driver). So the release is rendered as for a real GPU node and the agent told
//! `--nvml-mode=mock` through `agent.extraArgs`: a command-line flag wins over the
//! `GPU_MCP_AGENT_NVML_MODE=real` the chart sets, the kernel log is read whatever the backend,
//! and the agent checks its attribution sources at start-up whatever the backend (the mock
//! backend then names its own pods without consulting them).
//!
//! Two renders, each checked through the gateway's `analyze_xid_errors` for the real node, the
//! agent's `/metrics` and its start-up log:
//! - `agent.kmsg.privileged=false` (the default) with `agent.kubeletRootDir` set to the real
//!   kubelet's root directory (in the cluster's state directory): UID 0 with only CAP_SYSLOG,
//!   `/dev/kmsg` mounted read-only; the runtime's device cgroup does not admit the character
//!   device, and the agent says so (`permission_denied` on `/dev/kmsg`) instead of failing;
//!   the real kubelet answers the agent's `List` on its pod-resources socket (the agent's own
//!   pod at least) and the host's `/proc` lists this machine's processes;
//! - `agent.kmsg.privileged=true` with a kubelet root directory that does not exist: the agent
//!   reads the node's kernel log (`ok`, lines > 0), the pod still starts (the chart's
//!   `DirectoryOrCreate`), and the agent reports the socket missing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use super::real_node::{self, Gateway, NAMESPACE};
use crate::cluster::{ClusterHandle, RealNode};
use crate::util::workspace::Workspace;
use crate::util::{fs, http};

/// Values that render the agent as on a real GPU node while it serves the mock fleet.
const REAL_NODE_RENDER: &str = "agent.nvmlMode=real,agent.extraArgs[0]=--nvml-mode=mock";

/// Where the agent's container finds the socket, whatever the kubelet's root on the host.
const POD_RESOURCES_IN_CONTAINER: &str = "/var/lib/kubelet/pod-resources";

/// Checks the kernel-log mount in both renders (see the module docs).
pub(super) fn run(
    ws: &Workspace,
    handle: &ClusterHandle,
    node: &RealNode,
    image: &str,
) -> Result<()> {
    let kubelet_root = handle
        .real_node_kubelet_root()
        .context("the local cluster has no real node")?;
    ensure!(
        kubelet_root.join("pod-resources").is_dir(),
        "the real node's kubelet has no pod-resources directory under {}",
        kubelet_root.display()
    );
    // Beside the kubelet's root, never a directory the kubelet or the host uses.
    let no_kubelet = kubelet_root.with_file_name("not-a-kubelet-root");
    for (privileged, root, expected) in [
        (false, &kubelet_root, Expected::Listed),
        (true, &no_kubelet, Expected::Missing),
    ] {
        let root = root
            .to_str()
            .context("the state directory's path is not UTF-8")?;
        let values = format!(
            "{REAL_NODE_RENDER},agent.kmsg.privileged={privileged},agent.kubeletRootDir={root}"
        );
        real_node::install(handle, image, "http", &values)?;
        let pod = real_node::wait_real_pod(handle, node, true)?;
        let spec: Value = serde_json::from_str(
            &handle.kubectl_output(&["-n", NAMESPACE, "get", "pod", &pod.0, "-o", "json"])?,
        )?;
        check_render(&spec["spec"], privileged)?;
        check_attribution_render(&spec["spec"], root)?;
        let log_dir = ws.scratch(&format!("e2e-real-node-kmsg-privileged-{privileged}"));
        fs::create_dir(&log_dir)?;
        let gateway = Gateway::start(ws, handle, "http", &log_dir)?;
        let checked = gateway
            .call(&node.name, "analyze_xid_errors")
            .and_then(|answer| check_kernel_log(&answer, privileged));
        let source = match checked {
            Ok(source) => source,
            Err(e) => {
                gateway.dump(handle, &pod.0);
                return Err(e.context(format!(
                    "the kernel-log mount (agent.kmsg.privileged={privileged})"
                )));
            }
        };
        eprintln!(
            "real node: /dev/kmsg mounted, agent.kmsg.privileged={privileged}: the agent reports {source}"
        );
        match check_attribution(handle, node, &pod, expected) {
            Ok(found) => eprintln!("real node: agent.kubeletRootDir={root}: {found}"),
            Err(e) => {
                gateway.dump(handle, &pod.0);
                return Err(e.context(format!(
                    "the attribution mounts (agent.kubeletRootDir={root})"
                )));
            }
        }
    }
    Ok(())
}

/// What the agent must report of the pod-resources socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    /// The real kubelet answered `List`.
    Listed,
    /// No socket under the root given.
    Missing,
}

/// The attribution volumes as `values.yaml` describes them: `<root>/pod-resources` as
/// `DirectoryOrCreate` at the container's fixed path, and the host's `/proc` at `/host/proc`,
/// both read-only, with the agent pointed at them.
fn check_attribution_render(spec: &Value, root: &str) -> Result<()> {
    let volumes = spec["volumes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let volume = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == name)
            .with_context(|| format!("no {name} volume in the agent pod: {volumes:?}"))
    };
    let pr = volume("pod-resources")?;
    ensure!(
        pr["hostPath"]["path"] == format!("{root}/pod-resources").as_str()
            && pr["hostPath"]["type"] == "DirectoryOrCreate",
        "the pod-resources volume is not {root}/pod-resources (DirectoryOrCreate): {pr}"
    );
    ensure!(
        volume("host-proc")?["hostPath"]["path"] == "/proc",
        "the host-proc volume is not the host's /proc"
    );
    let container = &spec["containers"][0];
    for (name, at) in [
        ("pod-resources", POD_RESOURCES_IN_CONTAINER),
        ("host-proc", "/host/proc"),
    ] {
        let mounted = container["volumeMounts"].as_array().is_some_and(|m| {
            m.iter()
                .any(|m| m["name"] == name && m["mountPath"] == at && m["readOnly"] == true)
        });
        ensure!(mounted, "{name} is not mounted read-only at {at}");
    }
    let env = |name: &str| {
        container["env"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["name"] == name))
            .and_then(|e| e["value"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    ensure!(
        env("GPU_MCP_AGENT_POD_RESOURCES_SOCKET")
            == format!("{POD_RESOURCES_IN_CONTAINER}/kubelet.sock")
            && env("GPU_MCP_AGENT_HOST_PROC") == "/host/proc",
        "the agent is not pointed at the mounts: {}",
        container["env"]
    );
    Ok(())
}

/// What the agent in `pod` reported of its attribution sources at start-up, on `/metrics` and
/// in its log: the pod-resources socket as `expected`, the host's `/proc` readable. Returns it
/// in words.
fn check_attribution(
    handle: &ClusterHandle,
    node: &RealNode,
    pod: &(String, SocketAddr),
    expected: Expected,
) -> Result<String> {
    let metrics = start_up_metrics(pod.1)?;
    let (pr_reason, pr_up) = gauge_up(&metrics, "pod_resources")
        .context("no agent_attribution_source_up for pod_resources")?;
    let (cg_reason, cg_up) =
        gauge_up(&metrics, "cgroup").context("no agent_attribution_source_up for cgroup")?;
    let processes = entries(&metrics, "cgroup").unwrap_or(0);
    ensure!(
        (cg_reason.as_str(), cg_up, processes > 0) == ("ok", 1, true),
        "the host's /proc at /host/proc: reason {cg_reason}, up {cg_up}, {processes} processes"
    );
    let pods = entries(&metrics, "pod_resources");
    let words = match expected {
        Expected::Listed => {
            let pods = pods.unwrap_or(0);
            ensure!(
                (pr_reason.as_str(), pr_up) == ("ok", 1) && pods >= 1,
                "the real kubelet's pod-resources socket: reason {pr_reason}, up {pr_up}, \
                 {pods} pods (the agent's own pod at least was expected)"
            );
            let on_node = pods_on_node(handle, &node.name)?;
            format!(
                "pod-resources ok through the real kubelet (List: {pods} pod(s); kubectl \
                 lists {on_node} on the node), host /proc ok ({processes} processes)"
            )
        }
        Expected::Missing => {
            ensure!(
                (pr_reason.as_str(), pr_up, pods) == ("missing", 0, None),
                "a kubelet root without the kubelet: reason {pr_reason}, up {pr_up}, \
                 pods {pods:?} (missing, 0, none was expected)"
            );
            format!("pod-resources reported missing (up 0), host /proc ok ({processes} processes)")
        }
    };
    let logs = handle.kubectl_output(&["logs", "-n", NAMESPACE, &pod.0])?;
    for (source, reason) in [("pod_resources", pr_reason.as_str()), ("cgroup", "ok")] {
        ensure!(
            start_up_line(&logs, source, reason).is_some(),
            "no start-up log line for {source} with reason {reason} in:\n{logs}"
        );
    }
    Ok(words)
}

/// The agent's `/metrics` once its start-up check is recorded (it runs beside serving).
fn start_up_metrics(addr: SocketAddr) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match http::get(addr, "/metrics", Duration::from_secs(5)) {
            Ok((200, body))
                if ["pod_resources", "cgroup"]
                    .iter()
                    .all(|source| gauge_up(&body, source).is_some()) =>
            {
                return Ok(body);
            }
            Ok((status, body)) => last = format!("HTTP {status}: {}", body.len()),
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    bail!("http://{addr}/metrics shows no start-up check within 30 s ({last})")
}

/// `agent_attribution_source_up{source=..., reason=...}`: the reason and the value.
fn gauge_up(metrics: &str, source: &str) -> Option<(String, i64)> {
    let prefix = format!("agent_attribution_source_up{{source=\"{source}\",reason=\"");
    metrics.lines().find_map(|l| {
        let (reason, value) = l.strip_prefix(&prefix)?.split_once("\"} ")?;
        Some((reason.to_owned(), value.trim().parse().ok()?))
    })
}

/// `agent_attribution_source_entries{source=...}`.
fn entries(metrics: &str, source: &str) -> Option<u64> {
    let prefix = format!("agent_attribution_source_entries{{source=\"{source}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
}

/// The agent's JSON log line of one source's start-up check.
fn start_up_line<'a>(logs: &'a str, source: &str, reason: &str) -> Option<&'a str> {
    logs.lines().find(|l| {
        serde_json::from_str::<Value>(l)
            .is_ok_and(|v| v["source"] == source && v["reason"] == reason)
    })
}

/// How many pods the API server places on `node` (every phase).
fn pods_on_node(handle: &ClusterHandle, node: &str) -> Result<usize> {
    let list: Value = serde_json::from_str(&handle.kubectl_output(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        &format!("spec.nodeName={node}"),
        "-o",
        "json",
    ])?)?;
    Ok(list["items"].as_array().map_or(0, Vec::len))
}

/// The pod is rendered as `values.yaml` describes the kernel-log mount: `/dev/kmsg` read-only,
/// UID 0 with CAP_SYSLOG added to nothing else (or privileged when asked).
fn check_render(spec: &Value, privileged: bool) -> Result<()> {
    let container = &spec["containers"][0];
    let mount = container["volumeMounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["mountPath"] == "/dev/kmsg"))
        .context("the agent container does not mount /dev/kmsg")?;
    ensure!(
        mount["readOnly"] == true,
        "/dev/kmsg is mounted writable: {mount}"
    );
    let sc = &container["securityContext"];
    ensure!(
        sc["runAsUser"] == 0,
        "the agent does not run as UID 0: {sc}"
    );
    ensure!(
        sc["capabilities"]["add"] == serde_json::json!(["SYSLOG"]),
        "the agent is not given CAP_SYSLOG alone: {sc}"
    );
    ensure!(
        (sc["privileged"] == true) == privileged,
        "privileged is not {privileged}: {sc}"
    );
    Ok(())
}

/// The kernel-log source the agent reports: `/dev/kmsg`, refused by the device cgroup
/// unprivileged, read when privileged. Returns it in words.
fn check_kernel_log(answer: &Value, privileged: bool) -> Result<String> {
    ensure!(answer["isError"] != true, "the call failed: {answer}");
    let source = find(&answer["structuredContent"], "kernel_log")
        .with_context(|| format!("no kernel_log source in the answer: {answer}"))?;
    ensure!(
        source["path"] == "/dev/kmsg",
        "the agent did not read /dev/kmsg: {source}"
    );
    let status = source["status"].as_str().unwrap_or_default();
    let lines = source["lines"].as_u64().unwrap_or(0);
    if privileged {
        ensure!(
            status == "ok" && lines > 0,
            "a privileged agent did not read the node's kernel log: {source}"
        );
    } else {
        ensure!(
            status == "permission_denied",
            "an unprivileged agent was expected to be refused /dev/kmsg by the device cgroup: {source}"
        );
    }
    Ok(format!("status {status}, {lines} lines read"))
}

/// The first value under `key`, anywhere in `v`.
fn find<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(key).or_else(|| m.values().find_map(|c| find(c, key))),
        Value::Array(a) => a.iter().find_map(|c| find(c, key)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answer(status: &str, lines: u64) -> Value {
        json!({"structuredContent": {"node": "n", "result": {"sources": {
            "kernel_log": {"status": status, "path": "/dev/kmsg", "lines": lines}
        }}}})
    }

    #[test]
    fn judges_the_reported_kernel_log_source() {
        assert!(check_kernel_log(&answer("ok", 12), true).is_ok());
        assert!(check_kernel_log(&answer("ok", 0), true).is_err());
        assert!(check_kernel_log(&answer("permission_denied", 0), true).is_err());
        assert!(check_kernel_log(&answer("permission_denied", 0), false).is_ok());
        let elsewhere = json!({"structuredContent": {"result": {"sources": {
            "kernel_log": {"status": "ok", "path": "/var/log/kern.log", "lines": 3}
        }}}});
        assert!(check_kernel_log(&elsewhere, true).is_err());
    }

    #[test]
    fn reads_the_start_up_check_from_metrics_and_logs() {
        let metrics = "# HELP agent_attribution_source_up x\n\
            agent_attribution_source_up{source=\"pod_resources\",reason=\"missing\"} 0\n\
            agent_attribution_source_up{source=\"cgroup\",reason=\"ok\"} 1\n\
            agent_attribution_source_entries{source=\"cgroup\"} 93\n# EOF\n";
        assert_eq!(
            gauge_up(metrics, "pod_resources"),
            Some(("missing".to_owned(), 0))
        );
        assert_eq!(gauge_up(metrics, "cgroup"), Some(("ok".to_owned(), 1)));
        assert_eq!(entries(metrics, "cgroup"), Some(93));
        assert_eq!(entries(metrics, "pod_resources"), None);
        let logs =
            "not json\n{\"level\":\"WARN\",\"source\":\"pod_resources\",\"reason\":\"missing\"}\n";
        assert!(start_up_line(logs, "pod_resources", "missing").is_some());
        assert!(start_up_line(logs, "pod_resources", "ok").is_none());
    }

    #[test]
    fn the_attribution_render_is_checked() {
        let spec = json!({
            "volumes": [
                {"name": "pod-resources", "hostPath": {"path": "/r/pod-resources", "type": "DirectoryOrCreate"}},
                {"name": "host-proc", "hostPath": {"path": "/proc", "type": "Directory"}}
            ],
            "containers": [{
                "volumeMounts": [
                    {"name": "pod-resources", "mountPath": "/var/lib/kubelet/pod-resources", "readOnly": true},
                    {"name": "host-proc", "mountPath": "/host/proc", "readOnly": true}
                ],
                "env": [
                    {"name": "GPU_MCP_AGENT_POD_RESOURCES_SOCKET", "value": "/var/lib/kubelet/pod-resources/kubelet.sock"},
                    {"name": "GPU_MCP_AGENT_HOST_PROC", "value": "/host/proc"}
                ]
            }]
        });
        assert!(check_attribution_render(&spec, "/r").is_ok());
        let other = check_attribution_render(&spec, "/var/lib/kubelet").unwrap_err();
        assert!(
            other.to_string().contains("is not /var/lib/kubelet"),
            "{other}"
        );
        let mut writable = spec.clone();
        writable["containers"][0]["volumeMounts"][1]["readOnly"] = json!(false);
        assert!(check_attribution_render(&writable, "/r").is_err());
    }

    #[test]
    fn the_render_is_checked() {
        let spec = json!({"containers": [{
            "volumeMounts": [{"mountPath": "/dev/kmsg", "readOnly": true}],
            "securityContext": {"runAsUser": 0, "capabilities": {"add": ["SYSLOG"], "drop": ["ALL"]}}
        }]});
        assert!(check_render(&spec, false).is_ok());
        assert!(check_render(&spec, true).is_err());
    }
}
