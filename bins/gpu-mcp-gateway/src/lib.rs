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
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use gpu_mcp_fleet::{ClusterCatalog, ClusterMetrics, MetricSink, register_cache_size};
use gpu_mcp_k8s::{
    ClientOptions, Discovery, DiscoveryConfig, ExecTransport, ExecTransportConfig, HttpTransport,
    HttpTransportConfig, NodeDirectory, NodeTransport, Router, RouterConfig, StaticDirectory,
};
use gpu_mcp_service::{McpServer, ServerInfo};
use gpu_mcp_transport::{Health, HttpConfig, HttpServer, Metrics, TlsConfig};
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
lists each node's result or error plus a summary.";

/// Which MCP transport the gateway serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TransportMode {
    /// Streamable HTTP on `listen` (with `/healthz`, `/readyz`, `/metrics`, `/version`).
    #[default]
    Http,
    /// One session on standard input and output.
    Stdio,
}

impl FromStr for TransportMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "http" => Ok(Self::Http),
            "stdio" => Ok(Self::Stdio),
            other => Err(format!(
                "unknown transport `{other}` (expected http or stdio)"
            )),
        }
    }
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

impl FromStr for Routing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "http" => Ok(Self::Http),
            "exec" => Ok(Self::Exec),
            other => Err(format!("unknown routing `{other}` (expected http or exec)")),
        }
    }
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

/// Everything the gateway needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The MCP transport served.
    pub transport: TransportMode,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Where the agents are.
    pub agents: Agents,
    /// How agents are reached.
    pub routing: Routing,
    /// Agent MCP port when a pod declares none.
    pub agent_port: u16,
    /// Most agent requests in flight during one fan-out.
    pub concurrency: usize,
    /// Deadline of one agent's answer.
    pub node_timeout: Duration,
    /// argv run in the agent container for exec routing.
    pub exec_command: Vec<String>,
    /// The bearer token clients must present (and that agents expect, unless
    /// `agent_token_file` says otherwise); takes precedence over `auth_token_file`.
    pub auth_token: Option<String>,
    /// File holding that token.
    pub auth_token_file: Option<PathBuf>,
    /// File holding the bearer token sent to agents.
    pub agent_token_file: Option<PathBuf>,
    /// PEM certificate chain and key files for HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Browser origins allowed on the MCP endpoint.
    pub allowed_origins: Vec<String>,
    /// Host names allowed in the `Host` header (empty: any).
    pub allowed_hosts: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            transport: TransportMode::Http,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            agents: Agents::Cluster {
                namespace: gpu_mcp_k8s::DEFAULT_NAMESPACE.into(),
                selector: gpu_mcp_k8s::DEFAULT_LABEL_SELECTOR.into(),
                kubeconfig: None,
                context: None,
                agent_container: gpu_mcp_k8s::DEFAULT_AGENT_CONTAINER.into(),
            },
            routing: Routing::Http,
            agent_port: gpu_mcp_k8s::DEFAULT_AGENT_PORT,
            concurrency: 32,
            node_timeout: Duration::from_secs(10),
            exec_command: gpu_mcp_k8s::DEFAULT_EXEC_COMMAND
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            auth_token: None,
            auth_token_file: None,
            agent_token_file: None,
            tls: None,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
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
        if self.routing == Routing::Exec && self.exec_command.is_empty() {
            return Err(Error::Config("--exec-command is empty".into()));
        }
        Ok(())
    }
}

/// Parses a duration such as `10s`, `500ms`, `2m` or `1h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown duration unit `{other}` in `{text}`")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

fn read_file(what: &'static str, path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::ReadFile {
        what,
        path: path.clone(),
        source,
    })
}

fn read_token(what: &'static str, path: &PathBuf) -> Result<String> {
    let bytes = read_file(what, path)?;
    let token = String::from_utf8_lossy(&bytes).trim().to_owned();
    if token.is_empty() {
        return Err(Error::Config(format!("{what} {} is empty", path.display())));
    }
    Ok(token)
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
    Stdio(McpServer),
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
        let auth_token = match (&config.auth_token, &config.auth_token_file) {
            (Some(token), _) if token.trim().is_empty() => {
                return Err(Error::Config("--auth-token is empty".into()));
            }
            (Some(token), _) => Some(token.trim().to_owned()),
            (None, Some(path)) => Some(read_token("auth token file", path)?),
            (None, None) => None,
        };
        let agent_token = match &config.agent_token_file {
            Some(p) => Some(read_token("agent token file", p)?),
            None => auth_token.clone(),
        };
        let tls = match &config.tls {
            Some((cert, key)) => Some(TlsConfig::Pem {
                cert_chain: read_file("TLS certificate", cert)?,
                private_key: read_file("TLS key", key)?,
            }),
            None => None,
        };

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
                let discovery = Discovery::start(
                    client.clone(),
                    DiscoveryConfig {
                        namespace: namespace.clone(),
                        label_selector: selector.clone(),
                        container: agent_container.clone(),
                        ..DiscoveryConfig::default()
                    },
                )?;
                tracing::info!(%namespace, %selector, "watching agent pods");
                (Arc::new(discovery), Some(client))
            }
        };
        let transport: Arc<dyn NodeTransport> = match (config.routing, client) {
            (Routing::Http, _) => Arc::new(HttpTransport::new(HttpTransportConfig {
                port: config.agent_port,
                bearer_token: agent_token,
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
        let router = Arc::new(Router::new(
            directory.clone(),
            transport,
            RouterConfig {
                concurrency: config.concurrency,
                node_timeout: config.node_timeout,
                ..RouterConfig::default()
            },
        ));

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
        let catalog = ClusterCatalog::new(router, gpu_mcp_model::gpu_tool_definitions())
            .with_metrics(cluster_metrics);
        let server = McpServer::new(
            ServerInfo {
                name: SERVER_NAME.into(),
                version: env!("CARGO_PKG_VERSION").into(),
                title: Some("Kubernetes GPU diagnostics gateway".into()),
                instructions: Some(INSTRUCTIONS.into()),
            },
            Arc::new(catalog),
        );
        let health = Health::new(directory.is_synced());
        let serving = match config.transport {
            TransportMode::Stdio => Serving::Stdio(server),
            TransportMode::Http => {
                let http = HttpConfig {
                    listen: config.listen,
                    bearer_token: auth_token,
                    tls,
                    allowed_origins: config.allowed_origins.clone(),
                    allowed_hosts: config.allowed_hosts.clone(),
                    request_timeout: (config.node_timeout * 2 + Duration::from_secs(10))
                        .max(HttpConfig::default().request_timeout),
                    ..HttpConfig::default()
                };
                Serving::Http(Box::new(
                    HttpServer::bind(http, server, health.clone(), metrics.clone()).await?,
                ))
            }
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
            Serving::Stdio(_) => None,
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
            Serving::Stdio(server) => {
                gpu_mcp_transport::serve_stdio(
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
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("10parsecs").is_err());
        assert!(parse_duration("").is_err());
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
            concurrency: 0,
            ..Config::default()
        };
        assert!(config.validate().is_err());
    }

    #[tokio::test]
    async fn bad_static_list_and_missing_files_are_config_errors() {
        let config = Config {
            agents: Agents::Static("Not A Node=http://127.0.0.1:1/mcp".into()),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Config::default()
        };
        let err = Gateway::start(config).await.unwrap_err();
        assert!(err.is_config(), "{err}");
        let config = Config {
            agents: Agents::Static("a=http://127.0.0.1:1/mcp".into()),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            auth_token_file: Some("/nonexistent/token".into()),
            ..Config::default()
        };
        let err = Gateway::start(config).await.unwrap_err();
        assert!(err.is_config(), "{err}");
        assert!(err.to_string().contains("/nonexistent/token"), "{err}");
    }
}
