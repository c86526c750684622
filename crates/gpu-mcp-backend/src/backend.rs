//! The seam between the tools and the GPUs.

use futures::future::BoxFuture;
use gpu_mcp_model::{BackendKind, EventRecorderStatus, NodeSnapshot, XidEvent};

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
}
