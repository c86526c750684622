//! The inventory's processes and MIG devices, with the pods an attribution source names.

use schemars::JsonSchema;
use serde::Serialize;

use crate::pods::PodRef;
use crate::snapshot::{GpuProcess, MigPlacement, ProcessKind};

/// Multi-Instance GPU state.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct MigInventory {
    /// MIG mode currently enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// MIG mode after the next GPU reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_enabled: Option<bool>,
    /// MIG devices: index, UUID, name and memory.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<MigInstanceInventory>,
}

/// One MIG device.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MigInstanceInventory {
    /// MIG device index on its parent GPU.
    pub index: u32,
    /// MIG device UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Name with the profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The profile, e.g. `3g.40gb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// MIG GPU instance id (GI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_instance_id: Option<u32>,
    /// MIG compute instance id (CI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_instance_id: Option<u32>,
    /// The memory slices the GPU instance occupies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<MigPlacement>,
    /// Memory of this instance in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_total_bytes: Option<u64>,
    /// Host pids of the processes on this instance (when the process list was read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pids: Vec<u32>,
    /// The containers allocated this MIG device, where known.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodRef>,
}

impl MigInstanceInventory {
    /// Whether a process with these MIG instance ids runs on this device.
    pub fn runs(&self, p: &GpuProcess) -> bool {
        p.gpu_instance.is_some()
            && p.gpu_instance == self.gpu_instance_id
            && (p.compute_instance.is_none() || p.compute_instance == self.compute_instance_id)
    }
}

/// One process on a GPU.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProcessInventory {
    /// Process id (in the host's pid namespace).
    pub pid: u32,
    /// `compute` (CUDA), `graphics` or `mps` (an MPS client).
    pub kind: ProcessKind,
    /// GPU memory the process uses, in bytes, when the driver reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_memory_bytes: Option<u64>,
    /// MIG GPU instance, when MIG is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_instance: Option<u32>,
    /// MIG compute instance, when MIG is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_instance: Option<u32>,
    /// Process name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The container that owns the process, when one source says so (see `get_gpu_processes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodRef>,
}

impl From<GpuProcess> for ProcessInventory {
    fn from(p: GpuProcess) -> Self {
        Self {
            pid: p.pid,
            kind: p.kind,
            used_memory_bytes: p.used_memory_bytes,
            gpu_instance: p.gpu_instance,
            compute_instance: p.compute_instance,
            name: None,
            pod: None,
        }
    }
}
