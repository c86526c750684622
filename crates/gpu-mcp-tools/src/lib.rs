//! The agent's GPU tools over a [`gpu_mcp_backend::GpuBackend`]: `get_gpu_inventory`,
//! `get_gpu_health` and `analyze_xid_errors`, with schemars-generated schemas, structured results
//! and a readable text block.
//!
//! Architecture invariant: the catalog does no I/O of its own beyond the backend and the kernel-log
//! reader (both off the async runtime with deadlines); health rules are pure functions of a
//! snapshot, documented one by one in `docs/health-rules.md`.

pub mod args;
mod catalog;
mod error;
pub mod health;
pub mod output;
pub mod reference;
mod text;
mod xid_analysis;

pub use catalog::{
    ANALYZE_XID_ERRORS, AgentCatalog, AgentCatalogConfig, DEFAULT_HEALTH_XID_WINDOW,
    GET_GPU_HEALTH, GET_GPU_INVENTORY, gpu_tool_definitions,
};
pub use error::{Error, Result};
