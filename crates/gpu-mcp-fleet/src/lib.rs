//! The gateway's tool catalog: every GPU tool of the agent with an optional `node` argument, plus
//! `list_gpu_nodes`.
//!
//! With `node`, a call is validated (DNS-1123 subdomain) and routed to that node's agent, with
//! `detail` and `min_verdict` as that agent's own arguments where the tool takes them; the
//! agent's structured result comes back unchanged under `result`, tagged with `node` and `pod`
//! (`NodeAnswer`). Without `node`, the call fans out to every known node and the answer lists
//! each node's result or error and a [`Summary`] ([`FanOutAnswer`]). Partial failure is a success
//! that names the failed nodes; when no node answers, the result is `isError: true`.
//!
//! The tool definitions are derived from the agent's (`gpu_tool_definitions()`), never kept as a
//! second list, so the two cannot drift.
//!
//! The gateway also serves the GPU prompts with a `node` argument (`prompts`, checked like a
//! tool's `node`) and completes `node` from discovery and `gpu` from the chosen node's agent
//! (`completion`).
//!
//! It offers the agent's `gpu://{node}/...` resources for every known node, each read routed to
//! that node's agent as the tool call that holds it (`resources`), and a fan-out answer links to
//! the resources of the nodes it details (`resource_link` blocks, at most ten).

mod aggregate;
mod catalog;
mod completion;
mod definitions;
mod error;
mod fleet_args;
mod forward;
mod kube;
mod listing;
mod log;
mod metrics;
mod narrow;
mod node_arg;
mod progress;
mod prompts;
mod resources;
mod shape;
mod single;
mod verdict;

pub use catalog::ClusterCatalog;
pub use definitions::gateway_tool_definitions;
pub use error::{Error, Result};
pub use log::FleetLog;
pub use metrics::{CacheSize, ClusterMetrics, MetricSink, register_cache_size};
