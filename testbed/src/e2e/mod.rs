//! `cargo xtask e2e`: the gateway's end-to-end scenarios against a real Kubernetes API.
//!
//! On the local cluster (`--cluster local`, see `cargo xtask cluster`):
//! 1. builds the agent and the gateway, starts (or reuses) the cluster with N kwok GPU nodes, and
//!    puts GPU workloads on them (`workloads`: pods in `ml-training` requesting `nvidia.com/gpu`,
//!    the GPU taint on the first node, a cordon on the second; removed at the end);
//! 2. `helm upgrade --install`s the chart (mock agents, gateway on, no RuntimeClass; auth and
//!    NetworkPolicies as the chart's defaults have them), so the API server validates every
//!    manifest and the DaemonSet's pods land on the kwok nodes with 127.x IPs; the tokens are
//!    read from the Secret the chart generated and the NetworkPolicies checked against their
//!    render;
//! 3. gives each agent pod its mock scenario (node 0 runs `xid-79`, the others are healthy):
//!    - http routing: a real agent process listens on each pod's IP and port, playing the
//!      container with its authentication flags (the gateway's own token);
//!    - exec routing: kwok runs the agent binary for each `pods/exec`; a per-pod kwok `Exec`
//!      object (when the cluster serves that kind) gives it the pod's node name and scenario;
//! 4. starts the gateway binary with the chart's own arguments (its token files copied from the
//!    Secret), authenticated as the chart's gateway ServiceAccount (a TokenRequest token), so the
//!    chart's Role is what is tested;
//! 5. runs `bins/gpu-mcp-gateway/tests/e2e_cluster.rs` (an `rmcp` client sending the client
//!    token) against it;
//! 6. after the first routing's scenarios, runs the official Python and TypeScript SDK checks
//!    (`crate::sdk_clients::check`) against the same gateway with the client token: every tool
//!    called, `describe_gpu_node`, `get_pod_gpu_allocation` and `explain_pod_gpu_failure` naming
//!    the first node and its pod `{node}-job-0`, every `structuredContent` validated against its
//!    `outputSchema`.
//!
//! Every process started here is killed on exit, on success and on failure (logs are printed on
//! failure); the release is uninstalled and a cluster this run started is removed, unless `--keep`.
//!
//! `deployment` installs the chart and reads what the gateway needs from it; `routing` plays
//! the agents and runs the scenarios for one routing; `--cluster kind` is run by `crate::kind`.

mod deployment;
mod host_mounts;
mod policies;
mod real_node;
mod routing;
mod secrets;
mod workloads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};

pub(crate) use deployment::{Deployment, NAMESPACE};

use crate::cluster::{self, ClusterHandle, UpOptions};
use crate::programs;
use crate::util::cmd;
use crate::util::workspace::Workspace;

/// Arguments of `cargo xtask e2e`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::kind::HELP)]
pub struct Args {
    /// Where to run: the loopback control plane (`cargo xtask cluster`) or kind.
    #[arg(long, value_enum, default_value_t = ClusterKind::Local)]
    cluster: ClusterKind,
    /// Node transport(s) of the gateway to test.
    #[arg(long, value_enum, default_value_t = RoutingChoice::Both)]
    routing: RoutingChoice,
    /// Number of fake GPU nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=50))]
    nodes: u32,
    /// Leave the cluster and the release in place afterwards (processes started here still stop).
    #[arg(long)]
    keep: bool,
    /// State directory of the local cluster (default: the one `cargo xtask cluster` uses, so a
    /// cluster already up is reused).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The real node (a kubelet on containerd running the project's image): `auto` adds it
    /// when this machine allows (root, cgroups, overlayfs, containerd and runc, Docker to build
    /// the image) and says what is missing otherwise; `on` fails instead; `off` leaves it out.
    #[arg(long, value_enum, default_value_t = RealNodeChoice::Auto)]
    real_node: RealNodeChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RealNodeChoice {
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ClusterKind {
    Local,
    Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RoutingChoice {
    Http,
    Exec,
    Both,
}

impl RoutingChoice {
    fn list(self) -> &'static [&'static str] {
        match self {
            Self::Http => &["http"],
            Self::Exec => &["exec"],
            Self::Both => &["http", "exec"],
        }
    }
}

/// Runs the end-to-end scenarios where `--cluster` says.
pub fn run(args: Args) -> Result<()> {
    match args.cluster {
        ClusterKind::Local => run_local(&args),
        ClusterKind::Kind => crate::kind::run(&crate::kind::Options {
            routings: args.routing.list(),
            workers: args.nodes,
            keep: args.keep,
        }),
    }
}
fn run_local(args: &Args) -> Result<()> {
    let ws = Workspace::new(false);
    ws.build(&["gpu-mcp-agent", "gpu-mcp-gateway"])?;
    // Build the test binary before the cluster starts, so its compile time is not spent with the
    // control plane competing for the CPUs.
    programs::run_scenarios(BTreeMap::<String, String>::new(), true, &[])?;
    k8s_layer_tests(&ws, None)?;

    let mut opts = UpOptions::new()?;
    opts.nodes = args.nodes;
    if let Some(dir) = &args.state_dir {
        opts.state_dir.clone_from(dir);
    }
    opts.agent_bin = Some(ws.binary("gpu-mcp-agent"));
    // Everything the real node needs is checked (and the image built) before the cluster starts.
    let image = match args.real_node {
        RealNodeChoice::Off => None,
        choice => match real_node_prerequisites(&ws, &opts) {
            Ok(image) => Some(image),
            Err(e) if choice == RealNodeChoice::Auto => {
                eprintln!(
                    "\n=== e2e: the real node is left out: {e:#} ===\nthe rest runs on the kwok nodes"
                );
                None
            }
            Err(e) => return Err(e.context("--real-node on")),
        },
    };
    opts.real_node = image.is_some();
    // A cluster that was already up (`cargo xtask cluster up`) is reused and left running.
    let reused = ClusterHandle::load(&opts.state_dir).is_ok_and(|h| {
        h.nodes.len() == opts.nodes as usize
            && h.real_node.is_some() == opts.real_node
            && h.is_healthy()
    });
    let handle = cluster::ensure_up(&opts)?;
    eprintln!(
        "cluster: {} with nodes {}{}",
        handle.server,
        handle.nodes.join(", "),
        handle
            .real_node
            .as_ref()
            .map_or_else(String::new, |n| format!(" and the real node {}", n.name))
    );

    let mut failures = Vec::new();
    let workloads = workloads::Workloads::apply(&handle, &handle.nodes)?;
    eprintln!("\n=== e2e: Kubernetes layer against the real API server ===");
    if let Err(e) = k8s_layer_tests(&ws, Some(&handle)) {
        eprintln!("=== e2e Kubernetes layer: FAILED: {e:#} ===");
        failures.push(format!("kubernetes layer: {e:#}"));
    }
    for (i, routing) in args.routing.list().iter().enumerate() {
        eprintln!("\n=== e2e: --routing {routing} ===");
        let started = Instant::now();
        // The SDK clients run once, after the first routing's scenarios.
        match routing::run(&ws, &handle, routing, &workloads.env(), i == 0) {
            Ok(()) => eprintln!(
                "=== e2e --routing {routing}: passed in {:.0} s ===",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("=== e2e --routing {routing}: FAILED: {e:#} ===");
                failures.push(format!("{routing}: {e:#}"));
            }
        }
    }

    workloads.remove();

    if let Some((tag, archive)) = &image {
        eprintln!("\n=== e2e: the real node (image {tag}, the chart unchanged) ===");
        let started = Instant::now();
        let result = real_node::import(&handle, archive)
            .and_then(|()| real_node::run(&ws, &handle, tag, args.routing.list()));
        match result {
            Ok(()) => eprintln!(
                "=== e2e real node: passed in {:.0} s ===",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("=== e2e real node: FAILED: {e:#} ===");
                failures.push(format!("real node: {e:#}"));
            }
        }
    }

    if args.keep {
        eprintln!(
            "--keep: cluster and release left running; \
             `cargo xtask cluster down --state-dir {}` removes them\n{}",
            handle.state_dir.display(),
            handle.env_exports()
        );
    } else {
        let _ = handle.helm_output(&[
            "uninstall",
            deployment::RELEASE,
            "-n",
            NAMESPACE,
            "--wait",
            "--timeout",
            "2m",
        ]);
        if reused {
            eprintln!(
                "the cluster in {} was up before this run and stays up",
                handle.state_dir.display()
            );
        } else {
            cluster::down(&handle.state_dir)?;
        }
    }
    if failures.is_empty() {
        eprintln!("e2e passed: {}", args.routing.list().join(", "));
        Ok(())
    } else {
        bail!("e2e failed:\n{}", failures.join("\n"))
    }
}

/// What the real node needs: this machine's part (checked, containerd and runc installed when
/// missing) and the project's image, built and saved for import. Returns the image's tag and
/// archive.
fn real_node_prerequisites(ws: &Workspace, opts: &UpOptions) -> Result<(String, PathBuf)> {
    cluster::real_node_prerequisites(&opts.state_dir)?;
    let archive = ws.scratch("e2e-real-node").join("image.tar");
    let tag =
        crate::image::build_archive(&archive).context("building the image for the real node")?;
    Ok((tag.to_owned(), archive))
}

/// The Kubernetes layer's own integration tests (discovery watching pods appear, turn ready,
/// move and disappear; HTTP and pods/exec transports reaching real agents) against this cluster.
/// Without a cluster it only compiles them.
fn k8s_layer_tests(ws: &Workspace, cluster: Option<&ClusterHandle>) -> Result<()> {
    let mut cmd = cmd::cargo();
    cmd.current_dir(&ws.root).args([
        // `--workspace`: the features of stage 1's build, which is reused (`Workspace::build`).
        "test",
        "--workspace",
        "--locked",
        "--test",
        "cluster",
        "--test",
        "real_agent",
    ]);
    if let Some(handle) = cluster {
        let exec_node = handle.nodes.first().context("the cluster has no nodes")?;
        cmd.env("GPU_MCP_TEST_KUBECONFIG", &handle.kubeconfig)
            .env("GPU_MCP_TEST_EXEC_NODE", exec_node)
            .env(
                "GPU_MCP_TEST_EXEC_COMMAND",
                "gpu-mcp-agent --transport stdio --nvml-mode mock",
            )
            .env("GPU_MCP_TEST_AGENT_BIN", ws.binary("gpu-mcp-agent"))
            .args(["--", "--test-threads=1"]);
    } else {
        cmd.arg("--no-run");
    }
    cmd::status(&mut cmd)
}
