//! The pod UID and container id of a process, from the text of `/proc/<pid>/cgroup`.

/// What a process's cgroup says about its pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupIdentity {
    /// The pod UID (with dashes, as the API server spells it).
    pub pod_uid: Option<String>,
    /// The container id, without the runtime prefix.
    pub container_id: Option<String>,
}

/// What the host's `/proc` says about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupLookup {
    /// The process runs in a pod.
    Pod(CgroupIdentity),
    /// The process runs outside `kubepods` (a host process).
    Host,
    /// Its cgroup could not be read (the process is gone, or `/proc` is not the host's).
    Unreadable(String),
}

/// Reads the pod UID and container id from the contents of `/proc/<pid>/cgroup`.
///
/// Understands cgroup v1 (`N:controller:/path`) and v2 (`0::/path`) lines, the kubelet's
/// cgroupfs driver (`/kubepods/burstable/pod<uid>/<id>`) and systemd driver
/// (`kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope`, also
/// `crio-`, `docker-`), with or without a QoS level. Returns `None` for a process outside
/// `kubepods` (a host process).
pub fn parse_cgroup(contents: &str) -> Option<CgroupIdentity> {
    // Prefer the v2 unified line; otherwise any v1 line under kubepods (they agree).
    let mut best: Option<CgroupIdentity> = None;
    for line in contents.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Some(found) = parse_path(path) else {
            continue;
        };
        let unified = controllers.is_empty();
        let better = match &best {
            None => true,
            Some(b) => unified || (b.container_id.is_none() && found.container_id.is_some()),
        };
        if better {
            best = Some(found);
        }
        if unified {
            break;
        }
    }
    best
}

fn parse_path(path: &str) -> Option<CgroupIdentity> {
    if !path.contains("kubepods") {
        return None;
    }
    let mut identity = CgroupIdentity::default();
    for segment in path.split('/') {
        if let Some(uid) = pod_uid_of(segment) {
            identity.pod_uid = Some(uid);
        } else if identity.pod_uid.is_some()
            && let Some(id) = container_id_of(segment)
        {
            identity.container_id = Some(id);
        }
    }
    identity.pod_uid.as_ref()?;
    Some(identity)
}

/// `pod<uid>` (cgroupfs) or `kubepods[-qos]-pod<uid_with_underscores>.slice` (systemd).
fn pod_uid_of(segment: &str) -> Option<String> {
    let segment = segment.strip_suffix(".slice").unwrap_or(segment);
    let start = segment.rfind("pod")?;
    let before = &segment[..start];
    if !(before.is_empty() || before.ends_with('-')) {
        return None;
    }
    let uid = segment[start + 3..].replace('_', "-");
    is_uid(&uid).then_some(uid)
}

fn is_uid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    groups.len() == lengths.len()
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `<64 hex>` (cgroupfs) or `<runtime>-<64 hex>.scope` (systemd).
fn container_id_of(segment: &str) -> Option<String> {
    let segment = segment.strip_suffix(".scope").unwrap_or(segment);
    let id = segment.rsplit('-').next().unwrap_or(segment);
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "1b6b5a0e-3f4d-4c2a-9c1e-0123456789ab";
    const CID: &str = "4e3f0d8a9b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e";

    fn both() -> Option<CgroupIdentity> {
        Some(CgroupIdentity {
            pod_uid: Some(UID.into()),
            container_id: Some(CID.into()),
        })
    }

    #[test]
    fn cgroup_v1_cgroupfs_driver() {
        let text = format!(
            "12:memory:/kubepods/burstable/pod{UID}/{CID}\n11:cpu,cpuacct:/kubepods/burstable/pod{UID}/{CID}\n1:name=systemd:/\n"
        );
        assert_eq!(parse_cgroup(&text), both());
    }

    #[test]
    fn cgroup_v1_guaranteed_pod_has_no_qos_level() {
        let text = format!("4:devices:/kubepods/pod{UID}/{CID}\n");
        assert_eq!(parse_cgroup(&text), both());
    }

    #[test]
    fn cgroup_v2_systemd_driver_each_runtime() {
        let uid = UID.replace('-', "_");
        for runtime in ["cri-containerd", "crio", "docker"] {
            let text = format!(
                "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid}.slice/{runtime}-{CID}.scope\n"
            );
            assert_eq!(parse_cgroup(&text), both(), "{runtime}");
        }
        let text =
            format!("0::/kubepods.slice/kubepods-pod{uid}.slice/cri-containerd-{CID}.scope\n");
        assert_eq!(parse_cgroup(&text), both(), "guaranteed");
    }

    #[test]
    fn pod_level_cgroup_has_a_uid_but_no_container() {
        let text = format!("0::/kubepods/burstable/pod{UID}\n");
        assert_eq!(
            parse_cgroup(&text),
            Some(CgroupIdentity {
                pod_uid: Some(UID.into()),
                container_id: None
            })
        );
    }

    #[test]
    fn host_processes_and_junk_are_not_pods() {
        for text in [
            "0::/system.slice/nvidia-persistenced.service\n",
            "0::/user.slice/user-0.slice/session-1.scope\n",
            "",
            "garbage without colons",
            "0::/kubepods/burstable/podnot-a-uid/abc\n",
            "0::/kubepods.slice/kubepods-burstable.slice\n",
        ] {
            assert_eq!(parse_cgroup(text), None, "{text:?}");
        }
    }
}
