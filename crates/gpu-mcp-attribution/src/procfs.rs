//! Reads each process's cgroup under the host's `/proc`, off the async runtime.

use crate::{CgroupLookup, Error, Result, parse_cgroup};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The cgroup file is a few lines; anything longer is not a cgroup file.
pub(crate) const MAX_CGROUP_BYTES: u64 = 64 * 1024;
/// `comm` is at most 16 bytes with its newline; a little more is read to stay tolerant.
const MAX_COMM_BYTES: u64 = 256;

/// What the host's `/proc` says about one process: its name and its cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostProcess {
    /// The process name (`/proc/<pid>/comm`), when readable.
    pub name: Option<String>,
    /// What its cgroup says.
    pub cgroup: CgroupLookup,
}

/// The host's `/proc`, mounted into the agent's container (for example at `/host/proc`).
#[derive(Debug, Clone)]
pub struct ProcRoot {
    root: PathBuf,
    deadline: Duration,
}

impl ProcRoot {
    /// `/proc` at `root`; each batch of reads ends within `deadline`.
    pub fn new(root: impl Into<PathBuf>, deadline: Duration) -> Self {
        Self {
            root: root.into(),
            deadline,
        }
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The deadline of each batch of reads.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// What the cgroup of each pid says, in the order of `pids`. `Err` only when the batch
    /// missed its deadline or the runtime is shutting down.
    pub async fn lookup(&self, pids: &[u32]) -> Result<Vec<CgroupLookup>> {
        Ok(self
            .inspect(pids)
            .await?
            .into_iter()
            .map(|p| p.cgroup)
            .collect())
    }

    /// The name and cgroup of each pid, in the order of `pids`, in one blocking batch. `Err`
    /// only when the batch missed its deadline or the runtime is shutting down.
    pub async fn inspect(&self, pids: &[u32]) -> Result<Vec<HostProcess>> {
        let root = self.root.clone();
        let pids = pids.to_vec();
        let task = tokio::task::spawn_blocking(move || {
            pids.iter()
                .map(|pid| {
                    let dir = root.join(pid.to_string());
                    HostProcess {
                        name: read_comm(&dir.join("comm")),
                        cgroup: read_identity(&dir.join("cgroup")),
                    }
                })
                .collect::<Vec<_>>()
        });
        match tokio::time::timeout(self.deadline, task).await {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(_join)) => Err(Error::Cancelled),
            Err(_) => Err(Error::Deadline {
                what: "reading process cgroups",
                after: self.deadline,
            }),
        }
    }
}

pub(crate) fn read_bounded(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max)
        .read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The process name, without its newline and with anything unprintable dropped (a process
/// names itself, so the name is not trusted).
fn read_comm(path: &Path) -> Option<String> {
    let text = read_bounded(path, MAX_COMM_BYTES).ok()?;
    let name: String = text
        .trim_end_matches('\n')
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    (!name.is_empty()).then_some(name)
}

fn read_identity(path: &Path) -> CgroupLookup {
    match read_bounded(path, MAX_CGROUP_BYTES) {
        Ok(text) => parse_cgroup(&text).map_or(CgroupLookup::Host, CgroupLookup::Pod),
        Err(e) => CgroupLookup::Unreadable(format!("cannot read {}: {e}", path.display())),
    }
}
