//! GPU workloads and node states for the Kubernetes-context scenarios: pods in `ml-training`
//! named `{node}-job-{i}` requesting one `nvidia.com/gpu` each and bound to the kwok nodes (the
//! names the mock agents attribute GPU `i` of node `N` to), the GPU taint on the first node and a
//! cordon on the second. [`Workloads::remove`] puts the nodes back, so a reused cluster is left
//! as it was.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::cluster::ClusterHandle;
use crate::util::fs;

/// Namespace of the GPU workloads.
pub(crate) const WORKLOAD_NAMESPACE: &str = "ml-training";
/// GPU pods per node (`{node}-job-0` ... ).
pub(crate) const JOBS_PER_NODE: u32 = 2;
/// The taint put on the first node (the agents tolerate it, as GPU nodes are commonly tainted).
pub(crate) const GPU_TAINT: &str = "nvidia.com/gpu=present:NoSchedule";

/// The workloads applied to a cluster, and the node states set.
#[derive(Debug)]
pub(crate) struct Workloads {
    handle: ClusterHandle,
    /// The tainted node.
    pub(crate) tainted: String,
    /// The cordoned node.
    pub(crate) cordoned: String,
}

fn pod(node: &str, i: u32) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("{node}-job-{i}"), "namespace": WORKLOAD_NAMESPACE,
                     "labels": {"app": "train"}},
        "spec": {
            "nodeName": node,
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{
                "name": "worker",
                "image": "registry.invalid/train:1",
                "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "100m"}},
            }],
        },
    })
}

impl Workloads {
    /// Creates the namespace and the pods, taints `nodes[0]` and cordons `nodes[1]`.
    pub(crate) fn apply(handle: &ClusterHandle, nodes: &[String]) -> Result<Self> {
        let [tainted, cordoned, ..] = nodes else {
            anyhow::bail!("the Kubernetes-context scenarios need at least two nodes");
        };
        let mut items = vec![json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": WORKLOAD_NAMESPACE}})];
        for node in nodes {
            items.extend((0..JOBS_PER_NODE).map(|i| pod(node, i)));
        }
        let path = handle.state_dir.join("gpu-workloads.json");
        fs::write(
            &path,
            json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(),
        )?;
        handle
            .kubectl_output(&["apply", "-f", &path.display().to_string()])
            .context("creating the GPU workload pods")?;
        handle
            .kubectl_output(&["taint", "nodes", tainted, GPU_TAINT, "--overwrite"])
            .context("tainting the first node")?;
        handle
            .kubectl_output(&["cordon", cordoned])
            .context("cordoning the second node")?;
        Ok(Self {
            handle: handle.clone(),
            tainted: tainted.clone(),
            cordoned: cordoned.clone(),
        })
    }

    /// What the scenarios are told about the workloads.
    pub(crate) fn env(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "GPU_MCP_E2E_WORKLOAD_NAMESPACE".to_owned(),
                WORKLOAD_NAMESPACE.to_owned(),
            ),
            (
                "GPU_MCP_E2E_JOBS_PER_NODE".to_owned(),
                JOBS_PER_NODE.to_string(),
            ),
            ("GPU_MCP_E2E_TAINTED_NODE".to_owned(), self.tainted.clone()),
            (
                "GPU_MCP_E2E_CORDONED_NODE".to_owned(),
                self.cordoned.clone(),
            ),
        ])
    }

    /// Deletes the pods and their namespace, and removes the taint and the cordon.
    pub(crate) fn remove(&self) {
        let taint_key = GPU_TAINT.split('=').next().unwrap_or(GPU_TAINT);
        let untaint = format!("{taint_key}-");
        let _ = self
            .handle
            .kubectl_output(&["taint", "nodes", &self.tainted, &untaint]);
        let _ = self.handle.kubectl_output(&["uncordon", &self.cordoned]);
        let _ = self.handle.kubectl_output(&[
            "delete",
            "namespace",
            WORKLOAD_NAMESPACE,
            "--wait=false",
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_bound_named_as_the_mock_agents_attribute_them_and_request_one_gpu() {
        let p = pod("kwok-gpu-node-1", 0);
        assert_eq!(p["metadata"]["name"], "kwok-gpu-node-1-job-0");
        assert_eq!(p["spec"]["nodeName"], "kwok-gpu-node-1");
        assert_eq!(
            p["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"],
            "1"
        );
        assert_eq!(p["spec"]["containers"][0]["name"], "worker");
    }
}
