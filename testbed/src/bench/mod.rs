//! `cargo xtask bench agent|gateway`: measured numbers for docs/benchmarks.md.
//!
//! Every address used is loopback; every loop is bounded in count and time.
//! Nothing here asserts a time: the numbers are printed and written to the docs.
//!
//! `agent` and `gateway` are the two benchmarks; `load` (the load generator and its statistics),
//! `floor` (a bare hyper server), `stand_in` (a
//! stand-in API server for discovery), `exec_target` (the local cluster with the chart for exec
//! routing) and `report` (the section of `docs/benchmarks.md`) are their parts; the MCP
//! connection they measure through is `crate::util::mcp_client`.

use anyhow::Result;

mod agent;
mod exec_target;
mod floor;
mod gateway;
mod load;
mod report;
mod stand_in;

use crate::util::workspace::Workspace;

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
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

/// Runs one benchmark and writes its section of `docs/benchmarks.md` (unless `--no-write`).
pub fn run(args: Args) -> Result<()> {
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
        let path = ws.root.join("docs").join("benchmarks.md");
        report::write_section(&path, section, &body)?;
        eprintln!("wrote section \"{section}\" of {}", path.display());
    }
    Ok(())
}
