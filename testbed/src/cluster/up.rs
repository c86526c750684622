//! Starting, reusing and stopping a local cluster.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::handle::ClusterHandle;
use super::state::{default_state_dir, lock, read_state, stop_all, write_state};
use super::{gobuild, kwok, realnode, start};
use crate::util::{fs as files, net, workspace};

/// Options of [`up`] and [`ensure_up`].
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Number of fake GPU nodes.
    pub nodes: u32,
    /// State directory (default `target/local-cluster`).
    pub state_dir: PathBuf,
    /// Port for kube-apiserver (default: a free one).
    pub apiserver_port: Option<u16>,
    /// Agent binary run by `pods/exec` (default `target/debug/gpu-mcp-agent`).
    pub agent_bin: Option<PathBuf>,
    /// Also start a real node: a kubelet on containerd (needs root; see `realnode`).
    pub real_node: bool,
}

impl UpOptions {
    /// Defaults: three nodes in `target/local-cluster`.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            nodes: 3,
            state_dir: default_state_dir()?,
            apiserver_port: None,
            agent_bin: None,
            real_node: false,
        })
    }
}

/// Most fake nodes one cluster has (each owns one /24 of 127.0.0.0/16).
const MAX_NODES: u32 = 200;

/// Stops the cluster in `state_dir` and removes the directory.
pub fn down(state_dir: &Path) -> anyhow::Result<()> {
    let state_dir = files::absolute(state_dir)?;
    let _lock = lock(&state_dir)?;
    // Processes can outlive a state directory removed by hand: look for them either way.
    let stopped = stop_all(&state_dir)?;
    if !state_dir.exists() {
        eprintln!(
            "no local cluster in {} (stopped {stopped} stray process(es))",
            state_dir.display()
        );
        return Ok(());
    }
    fs::remove_dir_all(&state_dir).with_context(|| format!("removing {}", state_dir.display()))?;
    eprintln!(
        "stopped {stopped} process(es) and removed {}",
        state_dir.display()
    );
    Ok(())
}

/// Returns the cluster in `opts.state_dir` when it is healthy and has the asked node count;
/// otherwise starts a fresh one with [`up`].
pub fn ensure_up(opts: &UpOptions) -> anyhow::Result<ClusterHandle> {
    let state_dir = files::absolute(&opts.state_dir)?;
    let _lock = lock(&state_dir)?;
    if let Ok(handle) = ClusterHandle::load(&state_dir)
        && handle.nodes.len() == opts.nodes as usize
        && handle.real_node.is_some() == opts.real_node
        && runs_current_binaries(&handle)
        && handle.is_healthy()
    {
        // kwok looks the agent up on PATH at each exec, so re-pointing the link is enough.
        files::symlink(&agent_path(opts)?, &handle.bin_dir.join("gpu-mcp-agent"))?;
        return Ok(handle);
    }
    up_locked(opts, &state_dir)
}

/// Whether the cluster's `bin/` links point at the binaries the wrapper modules now build
/// (a cluster started before a version bump or a patch is not reused).
fn runs_current_binaries(handle: &ClusterHandle) -> bool {
    let real_node: &[gobuild::GoModule] = if handle.real_node.is_some() {
        &gobuild::REAL_NODE
    } else {
        &[]
    };
    gobuild::ALL.iter().chain(real_node).all(|module| {
        gobuild::output_dir(module).is_ok_and(|dir| {
            module.tools.iter().all(|tool| {
                fs::read_link(handle.bin_dir.join(tool.binary))
                    .is_ok_and(|target| target == dir.join(tool.binary))
            })
        })
    })
}

/// The agent binary `pods/exec` runs: `opts.agent_bin` or `target/debug/gpu-mcp-agent`.
pub(super) fn agent_path(opts: &UpOptions) -> anyhow::Result<PathBuf> {
    match &opts.agent_bin {
        Some(path) => files::absolute(path),
        None => files::absolute(&workspace::target_dir().join("debug").join("gpu-mcp-agent")),
    }
}

/// Builds (or reuses) the binaries and starts a fresh cluster, after stopping and removing
/// whatever an earlier run left in the state directory. On failure every process started so
/// far is stopped and the logs stay in `<state>/logs`.
pub fn up(opts: &UpOptions) -> anyhow::Result<ClusterHandle> {
    let state_dir = files::absolute(&opts.state_dir)?;
    let _lock = lock(&state_dir)?;
    up_locked(opts, &state_dir)
}

fn up_locked(opts: &UpOptions, state_dir: &Path) -> anyhow::Result<ClusterHandle> {
    // Node `i` owns 127.0.<i+1>.0/24; 127.0.255.0/24 is kwok's fallback pool.
    anyhow::ensure!(
        (1..=MAX_NODES).contains(&opts.nodes),
        "the local cluster has 1 to {MAX_NODES} nodes, not {}",
        opts.nodes
    );
    let state_dir = state_dir.to_path_buf();
    let stopped = stop_all(&state_dir)?;
    if stopped > 0 {
        eprintln!("stopped {stopped} leftover process(es) of an earlier run");
    }
    if state_dir.exists() {
        fs::remove_dir_all(&state_dir)
            .with_context(|| format!("removing {}", state_dir.display()))?;
    }
    if let Some(port) = opts.apiserver_port {
        net::check_port_free(port, "kube-apiserver")?;
    }

    // Check the host and build before creating any state, so a failure leaves nothing behind.
    let real_node = if opts.real_node {
        Some(realnode::prepare_host(&state_dir)?)
    } else {
        None
    };
    let real_node_modules: &[gobuild::GoModule] = if opts.real_node {
        &gobuild::REAL_NODE
    } else {
        &[]
    };
    let mut bins = Vec::new();
    for module in gobuild::ALL.iter().chain(real_node_modules) {
        bins.push((*module, gobuild::ensure(module)?));
    }
    let stages = kwok::stages()?;

    fs::create_dir_all(state_dir.join("logs"))
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let result = start::start(opts, &state_dir, &bins, &stages, real_node.as_ref());
    if result.is_err() {
        let _ = stop_all(&state_dir);
        if let Ok(Some(mut state)) = read_state(&state_dir) {
            state.handle = None;
            let _ = write_state(&state_dir, &state);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::super::procs;
    use super::super::state::{ProcessRecord, State, marker};
    use super::*;

    #[test]
    fn down_stops_recorded_and_unrecorded_processes_and_removes_the_state() {
        let dir = std::env::temp_dir().join(format!("gpu-mcp-down-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("logs")).unwrap();
        let dir = files::absolute(&dir).unwrap();
        // Two stand-in components whose command lines name the state directory, as real ones
        // do; only the first made it into state.json before a crash.
        let spawn = |name: &str| {
            procs::spawn_detached(
                Path::new("sh"),
                &[
                    "-c".into(),
                    "trap 'kill $!; exit 0' TERM; sleep 60 & wait".into(),
                    format!("{}/{name}", dir.display()),
                ],
                &[],
                &dir.join("logs").join(format!("{name}.log")),
            )
            .unwrap()
        };
        let recorded = spawn("recorded");
        let stray = spawn("stray");
        let state = State {
            handle: None,
            processes: vec![ProcessRecord {
                name: "recorded".into(),
                pid: recorded,
                log: dir.join("logs/recorded.log"),
            }],
        };
        write_state(&dir, &state).unwrap();
        let marker = marker(&dir);
        assert!(procs::is_ours(recorded, &marker) && procs::is_ours(stray, &marker));

        // A half-started cluster is reported as such, not handed out.
        let err = ClusterHandle::load(&dir).unwrap_err().to_string();
        assert!(err.contains("did not finish starting"), "{err}");

        down(&dir).unwrap();
        assert!(!procs::is_ours(recorded, &marker));
        assert!(!procs::is_ours(stray, &marker));
        assert!(!dir.exists());
    }

    #[test]
    fn a_missing_state_dir_is_a_clear_error() {
        let err = ClusterHandle::load(Path::new("/nonexistent/gpu-mcp-state"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cargo xtask cluster up"), "{err}");
    }
}
