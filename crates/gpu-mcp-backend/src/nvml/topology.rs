//! Where a GPU sits in the node's wiring: NUMA node (NVML, else the PCI device's `numa_node` in
//! sysfs), CPU affinity, the common PCIe ancestor and peer-to-peer status with every other GPU,
//! the NVSwitch fabric registration, and the far end of each NVLink link.
//!
//! The per-GPU facts run inside the GPU's read, on its blocking thread under its deadline. The
//! pairs need two handles, so they are read in one step of their own after the GPUs' reads,
//! only between GPUs that answered (a hung GPU must not make the others' reads hang), under
//! the same deadline. A call the GPU or driver does not support (including a symbol an older
//! driver lacks) is "not supported", never a failed read.

use std::collections::BTreeMap;
use std::path::Path;

use gpu_mcp_model::{
    FabricInfo, FabricState, GpuAccess, GpuTopology, NvLinkRemote, P2pStatus, PciLevel, PeerPath,
    Reading, RemoteKind, topology::cpulist,
};
use nvml_wrapper::enum_wrappers::device::{
    P2pCapabilitiesIndex, P2pStatus as NvP2p, TopologyLevel,
};
use nvml_wrapper::error::{NvmlError, nvml_try};
use nvml_wrapper::{Device, Nvml};

use gpu_mcp_model::xid::normalize_pci_bus_id;

use super::convert::reading;
use super::raw;

/// Words of CPU mask asked for: 4096 CPUs.
const CPU_MASK_WORDS: usize = 64;

/// A missing symbol (an older driver) is "not supported" like a refused call.
fn supported<T>(r: Result<T, NvmlError>) -> Result<T, NvmlError> {
    match r {
        Err(NvmlError::FailedToLoadSymbol(_) | NvmlError::FunctionNotFound) => {
            Err(NvmlError::NotSupported)
        }
        other => other,
    }
}

/// The GPU's own topology facts; `pci_bus_id` is its `dddd:bb:dd.f` id when readable. The
/// peers are left for [`read_pairs`].
pub(super) fn read_topology(
    dev: &Device<'_>,
    pci_bus_id: Option<&str>,
    sysfs: &Path,
    l: &mut GpuAccess,
) -> GpuTopology {
    GpuTopology {
        numa_node: numa_node(dev, pci_bus_id, sysfs, l),
        cpu_affinity: reading(
            supported(dev.cpu_affinity(CPU_MASK_WORDS)).map(|m| mask_cpulist(&m)),
            l,
        ),
        peers: Reading::Error("the pairs were not read".to_owned()),
        fabric: reading(supported(raw::fabric_info(dev)).map(fabric), l),
    }
}

/// A mask of `c_ulong` words (64 or 32 bits, by platform) as a cpulist.
fn mask_cpulist(mask: &[std::os::raw::c_ulong]) -> String {
    let bits = std::os::raw::c_ulong::BITS as usize;
    let mut words = vec![0u64; (mask.len() * bits).div_ceil(64)];
    for (w, word) in mask.iter().enumerate() {
        for b in (0..bits).filter(|b| (word >> b) & 1 == 1) {
            let cpu = w * bits + b;
            words[cpu / 64] |= 1 << (cpu % 64);
        }
    }
    cpulist(&words)
}

/// NVML's NUMA node, else the one sysfs gives the PCI device (`-1`: not a NUMA system).
fn numa_node(
    dev: &Device<'_>,
    pci_bus_id: Option<&str>,
    sysfs: &Path,
    l: &mut GpuAccess,
) -> Reading<u32> {
    match supported(dev.numa_node_id()) {
        Err(NvmlError::NotSupported) => {}
        other => return reading(other, l),
    }
    let Some(bus) = pci_bus_id else {
        return Reading::NotSupported;
    };
    let path = sysfs.join(format!("bus/pci/devices/{bus}/numa_node"));
    match std::fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<i64>() {
            Ok(n) => u32::try_from(n).map_or(Reading::NotSupported, Reading::Value),
            Err(_) => Reading::Error(format!(
                "{} does not hold a NUMA node: {:?}",
                path.display(),
                text.trim()
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Reading::NotSupported,
        Err(e) => Reading::Error(format!("cannot read {}: {e}", path.display())),
    }
}

/// Every readable GPU's path to every other GPU, by GPU index. `readable` are the GPUs whose
/// own read answered in this snapshot; a pair with any other GPU is listed with the reason.
pub(super) fn read_pairs(
    nvml: &Nvml,
    readable: &[u32],
    all: &[u32],
) -> BTreeMap<u32, Vec<PeerPath>> {
    let mut out = BTreeMap::new();
    for &i in readable {
        let Ok(dev) = nvml.device_by_index(i) else {
            continue;
        };
        let mut peers = Vec::new();
        for &j in all.iter().filter(|&&j| j != i) {
            let other = if readable.contains(&j) {
                nvml.device_by_index(j).map_err(|e| e.to_string())
            } else {
                Err("it could not be read in this snapshot".to_owned())
            };
            let other = match other {
                Ok(d) => d,
                Err(e) => {
                    let why = format!("GPU {j}: {e}");
                    peers.push(PeerPath {
                        gpu: j,
                        pci_level: Reading::Error(why.clone()),
                        p2p_read: Reading::Error(why.clone()),
                        p2p_write: Reading::Error(why.clone()),
                        p2p_nvlink: Reading::Error(why),
                    });
                    continue;
                }
            };
            // The GPUs' own reads already judged their state; a pair only records its error.
            let l = &mut GpuAccess::Ok;
            let mut p2p = |cap| reading(supported(dev.p2p_status(&other, cap)).map(p2p_status), l);
            let p2p_read = p2p(P2pCapabilitiesIndex::Read);
            let p2p_write = p2p(P2pCapabilitiesIndex::Write);
            let p2p_nvlink = p2p(P2pCapabilitiesIndex::NvLink);
            let pci_level = reading(
                supported(dev.topology_common_ancestor(other)).map(pci_level),
                &mut GpuAccess::Ok,
            );
            peers.push(PeerPath {
                gpu: j,
                pci_level,
                p2p_read,
                p2p_write,
                p2p_nvlink,
            });
        }
        out.insert(i, peers);
    }
    out
}

fn pci_level(t: TopologyLevel) -> PciLevel {
    match t {
        TopologyLevel::Internal => PciLevel::Internal,
        TopologyLevel::Single => PciLevel::Single,
        TopologyLevel::Multiple => PciLevel::Multiple,
        TopologyLevel::HostBridge => PciLevel::HostBridge,
        TopologyLevel::Node => PciLevel::Node,
        TopologyLevel::System => PciLevel::System,
    }
}

fn p2p_status(s: NvP2p) -> P2pStatus {
    match s {
        NvP2p::Ok => P2pStatus::Ok,
        NvP2p::ChipsetNotSupported => P2pStatus::ChipsetNotSupported,
        NvP2p::GpuNotSupported => P2pStatus::GpuNotSupported,
        NvP2p::IohTopologyNotSupported => P2pStatus::IohTopologyNotSupported,
        NvP2p::DisabledByRegkey => P2pStatus::DisabledByRegkey,
        NvP2p::NotSupported => P2pStatus::NotSupported,
        NvP2p::Unknown => P2pStatus::Unknown,
    }
}

/// The model's fabric registration from the driver's.
fn fabric(f: raw::RawFabric) -> FabricInfo {
    let state = match f.state {
        1 => FabricState::NotStarted,
        2 => FabricState::InProgress,
        3 => FabricState::Completed,
        _ => FabricState::NotSupported,
    };
    let status = match nvml_try(f.status) {
        Ok(()) => "success".to_owned(),
        Err(e) => e.to_string(),
    };
    let cluster_uuid = f.cluster_uuid.iter().any(|&b| b != 0).then(|| {
        let h: String = f.cluster_uuid.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    });
    // NVML_GPU_FABRIC_HEALTH_MASK_DEGRADED_BW: bits 0-1, 1 true, 2 false, 0 not supported.
    let bandwidth_degraded = f.health_mask.and_then(|m| match m & 0b11 {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    });
    FabricInfo {
        state,
        status,
        clique_id: f.clique_id,
        cluster_uuid,
        bandwidth_degraded,
    }
}

/// The far end of NVLink `link`: its kind, and its PCI bus id when the driver gives one.
pub(super) fn link_remote(dev: &Device<'_>, link: u32) -> Result<NvLinkRemote, NvmlError> {
    let kind = match supported(raw::remote_device_type(dev, link)) {
        Ok(0) => RemoteKind::Gpu,
        Ok(1) => RemoteKind::Cpu,
        Ok(2) => RemoteKind::Nvswitch,
        Ok(_) | Err(NvmlError::NotSupported) => RemoteKind::Unknown,
        Err(e) => return Err(e),
    };
    let pci = match supported(dev.link_wrapper_for(link).remote_pci_info()) {
        Ok(p) => Some(normalize_pci_bus_id(&p.bus_id).unwrap_or(p.bus_id)),
        Err(NvmlError::NotSupported) => None,
        Err(e) => return Err(e),
    };
    if kind == RemoteKind::Unknown && pci.is_none() {
        return Err(NvmlError::NotSupported);
    }
    Ok(NvLinkRemote {
        kind,
        pci_bus_id: pci,
    })
}
