//! The seam between the tools and the GPUs.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use gpu_mcp_model::xid::SxidEvent;
use gpu_mcp_model::{BackendKind, EventRecorderStatus, NodeSnapshot, PodRef, XidEvent};

use crate::Result;

/// A source of GPU facts: real hardware through NVML, or the simulated fleet.
///
/// Implementations never block the async runtime: blocking driver calls run on blocking threads
/// with deadlines, and a GPU that cannot be read is reported in the snapshot rather than failing
/// the call.
pub trait GpuBackend: Send + Sync + 'static {
    /// Driver facts and every GPU with all fields. Fails only when the node as a whole cannot be
    /// read (for example the driver does not answer the device count).
    fn snapshot(&self) -> BoxFuture<'_, Result<NodeSnapshot>>;

    /// Xid events the backend recorded since it started (NVML events; the mock's scenario
    /// events), oldest first.
    fn xid_events(&self) -> Vec<XidEvent>;

    /// Whether Xid events are being recorded.
    fn xid_recorder_status(&self) -> EventRecorderStatus;

    /// NVSwitch SXid events the backend itself knows of, oldest first: only the mock's
    /// scenario events. Real hardware's SXids are in the kernel log, read with the Xid lines.
    fn sxid_events(&self) -> Vec<SxidEvent> {
        Vec::new()
    }

    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// The generation of the snapshot the next [`GpuBackend::snapshot`] would return without
    /// reading the GPUs, or `None` when it would read them (no reusable snapshot, or a backend
    /// that never reuses one).
    /// Two equal generations name the same snapshot, so an answer computed from one can be
    /// reused while the generation stays the same.
    fn fresh_generation(&self) -> Option<u64> {
        None
    }

    /// The pods that hold this backend's devices when the backend itself decides them: only
    /// the mock fleet, whose simulated pods hold its simulated GPUs. `None` for real hardware,
    /// where the kubelet and the host's `/proc` say who holds what.
    fn fleet_allocations(&self) -> Option<FleetAllocations> {
        None
    }
}

/// The mock fleet's own allocations: which simulated container holds which device, and the
/// simulated processes' names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetAllocations {
    /// `(device UUID, holder)`: a GPU UUID, or a MIG device UUID when MIG is enabled.
    pub holders: Vec<(String, PodRef)>,
    /// The simulated processes' names, by pid.
    pub process_names: BTreeMap<u32, String>,
}
