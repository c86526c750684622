//! `gpu-mcp-gateway`: flags, logging, signals and exit statuses around [`gpu_mcp_gateway::run`].

mod cli;

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// `EX_USAGE`: the command was used incorrectly (bad flag, unreadable file, bad config).
const EX_USAGE: u8 = 64;

fn init_tracing(format: &str, filter: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter).map_err(|e| format!("--log-level: {e}"))?;
    // Logs go to stderr: in stdio mode stdout carries the protocol.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| e.to_string())
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
async fn wait_for_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.cancel();
}

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EX_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Err(e) = init_tracing(&cli.log_format, &cli.log_level) {
        eprintln!("gpu-mcp-gateway: {e}");
        return ExitCode::from(EX_USAGE);
    }
    // One TLS crypto provider for the process (the Kubernetes client's HTTPS and WebSockets):
    // ring, as everywhere in the workspace. Explicit, because a build that links a second
    // provider leaves rustls unable to pick one.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let config = cli.into_config(in_cluster);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gpu-mcp-gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(wait_for_signal(shutdown.clone()));
        gpu_mcp_gateway::run(config, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("gpu-mcp-gateway: {e}");
            if e.is_config() {
                ExitCode::from(EX_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
