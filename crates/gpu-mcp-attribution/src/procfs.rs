//! Reads each process's cgroup under the host's `/proc`, off the async runtime.

use crate::{CgroupLookup, Error, Result, parse_cgroup};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The cgroup file is a few lines; anything longer is not a cgroup file.
const MAX_CGROUP_BYTES: u64 = 64 * 1024;

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

    /// What the cgroup of each pid says, in the order of `pids`. `Err` only when the batch
    /// missed its deadline or the runtime is shutting down.
    pub async fn lookup(&self, pids: &[u32]) -> Result<Vec<CgroupLookup>> {
        let root = self.root.clone();
        let pids = pids.to_vec();
        let task = tokio::task::spawn_blocking(move || {
            pids.iter()
                .map(|pid| read_identity(&root.join(pid.to_string()).join("cgroup")))
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

fn read_identity(path: &Path) -> CgroupLookup {
    use std::io::Read;
    let read = |path: &Path| -> std::io::Result<String> {
        let mut text = String::new();
        std::fs::File::open(path)?
            .take(MAX_CGROUP_BYTES)
            .read_to_string(&mut text)?;
        Ok(text)
    };
    match read(path) {
        Ok(text) => parse_cgroup(&text).map_or(CgroupLookup::Host, CgroupLookup::Pod),
        Err(e) => CgroupLookup::Unreadable(format!("cannot read {}: {e}", path.display())),
    }
}
