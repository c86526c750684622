//! Which Kubernetes pod holds a GPU, or a process on a GPU, on this node.
//!
//! Two independent sources, used together where both are available:
//!
//! - [`PodResourcesClient`]: the kubelet's pod-resources gRPC API (v1, the API dcgm-exporter
//!   uses) on its unix socket, which says which container was allocated which device id
//!   (a GPU UUID, a MIG device UUID, or an index, by the device plugin's strategy).
//! - [`ProcRoot`]: each process's name and cgroup under the host's `/proc`; the cgroup names the pod UID and the
//!   container id of the process (cgroup v1 and v2, the cgroupfs and systemd drivers, containerd,
//!   CRI-O and Docker).
//!
//! [`attribute`] combines what each source answered into one [`ProcessOwner`] per process and
//! never guesses: a GPU shared by several containers yields candidates, not a pick.
//!
//! [`PodResourcesClient::check`] and [`ProcRoot::check`] try each source once as configured
//! (a `List` of the kubelet; the processes under `/proc` and one cgroup file) and say what they
//! found or why the source cannot be used ([`SourceCheck`]), for an agent to report at start-up.
//!
//! Architecture invariant: reads only, each bounded by a deadline; file reads run on the
//! blocking pool. The crate never prints, exits or reads the environment.

mod attribute;
mod cgroup;
mod check;
mod error;
mod podresources;
mod procfs;

/// The pod-resources v1 messages and service, generated from the vendored kubelet proto.
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    missing_debug_implementations
)]
pub mod proto {
    tonic::include_proto!("v1");
}

pub use attribute::{GpuProcessRef, attribute};
pub use cgroup::{CgroupIdentity, CgroupLookup, parse_cgroup};
pub use check::{CheckState, Problem, SourceCheck};
pub use error::{Error, Result};
pub use gpu_mcp_model::{AttributionSource, PodRef, ProcessOwner};
pub use podresources::{DEFAULT_SOCKET, DeviceAllocations, PodResourcesClient, is_gpu_resource};
pub use procfs::{HostProcess, ProcRoot};
