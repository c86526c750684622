//! Topology: NUMA node, CPU affinity, the common PCIe ancestor and P2P status of two GPUs, the
//! far end of an NVLink link, and the NVSwitch fabric registration.

use std::os::raw::c_ulong;

use nvml_wrapper_sys::bindings::{
    nvmlGpuFabricInfo_t, nvmlGpuFabricInfo_v2_t, nvmlGpuFabricInfo_v3_t, nvmlGpuFabricInfoV_t,
    nvmlGpuP2PCapsIndex_t, nvmlGpuP2PStatus_t, nvmlGpuTopologyLevel_t, nvmlIntNvLinkDeviceType_t,
};

use super::device::parse_bus_id;
use super::*;
use crate::scenario::{
    FabricSpec, FabricStateSpec, PciPathSpec, RemoteKindSpec, RemoteSpec, parse_cpulist,
};

/// `NVML_ERROR_ARGUMENT_VERSION_MISMATCH`.
const ARGUMENT_VERSION_MISMATCH: nvmlReturn_t = 25;

getter!(
    /// `nvmlDeviceGetNumaNodeId`.
    nvmlDeviceGetNumaNodeId,
    c_uint,
    |g| opt(g.numa_node)
);

/// `nvmlDeviceGetCpuAffinity`: the cpulist as a bit mask of `cpu_set_size` words (CPUs past
/// it are left out, as the driver does).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCpuAffinity(
    device: nvmlDevice_t,
    cpu_set_size: c_uint,
    cpu_set: *mut c_ulong,
) -> nvmlReturn_t {
    guard(|| {
        let cpus = device_call("nvmlDeviceGetCpuAffinity", device, |_, d, g| {
            whole(d)?;
            parse_cpulist(&opt(g.cpu_affinity.clone())?).ok_or(UNKNOWN)
        })?;
        if cpu_set_size == 0 || cpu_set.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        let bits = c_ulong::BITS;
        let mut mask: Vec<c_ulong> = vec![0; cpu_set_size as usize];
        for c in cpus {
            if let Some(w) = mask.get_mut((c / bits) as usize) {
                *w |= 1 << (c % bits);
            }
        }
        put_all(cpu_set, &mask)
    })
}

/// The other GPU of a pair call, with its spec.
fn peer(st: &State, h: nvmlDevice_t) -> Res<(u32, &GpuSpec)> {
    let d = Dev::from_handle(h)
        .filter(|d| d.gpu() < st.count())
        .ok_or(INVALID_ARGUMENT)?;
    let j = whole(d)?;
    Ok((j, st.gpu(j).ok_or(INVALID_ARGUMENT)?))
}

/// `nvmlGpuTopologyLevel_t` of two places in the PCIe tree.
fn common_ancestor(a: &PciPathSpec, b: &PciPathSpec) -> nvmlGpuTopologyLevel_t {
    if a.socket != b.socket {
        return 50; // NVML_TOPOLOGY_SYSTEM
    }
    if a.host_bridge != b.host_bridge {
        return 40; // NVML_TOPOLOGY_NODE
    }
    let shared = a
        .switches
        .iter()
        .zip(&b.switches)
        .take_while(|(x, y)| x == y)
        .count();
    if shared == 0 {
        30 // NVML_TOPOLOGY_HOSTBRIDGE
    } else if shared == a.switches.len() && shared == b.switches.len() {
        10 // NVML_TOPOLOGY_SINGLE
    } else {
        20 // NVML_TOPOLOGY_MULTIPLE
    }
}

/// `nvmlDeviceGetTopologyCommonAncestor`, from both GPUs' `pci_path`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTopologyCommonAncestor(
    device1: nvmlDevice_t,
    device2: nvmlDevice_t,
    path_info: *mut nvmlGpuTopologyLevel_t,
) -> nvmlReturn_t {
    guard(|| {
        let level = device_call(
            "nvmlDeviceGetTopologyCommonAncestor",
            device1,
            |st, d, g| {
                let i = whole(d)?;
                let (j, other) = peer(st, device2)?;
                if i == j {
                    return Err(INVALID_ARGUMENT);
                }
                Ok(common_ancestor(
                    opt(g.pci_path.as_ref())?,
                    opt(other.pci_path.as_ref())?,
                ))
            },
        )?;
        put!(path_info, level)
    })
}

/// `nvmlDeviceGetP2PStatus`: this GPU's `p2p_peers` entry for the other GPU, else its `p2p`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetP2PStatus(
    device1: nvmlDevice_t,
    device2: nvmlDevice_t,
    p2p_index: nvmlGpuP2PCapsIndex_t,
    p2p_status: *mut nvmlGpuP2PStatus_t,
) -> nvmlReturn_t {
    guard(|| {
        let status = device_call("nvmlDeviceGetP2PStatus", device1, |st, d, g| {
            let i = whole(d)?;
            let (j, _) = peer(st, device2)?;
            if i == j {
                return Err(INVALID_ARGUMENT);
            }
            let spec = opt(g.p2p_peers.get(&j.to_string()).copied().or(g.p2p))?;
            let code = match p2p_index {
                0 => spec.read,
                1 => spec.write,
                2 => spec.nvlink,
                3 => spec.atomics,
                4 => spec.prop,
                _ => return Err(INVALID_ARGUMENT),
            };
            Ok(code.0)
        })?;
        put!(p2p_status, status)
    })
}

/// The far end of link `l` of a GPU: the link's own, else the GPU's default.
fn remote(g: &GpuSpec, l: c_uint) -> Res<RemoteSpec> {
    let links = opt(g.nvlinks.as_ref())?;
    let k = links.get(l as usize).ok_or(INVALID_ARGUMENT)?;
    if k.state == LinkState::NotWired {
        return Err(NOT_SUPPORTED);
    }
    opt(k.remote.clone().or_else(|| g.nvlink_remote.clone()))
}

/// `nvmlDeviceGetNvLinkRemoteDeviceType`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetNvLinkRemoteDeviceType(
    device: nvmlDevice_t,
    l: c_uint,
    kind: *mut nvmlIntNvLinkDeviceType_t,
) -> nvmlReturn_t {
    guard(|| {
        let r = device_call("nvmlDeviceGetNvLinkRemoteDeviceType", device, |_, d, g| {
            whole(d)?;
            remote(g, l)
        })?;
        put!(
            kind,
            match r.kind {
                RemoteKindSpec::Gpu => 0,
                RemoteKindSpec::Cpu => 1,
                RemoteKindSpec::Nvswitch => 2,
                RemoteKindSpec::Unknown => 255,
            }
        )
    })
}

/// `nvmlDeviceGetNvLinkRemotePciInfo_v2`: the far end's bus id (a GPU's own PCI bus id).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetNvLinkRemotePciInfo_v2(
    device: nvmlDevice_t,
    l: c_uint,
    pci: *mut nvmlPciInfo_t,
) -> nvmlReturn_t {
    guard(|| {
        let bus_id = device_call("nvmlDeviceGetNvLinkRemotePciInfo_v2", device, |st, d, g| {
            whole(d)?;
            let r = remote(g, l)?;
            match (r.bus_id, r.gpu) {
                (Some(b), _) => Ok(b),
                (None, Some(j)) => {
                    let other = st.gpu(j).ok_or(NOT_SUPPORTED)?;
                    Ok(opt(other.pci.as_ref())?.bus_id.clone())
                }
                (None, None) => Err(NOT_SUPPORTED),
            }
        })?;
        let (domain, bus, dev) = parse_bus_id(&bus_id);
        let legacy = format!("{:04X}:{bus:02X}:{dev:02X}.0", domain & 0xffff);
        put!(
            pci,
            nvmlPciInfo_t {
                busIdLegacy: c_array(&legacy),
                domain,
                bus,
                device: dev,
                pciDeviceId: 0,
                pciSubSystemId: 0,
                busId: c_array(&bus_id),
            }
        )
    })
}

/// A fabric spec's fields in NVML's form.
fn fabric_fields(f: &FabricSpec) -> ([u8; 16], nvmlReturn_t, c_uint, u8) {
    let mut uuid = [0u8; 16];
    if let Some(u) = &f.cluster_uuid {
        let hex: Vec<u8> = u.bytes().filter(u8::is_ascii_hexdigit).collect();
        for (o, pair) in uuid.iter_mut().zip(hex.chunks(2)) {
            let s = std::str::from_utf8(pair).unwrap_or("0");
            *o = u8::from_str_radix(s, 16).unwrap_or(0);
        }
    }
    let state = match f.state {
        FabricStateSpec::NotSupported => 0,
        FabricStateSpec::NotStarted => 1,
        FabricStateSpec::InProgress => 2,
        FabricStateSpec::Completed => 3,
    };
    (uuid, f.status.map_or(SUCCESS, |e| e.0), f.clique_id, state)
}

/// `nvmlDeviceGetGpuFabricInfoV`: versions 2 and 3 of the struct (`version` names which);
/// another version answers `ARGUMENT_VERSION_MISMATCH`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuFabricInfoV(
    device: nvmlDevice_t,
    info: *mut nvmlGpuFabricInfoV_t,
) -> nvmlReturn_t {
    guard(|| {
        let f = device_call("nvmlDeviceGetGpuFabricInfoV", device, |_, d, g| {
            whole(d)?;
            opt(g.fabric.clone())
        })?;
        if info.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        // SAFETY: NVML's contract: a non-null `info` points to a caller-owned struct whose
        // first member, `version`, the caller set; reading that `c_uint` stays in bounds for
        // every version of the struct.
        let version = unsafe { info.cast::<c_uint>().read() };
        let (uuid, status, clique, state) = fabric_fields(&f);
        let v2 = std::mem::size_of::<nvmlGpuFabricInfo_v2_t>() as c_uint | (2 << 24);
        let v3 = std::mem::size_of::<nvmlGpuFabricInfo_v3_t>() as c_uint | (3 << 24);
        if version == v3 {
            put!(
                info,
                nvmlGpuFabricInfo_v3_t {
                    version,
                    clusterUuid: uuid,
                    status,
                    cliqueId: clique,
                    state,
                    healthMask: f.health_mask,
                    healthSummary: 0,
                }
            )
        } else if version == v2 {
            put!(
                info.cast::<nvmlGpuFabricInfo_v2_t>(),
                nvmlGpuFabricInfo_v2_t {
                    version,
                    clusterUuid: uuid,
                    status,
                    cliqueId: clique,
                    state,
                    healthMask: f.health_mask,
                }
            )
        } else {
            Err(ARGUMENT_VERSION_MISMATCH)
        }
    })
}

/// `nvmlDeviceGetGpuFabricInfo` (the first, unversioned struct).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuFabricInfo(
    device: nvmlDevice_t,
    info: *mut nvmlGpuFabricInfo_t,
) -> nvmlReturn_t {
    guard(|| {
        let f = device_call("nvmlDeviceGetGpuFabricInfo", device, |_, d, g| {
            whole(d)?;
            opt(g.fabric.clone())
        })?;
        let (uuid, status, clique, state) = fabric_fields(&f);
        put!(
            info,
            nvmlGpuFabricInfo_t {
                clusterUuid: uuid,
                status,
                cliqueId: clique,
                state,
            }
        )
    })
}
