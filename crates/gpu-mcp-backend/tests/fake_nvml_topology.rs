//! The real NVML backend's topology reads (NUMA, CPU affinity, common PCIe ancestor and P2P
//! status per pair, NVLink far ends, fabric registration) against the fake driver library.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use gpu_mcp_backend::{GpuBackend, NvmlBackend, NvmlOptions};
use gpu_mcp_fake_nvml::FakeNvml;
use gpu_mcp_model::{
    FabricState, GpuAccess, NodeSnapshot, P2pStatus, PciLevel, Reading, RemoteKind,
};

fn options(fake: &FakeNvml) -> NvmlOptions {
    NvmlOptions {
        library_path: Some(fake.library_path().to_owned()),
        call_timeout: Duration::from_secs(5),
        record_xid_events: false,
        ..NvmlOptions::default()
    }
}

/// A snapshot through the library `_fake` installed (kept alive by the caller).
async fn snapshot_with(_fake: &FakeNvml, options: NvmlOptions) -> NodeSnapshot {
    let nvml = NvmlBackend::init(options).unwrap();
    nvml.snapshot().await.unwrap()
}

async fn snapshot(name: &str) -> NodeSnapshot {
    let fake = FakeNvml::install_fixture(name).unwrap();
    let o = options(&fake);
    snapshot_with(&fake, o).await
}

#[tokio::test]
async fn an_hgx_h100_reads_numa_cpus_pairs_far_ends_and_fabric() {
    let s = snapshot("healthy").await;
    for g in &s.gpus {
        let t = &g.topology;
        let socket = u32::from(g.index >= 4);
        assert_eq!(t.numa_node, Reading::Value(socket), "GPU {}", g.index);
        let cpus = if socket == 0 {
            "0-55,112-167"
        } else {
            "56-111,168-223"
        };
        assert_eq!(t.cpu_affinity, Reading::Value(cpus.to_owned()));
        let peers = t.peers.value().unwrap();
        assert_eq!(peers.len(), 7);
        for p in peers {
            let same_socket = (p.gpu >= 4) == (g.index >= 4);
            let level = if same_socket {
                PciLevel::Node
            } else {
                PciLevel::System
            };
            assert_eq!(
                p.pci_level,
                Reading::Value(level),
                "{} -> {}",
                g.index,
                p.gpu
            );
            assert_eq!(p.p2p_read, Reading::Value(P2pStatus::Ok));
            assert_eq!(p.p2p_nvlink, Reading::Value(P2pStatus::Ok));
        }
        let f = t.fabric.value().unwrap();
        assert_eq!(f.state, FabricState::Completed);
        assert_eq!(f.status, "success");
        assert_eq!(f.clique_id, 1);
        assert_eq!(
            f.cluster_uuid.as_deref(),
            Some("7c1e35a9-54b2-4c6e-9d7e-2f0b8a6c4d11")
        );
        assert_eq!(f.bandwidth_degraded, Some(false));
        for l in g.nvlink.value().unwrap() {
            let r = l.remote.value().unwrap();
            assert_eq!(r.kind, RemoteKind::Nvswitch);
            assert_eq!(r.pci_bus_id.as_deref(), Some("0000:05:00.0"));
        }
    }
}

#[tokio::test]
async fn an_unfinished_or_failed_fabric_is_read_as_the_driver_says() {
    let s = snapshot("fabric-in-progress").await;
    let f = s.gpus[3].topology.fabric.value().unwrap();
    assert_eq!(f.state, FabricState::InProgress);
    assert_eq!(f.cluster_uuid, None);
    assert_eq!(f.bandwidth_degraded, None);
    let s = snapshot("fabric-registration-failed").await;
    let f = s.gpus[3].topology.fabric.value().unwrap();
    assert_eq!(f.state, FabricState::Completed);
    assert_ne!(f.status, "success");
    let s = snapshot("fabric-bandwidth-degraded").await;
    assert_eq!(
        s.gpus[3]
            .topology
            .fabric
            .value()
            .unwrap()
            .bandwidth_degraded,
        Some(true)
    );
}

#[tokio::test]
async fn an_old_driver_without_the_versioned_fabric_call_uses_the_first_one() {
    let s = snapshot("fabric-old-driver").await;
    for g in &s.gpus {
        let f = g.topology.fabric.value().unwrap();
        assert_eq!(f.state, FabricState::Completed);
        assert_eq!(f.clique_id, 1);
        assert_eq!(f.bandwidth_degraded, None, "v1 has no health mask");
    }
}

#[tokio::test]
async fn unsupported_topology_calls_are_data_not_a_failed_read() {
    let s = snapshot("topology-unsupported").await;
    let g = &s.gpus[3];
    assert_eq!(g.access, GpuAccess::Ok);
    let t = &g.topology;
    assert_eq!(t.numa_node, Reading::NotSupported);
    assert_eq!(t.cpu_affinity, Reading::NotSupported);
    assert_eq!(t.fabric, Reading::NotSupported);
    for p in t.peers.value().unwrap() {
        assert_eq!(p.pci_level, Reading::NotSupported);
        assert_eq!(p.p2p_read, Reading::NotSupported);
    }
    assert!(
        g.nvlink
            .value()
            .unwrap()
            .iter()
            .all(|l| l.active && l.remote == Reading::NotSupported)
    );
    // The other GPUs still read their path to GPU 3.
    let p = s.gpus[0].topology.peers.value().unwrap();
    assert_eq!(p[2].gpu, 3);
    assert_eq!(p[2].pci_level, Reading::Value(PciLevel::Node));
}

#[tokio::test]
async fn a_lost_gpu_is_left_out_of_the_pairs_with_the_reason() {
    let s = snapshot("gpu-lost-handle").await;
    assert_eq!(s.gpus[3].access, GpuAccess::Lost);
    let p = s.gpus[0].topology.peers.value().unwrap();
    let to3 = p.iter().find(|p| p.gpu == 3).unwrap();
    let Reading::Error(why) = &to3.pci_level else {
        panic!("{to3:?}")
    };
    assert!(why.contains("GPU 3"), "{why}");
    assert_eq!(
        p.iter().find(|p| p.gpu == 1).unwrap().pci_level,
        Reading::Value(PciLevel::Node)
    );
}

#[tokio::test]
async fn a_hung_gpu_does_not_hold_up_the_others_pairs() {
    let s = snapshot("unresponsive-gpu").await;
    assert_eq!(s.gpus[3].access, GpuAccess::Unresponsive);
    let p = s.gpus[0].topology.peers.value().unwrap();
    assert!(
        p.iter()
            .find(|p| p.gpu == 3)
            .unwrap()
            .pci_level
            .value()
            .is_none()
    );
    assert_eq!(
        p.iter().find(|p| p.gpu == 7).unwrap().pci_level,
        Reading::Value(PciLevel::System)
    );
}

#[tokio::test]
async fn without_nvml_numa_the_node_comes_from_sysfs() {
    let fake = FakeNvml::install_fixture("numa-from-sysfs").unwrap();
    let root: PathBuf = std::env::temp_dir().join(format!(
        "gpu-mcp-sysfs-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    // GPU 0 (bus 0x18) on node 1; GPU 1 (bus 0x2a) with -1 (no NUMA); the rest absent.
    for (bus, node) in [("18", "1\n"), ("2a", "-1\n")] {
        let dir = root.join(format!("bus/pci/devices/0000:{bus}:00.0"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("numa_node"), node).unwrap();
    }
    let s = snapshot_with(
        &fake,
        NvmlOptions {
            sysfs_root: root.clone(),
            ..options(&fake)
        },
    )
    .await;
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(s.gpus[0].topology.numa_node, Reading::Value(1));
    assert_eq!(s.gpus[1].topology.numa_node, Reading::NotSupported);
    assert_eq!(s.gpus[2].topology.numa_node, Reading::NotSupported);
}

#[tokio::test]
async fn pcie_levels_follow_the_switches_two_gpus_share() {
    // GPUs 0 and 1 under the same switches, GPU 2 under a sibling switch, GPU 3 straight on
    // the host bridge, all on one socket.
    let fake = FakeNvml::install(
        r#"{"gpu_count": 4, "gpus": {
            "0": {"pci_path": {"socket": 0, "host_bridge": 0, "switches": [1, 2]}},
            "1": {"pci_path": {"socket": 0, "host_bridge": 0, "switches": [1, 2]}},
            "2": {"pci_path": {"socket": 0, "host_bridge": 0, "switches": [1, 3]}},
            "3": {"pci_path": {"socket": 0, "host_bridge": 0, "switches": []}}}}"#,
    )
    .unwrap();
    let o = options(&fake);
    let s = snapshot_with(&fake, o).await;
    let level = |a: usize, b: u32| {
        s.gpus[a]
            .topology
            .peers
            .value()
            .unwrap()
            .iter()
            .find(|p| p.gpu == b)
            .unwrap()
            .pci_level
            .clone()
    };
    assert_eq!(level(0, 1), Reading::Value(PciLevel::Single));
    assert_eq!(level(0, 2), Reading::Value(PciLevel::Multiple));
    assert_eq!(level(2, 3), Reading::Value(PciLevel::HostBridge));
    assert_eq!(level(1, 0), Reading::Value(PciLevel::Single));
}
