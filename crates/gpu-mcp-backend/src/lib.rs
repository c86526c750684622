//! GPU facts for the diagnostics tools: the [`GpuBackend`] trait, the NVML backend (real GPUs),
//! the mock fleet with failure scenarios, and the kernel-log reader. The data they report is
//! `gpu-mcp-model`'s.
//!
//! Architecture invariant: nothing here prints, exits or reads the environment; every blocking
//! driver call and file read runs off the async runtime with a deadline, and a GPU that cannot be
//! read is data in the snapshot, never a crash.

mod backend;
mod coalesce;
mod error;
mod kmsg;
mod mock;
pub mod nvml;

pub use backend::{FleetAllocations, GpuBackend};
pub use coalesce::CoalescingBackend;
pub use error::{Error, Result};
pub use kmsg::{KernelLogRead, KmsgReader};
pub use mock::{
    GpuModel, MAX_MOCK_GPUS, MOCK_CONTAINER, MOCK_NAMESPACE, MOCK_UPTIME, MockBackend, MockConfig,
    MockGpu, Scenario, mock_pod,
};
pub use nvml::{NvmlBackend, NvmlOptions};
