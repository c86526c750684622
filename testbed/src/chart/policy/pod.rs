//! Hardening and health of a pod and its containers.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::json::{str_at, strings};
use super::{KMSG_CAPABILITY, KMSG_PATH, KUBELET_ROOT};

/// Hardening and health of every container of a pod. `host_paths` are the `(host path, mount
/// path)` pairs this pod may mount, each read-only.
pub(super) fn check_pod(
    id: &str,
    pod: &Value,
    command: &str,
    host_paths: &[(&str, &str)],
    out: &mut Vec<String>,
) {
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[key] == Value::Bool(true) {
            out.push(format!("{id}: {key} is not allowed"));
        }
    }
    if str_at(pod, "/securityContext/seccompProfile/type") != Some("RuntimeDefault") {
        out.push(format!("{id}: pod seccompProfile must be RuntimeDefault"));
    }
    let mut kmsg_volumes = BTreeSet::new();
    // Volume name -> (host path, the one mount path allowed for it).
    let mut host_volumes: BTreeMap<String, (String, String)> = BTreeMap::new();
    let allowed: Vec<&str> = host_paths.iter().map(|(p, _)| *p).collect();
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        if let Some(path) = str_at(volume, "/hostPath/path") {
            let name = str_at(volume, "/name").unwrap_or_default().to_owned();
            match host_paths.iter().find(|(p, _)| host_path_is(p, path)) {
                Some((p, at)) => {
                    if *p == KMSG_PATH {
                        kmsg_volumes.insert(name.clone());
                    }
                    host_volumes.insert(name, (path.to_owned(), (*at).to_owned()));
                }
                None if allowed.is_empty() => {
                    out.push(format!("{id}: hostPath {path} is not allowed (none here)"));
                }
                None => out.push(format!(
                    "{id}: hostPath {path} is not allowed (only {})",
                    allowed.join(", ")
                )),
            }
        }
    }
    let containers = pod["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if containers.len() != 1 {
        out.push(format!(
            "{id}: expected one container, found {}",
            containers.len()
        ));
    }
    let pod_non_root = pod.pointer("/securityContext/runAsNonRoot") == Some(&Value::Bool(true));
    for c in containers
        .iter()
        .chain(pod["initContainers"].as_array().into_iter().flatten())
    {
        let cid = format!("{id} container {}", str_at(c, "/name").unwrap_or("?"));
        if c.pointer("/command/0").and_then(Value::as_str) != Some(command) {
            out.push(format!("{cid}: command must start with {command}"));
        }
        let sc = &c["securityContext"];
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            let name = str_at(m, "/name").unwrap_or_default();
            let Some((path, at)) = host_volumes.get(name) else {
                continue;
            };
            if m["readOnly"] != Value::Bool(true) {
                out.push(format!("{cid}: {path} must be mounted readOnly"));
            }
            let mount_path = str_at(m, "/mountPath").unwrap_or_default();
            if mount_path != at {
                out.push(format!(
                    "{cid}: {path} must be mounted at {at}, not {mount_path}"
                ));
            }
        }
        let mounts_kmsg = c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| kmsg_volumes.contains(str_at(m, "/name").unwrap_or_default()));
        if sc["privileged"] == Value::Bool(true) {
            out.push(format!("{cid}: privileged containers are not allowed"));
        }
        if sc["allowPrivilegeEscalation"] != Value::Bool(false) {
            out.push(format!("{cid}: allowPrivilegeEscalation must be false"));
        }
        if sc["readOnlyRootFilesystem"] != Value::Bool(true) {
            out.push(format!("{cid}: readOnlyRootFilesystem must be true"));
        }
        if !strings(&sc["capabilities"]["drop"])
            .iter()
            .any(|c| c == "ALL")
        {
            out.push(format!("{cid}: capabilities.drop must contain ALL"));
        }
        let added = strings(&sc["capabilities"]["add"]);
        for cap in &added {
            if cap.trim_start_matches("CAP_") != KMSG_CAPABILITY || !mounts_kmsg {
                out.push(format!("{cid}: capability {cap} is not allowed (only {KMSG_CAPABILITY}, and only with {KMSG_PATH} mounted)"));
            }
        }
        let non_root = sc
            .get("runAsNonRoot")
            .map_or(pod_non_root, |v| v == &Value::Bool(true));
        if !non_root && added.is_empty() {
            out.push(format!("{cid}: must run as non-root (root is only for reading {KMSG_PATH} with {KMSG_CAPABILITY})"));
        }
        check_probe(&cid, c, "livenessProbe", "/healthz", out);
        check_probe(&cid, c, "readinessProbe", "/readyz", out);
        for kind in ["requests", "limits"] {
            for res in ["cpu", "memory"] {
                if c["resources"][kind][res].is_null() {
                    out.push(format!("{cid}: resources.{kind}.{res} must be set"));
                }
            }
        }
    }
}

/// Whether `path` is the host path `allowed` names: itself, or with [`KUBELET_ROOT`] any
/// absolute directory without an empty, `.` or `..` segment.
fn host_path_is(allowed: &str, path: &str) -> bool {
    let Some(rest) = allowed.strip_prefix(KUBELET_ROOT) else {
        return allowed == path;
    };
    path.strip_suffix(rest)
        .and_then(|root| root.strip_prefix('/'))
        .is_some_and(|root| {
            root.split('/')
                .all(|segment| !matches!(segment, "" | "." | ".."))
        })
}

fn check_probe(cid: &str, c: &Value, probe: &str, path: &str, out: &mut Vec<String>) {
    let port_names: Vec<&str> = c["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| str_at(p, "/name"))
        .collect();
    let get = &c[probe]["httpGet"];
    if get["path"].as_str() != Some(path) {
        out.push(format!("{cid}: {probe} must be an HTTP GET of {path}"));
    }
    match get["port"].as_str() {
        Some(name) if port_names.contains(&name) => {}
        _ => out.push(format!(
            "{cid}: {probe} must use a named container port ({port_names:?})"
        )),
    }
}
