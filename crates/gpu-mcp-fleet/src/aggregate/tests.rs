//! The summary over made-up node outcomes.
use super::*;
use serde_json::json;

fn ok(node: &str, structured: Value) -> NodeOutcome {
    NodeOutcome {
        node: node.into(),
        pod: Some(format!("agent-{node}")),
        duration: Duration::from_millis(12),
        reply: Ok(CallToolResult::structured(structured, "{}")),
    }
}

fn failed(node: &str, kind: FailureKind) -> NodeOutcome {
    NodeOutcome {
        node: node.into(),
        pod: None,
        duration: Duration::from_millis(3),
        reply: Err(NodeFailure::new(kind, "boom")),
    }
}

#[test]
fn health_fan_out_counts_verdicts_and_names_failed_nodes() {
    let answer = FanOutAnswer::build(
        "get_gpu_health",
        vec![
            ok(
                "node-b",
                json!({"verdict": "critical",
                       "gpus": [{"verdict": "critical"}, {"verdict": "healthy"}]}),
            ),
            ok(
                "node-a",
                json!({"verdict": "healthy", "gpus": [{"health": {"verdict": "healthy"}}]}),
            ),
            failed("node-d", FailureKind::NotReady),
            failed("node-c", FailureKind::Timeout),
            NodeOutcome {
                reply: Ok(CallToolResult::error("NVML unavailable")),
                ..ok("node-e", json!({}))
            },
        ],
    );
    let names: Vec<&str> = answer.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["node-a", "node-b", "node-c", "node-d", "node-e"]);
    let s = &answer.summary;
    assert_eq!(
        (s.nodes_total, s.nodes_ok, s.nodes_failed, s.nodes_not_ready),
        (5, 2, 2, 1)
    );
    assert_eq!(s.failed_nodes, ["node-c", "node-d", "node-e"]);
    assert_eq!(s.gpus_total, 3);
    assert_eq!(
        s.gpus_by_verdict,
        BTreeMap::from([("critical".into(), 1), ("healthy".into(), 2)])
    );
    assert_eq!(
        s.nodes_by_verdict,
        BTreeMap::from([("critical".into(), 1), ("healthy".into(), 1)])
    );
    assert_eq!(s.top_xids, None);
    assert_eq!(s.gpu_models, None);
    assert!(!answer.all_failed());

    let e = &answer.nodes[4];
    assert!(!e.ok);
    assert_eq!(
        e.error.as_ref().map(|f| f.kind),
        Some(FailureKind::ToolError)
    );
    assert_eq!(
        e.error.as_ref().map(|f| f.message.as_str()),
        Some("\"NVML unavailable\"")
    );
    assert_eq!(answer.nodes[0].duration_ms, 12);
    assert_eq!(answer.nodes[0].pod.as_deref(), Some("agent-node-a"));
}

#[test]
fn inventory_fan_out_lists_models_most_common_first() {
    let answer = FanOutAnswer::build(
        GET_GPU_INVENTORY,
        vec![
            ok(
                "a",
                json!({"gpus": [{"name": "NVIDIA H100"}, {"name": "NVIDIA H100"}]}),
            ),
            ok(
                "b",
                json!({"gpus": [{"name": {"value": "NVIDIA A100"}}, {"name": "not_supported"},
                                {"name": {"value": "NVIDIA H100"}}]}),
            ),
        ],
    );
    assert_eq!(
        answer.summary.gpu_models,
        Some(vec![
            ModelCount {
                model: "NVIDIA H100".into(),
                count: 3
            },
            ModelCount {
                model: "NVIDIA A100".into(),
                count: 1
            },
        ])
    );
    assert_eq!(answer.summary.gpus_total, 5);
}

#[test]
fn xid_fan_out_ranks_xids_across_nodes() {
    let answer = FanOutAnswer::build(
        ANALYZE_XID_ERRORS,
        vec![
            ok(
                "a",
                json!({"events": [{"xid": 79}, {"xid": 48}, {"xid": 79}]}),
            ),
            ok(
                "b",
                json!({"groups": [{"xid": 48, "count": 5}], "events": [{"xid": 48}]}),
            ),
            ok("c", json!({"events": []})),
        ],
    );
    assert_eq!(
        answer.summary.top_xids,
        Some(vec![
            XidCount {
                xid: 48,
                count: 6,
                node_count: 2,
                nodes: vec!["a".into(), "b".into()]
            },
            XidCount {
                xid: 79,
                count: 2,
                node_count: 1,
                nodes: vec!["a".into()]
            },
        ])
    );
}

#[test]
fn gpu_totals_come_from_the_agents_counts() {
    let counts = json!({"counts": {"healthy": 7, "warning": 0, "critical": 1},
                        "gpus": [{"verdict": "critical"}]});
    let answer = FanOutAnswer::build("get_gpu_health", vec![ok("a", counts)]);
    let s = &answer.summary;
    assert_eq!(s.gpus_total, 8);
    let want = BTreeMap::from([("critical".into(), 1), ("healthy".into(), 7)]);
    assert_eq!(s.gpus_by_verdict, want);
}

#[test]
fn all_failing_is_detected() {
    let answer = FanOutAnswer::build(
        "get_gpu_health",
        vec![
            failed("a", FailureKind::Unreachable),
            failed("b", FailureKind::AgentError),
        ],
    );
    assert!(answer.all_failed());
    assert_eq!(answer.summary.nodes_failed, 2);
    assert!(FanOutAnswer::build("get_gpu_health", vec![]).all_failed());
}

#[test]
fn entries_serialize_result_or_error() {
    let answer = FanOutAnswer::build(
        "get_gpu_health",
        vec![
            ok("a", json!({"gpus": []})),
            failed("b", FailureKind::Timeout),
        ],
    );
    let v = serde_json::to_value(&answer).unwrap();
    assert_eq!(v["nodes"][0]["result"], json!({"gpus": []}));
    assert!(v["nodes"][0].get("error").is_none());
    assert_eq!(v["nodes"][1]["error"]["kind"], "timeout");
    assert!(v["nodes"][1].get("result").is_none());
    let back: FanOutAnswer = serde_json::from_value(v).unwrap();
    assert_eq!(back, answer);
}

#[test]
fn an_agents_numbers_and_words_cannot_overflow_or_grow_the_summary() {
    let counts = json!({"verdict": "fine", "counts": {"healthy": u64::MAX, "made-up": 3},
                        "gpus": [{"verdict": "critical"}]});
    let models: Vec<Value> = (0..40)
        .map(|i| json!({"name": format!("model {i} {}", "x".repeat(300))}))
        .collect();
    let answer = FanOutAnswer::build(
        "get_gpu_health",
        vec![ok("a", counts.clone()), ok("b", counts)],
    );
    let s = &answer.summary;
    assert_eq!(s.gpus_total, u64::MAX);
    assert_eq!(
        s.gpus_by_verdict,
        BTreeMap::from([("healthy".into(), u64::MAX), ("unknown".into(), 6)])
    );
    assert_eq!(s.nodes_by_verdict, BTreeMap::from([("unknown".into(), 2)]));
    let inventory = FanOutAnswer::build(GET_GPU_INVENTORY, vec![ok("a", json!({"gpus": models}))]);
    let listed = inventory.summary.gpu_models.unwrap();
    assert_eq!(listed.len(), LISTED_MODELS);
    assert!(
        listed
            .iter()
            .all(|m| m.model.chars().count() == MODEL_NAME_CHARS + 1)
    );
}
