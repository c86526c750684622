//! The real node: a kubelet built from the control plane's Kubernetes release, containerd and
//! runc from the distribution's packages, CNI plugins and a pause image built here, joined to
//! the local control plane beside the kwok nodes (`cargo xtask cluster up --real-node`).
//!
//! containerd runs with its own configuration, sockets and state under `<state>/real-node/`
//! (a containerd of the host is never used or touched); the kubelet serves on 127.0.0.1 with the
//! cluster's certificates, so `pods/exec` and logs go through its real streaming server. The
//! node's address is 127.0.0.1; its pods get addresses of a /24 of 198.18.0.0/15 (reserved for
//! network tests) on veth pairs, routed on this machine only (pods that need the host's network
//! use `hostNetwork`). It is tainted and labelled like a
//! GPU node, so only workloads meant for GPU nodes (the agent's DaemonSet) land on it.
//!
//! `down` stops the kubelet, deletes every container through runc's state in the layout, stops
//! containerd and its shims, and removes the network namespaces, mounts, cgroups and log links
//! the node made ([`teardown`]).

mod config;
mod image;
mod teardown;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use super::gobuild;
use super::handle::ClusterHandle;
use super::kwok;
use super::pki::Pki;
use super::start::{Component, bin, wait_for};
use super::state::State;
use crate::util::{fs as files, host, net};

pub(crate) use config::{Layout, PAUSE_IMAGE};

/// Name of the real node.
pub(super) const NODE_NAME: &str = "gpu-mcp-real-node";
/// Process names in `state.json`.
pub(super) const CONTAINERD: &str = "containerd";
const KUBELET: &str = "kubelet";

/// The longest path a Unix socket may have (`sun_path` holds 108 bytes with the final NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The distribution's programs the real node runs.
#[derive(Debug, Clone)]
pub(super) struct HostTools {
    containerd: PathBuf,
    ctr: PathBuf,
    runc: PathBuf,
}

/// What the real node needs of this machine: root, mounted cgroups, overlayfs, and containerd
/// and runc (installed from the distribution with `apt-get` when missing). Fails naming every
/// missing piece at once.
pub(super) fn prepare_host(state_dir: &Path) -> anyhow::Result<HostTools> {
    let mut missing = Vec::new();
    if !host::is_root() {
        missing.push(
            "root: containerd, runc and the kubelet create namespaces, mounts and cgroups"
                .to_owned(),
        );
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if teardown::cgroup_mounts(&mountinfo).is_empty() {
        missing.push("mounted cgroups (v1 controllers or the v2 tree under /sys/fs/cgroup)".into());
    }
    let filesystems = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !filesystems
        .lines()
        .any(|l| l.trim_end().ends_with("overlay"))
    {
        missing.push(
            "the overlay filesystem (containerd's overlayfs snapshotter; `modprobe overlay`)"
                .into(),
        );
    }
    let socket = Layout::new(state_dir).containerd_socket();
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        missing.push(format!(
            "a shorter state directory: containerd's socket {} is longer than a Unix socket path may be ({MAX_SOCKET_PATH} bytes)",
            socket.display()
        ));
    }
    if !missing.is_empty() {
        bail!("the real node needs {}", missing.join("; "));
    }
    let programs = ["containerd", "containerd-shim-runc-v2", "ctr", "runc"];
    if programs.iter().any(|p| host::which(p).is_none()) {
        host::apt_install(&["containerd", "runc"], "the real node")?;
    }
    let find = |p: &str| {
        host::which(p).with_context(|| {
            format!("`{p}` is not installed (Debian: `apt-get install containerd runc`)")
        })
    };
    for p in programs {
        find(p)?;
    }
    Ok(HostTools {
        containerd: find("containerd")?,
        ctr: find("ctr")?,
        runc: find("runc")?,
    })
}

/// What [`start`] needs from the control plane's start.
pub(super) struct Join<'a> {
    pub(super) state_dir: &'a Path,
    pub(super) bins: &'a [(gobuild::GoModule, PathBuf)],
    pub(super) pki: &'a Pki,
    /// Kubeconfig of the node's identity (`system:node:<name>` in `system:nodes`).
    pub(super) kubeconfig: PathBuf,
    pub(super) handle: &'a ClusterHandle,
    pub(super) tools: &'a HostTools,
}

/// Starts containerd and the kubelet, imports the pause image and waits until the node is Ready.
pub(super) fn start(join: &Join<'_>, state: &mut State) -> anyhow::Result<RealNode> {
    let layout = Layout::new(join.state_dir);
    let routes = fs::read_to_string("/proc/net/route").unwrap_or_default();
    let pod_subnet = config::free_pod_subnet(&routes)
        .context("every /24 of 198.18.0.0/15 is routed already: no pod subnet is free")?;
    let p = |path: &Path| path.display().to_string();
    for dir in [
        layout.root.join("containerd"),
        layout.runc_root(),
        layout.cni_bin(),
        layout.cni_conf(),
        layout.kubelet_root(),
        layout.pod_logs(),
        layout.images(),
    ] {
        files::create_dir(&dir)?;
    }
    for plugin in ["ptp", "host-local", "loopback"] {
        files::symlink(&bin(join.bins, plugin)?, &layout.cni_bin().join(plugin))?;
    }
    files::write(
        &layout.cni_conf().join("10-gpu-mcp.conflist"),
        serde_json::to_vec_pretty(&config::cni_conflist(&layout, &pod_subnet))?,
    )?;
    files::write(
        &layout.containerd_config(),
        config::containerd_toml(&layout, &join.tools.runc),
    )?;

    let containerd = Component {
        name: CONTAINERD,
        binary: join.tools.containerd.clone(),
        args: vec![format!("--config={}", p(&layout.containerd_config()))],
        envs: Vec::new(),
        state_dir: join.state_dir,
    }
    .spawn(state)?;
    let socket = layout.containerd_socket();
    let ctr = join.tools.ctr.clone();
    wait_for(
        "containerd to answer",
        &containerd,
        join.state_dir,
        Duration::from_secs(60),
        || {
            Command::new(&ctr)
                .arg("--address")
                .arg(&socket)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        },
    )?;
    let pause = image::pause_archive(&bin(join.bins, "pause")?, &layout.images())?;
    image::import(&join.tools.ctr, &socket, &pause)?;

    // The kubelet places every pod's cgroups under this root, which must exist.
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let cgroup_root = layout.cgroup_root();
    for mount in teardown::cgroup_mounts(&mountinfo) {
        files::create_dir(&mount.join(cgroup_root.trim_start_matches('/')))?;
    }

    let ports = net::free_ports(2)?;
    files::write(
        &layout.kubelet_config(),
        config::kubelet_yaml(
            &layout,
            &config::KubeletSettings {
                port: ports[0],
                healthz_port: ports[1],
                tls_cert: join.pki.serving_cert.clone(),
                tls_key: join.pki.serving_key.clone(),
                client_ca: join.pki.ca_cert.clone(),
            },
        ),
    )?;
    let kubelet = Component {
        name: KUBELET,
        binary: bin(join.bins, "kubelet")?,
        args: vec![
            format!("--config={}", p(&layout.kubelet_config())),
            format!("--kubeconfig={}", p(&join.kubeconfig)),
            format!("--root-dir={}", p(&layout.kubelet_root())),
            format!("--hostname-override={NODE_NAME}"),
            "--node-ip=127.0.0.1".into(),
            "--node-labels=nvidia.com/gpu.present=true".into(),
        ],
        envs: Vec::new(),
        state_dir: join.state_dir,
    }
    .spawn(state)?;

    // The kubelet refuses to publish a loopback address itself (and then leaves the node's
    // addresses alone), so the API server learns where to reach it from this patch.
    let addresses = serde_json::json!({"status": {"addresses": [
        {"type": "InternalIP", "address": "127.0.0.1"},
        {"type": "Hostname", "address": NODE_NAME},
    ]}})
    .to_string();
    wait_for(
        "the kubelet to register the real node",
        &kubelet,
        join.state_dir,
        Duration::from_secs(120),
        || {
            join.handle
                .kubectl_output(&[
                    "patch",
                    "node",
                    NODE_NAME,
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    &addresses,
                ])
                .is_ok()
        },
    )?;
    let names = [NODE_NAME.to_owned()];
    wait_for(
        "the real node to be Ready",
        &kubelet,
        join.state_dir,
        Duration::from_secs(120),
        || {
            join.handle
                .kubectl_output(&["get", "nodes", "-o", "json"])
                .ok()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .is_some_and(|list| kwok::all_nodes_ready(&list, &names))
        },
    )?;
    Ok(RealNode {
        name: NODE_NAME.to_owned(),
        pod_subnet,
    })
}

/// The real node of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RealNode {
    /// Its node name.
    pub name: String,
    /// Where its pods' addresses come from (`198.18.X.0/24`).
    pub pod_subnet: String,
}

impl RealNode {
    /// Whether `ip` is one of this node's pod addresses.
    pub fn has_pod_ip(&self, ip: std::net::IpAddr) -> bool {
        let std::net::IpAddr::V4(ip) = ip else {
            return false;
        };
        let [a, b, c, _] = ip.octets();
        self.pod_subnet.starts_with(&format!("{a}.{b}.{c}.0/"))
    }
}

/// Imports an image archive (`docker save` format) into the real node's containerd.
pub(super) fn import_image(state_dir: &Path, archive: &Path) -> anyhow::Result<()> {
    let ctr = host::which("ctr").context("`ctr` (containerd's client) is not installed")?;
    image::import(&ctr, &Layout::new(state_dir).containerd_socket(), archive)
}

/// Deletes the real node's containers (before containerd stops, and again after every process
/// stopped, for a state file that lost track of the kubelet).
pub(super) fn delete_containers(state_dir: &Path) -> usize {
    teardown::delete_containers(&Layout::new(state_dir))
}

/// Once every process is stopped: removes the network namespaces, mounts, cgroups and log
/// links the real node left. A state directory without a real node has nothing to remove.
pub(super) fn release(state_dir: &Path) -> anyhow::Result<()> {
    let layout = Layout::new(state_dir);
    if !layout.root.exists() {
        return Ok(());
    }
    teardown::delete_containers(&layout);
    teardown::remove_cgroups(&layout);
    teardown::remove_log_links(&layout);
    teardown::unmount_all(&layout).context("removing the real node's mounts")
}
