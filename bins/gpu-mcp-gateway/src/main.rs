//! `gpu-mcp-gateway`: flags, logging, signals and exit statuses around [`gpu_mcp_gateway::run`].

mod cli;

use std::process::ExitCode;

use gpu_mcp_cli::{GATEWAY_ENV_PREFIX, Program};

fn main() -> ExitCode {
    gpu_mcp_cli::main(
        &Program {
            name: "gpu-mcp-gateway",
            env_prefix: GATEWAY_ENV_PREFIX,
            worker_threads: None,
        },
        |cli: &cli::Cli| &cli.serve.log,
        |cli: cli::Cli| {
            // One TLS crypto provider for the process (the Kubernetes client's HTTPS and
            // WebSockets): ring, as everywhere in the workspace. Explicit, because a build that
            // links a second provider leaves rustls unable to pick one.
            let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
            let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
            cli.into_config(in_cluster)
        },
        gpu_mcp_gateway::run,
    )
}
