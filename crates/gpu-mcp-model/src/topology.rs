//! How the GPUs are wired: what a backend reads about one GPU's place in the node
//! ([`GpuTopology`]: NUMA node, CPU affinity, the PCIe path to every other GPU, peer-to-peer
//! status and the NVSwitch fabric registration), and the result of `get_nvlink_topology`
//! ([`TopologyReport`]).
//!
//! The words are those of `nvidia-smi topo -m` and `nvidia-smi topo -p2p`, so an SRE reads the
//! answer the way they read the driver's own tool.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::counters::LinkChanges;
use crate::output::{Finding, Verdict};
use crate::reading::Reading;
use crate::snapshot::GpuSnapshot;

/// One GPU's place in the node's wiring. Topology facts change rarely; a backend reads them at
/// most once per snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GpuTopology {
    /// The NUMA node the GPU is attached to (`nvmlDeviceGetNumaNodeId`, or the PCI device's
    /// `numa_node` in sysfs).
    pub numa_node: Reading<u32>,
    /// The CPUs closest to the GPU as a cpulist, e.g. `0-55,112-167`
    /// (`nvmlDeviceGetCpuAffinity`).
    pub cpu_affinity: Reading<String>,
    /// The path to every other GPU of the node, by GPU index.
    pub peers: Reading<Vec<PeerPath>>,
    /// The GPU's registration with the NVSwitch fabric (`nvmlDeviceGetGpuFabricInfoV`);
    /// `not_supported` on GPUs without one.
    pub fabric: Reading<FabricInfo>,
}

/// The path from one GPU to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PeerPath {
    /// The other GPU's index.
    pub gpu: u32,
    /// The closest PCIe ancestor of the two GPUs (`nvmlDeviceGetTopologyCommonAncestor`).
    pub pci_level: Reading<PciLevel>,
    /// Peer-to-peer reads (`nvmlDeviceGetP2PStatus`, `NVML_P2P_CAPS_INDEX_READ`).
    pub p2p_read: Reading<P2pStatus>,
    /// Peer-to-peer writes (`NVML_P2P_CAPS_INDEX_WRITE`).
    pub p2p_write: Reading<P2pStatus>,
    /// Peer-to-peer over NVLink (`NVML_P2P_CAPS_INDEX_NVLINK`).
    pub p2p_nvlink: Reading<P2pStatus>,
}

/// The closest PCIe ancestor of two GPUs (`nvmlGpuTopologyLevel_t`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PciLevel {
    /// Both on one board (a multi-GPU board's own switch).
    Internal,
    /// Through one PCIe switch.
    Single,
    /// Through several PCIe switches, without crossing a host bridge.
    Multiple,
    /// Through one PCIe host bridge.
    HostBridge,
    /// Through host bridges of one NUMA node.
    Node,
    /// Across NUMA nodes (the CPU interconnect, QPI/UPI or Infinity Fabric).
    System,
}

impl PciLevel {
    /// The word `nvidia-smi topo -m` prints.
    pub fn word(self) -> &'static str {
        match self {
            Self::Internal | Self::Single => "PIX",
            Self::Multiple => "PXB",
            Self::HostBridge => "PHB",
            Self::Node => "NODE",
            Self::System => "SYS",
        }
    }
}

/// Whether a peer-to-peer capability works between two GPUs (`nvmlGpuP2PStatus_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum P2pStatus {
    /// Supported.
    Ok,
    /// The chipset does not support it.
    ChipsetNotSupported,
    /// The GPU does not support it.
    GpuNotSupported,
    /// The PCIe topology (an I/O hub) does not support it.
    IohTopologyNotSupported,
    /// Turned off by a driver registry key.
    DisabledByRegkey,
    /// Not supported.
    NotSupported,
    /// The driver does not know.
    Unknown,
}

impl P2pStatus {
    /// The code `nvidia-smi topo -p2p` prints (`DIS` for disabled by a registry key, which it
    /// has no code for).
    pub fn code(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::ChipsetNotSupported => "CNS",
            Self::GpuNotSupported => "GNS",
            Self::IohTopologyNotSupported => "TNS",
            Self::DisabledByRegkey => "DIS",
            Self::NotSupported => "NS",
            Self::Unknown => "U",
        }
    }
}

/// A GPU's registration with the NVSwitch fabric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FabricInfo {
    /// Where the registration is.
    pub state: FabricState,
    /// How the registration ended, once `completed`: `success`, or the driver's error.
    pub status: String,
    /// The NVLink clique (the set of GPUs that can reach each other over NVLink).
    pub clique_id: u32,
    /// The fabric's cluster UUID, when one is assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_uuid: Option<String>,
    /// The fabric runs with reduced bandwidth, when the driver reports its health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_degraded: Option<bool>,
}

/// `nvmlGpuFabricState_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FabricState {
    /// The GPU is not part of an NVSwitch fabric.
    NotSupported,
    /// The fabric manager has not started registering the GPU.
    NotStarted,
    /// The fabric manager is registering the GPU.
    InProgress,
    /// The registration ended (see the status).
    Completed,
}

impl FabricState {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotSupported => "not_supported",
            Self::NotStarted => "not_started",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
        }
    }
}

/// What the far end of an NVLink link is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NvLinkRemote {
    /// The kind of device (`nvmlDeviceGetNvLinkRemoteDeviceType`).
    pub kind: RemoteKind,
    /// Its PCI bus id, in the `dddd:bb:dd.f` form (`nvmlDeviceGetNvLinkRemotePciInfo_v2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
}

/// The kind of device at the far end of an NVLink link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemoteKind {
    /// Another GPU, directly.
    Gpu,
    /// An NVSwitch.
    Nvswitch,
    /// A CPU (an IBM POWER NPU).
    Cpu,
    /// The driver does not say.
    Unknown,
}

/// Arguments of `get_nvlink_topology`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopologyArgs {
    /// Only the facts and findings of the GPU with this index (the matrix stays whole).
    #[serde(default)]
    pub gpu_index: Option<u32>,
    /// Only the facts and findings of the GPU with this UUID (`GPU-...`).
    #[serde(default)]
    pub gpu_uuid: Option<String>,
    /// Every NVLink link of every GPU with its far end and counters, and every pair's PCIe
    /// level and peer-to-peer status, rather than only the links and pairs with a problem.
    #[serde(default)]
    pub full: bool,
}

/// Result of `get_nvlink_topology`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TopologyReport {
    /// One sentence: how the GPUs are connected and the verdict with its main reason.
    pub headline: String,
    /// The worst severity among the findings (`healthy` when there are none).
    pub verdict: Verdict,
    /// Kubernetes node name.
    pub node: String,
    /// How the GPUs are connected: `nvswitch`, `nvlink` (direct links), `pcie`, or `unknown`
    /// when the links could not be read.
    pub interconnect: String,
    /// Every reason behind the verdict, worst first.
    pub findings: Vec<TopologyFinding>,
    /// The GPU-to-GPU matrix as `nvidia-smi topo -m` prints it: a header row, then one row per
    /// GPU (`X` itself, `NV#` bonded NVLinks, `PIX` one PCIe switch, `PXB` several switches,
    /// `PHB` a host bridge, `NODE` host bridges of one NUMA node, `SYS` across NUMA nodes, `?`
    /// unreadable), with CPU and NUMA affinity.
    pub matrix: Vec<String>,
    /// Peer-to-peer read/write status per pair as `nvidia-smi topo -p2p` prints it (`OK`, `CNS`
    /// chipset, `GNS` GPU, `TNS` topology not supported, `DIS` disabled, `NS` not supported, `U`
    /// unknown; `r:../w:..` when reads and writes differ).
    pub p2p: Vec<String>,
    /// Per-GPU facts.
    pub gpus: Vec<GpuTopologyFacts>,
    /// Every pair with its PCIe level, NVLink count and peer-to-peer status (`full` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pairs: Vec<PairFacts>,
    /// Context that does not change the verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Checks that could not run, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_checked: Vec<String>,
}

/// One reason behind the topology verdict, with the GPU (and peer) it is about.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TopologyFinding {
    /// The GPU the finding is about; absent for the node as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    /// The other GPU, for a finding about a pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<u32>,
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
}

/// One GPU's place in the wiring.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct GpuTopologyFacts {
    /// GPU index.
    pub index: u32,
    /// GPU UUID, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// PCI bus id (`dddd:bb:dd.f`), when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    /// NUMA node, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numa_node: Option<u32>,
    /// The closest CPUs as a cpulist, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_affinity: Option<String>,
    /// The GPU's NVLink links, when it has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlink: Option<LinkSummary>,
    /// The NVSwitch fabric registration, when the GPU has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fabric: Option<FabricInfo>,
    /// What could not be read, with the reason (`not_supported` or the driver's error).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unavailable: BTreeMap<String, String>,
}

/// A GPU's NVLink links, counted, with the links that need attention listed (every link with
/// `full`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct LinkSummary {
    /// Links the board wires (ports it does not wire are not listed).
    pub wired: u32,
    /// Links up.
    pub up: u32,
    /// Wired links that are not up and not turned off on purpose.
    pub down: u32,
    /// Links turned off on purpose.
    pub disabled: u32,
    /// Where the up links go, e.g. `NVSwitch` or `GPU1 x2, GPU3 x1`.
    pub remote: String,
    /// The links that are down (unless all are) or erroring since the previous reading (every
    /// link with `full`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkFact>,
}

/// The state of a wired NVLink link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Trained and up.
    Up,
    /// Wired but not up: a cable, bridge, baseboard or fabric problem.
    Down,
    /// Turned off on purpose.
    Disabled,
}

/// One NVLink link.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct LinkFact {
    /// Link number.
    pub link: u32,
    /// Its state.
    pub state: LinkState,
    /// The far end, e.g. `NVSwitch 0000:05:00.0`, `GPU3` or `CPU`, when the driver says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Errors since the driver loaded, e.g. `0 CRC, 12 replay, 0 recovery`, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors_total: Option<String>,
    /// New errors since the backend's previous reading, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_errors: Option<LinkChanges>,
}

/// One pair of GPUs (`full` only).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PairFacts {
    /// The lower GPU index.
    pub gpu: u32,
    /// The higher GPU index.
    pub peer: u32,
    /// The matrix word (`NV18`, `PIX`, ...).
    pub link: String,
    /// Bonded NVLink links between the two (through NVSwitch: the fewer of the two GPUs' up
    /// links to the switch).
    pub nvlinks: u32,
    /// The closest PCIe ancestor, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_level: Option<PciLevel>,
    /// Peer-to-peer read status, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p_read: Option<P2pStatus>,
    /// Peer-to-peer write status, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p_write: Option<P2pStatus>,
    /// Peer-to-peer over NVLink status, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p_nvlink: Option<P2pStatus>,
}

/// Bonded NVLink links between GPUs `a` and `b`, counted as `nvidia-smi topo -m` does: the up
/// links of `a` that go straight to `b`, plus, when both reach an NVSwitch, the fewer of the two
/// GPUs' up links to the switches. `None` when an up link's far end is not known.
pub fn nvlinks_between(a: &GpuSnapshot, b: &GpuSnapshot) -> Option<u32> {
    let up = |g: &GpuSnapshot| -> Option<Vec<NvLinkRemote>> {
        match &g.nvlink {
            Reading::Value(ls) => ls
                .iter()
                .filter(|l| l.active)
                .map(|l| l.remote.value().cloned())
                .collect(),
            _ => Some(Vec::new()),
        }
    };
    let (ua, ub) = (up(a)?, up(b)?);
    let switch = |u: &[NvLinkRemote]| u.iter().filter(|r| r.kind == RemoteKind::Nvswitch).count();
    let direct = match b.pci_bus_id.value() {
        Some(bus) => ua
            .iter()
            .filter(|r| r.kind == RemoteKind::Gpu && r.pci_bus_id.as_ref() == Some(bus))
            .count(),
        None => 0,
    };
    u32::try_from(direct + switch(&ua).min(switch(&ub))).ok()
}

/// A CPU bit mask (bit `n` of word `n / 64` set for CPU `n`, as `nvmlDeviceGetCpuAffinity`
/// fills it on a 64-bit host) as a cpulist: `0-55,112-167`; empty when no bit is set.
pub fn cpulist(mask: &[u64]) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for (w, word) in mask.iter().enumerate() {
        for b in 0..64 {
            if word & (1u64 << b) == 0 {
                continue;
            }
            let cpu = w * 64 + b;
            match ranges.last_mut() {
                Some((_, end)) if *end + 1 == cpu => *end = cpu,
                _ => ranges.push((cpu, cpu)),
            }
        }
    }
    ranges
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpulist_joins_runs_across_words() {
        assert_eq!(cpulist(&[]), "");
        assert_eq!(cpulist(&[0b1011]), "0-1,3");
        // CPUs 0-55 and 112-167: two sockets of 56 cores with their hyperthreads.
        let mut mask = [0u64; 3];
        for c in (0..56).chain(112..168) {
            mask[c / 64] |= 1 << (c % 64);
        }
        assert_eq!(cpulist(&mask), "0-55,112-167");
        assert_eq!(cpulist(&[u64::MAX, 1]), "0-64");
    }

    #[test]
    fn words_are_nvidia_smi_s() {
        assert_eq!(PciLevel::Single.word(), "PIX");
        assert_eq!(PciLevel::Multiple.word(), "PXB");
        assert_eq!(PciLevel::HostBridge.word(), "PHB");
        assert_eq!(PciLevel::Node.word(), "NODE");
        assert_eq!(PciLevel::System.word(), "SYS");
        assert_eq!(P2pStatus::ChipsetNotSupported.code(), "CNS");
    }
}
