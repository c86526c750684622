//! How the simulated GPUs are wired, by model: an HGX baseboard with NVSwitch (A100, H100: every
//! NVLink link to one of four switches, NV# between every pair), DGX-1's hybrid cube mesh (V100:
//! six links straight to four other GPUs, [`DGX1_MESH`]), or PCIe only (L4). Two sockets: the
//! first half of the GPUs on NUMA node 0, the rest on node 1; GPUs share PCIe switches as the
//! model's server does. The topology scenarios live here too.

use gpu_mcp_model::{
    CounterChanges, FabricInfo, FabricState, GpuSnapshot, GpuTopology, LinkChanges, NvLink,
    NvLinkRemote, P2pStatus, PciLevel, PeerPath, Reading, RemoteKind, topology::nvlinks_between,
};

use super::fleet::{MockEvents, MockIdentity, fnv, pci_bus_id, uuid_from, v};
use super::models::{Interconnect, ModelSpec};
use super::profile::MockGpu;

/// PCI bus ids of the four NVSwitches of an HGX baseboard.
const NVSWITCH_BUSES: [&str; 4] = [
    "0000:05:00.0",
    "0000:06:00.0",
    "0000:07:00.0",
    "0000:08:00.0",
];

/// The socket (NUMA node) of GPU `index` of `count`: the first half on node 0.
fn socket(index: u32, count: u32) -> u32 {
    u32::from(index >= count.div_ceil(2).max(1))
}

/// The CPUs of `socket` on a two-socket host with `cores` cores per socket and hyperthreads
/// numbered after every core.
fn cpus(socket: u32, cores: u32) -> String {
    let a = socket * cores;
    let b = 2 * cores + socket * cores;
    format!("{a}-{},{b}-{}", a + cores - 1, b + cores - 1)
}

/// The bonded NVLink links between the GPUs of a DGX-1 with V100 (its hybrid cube mesh): row `a`,
/// column `b` is the `NV#` that `nvidia-smi topo -m` prints for GPU `a` and GPU `b` there.
///
/// ```text
///       GPU0 GPU1 GPU2 GPU3 GPU4 GPU5 GPU6 GPU7
/// GPU0   X   NV1  NV1  NV2  NV2  SYS  SYS  SYS
/// GPU1  NV1   X   NV2  NV1  SYS  NV2  SYS  SYS
/// GPU2  NV1  NV2   X   NV2  SYS  SYS  NV1  SYS
/// GPU3  NV2  NV1  NV2   X   SYS  SYS  SYS  NV1
/// GPU4  NV2  SYS  SYS  SYS   X   NV1  NV1  NV2
/// GPU5  SYS  NV2  SYS  SYS  NV1   X   NV2  NV1
/// GPU6  SYS  SYS  NV1  SYS  NV1  NV2   X   NV2
/// GPU7  SYS  SYS  SYS  NV1  NV2  NV1  NV2   X
/// ```
///
/// As `nvidia-smi topo -m` prints it on a DGX-1 with V100, GPUs 0-3 on the socket of CPUs
/// 0-19,40-59 and 4-7 on 20-39,60-79 (two 20-core Xeons): the "GPU topology examples" gist
/// (<https://gist.github.com/ashwin/e139748bdba15f5af63f0146d01ee4c3>, 2017, with the DGX-1's
/// mlx5 NICs); the same matrix is printed for other 8x V100-SXM2 boards, for example in
/// Oneflow-Inc/DLPerf's benchmark reports (`HugeCTR/reports/hugectr_test_4x8v100_report.md`).
/// Each V100 has six links, so every row sums to six. Within a socket every pair is linked;
/// across sockets only GPU `i` and `i + 4`, and the other cross-socket pairs are `SYS`.
pub(crate) const DGX1_MESH: [[u8; 8]; 8] = [
    [0, 1, 1, 2, 2, 0, 0, 0],
    [1, 0, 2, 1, 0, 2, 0, 0],
    [1, 2, 0, 2, 0, 0, 1, 0],
    [2, 1, 2, 0, 0, 0, 0, 1],
    [2, 0, 0, 0, 0, 1, 1, 2],
    [0, 2, 0, 0, 1, 0, 2, 1],
    [0, 0, 1, 0, 1, 2, 0, 2],
    [0, 0, 0, 1, 2, 1, 2, 0],
];

/// The far end of each of GPU `index`'s mesh links, link 0 first: [`DGX1_MESH`]'s row, each peer
/// once per link, in the order of the peers' indexes. A node with more than eight such GPUs is
/// wired as DGX-1 boards of eight. (The driver numbers the links of a real board its own way;
/// `nvidia-smi topo -m` and the pair counts do not depend on it.)
fn mesh_peers(index: u32) -> Vec<u32> {
    let board = index - index % 8;
    DGX1_MESH[(index % 8) as usize]
        .iter()
        .zip(board..)
        .flat_map(|(links, peer)| std::iter::repeat_n(peer, usize::from(*links)))
        .collect()
}

/// The GPU's NVLink links, each with its far end; a mesh link to a GPU the node does not have
/// is not wired.
pub(super) fn nvlinks(id: &MockIdentity<'_>) -> Reading<Vec<NvLink>> {
    let s = id.spec;
    let link = |l: u32, remote: NvLinkRemote| NvLink {
        link: l,
        active: true,
        disabled: false,
        replay_errors: v(0),
        recovery_errors: v(0),
        crc_flit_errors: v(0),
        crc_data_errors: v(0),
        remote: v(remote),
    };
    match s.interconnect {
        // As the mock always reported a GPU without NVLink: no links.
        Interconnect::Pcie => v(Vec::new()),
        Interconnect::NvSwitch => v((0..s.nvlinks)
            .map(|l| {
                let sw = (l * NVSWITCH_BUSES.len() as u32 / s.nvlinks.max(1)) as usize;
                link(
                    l,
                    NvLinkRemote {
                        kind: RemoteKind::Nvswitch,
                        pci_bus_id: Some(NVSWITCH_BUSES[sw].to_owned()),
                    },
                )
            })
            .collect()),
        Interconnect::DirectNvlink => v(mesh_peers(id.index)
            .into_iter()
            .take(s.nvlinks as usize)
            .enumerate()
            .filter(|(_, peer)| *peer < id.count)
            .map(|(l, peer)| {
                link(
                    l as u32,
                    NvLinkRemote {
                        kind: RemoteKind::Gpu,
                        pci_bus_id: Some(pci_bus_id(s, peer)),
                    },
                )
            })
            .collect()),
    }
}

/// The GPU's NUMA node, CPUs and fabric registration; the peers are filled by [`wire`].
pub(super) fn gpu_topology(id: &MockIdentity<'_>) -> GpuTopology {
    let s = id.spec;
    let node = socket(id.index, id.count);
    let fabric = if s.fabric_info {
        v(FabricInfo {
            state: FabricState::Completed,
            status: "success".to_owned(),
            clique_id: 1,
            cluster_uuid: Some(uuid_from("", &[id.node, "fabric"])),
            bandwidth_degraded: Some(false),
        })
    } else {
        Reading::NotSupported
    };
    GpuTopology {
        numa_node: v(node),
        cpu_affinity: v(cpus(node, s.cores_per_socket)),
        peers: v(Vec::new()),
        fabric,
    }
}

/// Whether a GPU's fabric registration (when it has one) is done.
fn fabric_ready(g: &GpuSnapshot) -> bool {
    g.topology
        .fabric
        .value()
        .is_none_or(|f| f.state == FabricState::Completed)
}

/// Fills every GPU's path to every other GPU: the PCIe level from the server layout, and the
/// P2P status a driver reports (over NVLink when the pair has up links and the fabric is done;
/// over PCIe within a socket).
pub(super) fn wire(gpus: &mut [GpuSnapshot], layout: &[MockGpu]) {
    let count = gpus.len() as u32;
    let spec = |i: u32| -> &'static ModelSpec { layout[i as usize].model.spec() };
    let mut all = Vec::with_capacity(gpus.len());
    for a in gpus.iter() {
        let mut peers = Vec::new();
        for b in gpus.iter().filter(|b| b.index != a.index) {
            let per_switch = spec(a.index).gpus_per_pcie_switch.max(1);
            let level = if a.index / per_switch == b.index / per_switch {
                PciLevel::Single
            } else if socket(a.index, count) == socket(b.index, count) {
                PciLevel::Node
            } else {
                PciLevel::System
            };
            let nvlinks = nvlinks_between(a, b).unwrap_or(0);
            let ready = fabric_ready(a) && fabric_ready(b);
            let pcie_ok = level <= PciLevel::Node;
            let rw = if (nvlinks > 0 && ready) || pcie_ok {
                P2pStatus::Ok
            } else {
                P2pStatus::ChipsetNotSupported
            };
            let over_nvlink = if nvlinks > 0 && ready {
                P2pStatus::Ok
            } else {
                P2pStatus::NotSupported
            };
            peers.push(PeerPath {
                gpu: b.index,
                pci_level: v(level),
                p2p_read: v(rw),
                p2p_write: v(rw),
                p2p_nvlink: v(over_nvlink),
            });
        }
        all.push(peers);
    }
    for (g, peers) in gpus.iter_mut().zip(all) {
        if g.topology.peers.value().is_some() {
            g.topology.peers = v(peers);
        }
    }
}

/// Scenario `nvlink-degraded`: link 7 of the GPU is down and link 3 is replaying now, so every
/// pair with this GPU has one bonded link fewer.
pub(super) fn nvlink_degraded(id: &MockIdentity<'_>, gpu: &mut GpuSnapshot) {
    let Reading::Value(links) = &mut gpu.nvlink else {
        // A PCIe-only model has no link to take down.
        return;
    };
    if links.len() < 8 {
        return;
    }
    links[7].active = false;
    let replays = 40 + fnv(&[id.node, &id.idx, "replay"]) % 40;
    links[3].replay_errors = v(1_200 + replays);
    gpu.since_previous = Some(CounterChanges {
        interval_ms: 60_000,
        pcie_replays: Some(0),
        ecc_uncorrected: Some(0),
        nvlink: vec![LinkChanges {
            link: 3,
            replay: Some(replays),
            recovery: Some(0),
            crc: Some(0),
        }],
        previous_draw_w: gpu.power.draw_w.get(),
        previous_limit_w: gpu.power.enforced_limit_w.get(),
    });
}

/// Scenarios `fabric-in-progress` and `fabric-not-started`: the fabric manager has not finished
/// registering the GPU, so its NVLink links are not trained yet (CUDA cannot start on it).
pub(super) fn fabric_unfinished(gpu: &mut GpuSnapshot, state: FabricState) {
    let Reading::Value(f) = &mut gpu.topology.fabric else {
        // Not an NVSwitch GPU that reports its registration.
        return;
    };
    f.state = state;
    f.status = "pending".to_owned();
    f.clique_id = 0;
    f.cluster_uuid = None;
    f.bandwidth_degraded = None;
    if let Reading::Value(links) = &mut gpu.nvlink {
        for l in links.iter_mut() {
            l.active = false;
        }
    }
}

/// Scenario `nvswitch-fatal-sxid`: two non-fatal SXids and then a fatal one on the NVSwitch
/// that the GPU's first NVLink goes to; nothing on a model without NVSwitch.
pub(super) fn nvswitch_fatal_sxid(gpu: &GpuSnapshot, ev: &mut MockEvents) {
    let Some(pci) = gpu
        .nvlink
        .value()
        .and_then(|links| links.first())
        .and_then(|l| l.remote.value())
        .filter(|r| r.kind == RemoteKind::Nvswitch)
        .and_then(|r| r.pci_bus_id.clone())
    else {
        return;
    };
    let instance = NVSWITCH_BUSES
        .iter()
        .position(|b| *b == pci)
        .map_or(0, |i| i as u32);
    let switch = (instance, pci.as_str());
    ev.push_sxid(
        31,
        switch,
        (12028, false, 44),
        "egress non-posted PRIV error (First)",
    );
    ev.push_sxid(
        29,
        switch,
        (12028, false, 44),
        "egress non-posted PRIV error",
    );
    ev.push_sxid(
        7,
        switch,
        (24007, true, 44),
        "sourcetrack timeout error (First)",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dgx1_mesh_is_symmetric_with_six_links_per_gpu() {
        for (a, row) in DGX1_MESH.iter().enumerate() {
            assert_eq!(row[a], 0, "GPU{a} has no link to itself");
            assert_eq!(row.iter().map(|n| u32::from(*n)).sum::<u32>(), 6, "GPU{a}");
            for (b, links) in row.iter().enumerate() {
                assert_eq!(*links, DGX1_MESH[b][a], "GPU{a}-GPU{b}");
                // Every pair within a socket is linked; across, only GPU i and i + 4.
                let same_socket = a / 4 == b / 4;
                if a != b && (same_socket || a % 4 == b % 4) {
                    assert!(*links > 0, "GPU{a}-GPU{b}");
                } else {
                    assert_eq!(*links, 0, "GPU{a}-GPU{b}");
                }
            }
        }
    }

    #[test]
    fn each_link_goes_to_a_peer_of_the_mesh_and_boards_repeat_by_eight() {
        assert_eq!(mesh_peers(0), [1, 2, 3, 3, 4, 4]);
        assert_eq!(mesh_peers(6), [2, 4, 5, 5, 7, 7]);
        assert_eq!(mesh_peers(8), [9, 10, 11, 11, 12, 12]);
        assert_eq!(mesh_peers(15), [11, 12, 12, 13, 14, 14]);
    }
}
