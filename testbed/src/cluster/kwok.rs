//! kwok's part: the fake GPU nodes, kwok's configuration, and the stages and `Exec` CRD read
//! from the kwok module.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::Context;

use super::gobuild;
use super::handle::quoted;
use crate::util::cmd;

/// Name prefix of the fake GPU nodes.
const NODE_PREFIX: &str = "kwok-gpu-node-";
/// GPUs each fake node advertises (`nvidia.com/gpu` capacity).
const GPUS_PER_NODE: u32 = 8;

/// Name of fake node `i`.
pub(super) fn node_name(i: u32) -> String {
    format!("{NODE_PREFIX}{i}")
}

/// Node `i` owns the pod CIDR `127.0.<i+1>.0/24`.
fn node_pod_cidr(i: u32) -> String {
    format!("127.0.{}.0/24", i + 1)
}

/// kwok's `--config`: upstream's fast node and pod stages, then a ClusterExec that runs every
/// `pods/exec` command on this machine (the binaries in `<state>/bin` first on PATH).
pub(super) fn config_yaml(stages: &str, exec_dir: &Path) -> String {
    format!(
        "{stages}\n---\napiVersion: kwok.x-k8s.io/v1alpha1\nkind: ClusterExec\nmetadata:\n  name: local-exec\n\
         spec:\n  execs:\n  - local:\n      workDir: {}\n      envs:\n      - name: GPU_MCP_LOCAL_CLUSTER\n        value: \"1\"\n",
        quoted(&exec_dir.display().to_string())
    )
}

/// Whether every node named in `names` is in the node `list` with the Ready condition True.
pub(super) fn all_nodes_ready(list: &serde_json::Value, names: &[String]) -> bool {
    let items = list["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    names.iter().all(|name| {
        items.iter().any(|node| {
            node["metadata"]["name"] == name.as_str()
                && node["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
    })
}

/// Node objects of the fake GPU nodes, labelled like nodes with the NVIDIA device plugin and
/// GPU feature discovery.
pub(super) fn nodes_manifest(n: u32) -> serde_json::Value {
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let name = node_name(i);
            let resources = serde_json::json!({
                "cpu": "32",
                "memory": "256Gi",
                "pods": "110",
                "nvidia.com/gpu": GPUS_PER_NODE.to_string(),
            });
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {
                        "kwok.x-k8s.io/node": "fake",
                        "node.alpha.kubernetes.io/ttl": "0",
                    },
                    "labels": {
                        "type": "kwok",
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "nvidia.com/gpu.present": "true",
                        "nvidia.com/gpu.count": GPUS_PER_NODE.to_string(),
                        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                    },
                },
                "spec": {
                    "podCIDR": node_pod_cidr(i),
                    "podCIDRs": [node_pod_cidr(i)],
                },
                "status": {
                    "allocatable": resources,
                    "capacity": resources,
                },
            })
        })
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// kwok's `Exec` CRD from the kwok module in the Go module cache, cached beside the kwok binary.
pub(super) fn exec_crd() -> anyhow::Result<String> {
    kwok_asset("exec-crd.yaml", &["crd/bases/kwok.x-k8s.io_execs.yaml"])
}

/// Upstream kwok's fast node and pod stages (as kwokctl combines them), read from the kwok
/// module in the Go module cache and cached beside the kwok binary.
pub(super) fn stages() -> anyhow::Result<String> {
    kwok_asset(
        "stages.yaml",
        &[
            "stage/node/fast/node-initialize.yaml",
            "stage/node/heartbeat/node-heartbeat.yaml",
            "stage/pod/fast/pod-ready.yaml",
            "stage/pod/fast/pod-complete.yaml",
            "stage/pod/fast/pod-delete.yaml",
        ],
    )
}

/// The files `files` under the kwok module's `kustomize/` directory as one multi-document
/// YAML, cached as `<kwok output dir>/<cache_name>`.
fn kwok_asset(cache_name: &str, files: &[&str]) -> anyhow::Result<String> {
    let cache = gobuild::output_dir(&gobuild::KWOK)?.join(cache_name);
    if let Ok(text) = fs::read_to_string(&cache) {
        return Ok(text);
    }
    gobuild::check_go()?;
    let output = cmd::run(
        Command::new("go")
            .args([
                "mod",
                "download",
                "-json",
                &format!("sigs.k8s.io/kwok@{}", gobuild::KWOK.version),
            ])
            .current_dir(gobuild::module_dir(&gobuild::KWOK))
            .env("GOTOOLCHAIN", "local"),
    )
    .context("reading kwok's stages and CRDs from its module")?;
    let info: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let dir = info
        .get("Dir")
        .and_then(|d| d.as_str())
        .context("`go mod download -json` gave no Dir for kwok")?;
    let mut text = String::new();
    for file in files {
        let path = Path::new(dir).join("kustomize").join(file);
        let body =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        if !text.is_empty() {
            text.push_str("\n---\n");
        }
        text.push_str(body.trim_end());
        text.push('\n');
    }
    fs::write(&cache, &text).with_context(|| format!("writing {}", cache.display()))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_get_disjoint_loopback_pod_cidrs_and_gpu_labels() {
        let manifest = nodes_manifest(3);
        let items = manifest["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        let cidrs: Vec<&str> = items
            .iter()
            .map(|n| n["spec"]["podCIDR"].as_str().unwrap())
            .collect();
        assert_eq!(cidrs, ["127.0.1.0/24", "127.0.2.0/24", "127.0.3.0/24"]);
        for node in items {
            assert_eq!(node["metadata"]["labels"]["nvidia.com/gpu.present"], "true");
            assert_eq!(
                node["metadata"]["annotations"]["kwok.x-k8s.io/node"],
                "fake"
            );
            assert_eq!(node["status"]["capacity"]["nvidia.com/gpu"], "8");
        }
        assert_eq!(items[2]["metadata"]["name"], "kwok-gpu-node-2");
    }

    #[test]
    fn node_readiness_needs_every_named_node_ready() {
        let list = serde_json::json!({"items": [
            {"metadata": {"name": "a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            {"metadata": {"name": "b"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
        ]});
        assert!(all_nodes_ready(&list, &["a".to_owned()]));
        assert!(!all_nodes_ready(&list, &["a".to_owned(), "b".to_owned()]));
        assert!(!all_nodes_ready(&list, &["c".to_owned()]));
    }

    #[test]
    fn kwok_config_appends_a_cluster_wide_local_exec() {
        let yaml = config_yaml("kind: Stage", Path::new("/state/exec"));
        assert!(yaml.starts_with("kind: Stage\n---\n"));
        assert!(yaml.contains("kind: ClusterExec"));
        assert!(yaml.contains("workDir: \"/state/exec\""));
        assert!(!yaml.contains("selector"));
    }
}
