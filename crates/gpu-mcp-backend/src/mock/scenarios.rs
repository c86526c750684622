//! The named scenarios: what each reproduces ([`Scenario::description`]) and what it does to the
//! affected GPU's snapshot and kernel log, one function per scenario.

use std::fmt;
use std::str::FromStr;

use gpu_mcp_model::{
    ClockEventReason, CounterChanges, EccCounts, FabricState, GpuAccess, GpuProcess, GpuSnapshot,
    LinkChanges, MigInstance, MigPlacement, ProcessKind, Reading, RecoveryAction, RetiredPages,
    RowRemapping, Utilization,
};

use super::fleet::{MIB, MockEvents, MockIdentity, uuid_from, v};
use super::topology::{fabric_unfinished, nvlink_degraded, nvswitch_fatal_sxid};
use crate::{Error, Result};

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
    /// A fatal SXid on the NVSwitch the affected GPU's first NVLink goes to (NVSwitch systems).
    NvswitchFatalSxid,
    /// Application faults only (Xid 13, 31, 43): the workload, not the hardware.
    ApplicationXid,
    /// The driver asks for drain and reset (recovery action, Xid 154).
    RecoveryAction,
    /// One NVLink link down and another replaying now: the GPU's pairs show one link fewer.
    NvlinkDegraded,
    /// The fabric manager is still registering the GPU with the NVSwitch fabric.
    FabricInProgress,
    /// The fabric manager has not started registering the GPU (not running).
    FabricNotStarted,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 17] = [
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
        Self::NvlinkDegraded,
        Self::FabricInProgress,
        Self::FabricNotStarted,
        Self::NvswitchFatalSxid,
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
            Self::NvlinkDegraded => "nvlink-degraded",
            Self::FabricInProgress => "fabric-in-progress",
            Self::FabricNotStarted => "fabric-not-started",
            Self::NvswitchFatalSxid => "nvswitch-fatal-sxid",
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
            Self::NvlinkDegraded => {
                "NVLink link 7 of the affected GPU is down and link 3 is replaying now: its pairs show one bonded link fewer (NV17 on H100)"
            }
            Self::FabricInProgress => {
                "the fabric manager is still registering the affected GPU with the NVSwitch fabric (state in_progress): its NVLink links are not trained yet (Hopper and later)"
            }
            Self::NvswitchFatalSxid => {
                "a fatal SXid (24007, sourcetrack timeout) on the NVSwitch behind the affected GPU's first NVLink, after two non-fatal ones: the fabric needs a reset (NVSwitch systems)"
            }
            Self::FabricNotStarted => {
                "the fabric manager has not started registering the affected GPU (state not_started, nvidia-fabricmanager not running): its NVLink links are down (Hopper and later)"
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

/// Applies `scenario` to the healthy `gpu` identified by `id`, adding its Xid events.
pub(super) fn apply_scenario(
    scenario: Scenario,
    id: &MockIdentity<'_>,
    gpu: &mut GpuSnapshot,
    ev: &mut MockEvents,
) {
    match scenario {
        Scenario::Healthy => {}
        Scenario::ThermalSlowdown => thermal_slowdown(id, gpu),
        Scenario::PowerBrake => power_brake(id, gpu),
        Scenario::UncorrectableEcc => uncorrectable_ecc(id, gpu, ev),
        Scenario::RowRemapFailure => row_remap_failure(id, gpu, ev),
        Scenario::Xid79 => xid_79(id, gpu, ev),
        Scenario::XidEccFamily => xid_ecc_family(id, gpu, ev),
        Scenario::NvlinkCrcErrors => nvlink_crc_errors(gpu),
        Scenario::MigEnabled => mig_enabled(id, gpu),
        Scenario::PcieDegraded => pcie_degraded(id, gpu),
        Scenario::GspTimeout => gsp_timeout(id, gpu, ev),
        Scenario::ApplicationXid => application_xid(ev),
        Scenario::RecoveryAction => recovery_action(id, gpu, ev),
        Scenario::NvlinkDegraded => nvlink_degraded(id, gpu),
        Scenario::FabricInProgress => fabric_unfinished(gpu, FabricState::InProgress),
        Scenario::FabricNotStarted => fabric_unfinished(gpu, FabricState::NotStarted),
        Scenario::NvswitchFatalSxid => nvswitch_fatal_sxid(gpu, ev),
    }
}

fn thermal_slowdown(id: &MockIdentity<'_>, gpu: &mut GpuSnapshot) {
    let s = id.spec;
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
    gpu.power.draw_w = v((s.power_limit_w * 0.58).round());
}

fn power_brake(id: &MockIdentity<'_>, gpu: &mut GpuSnapshot) {
    let s = id.spec;
    gpu.clock_event_reasons = v(vec![
        ClockEventReason::HwSlowdown,
        ClockEventReason::HwPowerBrakeSlowdown,
    ]);
    gpu.clocks.graphics_mhz = v(s.max_graphics_mhz * 2 / 10);
    gpu.clocks.sm_mhz = v(s.max_graphics_mhz * 2 / 10);
    gpu.power.draw_w = v((s.power_limit_w * 0.22).round());
    gpu.utilization = v(Utilization {
        gpu_percent: 100,
        memory_percent: 12,
    });
}

fn uncorrectable_ecc(id: &MockIdentity<'_>, gpu: &mut GpuSnapshot, ev: &mut MockEvents) {
    gpu.ecc.volatile = v(EccCounts {
        corrected: 14,
        uncorrected: 1,
    });
    gpu.ecc.aggregate = v(EccCounts {
        corrected: 31,
        uncorrected: 1,
    });
    let dbe = "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.";
    if id.spec.row_remapping {
        gpu.row_remapping = v(RowRemapping {
            correctable: 0,
            uncorrectable: 1,
            pending: true,
            failed: false,
        });
        ev.push(42, 48, Some((48_211, "python3")), dbe);
        ev.push(
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
        ev.push(42, 48, Some((48_211, "python3")), dbe);
        ev.push(
            42,
            63,
            None,
            "Dynamic Page Retirement: New retired page, reload the driver to activate. (0x00000000004c1a2b).",
        );
    }
}

fn row_remap_failure(id: &MockIdentity<'_>, gpu: &mut GpuSnapshot, ev: &mut MockEvents) {
    gpu.ecc.aggregate = v(EccCounts {
        corrected: 412,
        uncorrected: 9,
    });
    gpu.ecc.volatile = v(EccCounts {
        corrected: 3,
        uncorrected: 1,
    });
    if id.spec.row_remapping {
        gpu.row_remapping = v(RowRemapping {
            correctable: 2,
            uncorrectable: 8,
            pending: false,
            failed: true,
        });
        ev.push(
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
        ev.push(
            17,
            64,
            None,
            "Dynamic Page Retirement: Fatal error, unable to retire page (0x0000000000a4c3e1).",
        );
    }
}

fn xid_79(id: &MockIdentity<'_>, gpu: &mut GpuSnapshot, ev: &mut MockEvents) {
    let serial = gpu.serial.clone();
    let pci = gpu.pci_bus_id.clone();
    *gpu = GpuSnapshot::unreadable(
        id.index,
        GpuAccess::Lost,
        "the driver reports the GPU as lost (NVML_ERROR_GPU_IS_LOST)",
    );
    gpu.name = v(id.spec.name.to_owned());
    gpu.uuid = v(id.uuid.clone());
    gpu.serial = serial;
    gpu.pci_bus_id = pci;
    ev.push(
        8,
        79,
        Some((73_102, "pt_main_thread")),
        "GPU has fallen off the bus.",
    );
}

fn xid_ecc_family(id: &MockIdentity<'_>, gpu: &mut GpuSnapshot, ev: &mut MockEvents) {
    gpu.ecc.volatile = v(EccCounts {
        corrected: 6,
        uncorrected: 2,
    });
    gpu.ecc.aggregate = v(EccCounts {
        corrected: 19,
        uncorrected: 2,
    });
    if id.spec.row_remapping {
        gpu.row_remapping = v(RowRemapping {
            correctable: 0,
            uncorrectable: 2,
            pending: true,
            failed: false,
        });
    }
    ev.push(
        31,
        48,
        Some((91_422, "python3")),
        "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 2, subpartition 1.",
    );
    ev.push(
        31,
        94,
        Some((91_422, "python3")),
        "Contained: SM (0x1). RST: No, D-RST: No",
    );
    ev.push(
        12,
        48,
        Some((92_001, "pt_main_thread")),
        "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 5, subpartition 0.",
    );
    ev.push(
        12,
        95,
        Some((92_001, "pt_main_thread")),
        "Uncontained: FBHUB. RST: Yes, D-RST: No",
    );
}

fn nvlink_crc_errors(gpu: &mut GpuSnapshot) {
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
    // The simulated links are erroring now: the previous reading, a minute ago, had none.
    gpu.since_previous = Some(CounterChanges {
        interval_ms: 60_000,
        pcie_replays: Some(0),
        ecc_uncorrected: Some(0),
        nvlink: vec![
            LinkChanges {
                link: 3,
                replay: Some(57),
                recovery: Some(2),
                crc: Some(2_055),
            },
            LinkChanges {
                link: 7,
                replay: Some(0),
                recovery: Some(0),
                crc: Some(96),
            },
        ],
        previous_draw_w: gpu.power.draw_w.get(),
        previous_limit_w: gpu.power.enforced_limit_w.get(),
    });
}

fn mig_enabled(id: &MockIdentity<'_>, gpu: &mut GpuSnapshot) {
    let s = id.spec;
    if s.mig_profiles.is_empty() {
        // Not a MIG-capable model: nothing to enable.
        return;
    }
    gpu.mig.enabled = v(true);
    gpu.mig.pending_enabled = v(true);
    gpu.mig.instances = v(s
        .mig_profiles
        .iter()
        .enumerate()
        .map(|(i, (profile, mib, start, size))| MigInstance {
            index: i as u32,
            uuid: v(uuid_from("MIG-", &[id.node, &id.idx, &i.to_string()])),
            name: v(format!("{} MIG {profile}", s.name)),
            memory_total_bytes: v(mib * MIB),
            gpu_instance_id: v([1, 2, 9][i % 3]),
            compute_instance_id: v(0),
            profile: Some((*profile).to_owned()),
            placement: v(MigPlacement {
                start: *start,
                size: *size,
            }),
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

fn pcie_degraded(id: &MockIdentity<'_>, gpu: &mut GpuSnapshot) {
    gpu.pcie.current_generation = v(id.spec.pcie_gen.saturating_sub(2).max(1));
    gpu.pcie.current_width = v(8);
    gpu.pcie.replay_counter = v(4_210);
    // Replaying now: 380 of them since the previous reading, a minute ago.
    gpu.since_previous = Some(CounterChanges {
        interval_ms: 60_000,
        pcie_replays: Some(380),
        ecc_uncorrected: Some(0),
        nvlink: Vec::new(),
        previous_draw_w: gpu.power.draw_w.get(),
        previous_limit_w: gpu.power.enforced_limit_w.get(),
    });
}

fn gsp_timeout(id: &MockIdentity<'_>, gpu: &mut GpuSnapshot, ev: &mut MockEvents) {
    let pci = gpu.pci_bus_id.clone();
    *gpu = GpuSnapshot::unreadable(
        id.index,
        GpuAccess::Unresponsive,
        "the driver did not answer within 5s; the driver or GPU may be hung",
    );
    gpu.name = v(id.spec.name.to_owned());
    gpu.uuid = v(id.uuid.clone());
    gpu.pci_bus_id = pci;
    ev.push(
        6,
        119,
        Some((55_871, "python3")),
        "Timeout after 6s of waiting for RPC response from GPU0 GSP! Expected function 76 (GSP_RM_CONTROL) (0x2080014b 0x5).",
    );
    ev.push(
        5,
        119,
        None,
        "Timeout after 6s of waiting for RPC response from GPU0 GSP! Expected function 10 (FREE) (0x5c000001 0x0).",
    );
}

fn application_xid(ev: &mut MockEvents) {
    ev.push(
        25,
        13,
        Some((31_337, "python3")),
        "Graphics SM Warp Exception on (GPC 4, TPC 1, SM 0): Out Of Range Address",
    );
    ev.push(25, 43, Some((31_337, "python3")), "Ch 00000010");
    ev.push(
        9,
        31,
        Some((31_544, "python3")),
        "Ch 00000010, intr 00000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_2 faulted @ 0x7f3a_1c000000. Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_READ",
    );
}

fn recovery_action(id: &MockIdentity<'_>, gpu: &mut GpuSnapshot, ev: &mut MockEvents) {
    if id.spec.recovery_action {
        gpu.recovery_action = v(RecoveryAction::DrainAndReset);
    }
    ev.push(
        3,
        154,
        None,
        "GPU recovery action changed from 0x0 (None) to 0x4 (Drain and Reset)",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(s.as_str().parse::<Scenario>().unwrap(), s);
        }
        let e = "meltdown".parse::<Scenario>().unwrap_err().to_string();
        assert!(e.contains("healthy") && e.contains("xid-79"), "{e}");
    }
}
