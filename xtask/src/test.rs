//! `cargo xtask test`: every test the project has, in the order CI runs them.
//!
//! 1. `cargo test --workspace --locked`: unit, integration and in-process end-to-end tests,
//!    including the MCP-client tests against the real agent and gateway binaries and the
//!    `tidy` tests of the workspace's conventions;
//! 2. `cargo xtask docs --check`: generated docs are current;
//! 3. `cargo xtask chart`: Helm lint and render, strict schema and policy checks, snapshots;
//! 4. `cargo xtask e2e --cluster local`: the chart installed into a real control plane on
//!    loopback, the gateway routing over HTTP and over pods/exec, and where the machine allows
//!    the project's image under the chart on a real kubelet (`--real-node off` with
//!    `--skip-image`);
//! 5. `cargo xtask sdk-clients`: the official Python and TypeScript MCP SDKs, in their default
//!    modes, against the agent and the gateway over stdio and HTTP, then the official MCP
//!    conformance suite against both over HTTP (after e2e, whose build of the agent and the
//!    gateway it reuses);
//! 6. `cargo xtask image --test`: the container image built from release binaries on a runtime
//!    base assembled here, run read-only as 65532 and checked with the Python SDK over HTTP and
//!    stdio, the gateway in it routing to the agent in it, SIGTERM ending both cleanly.

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use gpu_mcp_testbed::util::cmd;

use crate::Cli;

/// Arguments of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Leave out the stages that need the Go-built Kubernetes components (chart, e2e).
    #[arg(long)]
    skip_e2e: bool,
    /// Leave out the container image stage (it needs a Docker engine, or root to install one),
    /// and with it the e2e's real node, which runs that image.
    #[arg(long)]
    skip_image: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    stage("cargo test --workspace --locked", cargo_test)?;
    stage("cargo xtask docs --check", || {
        subcommand(&["docs", "--check"])
    })?;
    if !args.skip_e2e {
        stage("cargo xtask chart", || subcommand(&["chart"]))?;
        // Without the image stage there is no image for the real node either.
        let real_node = if args.skip_image { "off" } else { "auto" };
        stage("cargo xtask e2e --cluster local", || {
            subcommand(&["e2e", "--cluster", "local", "--real-node", real_node])
        })?;
    }
    stage("cargo xtask sdk-clients", || subcommand(&["sdk-clients"]))?;
    if !args.skip_image {
        stage("cargo xtask image --test", || {
            subcommand(&["image", "--test"])
        })?;
    }
    eprintln!(
        "xtask test: every stage passed in {:.0?}",
        started.elapsed()
    );
    Ok(())
}

fn cargo_test() -> anyhow::Result<()> {
    cmd::status(cmd::cargo().args(["test", "--workspace", "--locked"]))
}

fn subcommand(argv: &[&str]) -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(std::iter::once("cargo xtask").chain(argv.iter().copied()))?;
    crate::dispatch(cli.command)
}

fn stage(name: &str, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    eprintln!("\n==> {name}");
    let started = Instant::now();
    let result = f().with_context(|| format!("stage `{name}` failed"));
    let outcome = if result.is_ok() { "ok" } else { "FAILED" };
    eprintln!("<== {name}: {outcome} in {:.0?}", started.elapsed());
    result
}
