//! A real Kubernetes control plane on loopback for end-to-end tests (`cargo xtask cluster`).
//!
//! etcd, kube-apiserver (RBAC on), kube-controller-manager and kube-scheduler run as local
//! processes on 127.0.0.1; kwok plays the kubelets of N fake GPU nodes, so pods become Running
//! and Ready with loopback pod IPs (node `i` owns `127.0.<i+1>.0/24`), and `pods/exec` runs the
//! requested command on this machine.
//! Every binary is built from a pinned Go wrapper module in `testbed/k8s-bins/` (see `gobuild`).
//!
//! One job per module: `cli` (the subcommands), `up` (start, reuse, stop), `start` (the
//! components in order), `kwok` (fake nodes and kwok's configuration), `handle` (a started
//! cluster and kubectl against it), `state` (what is on disk, the lock), `procs` (detached
//! processes by pid), `pki` (certificates), `gobuild` (the Go builds), `smoke` (the self-check),
//! `realnode` (with `up --real-node`: a real kubelet on containerd joined beside the kwok nodes).
//!
//! The e2e runners and the benchmarks use [`ensure_up`], [`down`], [`helm_path`],
//! [`kubectl_path`] and [`ClusterHandle::token_kubeconfig`].

mod cli;
mod gobuild;
mod handle;
mod kwok;
mod pki;
mod procs;
mod realnode;
mod smoke;
mod start;
mod state;
mod up;

use std::path::PathBuf;

pub use cli::{Args, run};
pub use handle::ClusterHandle;
pub use realnode::RealNode;
pub use up::{UpOptions, down, ensure_up, up};

/// The built helm binary (built on first use).
pub fn helm_path() -> anyhow::Result<PathBuf> {
    gobuild::binary(&gobuild::HELM, "helm")
}

/// Checks what a real node needs of this machine (root, cgroups, overlayfs, a short enough
/// state directory), installing containerd and runc from the distribution when missing;
/// fails naming every missing piece.
pub fn real_node_prerequisites(state_dir: &std::path::Path) -> anyhow::Result<()> {
    realnode::prepare_host(&crate::util::fs::absolute(state_dir)?).map(drop)
}

/// The built kubectl binary (built on first use).
pub fn kubectl_path() -> anyhow::Result<PathBuf> {
    gobuild::binary(&gobuild::KUBERNETES, "kubectl")
}
