//! Command line and environment: every flag can also be set through a `GPU_MCP_AGENT_*`
//! variable.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use gpu_mcp_agent::{Check, Config, DEFAULT_REQUEST_TIMEOUT, GpuSource, TransportMode};
use gpu_mcp_backend::{MockConfig, NvmlOptions, Scenario};
use gpu_mcp_cli::{ServeFlags, Transport, parse_duration, read_file};
use gpu_mcp_model::gpu_tool_definitions;
use gpu_mcp_model::toolsets::Toolsets;

const EXAMPLES: &str = "\
Examples:
  # this node's GPU health as a table, for a person (also: kubectl exec <agent pod> -- /gpu-mcp-agent health)
  gpu-mcp-agent health --mock-scenario xid-79

  # stdio on the mock fleet (what an MCP client configuration runs)
  gpu-mcp-agent

  # Streamable HTTP on loopback, a mock node with a GPU that fell off the bus
  gpu-mcp-agent --transport http --mock-scenario xid-79

  # a DaemonSet pod on a real GPU node
  gpu-mcp-agent --transport http --listen 0.0.0.0:8080 --nvml-mode real --kmsg-path /dev/kmsg

  # the same, configured through the environment (as the Helm chart does)
  GPU_MCP_AGENT_NVML_MODE=real GPU_MCP_AGENT_KMSG_PATH=/dev/kmsg gpu-mcp-agent --transport http

  # in a container with the host's /proc at /host/proc and the kubelet's pod-resources directory
  gpu-mcp-agent --transport http --nvml-mode real --host-proc /host/proc

  # one-shot call, as the gateway's exec routing does
  echo '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"get_gpu_health\"}}' | gpu-mcp-agent

Exit codes: 0 done, 64 bad flags or files, 69 NVML unavailable (real mode), 1 other failures;
`health`: 0 healthy, 2 warning, 3 degraded, 4 critical.

Mock scenarios: healthy, thermal-slowdown, power-brake, uncorrectable-ecc, row-remap-failure,
xid-79, xid-ecc-family, nvlink-crc-errors, mig-enabled, pcie-degraded, gsp-timeout,
application-xid, recovery-action, nvlink-degraded, fabric-in-progress, fabric-not-started,
nvswitch-fatal-sxid.";

/// Serves this node's NVIDIA GPU diagnostics over MCP (stdio or Streamable HTTP).
///
/// Logs go to stderr; on stdio, stdout carries only MCP messages. Every flag can also be set
/// through an environment variable, `GPU_MCP_AGENT_` and the flag's name (`--nvml-mode` is
/// `GPU_MCP_AGENT_NVML_MODE`); a flag on the command line wins.
#[derive(Debug, Parser)]
#[command(name = "gpu-mcp-agent", version, after_help = EXAMPLES, max_term_width = 100)]
pub(crate) struct Cli {
    /// How MCP clients connect.
    #[arg(long, value_enum, default_value_t = Transport::Stdio)]
    transport: Transport,
    /// Where GPU facts come from: a simulated fleet, or the NVIDIA driver (libnvidia-ml.so.1).
    #[arg(long, value_enum, default_value_t = NvmlMode::Mock, help_heading = "GPUs", global = true)]
    nvml_mode: NvmlMode,
    /// Path of libnvidia-ml.so.1 (real mode); the dynamic loader's search path by default.
    #[arg(long, value_name = "PATH", help_heading = "GPUs", global = true)]
    nvml_library_path: Option<PathBuf>,
    /// Number of simulated GPUs (mock mode).
    #[arg(
        long,
        default_value_t = 8,
        value_name = "N",
        help_heading = "GPUs",
        global = true
    )]
    mock_gpus: usize,
    /// Failure injected on the first simulated GPU (mock mode; the names are listed below).
    #[arg(
        long,
        default_value = "healthy",
        value_name = "NAME",
        help_heading = "GPUs",
        global = true
    )]
    mock_scenario: Scenario,
    /// JSON file describing the simulated node (overrides --mock-gpus and --mock-scenario).
    #[arg(long, value_name = "FILE", help_heading = "GPUs", global = true)]
    mock_profile: Option<PathBuf>,
    /// Kubernetes node name reported by the tools [default: $NODE_NAME, then the hostname].
    #[arg(long, value_name = "NAME", help_heading = "GPUs", global = true)]
    node_name: Option<String>,
    /// Kernel log read for Xid lines, e.g. /dev/kmsg.
    #[arg(long, value_name = "PATH", help_heading = "GPUs", global = true)]
    kmsg_path: Option<PathBuf>,
    /// How long one read of the GPUs is reused by later calls (e.g. 500ms, 1s, 2s; 0 reads the
    /// GPUs on every call). Concurrent calls always share one read while it is younger than this,
    /// which keeps many polling clients from multiplying NVML calls; identical calls within it
    /// also share one computed answer.
    #[arg(
        long,
        default_value = "1s",
        value_name = "DURATION",
        value_parser = parse_duration,
        help_heading = "GPUs"
    )]
    snapshot_max_age: Duration,
    /// The kubelet's pod-resources socket, read to say which pod holds which GPU. A socket that
    /// is not there is reported as not configured, not as an error; an empty value turns this
    /// source off.
    #[arg(
        long,
        default_value = gpu_mcp_tools::DEFAULT_POD_RESOURCES_SOCKET,
        value_name = "PATH",
        help_heading = "Pod attribution",
        global = true
    )]
    pod_resources_socket: String,
    /// The host's /proc as mounted in the agent's container (e.g. /host/proc), read for each GPU
    /// process's name and cgroup (its pod UID and container id); an empty value turns this
    /// source off.
    #[arg(
        long,
        default_value = "/proc",
        value_name = "PATH",
        help_heading = "Pod attribution",
        global = true
    )]
    host_proc: String,
    /// Toolsets served, comma-separated: inventory, health (health and Xid errors), processes,
    /// topology, or all. The tools of the others are unknown tools, and the prompts and
    /// resources that need them are not offered.
    #[arg(long, default_value = "all", value_name = "LIST", value_parser = parse_toolsets)]
    toolsets: Toolsets,
    #[command(flatten)]
    pub(crate) serve: ServeFlags,
    /// Print a check for a person and exit, instead of serving MCP.
    #[command(subcommand)]
    check: Option<CheckCommand>,
}

/// Reads `--toolsets`.
fn parse_toolsets(list: &str) -> Result<Toolsets, String> {
    Toolsets::parse(list).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, clap::Subcommand)]
enum CheckCommand {
    /// Print this node's GPU health (one row per GPU, then each finding with its action) and
    /// exit 0 healthy, 2 warning, 3 degraded or 4 critical.
    Health,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum NvmlMode {
    /// The simulated fleet (no driver needed).
    Mock,
    /// The NVIDIA driver through libnvidia-ml.so.1.
    Real,
}

/// The agent's default listen address (loopback).
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

impl Cli {
    /// Builds the agent's configuration, reading the files the flags name.
    pub(crate) fn into_config(self) -> Result<Config, gpu_mcp_cli::Error> {
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
                        let text =
                            String::from_utf8(read_file("mock profile", p)?).map_err(|_| {
                                gpu_mcp_cli::Error::NotUtf8 {
                                    what: "mock profile",
                                    path: p.clone(),
                                }
                            })?;
                        MockConfig::from_profile_str(&text).map_err(|e| {
                            gpu_mcp_cli::Error::Config(format!("{}: {e}", p.display()))
                        })?
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
        let path = |p: String| (!p.is_empty()).then(|| PathBuf::from(p));
        config.pod_resources_socket = path(self.pod_resources_socket);
        config.host_proc = path(self.host_proc);
        config.strict_lifecycle = self.serve.sessions.strict_lifecycle;
        config.snapshot_max_age = self.snapshot_max_age;
        if !gpu_tool_definitions()
            .iter()
            .any(|t| self.toolsets.enables(&t.name))
        {
            return Err(gpu_mcp_cli::Error::Config(format!(
                "--toolsets {}: the agent has no tool in these toolsets (its tools are in inventory and health)",
                self.toolsets
            )));
        }
        config.toolsets = self.toolsets;
        config.check = self.check.map(|CheckCommand::Health| Check::Health);
        let token = self.serve.auth.token()?;
        self.serve.apply(
            &mut config.http,
            &mut config.stdio,
            DEFAULT_LISTEN,
            DEFAULT_REQUEST_TIMEOUT,
            token,
        )?;
        config.http.git_sha = option_env!("GPU_MCP_GIT_SHA").map(str::to_owned);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let mut argv = vec!["gpu-mcp-agent"];
        argv.extend_from_slice(args);
        gpu_mcp_cli::parse_from(gpu_mcp_cli::AGENT_ENV_PREFIX, argv).unwrap()
    }

    #[test]
    fn health_is_a_check_and_takes_the_gpu_flags_after_it() {
        let config = parse(&["health", "--mock-scenario", "xid-79"])
            .into_config()
            .unwrap();
        assert_eq!(config.check, Some(Check::Health));
        let GpuSource::Mock(mock) = &config.gpu else {
            panic!("not the mock fleet");
        };
        assert_eq!(mock.scenario, Scenario::Xid79);
        assert_eq!(parse(&[]).into_config().unwrap().check, None);
    }

    #[test]
    fn toolsets_reach_the_config_and_need_an_agent_tool() {
        assert!(parse(&[]).into_config().unwrap().toolsets.is_all());
        let health = parse(&["--toolsets", "health"]).into_config().unwrap();
        assert_eq!(health.toolsets.to_string(), "health");
        let e = parse(&["--toolsets", "cluster"]).into_config().unwrap_err();
        assert!(e.to_string().contains("no tool in these toolsets"), "{e}");
        let bad = gpu_mcp_cli::parse_from::<Cli, _, _>(
            gpu_mcp_cli::AGENT_ENV_PREFIX,
            ["gpu-mcp-agent", "--toolsets", "nope"],
        );
        assert!(bad.unwrap_err().to_string().contains("unknown toolset"));
    }

    #[test]
    fn snapshot_max_age_flag_reaches_the_config() {
        let cli = parse(&["--snapshot-max-age", "250ms"]);
        let config = cli.into_config().unwrap();
        assert_eq!(config.snapshot_max_age, Duration::from_millis(250));
        let cli = parse(&[]);
        assert_eq!(
            cli.into_config().unwrap().snapshot_max_age,
            gpu_mcp_agent::DEFAULT_SNAPSHOT_MAX_AGE
        );
    }

    #[test]
    fn attribution_sources_default_to_the_kubelet_and_proc_and_take_flags() {
        let config = parse(&[]).into_config().unwrap();
        assert_eq!(
            config.pod_resources_socket.as_deref(),
            Some(std::path::Path::new(
                "/var/lib/kubelet/pod-resources/kubelet.sock"
            ))
        );
        assert_eq!(
            config.host_proc.as_deref(),
            Some(std::path::Path::new("/proc"))
        );
        let config = parse(&[
            "--host-proc",
            "/host/proc",
            "--pod-resources-socket",
            "/run/k.sock",
        ])
        .into_config()
        .unwrap();
        assert_eq!(
            config.host_proc.as_deref(),
            Some(std::path::Path::new("/host/proc"))
        );
        assert_eq!(
            config.pod_resources_socket.as_deref(),
            Some(std::path::Path::new("/run/k.sock"))
        );
        let off = parse(&["--host-proc", "", "--pod-resources-socket="])
            .into_config()
            .unwrap();
        assert_eq!((off.host_proc, off.pod_resources_socket), (None, None));
    }

    #[test]
    fn request_timeout_bounds_stdio_and_http() {
        let config = parse(&[]).into_config().unwrap();
        assert_eq!(config.stdio.request_timeout, Some(DEFAULT_REQUEST_TIMEOUT));
        assert_eq!(config.http.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(config.http.listen, DEFAULT_LISTEN);
        let config = parse(&["--request-timeout", "5s"]).into_config().unwrap();
        assert_eq!(config.stdio.request_timeout, Some(Duration::from_secs(5)));
        assert_eq!(config.http.request_timeout, Duration::from_secs(5));
    }
}
