//! The conclusions of `explain_pod_gpu_failure` over fixed evidence.
use super::*;
use gpu_mcp_k8s::ContainerFacts;
use serde_json::json;
use std::time::Duration;

fn pod() -> GpuPod {
    let t = |s: &str| s.parse().ok();
    GpuPod {
        namespace: "ml".into(),
        name: "train".into(),
        node: Some("n1".into()),
        phase: "Failed".into(),
        started: t("2026-12-02T10:00:00Z"),
        containers: vec![ContainerFacts {
            name: "worker".into(),
            state: "terminated".into(),
            reason: Some("Error".into()),
            exit_code: Some(1),
            finished_at: t("2026-12-02T11:00:00Z"),
            ..ContainerFacts::default()
        }],
        ..GpuPod::default()
    }
}

fn device(index: u32) -> HeldDevice {
    HeldDevice {
        uuid: format!("GPU-{index}"),
        gpu_index: Some(index),
        verdict: Some(Verdict::Critical),
        container: "worker".into(),
        shared: false,
    }
}

fn xids(groups: serde_json::Value) -> Result<AgentXids, String> {
    Ok(serde_json::from_value(json!({"groups": groups})).unwrap())
}

fn healthy() -> Result<AgentHealth, String> {
    Ok(serde_json::from_value(json!({"verdict": "healthy"})).unwrap())
}

fn now() -> SystemTime {
    parse_rfc3339("2026-12-02T12:00:00Z").unwrap() + Duration::from_secs(1)
}

const XID79: &str = "2026-12-02T10:30:00Z";

fn xid79(gpu: u32, first_seen: &str) -> serde_json::Value {
    json!([{"gpu_index": gpu, "xid": 79, "name": "GPU has fallen off the bus",
        "severity": "critical", "application_error": false, "action": "Drain", "count": 1,
        "first_seen": first_seen}])
}

#[test]
fn a_hardware_xid_on_a_held_gpu_during_the_run_is_a_likely_gpu_fault() {
    let e = explain(
        &pod(),
        Evidence {
            held: Ok(vec![device(3)]),
            health: healthy(),
            xids: xids(xid79(3, XID79)),
            now: now(),
        },
    );
    assert_eq!(e.conclusion, Conclusion::GpuFaultLikely);
    assert_eq!(e.xids[0].pod_held_it, Some(true));
    assert!(
        e.headline.contains("GPU 3 that it held reported Xid 79"),
        "{}",
        e.headline
    );
    assert!(words(&e).contains("Cannot know"));
}

#[test]
fn without_the_held_gpus_it_cannot_tell_and_says_why() {
    let e = explain(
        &pod(),
        Evidence {
            held: Err("the agent does not serve get_gpu_processes".into()),
            health: healthy(),
            xids: xids(xid79(3, XID79)),
            now: now(),
        },
    );
    assert_eq!(e.conclusion, Conclusion::CannotTell);
    assert!(
        e.cannot_know
            .iter()
            .any(|c| c.contains("get_gpu_processes"))
    );
    assert_eq!(e.xids[0].pod_held_it, None);
}

#[test]
fn xids_elsewhere_or_after_the_pod_ended_do_not_count() {
    // Xid 79 on a GPU the pod did not hold.
    let e = explain(
        &pod(),
        Evidence {
            held: Ok(vec![device(1)]),
            health: healthy(),
            xids: xids(xid79(3, XID79)),
            now: now(),
        },
    );
    assert_eq!(e.conclusion, Conclusion::NoGpuEvidence);
    // Xid 79 on its GPU, but after the pod had ended.
    let e = explain(
        &pod(),
        Evidence {
            held: Ok(vec![device(3)]),
            health: healthy(),
            xids: xids(xid79(3, "2026-12-02T11:30:00Z")),
            now: now(),
        },
    );
    assert_eq!(e.conclusion, Conclusion::NoGpuEvidence);
    assert!(e.xids.is_empty());
}

#[test]
fn application_xids_point_to_the_program_and_silence_to_nothing() {
    let e = explain(
        &pod(),
        Evidence {
            held: Ok(vec![device(0)]),
            health: healthy(),
            xids: xids(
                json!([{"gpu_index": 0, "xid": 13, "name": "Graphics engine exception",
                "severity": "warning", "application_error": true, "count": 4,
                "first_seen": XID79}]),
            ),
            now: now(),
        },
    );
    assert_eq!(e.conclusion, Conclusion::ApplicationError);
    let e = explain(
        &pod(),
        Evidence {
            held: Ok(vec![device(0)]),
            health: Err("timeout".into()),
            xids: xids(json!([])),
            now: now(),
        },
    );
    assert_eq!(e.conclusion, Conclusion::CannotTell);
    let mut unscheduled = pod();
    unscheduled.node = None;
    let e = explain(
        &unscheduled,
        Evidence {
            held: Err("no node".into()),
            health: Err("no node".into()),
            xids: Err("no node".into()),
            now: now(),
        },
    );
    assert_eq!(e.conclusion, Conclusion::NeverScheduled);
}
