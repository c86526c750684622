//! `cargo xtask bench agent|gateway`: measured numbers for docs/benchmarks.md.
//!
//! Every address used is loopback; every loop is bounded in count and time.
//! Nothing here asserts a time: the numbers are printed and written to the docs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod agent;
pub(crate) mod floor;
mod gateway;
pub(crate) mod load;
mod mcp_client;
pub(crate) mod report;
mod stand_in;
pub(crate) mod supervise;

pub(crate) use agent::start_http_agent as agent_process;
pub(crate) use gateway::start_gateway as gateway_process;

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    target: Target,
    /// Use binaries already built (skip `cargo build`).
    #[arg(long, global = true)]
    no_build: bool,
    /// Benchmark debug builds instead of release builds (numbers are then not comparable).
    #[arg(long, global = true)]
    debug: bool,
    /// Print the table only; leave docs/benchmarks.md untouched.
    #[arg(long, global = true)]
    no_write: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Target {
    /// Agent: HTTP `tools/call` latency against a bare-hyper floor, stdio cold start, idle RSS.
    Agent(agent::AgentArgs),
    /// Gateway: aggregated `get_gpu_health` over 10/100/1000 nodes, http vs exec, naive baseline, RSS.
    Gateway(gateway::GatewayArgs),
}

/// Paths and build settings shared by the benchmarks.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    pub(crate) root: PathBuf,
    pub(crate) profile: &'static str,
}

impl Workspace {
    pub(crate) fn new(release: bool) -> Self {
        Self {
            root: workspace_root(),
            profile: if release { "release" } else { "debug" },
        }
    }

    /// `target/<profile>/<name>`, honouring `CARGO_TARGET_DIR`.
    pub(crate) fn binary(&self, name: &str) -> PathBuf {
        target_dir(&self.root).join(self.profile).join(name)
    }

    /// `cargo build` of the given packages in this profile.
    pub(crate) fn build(&self, packages: &[&str]) -> Result<()> {
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(&self.root).arg("build");
        if self.profile == "release" {
            cmd.arg("--release");
        }
        for p in packages {
            cmd.args(["-p", p]);
        }
        eprintln!("building {} ({})", packages.join(", "), self.profile);
        let status = cmd.status().context("running cargo build")?;
        if !status.success() {
            bail!("cargo build of {} failed ({status})", packages.join(", "));
        }
        Ok(())
    }

    pub(crate) fn benchmarks_md(&self) -> PathBuf {
        self.root.join("docs").join("benchmarks.md")
    }

    /// A scratch directory for logs under the target directory.
    pub(crate) fn scratch(&self, what: &str) -> PathBuf {
        target_dir(&self.root).join("xtask").join(what)
    }
}

/// The workspace root (the parent of the xtask package).
pub(crate) fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        }
        None => root.join("target"),
    }
}

pub(crate) fn run(args: Args) -> Result<()> {
    let ws = Workspace::new(!args.debug);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (section, body) = match args.target {
        Target::Agent(a) => {
            if !args.no_build {
                ws.build(&["gpu-mcp-agent"])?;
            }
            ("Agent", runtime.block_on(agent::run(&ws, &a))?)
        }
        Target::Gateway(g) => {
            if !args.no_build {
                ws.build(&["gpu-mcp-agent", "gpu-mcp-gateway"])?;
            }
            ("Gateway", runtime.block_on(gateway::run(&ws, &g))?)
        }
    };
    println!("\n## {section}\n\n{body}");
    if !args.no_write {
        let path = ws.benchmarks_md();
        report::write_section(&path, section, &body)?;
        eprintln!("wrote section \"{section}\" of {}", path.display());
    }
    Ok(())
}
