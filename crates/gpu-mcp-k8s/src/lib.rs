//! Kubernetes layer of the gateway: finds the agent pods, reaches them, routes requests.
//!
//! - [`client`] / [`client_config`]: a kube client from the in-cluster service account or a
//!   kubeconfig (explicit path and context optional).
//! - [`Discovery`]: a watch-backed cache (kube-runtime reflector) of agent pods, one
//!   [`AgentEndpoint`] per node; [`StaticDirectory`]: fixed `name=url` agents.
//!   Both implement [`NodeDirectory`].
//! - [`NodeTransport`]: one typed JSON-RPC request (`gpu_mcp_protocol::Request`) to one node,
//!   and its typed response, over HTTP to the pod IP ([`HttpTransport`]) or through
//!   `pods/exec` ([`ExecTransport`]).
//! - [`ClusterCache`]: watch-backed caches of every Node and of every Pod that requests GPUs,
//!   trimmed to what the Kubernetes-context tools show ([`NodeFacts`], [`GpuPod`]).
//! - [`NodeName`]: a node name checked once against the API server's rule (DNS-1123
//!   subdomain); the only way to name one node to the router.
//! - [`Router`]: one node, or a fan-out to all with bounded concurrency; the one judge of
//!   unknown, not-ready, circuit-open and timed-out nodes, and the one deadline of the hop.
//!   Each node gets a [`NodeResult`] with its response or a typed [`NodeError`].
//! - [`FleetEvents`]: what the router and discovery observe (a node failing or answering, a
//!   breaker opening or closing, the watch lost or restored), for the gateway to tell its
//!   clients.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use gpu_mcp_k8s::{
//!     ClientOptions, Discovery, DiscoveryConfig, HttpTransport, HttpTransportConfig, Router,
//!     RouterConfig,
//! };
//! use gpu_mcp_protocol::{Request, mcp::methods};
//!
//! let client = gpu_mcp_k8s::client(&ClientOptions::default()).await?;
//! let discovery = Arc::new(Discovery::start(client, DiscoveryConfig::default())?);
//! discovery.wait_until_synced(Duration::from_secs(30)).await?;
//! let transport = Arc::new(HttpTransport::new(HttpTransportConfig::default())?);
//! let router = Router::new(discovery, transport, RouterConfig::default());
//! let request = Request::new(1, methods::TOOLS_LIST, None);
//! for result in router.route_to_all(&request).await {
//!     match &result.outcome {
//!         Ok(response) => println!("{}: {:?}", result.node_name, response.result),
//!         Err(err) => println!("{}: {err}", result.node_name),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The crate does not pick a `k8s-openapi` version feature; the final binary does.
//!
//! # Tests
//!
//! Unit and integration tests need no cluster: discovery runs against a mocked API server
//! (`tower_test::mock::pair` behind `kube::Client::new`), HTTP routing against loopback agents,
//! exec routing against a loopback WebSocket stand-in of `pods/exec`.
//! Two groups run only when pointed at real things:
//! `GPU_MCP_TEST_AGENT_BIN=<gpu-mcp-agent binary>` (both transports against real agent
//! processes) and `GPU_MCP_TEST_KUBECONFIG=<kubeconfig>` (discovery and HTTP routing against a
//! real API server; add `GPU_MCP_TEST_EXEC_NODE` and `GPU_MCP_TEST_EXEC_COMMAND` for exec
//! through it).

mod cluster;
mod config;
mod discovery;
mod endpoint;
mod error;
mod events;
mod node_name;
mod quote;
mod router;
pub mod transport;

pub use cluster::{
    CacheState, ClusterCache, Condition, ContainerFacts, GPU_LABEL_PREFIX, GPU_RESOURCE, GpuPod,
    MESSAGE_LIMIT, MIG_RESOURCE_PREFIX, NodeFacts, PodFilter, PodKey, PodPage, Taint, gpu_pod,
    is_gpu_resource, node_facts,
};
pub use config::{ClientOptions, client, client_config};
pub use discovery::{
    AGENT_COMPONENT_SELECTOR, DEFAULT_AGENT_CONTAINER, DEFAULT_LABEL_SELECTOR, DEFAULT_NAMESPACE,
    Discovery, DiscoveryConfig, endpoint_from_pod,
};
pub use endpoint::{AgentEndpoint, NodeDirectory, StaticDirectory};
pub use error::{ConfigAttempt, Error, NodeError, Result};
pub use events::{FleetEvent, FleetEvents, NoEvents};
pub use node_name::{MAX_NODE_NAME_LEN, NODE_NAME_PATTERN, NodeName};
pub use quote::{QUOTE_LIMIT, quote_untrusted};
pub use router::{CircuitBreakerConfig, NodeResult, Router, RouterConfig};
pub use transport::NodeTransport;
pub use transport::exec::{DEFAULT_EXEC_COMMAND, ExecTransport, ExecTransportConfig};
pub use transport::http::{DEFAULT_AGENT_PORT, HttpTransport, HttpTransportConfig};
