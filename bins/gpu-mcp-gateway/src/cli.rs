//! Command line and environment: every flag can also be set through a `GPU_MCP_GATEWAY_*`
//! variable.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use gpu_mcp_cli::{ServeFlags, Transport, parse_duration, read_secret};
use gpu_mcp_gateway::{Agents, Config, Routing, TransportMode, default_request_timeout};
use gpu_mcp_k8s::CircuitBreakerConfig;
use gpu_mcp_model::toolsets::Toolsets;

const EXAMPLES: &str = "\
Examples:
  # in a cluster (what the Helm chart runs): discover the agent pods, reach them by pod IP
  gpu-mcp-gateway --namespace gpu-diagnostics --auth-token-file /var/run/secrets/gpu-mcp/token

  # from a workstation, through the current kubeconfig context, on 127.0.0.1:8080
  gpu-mcp-gateway --kubeconfig ~/.kube/config --routing exec \\
    --exec-command '/gpu-mcp-agent --transport stdio --nvml-mode mock'

  # fixed agents and no cluster (local development), with a circuit breaker per node
  gpu-mcp-gateway --agents gpu-node-1=http://127.0.0.1:9001/mcp,gpu-node-2=http://127.0.0.1:9002/mcp \\
    --breaker-failures 3 --breaker-cool-down 30s

  # the same, configured through the environment
  GPU_MCP_GATEWAY_AGENTS=gpu-node-1=http://127.0.0.1:9001/mcp GPU_MCP_GATEWAY_TRANSPORT=stdio gpu-mcp-gateway

Exit codes: 0 done, 64 bad flags, files or cluster configuration, 1 other failures.";

/// One MCP endpoint for the GPUs of every node of a Kubernetes cluster.
///
/// Every flag can also be set through an environment variable, `GPU_MCP_GATEWAY_` and the
/// flag's name (`--node-timeout` is `GPU_MCP_GATEWAY_NODE_TIMEOUT`); a flag on the command line
/// wins. Inside a cluster (`KUBERNETES_SERVICE_HOST` set) the HTTP listener defaults to
/// 0.0.0.0:8080 instead of 127.0.0.1:8080.
#[derive(Debug, Parser)]
#[command(name = "gpu-mcp-gateway", version, after_help = EXAMPLES, max_term_width = 100)]
pub(crate) struct Cli {
    /// How MCP clients connect.
    #[arg(long, value_enum, default_value_t = Transport::Http)]
    transport: Transport,
    /// Static agents instead of discovery: `node=url,...`, e.g.
    /// `gpu-node-1=http://127.0.0.1:9001/mcp`.
    #[arg(long, value_name = "LIST", help_heading = "Agents")]
    agents: Option<String>,
    /// Namespace of the agent pods.
    #[arg(long, default_value = gpu_mcp_k8s::DEFAULT_NAMESPACE, help_heading = "Agents")]
    namespace: String,
    /// Label selector of the agent pods.
    #[arg(long, default_value = gpu_mcp_k8s::DEFAULT_LABEL_SELECTOR, help_heading = "Agents")]
    selector: String,
    /// Kubeconfig file [default: in-cluster, then $KUBECONFIG or ~/.kube/config].
    #[arg(long, value_name = "FILE", help_heading = "Agents")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, help_heading = "Agents")]
    context: Option<String>,
    /// How to reach agents.
    #[arg(long, value_enum, default_value_t = RoutingArg::Http, help_heading = "Agents")]
    routing: RoutingArg,
    /// Agent MCP port, when the pod names none.
    #[arg(long, default_value_t = gpu_mcp_k8s::DEFAULT_AGENT_PORT, value_name = "PORT", help_heading = "Agents")]
    agent_port: u16,
    /// Agent container (exec routing, MCP port lookup).
    #[arg(long, default_value = gpu_mcp_k8s::DEFAULT_AGENT_CONTAINER, value_name = "NAME", help_heading = "Agents")]
    agent_container: String,
    /// Command run in the agent container for exec routing (split on whitespace).
    #[arg(long, value_name = "COMMAND", help_heading = "Agents")]
    exec_command: Option<String>,
    /// File with the gateway's own bearer token, sent to agents (the token clients send is never
    /// forwarded) [default: none].
    #[arg(long, value_name = "FILE", help_heading = "Agents")]
    agent_token_file: Option<PathBuf>,
    /// Serve describe_gpu_node and get_pod_gpu_allocation from watch-backed caches of the
    /// cluster's nodes and GPU pods; needs get/list/watch on nodes and list/watch on pods in
    /// every namespace (the chart grants them with gateway.clusterContext.enabled).
    #[arg(long, help_heading = "Agents")]
    cluster_context: bool,
    /// Most agent requests in flight during one fan-out.
    #[arg(long, default_value_t = 32, value_name = "N", help_heading = "Routing")]
    concurrency: usize,
    /// Deadline of one agent's answer, connecting included (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration, help_heading = "Routing")]
    node_timeout: Duration,
    /// Consecutive failures (unreachable, timed out, bad answer) after which a node is skipped
    /// for --breaker-cool-down, then tried again with one request; 0 turns the breaker off.
    #[arg(long, default_value_t = 0, value_name = "N", help_heading = "Routing")]
    breaker_failures: u32,
    /// How long a node whose breaker opened is skipped (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration, help_heading = "Routing")]
    breaker_cool_down: Duration,
    /// Toolsets served, comma-separated: inventory, health (health and Xid errors), processes,
    /// topology, cluster (list_gpu_nodes and the cluster-context tools), or all. The tools of the
    /// others are unknown tools, and the prompts and resources that need them are not offered.
    #[arg(long, default_value = "all", value_name = "LIST", value_parser = parse_toolsets)]
    toolsets: Toolsets,
    #[command(flatten)]
    pub(crate) serve: ServeFlags,
}

/// Reads `--toolsets`.
fn parse_toolsets(list: &str) -> Result<Toolsets, String> {
    Toolsets::parse(list).map_err(|e| e.to_string())
}

/// How the gateway reaches an agent.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoutingArg {
    /// POST to the agent's MCP endpoint on its pod IP (pooled connections).
    Http,
    /// Run the agent in one-shot stdio mode through pods/exec.
    Exec,
}

impl Cli {
    /// The gateway configuration, reading the files the flags name; `in_cluster` picks the
    /// default listen address.
    pub(crate) fn into_config(self, in_cluster: bool) -> Result<Config, gpu_mcp_cli::Error> {
        let default_ip = if in_cluster {
            Ipv4Addr::UNSPECIFIED
        } else {
            Ipv4Addr::LOCALHOST
        };
        let agents = match self.agents {
            Some(list) => Agents::Static(list),
            None => Agents::Cluster {
                namespace: self.namespace,
                selector: self.selector,
                kubeconfig: self.kubeconfig,
                context: self.context,
                agent_container: self.agent_container,
            },
        };
        let auth_token = self.serve.auth.token()?;
        // The gateway authenticates to agents as itself: a client's token never leaves it.
        let agent_token = self
            .agent_token_file
            .as_ref()
            .map(|path| read_secret("agent token file", path))
            .transpose()?;
        let has_tool = gpu_mcp_model::gpu_tool_definitions()
            .iter()
            .map(|t| t.name.as_str())
            .chain([gpu_mcp_model::LIST_GPU_NODES])
            .any(|t| self.toolsets.enables(t));
        if !has_tool {
            return Err(gpu_mcp_cli::Error::Config(format!(
                "--toolsets {}: the gateway has no tool in these toolsets (its tools are in inventory, health and cluster)",
                self.toolsets
            )));
        }
        let mut config = Config {
            transport: match self.transport {
                Transport::Http => TransportMode::Http,
                Transport::Stdio => TransportMode::Stdio,
            },
            strict_lifecycle: self.serve.sessions.strict_lifecycle,
            agents,
            routing: match self.routing {
                RoutingArg::Http => Routing::Http,
                RoutingArg::Exec => Routing::Exec,
            },
            agent_port: self.agent_port,
            cluster_context: self.cluster_context,
            concurrency: self.concurrency,
            node_timeout: self.node_timeout,
            circuit_breaker: (self.breaker_failures > 0).then_some(CircuitBreakerConfig {
                failure_threshold: self.breaker_failures,
                cool_down: self.breaker_cool_down,
            }),
            agent_token,
            toolsets: self.toolsets,
            ..Config::default()
        };
        if let Some(command) = self.exec_command {
            config.exec_command = command.split_whitespace().map(str::to_owned).collect();
        }
        self.serve.apply(
            &mut config.http,
            &mut config.stdio,
            SocketAddr::new(IpAddr::V4(default_ip), 8080),
            default_request_timeout(self.node_timeout),
            auth_token,
        )?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_mcp_transport::SessionMode;

    fn cli(args: &[&str]) -> Result<Cli, clap::Error> {
        let mut argv = vec!["gpu-mcp-gateway"];
        argv.extend_from_slice(args);
        gpu_mcp_cli::parse_from(gpu_mcp_cli::GATEWAY_ENV_PREFIX, argv)
    }

    fn parse(args: &[&str]) -> Config {
        cli(args).unwrap().into_config(false).unwrap()
    }

    #[test]
    fn defaults_follow_the_environment_kind() {
        let local = parse(&[]);
        assert_eq!(local.http.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        let cluster = cli(&[]).unwrap().into_config(true).unwrap();
        assert_eq!(cluster.http.listen, SocketAddr::from(([0, 0, 0, 0], 8080)));
        assert!(matches!(
            cluster.agents,
            Agents::Cluster { ref namespace, .. } if namespace == "gpu-diagnostics"
        ));
        assert_eq!(cluster.concurrency, 32);
        assert_eq!(cluster.node_timeout, Duration::from_secs(10));
        assert_eq!(cluster.circuit_breaker, None);
        assert_eq!(cluster.http.request_timeout, Duration::from_secs(60));
        assert_eq!(cluster.stdio.request_timeout, Some(Duration::from_secs(60)));
        assert_eq!(
            cluster.http.max_body_bytes,
            gpu_mcp_transport::DEFAULT_MAX_BODY_BYTES
        );
    }

    #[test]
    fn toolsets_are_a_flag_and_refuse_unknown_names() {
        assert!(parse(&[]).toolsets.is_all());
        let some = parse(&["--toolsets", "health,cluster"]);
        assert_eq!(some.toolsets.to_string(), "health,cluster");
        let e = cli(&["--toolsets", "healthy"]).unwrap_err().to_string();
        assert!(e.contains("unknown toolset"), "{e}");
        // Every toolset has a tool on the gateway (get_nvlink_topology is topology's).
        let topology = cli(&["--toolsets", "topology"]).unwrap().into_config(false);
        assert_eq!(topology.unwrap().toolsets.to_string(), "topology");
    }

    #[test]
    fn port_replaces_the_listen_port() {
        assert_eq!(
            parse(&["--port", "9090"]).http.listen,
            SocketAddr::from(([127, 0, 0, 1], 9090))
        );
        assert_eq!(
            parse(&["--listen", "127.0.0.2:1", "--port", "9090"])
                .http
                .listen,
            SocketAddr::from(([127, 0, 0, 2], 9090))
        );
    }

    #[test]
    fn routing_agents_and_exec_command() {
        let c = parse(&[
            "--routing",
            "exec",
            "--exec-command",
            "gpu-mcp-agent --transport stdio",
            "--node-timeout",
            "750ms",
        ]);
        assert_eq!(c.routing, Routing::Exec);
        assert_eq!(c.exec_command, ["gpu-mcp-agent", "--transport", "stdio"]);
        assert_eq!(c.node_timeout, Duration::from_millis(750));
        let c = parse(&["--agents", "a=http://127.0.0.1:1/mcp"]);
        assert_eq!(c.agents, Agents::Static("a=http://127.0.0.1:1/mcp".into()));
        assert!(cli(&["--routing", "carrier-pigeon"]).is_err());
        assert!(!c.cluster_context);
        assert!(parse(&["--cluster-context"]).cluster_context);
        assert!(cli(&["--tls-cert", "c.pem"]).is_err());
    }

    #[test]
    fn the_agent_flags_the_gateway_lacked() {
        let c = parse(&[
            "--max-body-bytes",
            "2048",
            "--http-sessions",
            "disabled",
            "--strict-lifecycle",
            "--node-timeout",
            "40s",
            "--breaker-failures",
            "3",
            "--breaker-cool-down",
            "1m",
        ]);
        assert_eq!(c.http.max_body_bytes, 2048);
        assert_eq!(c.http.sessions, SessionMode::Disabled);
        assert!(c.strict_lifecycle);
        assert_eq!(c.http.request_timeout, Duration::from_secs(90));
        assert_eq!(
            c.circuit_breaker,
            Some(CircuitBreakerConfig {
                failure_threshold: 3,
                cool_down: Duration::from_secs(60),
            })
        );
        let c = parse(&["--request-timeout", "5s", "--transport", "stdio"]);
        assert_eq!(c.transport, TransportMode::Stdio);
        assert_eq!(c.stdio.request_timeout, Some(Duration::from_secs(5)));
    }
}
