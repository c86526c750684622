//! Command-line flags; each can also come from a `GPU_MCP_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use gpu_mcp_gateway::{Agents, Config, Routing, TransportMode, parse_duration};

/// One MCP endpoint for the GPUs of every node of a Kubernetes cluster.
#[derive(Debug, Parser)]
#[command(name = "gpu-mcp-gateway", version, about)]
pub(crate) struct Cli {
    /// MCP transport: `http` (Streamable HTTP) or `stdio`.
    #[arg(long, env = "GPU_MCP_TRANSPORT", default_value = "http")]
    transport: TransportMode,
    /// Listen address [default: 0.0.0.0:8080 in a cluster, else 127.0.0.1:8080].
    #[arg(long, env = "GPU_MCP_LISTEN")]
    listen: Option<SocketAddr>,
    /// Listen port (replaces the port of --listen).
    #[arg(long, env = "GPU_MCP_PORT")]
    port: Option<u16>,
    /// Static agents instead of discovery: `node=url,...`, e.g.
    /// `gpu-node-1=http://127.0.0.1:9001/mcp`.
    #[arg(long, env = "GPU_MCP_AGENTS")]
    agents: Option<String>,
    /// Namespace of the agent pods.
    #[arg(long, env = "GPU_MCP_NAMESPACE", default_value = gpu_mcp_k8s::DEFAULT_NAMESPACE)]
    namespace: String,
    /// Label selector of the agent pods.
    #[arg(long, env = "GPU_MCP_SELECTOR", default_value = gpu_mcp_k8s::DEFAULT_LABEL_SELECTOR)]
    selector: String,
    /// Kubeconfig file [default: in-cluster, then $KUBECONFIG or ~/.kube/config].
    #[arg(long, env = "GPU_MCP_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, env = "GPU_MCP_CONTEXT")]
    context: Option<String>,
    /// How to reach agents: `http` (pod IP) or `exec` (pods/exec).
    #[arg(long, env = "GPU_MCP_ROUTING", default_value = "http")]
    routing: Routing,
    /// Agent MCP port, when the pod names none.
    #[arg(long, env = "GPU_MCP_AGENT_PORT", default_value_t = gpu_mcp_k8s::DEFAULT_AGENT_PORT)]
    agent_port: u16,
    /// Agent container (exec routing, MCP port lookup).
    #[arg(long, env = "GPU_MCP_AGENT_CONTAINER", default_value = gpu_mcp_k8s::DEFAULT_AGENT_CONTAINER)]
    agent_container: String,
    /// Command run in the agent container for exec routing (split on whitespace).
    #[arg(long, env = "GPU_MCP_EXEC_COMMAND")]
    exec_command: Option<String>,
    /// Most agent requests in flight during one fan-out.
    #[arg(long, env = "GPU_MCP_CONCURRENCY", default_value_t = 32)]
    concurrency: usize,
    /// Deadline of one agent's answer (e.g. 10s, 500ms).
    #[arg(long, env = "GPU_MCP_NODE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    node_timeout: std::time::Duration,
    /// File with the bearer token clients must send (also sent to agents).
    #[arg(long, env = "GPU_MCP_AUTH_TOKEN_FILE", conflicts_with = "auth_token")]
    auth_token_file: Option<PathBuf>,
    /// The bearer token itself (prefer --auth-token-file: arguments are visible to other users).
    #[arg(long, env = "GPU_MCP_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// File with the bearer token sent to agents [default: --auth-token-file].
    #[arg(long, env = "GPU_MCP_AGENT_TOKEN_FILE")]
    agent_token_file: Option<PathBuf>,
    /// PEM certificate chain for HTTPS (with --tls-key).
    #[arg(long, env = "GPU_MCP_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS (with --tls-cert).
    #[arg(long, env = "GPU_MCP_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Browser origins allowed on /mcp (comma-separated; `*` for any).
    #[arg(long, env = "GPU_MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// Host header values allowed (comma-separated; empty for any).
    #[arg(long, env = "GPU_MCP_ALLOWED_HOSTS", value_delimiter = ',')]
    allowed_hosts: Vec<String>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "GPU_MCP_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub(crate) log_format: String,
    /// Log filter (a level such as `info`, or `tracing` directives).
    #[arg(long, env = "GPU_MCP_LOG_LEVEL", default_value = "info")]
    pub(crate) log_level: String,
}

impl Cli {
    /// The gateway configuration; `in_cluster` picks the default listen address.
    pub(crate) fn into_config(self, in_cluster: bool) -> Config {
        let default_ip = if in_cluster {
            [0, 0, 0, 0]
        } else {
            [127, 0, 0, 1]
        };
        let mut listen = self
            .listen
            .unwrap_or_else(|| SocketAddr::from((default_ip, 8080)));
        if let Some(port) = self.port {
            listen.set_port(port);
        }
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
        let defaults = Config::default();
        Config {
            transport: self.transport,
            listen,
            agents,
            routing: self.routing,
            agent_port: self.agent_port,
            concurrency: self.concurrency,
            node_timeout: self.node_timeout,
            exec_command: self.exec_command.map_or(defaults.exec_command, |c| {
                c.split_whitespace().map(str::to_owned).collect()
            }),
            auth_token: self.auth_token,
            auth_token_file: self.auth_token_file,
            agent_token_file: self.agent_token_file,
            tls: self.tls_cert.zip(self.tls_key),
            allowed_origins: self.allowed_origins,
            allowed_hosts: self.allowed_hosts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut argv = vec!["gpu-mcp-gateway"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().into_config(false)
    }

    #[test]
    fn defaults_follow_the_environment_kind() {
        let local = parse(&[]);
        assert_eq!(local.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        let cluster = Cli::try_parse_from(["gpu-mcp-gateway"])
            .unwrap()
            .into_config(true);
        assert_eq!(cluster.listen, SocketAddr::from(([0, 0, 0, 0], 8080)));
        assert!(matches!(
            cluster.agents,
            Agents::Cluster { ref namespace, .. } if namespace == "gpu-diagnostics"
        ));
        assert_eq!(cluster.concurrency, 32);
        assert_eq!(cluster.node_timeout, std::time::Duration::from_secs(10));
    }

    #[test]
    fn port_replaces_the_listen_port() {
        assert_eq!(
            parse(&["--port", "9090"]).listen,
            SocketAddr::from(([127, 0, 0, 1], 9090))
        );
        assert_eq!(
            parse(&["--listen", "127.0.0.2:1", "--port", "9090"]).listen,
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
        assert_eq!(c.node_timeout, std::time::Duration::from_millis(750));
        let c = parse(&["--agents", "a=http://127.0.0.1:1/mcp"]);
        assert_eq!(c.agents, Agents::Static("a=http://127.0.0.1:1/mcp".into()));
        assert!(Cli::try_parse_from(["gpu-mcp-gateway", "--routing", "carrier-pigeon"]).is_err());
        assert!(Cli::try_parse_from(["gpu-mcp-gateway", "--tls-cert", "c.pem"]).is_err());
    }
}
