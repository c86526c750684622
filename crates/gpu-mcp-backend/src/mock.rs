//! A deterministic simulated fleet: N GPUs of real models with realistic values, and named
//! scenarios that reproduce real failures.
//!
//! Identities (UUIDs, serials, MIG UUIDs) derive from the node name, so simulated nodes never
//! share a GPU UUID. PCI bus ids follow the real board layout of each model (identical boards
//! put their GPUs on the same buses).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use gpu_mcp_model::*;
use serde::Deserialize;

use crate::backend::GpuBackend;
use crate::{Error, Result};

/// A GPU model the mock can simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GpuModel {
    /// NVIDIA A100-SXM4-80GB (Ampere, HGX A100).
    A100Sxm4_80gb,
    /// NVIDIA H100 80GB HBM3 (Hopper, HGX H100).
    H100Hbm3_80gb,
    /// NVIDIA L4 (Ada, PCIe).
    L4,
    /// Tesla V100-SXM2-32GB (Volta; page retirement instead of row remapping).
    V100Sxm2_32gb,
}

impl GpuModel {
    /// Every model.
    pub const ALL: [GpuModel; 4] = [
        Self::A100Sxm4_80gb,
        Self::H100Hbm3_80gb,
        Self::L4,
        Self::V100Sxm2_32gb,
    ];

    /// The short name accepted by `FromStr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A100Sxm4_80gb => "A100-SXM4-80GB",
            Self::H100Hbm3_80gb => "H100-80GB-HBM3",
            Self::L4 => "L4",
            Self::V100Sxm2_32gb => "V100-SXM2-32GB",
        }
    }

    fn spec(self) -> &'static ModelSpec {
        match self {
            Self::A100Sxm4_80gb => &A100,
            Self::H100Hbm3_80gb => &H100,
            Self::L4 => &L4_SPEC,
            Self::V100Sxm2_32gb => &V100,
        }
    }
}

impl fmt::Display for GpuModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn model_key(s: &str) -> String {
    let key: String = s
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let key = key.strip_prefix("nvidia").unwrap_or(&key);
    key.strip_prefix("tesla").unwrap_or(key).to_owned()
}

impl FromStr for GpuModel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let key = model_key(s);
        Self::ALL
            .into_iter()
            .find(|m| model_key(m.as_str()) == key || model_key(m.spec().name) == key)
            .ok_or_else(|| Error::UnknownModel {
                name: s.to_owned(),
                known: Self::ALL.map(GpuModel::as_str).join(", "),
            })
    }
}

struct ModelSpec {
    name: &'static str,
    architecture: &'static str,
    compute_capability: &'static str,
    vbios: &'static str,
    memory_mib: u64,
    bar1_mib: u64,
    power_limit_w: f64,
    slowdown_c: u32,
    shutdown_c: u32,
    gpu_max_c: u32,
    memory_max_c: Option<u32>,
    max_graphics_mhz: u32,
    max_memory_mhz: u32,
    pcie_gen: u32,
    nvlinks: u32,
    row_remapping: bool,
    page_retirement: bool,
    mig_profiles: &'static [(&'static str, u64)],
    recovery_action: bool,
    pci_buses: &'static [u8],
    serial_prefix: &'static str,
}

static A100: ModelSpec = ModelSpec {
    name: "NVIDIA A100-SXM4-80GB",
    architecture: "Ampere",
    compute_capability: "8.0",
    vbios: "92.00.45.00.06",
    memory_mib: 81_920,
    bar1_mib: 131_072,
    power_limit_w: 400.0,
    slowdown_c: 89,
    shutdown_c: 92,
    gpu_max_c: 85,
    memory_max_c: Some(95),
    max_graphics_mhz: 1410,
    max_memory_mhz: 1593,
    pcie_gen: 4,
    nvlinks: 12,
    row_remapping: true,
    page_retirement: false,
    mig_profiles: &[("3g.40gb", 40_192), ("3g.40gb", 40_192), ("1g.10gb", 9_728)],
    recovery_action: true,
    pci_buses: &[0x07, 0x0f, 0x47, 0x4e, 0x87, 0x90, 0xb7, 0xbd],
    serial_prefix: "1323",
};

static H100: ModelSpec = ModelSpec {
    name: "NVIDIA H100 80GB HBM3",
    architecture: "Hopper",
    compute_capability: "9.0",
    vbios: "96.00.99.00.01",
    memory_mib: 81_559,
    bar1_mib: 131_072,
    power_limit_w: 700.0,
    slowdown_c: 89,
    shutdown_c: 92,
    gpu_max_c: 87,
    memory_max_c: Some(95),
    max_graphics_mhz: 1980,
    max_memory_mhz: 2619,
    pcie_gen: 5,
    nvlinks: 18,
    row_remapping: true,
    page_retirement: false,
    mig_profiles: &[("3g.40gb", 40_448), ("3g.40gb", 40_448), ("1g.10gb", 9_984)],
    recovery_action: true,
    pci_buses: &[0x18, 0x2a, 0x3a, 0x5d, 0x9a, 0xab, 0xba, 0xdb],
    serial_prefix: "1652",
};

static L4_SPEC: ModelSpec = ModelSpec {
    name: "NVIDIA L4",
    architecture: "Ada",
    compute_capability: "8.9",
    vbios: "95.04.29.00.06",
    memory_mib: 23_034,
    bar1_mib: 32_768,
    power_limit_w: 72.0,
    slowdown_c: 93,
    shutdown_c: 98,
    gpu_max_c: 90,
    memory_max_c: None,
    max_graphics_mhz: 2040,
    max_memory_mhz: 6251,
    pcie_gen: 4,
    nvlinks: 0,
    row_remapping: true,
    page_retirement: false,
    mig_profiles: &[],
    recovery_action: false,
    pci_buses: &[0x01, 0x02, 0x41, 0x61, 0x81, 0xa1, 0xc1, 0xe1],
    serial_prefix: "1321",
};

static V100: ModelSpec = ModelSpec {
    name: "Tesla V100-SXM2-32GB",
    architecture: "Volta",
    compute_capability: "7.0",
    vbios: "88.00.80.00.01",
    memory_mib: 32_768,
    bar1_mib: 32_768,
    power_limit_w: 300.0,
    slowdown_c: 87,
    shutdown_c: 90,
    gpu_max_c: 83,
    memory_max_c: Some(85),
    max_graphics_mhz: 1530,
    max_memory_mhz: 877,
    pcie_gen: 3,
    nvlinks: 6,
    row_remapping: false,
    page_retirement: true,
    mig_profiles: &[],
    recovery_action: false,
    pci_buses: &[0x15, 0x16, 0x3a, 0x3b, 0x89, 0x8a, 0xb2, 0xb3],
    serial_prefix: "0323",
};

/// A named failure (or non-failure) the mock reproduces on its affected GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Every GPU healthy under load.
    Healthy,
    /// Above the slowdown temperature with hardware thermal slowdown active.
    ThermalSlowdown,
    /// The external power-brake signal is asserted: clocks collapse.
    PowerBrake,
    /// An uncorrectable ECC error with a pending row remap (page retirement on Volta), Xid 48/63.
    UncorrectableEcc,
    /// A row remap failed (the RMA criterion), Xid 64.
    RowRemapFailure,
    /// The GPU has fallen off the bus (Xid 79); NVML reports it lost.
    Xid79,
    /// The uncorrectable-memory-error family: Xid 48, 94 (contained) and 95 (uncontained).
    XidEccFamily,
    /// NVLink CRC, replay and recovery errors on two links.
    NvlinkCrcErrors,
    /// MIG enabled with three instances; healthy.
    MigEnabled,
    /// PCIe link trained below its capability, with many replays.
    PcieDegraded,
    /// GSP firmware timeout (Xid 119); the driver stops answering for this GPU.
    GspTimeout,
    /// Application faults only (Xid 13, 31, 43): the workload, not the hardware.
    ApplicationXid,
    /// The driver asks for drain and reset (recovery action, Xid 154).
    RecoveryAction,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 13] = [
        Self::Healthy,
        Self::ThermalSlowdown,
        Self::PowerBrake,
        Self::UncorrectableEcc,
        Self::RowRemapFailure,
        Self::Xid79,
        Self::XidEccFamily,
        Self::NvlinkCrcErrors,
        Self::MigEnabled,
        Self::PcieDegraded,
        Self::GspTimeout,
        Self::ApplicationXid,
        Self::RecoveryAction,
    ];

    /// The name accepted by `FromStr` (kebab-case).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::ThermalSlowdown => "thermal-slowdown",
            Self::PowerBrake => "power-brake",
            Self::UncorrectableEcc => "uncorrectable-ecc",
            Self::RowRemapFailure => "row-remap-failure",
            Self::Xid79 => "xid-79",
            Self::XidEccFamily => "xid-ecc-family",
            Self::NvlinkCrcErrors => "nvlink-crc-errors",
            Self::MigEnabled => "mig-enabled",
            Self::PcieDegraded => "pcie-degraded",
            Self::GspTimeout => "gsp-timeout",
            Self::ApplicationXid => "application-xid",
            Self::RecoveryAction => "recovery-action",
        }
    }

    /// One sentence describing the scenario.
    pub fn description(self) -> &'static str {
        match self {
            Self::Healthy => "every GPU healthy under a training load",
            Self::ThermalSlowdown => {
                "the affected GPU is above its slowdown temperature with hardware thermal slowdown active"
            }
            Self::PowerBrake => {
                "the external power-brake signal is asserted on the affected GPU and its clocks collapse"
            }
            Self::UncorrectableEcc => {
                "an uncorrectable ECC error with a pending row remap (page retirement on Volta), Xid 48 and 63"
            }
            Self::RowRemapFailure => {
                "a row remap failed on the affected GPU (the RMA criterion), Xid 64"
            }
            Self::Xid79 => {
                "the affected GPU has fallen off the bus (Xid 79) and NVML reports it lost"
            }
            Self::XidEccFamily => {
                "the uncorrectable memory error family: Xid 48, 94 (contained) and 95 (uncontained)"
            }
            Self::NvlinkCrcErrors => "CRC, replay and recovery errors on two NVLink links",
            Self::MigEnabled => "MIG enabled with three instances on the affected GPU; healthy",
            Self::PcieDegraded => "the PCIe link trained below its capability, with many replays",
            Self::GspTimeout => {
                "GSP firmware timeout (Xid 119); the driver stops answering for the GPU"
            }
            Self::ApplicationXid => {
                "application faults only (Xid 13, 31, 43): the workload, not the hardware"
            }
            Self::RecoveryAction => {
                "the driver asks for drain and reset (recovery action, Xid 154)"
            }
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scenario {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let key = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|sc| sc.as_str() == key)
            .ok_or_else(|| Error::UnknownScenario {
                name: s.to_owned(),
                known: Self::ALL.map(Scenario::as_str).join(", "),
            })
    }
}

/// One GPU of an explicit layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockGpu {
    /// The model.
    pub model: GpuModel,
    /// The scenario applied to this GPU.
    pub scenario: Scenario,
}

/// How the simulated node looks.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// Node name; GPU identities derive from it.
    pub node_name: String,
    /// Number of GPUs (ignored when `layout` is not empty).
    pub gpus: usize,
    /// Model of every GPU (ignored when `layout` is not empty).
    pub model: GpuModel,
    /// Scenario applied to `affected_gpu` (ignored when `layout` is not empty).
    pub scenario: Scenario,
    /// Index of the GPU the scenario applies to.
    pub affected_gpu: u32,
    /// An explicit per-GPU layout (from a profile file).
    pub layout: Vec<MockGpu>,
    /// Reported driver version.
    pub driver_version: String,
    /// Reported CUDA driver version.
    pub cuda_version: String,
    /// The time the mock treats as "now" when it starts (events are placed before it); the
    /// system clock when `None`.
    pub now: Option<SystemTime>,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            node_name: "mock-node".to_owned(),
            gpus: 8,
            model: GpuModel::H100Hbm3_80gb,
            scenario: Scenario::Healthy,
            affected_gpu: 0,
            layout: Vec::new(),
            driver_version: "570.133.20".to_owned(),
            cuda_version: "12.8".to_owned(),
            now: None,
        }
    }
}

/// The JSON form of a mock profile file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    node_name: Option<String>,
    driver_version: Option<String>,
    cuda_version: Option<String>,
    gpus: Vec<ProfileGpu>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileGpu {
    model: String,
    #[serde(default = "one")]
    count: usize,
    #[serde(default)]
    scenario: Option<String>,
}

fn one() -> usize {
    1
}

/// Most GPUs a mock node may have.
pub const MAX_MOCK_GPUS: usize = 64;

impl MockConfig {
    /// Parses a JSON profile, e.g.
    /// `{"node_name": "gpu-7", "gpus": [{"model": "H100-80GB-HBM3", "count": 7},
    /// {"model": "H100-80GB-HBM3", "scenario": "xid-79"}]}`.
    pub fn from_profile_str(s: &str) -> Result<MockConfig> {
        let p: Profile = serde_json::from_str(s)
            .map_err(|e| Error::MockConfig(format!("profile is not valid: {e}")))?;
        let mut cfg = MockConfig::default();
        if let Some(n) = p.node_name {
            cfg.node_name = n;
        }
        if let Some(d) = p.driver_version {
            cfg.driver_version = d;
        }
        if let Some(c) = p.cuda_version {
            cfg.cuda_version = c;
        }
        for g in p.gpus {
            let model: GpuModel = g.model.parse()?;
            let scenario = match g.scenario {
                Some(s) => s.parse()?,
                None => Scenario::Healthy,
            };
            if cfg.layout.len() + g.count > MAX_MOCK_GPUS {
                return Err(Error::MockConfig(format!(
                    "a mock node has at most {MAX_MOCK_GPUS} GPUs"
                )));
            }
            cfg.layout
                .extend(std::iter::repeat_n(MockGpu { model, scenario }, g.count));
        }
        cfg.gpus = cfg.layout.len();
        Ok(cfg)
    }

    fn resolved_layout(&self) -> Result<Vec<MockGpu>> {
        if !self.layout.is_empty() {
            if self.layout.len() > MAX_MOCK_GPUS {
                return Err(Error::MockConfig(format!(
                    "a mock node has at most {MAX_MOCK_GPUS} GPUs"
                )));
            }
            return Ok(self.layout.clone());
        }
        if self.gpus > MAX_MOCK_GPUS {
            return Err(Error::MockConfig(format!(
                "{} GPUs requested; a mock node has at most {MAX_MOCK_GPUS}",
                self.gpus
            )));
        }
        if self.gpus > 0 && self.affected_gpu as usize >= self.gpus {
            return Err(Error::MockConfig(format!(
                "affected GPU {} does not exist on a node with {} GPUs",
                self.affected_gpu, self.gpus
            )));
        }
        Ok((0..self.gpus)
            .map(|i| MockGpu {
                model: self.model,
                scenario: if i == self.affected_gpu as usize {
                    self.scenario
                } else {
                    Scenario::Healthy
                },
            })
            .collect())
    }
}

/// FNV-1a, 64 bit: a stable hash for identities.
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

fn uuid_from(prefix: &str, parts: &[&str]) -> String {
    let a = fnv(&[parts, &["hi"]].concat());
    let b = fnv(&[parts, &["lo"]].concat());
    format!(
        "{prefix}{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// The simulated backend.
#[derive(Debug, Clone)]
pub struct MockBackend {
    node: NodeSnapshot,
    events: Vec<XidEvent>,
    config: MockConfig,
}

const MIB: u64 = 1024 * 1024;

/// How long the simulated node has been up when the mock starts (its kernel-log times count
/// from `now - MOCK_UPTIME`).
pub const MOCK_UPTIME: Duration = Duration::from_secs(3 * 86_400 + 7_213);

fn v<T>(x: T) -> Reading<T> {
    Reading::Value(x)
}

impl MockBackend {
    /// Builds the fleet; fails on an invalid configuration.
    pub fn new(config: MockConfig) -> Result<MockBackend> {
        let layout = config.resolved_layout()?;
        let now = config.now.unwrap_or_else(SystemTime::now);
        let boot = now - MOCK_UPTIME;
        let mut gpus = Vec::with_capacity(layout.len());
        let mut events = Vec::new();
        for (i, g) in layout.iter().enumerate() {
            let (gpu, mut evs) = build_gpu(&config.node_name, i as u32, *g, now, boot);
            gpus.push(gpu);
            events.append(&mut evs);
        }
        events.sort_by_key(|e| e.time);
        let node = NodeSnapshot {
            backend: BackendKind::Mock,
            driver_version: v(config.driver_version.clone()),
            cuda_driver_version: v(config.cuda_version.clone()),
            nvml_version: v(format!("12.{}", config.driver_version)),
            gpus,
        };
        Ok(MockBackend {
            node,
            events,
            config,
        })
    }

    /// The configuration the fleet was built from.
    pub fn config(&self) -> &MockConfig {
        &self.config
    }

    /// The scenario events as `/dev/kmsg` records (one per line), for feeding the kernel-log path.
    pub fn kernel_log(&self) -> String {
        let mut out = String::new();
        for (seq, e) in self.events.iter().enumerate() {
            let pci = e.pci_bus_id.as_deref().unwrap_or("0000:00:00");
            let who = match (e.pid, &e.process_name) {
                (Some(p), Some(n)) => format!("pid={p}, name={n}, "),
                (Some(p), None) => format!("pid={p}, "),
                _ => "pid='<unknown>', name=<unknown>, ".to_owned(),
            };
            out.push_str(&format!(
                "3,{},{},-;NVRM: Xid (PCI:{pci}): {}, {who}{}\n",
                1000 + seq,
                e.uptime_us.unwrap_or(0),
                e.xid,
                e.message
            ));
        }
        out
    }
}

impl GpuBackend for MockBackend {
    fn snapshot(&self) -> BoxFuture<'_, Result<NodeSnapshot>> {
        Box::pin(async move { Ok(self.node.clone()) })
    }

    fn xid_events(&self) -> Vec<XidEvent> {
        self.events.clone()
    }

    fn xid_recorder_status(&self) -> EventRecorderStatus {
        EventRecorderStatus {
            active: true,
            detail: "mock backend: Xid events are simulated by the scenario".to_owned(),
        }
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Mock
    }
}

#[allow(clippy::too_many_lines)]
fn build_gpu(
    node: &str,
    index: u32,
    g: MockGpu,
    now: SystemTime,
    boot: SystemTime,
) -> (GpuSnapshot, Vec<XidEvent>) {
    let s = g.model.spec();
    let idx = index.to_string();
    let h = fnv(&[node, &idx, "load"]);
    let uuid = uuid_from("GPU-", &[node, &idx, g.model.as_str()]);
    let serial = format!(
        "{}{:09}",
        s.serial_prefix,
        fnv(&[node, &idx, "serial"]) % 1_000_000_000
    );
    let bus = s.pci_buses[index as usize % s.pci_buses.len()];
    let domain = index as usize / s.pci_buses.len();
    let pci = format!("{domain:08X}:{bus:02X}:00.0");
    let pci_kernel = format!("{domain:04x}:{bus:02x}:00");
    let limit = s.power_limit_w;
    let util = 88 + (h % 12) as u32;
    let temp = 48 + (h % 9) as u32;
    let used_mib = s.memory_mib * (70 + h % 20) / 100;
    let reserved_mib = s.memory_mib / 100;
    let mem = MemoryUsage {
        total_bytes: s.memory_mib * MIB,
        used_bytes: used_mib * MIB,
        free_bytes: (s.memory_mib - used_mib - reserved_mib) * MIB,
    };
    let nvlink = if s.nvlinks == 0 {
        v(Vec::new())
    } else {
        v((0..s.nvlinks)
            .map(|l| NvLink {
                link: l,
                active: true,
                replay_errors: v(0),
                recovery_errors: v(0),
                crc_flit_errors: v(0),
                crc_data_errors: v(0),
            })
            .collect())
    };
    let mut gpu = GpuSnapshot {
        index,
        access: GpuAccess::Ok,
        access_detail: None,
        name: v(s.name.to_owned()),
        uuid: v(uuid.clone()),
        serial: v(serial),
        pci_bus_id: v(pci),
        architecture: v(s.architecture.to_owned()),
        compute_capability: v(s.compute_capability.to_owned()),
        vbios_version: v(s.vbios.to_owned()),
        memory: v(mem),
        bar1: v(MemoryUsage {
            total_bytes: s.bar1_mib * MIB,
            used_bytes: 2 * MIB,
            free_bytes: (s.bar1_mib - 2) * MIB,
        }),
        utilization: v(Utilization {
            gpu_percent: util,
            memory_percent: util / 2,
        }),
        performance_state: v("P0".to_owned()),
        temperature: Temperature {
            gpu_c: v(temp),
            memory_c: s.memory_max_c.map(|_| temp + 6).into(),
            slowdown_c: v(s.slowdown_c),
            shutdown_c: v(s.shutdown_c),
            gpu_max_operating_c: v(s.gpu_max_c),
            memory_max_operating_c: s.memory_max_c.into(),
        },
        power: Power {
            draw_w: v(((limit * (0.62 + (h % 20) as f64 / 100.0)) * 100.0).round() / 100.0),
            limit_w: v(limit),
            default_limit_w: v(limit),
            enforced_limit_w: v(limit),
        },
        clocks: Clocks {
            graphics_mhz: v(s.max_graphics_mhz),
            sm_mhz: v(s.max_graphics_mhz),
            memory_mhz: v(s.max_memory_mhz),
            max_graphics_mhz: v(s.max_graphics_mhz),
            max_sm_mhz: v(s.max_graphics_mhz),
            max_memory_mhz: v(s.max_memory_mhz),
        },
        clock_event_reasons: v(Vec::new()),
        ecc: Ecc {
            enabled: v(true),
            pending_enabled: v(true),
            volatile: v(EccCounts {
                corrected: 0,
                uncorrected: 0,
            }),
            aggregate: v(EccCounts {
                corrected: h % 3,
                uncorrected: 0,
            }),
        },
        retired_pages: if s.page_retirement {
            v(RetiredPages {
                single_bit_ecc: 0,
                double_bit_ecc: 0,
                pending: false,
            })
        } else {
            Reading::NotSupported
        },
        row_remapping: if s.row_remapping {
            v(RowRemapping {
                correctable: 0,
                uncorrectable: 0,
                pending: false,
                failed: false,
            })
        } else {
            Reading::NotSupported
        },
        pcie: Pcie {
            current_generation: v(s.pcie_gen),
            max_generation: v(s.pcie_gen),
            current_width: v(16),
            max_width: v(16),
            replay_counter: v(0),
        },
        nvlink,
        persistence_mode: v(true),
        compute_mode: v(ComputeMode::Default),
        mig: if s.mig_profiles.is_empty() {
            Mig {
                enabled: Reading::NotSupported,
                pending_enabled: Reading::NotSupported,
                instances: Reading::NotSupported,
            }
        } else {
            Mig {
                enabled: v(false),
                pending_enabled: v(false),
                instances: v(Vec::new()),
            }
        },
        recovery_action: if s.recovery_action {
            v(RecoveryAction::None)
        } else {
            Reading::NotSupported
        },
        // One training process per GPU, as under a Kubernetes pod with one GPU per rank.
        processes: v(vec![GpuProcess {
            pid: 40_000 + (fnv(&[node, &idx, "pid"]) % 20_000) as u32,
            kind: ProcessKind::Compute,
            used_memory_bytes: Some((used_mib - 512) * MIB),
            gpu_instance: None,
            compute_instance: None,
        }]),
    };

    let mut events = Vec::new();
    let mut event = |mins_ago: u64, xid: u32, pid: Option<(u32, &str)>, message: &str| {
        let t = now - Duration::from_secs(mins_ago * 60);
        let up = t.duration_since(boot).unwrap_or_default();
        events.push(XidEvent {
            xid,
            source: XidSource::Mock,
            pci_bus_id: Some(pci_kernel.clone()),
            gpu_uuid: Some(uuid.clone()),
            gpu_index: Some(index),
            gpu_instance: None,
            compute_instance: None,
            pid: pid.map(|p| p.0),
            process_name: pid.map(|p| p.1.to_owned()),
            message: message.to_owned(),
            time: Some(t),
            uptime_us: Some(up.as_micros() as u64),
            implied: false,
        });
    };

    match g.scenario {
        Scenario::Healthy => {}
        Scenario::ThermalSlowdown => {
            gpu.temperature.gpu_c = v(s.slowdown_c);
            if let Some(m) = s.memory_max_c {
                gpu.temperature.memory_c = v(m - 2);
            }
            gpu.clock_event_reasons = v(vec![
                ClockEventReason::SwThermalSlowdown,
                ClockEventReason::HwThermalSlowdown,
            ]);
            gpu.clocks.graphics_mhz = v(s.max_graphics_mhz * 55 / 100);
            gpu.clocks.sm_mhz = v(s.max_graphics_mhz * 55 / 100);
            gpu.power.draw_w = v((limit * 0.58).round());
        }
        Scenario::PowerBrake => {
            gpu.clock_event_reasons = v(vec![
                ClockEventReason::HwSlowdown,
                ClockEventReason::HwPowerBrakeSlowdown,
            ]);
            gpu.clocks.graphics_mhz = v(s.max_graphics_mhz * 2 / 10);
            gpu.clocks.sm_mhz = v(s.max_graphics_mhz * 2 / 10);
            gpu.power.draw_w = v((limit * 0.22).round());
            gpu.utilization = v(Utilization {
                gpu_percent: 100,
                memory_percent: 12,
            });
        }
        Scenario::UncorrectableEcc => {
            gpu.ecc.volatile = v(EccCounts {
                corrected: 14,
                uncorrected: 1,
            });
            gpu.ecc.aggregate = v(EccCounts {
                corrected: 31,
                uncorrected: 1,
            });
            if s.row_remapping {
                gpu.row_remapping = v(RowRemapping {
                    correctable: 0,
                    uncorrectable: 1,
                    pending: true,
                    failed: false,
                });
                event(
                    42,
                    48,
                    Some((48_211, "python3")),
                    "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.",
                );
                event(
                    42,
                    63,
                    None,
                    "Row Remapper: New row marked for remapping, reset gpu to activate.",
                );
            } else {
                gpu.retired_pages = v(RetiredPages {
                    single_bit_ecc: 0,
                    double_bit_ecc: 1,
                    pending: true,
                });
                event(
                    42,
                    48,
                    Some((48_211, "python3")),
                    "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.",
                );
                event(
                    42,
                    63,
                    None,
                    "Dynamic Page Retirement: New retired page, reload the driver to activate. (0x00000000004c1a2b).",
                );
            }
        }
        Scenario::RowRemapFailure => {
            gpu.ecc.aggregate = v(EccCounts {
                corrected: 412,
                uncorrected: 9,
            });
            gpu.ecc.volatile = v(EccCounts {
                corrected: 3,
                uncorrected: 1,
            });
            if s.row_remapping {
                gpu.row_remapping = v(RowRemapping {
                    correctable: 2,
                    uncorrectable: 8,
                    pending: false,
                    failed: true,
                });
                event(
                    17,
                    64,
                    None,
                    "Row Remapper Error: Failed to remap row, bank 4 has no spare rows left.",
                );
            } else {
                gpu.retired_pages = v(RetiredPages {
                    single_bit_ecc: 12,
                    double_bit_ecc: 52,
                    pending: false,
                });
                event(
                    17,
                    64,
                    None,
                    "Dynamic Page Retirement: Fatal error, unable to retire page (0x0000000000a4c3e1).",
                );
            }
        }
        Scenario::Xid79 => {
            let name = s.name.to_owned();
            let serial = gpu.serial.clone();
            let pci = gpu.pci_bus_id.clone();
            gpu = GpuSnapshot::unreadable(
                index,
                GpuAccess::Lost,
                "the driver reports the GPU as lost (NVML_ERROR_GPU_IS_LOST)",
            );
            gpu.name = v(name);
            gpu.uuid = v(uuid.clone());
            gpu.serial = serial;
            gpu.pci_bus_id = pci;
            event(
                8,
                79,
                Some((73_102, "pt_main_thread")),
                "GPU has fallen off the bus.",
            );
        }
        Scenario::XidEccFamily => {
            gpu.ecc.volatile = v(EccCounts {
                corrected: 6,
                uncorrected: 2,
            });
            gpu.ecc.aggregate = v(EccCounts {
                corrected: 19,
                uncorrected: 2,
            });
            if s.row_remapping {
                gpu.row_remapping = v(RowRemapping {
                    correctable: 0,
                    uncorrectable: 2,
                    pending: true,
                    failed: false,
                });
            }
            event(
                31,
                48,
                Some((91_422, "python3")),
                "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 2, subpartition 1.",
            );
            event(
                31,
                94,
                Some((91_422, "python3")),
                "Contained: SM (0x1). RST: No, D-RST: No",
            );
            event(
                12,
                48,
                Some((92_001, "pt_main_thread")),
                "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 5, subpartition 0.",
            );
            event(
                12,
                95,
                Some((92_001, "pt_main_thread")),
                "Uncontained: FBHUB. RST: Yes, D-RST: No",
            );
        }
        Scenario::NvlinkCrcErrors => {
            if let Reading::Value(links) = &mut gpu.nvlink {
                if let Some(l) = links.get_mut(3) {
                    l.crc_flit_errors = v(1_843);
                    l.crc_data_errors = v(212);
                    l.replay_errors = v(57);
                    l.recovery_errors = v(2);
                }
                if let Some(l) = links.get_mut(7) {
                    l.crc_flit_errors = v(96);
                }
            }
        }
        Scenario::MigEnabled => {
            if s.mig_profiles.is_empty() {
                // Not a MIG-capable model: nothing to enable.
            } else {
                gpu.mig.enabled = v(true);
                gpu.mig.pending_enabled = v(true);
                gpu.mig.instances = v(s
                    .mig_profiles
                    .iter()
                    .enumerate()
                    .map(|(i, (profile, mib))| MigInstance {
                        index: i as u32,
                        uuid: v(uuid_from("MIG-", &[node, &idx, &i.to_string()])),
                        name: v(format!("{} MIG {profile}", s.name)),
                        memory_total_bytes: v(mib * MIB),
                    })
                    .collect());
                gpu.processes = v((0..s.mig_profiles.len() as u32)
                    .map(|i| GpuProcess {
                        pid: 50_000 + i,
                        kind: ProcessKind::Compute,
                        used_memory_bytes: Some(6_144 * MIB),
                        gpu_instance: Some([1, 2, 9][i as usize % 3]),
                        compute_instance: Some(0),
                    })
                    .collect());
                // NVML cannot read row remapping while MIG instances are active.
                gpu.row_remapping = Reading::NotSupported;
                gpu.utilization = Reading::NotSupported;
            }
        }
        Scenario::PcieDegraded => {
            gpu.pcie.current_generation = v(s.pcie_gen.saturating_sub(2).max(1));
            gpu.pcie.current_width = v(8);
            gpu.pcie.replay_counter = v(4_210);
        }
        Scenario::GspTimeout => {
            let name = s.name.to_owned();
            let pci = gpu.pci_bus_id.clone();
            gpu = GpuSnapshot::unreadable(
                index,
                GpuAccess::Unresponsive,
                "the driver did not answer within 5s; the driver or GPU may be hung",
            );
            gpu.name = v(name);
            gpu.uuid = v(uuid.clone());
            gpu.pci_bus_id = pci;
            event(
                6,
                119,
                Some((55_871, "python3")),
                "Timeout after 6s of waiting for RPC response from GPU0 GSP! Expected function 76 (GSP_RM_CONTROL) (0x2080014b 0x5).",
            );
            event(
                5,
                119,
                None,
                "Timeout after 6s of waiting for RPC response from GPU0 GSP! Expected function 10 (FREE) (0x5c000001 0x0).",
            );
        }
        Scenario::ApplicationXid => {
            event(
                25,
                13,
                Some((31_337, "python3")),
                "Graphics SM Warp Exception on (GPC 4, TPC 1, SM 0): Out Of Range Address",
            );
            event(25, 43, Some((31_337, "python3")), "Ch 00000010");
            event(
                9,
                31,
                Some((31_544, "python3")),
                "Ch 00000010, intr 00000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_2 faulted @ 0x7f3a_1c000000. Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_READ",
            );
        }
        Scenario::RecoveryAction => {
            if s.recovery_action {
                gpu.recovery_action = v(RecoveryAction::DrainAndReset);
            }
            event(
                3,
                154,
                None,
                "GPU recovery action changed from 0x0 (None) to 0x4 (Drain and Reset)",
            );
        }
    }
    (gpu, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(s.as_str().parse::<Scenario>().unwrap(), s);
        }
        for m in GpuModel::ALL {
            assert_eq!(m.as_str().parse::<GpuModel>().unwrap(), m);
        }
        assert_eq!(
            "NVIDIA H100 80GB HBM3".parse::<GpuModel>().unwrap(),
            GpuModel::H100Hbm3_80gb
        );
        assert_eq!(
            "nvidia a100-sxm4-80gb".parse::<GpuModel>().unwrap(),
            GpuModel::A100Sxm4_80gb
        );
        assert!("B200".parse::<GpuModel>().is_err());
        let e = "meltdown".parse::<Scenario>().unwrap_err().to_string();
        assert!(e.contains("healthy") && e.contains("xid-79"), "{e}");
    }

    #[test]
    fn uuids_differ_between_nodes_and_are_stable() {
        let a = MockBackend::new(MockConfig {
            node_name: "node-a".into(),
            ..MockConfig::default()
        })
        .unwrap();
        let a2 = MockBackend::new(MockConfig {
            node_name: "node-a".into(),
            ..MockConfig::default()
        })
        .unwrap();
        let b = MockBackend::new(MockConfig {
            node_name: "node-b".into(),
            ..MockConfig::default()
        })
        .unwrap();
        let ids = |m: &MockBackend| -> Vec<String> {
            m.node
                .gpus
                .iter()
                .map(|g| g.uuid.value().unwrap().clone())
                .collect()
        };
        assert_eq!(ids(&a), ids(&a2));
        let mut all = ids(&a);
        all.extend(ids(&b));
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "UUIDs must be unique across nodes");
        assert!(
            all[0].starts_with("GPU-") && all[0].len() == 40,
            "{}",
            all[0]
        );
    }

    #[test]
    fn rejects_bad_configs() {
        let too_many = MockConfig {
            gpus: 65,
            ..MockConfig::default()
        };
        assert!(MockBackend::new(too_many).is_err());
        let bad_target = MockConfig {
            gpus: 2,
            affected_gpu: 2,
            ..MockConfig::default()
        };
        assert!(MockBackend::new(bad_target).is_err());
    }

    #[test]
    fn profile_parses_layout() {
        let cfg = MockConfig::from_profile_str(
            r#"{"node_name":"gpu-7","gpus":[{"model":"H100-80GB-HBM3","count":3},{"model":"L4","scenario":"thermal-slowdown"}]}"#,
        )
        .unwrap();
        assert_eq!(cfg.node_name, "gpu-7");
        assert_eq!(cfg.layout.len(), 4);
        assert_eq!(cfg.layout[3].model, GpuModel::L4);
        assert_eq!(cfg.layout[3].scenario, Scenario::ThermalSlowdown);
        for bad in [
            "",
            "{}",
            r#"{"gpus":[{"model":"B999"}]}"#,
            r#"{"gpus":[{"model":"L4","scenario":"nope"}]}"#,
            r#"{"gpus":[{"model":"L4","count":100}]}"#,
            r#"{"gpus":[],"extra":1}"#,
        ] {
            assert!(MockConfig::from_profile_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kernel_log_round_trips_through_the_parser() {
        let m = MockBackend::new(MockConfig {
            scenario: Scenario::XidEccFamily,
            ..MockConfig::default()
        })
        .unwrap();
        let parsed = gpu_mcp_model::xid::parse_kernel_log(m.kernel_log().as_bytes(), None);
        let codes: Vec<u32> = parsed.events.iter().map(|e| e.xid).collect();
        assert_eq!(codes, vec![48, 94, 48, 95]);
        assert_eq!(parsed.events[0].pci_bus_id.as_deref(), Some("0000:18:00"));
    }
}
