//! Who holds a GPU or a GPU process: the Kubernetes pod and container, and how we know.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A container of a pod, by name.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub struct PodRef {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container's name within the pod.
    pub container: String,
}

/// Where an attribution came from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AttributionSource {
    /// The kubelet's pod-resources API: which container was allocated which GPU.
    PodResources,
    /// The process's cgroup under the host's `/proc`: pod UID and container id.
    Cgroup,
    /// The mock fleet's own allocations; mock backend only.
    MockFleet,
}

impl AttributionSource {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PodResources => "pod_resources",
            Self::Cgroup => "cgroup",
            Self::MockFleet => "mock_fleet",
        }
    }
}

impl PodRef {
    /// `namespace/pod/container`, the compact form the text blocks use.
    pub fn path(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.pod, self.container)
    }
}

/// The owner of one GPU process, as far as this node can tell.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ProcessOwner {
    /// The container, when exactly one container holds the process's GPU (pod-resources, or
    /// the mock fleet's allocations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodRef>,
    /// Every container that holds the GPU when it is shared (time-slicing, MPS) and the process
    /// could not be told apart; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<PodRef>,
    /// The pod UID from the process's cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// The container id (runtime-specific, without the `containerd://` style prefix) from the
    /// process's cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// The sources that contributed, in the order they were consulted.
    pub sources: Vec<AttributionSource>,
}

impl ProcessOwner {
    /// Whether nothing at all is known about the owner (a host process, or no source available).
    pub fn is_unknown(&self) -> bool {
        self.pod.is_none()
            && self.candidates.is_empty()
            && self.pod_uid.is_none()
            && self.container_id.is_none()
    }
}
