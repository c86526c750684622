//! Building one simulated GPU: its identity (derived from the node name, so simulated nodes never
//! share a UUID), its healthy state under a training load, then its scenario.

use std::time::{Duration, SystemTime};

use gpu_mcp_model::xid::SxidEvent;
use gpu_mcp_model::{
    Clocks, ComputeMode, Ecc, EccCounts, GpuAccess, GpuProcess, GpuSnapshot, MemoryUsage, Mig,
    Pcie, Power, ProcessKind, Reading, RecoveryAction, RetiredPages, RowRemapping, Temperature,
    Utilization, XidEvent, XidSource,
};

use super::models::ModelSpec;
use super::profile::MockGpu;
use super::scenarios::apply_scenario;
use super::topology::{gpu_topology, nvlinks};

pub(super) const MIB: u64 = 1024 * 1024;

/// A value that was read.
pub(super) fn v<T>(x: T) -> Reading<T> {
    Reading::Value(x)
}

/// FNV-1a, 64 bit: a stable hash for identities.
pub(super) fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

pub(super) fn uuid_from(prefix: &str, parts: &[&str]) -> String {
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

/// One simulated GPU's identity and the hash its load figures derive from.
pub(super) struct MockIdentity<'a> {
    /// The node name.
    pub(super) node: &'a str,
    /// The GPU index.
    pub(super) index: u32,
    /// The GPU index as text (a hash input).
    pub(super) idx: String,
    /// How many GPUs the node has.
    pub(super) count: u32,
    /// The model's facts.
    pub(super) spec: &'static ModelSpec,
    /// `GPU-...`.
    pub(super) uuid: String,
    /// PCI bus id in the one form every tool reports (`dddd:bb:dd.f`, see `normalize_pci_bus_id`).
    pub(super) pci: String,
    /// Hash of node and index that varies utilisation, temperature, power and memory use.
    pub(super) load: u64,
}

impl<'a> MockIdentity<'a> {
    fn new(node: &'a str, index: u32, count: u32, g: MockGpu) -> Self {
        let spec = g.model.spec();
        let idx = index.to_string();
        let load = fnv(&[node, &idx, "load"]);
        let uuid = uuid_from("GPU-", &[node, &idx, g.model.as_str()]);
        let pci = pci_bus_id(spec, index);
        Self {
            node,
            index,
            idx,
            count,
            spec,
            uuid,
            pci,
            load,
        }
    }

    fn serial(&self) -> String {
        format!(
            "{}{:09}",
            self.spec.serial_prefix,
            fnv(&[self.node, &self.idx, "serial"]) % 1_000_000_000
        )
    }

    /// Frame-buffer MiB in use under load.
    pub(super) fn used_mib(&self) -> u64 {
        self.spec.memory_mib * (70 + self.load % 20) / 100
    }
}

/// The PCI bus id (`dddd:bb:dd.f`) of GPU `index` of a model's server.
pub(super) fn pci_bus_id(spec: &ModelSpec, index: u32) -> String {
    let bus = spec.pci_buses[index as usize % spec.pci_buses.len()];
    let domain = index as usize / spec.pci_buses.len();
    format!("{domain:04x}:{bus:02x}:00.0")
}

/// The Xid events a scenario puts in the simulated kernel log, timed back from "now".
pub(super) struct MockEvents {
    now: SystemTime,
    boot: SystemTime,
    index: u32,
    uuid: String,
    pci: String,
    pub(super) events: Vec<XidEvent>,
    pub(super) sxids: Vec<SxidEvent>,
}

impl MockEvents {
    /// An Xid `mins_ago` minutes before "now", from `pid` (with its name) when given.
    pub(super) fn push(
        &mut self,
        mins_ago: u64,
        xid: u32,
        pid: Option<(u32, &str)>,
        message: &str,
    ) {
        let t = self.now - Duration::from_secs(mins_ago * 60);
        let up = t.duration_since(self.boot).unwrap_or_default();
        self.events.push(XidEvent {
            xid,
            source: XidSource::Mock,
            pci_bus_id: Some(self.pci.clone()),
            gpu_uuid: Some(self.uuid.clone()),
            gpu_index: Some(self.index),
            gpu_instance: None,
            compute_instance: None,
            pid: pid.map(|p| p.0),
            process_name: pid.map(|p| p.1.to_owned()),
            message: message.to_owned(),
            time: Some(t),
            uptime_us: Some(up.as_micros() as u64),
            implied: false,
        });
    }

    /// An SXid of NVSwitch `instance` (at `pci`) `mins_ago` minutes before "now".
    pub(super) fn push_sxid(
        &mut self,
        mins_ago: u64,
        (instance, pci): (u32, &str),
        (sxid, fatal, link): (u32, bool, u32),
        message: &str,
    ) {
        let t = self.now - Duration::from_secs(mins_ago * 60);
        let up = t.duration_since(self.boot).unwrap_or_default();
        self.sxids.push(SxidEvent {
            sxid,
            pci_bus_id: Some(pci.to_owned()),
            switch: Some(format!("nvidia-nvswitch{instance}")),
            instance: Some(instance),
            fatal: Some(fatal),
            link: Some(link),
            message: format!("Link {link} {message}"),
            time: Some(t),
            uptime_us: Some(up.as_micros() as u64),
        });
    }
}

/// One GPU of the fleet with its scenario applied, and the scenario's Xid and SXid events.
pub(super) fn build_gpu(
    node: &str,
    (index, count): (u32, u32),
    g: MockGpu,
    now: SystemTime,
    boot: SystemTime,
) -> (GpuSnapshot, Vec<XidEvent>, Vec<SxidEvent>) {
    let id = MockIdentity::new(node, index, count, g);
    let mut gpu = healthy_gpu(&id);
    let mut events = MockEvents {
        now,
        boot,
        index,
        uuid: id.uuid.clone(),
        pci: id.pci.clone(),
        events: Vec::new(),
        sxids: Vec::new(),
    };
    apply_scenario(g.scenario, &id, &mut gpu, &mut events);
    (gpu, events.events, events.sxids)
}

/// The GPU healthy under a training load.
fn healthy_gpu(id: &MockIdentity<'_>) -> GpuSnapshot {
    let s = id.spec;
    let util = 88 + (id.load % 12) as u32;
    GpuSnapshot {
        index: id.index,
        access: GpuAccess::Ok,
        access_detail: None,
        name: v(s.name.to_owned()),
        uuid: v(id.uuid.clone()),
        serial: v(id.serial()),
        pci_bus_id: v(id.pci.clone()),
        architecture: v(s.architecture.to_owned()),
        compute_capability: v(s.compute_capability.to_owned()),
        vbios_version: v(s.vbios.to_owned()),
        memory: v(memory(id)),
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
        temperature: temperature(id),
        power: power(id),
        clocks: clocks(s),
        clock_event_reasons: v(Vec::new()),
        ecc: ecc(id),
        retired_pages: retired_pages(s),
        row_remapping: row_remapping(s),
        pcie: pcie(s),
        nvlink: nvlinks(id),
        persistence_mode: v(true),
        compute_mode: v(ComputeMode::Default),
        mig: mig(s),
        recovery_action: if s.recovery_action {
            v(RecoveryAction::None)
        } else {
            Reading::NotSupported
        },
        processes: v(vec![training_process(id)]),
        since_previous: None,
        topology: gpu_topology(id),
    }
}

fn memory(id: &MockIdentity<'_>) -> MemoryUsage {
    let s = id.spec;
    let used_mib = id.used_mib();
    let reserved_mib = s.memory_mib / 100;
    MemoryUsage {
        total_bytes: s.memory_mib * MIB,
        used_bytes: used_mib * MIB,
        free_bytes: (s.memory_mib - used_mib - reserved_mib) * MIB,
    }
}

fn temperature(id: &MockIdentity<'_>) -> Temperature {
    let s = id.spec;
    let temp = 48 + (id.load % 9) as u32;
    Temperature {
        gpu_c: v(temp),
        memory_c: s.memory_max_c.map(|_| temp + 6).into(),
        slowdown_c: v(s.slowdown_c),
        shutdown_c: v(s.shutdown_c),
        gpu_max_operating_c: v(s.gpu_max_c),
        memory_max_operating_c: s.memory_max_c.into(),
    }
}

fn power(id: &MockIdentity<'_>) -> Power {
    let limit = id.spec.power_limit_w;
    Power {
        draw_w: v(((limit * (0.62 + (id.load % 20) as f64 / 100.0)) * 100.0).round() / 100.0),
        limit_w: v(limit),
        default_limit_w: v(limit),
        enforced_limit_w: v(limit),
    }
}

fn clocks(s: &ModelSpec) -> Clocks {
    Clocks {
        graphics_mhz: v(s.max_graphics_mhz),
        sm_mhz: v(s.max_graphics_mhz),
        memory_mhz: v(s.max_memory_mhz),
        max_graphics_mhz: v(s.max_graphics_mhz),
        max_sm_mhz: v(s.max_graphics_mhz),
        max_memory_mhz: v(s.max_memory_mhz),
    }
}

fn ecc(id: &MockIdentity<'_>) -> Ecc {
    Ecc {
        enabled: v(true),
        pending_enabled: v(true),
        volatile: v(EccCounts {
            corrected: 0,
            uncorrected: 0,
        }),
        aggregate: v(EccCounts {
            corrected: id.load % 3,
            uncorrected: 0,
        }),
    }
}

fn retired_pages(s: &ModelSpec) -> Reading<RetiredPages> {
    if s.page_retirement {
        v(RetiredPages {
            single_bit_ecc: 0,
            double_bit_ecc: 0,
            pending: false,
        })
    } else {
        Reading::NotSupported
    }
}

fn row_remapping(s: &ModelSpec) -> Reading<RowRemapping> {
    if s.row_remapping {
        v(RowRemapping {
            correctable: 0,
            uncorrectable: 0,
            pending: false,
            failed: false,
        })
    } else {
        Reading::NotSupported
    }
}

fn pcie(s: &ModelSpec) -> Pcie {
    Pcie {
        current_generation: v(s.pcie_gen),
        max_generation: v(s.pcie_gen),
        current_width: v(16),
        max_width: v(16),
        replay_counter: v(0),
    }
}

fn mig(s: &ModelSpec) -> Mig {
    if s.mig_profiles.is_empty() {
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
    }
}

/// One training process per GPU, as under a Kubernetes pod with one GPU per rank.
fn training_process(id: &MockIdentity<'_>) -> GpuProcess {
    GpuProcess {
        pid: 40_000 + (fnv(&[id.node, &id.idx, "pid"]) % 20_000) as u32,
        kind: ProcessKind::Compute,
        used_memory_bytes: Some((id.used_mib() - 512) * MIB),
        gpu_instance: None,
        compute_instance: None,
    }
}
