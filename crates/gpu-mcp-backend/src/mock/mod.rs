//! A deterministic simulated fleet: N GPUs of real models with realistic values, and named
//! scenarios that reproduce real failures.
//!
//! Identities (UUIDs, serials, MIG UUIDs) derive from the node name, so simulated nodes never
//! share a GPU UUID. PCI bus ids follow the real board layout of each model (identical boards
//! put their GPUs on the same buses).
//!
//! - `models`: the GPU models and their facts.
//! - `scenarios`: the named scenarios and what each does to a GPU.
//! - `profile`: the node's configuration, from flags or a profile file.
//! - `fleet`: one GPU's identity, healthy state and scenario.
//! - `topology`: how the GPUs are wired (NVSwitch, direct NVLink or PCIe, by model), and the
//!   topology scenarios.
//! - `backend`: [`MockBackend`], the [`crate::GpuBackend`] over the built fleet.

mod backend;
mod fleet;
mod models;
mod profile;
mod scenarios;
mod topology;

pub use backend::{MOCK_CONTAINER, MOCK_NAMESPACE, MOCK_UPTIME, MockBackend, mock_pod};
pub use models::GpuModel;
pub use profile::{MAX_MOCK_GPUS, MockConfig, MockGpu};
pub use scenarios::Scenario;
