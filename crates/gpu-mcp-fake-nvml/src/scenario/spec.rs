//! What the fake answers about one GPU: the per-GPU part of a scenario.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::topology::{FabricSpec, P2pSpec, PciPathSpec, RemoteSpec};
use super::{Answer, Outcome};

/// Everything the fake answers about one GPU. A value left out (`None`) answers
/// `NOT_SUPPORTED`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// `nvmlDeviceGetName`.
    #[serde(default)]
    pub name: Option<String>,
    /// `nvmlDeviceGetUUID`.
    #[serde(default)]
    pub uuid: Option<String>,
    /// `nvmlDeviceGetSerial`.
    #[serde(default)]
    pub serial: Option<String>,
    /// `nvmlDeviceGetPciInfo_v3`.
    #[serde(default)]
    pub pci: Option<PciSpec>,
    /// `nvmlDeviceGetArchitecture`: `kepler` … `blackwell`, or NVML's number.
    #[serde(default)]
    pub architecture: Option<Architecture>,
    /// `nvmlDeviceGetCudaComputeCapability`: `[major, minor]`.
    #[serde(default)]
    pub compute_capability: Option<[i32; 2]>,
    /// `nvmlDeviceGetVbiosVersion`.
    #[serde(default)]
    pub vbios_version: Option<String>,
    /// `nvmlDeviceGetMemoryInfo_v2` (and `nvmlDeviceGetMemoryInfo`).
    #[serde(default)]
    pub memory: Option<MemorySpec>,
    /// `nvmlDeviceGetBAR1MemoryInfo`.
    #[serde(default)]
    pub bar1: Option<Bar1Spec>,
    /// `nvmlDeviceGetUtilizationRates`.
    #[serde(default)]
    pub utilization: Option<UtilizationSpec>,
    /// `nvmlDeviceGetPerformanceState`: 0 for P0.
    #[serde(default)]
    pub performance_state: Option<u32>,
    /// `nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU)` in °C.
    #[serde(default)]
    pub temperature: Option<u32>,
    /// `nvmlDeviceGetTemperatureThreshold` in °C.
    #[serde(default)]
    pub thresholds: ThresholdSpec,
    /// Power readings in milliwatts.
    #[serde(default)]
    pub power: PowerSpec,
    /// `nvmlDeviceGetClockInfo` in MHz.
    #[serde(default)]
    pub clocks: ClockSpec,
    /// `nvmlDeviceGetMaxClockInfo` in MHz.
    #[serde(default)]
    pub max_clocks: ClockSpec,
    /// `nvmlDeviceGetCurrentClocksThrottleReasons` / `…EventReasons`: the reason bits.
    #[serde(default)]
    pub clock_event_reasons: Option<u64>,
    /// `nvmlDeviceGetEccMode`.
    #[serde(default)]
    pub ecc_mode: Option<EccModeSpec>,
    /// `nvmlDeviceGetTotalEccErrors`.
    #[serde(default)]
    pub ecc_errors: Option<EccErrorsSpec>,
    /// `nvmlDeviceGetRetiredPages(_v2)` and `nvmlDeviceGetRetiredPagesPendingStatus`.
    #[serde(default)]
    pub retired_pages: Option<RetiredPagesSpec>,
    /// `nvmlDeviceGetFieldValues`: field id (`"82"`, or `"165:3"` with a scope id) to value or
    /// `{"error": …}`. A field left out answers `NOT_SUPPORTED` inside the call.
    #[serde(default)]
    pub fields: BTreeMap<String, Answer<serde_json::Number>>,
    /// `nvmlDeviceGetCurrPcieLink*`, `nvmlDeviceGetMaxPcieLink*`, `nvmlDeviceGetPcieReplayCounter`.
    #[serde(default)]
    pub pcie: PcieSpec,
    /// NVLink links by link number; `None` answers `NOT_SUPPORTED` for every link, and a link
    /// number past the list answers `INVALID_ARGUMENT`.
    #[serde(default)]
    pub nvlinks: Option<Vec<LinkSpec>>,
    /// `nvmlDeviceGetPersistenceMode`.
    #[serde(default)]
    pub persistence_mode: Option<bool>,
    /// `nvmlDeviceGetComputeMode`: 0 default, 1 exclusive thread, 2 prohibited, 3 exclusive
    /// process.
    #[serde(default)]
    pub compute_mode: Option<u32>,
    /// `nvmlDeviceGetMigMode`.
    #[serde(default)]
    pub mig_mode: Option<MigModeSpec>,
    /// MIG devices.
    #[serde(default)]
    pub mig: MigSpec,
    /// Running processes.
    #[serde(default)]
    pub processes: ProcessesSpec,
    /// `nvmlDeviceGetSupportedEventTypes`.
    #[serde(default)]
    pub supported_events: Option<u64>,
    /// `nvmlDeviceGetNumaNodeId`.
    #[serde(default)]
    pub numa_node: Option<u32>,
    /// `nvmlDeviceGetCpuAffinity`: the CPUs as a cpulist, e.g. `0-55,112-167`.
    #[serde(default)]
    pub cpu_affinity: Option<String>,
    /// Where the GPU sits in the PCIe tree, from which `nvmlDeviceGetTopologyCommonAncestor`
    /// answers for a pair of GPUs (`NOT_SUPPORTED` when either lacks it).
    #[serde(default)]
    pub pci_path: Option<PciPathSpec>,
    /// `nvmlDeviceGetP2PStatus` from this GPU to every other; `None` answers `NOT_SUPPORTED`.
    #[serde(default)]
    pub p2p: Option<P2pSpec>,
    /// Per-peer overrides of `p2p`, by the other GPU's index (`"3": {...}`).
    #[serde(default)]
    pub p2p_peers: BTreeMap<String, P2pSpec>,
    /// `nvmlDeviceGetGpuFabricInfoV` and `nvmlDeviceGetGpuFabricInfo`; `None` answers
    /// `NOT_SUPPORTED`.
    #[serde(default)]
    pub fabric: Option<FabricSpec>,
    /// The far end of every NVLink link that does not name its own `remote`.
    #[serde(default)]
    pub nvlink_remote: Option<RemoteSpec>,
    /// Outcomes of this GPU's calls by symbol; `"*"` applies to every call about the GPU except
    /// `nvmlDeviceGetHandleByIndex_v2` (name that one explicitly).
    #[serde(default)]
    pub calls: BTreeMap<String, Outcome>,
}

/// PCI identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PciSpec {
    /// `domain:bus:device.function` as NVML prints it, e.g. `00000000:18:00.0`.
    pub bus_id: String,
    /// Device and vendor id, e.g. `0x233010DE`.
    #[serde(default)]
    pub device_id: u32,
    /// Subsystem id.
    #[serde(default)]
    pub subsystem_id: u32,
}

/// A GPU architecture by name or NVML number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Architecture(pub u32);

impl<'de> Deserialize<'de> for Architecture {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        const NAMES: &[(&str, u32)] = &[
            ("kepler", 2),
            ("maxwell", 3),
            ("pascal", 4),
            ("volta", 5),
            ("turing", 6),
            ("ampere", 7),
            ("ada", 8),
            ("hopper", 9),
            ("blackwell", 10),
        ];
        match Value::deserialize(d)? {
            Value::String(s) => NAMES
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&s))
                .map(|&(_, v)| Architecture(v))
                .ok_or_else(|| serde::de::Error::custom(format!("unknown architecture {s:?}"))),
            Value::Number(n) => n
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .map(Architecture)
                .ok_or_else(|| serde::de::Error::custom("an architecture number is a u32")),
            other => Err(serde::de::Error::custom(format!(
                "an architecture is a name or a number, not {other}"
            ))),
        }
    }
}

/// Frame-buffer memory in bytes (`free` is `total - reserved - used`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySpec {
    /// Total.
    pub total: u64,
    /// Reserved by the driver.
    #[serde(default)]
    pub reserved: u64,
    /// Used.
    #[serde(default)]
    pub used: u64,
}

/// BAR1 memory in bytes.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bar1Spec {
    /// Total.
    pub total: u64,
    /// Used.
    #[serde(default)]
    pub used: u64,
}

/// Utilisation in percent.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UtilizationSpec {
    /// GPU.
    pub gpu: u32,
    /// Memory.
    pub memory: u32,
}

/// Temperature thresholds in °C.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    /// `NVML_TEMPERATURE_THRESHOLD_SHUTDOWN`.
    #[serde(default)]
    pub shutdown: Option<u32>,
    /// `NVML_TEMPERATURE_THRESHOLD_SLOWDOWN`.
    #[serde(default)]
    pub slowdown: Option<u32>,
    /// `NVML_TEMPERATURE_THRESHOLD_MEM_MAX`.
    #[serde(default)]
    pub memory_max: Option<u32>,
    /// `NVML_TEMPERATURE_THRESHOLD_GPU_MAX`.
    #[serde(default)]
    pub gpu_max: Option<u32>,
}

/// Power readings in milliwatts.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerSpec {
    /// `nvmlDeviceGetPowerUsage`.
    #[serde(default)]
    pub usage_mw: Option<u32>,
    /// `nvmlDeviceGetPowerManagementLimit`.
    #[serde(default)]
    pub limit_mw: Option<u32>,
    /// `nvmlDeviceGetPowerManagementDefaultLimit`.
    #[serde(default)]
    pub default_limit_mw: Option<u32>,
    /// `nvmlDeviceGetEnforcedPowerLimit`.
    #[serde(default)]
    pub enforced_limit_mw: Option<u32>,
}

/// Clocks in MHz.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSpec {
    /// `NVML_CLOCK_GRAPHICS`.
    #[serde(default)]
    pub graphics: Option<u32>,
    /// `NVML_CLOCK_SM`.
    #[serde(default)]
    pub sm: Option<u32>,
    /// `NVML_CLOCK_MEM`.
    #[serde(default)]
    pub memory: Option<u32>,
    /// `NVML_CLOCK_VIDEO`.
    #[serde(default)]
    pub video: Option<u32>,
}

/// ECC mode.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EccModeSpec {
    /// Currently enabled.
    pub current: bool,
    /// Enabled after the next reset.
    pub pending: bool,
}

/// ECC error counts.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EccErrorsSpec {
    /// Since the driver loaded (`NVML_VOLATILE_ECC`).
    #[serde(default)]
    pub volatile: EccCountsSpec,
    /// Over the board's lifetime (`NVML_AGGREGATE_ECC`).
    #[serde(default)]
    pub aggregate: EccCountsSpec,
}

/// Corrected and uncorrected counts.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EccCountsSpec {
    /// Corrected.
    #[serde(default)]
    pub corrected: u64,
    /// Uncorrected.
    #[serde(default)]
    pub uncorrected: u64,
}

/// Retired pages (pre-Ampere GPUs).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetiredPagesSpec {
    /// Pages retired for multiple single-bit errors.
    #[serde(default)]
    pub single_bit: u32,
    /// Pages retired for a double-bit error.
    #[serde(default)]
    pub double_bit: u32,
    /// A retirement waits for the next driver reload.
    #[serde(default)]
    pub pending: bool,
}

/// PCIe link.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcieSpec {
    /// Current generation.
    #[serde(default)]
    pub generation: Option<u32>,
    /// Maximum generation.
    #[serde(default)]
    pub max_generation: Option<u32>,
    /// Current width.
    #[serde(default)]
    pub width: Option<u32>,
    /// Maximum width.
    #[serde(default)]
    pub max_width: Option<u32>,
    /// Replays since the driver loaded.
    #[serde(default)]
    pub replay_counter: Option<u32>,
}

/// One NVLink link.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// What the link is.
    #[serde(default)]
    pub state: LinkState,
    /// The far end (`nvmlDeviceGetNvLinkRemoteDeviceType`, `…RemotePciInfo_v2`); the GPU's
    /// `nvlink_remote` when absent, `NOT_SUPPORTED` when neither is given.
    #[serde(default)]
    pub remote: Option<RemoteSpec>,
    /// `NVML_NVLINK_ERROR_DL_REPLAY`.
    #[serde(default)]
    pub replay_errors: Answer<u64>,
    /// `NVML_NVLINK_ERROR_DL_RECOVERY`.
    #[serde(default)]
    pub recovery_errors: Answer<u64>,
    /// `NVML_NVLINK_ERROR_DL_CRC_FLIT`.
    #[serde(default)]
    pub crc_flit_errors: Answer<u64>,
    /// `NVML_NVLINK_ERROR_DL_CRC_DATA`.
    #[serde(default)]
    pub crc_data_errors: Answer<u64>,
}

/// The state of an NVLink link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Wired and trained: `nvmlDeviceGetNvLinkState` answers `NVML_FEATURE_ENABLED`.
    #[default]
    Up,
    /// Wired but not trained (a cable, bridge or fabric problem): `NVML_FEATURE_DISABLED`.
    Down,
    /// Wired but turned off on purpose: `nvmlDeviceGetNvLinkState` also answers
    /// `NVML_FEATURE_DISABLED` (NVML has no separate state), and the link is not counted in
    /// field 91 (`NVML_FI_DEV_NVLINK_LINK_COUNT`).
    Disabled,
    /// Not connected on this board: `nvmlDeviceGetNvLinkState` answers `NOT_SUPPORTED` and the
    /// link is not counted in field 91.
    NotWired,
}

/// MIG mode (`1` enabled).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigModeSpec {
    /// Current mode.
    pub current: u32,
    /// Mode after the next reset.
    pub pending: u32,
}

/// MIG devices.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigSpec {
    /// `nvmlDeviceGetMaxMigDeviceCount` (slots, empty or not).
    #[serde(default)]
    pub max_devices: Option<u32>,
    /// The MIG devices that exist; a slot without one answers `NOT_FOUND` from
    /// `nvmlDeviceGetMigDeviceHandleByIndex`.
    #[serde(default)]
    pub instances: Vec<MigInstanceSpec>,
}

/// One MIG device.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigInstanceSpec {
    /// Its slot in `nvmlDeviceGetMigDeviceHandleByIndex`.
    pub slot: u32,
    /// `nvmlDeviceGetUUID` of the MIG handle.
    pub uuid: String,
    /// `nvmlDeviceGetName` of the MIG handle, e.g. `NVIDIA H100 80GB HBM3 MIG 3g.40gb`.
    pub name: String,
    /// `nvmlDeviceGetMemoryInfo_v2` total of the MIG handle, in bytes.
    pub memory_total: u64,
    /// `nvmlDeviceGetGpuInstanceId`.
    pub gpu_instance_id: u32,
    /// `nvmlDeviceGetComputeInstanceId`.
    pub compute_instance_id: u32,
    /// The GPU instance's placement (`nvmlGpuInstanceGetInfo`); without one,
    /// `nvmlDeviceGetGpuInstanceById` answers `NO_PERMISSION`, as it does to an unprivileged
    /// caller.
    #[serde(default)]
    pub placement: Option<PlacementSpec>,
}

/// A GPU instance's memory slices.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementSpec {
    /// First slice.
    pub start: u32,
    /// Number of slices.
    pub size: u32,
}

/// Running processes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessesSpec {
    /// `nvmlDeviceGetComputeRunningProcesses_v3`; `None` answers `NOT_SUPPORTED`.
    #[serde(default)]
    pub compute: Option<Vec<ProcessSpec>>,
    /// `nvmlDeviceGetGraphicsRunningProcesses_v3`; `None` answers `NOT_SUPPORTED`.
    #[serde(default)]
    pub graphics: Option<Vec<ProcessSpec>>,
    /// `nvmlDeviceGetMPSComputeRunningProcesses_v3`; `None` answers `NOT_SUPPORTED`.
    #[serde(default)]
    pub mps: Option<Vec<ProcessSpec>>,
}

/// One process.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// Host process id.
    pub pid: u32,
    /// Used GPU memory in bytes (`None`: not available).
    #[serde(default)]
    pub used_memory: Option<u64>,
    /// MIG GPU instance.
    #[serde(default)]
    pub gpu_instance: Option<u32>,
    /// MIG compute instance.
    #[serde(default)]
    pub compute_instance: Option<u32>,
}
