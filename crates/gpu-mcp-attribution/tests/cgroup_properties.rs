//! Properties of the cgroup parser, which reads text any process on the node can shape (its
//! cgroup path): it never panics, what it returns is always a well-formed pod UID and container
//! id, and every layout the kubelet writes is read back to the UID and id it was written with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gpu_mcp_attribution::{CgroupIdentity, parse_cgroup};
use proptest::prelude::*;

/// 256 cases, or `PROPTEST_CASES` for a longer hunt.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    config
}

fn is_uid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Pieces that cgroup paths are made of, mixed with anything.
fn cgroup_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "0::",
            "12:memory:",
            "1:name=systemd:",
            "/",
            "kubepods",
            "kubepods.slice",
            "kubepods-burstable",
            "-pod",
            "pod",
            ".slice",
            ".scope",
            "cri-containerd-",
            "crio-",
            "docker-",
            "burstable",
            "besteffort",
            "\n",
            ":",
            "-",
            "_",
        ])
        .prop_map(str::to_owned),
        "[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}",
        "[0-9a-f]{64}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..20).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_is_read_without_panicking(text in cgroup_text()) {
        if let Some(identity) = parse_cgroup(&text) {
            let uid = identity.pod_uid.as_deref().unwrap();
            prop_assert!(is_uid(uid), "{uid}");
            if let Some(id) = &identity.container_id {
                prop_assert!(id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()));
            }
        }
    }

    #[test]
    fn every_kubelet_layout_reads_back(
        uid in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        cid in prop::option::of("[0-9a-f]{64}"),
        qos in prop::sample::select(vec!["", "burstable", "besteffort"]),
        systemd in any::<bool>(),
        v2 in any::<bool>(),
        runtime in prop::sample::select(vec!["cri-containerd", "crio", "docker"]),
        noise in prop::collection::vec("[0-9]{1,2}:[a-z,=]{0,16}:/[a-z./-]{0,24}", 0..4),
    ) {
        let path = if systemd {
            let pod_uid = uid.replace('-', "_");
            let (qos_slice, pod_slice) = if qos.is_empty() {
                (String::new(), format!("kubepods-pod{pod_uid}.slice"))
            } else {
                (
                    format!("/kubepods-{qos}.slice"),
                    format!("kubepods-{qos}-pod{pod_uid}.slice"),
                )
            };
            let container = cid
                .as_ref()
                .map(|c| format!("/{runtime}-{c}.scope"))
                .unwrap_or_default();
            format!("/kubepods.slice{qos_slice}/{pod_slice}{container}")
        } else {
            let qos_dir = if qos.is_empty() { String::new() } else { format!("/{qos}") };
            let container = cid.as_ref().map(|c| format!("/{c}")).unwrap_or_default();
            format!("/kubepods{qos_dir}/pod{uid}{container}")
        };
        let line = if v2 { format!("0::{path}") } else { format!("4:devices:{path}") };
        let mut lines = noise;
        lines.push(line);
        let text = lines.join("\n");
        let expected = CgroupIdentity {
            pod_uid: Some(uid),
            container_id: cid,
        };
        prop_assert_eq!(parse_cgroup(&text), Some(expected), "{}", text);
    }
}
