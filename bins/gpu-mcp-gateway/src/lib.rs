//! The cluster gateway: one MCP endpoint for every GPU node.
//!
//! [`run`] wires the layers together: a node directory (the Kubernetes discovery cache, or a static
//! `name=url` list), a node transport (HTTP to the pod IP, or `pods/exec`), the [`Router`], the
//! [`ClusterCatalog`] over the agent's own tool definitions, and the stdio or Streamable HTTP
//! transport with `/readyz` tied to the discovery cache having synced.
//!
//! `main.rs` only parses flags, sets up logging and maps errors to exit statuses.

mod error;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gpu_mcp_fleet::{ClusterCatalog, ClusterMetrics, FleetLog, MetricSink, register_cache_size};
use gpu_mcp_k8s::{
    CircuitBreakerConfig, ClientOptions, ClusterCache, Discovery, DiscoveryConfig, ExecTransport,
    ExecTransportConfig, FleetEvents, HttpTransport, HttpTransportConfig, NodeDirectory,
    NodeTransport, Router, RouterConfig, StaticDirectory,
};
use gpu_mcp_model::toolsets::Toolsets;
use gpu_mcp_service::{
    DEFAULT_LOG_INTERVAL, LogSink, McpServer, ServerInfo, SessionPolicy, ThrottledLog,
};
use gpu_mcp_transport::{Health, HttpConfig, HttpServer, Metrics, StdioConfig};
use prometheus_client::registry::Metric;
use tokio_util::sync::CancellationToken;

pub use error::{Error, Result};

/// Name reported in `initialize`.
pub const SERVER_NAME: &str = "k8s-gpu-mcp-gateway";

/// How often readiness follows the discovery cache's sync state.
const READINESS_POLL: Duration = Duration::from_millis(250);

/// What the gateway tells models about its tools.
const INSTRUCTIONS: &str = "GPU diagnostics for every GPU node of a Kubernetes cluster. \
Call list_gpu_nodes to see the nodes, their GPUs and health. Every GPU tool takes an optional \
`node`: with it, the tool runs on that node only; without it, on every node, and the answer \
lists each node's result or error plus a summary. Where the gateway serves describe_gpu_node \
and get_pod_gpu_allocation, they add what Kubernetes thinks: a node's taints, cordon, GPU \
allocation and the drain command, and which pod holds which GPU.";

/// Which MCP transport the gateway serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TransportMode {
    /// Streamable HTTP on `listen` (with `/healthz`, `/readyz`, `/metrics`, `/version`).
    #[default]
    Http,
    /// One session on standard input and output.
    Stdio,
}

/// How the gateway reaches an agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Routing {
    /// POST to the agent's MCP endpoint on its pod IP (pooled connections).
    #[default]
    Http,
    /// Run the agent in one-shot stdio mode through `pods/exec`.
    Exec,
}

/// Where the agents are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agents {
    /// Fixed agents, `name=url,...` (no cluster needed).
    Static(String),
    /// Agent pods discovered in a Kubernetes namespace.
    Cluster {
        /// Namespace of the agent pods.
        namespace: String,
        /// Label selector of the agent pods.
        selector: String,
        /// Explicit kubeconfig; `None` tries in-cluster, then the default kubeconfig.
        kubeconfig: Option<PathBuf>,
        /// Kubeconfig context.
        context: Option<String>,
        /// The agent container in each pod (for exec, and to find the MCP port).
        agent_container: String,
    },
}

/// The request bound the gateway uses unless told otherwise: time for one fan-out (the node
/// timeout) twice over plus a margin, and never less than 60 s.
pub fn default_request_timeout(node_timeout: Duration) -> Duration {
    (node_timeout * 2 + Duration::from_secs(10)).max(Duration::from_secs(60))
}

/// Everything the gateway needs to run. Secrets and certificates are values here: the binary
/// reads the files its flags name.
#[derive(Debug, Clone)]
pub struct Config {
    /// The MCP transport served.
    pub transport: TransportMode,
    /// The HTTP listener: address, the bearer token clients must send, TLS, origin and host
    /// checks, body limit, sessions, request timeout.
    pub http: HttpConfig,
    /// The stdio transport (its request timeout).
    pub stdio: StdioConfig,
    /// Refuse requests before `initialize` (handshake-era clients only).
    pub strict_lifecycle: bool,
    /// Where the agents are.
    pub agents: Agents,
    /// How agents are reached.
    pub routing: Routing,
    /// Agent MCP port when a pod declares none.
    pub agent_port: u16,
    /// Serve the Kubernetes-context tools from watch-backed caches of nodes and GPU pods.
    pub cluster_context: bool,
    /// Most agent requests in flight during one fan-out.
    pub concurrency: usize,
    /// Deadline of one agent's answer (the router's; the only deadline of the hop).
    pub node_timeout: Duration,
    /// Per-node circuit breaker; `None` sends every request.
    pub circuit_breaker: Option<CircuitBreakerConfig>,
    /// argv run in the agent container for exec routing.
    pub exec_command: Vec<String>,
    /// The bearer token sent to agents.
    pub agent_token: Option<String>,
    /// The toolsets served (all by default).
    pub toolsets: Toolsets,
}

impl Default for Config {
    fn default() -> Self {
        let node_timeout = Duration::from_secs(10);
        let request_timeout = default_request_timeout(node_timeout);
        Self {
            transport: TransportMode::Http,
            http: HttpConfig {
                request_timeout,
                ..HttpConfig::default()
            },
            stdio: StdioConfig {
                request_timeout: Some(request_timeout),
                ..StdioConfig::default()
            },
            strict_lifecycle: false,
            agents: Agents::Cluster {
                namespace: gpu_mcp_k8s::DEFAULT_NAMESPACE.into(),
                selector: gpu_mcp_k8s::DEFAULT_LABEL_SELECTOR.into(),
                kubeconfig: None,
                context: None,
                agent_container: gpu_mcp_k8s::DEFAULT_AGENT_CONTAINER.into(),
            },
            routing: Routing::Http,
            agent_port: gpu_mcp_k8s::DEFAULT_AGENT_PORT,
            cluster_context: false,
            concurrency: 32,
            node_timeout,
            circuit_breaker: None,
            exec_command: gpu_mcp_k8s::DEFAULT_EXEC_COMMAND
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            agent_token: None,
            toolsets: Toolsets::all(),
        }
    }
}

impl Config {
    /// Checks the combinations no single flag can.
    pub fn validate(&self) -> Result<()> {
        if self.concurrency == 0 {
            return Err(Error::Config("--concurrency must be at least 1".into()));
        }
        if self.node_timeout.is_zero() {
            return Err(Error::Config("--node-timeout must be positive".into()));
        }
        if matches!(self.agents, Agents::Static(_)) && self.routing == Routing::Exec {
            return Err(Error::Config(
                "--routing exec needs a cluster; --agents lists HTTP endpoints".into(),
            ));
        }
        if matches!(self.agents, Agents::Static(_)) && self.cluster_context {
            return Err(Error::Config(
                "--cluster-context needs a cluster; --agents lists HTTP endpoints".into(),
            ));
        }
        if self.routing == Routing::Exec && self.exec_command.is_empty() {
            return Err(Error::Config("--exec-command is empty".into()));
        }
        if self
            .circuit_breaker
            .is_some_and(|b| b.failure_threshold == 0 || b.cool_down.is_zero())
        {
            return Err(Error::Config(
                "the circuit breaker needs --breaker-failures and --breaker-cool-down above 0"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Registers metrics on the transport's registry (served at `/metrics`).
struct TransportSink<'a>(&'a Metrics);

impl MetricSink for TransportSink<'_> {
    fn register_metric<M: Metric>(&mut self, name: &str, help: &str, metric: M) {
        self.0.register(name, help, metric);
    }
}

enum Serving {
    Http(Box<HttpServer>),
    Stdio(McpServer, StdioConfig),
}

/// A started gateway: listener bound, discovery running, not yet serving.
pub struct Gateway {
    serving: Serving,
    directory: Arc<dyn NodeDirectory>,
    health: Health,
    metrics: Metrics,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("local_addr", &self.local_addr())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Builds every layer and binds the listener.
    pub async fn start(config: Config) -> Result<Self> {
        config.validate()?;
        // What clients that asked for log messages hear about the fleet.
        let log_sink = LogSink::new();
        let fleet_log: Arc<dyn FleetEvents> = Arc::new(FleetLog::new(ThrottledLog::new(
            log_sink.clone(),
            DEFAULT_LOG_INTERVAL,
        )));
        let (directory, client): (Arc<dyn NodeDirectory>, _) = match &config.agents {
            Agents::Static(list) => (Arc::new(StaticDirectory::parse(list)?), None),
            Agents::Cluster {
                namespace,
                selector,
                kubeconfig,
                context,
                agent_container,
            } => {
                let client = gpu_mcp_k8s::client(&ClientOptions {
                    kubeconfig: kubeconfig.clone(),
                    context: context.clone(),
                })
                .await?;
                let discovery = Discovery::start_with_events(
                    client.clone(),
                    DiscoveryConfig {
                        namespace: namespace.clone(),
                        label_selector: selector.clone(),
                        container: agent_container.clone(),
                        ..DiscoveryConfig::default()
                    },
                    fleet_log.clone(),
                )?;
                tracing::info!(%namespace, %selector, "watching agent pods");
                (Arc::new(discovery), Some(client))
            }
        };
        let cluster = match (&client, config.cluster_context) {
            (Some(client), true) => {
                tracing::info!("watching nodes and GPU pods for the Kubernetes-context tools");
                Some(Arc::new(ClusterCache::start(client.clone())?))
            }
            _ => None,
        };
        let transport: Arc<dyn NodeTransport> = match (config.routing, client) {
            (Routing::Http, _) => Arc::new(HttpTransport::new(HttpTransportConfig {
                port: config.agent_port,
                bearer_token: config.agent_token.clone(),
                ..HttpTransportConfig::default()
            })?),
            // The container comes from each endpoint: discovery picks `agent_container`, or the
            // pod's first container when it has none of that name.
            (Routing::Exec, Some(client)) => Arc::new(ExecTransport::new(
                client,
                ExecTransportConfig {
                    command: config.exec_command.clone(),
                    ..ExecTransportConfig::default()
                },
            )?),
            (Routing::Exec, None) => {
                return Err(Error::Config("--routing exec needs a cluster".into()));
            }
        };
        let router = Arc::new(
            Router::new(
                directory.clone(),
                transport,
                RouterConfig {
                    concurrency: config.concurrency,
                    node_timeout: config.node_timeout,
                    circuit_breaker: config.circuit_breaker,
                },
            )
            .with_events(fleet_log),
        );

        let metrics = Metrics::new();
        let cluster_metrics = ClusterMetrics::register(&mut TransportSink(&metrics));
        let cache = directory.clone();
        register_cache_size(
            &mut TransportSink(&metrics),
            Arc::new(move || {
                let nodes = cache.nodes();
                (nodes.len(), nodes.iter().filter(|n| n.ready).count())
            }),
        );
        let mut catalog = ClusterCatalog::new(router, gpu_mcp_model::gpu_tool_definitions())
            .with_toolsets(&config.toolsets)
            .with_metrics(cluster_metrics);
        if let Some(cache) = cluster {
            catalog = catalog.with_cluster_context(cache);
        }
        let server = McpServer::with_log_sink(
            ServerInfo {
                name: SERVER_NAME.into(),
                version: env!("CARGO_PKG_VERSION").into(),
                title: Some("Kubernetes GPU diagnostics gateway".into()),
                instructions: Some(INSTRUCTIONS.into()),
            },
            Arc::new(catalog),
            SessionPolicy {
                strict_lifecycle: config.strict_lifecycle,
                ..SessionPolicy::default()
            },
            log_sink,
        );
        let health = Health::new(directory.is_synced());
        let serving = match config.transport {
            TransportMode::Stdio => Serving::Stdio(server, config.stdio),
            TransportMode::Http => Serving::Http(Box::new(
                HttpServer::bind(config.http, server, health.clone(), metrics.clone()).await?,
            )),
        };
        Ok(Self {
            serving,
            directory,
            health,
            metrics,
        })
    }

    /// The bound HTTP address (`None` for stdio).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.serving {
            Serving::Http(s) => Some(s.local_addr()),
            Serving::Stdio(..) => None,
        }
    }

    /// The readiness flag served at `/readyz`.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The metrics registry served at `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serves until `shutdown` is cancelled (or, for stdio, standard input ends).
    pub async fn serve(self, shutdown: CancellationToken) -> Result<()> {
        let Self {
            serving,
            directory,
            health,
            ..
        } = self;
        let readiness = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                let mut was = None;
                loop {
                    let synced = directory.is_synced();
                    if was != Some(synced) {
                        tracing::info!(synced, nodes = directory.nodes().len(), "node directory");
                        was = Some(synced);
                    }
                    health.set_ready(synced);
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(READINESS_POLL) => {}
                    }
                }
            }
        });
        let result = match serving {
            Serving::Http(server) => {
                tracing::info!(addr = %server.local_addr(), "serving MCP over HTTP at /mcp");
                server.serve(shutdown.clone()).await
            }
            Serving::Stdio(server, stdio) => {
                gpu_mcp_transport::serve_stdio_with(
                    stdio,
                    server,
                    tokio::io::stdin(),
                    tokio::io::stdout(),
                    shutdown.clone(),
                )
                .await
            }
        };
        shutdown.cancel();
        let _ = readiness.await;
        result.map_err(Error::from)
    }
}

/// Starts the gateway and serves until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    Gateway::start(config).await?.serve(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_timeout_covers_a_fan_out() {
        assert_eq!(
            default_request_timeout(Duration::from_secs(10)),
            Duration::from_secs(60)
        );
        assert_eq!(
            default_request_timeout(Duration::from_secs(40)),
            Duration::from_secs(90)
        );
        let config = Config::default();
        assert_eq!(config.http.request_timeout, Duration::from_secs(60));
        assert_eq!(config.stdio.request_timeout, Some(Duration::from_secs(60)));
    }

    #[test]
    fn static_agents_cannot_use_exec() {
        let config = Config {
            agents: Agents::Static("a=http://127.0.0.1:1/mcp".into()),
            routing: Routing::Exec,
            ..Config::default()
        };
        assert!(config.validate().unwrap_err().is_config());
        let config = Config {
            agents: Agents::Static("a=http://127.0.0.1:1/mcp".into()),
            cluster_context: true,
            ..Config::default()
        };
        assert!(config.validate().unwrap_err().is_config());
        let config = Config {
            concurrency: 0,
            ..Config::default()
        };
        assert!(config.validate().is_err());
        let config = Config {
            circuit_breaker: Some(CircuitBreakerConfig {
                failure_threshold: 0,
                cool_down: Duration::from_secs(1),
            }),
            ..Config::default()
        };
        assert!(config.validate().unwrap_err().is_config());
    }

    #[tokio::test]
    async fn bad_static_list_is_a_config_error() {
        let mut config = Config {
            agents: Agents::Static("Not A Node=http://127.0.0.1:1/mcp".into()),
            ..Config::default()
        };
        config.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let err = Gateway::start(config).await.unwrap_err();
        assert!(err.is_config(), "{err}");
    }
}
