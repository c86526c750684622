//! The data a backend reports: one [`NodeSnapshot`] with every GPU's fields.
//!
//! Every field that the driver may refuse is a [`Reading`], so "not supported on this GPU" or a
//! failed call is data next to the values that could be read, never a failure of the whole call.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::counters::{CounterChanges, LinkChanges};
pub use crate::reading::Reading;
use crate::topology::{GpuTopology, NvLinkRemote};

/// Which backend produced a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// The simulated fleet.
    Mock,
    /// The NVIDIA management library on real hardware.
    Nvml,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Mock => "mock",
            Self::Nvml => "nvml",
        })
    }
}

/// The node-wide driver facts plus every GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeSnapshot {
    /// The backend that produced this snapshot.
    pub backend: BackendKind,
    /// Kernel driver version, e.g. `550.90.07`.
    pub driver_version: Reading<String>,
    /// Highest CUDA version the driver supports, e.g. `12.4`.
    pub cuda_driver_version: Reading<String>,
    /// NVML library version.
    pub nvml_version: Reading<String>,
    /// Every GPU, ordered by index.
    pub gpus: Vec<GpuSnapshot>,
}

/// Whether the driver could be asked about a GPU at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GpuAccess {
    /// The GPU answered.
    Ok,
    /// The driver reports the GPU as lost (`GPU_IS_LOST`: fallen off the bus).
    Lost,
    /// The driver did not answer within the deadline (hung driver or GPU).
    Unresponsive,
    /// The GPU handle could not be obtained.
    Error,
    /// The driver says the GPU must be reset before it can be used (`RESET_REQUIRED`).
    ResetRequired,
    /// The GPU's external power cables are not properly attached (`INSUFFICIENT_POWER`).
    InsufficientPower,
    /// The driver saw an interrupt problem with the GPU (`IRQ_ISSUE`).
    IrqIssue,
    /// The agent is not allowed to open the GPU (`NO_PERMISSION`): a deployment problem, not a
    /// GPU fault.
    NoPermission,
}

/// Every field of one GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GpuSnapshot {
    /// NVML index (`nvidia-smi -i`).
    pub index: u32,
    /// Whether the GPU could be read.
    pub access: GpuAccess,
    /// Why the GPU could not be read, when `access` is not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_detail: Option<String>,
    /// Product name, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: Reading<String>,
    /// GPU UUID, `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    pub uuid: Reading<String>,
    /// Board serial number.
    pub serial: Reading<String>,
    /// PCI bus id in Linux's form, lowercase `dddd:bb:dd.f`, e.g. `0000:3b:00.0` (the one form
    /// every tool reports; backends normalise NVML's `00000000:3B:00.0`).
    pub pci_bus_id: Reading<String>,
    /// GPU architecture, e.g. `Hopper`.
    pub architecture: Reading<String>,
    /// CUDA compute capability, e.g. `9.0`.
    pub compute_capability: Reading<String>,
    /// VBIOS version.
    pub vbios_version: Reading<String>,
    /// Frame-buffer memory.
    pub memory: Reading<MemoryUsage>,
    /// BAR1 (host-visible) memory.
    pub bar1: Reading<MemoryUsage>,
    /// Utilisation over the last sample period.
    pub utilization: Reading<Utilization>,
    /// Current performance state, e.g. `P0`.
    pub performance_state: Reading<String>,
    /// Temperatures and the thresholds the device reports.
    pub temperature: Temperature,
    /// Power draw and limits.
    pub power: Power,
    /// Current and maximum clocks.
    pub clocks: Clocks,
    /// Active clock-event (throttle) reasons, decoded.
    pub clock_event_reasons: Reading<Vec<ClockEventReason>>,
    /// ECC mode and error counts.
    pub ecc: Ecc,
    /// Dynamic page retirement (pre-Ampere GPUs).
    pub retired_pages: Reading<RetiredPages>,
    /// Row remapping (Ampere and later).
    pub row_remapping: Reading<RowRemapping>,
    /// PCIe link state.
    pub pcie: Pcie,
    /// NVLink links (empty when the GPU has none).
    pub nvlink: Reading<Vec<NvLink>>,
    /// Persistence mode enabled.
    pub persistence_mode: Reading<bool>,
    /// Compute mode.
    pub compute_mode: Reading<ComputeMode>,
    /// Multi-Instance GPU state.
    pub mig: Mig,
    /// The driver's recommended recovery action (recent drivers only).
    pub recovery_action: Reading<RecoveryAction>,
    /// Processes with a CUDA or graphics context on the GPU (host pids).
    pub processes: Reading<Vec<GpuProcess>>,
    /// How the cumulative counters changed since the backend's previous reading of this GPU;
    /// `None` on the first reading (or when the backend keeps no history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_previous: Option<CounterChanges>,
    /// Where the GPU sits in the node's wiring: NUMA node, CPU affinity, the path to every
    /// other GPU and the NVSwitch fabric registration.
    #[serde(default)]
    pub topology: GpuTopology,
}

impl GpuSnapshot {
    /// A GPU that could not be read: every field carries `reason` as its error.
    pub fn unreadable(index: u32, access: GpuAccess, reason: &str) -> Self {
        fn err<T>(r: &str) -> Reading<T> {
            Reading::Error(r.to_owned())
        }
        Self {
            index,
            access,
            access_detail: Some(reason.to_owned()),
            name: err(reason),
            uuid: err(reason),
            serial: err(reason),
            pci_bus_id: err(reason),
            architecture: err(reason),
            compute_capability: err(reason),
            vbios_version: err(reason),
            memory: err(reason),
            bar1: err(reason),
            utilization: err(reason),
            performance_state: err(reason),
            temperature: Temperature {
                gpu_c: err(reason),
                memory_c: err(reason),
                slowdown_c: err(reason),
                shutdown_c: err(reason),
                gpu_max_operating_c: err(reason),
                memory_max_operating_c: err(reason),
            },
            power: Power {
                draw_w: err(reason),
                limit_w: err(reason),
                default_limit_w: err(reason),
                enforced_limit_w: err(reason),
            },
            clocks: Clocks {
                graphics_mhz: err(reason),
                sm_mhz: err(reason),
                memory_mhz: err(reason),
                max_graphics_mhz: err(reason),
                max_sm_mhz: err(reason),
                max_memory_mhz: err(reason),
            },
            clock_event_reasons: err(reason),
            ecc: Ecc {
                enabled: err(reason),
                pending_enabled: err(reason),
                volatile: err(reason),
                aggregate: err(reason),
            },
            retired_pages: err(reason),
            row_remapping: err(reason),
            pcie: Pcie {
                current_generation: err(reason),
                max_generation: err(reason),
                current_width: err(reason),
                max_width: err(reason),
                replay_counter: err(reason),
            },
            nvlink: err(reason),
            persistence_mode: err(reason),
            compute_mode: err(reason),
            mig: Mig {
                enabled: err(reason),
                pending_enabled: err(reason),
                instances: err(reason),
            },
            recovery_action: err(reason),
            processes: err(reason),
            since_previous: None,
            topology: GpuTopology {
                numa_node: err(reason),
                cpu_affinity: err(reason),
                peers: err(reason),
                fabric: err(reason),
            },
        }
    }
}

/// One process using a GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GpuProcess {
    /// Process id (in the host's pid namespace).
    pub pid: u32,
    /// `compute` (CUDA), `graphics` or `mps` (an MPS client).
    pub kind: ProcessKind,
    /// GPU memory the process uses, in bytes, when the driver reports it.
    pub used_memory_bytes: Option<u64>,
    /// MIG GPU instance, when MIG is enabled.
    pub gpu_instance: Option<u32>,
    /// MIG compute instance, when MIG is enabled.
    pub compute_instance: Option<u32>,
}

/// What kind of context a process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcessKind {
    /// A CUDA compute context.
    Compute,
    /// A graphics context.
    Graphics,
    /// A client of the CUDA Multi-Process Service (its work runs in the MPS server's context).
    Mps,
}

impl ProcessKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compute => "compute",
            Self::Graphics => "graphics",
            Self::Mps => "mps",
        }
    }
}

/// Memory totals in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemoryUsage {
    /// Total bytes.
    pub total_bytes: u64,
    /// Used bytes.
    pub used_bytes: u64,
    /// Free bytes.
    pub free_bytes: u64,
}

/// Utilisation in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Utilization {
    /// Percent of time a kernel was running.
    pub gpu_percent: u32,
    /// Percent of time device memory was read or written.
    pub memory_percent: u32,
}

/// Temperatures in °C and the thresholds the device reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Temperature {
    /// GPU die temperature.
    pub gpu_c: Reading<u32>,
    /// HBM memory temperature (not supported on GDDR boards).
    pub memory_c: Reading<u32>,
    /// Temperature at which the GPU starts hardware slowdown.
    pub slowdown_c: Reading<u32>,
    /// Temperature at which the GPU shuts down.
    pub shutdown_c: Reading<u32>,
    /// Maximum operating GPU temperature.
    pub gpu_max_operating_c: Reading<u32>,
    /// Maximum operating memory temperature.
    pub memory_max_operating_c: Reading<u32>,
}

/// Power in watts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Power {
    /// Current draw.
    pub draw_w: Reading<f64>,
    /// Configured power-management limit.
    pub limit_w: Reading<f64>,
    /// Default limit of the board.
    pub default_limit_w: Reading<f64>,
    /// Limit the driver enforces (the lowest of all limits).
    pub enforced_limit_w: Reading<f64>,
}

/// Clocks in MHz.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Clocks {
    /// Current graphics clock.
    pub graphics_mhz: Reading<u32>,
    /// Current SM clock.
    pub sm_mhz: Reading<u32>,
    /// Current memory clock.
    pub memory_mhz: Reading<u32>,
    /// Maximum graphics clock.
    pub max_graphics_mhz: Reading<u32>,
    /// Maximum SM clock.
    pub max_sm_mhz: Reading<u32>,
    /// Maximum memory clock.
    pub max_memory_mhz: Reading<u32>,
}

/// Why clocks are below their maximum (NVML clock-event reasons).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ClockEventReason {
    /// Nothing is running.
    GpuIdle,
    /// Application clocks are set below maximum.
    ApplicationsClocksSetting,
    /// Software power cap (normal under load at the power limit).
    SwPowerCap,
    /// Hardware slowdown (thermal or power brake, external signal).
    HwSlowdown,
    /// Sync boost with other GPUs.
    SyncBoost,
    /// Software thermal slowdown (normal near the temperature target).
    SwThermalSlowdown,
    /// Hardware thermal slowdown: the GPU is too hot.
    HwThermalSlowdown,
    /// Hardware power brake: an external power-brake signal (e.g. the PSU) is asserted.
    HwPowerBrakeSlowdown,
    /// Display clock setting.
    DisplayClockSetting,
}

impl ClockEventReason {
    /// True for the reasons that signal a hardware problem rather than normal operation.
    pub fn is_hardware_problem(self) -> bool {
        matches!(
            self,
            Self::HwSlowdown | Self::HwThermalSlowdown | Self::HwPowerBrakeSlowdown
        )
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GpuIdle => "gpu_idle",
            Self::ApplicationsClocksSetting => "applications_clocks_setting",
            Self::SwPowerCap => "sw_power_cap",
            Self::HwSlowdown => "hw_slowdown",
            Self::SyncBoost => "sync_boost",
            Self::SwThermalSlowdown => "sw_thermal_slowdown",
            Self::HwThermalSlowdown => "hw_thermal_slowdown",
            Self::HwPowerBrakeSlowdown => "hw_power_brake_slowdown",
            Self::DisplayClockSetting => "display_clock_setting",
        }
    }
}

/// ECC mode and counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ecc {
    /// ECC currently enabled.
    pub enabled: Reading<bool>,
    /// ECC enabled after the next reboot.
    pub pending_enabled: Reading<bool>,
    /// Counts since the driver was loaded.
    pub volatile: Reading<EccCounts>,
    /// Counts over the board's lifetime.
    pub aggregate: Reading<EccCounts>,
}

/// Corrected and uncorrected ECC error counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EccCounts {
    /// Single-bit, corrected errors.
    pub corrected: u64,
    /// Double-bit, uncorrected errors.
    pub uncorrected: u64,
}

/// Dynamic page retirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RetiredPages {
    /// Pages retired for repeated single-bit errors.
    pub single_bit_ecc: u64,
    /// Pages retired for double-bit errors.
    pub double_bit_ecc: u64,
    /// A retirement is waiting for the next driver reload.
    pub pending: bool,
}

/// Row remapping counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RowRemapping {
    /// Rows remapped for correctable errors.
    pub correctable: u64,
    /// Rows remapped for uncorrectable errors.
    pub uncorrectable: u64,
    /// A remap is waiting for the next GPU reset.
    pub pending: bool,
    /// A remap failed (the RMA criterion).
    pub failed: bool,
}

/// PCIe link state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Pcie {
    /// Current link generation.
    pub current_generation: Reading<u32>,
    /// Maximum link generation of the GPU and system.
    pub max_generation: Reading<u32>,
    /// Current link width (lanes).
    pub current_width: Reading<u32>,
    /// Maximum link width (lanes).
    pub max_width: Reading<u32>,
    /// PCIe replay counter since the driver was loaded.
    pub replay_counter: Reading<u64>,
}

/// One NVLink link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NvLink {
    /// Link number.
    pub link: u32,
    /// Link is up.
    pub active: bool,
    /// Link is wired but turned off on purpose (not counted in NVML's link count): not up, and
    /// never judged down.
    #[serde(default)]
    pub disabled: bool,
    /// Data-link replay errors.
    pub replay_errors: Reading<u64>,
    /// Data-link recovery errors.
    pub recovery_errors: Reading<u64>,
    /// CRC errors in flits.
    pub crc_flit_errors: Reading<u64>,
    /// CRC errors in data.
    pub crc_data_errors: Reading<u64>,
    /// The device at the far end of the link.
    #[serde(default)]
    pub remote: Reading<NvLinkRemote>,
}

/// Compute mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComputeMode {
    /// Many contexts per device.
    Default,
    /// One context per device, usable from one thread at a time.
    ExclusiveThread,
    /// No contexts allowed.
    Prohibited,
    /// One context per device, usable from many threads.
    ExclusiveProcess,
}

/// Multi-Instance GPU state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Mig {
    /// MIG mode currently enabled.
    pub enabled: Reading<bool>,
    /// MIG mode after the next GPU reset.
    pub pending_enabled: Reading<bool>,
    /// MIG devices (empty when MIG is disabled).
    pub instances: Reading<Vec<MigInstance>>,
}

/// One MIG device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MigInstance {
    /// MIG device index on its parent GPU.
    pub index: u32,
    /// MIG device UUID (`MIG-...`).
    pub uuid: Reading<String>,
    /// Name with the profile, e.g. `NVIDIA A100-SXM4-80GB MIG 3g.40gb`.
    pub name: Reading<String>,
    /// Memory of this instance in bytes.
    pub memory_total_bytes: Reading<u64>,
    /// MIG GPU instance id (what `nvidia-smi mig -lgi` and Xid messages call GI).
    #[serde(default)]
    pub gpu_instance_id: Reading<u32>,
    /// MIG compute instance id within the GPU instance (CI).
    #[serde(default)]
    pub compute_instance_id: Reading<u32>,
    /// The profile taken from the name, e.g. `3g.40gb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Where the GPU instance sits on its GPU (memory slices), from `nvmlGpuInstanceGetInfo`.
    #[serde(default)]
    pub placement: Reading<MigPlacement>,
}

/// The slices a MIG GPU instance occupies on its GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MigPlacement {
    /// First memory slice.
    pub start: u32,
    /// Number of slices.
    pub size: u32,
}

impl MigInstance {
    /// The profile part of a MIG device name (`NVIDIA H100 80GB HBM3 MIG 3g.40gb` gives
    /// `3g.40gb`).
    pub fn profile_of(name: &str) -> Option<String> {
        let (_, p) = name.rsplit_once(" MIG ")?;
        let p = p.trim();
        (!p.is_empty()).then(|| p.to_owned())
    }
}

/// The driver's recommended recovery action (NVML field 230).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryAction {
    /// Nothing to do.
    None,
    /// Reset the GPU.
    GpuReset,
    /// Reboot the node.
    NodeReboot,
    /// Drain peer-to-peer traffic.
    DrainP2p,
    /// Drain the GPU, then reset it.
    DrainAndReset,
    /// Recover the GPU's IMEX domain (multi-node NVLink).
    RecoverImexDomain,
    /// Reset the GPU's PCIe bus.
    BusReset,
    /// Reboot the whole system (a cold reboot, not only the node's OS).
    SystemReboot,
    /// A value this version does not know, kept as the driver gave it.
    Unknown(u64),
}

impl RecoveryAction {
    /// Decodes NVML's `nvmlDeviceGpuRecoveryAction_t` (field 230); an unknown value is kept raw.
    pub fn from_nvml(v: u64) -> Self {
        match v {
            0 => Self::None,
            1 => Self::GpuReset,
            2 => Self::NodeReboot,
            3 => Self::DrainP2p,
            4 => Self::DrainAndReset,
            5 => Self::RecoverImexDomain,
            6 => Self::BusReset,
            7 => Self::SystemReboot,
            v => Self::Unknown(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_serialises_as_value_not_supported_or_error() {
        let v: Reading<u32> = Reading::Value(3);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"value":3}"#);
        let n: Reading<u32> = Reading::NotSupported;
        assert_eq!(serde_json::to_string(&n).unwrap(), r#""not_supported""#);
        let e: Reading<u32> = Reading::Error("x".into());
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"error":"x"}"#);
        let back: Reading<u32> = serde_json::from_str(r#""not_supported""#).unwrap();
        assert_eq!(back, Reading::NotSupported);
    }

    #[test]
    fn recovery_action_decodes_every_value_and_keeps_unknown_ones_raw() {
        assert_eq!(RecoveryAction::from_nvml(4), RecoveryAction::DrainAndReset);
        assert_eq!(
            RecoveryAction::from_nvml(5),
            RecoveryAction::RecoverImexDomain
        );
        assert_eq!(RecoveryAction::from_nvml(6), RecoveryAction::BusReset);
        assert_eq!(RecoveryAction::from_nvml(7), RecoveryAction::SystemReboot);
        assert_eq!(RecoveryAction::from_nvml(9), RecoveryAction::Unknown(9));
    }
}
