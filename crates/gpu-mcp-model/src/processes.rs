//! Who is on a GPU: the arguments and result of `get_gpu_processes`, and the per-GPU allocation
//! that the gateway joins with the pods it sees in Kubernetes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::output::Verdict;
use crate::pods::{AttributionSource, PodRef, ProcessOwner};
use crate::snapshot::ProcessKind;

/// Most processes listed by default ([`GpuProcessesArgs::limit`]).
pub const DEFAULT_PROCESS_LIMIT: u32 = 100;
/// Most processes one answer may list.
pub const MAX_PROCESS_LIMIT: u32 = 1000;

/// Arguments of `get_gpu_processes`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuProcessesArgs {
    /// Only the GPU with this index (as in `nvidia-smi -i`).
    #[serde(default)]
    pub gpu_index: Option<u32>,
    /// Only the GPU with this UUID (`GPU-...`), or the MIG device with this UUID (`MIG-...`).
    #[serde(default)]
    pub gpu_uuid: Option<String>,
    /// Only processes and allocations of pods in this namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Only processes and allocations of this pod (with `namespace` when names repeat).
    #[serde(default)]
    pub pod: Option<String>,
    /// Most processes listed, biggest GPU memory first (1 to 1000, default 100). The counts
    /// always include every process.
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
}

/// How an attribution source fared on this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// Read on this call.
    Ok,
    /// Not configured on this agent (for example no pod-resources socket mounted).
    NotConfigured,
    /// Configured but could not be read; the reason is in [`AttributionStatus::detail`].
    Unavailable,
}

/// One attribution source and how it fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AttributionStatus {
    /// The source.
    pub source: AttributionSource,
    /// Whether it was read.
    pub state: SourceState,
    /// One sentence for a state other than `ok` (the path tried and the error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One process on a GPU (or on one MIG device of it), with its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessEntry {
    /// Process id in the host's pid namespace.
    pub pid: u32,
    /// Process name (the executable, from the host's `/proc`), when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `compute` (CUDA), `graphics`, or `mps` (a client of the Multi-Process Service).
    pub kind: ProcessKind,
    /// GPU memory the process uses, in bytes, when the driver reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_memory_bytes: Option<u64>,
    /// The MIG device the process runs on (`MIG-...`), when MIG is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_uuid: Option<String>,
    /// Who owns the process, and which sources said so.
    pub owner: ProcessOwner,
}

/// The containers that were allocated one GPU or MIG device, per the kubelet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GpuAllocation {
    /// The allocated device: a GPU UUID (`GPU-...`) or a MIG device UUID (`MIG-...`).
    pub device_uuid: String,
    /// The GPU index on this node, when the device is one of the GPUs read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_index: Option<u32>,
    /// The GPU's health verdict, when the device is one of the GPUs read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Every container allocated the device (more than one when it is shared).
    pub holders: Vec<PodRef>,
}

/// Processes and allocations of one GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GpuProcesses {
    /// GPU index.
    pub index: u32,
    /// GPU UUID, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The GPU's health verdict (as `get_gpu_health` judges it now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Processes listed on this GPU (within the answer's limit), biggest GPU memory first.
    pub processes: Vec<ProcessEntry>,
    /// Why the process list could not be read, when it could not (never an empty list then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// The GPU's MIG devices with their processes and holders, when MIG is enabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mig_devices: Vec<MigDeviceProcesses>,
}

/// One MIG device of a GPU: which instance it is, and who is on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MigDeviceProcesses {
    /// MIG device index on its parent GPU.
    pub index: u32,
    /// MIG device UUID (`MIG-...`), when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// MIG GPU instance id (GI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_instance_id: Option<u32>,
    /// MIG compute instance id (CI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_instance_id: Option<u32>,
    /// The profile, e.g. `3g.40gb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Processes on this MIG device, including those left out by `limit`.
    pub process_count: u64,
    /// The containers allocated this MIG device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<PodRef>,
}

/// Result of `get_gpu_processes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GpuProcessesReport {
    /// One sentence: how many processes on how many GPUs, how many attributed to pods, and
    /// what could not be read.
    pub headline: String,
    /// Kubernetes node name.
    pub node: String,
    /// Processes on the GPUs asked about, including those left out by `limit`.
    pub process_count: u64,
    /// Processes left out by `limit`.
    pub processes_omitted: u64,
    /// Processes attributed to a pod, by namespace.
    pub pods_by_namespace: BTreeMap<String, u64>,
    /// The attribution sources and how each fared.
    pub attribution: Vec<AttributionStatus>,
    /// Per-GPU processes.
    pub gpus: Vec<GpuProcesses>,
    /// Devices allocated to containers by the kubelet, whether or not a process runs on them.
    pub allocations: Vec<GpuAllocation>,
}
