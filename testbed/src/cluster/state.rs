//! What a cluster leaves on disk (`<state>/state.json`: its processes and, once started, its
//! handle), the lock that serialises starts and stops, and stopping every process it started.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::handle::ClusterHandle;
use super::{procs, realnode};
use crate::util::cache::PidLock;
use crate::util::{fs as files, workspace};

/// What `up` records in `<state>/state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct State {
    /// Set once every component runs and the nodes are Ready.
    pub(super) handle: Option<ClusterHandle>,
    /// Every component started, in start order.
    pub(super) processes: Vec<ProcessRecord>,
}

/// One started component.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ProcessRecord {
    pub(super) name: String,
    pub(super) pid: u32,
    pub(super) log: PathBuf,
}

const STATE_FILE: &str = "state.json";

/// `<target>/local-cluster`.
pub(super) fn default_state_dir() -> anyhow::Result<PathBuf> {
    files::absolute(&workspace::target_dir().join("local-cluster"))
}

/// `dir` made absolute, or the default state directory.
pub(super) fn state_dir_or_default(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match dir {
        Some(dir) => files::absolute(&dir),
        None => default_state_dir(),
    }
}

/// The recorded state, or `None` when the directory holds none.
pub(super) fn read_state(state_dir: &Path) -> anyhow::Result<Option<State>> {
    let path = state_dir.join(STATE_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?,
        )),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Records `state` (written to a temporary file, then renamed into place).
pub(super) fn write_state(state_dir: &Path, state: &State) -> anyhow::Result<()> {
    let path = state_dir.join(STATE_FILE);
    let tmp = state_dir.join(format!("{STATE_FILE}.tmp"));
    fs::write(&tmp, serde_json::to_vec_pretty(state)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

/// What every component's command line contains: the state directory with a trailing `/`.
pub(super) fn marker(state_dir: &Path) -> String {
    format!("{}/", state_dir.display())
}

/// Stops every process of the cluster in `state_dir` (recorded pids first, then any process
/// whose command line still names the state directory), deletes the real node's containers
/// and removes what they left outside the files (mounts, network namespaces, cgroups), and
/// keeps the files. Returns how many
/// processes were running.
pub(super) fn stop_all(state_dir: &Path) -> anyhow::Result<usize> {
    let marker = marker(state_dir);
    let mut stopped = 0;
    if let Some(state) = read_state(state_dir)? {
        // Reverse start order: the kubelet stops before containerd, and the real node's
        // containers are deleted while containerd still hears of their end.
        for record in state.processes.iter().rev() {
            if record.name == realnode::CONTAINERD {
                realnode::delete_containers(state_dir);
            }
            if procs::stop(record.pid, &marker, Duration::from_secs(15)) {
                stopped += 1;
            }
        }
    }
    realnode::delete_containers(state_dir);
    for pid in procs::find_by_marker(&marker) {
        if procs::stop(pid, &marker, Duration::from_secs(15)) {
            stopped += 1;
        }
    }
    realnode::release(state_dir)?;
    Ok(stopped)
}

/// Serialises `up`, `ensure_up` and `down` on one state directory across processes.
pub(super) fn lock(state_dir: &Path) -> anyhow::Result<PidLock> {
    let mut name = state_dir.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let path = state_dir.with_file_name(name);
    if let Some(parent) = path.parent() {
        files::create_dir(parent)?;
    }
    PidLock::acquire(
        &path,
        &format!(
            "another start or stop of the cluster in {}",
            state_dir.display()
        ),
    )
}
