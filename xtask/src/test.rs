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
//!
//! Unless `--skip-e2e`, the Go-built components of stages 3 and 4 (`cargo xtask cluster build`)
//! are built in the background from the start, under `nice`, so they use the cores stage 1
//! leaves idle (linking, tests waiting on sockets and timers) instead of running after it; the
//! stages that need them take the same per-component locks and wait for a build in progress.
//! Stages 4 and 5 reuse stage 1's debug build (`Workspace::build`), so on a cold cache the
//! workspace is compiled once for tests and once for the release image, not once per stage.

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use gpu_mcp_testbed::util::{cmd, workspace};

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
    let prebuild = if args.skip_e2e {
        None
    } else {
        Some(GoPrebuild::start(!args.skip_image)?)
    };
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
    if let Some(prebuild) = prebuild {
        prebuild.finish();
    }
    eprintln!(
        "xtask test: every stage passed in {:.0?}",
        started.elapsed()
    );
    Ok(())
}

/// `cargo xtask cluster build` running in the background, in a process group of its own so
/// that stopping it stops its `go` children too.
struct GoPrebuild {
    child: Child,
    log: std::path::PathBuf,
    started: Instant,
}

impl GoPrebuild {
    fn start(real_node: bool) -> anyhow::Result<Self> {
        let log = workspace::scratch_dir("test").join("go-prebuild.log");
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let exe = std::env::current_exe().context("locating the xtask binary")?;
        let mut command = Command::new(exe);
        command.args(["cluster", "build"]);
        if real_node {
            command.arg("--real-node");
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().context("duplicating the log's handle")?)
            .stderr(out)
            .process_group(0)
            .spawn()
            .context("starting the background Go builds")?;
        eprintln!(
            "building the Go components in the background (log: {})",
            log.display()
        );
        Ok(Self {
            child,
            log,
            started: Instant::now(),
        })
    }

    /// Waits for the builds (the stages that needed them have waited already) and says how
    /// they ended; a failure here was also a stage's failure, or concerned a component no stage
    /// used, so it is reported, not fatal.
    fn finish(mut self) {
        match self.child.wait() {
            Ok(status) if status.success() => eprintln!(
                "background Go builds: done ({:.0?} after they started)",
                self.started.elapsed()
            ),
            Ok(status) => eprintln!("background Go builds: {status}; see {}", self.log.display()),
            Err(e) => eprintln!("background Go builds: {e}"),
        }
    }
}

impl Drop for GoPrebuild {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // The whole group: the builder and the `go` processes it started.
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", self.child.id())])
                .status();
            let _ = self.child.wait();
        }
    }
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
