//! The real NVML backend (`nvml-wrapper` loading a driver library at run time, and this crate's
//! reads of it) against the project's fake `libnvidia-ml.so.1`, driven by the scenario files in
//! `crates/gpu-mcp-fake-nvml/tests/scenarios/`.
//!
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use gpu_mcp_backend::{Error, GpuBackend, NvmlBackend, NvmlOptions};
use gpu_mcp_fake_nvml::{FakeNvml, fixture, fixture_names};
use gpu_mcp_model::{
    GpuAccess, GpuSnapshot, MigPlacement, NodeSnapshot, ProcessKind, Reading, RecoveryAction,
    XidEvent,
};
use serde_json::Value;

fn options(fake: &FakeNvml, timeout: Duration, events: bool) -> NvmlOptions {
    NvmlOptions {
        library_path: Some(fake.library_path().to_owned()),
        call_timeout: timeout,
        record_xid_events: events,
        event_buffer: 64,
        ..NvmlOptions::default()
    }
}

fn init(fake: &FakeNvml, timeout: Duration, events: bool) -> NvmlBackend {
    NvmlBackend::init(options(fake, timeout, events)).unwrap()
}

async fn snapshot(name: &str) -> NodeSnapshot {
    let fake = FakeNvml::install_fixture(name).unwrap();
    let nvml = init(&fake, Duration::from_secs(2), false);
    nvml.snapshot().await.unwrap()
}

fn expect(name: &str) -> Value {
    let v: Value = serde_json::from_str(&fixture(name).unwrap()).unwrap();
    v.get("expect").cloned().unwrap_or(Value::Null)
}

/// Waits (a generous hang guard, not a timing assertion) until the recorder holds an event.
async fn first_event(nvml: &NvmlBackend) -> XidEvent {
    let start = Instant::now();
    loop {
        if let Some(e) = nvml.xid_events().into_iter().next() {
            return e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no event recorded; recorder: {:?}",
            nvml.xid_recorder_status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_healthy_h100_server_reads_every_field() {
    let s = snapshot("healthy").await;
    assert_eq!(s.driver_version, Reading::Value("570.124.06".to_owned()));
    assert_eq!(s.cuda_driver_version, Reading::Value("12.8".to_owned()));
    assert_eq!(s.nvml_version, Reading::Value("12.570.124.06".to_owned()));
    assert_eq!(s.gpus.len(), 8);
    let mut uuids = std::collections::HashSet::new();
    let mut buses = std::collections::HashSet::new();
    for (i, g) in s.gpus.iter().enumerate() {
        assert_eq!(g.index as usize, i);
        assert_eq!(g.access, GpuAccess::Ok, "GPU {i}: {:?}", g.access_detail);
        assert_eq!(g.name, Reading::Value("NVIDIA H100 80GB HBM3".to_owned()));
        assert_eq!(g.architecture, Reading::Value("Hopper".to_owned()));
        assert_eq!(g.compute_capability, Reading::Value("9.0".to_owned()));
        uuids.insert(g.uuid.value().cloned().unwrap());
        buses.insert(g.pci_bus_id.value().cloned().unwrap());
        let mem = g.memory.value().unwrap();
        assert_eq!(mem.total_bytes, 85_520_809_984);
        assert_eq!(mem.used_bytes, 4_718_592);
        assert_eq!(g.temperature.gpu_c, Reading::Value(33));
        assert_eq!(g.temperature.memory_c, Reading::Value(41));
        assert_eq!(g.temperature.shutdown_c, Reading::Value(92));
        assert_eq!(g.power.enforced_limit_w, Reading::Value(700.0));
        assert_eq!(g.clocks.max_sm_mhz, Reading::Value(1980));
        assert_eq!(g.clock_event_reasons.value().map(Vec::len), Some(1));
        assert_eq!(g.ecc.enabled, Reading::Value(true));
        assert_eq!(g.ecc.volatile.value().map(|c| c.uncorrected), Some(0));
        assert_eq!(g.retired_pages, Reading::NotSupported);
        let rr = g.row_remapping.value().unwrap();
        assert!(!rr.pending && !rr.failed && rr.uncorrectable == 0);
        assert_eq!(g.pcie.max_generation, Reading::Value(5));
        assert_eq!(g.pcie.current_width, Reading::Value(16));
        let links = g.nvlink.value().unwrap();
        assert_eq!(links.len(), 18);
        assert!(
            links
                .iter()
                .all(|l| l.active && l.replay_errors == Reading::Value(0))
        );
        assert_eq!(g.persistence_mode, Reading::Value(true));
        assert_eq!(g.mig.enabled, Reading::Value(false));
        assert_eq!(g.mig.instances, Reading::Value(Vec::new()));
        assert_eq!(g.recovery_action, Reading::Value(RecoveryAction::None));
        assert_eq!(g.processes, Reading::Value(Vec::new()));
    }
    assert_eq!(uuids.len(), 8);
    assert_eq!(buses.len(), 8);
    assert_eq!(
        s.gpus[3].pci_bus_id,
        Reading::Value("0000:5d:00.0".to_owned())
    );
}

/// Every fault fixture changes the snapshot of its own GPU and leaves the other seven exactly
/// as in the healthy server.
#[tokio::test]
async fn each_fault_shows_on_its_gpu_and_nowhere_else() {
    let healthy = snapshot("healthy").await;
    let mut checked = 0;
    for name in fixture_names().unwrap() {
        let e = expect(&name);
        let Some(target) = e.get("gpu").and_then(Value::as_u64) else {
            continue;
        };
        let s = snapshot(&name).await;
        assert_eq!(s.gpus.len(), 8, "{name}");
        for (g, base) in s.gpus.iter().zip(&healthy.gpus) {
            if u64::from(g.index) != target {
                // A GPU's path to the faulty GPU may show the fault (a lost GPU cannot be
                // reached); everything else stays as in the healthy server.
                let without = |g: &GpuSnapshot| {
                    let mut g = g.clone();
                    if let Reading::Value(peers) = &mut g.topology.peers {
                        peers.retain(|p| u64::from(p.gpu) != target);
                    }
                    g
                };
                assert_eq!(without(g), without(base), "{name}: GPU {} changed", g.index);
            }
        }
        let text: Value = serde_json::from_str(&fixture(&name).unwrap()).unwrap();
        // Events change what the recorder sees, not the snapshot (the recorder is off here);
        // a slow call changes only how long a read takes.
        let only_timing = text["gpus"][target.to_string()]
            .as_object()
            .is_some_and(|g| g.keys().all(|k| k == "calls"));
        if text.get("events").is_none() && !only_timing {
            assert_ne!(
                &s.gpus[target as usize], &healthy.gpus[target as usize],
                "{name}: the fault does not show on GPU {target}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} fault fixtures");
}

#[tokio::test]
async fn lost_gpus_read_as_lost() {
    for name in ["gpu-lost-handle", "gpu-lost-calls"] {
        let s = snapshot(name).await;
        assert_eq!(s.gpus[3].access, GpuAccess::Lost, "{name}");
        assert!(
            s.gpus[3]
                .access_detail
                .as_deref()
                .unwrap()
                .contains("GPU_IS_LOST")
        );
    }
    let s = snapshot("handle-unknown").await;
    assert_eq!(s.gpus[3].access, GpuAccess::Error);
}

#[tokio::test]
async fn nvlink_states_reach_the_snapshot() {
    let s = snapshot("nvlink-link-down").await;
    let links = s.gpus[3].nvlink.value().unwrap();
    assert_eq!(links.len(), 18);
    let down: Vec<u32> = links.iter().filter(|l| !l.active).map(|l| l.link).collect();
    assert_eq!(down, vec![5]);
    assert!(links.iter().all(|l| !l.disabled));
    // Links that are not wired answer NOT_SUPPORTED and are left out.
    let s = snapshot("nvlink-not-wired").await;
    assert_eq!(s.gpus[3].nvlink.value().unwrap().len(), 4);
    // A link turned off on purpose is not counted among the enabled links: disabled, not down.
    let s = snapshot("nvlink-disabled").await;
    let links = s.gpus[3].nvlink.value().unwrap();
    let disabled: Vec<u32> = links
        .iter()
        .filter(|l| l.disabled)
        .map(|l| l.link)
        .collect();
    assert_eq!(disabled, vec![5]);
    // Every link down: none of them disabled.
    let s = snapshot("nvlink-all-down").await;
    assert!(
        s.gpus[3]
            .nvlink
            .value()
            .unwrap()
            .iter()
            .all(|l| !l.active && !l.disabled)
    );
    let s = snapshot("nvlink-lifetime-counters").await;
    let l2 = &s.gpus[3].nvlink.value().unwrap()[2];
    assert_eq!(l2.replay_errors, Reading::Value(150));
}

#[tokio::test]
async fn a_hung_gpu_is_unresponsive_and_not_read_again_until_it_returns() {
    let fake = FakeNvml::install_fixture("unresponsive-gpu").unwrap();
    let nvml = init(&fake, Duration::from_millis(300), false);
    let first = nvml.snapshot().await.unwrap();
    assert_eq!(first.gpus[3].access, GpuAccess::Unresponsive);
    assert!(
        first.gpus[3]
            .access_detail
            .as_deref()
            .unwrap()
            .contains("did not answer")
    );
    let second = nvml.snapshot().await.unwrap();
    assert_eq!(second.gpus[3].access, GpuAccess::Unresponsive);
    assert!(
        second.gpus[3]
            .access_detail
            .as_deref()
            .unwrap()
            .contains("earlier read")
    );
    for g in second.gpus.iter().filter(|g| g.index != 3) {
        assert_eq!(g.access, GpuAccess::Ok, "GPU {}", g.index);
    }
}

#[tokio::test]
async fn a_slow_first_handle_lookup_is_not_unresponsive() {
    let fake = FakeNvml::install_fixture("first-read-slow-handle").unwrap();
    let nvml = init(&fake, Duration::from_secs(2), false);
    let s = nvml.snapshot().await.unwrap();
    assert_eq!(
        s.gpus[3].access,
        GpuAccess::Ok,
        "{:?}",
        s.gpus[3].access_detail
    );
}

#[tokio::test]
async fn node_level_failures_fail_the_snapshot() {
    let fake = FakeNvml::install_fixture("device-count-error").unwrap();
    let nvml = init(&fake, Duration::from_secs(2), false);
    let err = nvml.snapshot().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Nvml {
                call: "nvmlDeviceGetCount",
                ..
            }
        ),
        "{err:?}"
    );
    let fake = FakeNvml::install_fixture("device-count-hang").unwrap();
    let nvml = init(&fake, Duration::from_millis(300), false);
    let err = nvml.snapshot().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[test]
fn init_failures_are_one_clear_error() {
    let fake = FakeNvml::install_fixture("init-driver-not-loaded").unwrap();
    let err = NvmlBackend::init(options(&fake, Duration::from_secs(2), true)).unwrap_err();
    assert!(matches!(err, Error::NvmlInit(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.to_lowercase().contains("driver"), "{msg}");
    assert!(!msg.contains('\n'));
}

#[test]
fn a_version_mismatch_says_to_reboot_or_reload_the_driver() {
    let fake = FakeNvml::install_fixture("init-version-mismatch").unwrap();
    let err = NvmlBackend::init(options(&fake, Duration::from_secs(2), true)).unwrap_err();
    let msg = err.to_string().to_lowercase();
    assert!(msg.contains("reboot") || msg.contains("reload"), "{msg}");
}

#[test]
fn a_hung_init_fails_within_its_deadline() {
    let fake = FakeNvml::install_fixture("init-hang").unwrap();
    let start = Instant::now();
    let r = NvmlBackend::init(NvmlOptions {
        init_timeout: Duration::from_millis(500),
        ..options(&fake, Duration::from_millis(500), true)
    });
    let Err(err) = r else {
        panic!("init returned a backend although the driver hung");
    };
    assert!(matches!(err, Error::NvmlInitTimeout { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn an_old_driver_without_field_values_leaves_those_fields_unread() {
    let s = snapshot("old-driver-no-field-values").await;
    for g in &s.gpus {
        assert_eq!(g.access, GpuAccess::Ok);
        assert!(g.row_remapping.value().is_none(), "GPU {}", g.index);
        assert!(g.recovery_action.value().is_none(), "GPU {}", g.index);
        assert!(g.temperature.memory_c.value().is_none(), "GPU {}", g.index);
        // Everything else still reads.
        assert_eq!(g.temperature.gpu_c, Reading::Value(33));
        assert_eq!(g.nvlink.value().map(Vec::len), Some(18));
    }
}

#[tokio::test]
async fn a_changed_scenario_shows_in_the_next_snapshot() {
    let fake = FakeNvml::install_fixture("healthy").unwrap();
    let nvml = init(&fake, Duration::from_secs(2), false);
    let before = nvml.snapshot().await.unwrap();
    fake.update(&fixture("temperature-near-shutdown").unwrap())
        .unwrap();
    let after = nvml.snapshot().await.unwrap();
    assert_eq!(before.gpus[3].temperature.gpu_c, Reading::Value(33));
    assert_eq!(after.gpus[3].temperature.gpu_c, Reading::Value(91));
}

#[tokio::test]
async fn recorded_xid_events_name_their_gpu() {
    let fake = FakeNvml::install_fixture("xid-48-event").unwrap();
    let nvml = init(&fake, Duration::from_secs(2), true);
    let ev = first_event(&nvml).await;
    assert_eq!(ev.xid, 48);
    assert_eq!(ev.gpu_index, Some(3));
    assert_eq!(ev.pci_bus_id.as_deref(), Some("0000:5d:00.0"));
    assert_eq!(
        ev.gpu_uuid.as_deref(),
        Some("GPU-5a1c0e7d-0000-4000-8000-00000000005d")
    );
    assert!(nvml.xid_recorder_status().active);
}

#[tokio::test]
async fn an_xid_79_event_is_attributed_to_the_gpu_that_was_lost() {
    let fake = FakeNvml::install_fixture("xid-79-event-lost").unwrap();
    let nvml = init(&fake, Duration::from_secs(2), true);
    let ev = first_event(&nvml).await;
    assert_eq!(ev.xid, 79);
    assert_eq!(ev.gpu_index, Some(3));
    assert_eq!(ev.pci_bus_id.as_deref(), Some("0000:5d:00.0"));
}

#[tokio::test]
async fn a_mig_xid_event_keeps_its_instance_ids() {
    let fake = FakeNvml::install_fixture("xid-94-mig-instance").unwrap();
    let nvml = init(&fake, Duration::from_secs(2), true);
    let ev = first_event(&nvml).await;
    assert_eq!(ev.xid, 94);
    assert_eq!(ev.gpu_instance, Some(5));
    assert_eq!(ev.compute_instance, Some(0));
}

#[tokio::test]
async fn a_gpu_that_refuses_registration_is_named_and_the_others_are_recorded() {
    let fake = FakeNvml::install_fixture("events-registration-refused").unwrap();
    let nvml = init(&fake, Duration::from_secs(2), true);
    let ev = first_event(&nvml).await;
    assert_eq!((ev.xid, ev.gpu_index), (48, Some(2)));
    let status = nvml.xid_recorder_status();
    assert!(status.active, "{status:?}");
    assert!(status.detail.contains("7 GPU(s)"), "{}", status.detail);
    assert!(status.detail.contains("GPU 5"), "{}", status.detail);
}

async fn wait_until_status(nvml: &NvmlBackend, active: bool) -> String {
    let start = Instant::now();
    loop {
        let s = nvml.xid_recorder_status();
        if s.active == active {
            return s.detail;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "recorder never became active={active}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_recorder_whose_wait_keeps_failing_says_so() {
    let fake = FakeNvml::install_fixture("events-wait-lost").unwrap();
    let nvml = init(&fake, Duration::from_secs(2), true);
    // Inactive until the recorder has registered, active once it waits, inactive after 10 errors.
    wait_until_status(&nvml, true).await;
    let detail = wait_until_status(&nvml, false).await;
    assert!(detail.contains("keeps failing"), "{detail}");
}

#[tokio::test]
async fn a_recorder_recovers_when_its_wait_works_again() {
    let fake = FakeNvml::install_fixture("events-wait-lost").unwrap();
    let nvml = init(&fake, Duration::from_secs(2), true);
    wait_until_status(&nvml, true).await;
    wait_until_status(&nvml, false).await;
    let ev = first_event(&nvml).await;
    assert_eq!((ev.xid, ev.gpu_index), (48, Some(2)));
    wait_until_status(&nvml, true).await;
    assert!(nvml.xid_recorder_status().heartbeat.is_some());
}

#[tokio::test]
async fn mig_instances_are_the_ones_that_exist_with_their_ids() {
    let s = snapshot("mig-instances").await;
    let g: &GpuSnapshot = &s.gpus[3];
    assert_eq!(g.mig.enabled, Reading::Value(true));
    let instances = g.mig.instances.value().unwrap();
    assert_eq!(instances.len(), 3, "{instances:?}");
    assert!(instances.iter().all(|m| m.uuid.value().is_some()));
    let ids: Vec<(Option<u32>, Option<u32>, Option<&str>)> = instances
        .iter()
        .map(|m| {
            (
                m.gpu_instance_id.get(),
                m.compute_instance_id.get(),
                m.profile.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        vec![
            (Some(1), Some(0), Some("3g.40gb")),
            (Some(5), Some(0), Some("2g.20gb")),
            (Some(13), Some(0), Some("1g.10gb")),
        ]
    );
    let placements: Vec<Option<MigPlacement>> =
        instances.iter().map(|m| m.placement.get()).collect();
    assert_eq!(
        placements,
        vec![
            Some(MigPlacement { start: 0, size: 4 }),
            Some(MigPlacement { start: 4, size: 2 }),
            None,
        ]
    );
    assert!(
        matches!(instances[2].placement, Reading::Error(_)),
        "an unprivileged placement read is the driver's error: {:?}",
        instances[2].placement
    );
    let procs = g.processes.value().unwrap();
    let kinds: Vec<(u32, ProcessKind, Option<u32>)> = procs
        .iter()
        .map(|p| (p.pid, p.kind, p.gpu_instance))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (7001, ProcessKind::Compute, Some(1)),
            (7002, ProcessKind::Mps, Some(5)),
        ]
    );
}

#[tokio::test]
async fn lifetime_counters_are_reported_with_their_increase_since_the_previous_reading() {
    let fake = FakeNvml::install_fixture("healthy").unwrap();
    let nvml = init(&fake, Duration::from_secs(2), false);
    let first = nvml.snapshot().await.unwrap();
    assert!(first.gpus.iter().all(|g| g.since_previous.is_none()));
    fake.update(&fixture("pcie-replays-lifetime").unwrap())
        .unwrap();
    let second = nvml.snapshot().await.unwrap();
    let c = second.gpus[3].since_previous.as_ref().unwrap();
    assert_eq!(c.pcie_replays, Some(150));
    let third = nvml.snapshot().await.unwrap();
    let c = third.gpus[3].since_previous.as_ref().unwrap();
    assert_eq!(
        c.pcie_replays,
        Some(0),
        "no new replays since the previous reading"
    );
    assert_eq!(third.gpus[3].pcie.replay_counter, Reading::Value(150));
    let other = third.gpus[2].since_previous.as_ref().unwrap();
    assert_eq!(other.pcie_replays, Some(0));
}

#[tokio::test]
async fn a_gpu_that_answers_again_after_a_reset_is_registered_for_events_again() {
    let started = Instant::now();
    let fake = FakeNvml::install_fixture("gpu-lost-handle").unwrap();
    let nvml = init(&fake, Duration::from_secs(2), true);
    let detail = wait_until_status(&nvml, true).await;
    assert!(detail.contains("7 GPU(s)"), "{detail}");
    let lost = nvml.snapshot().await.unwrap();
    assert_eq!(lost.gpus[3].access, GpuAccess::Lost);
    // The GPU is reset and answers again; an Xid follows a few seconds later.
    let due = started.elapsed().as_millis() + 4_000;
    fake.update(&format!(
        r#"{{"events": [{{"gpu": 3, "xid": 48, "after_ms": {due}}}]}}"#
    ))
    .unwrap();
    let back = nvml.snapshot().await.unwrap();
    assert_eq!(back.gpus[3].access, GpuAccess::Ok);
    let ev = first_event(&nvml).await;
    assert_eq!((ev.xid, ev.gpu_index), (48, Some(3)));
    let status = nvml.xid_recorder_status();
    assert!(status.detail.contains("8 GPU(s)"), "{}", status.detail);
}
