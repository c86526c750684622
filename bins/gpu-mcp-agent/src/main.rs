//! `gpu-mcp-agent`: parse flags, set up logging, run the agent, map errors to exit codes.

mod cli;

use std::process::ExitCode;

use gpu_mcp_cli::{AGENT_ENV_PREFIX, Program};

fn main() -> ExitCode {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    gpu_mcp_cli::main(
        &Program {
            name: "gpu-mcp-agent",
            env_prefix: AGENT_ENV_PREFIX,
            worker_threads: Some(workers),
        },
        |cli: &cli::Cli| &cli.serve.log,
        cli::Cli::into_config,
        gpu_mcp_agent::run,
    )
}
