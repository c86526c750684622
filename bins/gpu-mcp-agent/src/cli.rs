//! Command line and environment: every flag can also be set through a `GPU_MCP_*` variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use gpu_mcp_agent::{Config, GpuSource, TransportMode};
use gpu_mcp_backend::{MockConfig, NvmlOptions, Scenario};
use gpu_mcp_transport::{SessionMode, TlsConfig};

const EXAMPLES: &str = "\
Examples:
  # stdio on the mock fleet (what an MCP client configuration runs)
  gpu-mcp-agent

  # Streamable HTTP on loopback, a mock node with a GPU that fell off the bus
  gpu-mcp-agent --transport http --mock-scenario xid-79

  # a DaemonSet pod on a real GPU node
  gpu-mcp-agent --transport http --listen 0.0.0.0:8080 --nvml-mode real --kmsg-path /dev/kmsg

  # one-shot call, as the gateway's exec routing does
  echo '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"get_gpu_health\"}}' | gpu-mcp-agent

Mock scenarios: healthy, thermal-slowdown, power-brake, uncorrectable-ecc, row-remap-failure,
xid-79, xid-ecc-family, nvlink-crc-errors, mig-enabled, pcie-degraded, gsp-timeout,
application-xid, recovery-action.";

/// Serves this node's NVIDIA GPU diagnostics over MCP (stdio or Streamable HTTP).
///
/// Logs go to stderr; on stdio, stdout carries only MCP messages.
#[derive(Debug, Parser)]
#[command(name = "gpu-mcp-agent", version, after_help = EXAMPLES, max_term_width = 100)]
pub(crate) struct Cli {
    /// How MCP clients connect.
    #[arg(long, env = "GPU_MCP_TRANSPORT", value_enum, default_value_t = Transport::Stdio)]
    transport: Transport,
    /// Address of the HTTP listener (loopback by default; use 0.0.0.0:PORT in a pod).
    #[arg(long, env = "GPU_MCP_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where GPU facts come from: a simulated fleet, or the NVIDIA driver (libnvidia-ml.so.1).
    #[arg(long, env = "GPU_MCP_NVML_MODE", value_enum, default_value_t = NvmlMode::Mock)]
    nvml_mode: NvmlMode,
    /// Path of libnvidia-ml.so.1 (real mode); the dynamic loader's search path by default.
    #[arg(long, env = "GPU_MCP_NVML_LIBRARY_PATH", value_name = "PATH")]
    nvml_library_path: Option<PathBuf>,
    /// Number of simulated GPUs (mock mode).
    #[arg(long, env = "GPU_MCP_MOCK_GPUS", default_value_t = 8, value_name = "N")]
    mock_gpus: usize,
    /// Failure injected on the first simulated GPU (mock mode).
    #[arg(
        long,
        env = "GPU_MCP_MOCK_SCENARIO",
        default_value = "healthy",
        value_name = "NAME"
    )]
    mock_scenario: Scenario,
    /// JSON file describing the simulated node (overrides --mock-gpus and --mock-scenario).
    #[arg(long, env = "GPU_MCP_MOCK_PROFILE", value_name = "FILE")]
    mock_profile: Option<PathBuf>,
    /// Kubernetes node name reported by the tools [default: $NODE_NAME, then the hostname].
    #[arg(long, env = "GPU_MCP_NODE_NAME")]
    node_name: Option<String>,
    /// Kernel log read for Xid lines, e.g. /dev/kmsg.
    #[arg(long, env = "GPU_MCP_KMSG_PATH", value_name = "PATH")]
    kmsg_path: Option<PathBuf>,
    /// Browser origins allowed on /mcp, comma-separated (`*` for any) [default: localhost only].
    #[arg(
        long,
        env = "GPU_MCP_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGINS"
    )]
    allowed_origins: Vec<String>,
    /// Host names the Host header of /mcp requests may carry, comma-separated [default: any].
    #[arg(
        long,
        env = "GPU_MCP_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_name = "HOSTS"
    )]
    allowed_hosts: Vec<String>,
    /// File holding the bearer token required on /mcp.
    #[arg(
        long,
        env = "GPU_MCP_AUTH_TOKEN_FILE",
        value_name = "FILE",
        conflicts_with = "auth_token"
    )]
    auth_token_file: Option<PathBuf>,
    /// Bearer token required on /mcp (prefer the environment variable or --auth-token-file).
    #[arg(
        long,
        env = "GPU_MCP_AUTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    auth_token: Option<String>,
    /// PEM certificate chain: serve HTTPS.
    #[arg(
        long,
        env = "GPU_MCP_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(
        long,
        env = "GPU_MCP_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// Largest accepted HTTP request body.
    #[arg(long, env = "GPU_MCP_MAX_BODY_BYTES", default_value_t = gpu_mcp_transport::DEFAULT_MAX_BODY_BYTES, value_name = "BYTES")]
    max_body_bytes: usize,
    /// Mcp-Session-Id handling over HTTP.
    #[arg(long, env = "GPU_MCP_HTTP_SESSIONS", value_enum, default_value_t = Sessions::Optional)]
    http_sessions: Sessions,
    /// How long one read of the GPUs is reused by later calls (e.g. 500ms, 1s, 2s; 0 reads the
    /// GPUs on every call). Concurrent calls always share one read while it is younger than this,
    /// which keeps many polling clients from multiplying NVML calls.
    #[arg(
        long,
        env = "GPU_MCP_SNAPSHOT_MAX_AGE",
        default_value = "1s",
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    snapshot_max_age: Duration,
    /// Refuse requests sent before `initialize` (by default one-shot calls are served).
    #[arg(long, env = "GPU_MCP_STRICT_LIFECYCLE")]
    strict_lifecycle: bool,
    /// Log line format (always on stderr).
    #[arg(long, env = "GPU_MCP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(
        long,
        env = "GPU_MCP_LOG_LEVEL",
        default_value = "info",
        value_name = "FILTER"
    )]
    pub(crate) log_level: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Transport {
    Stdio,
    Http,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum NvmlMode {
    Mock,
    Real,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Sessions {
    Optional,
    Required,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Json,
    Text,
}

/// A duration as `<number><unit>` with unit `ms`, `s` or `m`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|n| Duration::try_from_secs_f64(n * scale).ok())
        .ok_or_else(|| format!("`{text}` is not a duration like 500ms, 1s, 2m or 0"))
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

impl Cli {
    /// Builds the agent's configuration, reading the files the flags name.
    pub(crate) fn into_config(self) -> Result<Config, String> {
        let node_name = self
            .node_name
            .or_else(|| std::env::var("NODE_NAME").ok().filter(|n| !n.is_empty()))
            .or_else(|| hostname::get().ok().and_then(|h| h.into_string().ok()))
            .unwrap_or_else(|| "localhost".to_owned());
        let mut config = Config::new(node_name.clone());
        config.transport = match self.transport {
            Transport::Stdio => TransportMode::Stdio,
            Transport::Http => TransportMode::Http,
        };
        config.gpu = match self.nvml_mode {
            NvmlMode::Real => GpuSource::Nvml(NvmlOptions {
                library_path: self.nvml_library_path,
                ..NvmlOptions::default()
            }),
            NvmlMode::Mock => {
                let mut mock = match &self.mock_profile {
                    Some(p) => {
                        let text = String::from_utf8(read(p, "mock profile")?).map_err(|_| {
                            format!("the mock profile {} is not UTF-8", p.display())
                        })?;
                        MockConfig::from_profile_str(&text)
                            .map_err(|e| format!("{}: {e}", p.display()))?
                    }
                    None => MockConfig {
                        gpus: self.mock_gpus,
                        scenario: self.mock_scenario,
                        ..MockConfig::default()
                    },
                };
                mock.node_name = node_name;
                GpuSource::Mock(mock)
            }
        };
        config.kmsg_path = self.kmsg_path;
        config.strict_lifecycle = self.strict_lifecycle;
        config.snapshot_max_age = self.snapshot_max_age;
        let http = &mut config.http;
        http.listen = self.listen;
        http.allowed_origins = self
            .allowed_origins
            .into_iter()
            .filter(|o| !o.trim().is_empty())
            .collect();
        http.allowed_hosts = self
            .allowed_hosts
            .into_iter()
            .filter(|h| !h.trim().is_empty())
            .collect();
        http.max_body_bytes = self.max_body_bytes;
        http.sessions = match self.http_sessions {
            Sessions::Optional => SessionMode::Optional,
            Sessions::Required => SessionMode::Required,
            Sessions::Disabled => SessionMode::Disabled,
        };
        http.bearer_token = match (self.auth_token_file, self.auth_token) {
            (Some(file), _) => {
                let token = String::from_utf8(read(&file, "auth token file")?)
                    .map_err(|_| format!("the auth token file {} is not UTF-8", file.display()))?;
                Some(token.trim().to_owned())
            }
            (None, token) => token.map(|t| t.trim().to_owned()),
        };
        if http.bearer_token.as_deref() == Some("") {
            return Err("the auth token is empty".to_owned());
        }
        if let (Some(cert), Some(key)) = (self.tls_cert, self.tls_key) {
            http.tls = Some(TlsConfig::Pem {
                cert_chain: read(&cert, "TLS certificate")?,
                private_key: read(&key, "TLS key")?,
            });
        }
        http.git_sha = option_env!("GPU_MCP_GIT_SHA").map(str::to_owned);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        for bad in ["", "fast", "-1s", "1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn snapshot_max_age_flag_reaches_the_config() {
        let cli = Cli::try_parse_from(["gpu-mcp-agent", "--snapshot-max-age", "250ms"]).unwrap();
        let config = cli.into_config().unwrap();
        assert_eq!(config.snapshot_max_age, Duration::from_millis(250));
        let cli = Cli::try_parse_from(["gpu-mcp-agent"]).unwrap();
        assert_eq!(
            cli.into_config().unwrap().snapshot_max_age,
            gpu_mcp_agent::DEFAULT_SNAPSHOT_MAX_AGE
        );
    }
}
