//! `cargo xtask fuzz`: builds the `fuzz/` crate's libFuzzer targets with `cargo +nightly fuzz`
//! and runs each for a time budget, starting from its checked-in seed corpus under
//! `fuzz/corpus/<target>/` (what it finds goes to `fuzz/target/corpus/<target>/`, kept between
//! runs and not checked in); a crash fails the run and names the artifact libFuzzer wrote.
//!
//! `cargo-fuzz` is installed on first use, at a pinned version, into the project's user cache
//! (`<cache>/cargo-fuzz-<version>/bin`), so nothing is installed into the user's cargo home.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, bail};
use gpu_mcp_testbed::util::{cache, cmd, workspace};

/// The `cargo-fuzz` release the targets are built with.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Every fuzz target of `fuzz/Cargo.toml`, in the order they run.
const TARGETS: &[&str] = &[
    "jsonrpc_message",
    "service_request",
    "kernel_log",
    "tool_arguments",
    "agent_reply",
    "node_output",
    "fleet_answer",
];

/// Arguments of `cargo xtask fuzz`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Run only this target (default: every target, one after the other).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(TARGETS))]
    target: Option<String>,
    /// Seconds each target runs for.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Parallel fuzzing jobs per target (libFuzzer's `-fork`); 1 runs in-process.
    #[arg(long, default_value_t = 1)]
    jobs: u32,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let cargo_fuzz = ensure_cargo_fuzz()?;
    let fuzz_dir = workspace::workspace_root().join("fuzz");
    let targets: Vec<&str> = match &args.target {
        Some(name) => vec![name.as_str()],
        None => TARGETS.to_vec(),
    };
    let mut crashed = Vec::new();
    for target in targets {
        let started = SystemTime::now();
        eprintln!("\n==> fuzz {target} for {} s", args.seconds);
        // libFuzzer writes what it finds into the first directory; the checked-in seeds are
        // only read.
        let found = fuzz_dir.join("target").join("corpus").join(target);
        std::fs::create_dir_all(&found).with_context(|| format!("creating {}", found.display()))?;
        let seeds = fuzz_dir.join("corpus").join(target);
        let mut run = nightly(&cargo_fuzz);
        run.current_dir(&fuzz_dir)
            .args(["fuzz", "run", target])
            .arg(&found)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={}", args.seconds))
            .arg("-print_final_stats=1");
        if args.jobs > 1 {
            run.arg(format!("-fork={}", args.jobs));
        }
        if let Err(err) = cmd::status(&mut run) {
            eprintln!("{err:#}");
            let dir = fuzz_dir.join("artifacts").join(target);
            for artifact in written_since(&dir, started) {
                eprintln!(
                    "{target}: crashing input {}\n  reproduce: cd {} && RUSTUP_TOOLCHAIN=nightly {} fuzz run {target} {}",
                    artifact.display(),
                    fuzz_dir.display(),
                    cargo_fuzz.display(),
                    artifact.display()
                );
            }
            crashed.push(target);
        }
    }
    if !crashed.is_empty() {
        bail!(
            "fuzz targets failed: {} (crashing inputs under {}/<target>/, listed above)",
            crashed.join(", "),
            fuzz_dir.join("artifacts").display()
        );
    }
    eprintln!("xtask fuzz: every target ran its budget without a crash");
    Ok(())
}

/// The files in `dir` modified at or after `since`: the inputs libFuzzer wrote during one run.
fn written_since(dir: &Path, since: SystemTime) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| m >= since)
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// `cargo-fuzz` run with the nightly toolchain: it calls `cargo` from `PATH`, which rustup's
/// proxy resolves through `RUSTUP_TOOLCHAIN`.
fn nightly(cargo_fuzz: &Path) -> Command {
    let mut command = Command::new(cargo_fuzz);
    command.env("RUSTUP_TOOLCHAIN", "nightly");
    // The variables the stable toolchain gave this process would point cargo-fuzz's cargo at it.
    for name in ["CARGO", "RUSTC", "RUSTDOC", "RUSTC_WRAPPER"] {
        command.env_remove(name);
    }
    command
}

/// The cached `cargo-fuzz` binary, installed with `cargo install --locked` when missing.
fn ensure_cargo_fuzz() -> anyhow::Result<PathBuf> {
    let root = cache::cache_root()?.join(format!("cargo-fuzz-{CARGO_FUZZ_VERSION}"));
    let binary = root.join("bin").join("cargo-fuzz");
    if binary.is_file() {
        return Ok(binary);
    }
    eprintln!(
        "installing cargo-fuzz {CARGO_FUZZ_VERSION} into {}",
        root.display()
    );
    cmd::status(
        cmd::cargo()
            .args(["install", "cargo-fuzz", "--locked", "--version"])
            .arg(CARGO_FUZZ_VERSION)
            .arg("--root")
            .arg(&root),
    )?;
    if !binary.is_file() {
        bail!("cargo install did not leave {}", binary.display());
    }
    Ok(binary)
}
