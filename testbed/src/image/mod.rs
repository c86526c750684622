//! `cargo xtask image`: the project's container image, built from this machine's release
//! binaries on a runtime base assembled here, then run and driven like a user would.
//!
//! 1. `cargo build --release` of the agent and the gateway;
//! 2. `<workspace>/target/image/bin/` (the two binaries, stripped) and `target/image/rootfs/` (the loader, glibc and
//!    libgcc_s files `ldd` names, CA certificates, a passwd/group with 65532 `nonroot`): what
//!    the distroless base would bring ([`rootfs`]);
//! 3. `docker build --build-arg BINARIES=prebuilt --build-arg RUNTIME_BASE=local-base` of the
//!    repository's one Dockerfile, with a Docker engine this run starts when none answers
//!    ([`docker`]);
//! 4. with `--test` ([`smoke`]): the image's size, user and labels; the agent container
//!    (host network, loopback listen address, read-only root, user 65532, no capabilities)
//!    answering `/healthz`, `/readyz` and the official Python MCP SDK's checks over HTTP; the
//!    same over stdio (`docker run -i`); the gateway binary of the image routing to that agent;
//!    and `docker stop` (SIGTERM) ending each container with exit status 0.

mod docker;
mod rootfs;
mod smoke;

use std::path::PathBuf;

use std::process::Command;

use anyhow::{Context, Result};

use crate::util::workspace::Workspace;
use crate::util::{cmd, fs as files};

/// The tag built when none is given.
pub const DEFAULT_TAG: &str = "k8s-gpu-mcp-server:dev";

/// Arguments of `cargo xtask image`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tag of the image.
    #[arg(long, default_value = DEFAULT_TAG)]
    tag: String,
    /// Also run the container checks.
    #[arg(long)]
    test: bool,
    /// Use the release binaries already built (skip `cargo build`).
    #[arg(long)]
    no_build: bool,
}

/// Builds the image (and with `--test` checks it).
pub fn run(args: Args) -> Result<()> {
    let ws = Workspace::new(true);
    if !args.no_build {
        ws.build(&["gpu-mcp-agent", "gpu-mcp-gateway"])?;
    }
    let engine = stage_and_build(&ws, &args.tag)?;
    let size = engine.image_size(&args.tag)?;
    eprintln!(
        "image {} built: {:.1} MB",
        args.tag,
        size as f64 / 1_000_000.0
    );
    if args.test {
        smoke::run(&engine, &args.tag, &ws.scratch("image"))?;
    }
    Ok(())
}

/// Builds the image from the release binaries already built (staged files, a Docker engine
/// found or started, `docker build`); the engine is returned to use it further.
fn stage_and_build(ws: &Workspace, tag: &str) -> Result<docker::Engine> {
    // Inside the build context whatever CARGO_TARGET_DIR says (.dockerignore admits it).
    let stage = ws.root.join("target").join("image");
    let binaries = ["gpu-mcp-agent", "gpu-mcp-gateway"].map(|b| ws.binary(b));
    stage_files(&stage, &binaries)?;
    let engine = docker::Engine::start_or_find(&ws.scratch("image"))?;
    build(&engine, &ws.root, tag)?;
    Ok(engine)
}

/// Builds the image as `cargo xtask image` does (release binaries, local runtime base) and
/// writes it to `archive` with `docker save`, for a runtime that imports images (the local
/// cluster's real node). Returns the image's tag; a Docker engine this started is stopped.
pub fn build_archive(archive: &std::path::Path) -> Result<&'static str> {
    let ws = Workspace::new(true);
    ws.build(&["gpu-mcp-agent", "gpu-mcp-gateway"])?;
    let engine = stage_and_build(&ws, DEFAULT_TAG)?;
    if let Some(dir) = archive.parent() {
        files::create_dir(dir)?;
    }
    cmd::run(
        engine
            .command()
            .args(["save", "--output"])
            .arg(archive)
            .arg(DEFAULT_TAG),
    )?;
    Ok(DEFAULT_TAG)
}

/// Fills `stage/bin` with the binaries and `stage/rootfs` with their runtime files.
fn stage_files(stage: &std::path::Path, binaries: &[PathBuf]) -> Result<()> {
    if stage.exists() {
        std::fs::remove_dir_all(stage).with_context(|| format!("clearing {}", stage.display()))?;
    }
    let bin = stage.join("bin");
    files::create_dir(&bin)?;
    for b in binaries {
        let name = b.file_name().context("binary without a file name")?;
        let dest = bin.join(name);
        std::fs::copy(b, &dest)
            .with_context(|| format!("copying {} (build it first)", b.display()))?;
        // The release profile keeps symbols for profiling; the image does not need them
        // (a third of its size). The Dockerfile's builder strips the same way (`install -s`).
        cmd::run(Command::new("strip").arg("--strip-all").arg(&dest))?;
    }
    rootfs::assemble(&stage.join("rootfs"), binaries)
}

fn build(engine: &docker::Engine, root: &std::path::Path, tag: &str) -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    eprintln!("docker build {tag} (prebuilt binaries, local runtime base)");
    cmd::status(
        engine
            .command()
            .current_dir(root)
            .args(["build", "--quiet", "--tag", tag])
            .args(["--build-arg", "BINARIES=prebuilt"])
            .args(["--build-arg", "RUNTIME_BASE=local-base"])
            .args(["--build-arg", &format!("VERSION={version}")])
            .arg("."),
    )
}
