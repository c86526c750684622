//! Project automation: `cargo xtask <command>`.
//!
//! `test`, `docs`, `chart` and `fuzz` live here, each in its own module with an `Args` type and a `run`
//! function; `cluster`, `e2e`, `sdk-clients`, `bench` and `image` are the test bed's (`gpu-mcp-testbed`),
//! mounted here so that every task has one entry point.
//! The `tidy` tests check the workspace's conventions.

use clap::{Parser, Subcommand};
use gpu_mcp_testbed::{bench, cluster, e2e, image, sdk_clients};

mod chart;
mod docs;
mod fuzz;
mod test;
#[cfg(test)]
mod tidy;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "Project automation for k8s-gpu-mcp-server"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Render, lint and validate the Helm chart.
    Chart(chart::Args),
    /// Build and run a local Kubernetes control plane on loopback.
    Cluster(cluster::Args),
    /// Generate docs from the code (`--check` fails when they are stale).
    Docs(docs::Args),
    /// End-to-end tests against a local cluster or kind.
    E2e(e2e::Args),
    /// The agent and the gateway checked by the official Python and TypeScript MCP SDKs.
    SdkClients(sdk_clients::Args),
    /// Benchmarks of the agent and the gateway.
    Bench(bench::Args),
    /// Build the container image from this machine's binaries (`--test` also runs it).
    Image(image::Args),
    /// Run the libFuzzer targets of `fuzz/` for a time budget each (needs the nightly toolchain).
    Fuzz(fuzz::Args),
    /// Every test: cargo test, docs check, SDK clients, chart checks, local-cluster end-to-end.
    Test(test::Args),
}

fn main() -> anyhow::Result<()> {
    dispatch(Cli::parse().command)
}

/// Runs one subcommand (also used by `test` to run the others in-process).
fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Chart(args) => chart::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Docs(args) => docs::run(args),
        Command::E2e(args) => e2e::run(args),
        Command::SdkClients(args) => sdk_clients::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Image(args) => image::run(args),
        Command::Fuzz(args) => fuzz::run(args),
        Command::Test(args) => test::run(args),
    }
}
