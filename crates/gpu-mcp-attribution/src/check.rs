//! Checks of the attribution sources as configured, for an agent to run once at start-up:
//! whether each source answers at all and, when it does not, why, so that a wrong mount shows
//! when the agent is deployed rather than on the first question about a pod.

use std::fmt;
use std::io::ErrorKind;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::procfs::{MAX_CGROUP_BYTES, read_bounded};
use crate::{
    AttributionSource, DeviceAllocations, Error, PodResourcesClient, ProcRoot, parse_cgroup,
};

/// How many processes are tried for a readable cgroup file (processes come and go).
const CGROUP_TRIES: usize = 16;

/// Why a source failed its check. Each has a fixed snake_case name ([`Problem::as_str`]), fit
/// for a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Problem {
    /// Nothing at the path: the socket (or `/proc`) is not mounted there.
    Missing,
    /// The agent may not look at it or connect to it.
    PermissionDenied,
    /// The socket path is something other than a unix socket.
    NotASocket,
    /// The `/proc` path is something other than a directory.
    NotADirectory,
    /// Nothing listens on the socket (a socket left by a kubelet that is not running).
    Refused,
    /// The kubelet answered `List` with an error status.
    KubeletError,
    /// No answer within the deadline.
    Deadline,
    /// The directory lists no process: it is not a `/proc`.
    NoProcesses,
    /// Process 1 runs in a pod: the directory is a container's `/proc`, not the host's.
    NotHostProc,
    /// No process's cgroup file could be read.
    CgroupUnreadable,
    /// Another I/O error.
    Io,
}

impl Problem {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::PermissionDenied => "permission_denied",
            Self::NotASocket => "not_a_socket",
            Self::NotADirectory => "not_a_directory",
            Self::Refused => "refused",
            Self::KubeletError => "kubelet_error",
            Self::Deadline => "deadline",
            Self::NoProcesses => "no_processes",
            Self::NotHostProc => "not_host_proc",
            Self::CgroupUnreadable => "cgroup_unreadable",
            Self::Io => "io_error",
        }
    }
}

/// What the check of one source found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckState {
    /// The kubelet answered `List`.
    PodsListed {
        /// Pods in its answer.
        pods: usize,
        /// Distinct GPU devices (GPUs, MIG devices) allocated to their containers.
        gpu_devices: usize,
    },
    /// The directory lists processes and a process's cgroup file was read.
    ProcessesSeen {
        /// Process directories in it.
        processes: usize,
        /// The process whose cgroup file was read.
        cgroup_of: u32,
    },
    /// The source cannot be used.
    Failed {
        /// Why, as a name.
        problem: Problem,
        /// Why, in one sentence (the path and the error).
        detail: String,
    },
}

/// The check of one attribution source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCheck {
    /// The source: [`AttributionSource::PodResources`] or [`AttributionSource::Cgroup`].
    pub source: AttributionSource,
    /// The socket or the `/proc` directory checked.
    pub path: PathBuf,
    /// What was found.
    pub state: CheckState,
}

impl SourceCheck {
    /// Whether the source answered.
    pub fn is_ok(&self) -> bool {
        !matches!(self.state, CheckState::Failed { .. })
    }

    /// `ok`, or the [`Problem`]'s name.
    pub fn reason(&self) -> &'static str {
        match &self.state {
            CheckState::Failed { problem, .. } => problem.as_str(),
            _ => "ok",
        }
    }

    /// The problem, when the check failed.
    pub fn problem(&self) -> Option<Problem> {
        match &self.state {
            CheckState::Failed { problem, .. } => Some(*problem),
            _ => None,
        }
    }

    /// What the source showed: pods listed by the kubelet, or processes under `/proc`.
    pub fn entries(&self) -> Option<usize> {
        match &self.state {
            CheckState::PodsListed { pods, .. } => Some(*pods),
            CheckState::ProcessesSeen { processes, .. } => Some(*processes),
            CheckState::Failed { .. } => None,
        }
    }

    fn failed(source: AttributionSource, path: &Path, problem: Problem, detail: String) -> Self {
        Self {
            source,
            path: path.to_owned(),
            state: CheckState::Failed { problem, detail },
        }
    }
}

impl fmt::Display for SourceCheck {
    /// One sentence for a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.state {
            CheckState::PodsListed { pods, gpu_devices } => write!(
                f,
                "the kubelet's pod-resources API at {path} answered List: {pods} pod(s), \
                 {gpu_devices} GPU device(s) allocated"
            ),
            CheckState::ProcessesSeen {
                processes,
                cgroup_of,
            } => write!(
                f,
                "the host's /proc at {path} lists {processes} process(es); the cgroup of \
                 process {cgroup_of} was read"
            ),
            CheckState::Failed { detail, .. } => f.write_str(detail),
        }
    }
}

impl PodResourcesClient {
    /// Checks the socket and asks the kubelet for `List` once, all within the client's
    /// deadline: the number of pods it answered with, or why it could not (no socket, not a
    /// socket, permission denied, nothing listening, the kubelet's error, the deadline).
    pub async fn check(&self) -> SourceCheck {
        let source = AttributionSource::PodResources;
        let socket = self.socket().to_owned();
        let deadline = self.deadline();
        let steps = async {
            if let Some(failed) = look_at_socket(&socket).await {
                return failed;
            }
            // Connecting once first tells refused and denied apart; the gRPC channel below
            // wraps the same error.
            if let Err(e) = tokio::net::UnixStream::connect(&socket).await {
                let (problem, why) = match e.kind() {
                    ErrorKind::PermissionDenied => (
                        Problem::PermissionDenied,
                        "connecting needs write permission on the socket, which the kubelet grants to root only",
                    ),
                    ErrorKind::ConnectionRefused => (
                        Problem::Refused,
                        "nothing listens on it (a socket left by a kubelet that is not running)",
                    ),
                    _ => (Problem::Io, "connecting failed"),
                };
                return SourceCheck::failed(
                    source,
                    &socket,
                    problem,
                    format!("cannot connect to {}: {e}; {why}", socket.display()),
                );
            }
            match self.list().await {
                Ok(answer) => SourceCheck {
                    source,
                    path: socket.clone(),
                    state: CheckState::PodsListed {
                        pods: answer.pod_resources.len(),
                        gpu_devices: DeviceAllocations::from_list(&answer).len(),
                    },
                },
                Err(e) => {
                    let problem = match &e {
                        Error::Rpc { .. } => Problem::KubeletError,
                        Error::Deadline { .. } => Problem::Deadline,
                        _ => Problem::Io,
                    };
                    SourceCheck::failed(source, &socket, problem, e.to_string())
                }
            }
        };
        match tokio::time::timeout(deadline, steps).await {
            Ok(check) => check,
            Err(_) => SourceCheck::failed(
                source,
                &socket,
                Problem::Deadline,
                format!(
                    "the kubelet's pod-resources API at {} did not answer within {deadline:?}",
                    socket.display()
                ),
            ),
        }
    }
}

/// What is at the socket's path, when it is not a socket.
async fn look_at_socket(socket: &Path) -> Option<SourceCheck> {
    let source = AttributionSource::PodResources;
    let dir = socket.parent().unwrap_or(Path::new("/"));
    let failed = |problem, detail| Some(SourceCheck::failed(source, socket, problem, detail));
    match tokio::fs::metadata(socket).await {
        Ok(meta) if meta.file_type().is_socket() => None,
        Ok(meta) => failed(
            Problem::NotASocket,
            format!(
                "{} is {}, not a unix socket",
                socket.display(),
                if meta.is_dir() {
                    "a directory"
                } else {
                    "a file"
                }
            ),
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let where_ = match tokio::fs::metadata(dir).await {
                Ok(d) if d.is_dir() => format!(
                    "{} is there without it: the kubelet does not serve its pod-resources API \
                     there (its root directory, --root-dir, is elsewhere)",
                    dir.display()
                ),
                _ => format!(
                    "{} is not there: the kubelet's pod-resources directory is not mounted",
                    dir.display()
                ),
            };
            failed(
                Problem::Missing,
                format!("no socket at {}; {where_}", socket.display()),
            )
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => failed(
            Problem::PermissionDenied,
            format!(
                "cannot look into {}: {e}; the kubelet makes its pod-resources directory \
                 root's only",
                dir.display()
            ),
        ),
        Err(e) => failed(
            Problem::Io,
            format!("cannot look at {}: {e}", socket.display()),
        ),
    }
}

impl ProcRoot {
    /// Checks the directory within the deadline: how many processes it lists and whether a
    /// process's cgroup file can be read, or why not (missing, not a directory, permission
    /// denied, no processes, a container's `/proc` rather than the host's, unreadable cgroups).
    pub async fn check(&self) -> SourceCheck {
        let source = AttributionSource::Cgroup;
        let root = self.root().to_owned();
        let deadline = self.deadline();
        let task = tokio::task::spawn_blocking({
            let root = root.clone();
            move || check_proc(&root)
        });
        match tokio::time::timeout(deadline, task).await {
            Ok(Ok(state)) => SourceCheck {
                source,
                path: root,
                state,
            },
            Ok(Err(_join)) => {
                SourceCheck::failed(source, &root, Problem::Io, Error::Cancelled.to_string())
            }
            Err(_) => SourceCheck::failed(
                source,
                &root,
                Problem::Deadline,
                format!(
                    "listing the processes under {} did not finish within {deadline:?}",
                    root.display()
                ),
            ),
        }
    }
}

/// The blocking part of [`ProcRoot::check`].
fn check_proc(root: &Path) -> CheckState {
    let failed = |problem, detail| CheckState::Failed { problem, detail };
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) => {
            let problem = match e.kind() {
                ErrorKind::NotFound => Problem::Missing,
                ErrorKind::PermissionDenied => Problem::PermissionDenied,
                ErrorKind::NotADirectory => Problem::NotADirectory,
                _ => Problem::Io,
            };
            return failed(
                problem,
                format!(
                    "cannot list {}: {e} (is the host's /proc mounted there?)",
                    root.display()
                ),
            );
        }
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    if pids.is_empty() {
        return failed(
            Problem::NoProcesses,
            format!(
                "{} lists no process directories: it is not a /proc",
                root.display()
            ),
        );
    }
    pids.sort_unstable();
    let mut first_error = None;
    for &pid in pids.iter().take(CGROUP_TRIES) {
        let path = root.join(pid.to_string()).join("cgroup");
        match read_bounded(&path, MAX_CGROUP_BYTES) {
            Ok(text) => {
                if pid == 1
                    && let Some(pod) = parse_cgroup(&text)
                {
                    return failed(
                        Problem::NotHostProc,
                        format!(
                            "process 1 under {} runs in pod {}: this is a container's /proc, \
                             not the host's (mount the host's /proc there)",
                            root.display(),
                            pod.pod_uid.as_deref().unwrap_or("(uid unknown)")
                        ),
                    );
                }
                return CheckState::ProcessesSeen {
                    processes: pids.len(),
                    cgroup_of: pid,
                };
            }
            Err(e) => {
                first_error.get_or_insert_with(|| format!("cannot read {}: {e}", path.display()));
            }
        }
    }
    failed(
        Problem::CgroupUnreadable,
        format!(
            "{} lists {} process(es) but none of the first {}'s cgroup files could be read: {}",
            root.display(),
            pids.len(),
            pids.len().min(CGROUP_TRIES),
            first_error.unwrap_or_default()
        ),
    )
}
