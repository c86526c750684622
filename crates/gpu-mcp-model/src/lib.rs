//! The GPU diagnostics data model, shared by every crate that speaks about GPUs: what a backend
//! reports ([`NodeSnapshot`], [`GpuSnapshot`], [`Reading`]), Xid errors (the catalog, the
//! kernel-log parser, [`XidEvent`]), time helpers, and the GPU tools' arguments, structured
//! results and MCP definitions ([`gpu_tool_definitions`]), and the GPU prompts ([`prompts`]:
//! the same templates for the agent and, with `node`, for the gateway), and the GPU resources
//! ([`resources`]: `gpu://{node}/...` URIs read through the tools), and the toolsets an operator
//! enables ([`toolsets`]: which group each tool belongs to).
//!
//! The agent's tools (`gpu-mcp-tools`) judge and render these types over a backend
//! (`gpu-mcp-backend`); the gateway's fleet catalog (`gpu-mcp-fleet`) takes the tool definitions
//! from here without linking either, so the gateway never links the NVIDIA driver bindings.
//!
//! Architecture invariant: pure. No I/O, no async, no driver bindings: only data types and
//! functions of their arguments (the parser reads bytes it is handed; "now" is always a
//! parameter).

pub mod args;
mod counters;
mod definitions;
mod error;
mod inventory;
mod inventory_devices;
pub mod output;
mod pods;
pub mod portable;
pub mod processes;
pub mod prompts;
mod reading;
pub mod resources;
mod snapshot;
pub mod time;
pub mod toolsets;
pub mod topology;
pub mod xid;

pub use definitions::{
    ANALYZE_XID_ERRORS, DESCRIBE_GPU_NODE, EXPLAIN_POD_GPU_FAILURE, GET_GPU_HEALTH,
    GET_GPU_INVENTORY, GET_GPU_PROCESSES, GET_NVLINK_TOPOLOGY, GET_POD_GPU_ALLOCATION,
    LIST_GPU_NODES, gpu_tool_definitions,
};
pub use error::{Error, Result};
pub use pods::{AttributionSource, PodRef, ProcessOwner};
pub use snapshot::{
    BackendKind, ClockEventReason, Clocks, ComputeMode, CounterChanges, Ecc, EccCounts, GpuAccess,
    GpuProcess, GpuSnapshot, LinkChanges, MemoryUsage, Mig, MigInstance, MigPlacement,
    NodeSnapshot, NvLink, Pcie, Power, ProcessKind, Reading, RecoveryAction, RetiredPages,
    RowRemapping, Temperature, Utilization,
};
pub use topology::{
    FabricInfo, FabricState, GpuTopology, NvLinkRemote, P2pStatus, PciLevel, PeerPath, RemoteKind,
};
pub use xid::{EventRecorderStatus, KernelLogStatus, XidEvent, XidSource};
