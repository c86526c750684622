//! What the fake answers about a GPU's place in the wiring: its PCIe path, P2P statuses, fabric
//! registration and the far ends of its NVLink links.

use serde::Deserialize;
use serde_json::Value;

use super::ErrorCode;

/// A GPU's place in the PCIe tree.
///
/// Two GPUs' common ancestor: on different sockets `SYSTEM`; different host bridges `NODE`; no
/// switch in common `HOSTBRIDGE`; the same switches all the way `SINGLE`; some in common
/// `MULTIPLE`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PciPathSpec {
    /// The CPU socket (NUMA node) the GPU's root port belongs to.
    #[serde(default)]
    pub socket: u32,
    /// The host bridge (root complex) above the GPU.
    #[serde(default)]
    pub host_bridge: u32,
    /// The PCIe switches between the host bridge and the GPU, top first.
    #[serde(default)]
    pub switches: Vec<u32>,
}

/// A peer-to-peer status (`nvmlGpuP2PStatus_t`) by name or number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct P2pCode(pub u32);

impl<'de> Deserialize<'de> for P2pCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        const NAMES: &[(&str, u32)] = &[
            ("ok", 0),
            ("chipset_not_supported", 1),
            ("gpu_not_supported", 2),
            ("ioh_topology_not_supported", 3),
            ("disabled_by_regkey", 4),
            ("not_supported", 5),
            ("unknown", 6),
        ];
        match Value::deserialize(d)? {
            Value::String(s) => NAMES
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&s))
                .map(|&(_, v)| P2pCode(v))
                .ok_or_else(|| serde::de::Error::custom(format!("unknown P2P status {s:?}"))),
            Value::Number(n) => n
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .map(P2pCode)
                .ok_or_else(|| serde::de::Error::custom("a P2P status is a u32")),
            other => Err(serde::de::Error::custom(format!(
                "a P2P status is a name or a number, not {other}"
            ))),
        }
    }
}

/// Peer-to-peer statuses by capability (every one `ok` unless given).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pSpec {
    /// `NVML_P2P_CAPS_INDEX_READ`.
    #[serde(default)]
    pub read: P2pCode,
    /// `NVML_P2P_CAPS_INDEX_WRITE`.
    #[serde(default)]
    pub write: P2pCode,
    /// `NVML_P2P_CAPS_INDEX_NVLINK`.
    #[serde(default)]
    pub nvlink: P2pCode,
    /// `NVML_P2P_CAPS_INDEX_ATOMICS`.
    #[serde(default)]
    pub atomics: P2pCode,
    /// `NVML_P2P_CAPS_INDEX_PROP`.
    #[serde(default)]
    pub prop: P2pCode,
}

/// The NVSwitch fabric registration (`nvmlGpuFabricInfo*_t`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FabricSpec {
    /// `not_supported`, `not_started`, `in_progress` or `completed`.
    pub state: FabricStateSpec,
    /// The registration's own return code; success when absent.
    #[serde(default)]
    pub status: Option<ErrorCode>,
    /// The NVLink clique.
    #[serde(default)]
    pub clique_id: u32,
    /// The cluster UUID (32 hex digits, dashes allowed); zeros when absent.
    #[serde(default)]
    pub cluster_uuid: Option<String>,
    /// The health mask of `nvmlGpuFabricInfo_v2` and later.
    #[serde(default)]
    pub health_mask: u32,
}

/// `nvmlGpuFabricState_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FabricStateSpec {
    /// 0.
    NotSupported,
    /// 1.
    NotStarted,
    /// 2.
    InProgress,
    /// 3.
    Completed,
}

/// The far end of an NVLink link.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSpec {
    /// `gpu`, `nvswitch`, `cpu` (IBM NPU) or `unknown`.
    pub kind: RemoteKindSpec,
    /// For a GPU: its index, whose PCI bus id the remote PCI info answers.
    #[serde(default)]
    pub gpu: Option<u32>,
    /// The far end's PCI bus id as NVML prints it (`00000000:05:00.0`); `NOT_SUPPORTED` from
    /// `nvmlDeviceGetNvLinkRemotePciInfo_v2` when neither this nor `gpu` is given.
    #[serde(default)]
    pub bus_id: Option<String>,
}

/// `nvmlIntNvLinkDeviceType_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteKindSpec {
    /// 0.
    Gpu,
    /// 2.
    Nvswitch,
    /// 1 (IBM NPU).
    Cpu,
    /// 255.
    Unknown,
}
