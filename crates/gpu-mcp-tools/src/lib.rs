//! The agent's GPU tools over a [`gpu_mcp_backend::GpuBackend`]: `get_gpu_inventory`,
//! `get_gpu_health`, `analyze_xid_errors`, `get_gpu_processes` and `get_nvlink_topology` run
//! against a backend, judged by the health rules and rendered as structured results and a
//! readable text block. Wherever a tool names a GPU process it names its owner too, from the
//! agent's attribution sources (`gpu-mcp-attribution`: the kubelet's pod-resources API and the
//! host's `/proc`), or the mock fleet's own allocations. Their names, arguments, result
//! types and definitions are `gpu-mcp-model`'s. It also serves the GPU prompts for this node and
//! completes their `gpu` argument from the node's GPUs (`prompts`), offers this node's
//! `gpu://{node}/...` resources, read through the same tools (`resources`), and tells clients'
//! logs when one of its sources (a GPU, the kernel log, the Xid event recorder) fails or comes
//! back (`log`).
//!
//! Architecture invariant: the catalog does no I/O of its own beyond the backend, the kernel-log
//! reader and the attribution sources (all off the async runtime with deadlines); health rules are pure functions of a
//! snapshot, documented one by one in `docs/health-rules.md`.

mod answers;
mod catalog;
mod detail;
mod error;
pub mod health;
mod inventory;
mod log;
mod nvswitch;
mod owners;
mod processes;
mod prompts;
pub mod reference;
pub mod resources;
mod select;
pub mod terminal;
mod text;
mod topology;
mod xid_analysis;

pub use catalog::{AgentCatalog, AgentCatalogConfig};
pub use error::{Error, Result};
/// Where the kubelet serves its pod-resources API.
pub use gpu_mcp_attribution::DEFAULT_SOCKET as DEFAULT_POD_RESOURCES_SOCKET;
