//! GPU facts for the diagnostics tools: the [`GpuBackend`] trait, the NVML backend (real GPUs),
//! the mock fleet with failure scenarios, the Xid catalog, and the kernel-log parser and reader.
//!
//! Architecture invariant: nothing here prints, exits or reads the environment; every blocking
//! driver call and file read runs off the async runtime with a deadline, and a GPU that cannot be
//! read is data in the snapshot, never a crash.

mod backend;
mod coalesce;
mod error;
pub mod mock;
pub mod model;
pub mod nvml;
pub mod time;
pub mod xid;

pub use backend::{EventRecorderStatus, GpuBackend};
pub use coalesce::CoalescingBackend;
pub use error::{Error, Result};
pub use mock::{GpuModel, MockBackend, MockConfig, MockGpu, Scenario};
pub use model::*;
pub use nvml::{NvmlBackend, NvmlOptions};
pub use xid::{XidEvent, XidSource};
