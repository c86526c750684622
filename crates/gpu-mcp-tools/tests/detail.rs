#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `detail` and `min_verdict`: a `problems` health answer lists only the GPUs and findings that
//! need attention and still counts every GPU; a `summary` lists none; an Xid `summary` lists the
//! groups without the events; the default answer is the full one. Every answer fits its schema.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gpu_mcp_backend::{MOCK_UPTIME, MockBackend, MockConfig, Scenario};
use gpu_mcp_model::gpu_tool_definitions;
use gpu_mcp_protocol::{CallToolResult, JsonObject};
use gpu_mcp_service::{CallContext, ToolCatalog};
use gpu_mcp_tools::{AgentCatalog, AgentCatalogConfig};
use serde_json::{Value, json};

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn catalog(scenario: Scenario) -> AgentCatalog {
    let backend = MockBackend::new(MockConfig {
        node_name: "gpu-node-1".into(),
        gpus: 8,
        scenario,
        now: Some(now()),
        ..MockConfig::default()
    })
    .unwrap();
    AgentCatalog::new(
        Arc::new(backend),
        AgentCatalogConfig {
            node_name: "gpu-node-1".into(),
            boot_time: Some(now() - MOCK_UPTIME),
            now: Some(now()),
            ..AgentCatalogConfig::default()
        },
    )
}

async fn call(c: &AgentCatalog, tool: &str, args: Value) -> CallToolResult {
    let args: Option<JsonObject> = args.as_object().cloned();
    c.call(tool, args, CallContext::default()).await.unwrap()
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text())
        .collect::<Vec<_>>()
        .join("\n")
}

fn ok(r: &CallToolResult) -> Value {
    assert_ne!(r.is_error, Some(true), "tool failed: {}", text(r));
    r.structured_value().unwrap().into_owned()
}

fn assert_matches_schema(tool: &str, v: &Value) {
    let def = gpu_tool_definitions()
        .into_iter()
        .find(|t| t.name == tool)
        .unwrap();
    let validator = jsonschema::validator_for(&Value::Object(def.output_schema.unwrap())).unwrap();
    let errors: Vec<String> = validator.iter_errors(v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{tool}: {errors:#?}");
}

fn rank(v: &Value) -> u8 {
    match v.as_str().unwrap() {
        "healthy" => 0,
        "warning" => 1,
        "degraded" => 2,
        "critical" => 3,
        other => panic!("verdict {other}"),
    }
}

/// The full answer's GPUs and findings at or above `min`, as a `problems` answer lists them.
fn expected_problems(full: &Value, min: u8) -> (Vec<Value>, Vec<Value>) {
    let at_least = |f: &&Value| rank(&f["severity"]) >= min;
    let gpus = full["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| rank(&g["verdict"]) >= min)
        .map(|g| {
            let mut g = g.clone();
            let reasons: Vec<Value> = g["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .filter(at_least)
                .cloned()
                .collect();
            g["reasons"] = Value::Array(reasons);
            g
        })
        .collect();
    let node = full["node_findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(at_least)
        .cloned()
        .collect();
    (gpus, node)
}

#[tokio::test]
async fn a_problems_answer_lists_what_needs_attention_and_counts_every_gpu() {
    let (mut gpus_listed, mut node_findings_listed) = (0, 0);
    for scenario in Scenario::ALL {
        let c = catalog(scenario);
        let full = ok(&call(&c, "get_gpu_health", json!({})).await);
        assert!(full.get("detail").is_none(), "the default answer is full");
        assert_eq!(full["gpus"].as_array().unwrap().len(), 8);
        for (min, min_rank) in [("warning", 1), ("healthy", 1), ("critical", 3)] {
            let r = call(
                &c,
                "get_gpu_health",
                json!({"detail": "problems", "min_verdict": min}),
            )
            .await;
            let p = ok(&r);
            assert_matches_schema("get_gpu_health", &p);
            for same in [
                "verdict",
                "summary",
                "counts",
                "node",
                "xid_since",
                "sources",
            ] {
                assert_eq!(p[same], full[same], "{scenario} {min}: {same}");
            }
            let (gpus, node) = expected_problems(&full, min_rank);
            assert_eq!(p["gpus"], Value::Array(gpus.clone()), "{scenario} {min}");
            gpus_listed += gpus.len();
            node_findings_listed += node.len();
            assert_eq!(p["node_findings"], Value::Array(node), "{scenario} {min}");
            assert_eq!(p["detail"], "problems");
            let listed_min = if min_rank == 1 { "warning" } else { min };
            assert_eq!(p["min_verdict"], listed_min);
            // The words say what was left out, and list only the listed GPUs.
            let words = text(&r);
            if gpus.len() < 8 {
                let unlisted = 8 - gpus.len();
                assert!(
                    words.contains(&format!("{unlisted} GPU(s) not listed")),
                    "{scenario}: {words}"
                );
            }
            assert_eq!(words.matches("\n\nGPU ").count(), gpus.len(), "{words}");
        }
    }
    assert!(gpus_listed > 10 && node_findings_listed > 0);
}

#[tokio::test]
async fn a_healthy_node_answers_problems_with_counts_only() {
    let c = catalog(Scenario::Healthy);
    let full = call(&c, "get_gpu_health", json!({})).await;
    let problems = call(&c, "get_gpu_health", json!({"detail": "problems"})).await;
    let p = ok(&problems);
    assert_eq!(p["gpus"], json!([]));
    assert_eq!(p["counts"]["healthy"], 8);
    let size = |r: &CallToolResult| serde_json::to_vec(r).unwrap().len();
    assert!(
        size(&problems) * 3 < size(&full),
        "problems {} vs full {} bytes",
        size(&problems),
        size(&full)
    );
}

#[tokio::test]
async fn a_summary_answer_lists_no_gpu_or_finding() {
    for scenario in [
        Scenario::Xid79,
        Scenario::NvswitchFatalSxid,
        Scenario::Healthy,
    ] {
        let c = catalog(scenario);
        let full = ok(&call(&c, "get_gpu_health", json!({})).await);
        let s = ok(&call(&c, "get_gpu_health", json!({"detail": "summary"})).await);
        assert_matches_schema("get_gpu_health", &s);
        assert_eq!(s["gpus"], json!([]));
        assert_eq!(s["node_findings"], json!([]));
        assert_eq!(s["detail"], "summary");
        for same in ["verdict", "summary", "counts"] {
            assert_eq!(s[same], full[same], "{scenario}: {same}");
        }
        // `full` spelled out is the default answer.
        let spelled = ok(&call(&c, "get_gpu_health", json!({"detail": "full"})).await);
        assert_eq!(spelled, full);
    }
}

#[tokio::test]
async fn an_xid_summary_lists_the_groups_without_the_events() {
    for scenario in [Scenario::Xid79, Scenario::XidEccFamily, Scenario::Healthy] {
        let c = catalog(scenario);
        let full = ok(&call(&c, "analyze_xid_errors", json!({})).await);
        let s = ok(&call(&c, "analyze_xid_errors", json!({"detail": "summary"})).await);
        assert_matches_schema("analyze_xid_errors", &s);
        for same in ["groups", "total_events", "summary", "nvswitch"] {
            assert_eq!(s[same], full[same], "{scenario}: {same}");
        }
        if scenario != Scenario::Healthy {
            assert!(!full["events"].as_array().unwrap().is_empty(), "{scenario}");
            assert!(!full["groups"].as_array().unwrap().is_empty(), "{scenario}");
        }
        assert_eq!(s["events"], json!([]));
        assert_eq!(s["returned_events"], 0);
        assert_eq!(s["truncated"], false);
        // Said where events were left out.
        if scenario == Scenario::Healthy {
            assert!(s.get("detail").is_none());
        } else {
            assert_eq!(s["detail"], "summary");
        }
        assert!(full.get("detail").is_none());
    }
}

#[tokio::test]
async fn bad_detail_arguments_are_refused_with_their_name() {
    let c = catalog(Scenario::Healthy);
    for (tool, args, name) in [
        ("get_gpu_health", json!({"detail": "everything"}), "detail"),
        (
            "get_gpu_health",
            json!({"min_verdict": "fine"}),
            "min_verdict",
        ),
        (
            "analyze_xid_errors",
            json!({"detail": "problems"}),
            "detail",
        ),
    ] {
        let r = call(&c, tool, args).await;
        assert_eq!(r.is_error, Some(true));
        assert!(text(&r).contains(&format!("`{name}`")), "{}", text(&r));
    }
}

#[test]
fn the_input_schemas_offer_detail_without_nullable_types() {
    for (tool, values) in [
        ("get_gpu_health", vec!["summary", "problems", "full"]),
        ("analyze_xid_errors", vec!["summary", "full"]),
    ] {
        let def = gpu_tool_definitions()
            .into_iter()
            .find(|t| t.name == tool)
            .unwrap();
        let encoded = serde_json::to_string(&def.input_schema).unwrap();
        assert!(!encoded.contains("null"), "{tool}: {encoded}");
        let detail = &def.input_schema["properties"]["detail"];
        let listed: Vec<&str> = detail["enum"]
            .as_array()
            .or_else(|| detail["oneOf"].as_array())
            .map(|v| {
                v.iter()
                    .filter_map(|x| x.as_str().or_else(|| x["const"].as_str()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(listed, values, "{tool}: {detail}");
    }
}

/// Not a check: prints the encoded size of one agent's answer (mock fleet, 8 GPUs) in full and
/// as a fan-out narrows it, for docs/benchmarks.md:
/// `cargo test -p gpu-mcp-tools --test detail answer_bytes -- --ignored --nocapture`
#[tokio::test]
#[ignore = "a measurement for docs/benchmarks.md, not a test"]
async fn answer_bytes() {
    println!("| tool | scenario | full bytes | narrowed bytes |");
    println!("|---|---|---|---|");
    for scenario in [Scenario::Healthy, Scenario::Xid79, Scenario::XidEccFamily] {
        let c = catalog(scenario);
        for (tool, narrowed) in [
            (
                "get_gpu_health",
                json!({"detail": "problems", "min_verdict": "warning"}),
            ),
            ("analyze_xid_errors", json!({"detail": "summary"})),
        ] {
            let size = |r: &CallToolResult| serde_json::to_vec(r).unwrap().len();
            let full = size(&call(&c, tool, json!({})).await);
            let small = size(&call(&c, tool, narrowed).await);
            println!("| {tool} | {scenario} | {full} | {small} |");
        }
    }
}
