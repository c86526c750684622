//! `cargo xtask cluster`: its subcommands and their flags, and `status`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::bail;

use super::handle::ClusterHandle;
use super::state::{marker, read_state, state_dir_or_default};
use super::up::{UpOptions, down, ensure_up};
use super::{gobuild, helm_path, kubectl_path, procs, smoke};
use crate::util::{fs, process};

/// Arguments of `cargo xtask cluster`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Build (or reuse) the binaries and start a fresh cluster; leftovers of an earlier run are
    /// stopped and removed first.
    Up(UpArgs),
    /// Stop every process the cluster started and remove its state.
    Down(StateArgs),
    /// Print shell exports (KUBECONFIG, PATH) for the running cluster.
    Env(StateArgs),
    /// Report each component (pid, liveness, memory), the API's readiness and the nodes.
    Status(StateArgs),
    /// Mint a ServiceAccount token (TokenRequest API) and write a kubeconfig that uses it.
    Token(TokenArgs),
    /// Only build (or reuse) the Go binaries, printing where they are.
    Build(BuildArgs),
    /// Check a running cluster end to end: a pod placed on a node and a DaemonSet's pods become
    /// Running and Ready with loopback IPs, `pods/exec` runs a local command, and RBAC denies a
    /// ServiceAccount without a binding.
    Smoke(StateArgs),
}

#[derive(Debug, clap::Args)]
struct StateArgs {
    /// State directory (pids, logs, certificates, kubeconfigs).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    #[command(flatten)]
    state: StateArgs,
    /// Number of fake GPU nodes (kwok).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=200))]
    nodes: u32,
    /// Port of kube-apiserver on 127.0.0.1 (default: a free one).
    #[arg(long)]
    apiserver_port: Option<u16>,
    /// Agent binary that `pods/exec` runs as `gpu-mcp-agent` (default: target/debug/gpu-mcp-agent).
    #[arg(long, value_name = "PATH")]
    agent_bin: Option<PathBuf>,
    /// Keep a running, healthy cluster with the same node count instead of recreating it.
    #[arg(long)]
    reuse: bool,
    /// Also start a real node beside the kwok nodes: a kubelet built from the same Kubernetes
    /// release on the distribution's containerd and runc (root; installs them when missing).
    #[arg(long)]
    real_node: bool,
}

#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// Also the real node's kubelet, CNI plugins and pause program.
    #[arg(long)]
    real_node: bool,
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    #[command(flatten)]
    state: StateArgs,
    /// Namespace of the ServiceAccount.
    #[arg(long, short = 'n', default_value = "gpu-diagnostics")]
    namespace: String,
    /// ServiceAccount name.
    #[arg(long)]
    service_account: String,
    /// Token lifetime (a Go duration, e.g. `1h`).
    #[arg(long, default_value = "24h")]
    duration: String,
    /// Where to write the kubeconfig (default: in the state directory).
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
}

/// Runs one `cargo xtask cluster` subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.action {
        Action::Up(up) => {
            let mut opts = UpOptions::new()?;
            opts.nodes = up.nodes;
            opts.apiserver_port = up.apiserver_port;
            opts.agent_bin = up.agent_bin;
            opts.real_node = up.real_node;
            if let Some(dir) = up.state.state_dir {
                opts.state_dir = fs::absolute(&dir)?;
            }
            let started = Instant::now();
            let handle = if up.reuse {
                ensure_up(&opts)?
            } else {
                super::up(&opts)?
            };
            eprintln!(
                "cluster ready in {:.1} s: {} on {} with nodes {}{}",
                started.elapsed().as_secs_f64(),
                handle.nodes.len(),
                handle.server,
                handle.nodes.join(", "),
                handle
                    .real_node
                    .as_ref()
                    .map_or_else(String::new, |n| format!(
                        " and the real node {} (pods in {})",
                        n.name, n.pod_subnet
                    ))
            );
            print!("{}", handle.env_exports());
            Ok(())
        }
        Action::Down(args) => down(&state_dir_or_default(args.state_dir)?),
        Action::Env(args) => {
            let handle = ClusterHandle::load(&state_dir_or_default(args.state_dir)?)?;
            print!("{}", handle.env_exports());
            Ok(())
        }
        Action::Status(args) => status(&state_dir_or_default(args.state_dir)?),
        Action::Token(args) => {
            let handle = ClusterHandle::load(&state_dir_or_default(args.state.state_dir)?)?;
            let path = handle.token_kubeconfig(
                &args.namespace,
                &args.service_account,
                &args.duration,
                args.output.as_deref(),
            )?;
            println!("{}", path.display());
            Ok(())
        }
        Action::Smoke(args) => {
            let handle = ClusterHandle::load(&state_dir_or_default(args.state_dir)?)?;
            smoke::run(&handle)
        }
        Action::Build(args) => {
            let real_node: &[gobuild::GoModule] = if args.real_node {
                &gobuild::REAL_NODE
            } else {
                &[]
            };
            for module in gobuild::ALL.iter().chain(real_node) {
                let dir = gobuild::ensure(module)?;
                println!("{} {}: {}", module.name, module.version, dir.display());
            }
            println!("kubectl: {}", kubectl_path()?.display());
            println!("helm: {}", helm_path()?.display());
            Ok(())
        }
    }
}

/// Reports each component (pid, liveness, memory), the API's readiness and the nodes.
fn status(state_dir: &Path) -> anyhow::Result<()> {
    let Some(state) = read_state(state_dir)? else {
        println!("no local cluster in {}", state_dir.display());
        return Ok(());
    };
    let marker = marker(state_dir);
    println!("state: {}", state_dir.display());
    let mut all_running = true;
    for record in &state.processes {
        let running = procs::is_ours(record.pid, &marker);
        all_running &= running;
        let rss = process::rss_kib(record.pid)
            .ok()
            .filter(|_| running)
            .map_or_else(String::new, |kib| format!("  rss {} MiB", kib / 1024));
        println!(
            "{:<24} pid {:<8} {}{rss}\n{:<24} log {}",
            record.name,
            record.pid,
            if running { "running" } else { "NOT RUNNING" },
            "",
            record.log.display()
        );
    }
    let Some(handle) = state.handle else {
        bail!("the cluster did not finish starting; `cargo xtask cluster up` starts it afresh");
    };
    match handle.kubectl_output(&["get", "--raw=/readyz"]) {
        Ok(_) => println!("api: {} ready", handle.server),
        Err(err) => println!("api: {} NOT READY: {err:#}", handle.server),
    }
    match handle.kubectl_output(&["get", "nodes", "-o", "wide"]) {
        Ok(nodes) => print!("{nodes}"),
        Err(err) => println!("nodes: {err:#}"),
    }
    if !all_running {
        bail!("some components are not running; see their logs");
    }
    Ok(())
}
