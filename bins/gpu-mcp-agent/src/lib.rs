//! The GPU diagnostics agent: one per GPU node. It reads the node's NVIDIA GPUs through NVML
//! (real) or a simulated fleet (mock, the default) and serves the GPU tools over MCP, on stdio or
//! Streamable HTTP.
//!
//! This library holds everything but argument parsing and logging set-up, so tests can run the
//! whole agent in-process: build a [`Config`] and call [`run`].

mod error;
mod sources;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gpu_mcp_backend::{
    CoalescingBackend, GpuBackend, MockBackend, MockConfig, NvmlBackend, NvmlOptions,
};
use gpu_mcp_model::output::Verdict;
use gpu_mcp_model::toolsets::Toolsets;
use gpu_mcp_service::{
    DEFAULT_LOG_INTERVAL, LogSink, McpServer, ServerInfo, SessionPolicy, ThrottledLog,
};
use gpu_mcp_tools::{AgentCatalog, AgentCatalogConfig};
use gpu_mcp_transport::{Health, HttpConfig, HttpServer, Metrics, StdioConfig};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

pub use error::{Error, Result};

/// Name reported in `serverInfo` and `/version`.
pub const SERVER_NAME: &str = "k8s-gpu-mcp-agent";

/// Default bound on handling one MCP request, on stdio and HTTP.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Default of [`Config::snapshot_max_age`].
pub const DEFAULT_SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(1);

/// How the agent talks MCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportMode {
    /// Newline-delimited JSON-RPC on stdin/stdout (an MCP client or `kubectl exec` starts it).
    Stdio,
    /// Streamable HTTP on [`HttpConfig::listen`].
    Http,
}

/// A check printed for a person instead of serving MCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `get_gpu_health` with its defaults, as a table of GPUs and the findings with their
    /// actions; the exit code follows the verdict ([`Error::Verdict`]).
    Health,
}

/// Where GPU facts come from.
#[derive(Debug, Clone)]
pub enum GpuSource {
    /// The simulated fleet.
    Mock(MockConfig),
    /// The NVIDIA driver through `libnvidia-ml.so.1`.
    Nvml(NvmlOptions),
}

/// Everything the agent needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// stdio or HTTP.
    pub transport: TransportMode,
    /// HTTP settings (used with [`TransportMode::Http`]).
    pub http: HttpConfig,
    /// stdio settings (used with [`TransportMode::Stdio`]).
    pub stdio: StdioConfig,
    /// The GPU backend.
    pub gpu: GpuSource,
    /// Kubernetes node name reported by the tools.
    pub node_name: String,
    /// Kernel log read for Xid lines (`/dev/kmsg` or a file).
    pub kmsg_path: Option<PathBuf>,
    /// The kubelet's pod-resources socket (pod attribution); none when `None`.
    pub pod_resources_socket: Option<PathBuf>,
    /// The host's `/proc` (process names and cgroups); none when `None`.
    pub host_proc: Option<PathBuf>,
    /// Refuse requests before `initialize` (handshake-era clients only).
    pub strict_lifecycle: bool,
    /// How long a GPU snapshot is shared by later calls (zero: read the GPUs on every call);
    /// see [`CoalescingBackend`].
    pub snapshot_max_age: Duration,
    /// Print this check and exit instead of serving MCP.
    pub check: Option<Check>,
    /// The toolsets served (all by default).
    pub toolsets: Toolsets,
}

impl Config {
    /// Defaults: stdio, the mock fleet (8 healthy GPUs) on a node called `node_name`.
    pub fn new(node_name: impl Into<String>) -> Self {
        let node_name = node_name.into();
        Self {
            transport: TransportMode::Stdio,
            http: HttpConfig {
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
                ..HttpConfig::default()
            },
            stdio: StdioConfig {
                request_timeout: Some(DEFAULT_REQUEST_TIMEOUT),
                ..StdioConfig::default()
            },
            gpu: GpuSource::Mock(MockConfig {
                node_name: node_name.clone(),
                ..MockConfig::default()
            }),
            node_name,
            kmsg_path: None,
            pod_resources_socket: None,
            host_proc: None,
            strict_lifecycle: false,
            snapshot_max_age: DEFAULT_SNAPSHOT_MAX_AGE,
            check: None,
            toolsets: Toolsets::all(),
        }
    }
}

/// The identity the agent reports.
pub fn server_info() -> ServerInfo {
    ServerInfo {
        name: SERVER_NAME.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        title: Some("Kubernetes GPU diagnostics (node agent)".to_owned()),
        instructions: Some(
            "Diagnoses this node's NVIDIA GPUs. Start with get_gpu_health for a verdict per GPU, \
             use get_gpu_inventory for models, memory and clocks, get_nvlink_topology for how the \
             GPUs are wired (NVLink, NVSwitch fabric, PCIe, NUMA), analyze_xid_errors to explain \
             driver Xid events, and get_gpu_processes to see which pod is on a GPU. Every tool is \
             read-only."
                .to_owned(),
        ),
    }
}

/// Starts the GPU backend. NVML start-up blocks, so it runs on a blocking thread.
pub async fn backend(source: &GpuSource) -> Result<Arc<dyn GpuBackend>> {
    match source {
        GpuSource::Mock(config) => Ok(Arc::new(MockBackend::new(config.clone())?)),
        GpuSource::Nvml(options) => {
            let options = options.clone();
            let nvml = tokio::task::spawn_blocking(move || NvmlBackend::init(options))
                .await
                .map_err(|_| Error::Startup)??;
            Ok(Arc::new(nvml))
        }
    }
}

/// Wraps `backend` so concurrent calls share one GPU read and reuse it for `max_age`
/// (unwrapped when `max_age` is zero).
pub fn shared_snapshots(backend: Arc<dyn GpuBackend>, max_age: Duration) -> Arc<dyn GpuBackend> {
    if max_age.is_zero() {
        backend
    } else {
        Arc::new(CoalescingBackend::new(backend, max_age))
    }
}

fn catalog(config: &Config, backend: Arc<dyn GpuBackend>) -> AgentCatalog {
    AgentCatalog::new(
        backend,
        AgentCatalogConfig {
            node_name: config.node_name.clone(),
            kmsg_path: config.kmsg_path.clone(),
            pod_resources_socket: config.pod_resources_socket.clone(),
            host_proc: config.host_proc.clone(),
            toolsets: config.toolsets.clone(),
            ..AgentCatalogConfig::default()
        },
    )
}

/// The MCP server over the agent's tool catalog.
pub fn mcp_server(config: &Config, backend: Arc<dyn GpuBackend>) -> McpServer {
    // What clients that asked for log messages hear about the node's GPUs and Xid sources.
    let log_sink = LogSink::new();
    let catalog = catalog(config, backend)
        .with_log(ThrottledLog::new(log_sink.clone(), DEFAULT_LOG_INTERVAL));
    let policy = SessionPolicy {
        strict_lifecycle: config.strict_lifecycle,
        ..SessionPolicy::default()
    };
    McpServer::with_log_sink(server_info(), Arc::new(catalog), policy, log_sink)
}

/// Runs the agent until its input ends (stdio) or `shutdown` is cancelled, then lets in-flight
/// requests finish within the grace period.
/// With [`Config::check`], prints the check on stdout and returns instead.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let backend = shared_snapshots(backend(&config.gpu).await?, config.snapshot_max_age);
    if let Some(Check::Health) = config.check {
        let (text, verdict) = gpu_mcp_tools::terminal::check_health(&catalog(&config, backend))
            .await
            .map_err(Error::Check)?;
        let mut out = tokio::io::stdout();
        out.write_all(text.as_bytes())
            .await
            .map_err(Error::Output)?;
        out.flush().await.map_err(Error::Output)?;
        return match verdict {
            Verdict::Healthy => Ok(()),
            other => Err(Error::Verdict(other)),
        };
    }
    tracing::info!(
        node = %config.node_name,
        backend = ?backend.kind(),
        transport = ?config.transport,
        "gpu-mcp-agent starting"
    );
    let sources = sources::Sources {
        pod_resources_socket: config.pod_resources_socket.clone(),
        host_proc: config.host_proc.clone(),
        deadline: AgentCatalogConfig::default().attribution_timeout,
        simulated: backend.kind() == gpu_mcp_model::BackendKind::Mock,
    };
    let server = mcp_server(&config, backend);
    match config.transport {
        TransportMode::Stdio => {
            let (stdin, stdout) = (tokio::io::stdin(), tokio::io::stdout());
            gpu_mcp_transport::serve_stdio_with(config.stdio, server, stdin, stdout, shutdown)
                .await?;
        }
        TransportMode::Http => {
            // The long-running agent checks its attribution sources once, beside serving (a
            // one-shot stdio agent, started per call by the gateway's exec routing, does not).
            let metrics = Metrics::new();
            let gauges = sources::SourceGauges::register(&metrics);
            let check = tokio::spawn(async move { sources.check(Some(&gauges)).await });
            let http = HttpServer::bind(config.http, server, Health::new(true), metrics).await?;
            let served = http.serve(shutdown).await;
            check.abort();
            served?;
        }
    }
    tracing::info!("gpu-mcp-agent stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mock_default_serves_the_gpu_tools() {
        let config = Config::new("node-a");
        let backend = backend(&config.gpu).await.unwrap();
        let server = mcp_server(&config, backend);
        let names: Vec<String> = server
            .catalog()
            .tools()
            .into_iter()
            .map(|t| t.name)
            .collect();
        for tool in [
            "get_gpu_inventory",
            "get_gpu_health",
            "analyze_xid_errors",
            "get_nvlink_topology",
        ] {
            assert!(
                names.iter().any(|n| n == tool),
                "{tool} missing from {names:?}"
            );
        }
        assert_eq!(server.info().name, SERVER_NAME);
    }

    #[tokio::test]
    async fn snapshots_are_shared_unless_max_age_is_zero() {
        let config = Config::new("node-c");
        let mock = backend(&config.gpu).await.unwrap();
        let shared = shared_snapshots(mock.clone(), Duration::from_secs(1));
        assert!(format!("{:?}", mcp_server(&config, shared.clone())).contains("McpServer"));
        assert_eq!(
            shared.snapshot().await.unwrap(),
            mock.snapshot().await.unwrap()
        );
        assert!(Arc::ptr_eq(
            &shared_snapshots(mock.clone(), Duration::ZERO),
            &mock
        ));
        assert!(!Arc::ptr_eq(&shared, &mock));
    }

    #[tokio::test]
    async fn missing_nvml_is_a_gpu_error() {
        let source = GpuSource::Nvml(NvmlOptions {
            library_path: Some("/nonexistent/libnvidia-ml.so.1".into()),
            ..NvmlOptions::default()
        });
        let Err(err) = backend(&source).await else {
            panic!("NVML loaded from a path that does not exist");
        };
        assert_eq!(gpu_mcp_cli::ExitStatus::exit_code(&err), 69);
        assert!(err.to_string().contains("could not be loaded"), "{err}");
    }

    #[tokio::test]
    async fn the_health_check_exits_with_the_verdict() {
        let mut config = Config::new("node-d");
        config.check = Some(Check::Health);
        run(config.clone(), CancellationToken::new()).await.unwrap();
        config.gpu = GpuSource::Mock(MockConfig {
            scenario: gpu_mcp_backend::Scenario::Xid79,
            ..MockConfig::default()
        });
        let err = run(config, CancellationToken::new()).await.unwrap_err();
        assert!(matches!(err, Error::Verdict(Verdict::Critical)), "{err}");
        assert_eq!(gpu_mcp_cli::ExitStatus::exit_code(&err), 4);
    }

    #[tokio::test]
    async fn http_run_stops_on_shutdown() {
        let mut config = Config::new("node-b");
        config.transport = TransportMode::Http;
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(config, shutdown.clone()));
        shutdown.cancel();
        task.await.unwrap().unwrap();
    }
}
