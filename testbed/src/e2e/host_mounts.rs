//! The host mounts a GPU node's agent gets, on the real node with the mock backend.
//!
//! The chart mounts the node's `/dev/kmsg` (and the kubelet's pod-resources directory and the
//! host's `/proc`) only with `agent.nvmlMode=real`, which this machine cannot run (no NVIDIA
//! driver). So the release is rendered as for a real GPU node and the agent told
//! `--nvml-mode=mock` through `agent.extraArgs`: a command-line flag wins over the
//! `GPU_MCP_AGENT_NVML_MODE=real` the chart sets, and the kernel log is read whatever the
//! backend. Attribution stays off (`agent.attribution.enabled=false`): its hostPath
//! `/var/lib/kubelet/pod-resources` is not this real node's (its kubelet keeps its root
//! directory in the cluster's state directory), and the mock backend names its own pods
//! without reading the pod-resources socket or `/proc` (docs/testing.md).
//!
//! Two renders, each checked through the gateway's `analyze_xid_errors` for the real node:
//! - `agent.kmsg.privileged=false` (the default): UID 0 with only CAP_SYSLOG, `/dev/kmsg`
//!   mounted read-only; the runtime's device cgroup does not admit the character device, and
//!   the agent says so (`permission_denied` on `/dev/kmsg`) instead of failing;
//! - `agent.kmsg.privileged=true`: the agent reads the node's kernel log (`ok`, lines > 0).

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use super::real_node::{self, Gateway, NAMESPACE};
use crate::cluster::{ClusterHandle, RealNode};
use crate::util::fs;
use crate::util::workspace::Workspace;

/// Values that render the agent as on a real GPU node while it serves the mock fleet.
const REAL_NODE_RENDER: &str = "agent.nvmlMode=real,agent.extraArgs[0]=--nvml-mode=mock,\
     agent.attribution.enabled=false";

/// Checks the kernel-log mount in both renders (see the module docs).
pub(super) fn run(
    ws: &Workspace,
    handle: &ClusterHandle,
    node: &RealNode,
    image: &str,
) -> Result<()> {
    for privileged in [false, true] {
        let values = format!("{REAL_NODE_RENDER},agent.kmsg.privileged={privileged}");
        real_node::install(handle, image, "http", &values)?;
        let pod = real_node::wait_real_pod(handle, node, true)?;
        let spec: Value = serde_json::from_str(
            &handle.kubectl_output(&["-n", NAMESPACE, "get", "pod", &pod.0, "-o", "json"])?,
        )?;
        check_render(&spec["spec"], privileged)?;
        let log_dir = ws.scratch(&format!("e2e-real-node-kmsg-privileged-{privileged}"));
        fs::create_dir(&log_dir)?;
        let gateway = Gateway::start(ws, handle, "http", &log_dir)?;
        let checked = gateway
            .call(&node.name, "analyze_xid_errors")
            .and_then(|answer| check_kernel_log(&answer, privileged));
        match checked {
            Ok(source) => eprintln!(
                "real node: /dev/kmsg mounted, agent.kmsg.privileged={privileged}: the agent reports {source}"
            ),
            Err(e) => {
                gateway.dump(handle, &pod.0);
                return Err(e.context(format!(
                    "the kernel-log mount (agent.kmsg.privileged={privileged})"
                )));
            }
        }
    }
    Ok(())
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
    fn the_render_is_checked() {
        let spec = json!({"containers": [{
            "volumeMounts": [{"mountPath": "/dev/kmsg", "readOnly": true}],
            "securityContext": {"runAsUser": 0, "capabilities": {"add": ["SYSLOG"], "drop": ["ALL"]}}
        }]});
        assert!(check_render(&spec, false).is_ok());
        assert!(check_render(&spec, true).is_err());
    }
}
