//! Removing what the real node leaves on this machine once its processes stop: its containers
//! (by runc's state in the layout), their network namespaces, the mounts under the layout, the
//! kubelet's cgroups and its links in `/var/log/containers`.
//!
//! Everything here is found through the layout (runc's root, the mount points, the cgroup root
//! named after the state directory, link targets), so nothing of another runtime is touched.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::bail;

use super::config::Layout;
use crate::util::host;

/// Deletes every container runc knows in the layout (`runc delete --force`, which kills it)
/// and then the network namespaces they joined, returning how many containers there were.
/// Safe to repeat.
pub(crate) fn delete_containers(layout: &Layout) -> usize {
    let Some(runc) = host::which("runc") else {
        return 0;
    };
    let namespaces = network_namespaces(layout);
    let mut deleted = 0;
    for (root, id) in runc_containers(layout) {
        let _ = Command::new(&runc)
            .arg("--root")
            .arg(&root)
            .args(["delete", "--force", &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        deleted += 1;
    }
    remove_network_namespaces(&namespaces);
    deleted
}

/// `(runc root, container id)` of every container in the layout: the shim keeps one runc root
/// per containerd namespace under the configured root.
fn runc_containers(layout: &Layout) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let Ok(namespaces) = fs::read_dir(layout.runc_root()) else {
        return found;
    };
    for root in namespaces.flatten().map(|e| e.path()) {
        let Ok(containers) = fs::read_dir(&root) else {
            continue;
        };
        for entry in containers.flatten() {
            if entry.path().join("state.json").is_file()
                && let Some(id) = entry.file_name().to_str()
            {
                found.push((root.clone(), id.to_owned()));
            }
        }
    }
    found
}

/// The named network namespaces (`/run/netns/cni-…`) the layout's containers joined.
fn network_namespaces(layout: &Layout) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for (root, id) in runc_containers(layout) {
        let Ok(text) = fs::read_to_string(root.join(&id).join("state.json")) else {
            continue;
        };
        let Ok(state) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let namespaces = state["config"]["namespaces"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for ns in namespaces {
            if ns["type"] == "NEWNET"
                && let Some(path) = ns["path"].as_str().map(PathBuf::from)
                && is_named_cni_namespace(&path)
                && !paths.contains(&path)
            {
                paths.push(path);
            }
        }
    }
    paths
}

/// Whether `path` is a network namespace containerd's CRI plugin created and named.
fn is_named_cni_namespace(path: &Path) -> bool {
    (path.starts_with("/var/run/netns") || path.starts_with("/run/netns"))
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("cni-"))
}

/// Unmounts and removes the given network namespaces.
fn remove_network_namespaces(paths: &[PathBuf]) {
    for path in paths {
        unmount(path);
        let _ = fs::remove_file(path);
    }
}

/// Mount points in `mountinfo` (`/proc/self/mountinfo`'s text) at or under `root`, deepest first.
pub(crate) fn mounts_under(mountinfo: &str, root: &Path) -> Vec<PathBuf> {
    let mut mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(unescape_mount_path(point)))
        .filter(|point| point.starts_with(root))
        .collect();
    mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    mounts.dedup();
    mounts
}

/// `mountinfo` writes space, tab, newline and backslash as octal escapes (`\040`).
fn unescape_mount_path(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unmount(path: &Path) {
    let quiet = |args: &[&str]| {
        Command::new("umount")
            .args(args)
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !quiet(&[]) {
        quiet(&["-l"]);
    }
}

/// Unmounts everything mounted under the layout (pod volumes, container root filesystems,
/// sandbox `/dev/shm`, the kubelet's own bind mount); fails naming what is still mounted.
pub(crate) fn unmount_all(layout: &Layout) -> anyhow::Result<()> {
    let read = || fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for point in mounts_under(&read(), &layout.root) {
        unmount(&point);
    }
    let left = mounts_under(&read(), &layout.root);
    if !left.is_empty() {
        bail!(
            "still mounted after unmounting: {}",
            left.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// Mount points of every cgroup hierarchy (v1 controllers or the v2 tree).
pub(crate) fn cgroup_mounts(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (fields, tail) = line.split_once(" - ")?;
            let fstype = tail.split(' ').next()?;
            matches!(fstype, "cgroup" | "cgroup2")
                .then(|| {
                    fields
                        .split(' ')
                        .nth(4)
                        .map(|p| PathBuf::from(unescape_mount_path(p)))
                })
                .flatten()
        })
        .collect()
}

/// Removes the kubelet's cgroup root in every hierarchy, killing any process still in it
/// (they can only be the layout's containers).
pub(crate) fn remove_cgroups(layout: &Layout) {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let relative = layout.cgroup_root().trim_start_matches('/').to_owned();
    for mount in cgroup_mounts(&mountinfo) {
        let root = mount.join(&relative);
        if root.is_dir() {
            remove_cgroup_tree(&root);
        }
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.lines().filter(|l| !l.trim().is_empty()) {
            let _ = Command::new("kill")
                .args(["-KILL", pid.trim()])
                .stderr(Stdio::null())
                .status();
        }
    }
    for _ in 0..20 {
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Removes the kubelet's links in `/var/log/containers` that point into the layout.
pub(crate) fn remove_log_links(layout: &Layout) {
    let Ok(entries) = fs::read_dir("/var/log/containers") else {
        return;
    };
    for entry in entries.flatten() {
        if fs::read_link(entry.path()).is_ok_and(|target| target.starts_with(&layout.root)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
31 22 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
40 22 0:50 / /s/t/real-node/kubelet/root rw shared:5 - ext4 /dev/vda rw
41 40 0:51 / /s/t/real-node/kubelet/root/pods/u/volumes/kubernetes.io~projected/kube\\040api rw - tmpfs tmpfs rw
42 22 0:52 / /s/t/real-node-other rw - tmpfs tmpfs rw
";

    #[test]
    fn finds_mounts_under_the_layout_deepest_first() {
        let mounts = mounts_under(MOUNTINFO, Path::new("/s/t/real-node"));
        assert_eq!(
            mounts,
            [
                PathBuf::from(
                    "/s/t/real-node/kubelet/root/pods/u/volumes/kubernetes.io~projected/kube api"
                ),
                PathBuf::from("/s/t/real-node/kubelet/root"),
            ]
        );
    }

    #[test]
    fn finds_every_cgroup_hierarchy() {
        assert_eq!(
            cgroup_mounts(MOUNTINFO),
            [
                PathBuf::from("/sys/fs/cgroup/memory"),
                PathBuf::from("/sys/fs/cgroup/unified")
            ]
        );
    }

    #[test]
    fn only_containerds_named_namespaces_are_removed() {
        assert!(is_named_cni_namespace(Path::new("/var/run/netns/cni-1234")));
        assert!(is_named_cni_namespace(Path::new("/run/netns/cni-1234")));
        assert!(!is_named_cni_namespace(Path::new("/proc/42/ns/net")));
        assert!(!is_named_cni_namespace(Path::new("/run/netns/mine")));
    }

    #[test]
    fn reads_network_namespaces_from_runc_state() {
        let dir = std::env::temp_dir().join(format!("gpu-mcp-teardown-{}", std::process::id()));
        let layout = Layout::new(&dir);
        let container = layout.runc_root().join("k8s.io").join("abc");
        fs::create_dir_all(&container).unwrap();
        fs::write(
            container.join("state.json"),
            r#"{"config":{"namespaces":[{"type":"NEWPID"},{"type":"NEWNET","path":"/var/run/netns/cni-77"}]}}"#,
        )
        .unwrap();
        assert_eq!(
            runc_containers(&layout),
            [(layout.runc_root().join("k8s.io"), "abc".to_owned())]
        );
        assert_eq!(
            network_namespaces(&layout),
            [PathBuf::from("/var/run/netns/cni-77")]
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
