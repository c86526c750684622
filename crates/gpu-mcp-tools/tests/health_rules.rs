#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Each health rule on its own, against a healthy GPU changed in one respect.

use gpu_mcp_backend::{GpuBackend, GpuModel, MockBackend, MockConfig};
use gpu_mcp_model::output::{Verdict, XidGroup};
use gpu_mcp_model::{
    ClockEventReason, ComputeMode, CounterChanges, EccCounts, GpuAccess, GpuSnapshot, NvLink,
    Reading, RecoveryAction, RetiredPages, RowRemapping, Utilization,
};
use gpu_mcp_tools::health::{self, Assessment};

fn healthy(model: GpuModel) -> GpuSnapshot {
    let m = MockBackend::new(MockConfig {
        gpus: 1,
        model,
        ..MockConfig::default()
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(m.snapshot()).unwrap().gpus.remove(0)
}

fn h100() -> GpuSnapshot {
    healthy(GpuModel::H100Hbm3_80gb)
}

/// `now` as read one minute after `before`, with the backend's counter increases.
fn after(before: &GpuSnapshot, now: GpuSnapshot) -> GpuSnapshot {
    let mut g = now;
    g.since_previous = CounterChanges::between(before, &g, 60_000);
    assert!(g.since_previous.is_some());
    g
}

fn run(rule: fn(&GpuSnapshot, &mut Assessment), g: &GpuSnapshot) -> Assessment {
    let mut a = Assessment::default();
    rule(g, &mut a);
    a
}

fn checks(a: &Assessment) -> Vec<(&str, Verdict)> {
    a.reasons
        .iter()
        .map(|f| (f.check.as_str(), f.severity))
        .collect()
}

#[test]
fn a_healthy_gpu_passes_every_rule() {
    for model in GpuModel::ALL {
        let g = healthy(model);
        for (name, rule) in health::RULES {
            let a = run(*rule, &g);
            assert!(a.reasons.is_empty(), "{model} {name}: {:?}", a.reasons);
        }
    }
}

#[test]
fn gpu_access() {
    for (access, verdict) in [
        (GpuAccess::Lost, Verdict::Critical),
        (GpuAccess::Unresponsive, Verdict::Critical),
        (GpuAccess::Error, Verdict::Critical),
    ] {
        let g = GpuSnapshot::unreadable(0, access, "x");
        assert_eq!(
            checks(&run(health::gpu_access, &g)),
            [("gpu_access", verdict)]
        );
    }
}

#[test]
fn temperature_uses_the_device_thresholds() {
    let mut g = h100();
    g.temperature.slowdown_c = Reading::Value(80);
    g.temperature.shutdown_c = Reading::Value(90);
    g.temperature.gpu_max_operating_c = Reading::Value(75);
    for (t, want) in [
        (70, None),
        (76, Some(Verdict::Warning)),
        (80, Some(Verdict::Degraded)),
        (87, Some(Verdict::Degraded)),
        (88, Some(Verdict::Critical)),
        (95, Some(Verdict::Critical)),
    ] {
        g.temperature.gpu_c = Reading::Value(t);
        let a = run(health::temperature, &g);
        assert_eq!(a.reasons.first().map(|f| f.severity), want, "{t} °C");
        if let Some(f) = a.reasons.first() {
            assert!(f.threshold.contains("from the device"), "{}", f.threshold);
        }
    }
    g.temperature.slowdown_c = Reading::NotSupported;
    g.temperature.shutdown_c = Reading::NotSupported;
    g.temperature.gpu_max_operating_c = Reading::NotSupported;
    let a = run(health::temperature, &g);
    assert!(a.reasons.is_empty());
    assert_eq!(a.not_checked.len(), 1);
}

#[test]
fn memory_temperature() {
    let mut g = h100();
    g.temperature.memory_c = Reading::Value(95);
    assert_eq!(
        checks(&run(health::memory_temperature, &g)),
        [("memory_temperature", Verdict::Warning)]
    );
    g.temperature.memory_c = Reading::NotSupported;
    assert!(run(health::memory_temperature, &g).reasons.is_empty());
}

#[test]
fn clock_events_flag_hardware_reasons_only() {
    let mut g = h100();
    g.clock_event_reasons = Reading::Value(vec![
        ClockEventReason::SwPowerCap,
        ClockEventReason::SwThermalSlowdown,
        ClockEventReason::GpuIdle,
    ]);
    let a = run(health::clock_events, &g);
    // NVML: software thermal slowdown means the GPU or its memory is above the maximum
    // operating temperature.
    assert_eq!(checks(&a), [("clock_events", Verdict::Warning)]);
    assert!(a.reasons[0].observed.contains("sw_thermal_slowdown"));
    g.clock_event_reasons = Reading::Value(vec![
        ClockEventReason::SwPowerCap,
        ClockEventReason::GpuIdle,
    ]);
    let a = run(health::clock_events, &g);
    assert!(a.reasons.is_empty());
    assert_eq!(a.notes.len(), 1);
    for hw in [
        ClockEventReason::HwSlowdown,
        ClockEventReason::HwThermalSlowdown,
        ClockEventReason::HwPowerBrakeSlowdown,
    ] {
        g.clock_event_reasons = Reading::Value(vec![hw]);
        let a = run(health::clock_events, &g);
        assert_eq!(checks(&a), [("clock_events", Verdict::Degraded)], "{hw:?}");
        assert!(a.reasons[0].observed.contains(hw.as_str()));
    }
    g.clock_event_reasons = Reading::Value(vec![ClockEventReason::HwPowerBrakeSlowdown]);
    assert!(
        run(health::clock_events, &g).reasons[0]
            .action
            .contains("power")
    );
}

#[test]
fn power_draw_and_limit() {
    let base = h100();
    let mut g = base.clone();
    g.power.draw_w = Reading::Value(760.0);
    // One sample over the limit is a transient.
    let a = run(health::power, &g);
    assert!(a.reasons.is_empty());
    assert!(a.notes[0].contains("760"), "{:?}", a.notes);
    let g = after(&base, g);
    assert!(run(health::power, &g).reasons.is_empty());
    // Over the limit in two readings in a row.
    let g2 = after(&g, g.clone());
    assert_eq!(
        checks(&run(health::power, &g2)),
        [("power", Verdict::Warning)]
    );
    // A limit the operator configured below the default is a note.
    let mut g = h100();
    g.power.limit_w = Reading::Value(300.0);
    g.power.enforced_limit_w = Reading::Value(300.0);
    g.power.draw_w = Reading::Value(290.0);
    let a = run(health::power, &g);
    assert!(a.reasons.is_empty());
    assert!(a.notes[0].contains("300"), "{:?}", a.notes);
    // An enforced limit well below the configured one is a cap nobody set on the GPU.
    let mut g = h100();
    g.power.enforced_limit_w = Reading::Value(300.0);
    g.power.draw_w = Reading::Value(290.0);
    assert_eq!(
        checks(&run(health::power, &g)),
        [("power_limit", Verdict::Warning)]
    );
}

#[test]
fn ecc_mode() {
    let mut g = h100();
    g.ecc.enabled = Reading::Value(false);
    g.ecc.pending_enabled = Reading::Value(false);
    assert_eq!(
        checks(&run(health::ecc_mode, &g)),
        [("ecc_mode", Verdict::Warning)]
    );
    g.ecc.pending_enabled = Reading::Value(true);
    assert_eq!(run(health::ecc_mode, &g).notes.len(), 1);
}

#[test]
fn ecc_uncorrectable_depends_on_error_containment() {
    let mut g = h100();
    g.ecc.volatile = Reading::Value(EccCounts {
        corrected: 0,
        uncorrected: 3,
    });
    assert_eq!(
        checks(&run(health::ecc_uncorrectable, &g)),
        [("ecc_uncorrectable", Verdict::Degraded)]
    );
    let mut v = healthy(GpuModel::V100Sxm2_32gb);
    v.ecc.volatile = g.ecc.volatile.clone();
    assert_eq!(
        checks(&run(health::ecc_uncorrectable, &v)),
        [("ecc_uncorrectable", Verdict::Critical)]
    );
    let mut old = h100();
    old.ecc.aggregate = Reading::Value(EccCounts {
        corrected: 0,
        uncorrected: 4,
    });
    let a = run(health::ecc_uncorrectable, &old);
    assert!(a.reasons.is_empty());
    assert_eq!(a.notes.len(), 1);
}

#[test]
fn row_remapping() {
    let base = RowRemapping {
        correctable: 0,
        uncorrectable: 0,
        pending: false,
        failed: false,
    };
    let mut g = h100();
    g.row_remapping = Reading::Value(RowRemapping {
        failed: true,
        ..base
    });
    assert_eq!(
        checks(&run(health::row_remapping, &g)),
        [("row_remap_failure", Verdict::Critical)]
    );
    g.row_remapping = Reading::Value(RowRemapping {
        pending: true,
        ..base
    });
    assert_eq!(
        checks(&run(health::row_remapping, &g)),
        [("row_remap_pending", Verdict::Warning)]
    );
    g.row_remapping = Reading::Value(RowRemapping {
        uncorrectable: 512,
        ..base
    });
    assert_eq!(
        checks(&run(health::row_remapping, &g)),
        [("row_remap_capacity", Verdict::Warning)]
    );
    g.row_remapping = Reading::Error("boom".into());
    assert_eq!(run(health::row_remapping, &g).not_checked.len(), 1);
}

#[test]
fn retired_pages() {
    let mut g = healthy(GpuModel::V100Sxm2_32gb);
    g.retired_pages = Reading::Value(RetiredPages {
        single_bit_ecc: 40,
        double_bit_ecc: 23,
        pending: false,
    });
    assert_eq!(
        checks(&run(health::retired_pages, &g)),
        [("retired_pages", Verdict::Critical)]
    );
    g.retired_pages = Reading::Value(RetiredPages {
        single_bit_ecc: 1,
        double_bit_ecc: 0,
        pending: true,
    });
    assert_eq!(
        checks(&run(health::retired_pages, &g)),
        [("retired_pages_pending", Verdict::Warning)]
    );
}

#[test]
fn pcie_link_generation_counts_only_under_load() {
    let mut g = h100();
    g.pcie.current_width = Reading::Value(8);
    assert_eq!(
        checks(&run(health::pcie_link, &g)),
        [("pcie_link_width", Verdict::Degraded)]
    );
    let mut g = h100();
    g.pcie.current_generation = Reading::Value(1);
    assert_eq!(
        checks(&run(health::pcie_link, &g)),
        [("pcie_link_generation", Verdict::Degraded)]
    );
    g.utilization = Reading::Value(Utilization {
        gpu_percent: 0,
        memory_percent: 0,
    });
    let a = run(health::pcie_link, &g);
    assert!(a.reasons.is_empty());
    assert_eq!(a.notes.len(), 1, "idle downshift is noted, not flagged");
}

#[test]
fn pcie_replays() {
    let base = h100();
    // A lifetime total alone is context, not a finding.
    let mut g = base.clone();
    g.pcie.replay_counter = Reading::Value(4_000);
    let a = run(health::pcie_replays, &g);
    assert!(a.reasons.is_empty());
    assert!(a.notes[0].contains("4000"));
    // Unchanged since the previous reading: still context.
    let g2 = after(&g, g.clone());
    assert!(run(health::pcie_replays, &g2).reasons.is_empty());
    // A few new replays in a minute: a warning; many: degraded.
    let mut g3 = g.clone();
    g3.pcie.replay_counter = Reading::Value(4_003);
    let g3 = after(&g, g3);
    assert_eq!(
        checks(&run(health::pcie_replays, &g3)),
        [("pcie_replays", Verdict::Warning)]
    );
    let mut g4 = g.clone();
    g4.pcie.replay_counter = Reading::Value(4_100);
    let g4 = after(&g, g4);
    assert_eq!(
        checks(&run(health::pcie_replays, &g4)),
        [("pcie_replays", Verdict::Degraded)]
    );
}

fn with_link(f: impl FnOnce(&mut NvLink)) -> GpuSnapshot {
    let mut g = h100();
    if let Reading::Value(links) = &mut g.nvlink {
        f(&mut links[2]);
    }
    g
}

#[test]
fn nvlink() {
    let g = with_link(|l| l.active = false);
    assert_eq!(
        checks(&run(health::nvlink, &g)),
        [("nvlink_down", Verdict::Degraded)]
    );
    // Disabled on purpose: noted, not down.
    let g = with_link(|l| {
        l.active = false;
        l.disabled = true;
    });
    let a = run(health::nvlink, &g);
    assert!(a.reasons.is_empty());
    assert_eq!(a.notes.len(), 1);
    // Every link down.
    let mut g = h100();
    if let Reading::Value(links) = &mut g.nvlink {
        links.iter_mut().for_each(|l| l.active = false);
    }
    let a = run(health::nvlink, &g);
    assert_eq!(checks(&a), [("nvlink_down", Verdict::Degraded)]);
    assert!(a.reasons[0].summary.contains("All 18"));
    // Lifetime totals without a previous reading are context.
    let base = h100();
    let g = with_link(|l| l.crc_data_errors = Reading::Value(100));
    let a = run(health::nvlink, &g);
    assert!(a.reasons.is_empty());
    assert!(a.notes[0].contains("100 CRC"));
    // New errors since the previous reading are judged.
    let g = after(&base, with_link(|l| l.crc_flit_errors = Reading::Value(5)));
    assert_eq!(
        checks(&run(health::nvlink, &g)),
        [("nvlink_errors", Verdict::Warning)]
    );
    let g = after(
        &base,
        with_link(|l| l.crc_data_errors = Reading::Value(100)),
    );
    assert_eq!(
        checks(&run(health::nvlink, &g)),
        [("nvlink_errors", Verdict::Degraded)]
    );
    let g = after(&base, with_link(|l| l.recovery_errors = Reading::Value(1)));
    assert_eq!(
        checks(&run(health::nvlink, &g)),
        [("nvlink_errors", Verdict::Degraded)]
    );
    // Counters that were high at the previous reading and did not move are context.
    let high = with_link(|l| l.replay_errors = Reading::Value(500));
    let g = after(&high, high.clone());
    let a = run(health::nvlink, &g);
    assert!(a.reasons.is_empty());
    assert!(a.notes[0].contains("none since the previous reading"));
    // Counters the driver cannot read are listed as not checked.
    let g = with_link(|l| {
        l.replay_errors = Reading::NotSupported;
        l.recovery_errors = Reading::NotSupported;
        l.crc_flit_errors = Reading::NotSupported;
        l.crc_data_errors = Reading::NotSupported;
    });
    let a = run(health::nvlink, &g);
    assert!(
        a.not_checked[0].contains("1 link(s)"),
        "{:?}",
        a.not_checked
    );
    let l4 = healthy(GpuModel::L4);
    assert!(run(health::nvlink, &l4).reasons.is_empty());
}

#[test]
fn persistence_mode() {
    let mut g = h100();
    g.persistence_mode = Reading::Value(false);
    assert_eq!(
        checks(&run(health::persistence_mode, &g)),
        [("persistence_mode", Verdict::Warning)]
    );
}

#[test]
fn recovery_action() {
    for (r, v) in [
        (RecoveryAction::GpuReset, Some(Verdict::Critical)),
        (RecoveryAction::NodeReboot, Some(Verdict::Critical)),
        (RecoveryAction::DrainAndReset, Some(Verdict::Critical)),
        (RecoveryAction::DrainP2p, Some(Verdict::Warning)),
        (RecoveryAction::RecoverImexDomain, Some(Verdict::Degraded)),
        (RecoveryAction::BusReset, Some(Verdict::Critical)),
        (RecoveryAction::SystemReboot, Some(Verdict::Critical)),
        (RecoveryAction::Unknown(9), Some(Verdict::Warning)),
        (RecoveryAction::None, None),
    ] {
        let mut g = h100();
        g.recovery_action = Reading::Value(r);
        let a = run(health::recovery_action, &g);
        assert_eq!(a.reasons.first().map(|f| f.severity), v, "{r:?}");
    }
}

#[test]
fn mig() {
    let mut g = h100();
    g.mig.pending_enabled = Reading::Value(true);
    assert_eq!(
        checks(&run(health::mig, &g)),
        [("mig_pending", Verdict::Warning)]
    );
    g.mig.enabled = Reading::Value(true);
    let a = run(health::mig, &g);
    assert!(a.reasons.is_empty());
    assert_eq!(a.notes.len(), 1);
}

#[test]
fn compute_mode() {
    let mut g = h100();
    g.compute_mode = Reading::Value(ComputeMode::Prohibited);
    assert_eq!(
        checks(&run(health::compute_mode, &g)),
        [("compute_mode", Verdict::Warning)]
    );
    g.compute_mode = Reading::Value(ComputeMode::ExclusiveProcess);
    assert!(run(health::compute_mode, &g).reasons.is_empty());
}

fn group(xid: u32) -> XidGroup {
    let info = gpu_mcp_model::xid::lookup(xid);
    XidGroup {
        gpu_index: Some(0),
        gpu_uuid: None,
        pci_bus_id: None,
        xid,
        known: info.known,
        mnemonic: info.mnemonic.into(),
        name: info.name.into(),
        category: info.category.into(),
        severity: info.severity,
        application_error: info.application_error,
        action: info.action.into(),
        count: 2,
        first_seen: None,
        last_seen: Some("2026-01-01T00:00:00Z".into()),
        sources: vec![],
        last_message: String::new(),
    }
}

#[test]
fn recent_xid_maps_catalog_severity() {
    for (xid, want) in [
        (79, Some(Verdict::Critical)),
        (48, Some(Verdict::Critical)),
        (94, Some(Verdict::Warning)),
        (13, Some(Verdict::Warning)),
        (4242, Some(Verdict::Warning)),
        (43, None),
    ] {
        let g = group(xid);
        let mut a = Assessment::default();
        health::recent_xid(&[&g], "2026-01-01T00:00:00Z", &mut a);
        assert_eq!(a.reasons.first().map(|f| f.severity), want, "Xid {xid}");
        if xid == 13 {
            assert!(a.reasons[0].summary.contains("workload error"));
        }
        if want.is_none() {
            assert_eq!(a.notes.len(), 1);
        }
    }
}

#[test]
fn a_lost_gpu_is_judged_on_access_and_xids_only() {
    let g = GpuSnapshot::unreadable(0, GpuAccess::Lost, "lost");
    let x = group(79);
    let h = health::assess_gpu(&g, &[&x], "2026-01-01T00:00:00Z");
    assert_eq!(h.verdict, Verdict::Critical);
    let names: Vec<&str> = h.reasons.iter().map(|f| f.check.as_str()).collect();
    assert_eq!(names, ["gpu_access", "recent_xid"]);
}

#[test]
fn reset_advice_names_what_blocks_a_reset_and_when_it_cannot_help() {
    let mut g = h100();
    g.recovery_action = Reading::Value(RecoveryAction::GpuReset);
    g.mig.enabled = Reading::Value(true);
    g.mig.pending_enabled = Reading::Value(true);
    let h = health::assess_gpu(&g, &[], "2026-01-01T00:00:00Z");
    let note = h
        .notes
        .iter()
        .find(|n| n.starts_with("Before resetting"))
        .unwrap_or_else(|| panic!("{:?}", h.notes));
    for w in ["process", "MIG", "nvidia-persistenced", "DCGM", "NVSwitch"] {
        assert!(note.contains(w), "{w}: {note}");
    }
    // Nothing asks for a reset on a healthy GPU.
    let h = health::assess_gpu(&h100(), &[], "2026-01-01T00:00:00Z");
    assert!(
        h.notes.iter().all(|n| !n.contains("reset")),
        "{:?}",
        h.notes
    );
    // A GPU off the bus: a reset cannot help.
    let lost = GpuSnapshot::unreadable(0, GpuAccess::Lost, "GPU_IS_LOST");
    let h = health::assess_gpu(&lost, &[], "2026-01-01T00:00:00Z");
    assert!(
        h.notes
            .iter()
            .any(|n| n.contains("cannot help") && n.contains("reboot")),
        "{:?}",
        h.notes
    );
}

#[test]
fn xid_45_alone_points_at_the_fabric_manager_and_with_others_is_a_follow_up() {
    let alone = group(45);
    let mut a = Assessment::default();
    health::recent_xid(&[&alone], "2026-01-01T00:00:00Z", &mut a);
    assert_eq!(a.reasons.len(), 1);
    assert_eq!(a.reasons[0].severity, Verdict::Warning);
    assert!(
        a.reasons[0].action.contains("fabric manager"),
        "{}",
        a.reasons[0].action
    );

    let dbe = group(48);
    let mut a = Assessment::default();
    health::recent_xid(&[&dbe, &alone], "2026-01-01T00:00:00Z", &mut a);
    assert_eq!(checks(&a), [("recent_xid", Verdict::Critical)]);
    assert!(
        a.notes.iter().any(|n| n.starts_with("Xid 45")),
        "{:?}",
        a.notes
    );
}
