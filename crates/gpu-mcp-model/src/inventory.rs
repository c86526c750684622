//! The compact inventory: plain values where a field was read, what could not be read listed
//! once per GPU, zero link counters folded, sections selectable.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::inventory_devices::{MigInstanceInventory, MigInventory, ProcessInventory};
use crate::snapshot::{
    BackendKind, ClockEventReason, ComputeMode, EccCounts, GpuAccess, GpuSnapshot, MemoryUsage,
    NvLink, Reading, RecoveryAction, RetiredPages, RowRemapping, Utilization,
};

/// A part of a GPU's inventory that can be asked for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum InventorySection {
    /// Name, UUID, serial, PCI bus id, architecture, compute capability, VBIOS, persistence and
    /// compute mode, the driver's recovery action.
    Identity,
    /// Frame-buffer memory and utilisation (BAR1 memory too with `full`).
    Memory,
    /// Temperatures and the device's thresholds.
    Thermal,
    /// Power draw and limits.
    Power,
    /// Clocks, clock-event (throttle) reasons, performance state.
    Clocks,
    /// ECC mode and counts, retired pages, row remapping.
    Ecc,
    /// PCIe link and replays.
    Pcie,
    /// NVLink links, folded when clean.
    Nvlink,
    /// Processes using the GPU.
    Processes,
    /// Multi-Instance GPU state.
    Mig,
}

impl InventorySection {
    /// Every section.
    pub const ALL: [Self; 10] = [
        Self::Identity,
        Self::Memory,
        Self::Thermal,
        Self::Power,
        Self::Clocks,
        Self::Ecc,
        Self::Pcie,
        Self::Nvlink,
        Self::Processes,
        Self::Mig,
    ];

    /// The sections of the default answer.
    pub const DEFAULT: [Self; 7] = [
        Self::Identity,
        Self::Memory,
        Self::Thermal,
        Self::Power,
        Self::Ecc,
        Self::Pcie,
        Self::Nvlink,
    ];

    /// The snake_case name (also the prefix of its fields in `unavailable`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Memory => "memory",
            Self::Thermal => "thermal",
            Self::Power => "power",
            Self::Clocks => "clocks",
            Self::Ecc => "ecc",
            Self::Pcie => "pcie",
            Self::Nvlink => "nvlink",
            Self::Processes => "processes",
            Self::Mig => "mig",
        }
    }
}

/// Result of `get_gpu_inventory`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Inventory {
    /// Kubernetes node name.
    pub node: String,
    /// Backend that read the GPUs (`nvml` or `mock`).
    pub backend: BackendKind,
    /// Kernel driver version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    /// Highest CUDA version the driver supports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cuda_driver_version: Option<String>,
    /// NVML library version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvml_version: Option<String>,
    /// Node-wide fields that could not be read, with the reason (`not_supported` or the error).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unavailable: BTreeMap<String, String>,
    /// GPUs on the node (all of them, whatever the filter).
    pub gpu_count: u32,
    /// The sections listed for each GPU.
    pub sections: Vec<InventorySection>,
    /// Whether every NVLink link is listed (`full`), or only links that are down or have errors.
    pub full: bool,
    /// The GPUs selected.
    pub gpus: Vec<GpuInventory>,
    /// How to get what this answer left out, when it left something out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub more: Option<String>,
}

/// One GPU's inventory: the selected sections, plain values; a field missing from a section is
/// listed in `unavailable`.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct GpuInventory {
    /// NVML index (`nvidia-smi -i`).
    pub index: u32,
    /// Whether the GPU could be read; absent when it could (`ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<GpuAccess>,
    /// Why the GPU could not be read, when `access` is not `ok` (then no other field is listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_detail: Option<String>,
    /// Product name, e.g. `NVIDIA H100 80GB HBM3`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// GPU UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Board serial number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// PCI bus id, `dddd:bb:dd.f` as `lspci -D` prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    /// GPU architecture, e.g. `Hopper`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// CUDA compute capability, e.g. `9.0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_capability: Option<String>,
    /// VBIOS version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vbios_version: Option<String>,
    /// Persistence mode enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistence_mode: Option<bool>,
    /// Compute mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_mode: Option<ComputeMode>,
    /// The driver's recommended recovery action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_action: Option<RecoveryAction>,
    /// Frame-buffer memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryUsage>,
    /// BAR1 memory (with `full`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bar1: Option<MemoryUsage>,
    /// Utilisation over the last sample period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utilization: Option<Utilization>,
    /// Temperatures in °C and the device's thresholds.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub temperature_c: BTreeMap<String, u32>,
    /// Power draw and limits in watts.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub power_w: BTreeMap<String, f64>,
    /// Current and maximum clocks in MHz.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub clocks_mhz: BTreeMap<String, u32>,
    /// Active clock-event (throttle) reasons.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_event_reasons: Option<Vec<ClockEventReason>>,
    /// Current performance state, e.g. `P0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performance_state: Option<String>,
    /// ECC state and counts, retired pages and row remapping, folded when clean.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecc: Option<EccInventory>,
    /// PCIe link: `current_generation`, `current_width`, `replay_counter`, and `max_generation`
    /// and `max_width` when the link runs below them (always with `full`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pcie: BTreeMap<String, u64>,
    /// NVLink links, folded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvlink: Option<NvLinkInventory>,
    /// Processes with a context on the GPU (host pids), with their pods where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<ProcessInventory>>,
    /// Multi-Instance GPU state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mig: Option<MigInventory>,
    /// Fields of the selected sections that could not be read, with the reason
    /// (`not_supported` or the driver's error).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unavailable: BTreeMap<String, String>,
}

/// ECC mode and counts, folded when clean: the counts, retired pages and row remapping are listed
/// when one of them is not zero (or with `full`).
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct EccInventory {
    /// ECC currently enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// ECC enabled after the next reboot (listed when it differs from `enabled`, or with `full`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_enabled: Option<bool>,
    /// True when every counter that could be read is zero and no retirement or remap is pending
    /// or failed.
    pub all_clean: bool,
    /// Counts since the driver was loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volatile: Option<EccCounts>,
    /// Counts over the board's lifetime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<EccCounts>,
    /// Dynamic page retirement (pre-Ampere GPUs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_pages: Option<RetiredPages>,
    /// Row remapping (Ampere and later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_remapping: Option<RowRemapping>,
}

/// NVLink links folded: counts, and detail only for links that are down or have errors (every
/// link with `full`).
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct NvLinkInventory {
    /// Links the GPU has.
    pub links: u32,
    /// Links that are up.
    pub active: u32,
    /// True when every link is up and every error counter that could be read is zero.
    pub all_clean: bool,
    /// The links that are down or have errors (every link with `full`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<NvLinkDetail>,
}

/// One NVLink link's state.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NvLinkDetail {
    /// Link number.
    pub link: u32,
    /// Link is up.
    pub active: bool,
    /// Error counters that could be read (`replay`, `recovery`, `crc_flit`, `crc_data`).
    pub errors: BTreeMap<String, u64>,
}

/// Takes a reading's value, recording why there is none under `key`.
fn take<T>(r: Reading<T>, key: &str, unavailable: &mut BTreeMap<String, String>) -> Option<T> {
    match r {
        Reading::Value(v) => Some(v),
        Reading::NotSupported => {
            unavailable.insert(key.to_owned(), "not_supported".to_owned());
            None
        }
        Reading::Error(e) => {
            unavailable.insert(key.to_owned(), e);
            None
        }
    }
}

/// Moves readings into a map of plain values, recording the missing ones.
fn collect<T>(
    fields: impl IntoIterator<Item = (&'static str, Reading<T>)>,
    prefix: &str,
    unavailable: &mut BTreeMap<String, String>,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    for (k, r) in fields {
        if let Some(v) = take(r, &format!("{prefix}.{k}"), unavailable) {
            out.insert(k.to_owned(), v);
        }
    }
    out
}

/// Folds NVLink links: counts, and detail for the links that are down or have errors.
fn fold_nvlink(
    links: Vec<NvLink>,
    full: bool,
    unavailable: &mut BTreeMap<String, String>,
) -> NvLinkInventory {
    let mut inv = NvLinkInventory {
        links: links.len() as u32,
        all_clean: true,
        ..NvLinkInventory::default()
    };
    let mut missing: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for l in links {
        let mut errors = BTreeMap::new();
        for (k, r) in [
            ("replay", l.replay_errors),
            ("recovery", l.recovery_errors),
            ("crc_flit", l.crc_flit_errors),
            ("crc_data", l.crc_data_errors),
        ] {
            match r {
                Reading::Value(v) => {
                    errors.insert(k.to_owned(), v);
                }
                Reading::NotSupported => missing
                    .entry("not_supported".into())
                    .or_default()
                    .push(l.link),
                Reading::Error(e) => missing.entry(e).or_default().push(l.link),
            }
        }
        let dirty = !l.active || errors.values().any(|&v| v > 0);
        if l.active {
            inv.active += 1;
        }
        if dirty {
            inv.all_clean = false;
        }
        if dirty || full {
            inv.detail.push(NvLinkDetail {
                link: l.link,
                active: l.active,
                errors,
            });
        }
    }
    for (reason, mut links) in missing {
        links.dedup();
        let list: Vec<String> = links.iter().map(u32::to_string).collect();
        unavailable.insert(format!("nvlink.errors (links {})", list.join(",")), reason);
    }
    inv
}

impl GpuInventory {
    /// The compact form of `g` with the given sections; `full` lists every NVLink link.
    pub fn from_snapshot(g: GpuSnapshot, sections: &[InventorySection], full: bool) -> Self {
        let mut out = Self {
            index: g.index,
            access: (g.access != GpuAccess::Ok).then_some(g.access),
            ..Self::default()
        };
        if g.access != GpuAccess::Ok {
            // Every field carries the same reason: say it once.
            out.access_detail = g.access_detail;
            out.name = g.name.value().cloned();
            out.uuid = g.uuid.value().cloned();
            out.pci_bus_id = g.pci_bus_id.value().cloned();
            return out;
        }
        let u = &mut out.unavailable;
        let has = |s: InventorySection| sections.contains(&s);
        if has(InventorySection::Identity) {
            out.name = take(g.name, "name", u);
            out.uuid = take(g.uuid, "uuid", u);
            out.serial = take(g.serial, "serial", u);
            out.pci_bus_id = take(g.pci_bus_id, "pci_bus_id", u);
            out.architecture = take(g.architecture, "architecture", u);
            out.compute_capability = take(g.compute_capability, "compute_capability", u);
            out.vbios_version = take(g.vbios_version, "vbios_version", u);
            out.persistence_mode = take(g.persistence_mode, "persistence_mode", u);
            out.compute_mode = take(g.compute_mode, "compute_mode", u);
            out.recovery_action = take(g.recovery_action, "recovery_action", u);
        }
        if has(InventorySection::Memory) {
            out.memory = take(g.memory, "memory", u);
            if full {
                out.bar1 = take(g.bar1, "bar1", u);
            }
            out.utilization = take(g.utilization, "utilization", u);
        }
        if has(InventorySection::Thermal) {
            let t = g.temperature;
            out.temperature_c = collect(
                [
                    ("gpu", t.gpu_c),
                    ("memory", t.memory_c),
                    ("slowdown", t.slowdown_c),
                    ("shutdown", t.shutdown_c),
                    ("gpu_max_operating", t.gpu_max_operating_c),
                    ("memory_max_operating", t.memory_max_operating_c),
                ],
                "temperature_c",
                u,
            );
        }
        if has(InventorySection::Power) {
            let p = g.power;
            out.power_w = collect(
                [
                    ("draw", p.draw_w),
                    ("limit", p.limit_w),
                    ("default_limit", p.default_limit_w),
                    ("enforced_limit", p.enforced_limit_w),
                ],
                "power_w",
                u,
            );
        }
        if has(InventorySection::Clocks) {
            let c = g.clocks;
            out.clocks_mhz = collect(
                [
                    ("graphics", c.graphics_mhz),
                    ("sm", c.sm_mhz),
                    ("memory", c.memory_mhz),
                    ("max_graphics", c.max_graphics_mhz),
                    ("max_sm", c.max_sm_mhz),
                    ("max_memory", c.max_memory_mhz),
                ],
                "clocks_mhz",
                u,
            );
            out.clock_event_reasons = take(g.clock_event_reasons, "clock_event_reasons", u);
            out.performance_state = take(g.performance_state, "performance_state", u);
        }
        if has(InventorySection::Ecc) {
            let e = g.ecc;
            let zero = |c: &EccCounts| c.corrected == 0 && c.uncorrected == 0;
            let mut ecc = EccInventory {
                enabled: take(e.enabled, "ecc.enabled", u),
                pending_enabled: take(e.pending_enabled, "ecc.pending_enabled", u),
                all_clean: true,
                volatile: take(e.volatile, "ecc.volatile", u),
                aggregate: take(e.aggregate, "ecc.aggregate", u),
                retired_pages: take(g.retired_pages, "ecc.retired_pages", u),
                row_remapping: take(g.row_remapping, "ecc.row_remapping", u),
            };
            ecc.all_clean = ecc.volatile.as_ref().is_none_or(zero)
                && ecc.aggregate.as_ref().is_none_or(zero)
                && ecc
                    .retired_pages
                    .as_ref()
                    .is_none_or(|r| r.single_bit_ecc == 0 && r.double_bit_ecc == 0 && !r.pending)
                && ecc.row_remapping.as_ref().is_none_or(|r| {
                    r.correctable == 0 && r.uncorrectable == 0 && !r.pending && !r.failed
                });
            if !full {
                // Page retirement (before Ampere) and row remapping (since) are alternatives:
                // the one a GPU does not have is not worth a line.
                let alternative = [
                    ("ecc.retired_pages", ecc.row_remapping.is_some()),
                    ("ecc.row_remapping", ecc.retired_pages.is_some()),
                ];
                for (key, other_read) in alternative {
                    if other_read && u.get(key).is_some_and(|r| r == "not_supported") {
                        u.remove(key);
                    }
                }
                if ecc.pending_enabled == ecc.enabled {
                    ecc.pending_enabled = None;
                }
                if ecc.all_clean {
                    ecc.volatile = None;
                    ecc.aggregate = None;
                    ecc.retired_pages = None;
                    ecc.row_remapping = None;
                }
            }
            out.ecc = Some(ecc);
        }
        if has(InventorySection::Pcie) {
            let p = g.pcie;
            out.pcie = collect(
                [
                    ("current_generation", p.current_generation.map(u64::from)),
                    ("max_generation", p.max_generation.map(u64::from)),
                    ("current_width", p.current_width.map(u64::from)),
                    ("max_width", p.max_width.map(u64::from)),
                    ("replay_counter", p.replay_counter),
                ],
                "pcie",
                u,
            );
            if !full {
                for (max, cur) in [
                    ("max_generation", "current_generation"),
                    ("max_width", "current_width"),
                ] {
                    if out.pcie.get(max) == out.pcie.get(cur) {
                        out.pcie.remove(max);
                    }
                }
            }
        }
        if has(InventorySection::Nvlink) {
            out.nvlink = take(g.nvlink, "nvlink", u).map(|l| fold_nvlink(l, full, u));
        }
        let processes = g.processes.value().cloned();
        if has(InventorySection::Processes) {
            out.processes = take(g.processes, "processes", u)
                .map(|p| p.into_iter().map(ProcessInventory::from).collect());
        }
        if has(InventorySection::Mig) {
            let m = g.mig;
            let instances = take(m.instances, "mig.instances", u).unwrap_or_default();
            out.mig = Some(MigInventory {
                enabled: take(m.enabled, "mig.enabled", u),
                pending_enabled: take(m.pending_enabled, "mig.pending_enabled", u),
                instances: instances
                    .into_iter()
                    .map(|i| {
                        let k = format!("mig.instances[{}]", i.index);
                        let mut inst = MigInstanceInventory {
                            index: i.index,
                            uuid: take(i.uuid, &format!("{k}.uuid"), u),
                            name: take(i.name, &format!("{k}.name"), u),
                            profile: i.profile,
                            gpu_instance_id: take(
                                i.gpu_instance_id,
                                &format!("{k}.gpu_instance_id"),
                                u,
                            ),
                            compute_instance_id: take(
                                i.compute_instance_id,
                                &format!("{k}.compute_instance_id"),
                                u,
                            ),
                            // A driver without GPU-instance queries is not worth a line.
                            placement: i.placement.value().copied(),
                            memory_total_bytes: take(
                                i.memory_total_bytes,
                                &format!("{k}.memory_total_bytes"),
                                u,
                            ),
                            pids: Vec::new(),
                            pods: Vec::new(),
                        };
                        inst.pids = processes
                            .iter()
                            .flatten()
                            .filter(|p| inst.runs(p))
                            .map(|p| p.pid)
                            .collect();
                        inst
                    })
                    .collect(),
            });
        }
        out
    }
}
