#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The three tools end to end over the mock backend: every scenario, schema conformance of the
//! structured output, kernel-log evidence, and bad arguments.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gpu_mcp_backend::{GpuModel, MOCK_UPTIME, MockBackend, MockConfig, Scenario};
use gpu_mcp_model::gpu_tool_definitions;
use gpu_mcp_protocol::{CallToolResult, Content, JsonObject};
use gpu_mcp_service::{CallContext, CallError, ToolCatalog};
use gpu_mcp_tools::{AgentCatalog, AgentCatalogConfig};
use serde_json::{Value, json};

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn catalog_with(cfg: MockConfig, kmsg: Option<PathBuf>) -> AgentCatalog {
    let backend = MockBackend::new(MockConfig {
        now: Some(now()),
        ..cfg
    })
    .unwrap();
    AgentCatalog::new(
        Arc::new(backend),
        AgentCatalogConfig {
            node_name: "gpu-node-1".into(),
            kmsg_path: kmsg,
            boot_time: Some(now() - MOCK_UPTIME),
            now: Some(now()),
            ..AgentCatalogConfig::default()
        },
    )
}

fn catalog(scenario: Scenario) -> AgentCatalog {
    catalog_with(
        MockConfig {
            node_name: "gpu-node-1".into(),
            gpus: 8,
            scenario,
            ..MockConfig::default()
        },
        None,
    )
}

async fn call(c: &AgentCatalog, name: &str, args: Value) -> CallToolResult {
    let args: Option<JsonObject> = match args {
        Value::Object(o) => Some(o),
        Value::Null => None,
        other => panic!("bad test args {other}"),
    };
    c.call(name, args, CallContext::default()).await.unwrap()
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| match c {
            Content::Text { text } => Some(text.clone()),
            _ => None,
        })
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
    let schema = Value::Object(def.output_schema.unwrap());
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{tool} output violates its schema: {errors:#?}"
    );
}

const EXPECTED: &[(Scenario, &str)] = &[
    (Scenario::Healthy, "healthy"),
    (Scenario::ThermalSlowdown, "degraded"),
    (Scenario::PowerBrake, "degraded"),
    (Scenario::UncorrectableEcc, "critical"),
    (Scenario::RowRemapFailure, "critical"),
    (Scenario::Xid79, "critical"),
    (Scenario::XidEccFamily, "critical"),
    (Scenario::NvlinkCrcErrors, "degraded"),
    (Scenario::MigEnabled, "healthy"),
    (Scenario::PcieDegraded, "degraded"),
    (Scenario::GspTimeout, "critical"),
    (Scenario::ApplicationXid, "warning"),
    (Scenario::RecoveryAction, "critical"),
    (Scenario::NvlinkDegraded, "degraded"),
    (Scenario::FabricInProgress, "degraded"),
    (Scenario::FabricNotStarted, "critical"),
    (Scenario::NvswitchFatalSxid, "critical"),
];

#[tokio::test]
async fn every_scenario_answers_all_tools_with_schema_valid_output() {
    assert_eq!(
        EXPECTED.len(),
        Scenario::ALL.len(),
        "a scenario lacks an expectation"
    );
    for &(scenario, verdict) in EXPECTED {
        let c = catalog(scenario);
        let inv = call(&c, "get_gpu_inventory", json!({})).await;
        let v = &ok(&inv);
        assert_matches_schema("get_gpu_inventory", v);
        assert_eq!(v["gpu_count"], 8);
        assert!(text(&inv).contains("gpu-node-1"));

        let h = call(&c, "get_gpu_health", json!({})).await;
        let hv = &ok(&h);
        assert_matches_schema("get_gpu_health", hv);
        assert_eq!(hv["verdict"], verdict, "{scenario}: {}", text(&h));
        // An NVSwitch's SXid is the node's finding: its GPUs stay healthy.
        let gpu_verdict = if scenario == Scenario::NvswitchFatalSxid {
            "healthy"
        } else {
            verdict
        };
        assert_eq!(hv["gpus"][0]["verdict"], gpu_verdict, "{scenario}");
        // The other GPUs stay healthy: a scenario hits one GPU.
        for i in 1..8 {
            assert_eq!(hv["gpus"][i]["verdict"], "healthy", "{scenario} GPU {i}");
        }
        if gpu_verdict != "healthy" {
            let reasons = hv["gpus"][0]["reasons"].as_array().unwrap();
            assert!(!reasons.is_empty());
            for r in reasons {
                for k in ["check", "observed", "threshold", "action", "summary"] {
                    assert!(!r[k].as_str().unwrap().is_empty(), "{scenario}: empty {k}");
                }
            }
        }

        let x = call(&c, "analyze_xid_errors", json!({})).await;
        let xv = &ok(&x);
        assert_matches_schema("analyze_xid_errors", xv);
        assert!(!text(&x).is_empty());

        let p = call(&c, "get_gpu_processes", json!({})).await;
        let pv = &ok(&p);
        assert_matches_schema("get_gpu_processes", pv);
        assert!(text(&p).starts_with(pv["headline"].as_str().unwrap()));

        let t = call(&c, "get_nvlink_topology", json!({"full": true})).await;
        assert_matches_schema("get_nvlink_topology", &ok(&t));
    }
}

#[tokio::test]
async fn scenarios_name_the_right_reasons() {
    let reasons = |v: &Value| -> Vec<String> {
        v["gpus"][0]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["check"].as_str().unwrap().to_owned())
            .collect()
    };
    let cases: &[(Scenario, &[&str])] = &[
        (Scenario::ThermalSlowdown, &["temperature", "clock_events"]),
        (Scenario::PowerBrake, &["clock_events"]),
        (
            Scenario::UncorrectableEcc,
            &["recent_xid", "ecc_uncorrectable", "row_remap_pending"],
        ),
        (
            Scenario::RowRemapFailure,
            &["row_remap_failure", "recent_xid"],
        ),
        (Scenario::Xid79, &["gpu_access", "recent_xid"]),
        (Scenario::NvlinkCrcErrors, &["nvlink_errors"]),
        (
            Scenario::PcieDegraded,
            &["pcie_link_width", "pcie_link_generation", "pcie_replays"],
        ),
        (Scenario::GspTimeout, &["gpu_access", "recent_xid"]),
        (Scenario::ApplicationXid, &["recent_xid"]),
        (Scenario::RecoveryAction, &["recovery_action", "recent_xid"]),
    ];
    for (scenario, want) in cases {
        let h = call(
            &catalog(*scenario),
            "get_gpu_health",
            json!({"gpu_index": 0}),
        )
        .await;
        let got = reasons(&ok(&h));
        for w in *want {
            assert!(
                got.iter().any(|g| g == w),
                "{scenario}: {w} missing from {got:?}"
            );
        }
    }
    // The temperature threshold is the device's, not a constant.
    let h = call(
        &catalog(Scenario::ThermalSlowdown),
        "get_gpu_health",
        json!({"gpu_index": 0}),
    )
    .await;
    let hv = &ok(&h);
    let t = &hv["gpus"][0]["reasons"];
    let temp = t
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == "temperature")
        .unwrap();
    assert!(temp["threshold"].as_str().unwrap().contains("89"), "{temp}");
    // MIG: healthy, with a note.
    let h = call(
        &catalog(Scenario::MigEnabled),
        "get_gpu_health",
        json!({"gpu_index": 0}),
    )
    .await;
    let notes = ok(&h)["gpus"][0]["notes"].to_string();
    assert!(notes.contains("MIG enabled with 3"), "{notes}");
}

#[tokio::test]
async fn xid_analysis_groups_per_gpu_and_code_with_catalog_entries() {
    let c = catalog(Scenario::XidEccFamily);
    let x = call(&c, "analyze_xid_errors", json!({})).await;
    let v = &ok(&x);
    assert_eq!(v["total_events"], 4);
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3, "{groups:#?}");
    let g48 = groups.iter().find(|g| g["xid"] == 48).unwrap();
    assert_eq!(g48["count"], 2);
    assert_eq!(g48["gpu_index"], 0);
    assert_eq!(g48["severity"], "critical");
    assert_eq!(g48["mnemonic"], "ROBUST_CHANNEL_GPU_ECC_DBE");
    assert!(g48["first_seen"].as_str().unwrap() < g48["last_seen"].as_str().unwrap());
    let g94 = groups.iter().find(|g| g["xid"] == 94).unwrap();
    assert_eq!(g94["severity"], "warning");
    // Newest first, limited.
    let x = call(&c, "analyze_xid_errors", json!({"limit": 1})).await;
    let v = &ok(&x);
    assert_eq!(v["returned_events"], 1);
    assert_eq!(v["truncated"], true);
    assert_eq!(v["events"][0]["xid"], 95);
    // The window excludes the older pair (31 minutes ago).
    let x = call(&c, "analyze_xid_errors", json!({"since": "20m"})).await;
    assert_eq!(ok(&x)["total_events"], 2);
    let x = call(
        &c,
        "analyze_xid_errors",
        json!({"since": "2027-01-15T07:00:00Z"}),
    )
    .await;
    assert_eq!(ok(&x)["total_events"], 4);
    // GPU filters.
    let x = call(&c, "analyze_xid_errors", json!({"gpu_index": 1})).await;
    assert_eq!(ok(&x)["total_events"], 0);
    // An old window leaves the health verdict clean of Xids.
    let h = call(&c, "get_gpu_health", json!({"xid_since": "1m"})).await;
    let checks = ok(&h)["gpus"][0]["reasons"].to_string();
    assert!(!checks.contains("recent_xid"), "{checks}");
}

#[tokio::test]
async fn kernel_log_events_are_mapped_to_gpus_merged_and_unknown_codes_kept() {
    let cfg = MockConfig {
        node_name: "gpu-node-1".into(),
        gpus: 8,
        scenario: Scenario::Xid79,
        ..MockConfig::default()
    };
    let mock = MockBackend::new(MockConfig {
        now: Some(now()),
        ..cfg.clone()
    })
    .unwrap();
    let dir = std::env::temp_dir().join(format!("gpu-mcp-tools-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kmsg.log");
    let up = (MOCK_UPTIME - Duration::from_secs(60)).as_micros();
    let mut log = mock.kernel_log();
    // GPU 2 of an HGX H100 sits on bus 0x3a.
    log.push_str(&format!(
        "4,9001,{up},-;NVRM: Xid (PCI:0000:3a:00): 4242, pid=1, name=x, a code from the future\n"
    ));
    // A GPU the driver no longer lists.
    log.push_str(&format!(
        "4,9002,{up},-;NVRM: GPU 0000:ee:00.0: GPU has fallen off the bus.\n"
    ));
    log.push_str("\u{1}\u{2}garbage\nNVRM: Xid (PCI:0000:3a\n");
    std::fs::write(&path, log).unwrap();
    let c = catalog_with(cfg, Some(path));

    let x = call(&c, "analyze_xid_errors", json!({})).await;
    let v = &ok(&x);
    assert_matches_schema("analyze_xid_errors", v);
    assert_eq!(v["sources"]["kernel_log"]["status"], "ok");
    assert_eq!(v["sources"]["kernel_log"]["unparsed_xid_lines"], 1);
    let groups = v["groups"].as_array().unwrap();
    let g79 = groups
        .iter()
        .find(|g| g["xid"] == 79 && g["gpu_index"] == 0)
        .unwrap();
    assert_eq!(
        g79["count"], 1,
        "kernel line and recorded event are one occurrence"
    );
    assert_eq!(g79["sources"], json!(["kernel_log", "mock"]));
    let unknown = groups.iter().find(|g| g["xid"] == 4242).unwrap();
    assert_eq!(unknown["known"], false);
    assert_eq!(unknown["gpu_index"], 2);
    let lost = groups
        .iter()
        .find(|g| g["pci_bus_id"] == "0000:ee:00.0")
        .unwrap();
    assert_eq!(lost["gpu_index"], Value::Null);

    let h = call(&c, "get_gpu_health", json!({})).await;
    let hv = &ok(&h);
    assert_eq!(hv["verdict"], "critical");
    assert_eq!(
        hv["gpus"][2]["verdict"], "warning",
        "unknown Xid counts as a warning"
    );
    let nf = hv["node_findings"].as_array().unwrap();
    assert!(
        nf.iter().any(|f| f["check"] == "xid_unattributed"),
        "{nf:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn kernel_log_problems_are_reported_not_fatal() {
    let c = catalog_with(
        MockConfig::default(),
        Some(PathBuf::from("/nonexistent/kmsg")),
    );
    let h = call(&c, "get_gpu_health", json!({})).await;
    let v = &ok(&h);
    assert_eq!(v["sources"]["kernel_log"]["status"], "not_found");
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("kernel log could not be read")
    );
}

#[tokio::test]
async fn filters_select_one_gpu() {
    let c = catalog(Scenario::Healthy);
    let inv = call(&c, "get_gpu_inventory", json!({"gpu_index": 3})).await;
    let v = &ok(&inv);
    assert_eq!(v["gpus"].as_array().unwrap().len(), 1);
    let uuid = v["gpus"][0]["uuid"].as_str().unwrap().to_owned();
    let inv = call(
        &c,
        "get_gpu_inventory",
        json!({"gpu_uuid": uuid.to_lowercase()}),
    )
    .await;
    assert_eq!(ok(&inv)["gpus"][0]["index"], 3);
    let h = call(&c, "get_gpu_health", json!({"gpu_uuid": uuid})).await;
    assert_eq!(ok(&h)["gpus"].as_array().unwrap().len(), 1);
}

async fn error_text(c: &AgentCatalog, tool: &str, args: Value) -> String {
    let r = call(c, tool, args).await;
    assert_eq!(
        r.is_error,
        Some(true),
        "{tool} {}: expected an error",
        text(&r)
    );
    assert!(r.structured_value().is_none());
    text(&r)
}

#[tokio::test]
async fn bad_arguments_are_tool_errors_naming_the_argument() {
    let c = catalog(Scenario::Healthy);
    let cases: &[(&str, Value, &str)] = &[
        ("get_gpu_inventory", json!({"gpu_index": 8}), "gpu_index"),
        (
            "get_gpu_inventory",
            json!({"gpu_index": "zero"}),
            "gpu_index",
        ),
        ("get_gpu_inventory", json!({"gpu_index": -1}), "gpu_index"),
        (
            "get_gpu_inventory",
            json!({"gpu_uuid": "GPU-nope"}),
            "gpu_uuid",
        ),
        ("get_gpu_inventory", json!({"verbose": true}), "verbose"),
        (
            "get_gpu_health",
            json!({"xid_since": "yesterday"}),
            "xid_since",
        ),
        ("get_gpu_health", json!({"gpu_index": 99}), "gpu_index"),
        ("get_gpu_health", json!({"node": "x"}), "node"),
        ("analyze_xid_errors", json!({"since": "soon"}), "since"),
        ("analyze_xid_errors", json!({"since": 5}), "since"),
        ("analyze_xid_errors", json!({"limit": 0}), "limit"),
        ("analyze_xid_errors", json!({"limit": 5000}), "limit"),
        ("analyze_xid_errors", json!({"gpu_index": 8}), "gpu_index"),
    ];
    for (tool, args, arg) in cases {
        let t = error_text(&c, tool, args.clone()).await;
        assert!(t.contains(arg), "{tool} {args}: {t:?} does not name {arg}");
    }
    let unknown = c.call("nope", None, CallContext::default()).await;
    assert!(matches!(unknown, Err(CallError::UnknownTool(_))));
}

#[tokio::test]
async fn definitions_are_stable_and_usable_without_a_backend() {
    let defs = gpu_tool_definitions();
    let names: Vec<&str> = defs.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "get_gpu_inventory",
            "get_gpu_health",
            "analyze_xid_errors",
            "get_gpu_processes",
            "get_nvlink_topology"
        ]
    );
    gpu_mcp_service::validate_tools(&defs).unwrap();
    let c = catalog(Scenario::Healthy);
    assert_eq!(c.tools(), defs);
    for t in &defs {
        let s = serde_json::to_string(&t.input_schema).unwrap();
        assert!(!s.contains("$ref"), "{}: inline schemas only", t.name);
        assert_eq!(t.input_schema["additionalProperties"], false, "{}", t.name);
        assert!(t.annotations.as_ref().unwrap().read_only_hint == Some(true));
    }
}

#[tokio::test]
async fn cancellation_ends_the_call() {
    let c = catalog(Scenario::Healthy);
    let ctx = CallContext::default();
    ctx.cancel.cancel();
    // Either the call finished first or it reports cancellation; it must not hang or fail.
    let r = c.call("get_gpu_health", None, ctx).await.unwrap();
    assert!(r.is_error.is_none() || text(&r).contains("cancelled"));
}

#[tokio::test]
async fn mixed_models_report_model_specific_fields() {
    let cfg = MockConfig::from_profile_str(
        r#"{"node_name":"mixed","gpus":[{"model":"L4"},{"model":"V100-SXM2-32GB","scenario":"uncorrectable-ecc"},{"model":"A100-SXM4-80GB","scenario":"mig-enabled"}]}"#,
    )
    .unwrap();
    let c = catalog_with(cfg, None);
    let inv = call(&c, "get_gpu_inventory", json!({})).await;
    let v = &ok(&inv);
    assert_matches_schema("get_gpu_inventory", v);
    assert_eq!(
        v["gpus"][0]["unavailable"]["temperature_c.memory"],
        "not_supported"
    );
    assert_eq!(
        v["gpus"][0]["nvlink"],
        json!({"links": 0, "active": 0, "all_clean": true})
    );
    // Volta retires pages instead of remapping rows; a pending retirement unfolds the ECC block.
    assert!(v["gpus"][1]["unavailable"]["ecc.row_remapping"].is_null());
    assert_eq!(v["gpus"][1]["ecc"]["all_clean"], false);
    assert_eq!(v["gpus"][1]["ecc"]["retired_pages"]["pending"], true);
    let full = ok(&call(&c, "get_gpu_inventory", json!({"full": true})).await);
    assert_matches_schema("get_gpu_inventory", &full);
    assert_eq!(
        full["gpus"][1]["unavailable"]["ecc.row_remapping"],
        "not_supported"
    );
    let h = call(&c, "get_gpu_health", json!({})).await;
    let hv = &ok(&h);
    assert_eq!(hv["gpus"][0]["verdict"], "healthy");
    // Volta has no error containment: an uncorrectable error is critical on its own.
    let r = hv["gpus"][1]["reasons"].to_string();
    assert!(
        r.contains("retired_pages_pending") && r.contains("ecc_uncorrectable"),
        "{r}"
    );
    assert_eq!(hv["gpus"][1]["verdict"], "critical");
    assert_eq!(hv["gpus"][2]["verdict"], "healthy");
    let _ = GpuModel::ALL;
}

#[tokio::test]
async fn processes_are_listed_and_named_before_a_reset() {
    let c = catalog(Scenario::RowRemapFailure);
    let inv = call(
        &c,
        "get_gpu_inventory",
        json!({"gpu_index": 0, "sections": ["processes"]}),
    )
    .await;
    let iv = ok(&inv);
    let procs = &iv["gpus"][0]["processes"];
    assert_eq!(procs.as_array().unwrap().len(), 1);
    assert_eq!(procs[0]["kind"], "compute");
    let pid = procs[0]["pid"].as_u64().unwrap();
    let h = call(&c, "get_gpu_health", json!({})).await;
    let v = &ok(&h);
    let notes = v["gpus"][0]["notes"].to_string();
    assert!(notes.contains(&format!("pid {pid}")), "{notes}");
    // ... with its name and the pod that owns it.
    assert!(
        notes.contains("python3, ml-training/gpu-node-1-job-0/worker"),
        "{notes}"
    );
    assert_eq!(procs[0]["name"], "python3");
    assert_eq!(procs[0]["pod"]["pod"], "gpu-node-1-job-0");
    // Healthy GPUs get no drain note.
    assert!(!v["gpus"][1]["notes"].to_string().contains("drained"));
    // MIG processes carry their instance.
    let c = catalog(Scenario::MigEnabled);
    let inv = call(
        &c,
        "get_gpu_inventory",
        json!({"gpu_index": 0, "sections": ["processes"]}),
    )
    .await;
    let iv = ok(&inv);
    let procs = &iv["gpus"][0]["processes"];
    assert_eq!(procs.as_array().unwrap().len(), 3);
    assert!(procs[0]["gpu_instance"].is_u64());
}

/// Walks a schema; `path` names where a value sits, for the failure message.
fn walk(v: &Value, path: &str, input: bool, problems: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(f) = o.get("format").and_then(Value::as_str)
                && !gpu_mcp_model::portable::is_standard_format(f)
            {
                problems.push(format!("{path}: non-standard format {f:?}"));
            }
            if input {
                if let Some(Value::Array(types)) = o.get("type")
                    && types.iter().any(|t| t == "null")
                {
                    problems.push(format!("{path}: nullable type array {types:?}"));
                }
                if let Some(Value::Array(branches)) = o.get("anyOf")
                    && branches.iter().any(|b| b["type"] == "null")
                {
                    problems.push(format!("{path}: anyOf with a null branch"));
                }
            }
            for (k, x) in o {
                walk(x, &format!("{path}/{k}"), input, problems);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, &format!("{path}/{i}"), input, problems);
            }
        }
        _ => {}
    }
}

#[test]
fn schemas_are_portable_no_nullable_inputs_no_nonstandard_formats() {
    let mut problems = Vec::new();
    for t in gpu_tool_definitions() {
        walk(
            &Value::Object(t.input_schema.clone()),
            &format!("{} input", t.name),
            true,
            &mut problems,
        );
        walk(
            &Value::Object(t.output_schema.clone().unwrap()),
            &format!("{} output", t.name),
            false,
            &mut problems,
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn inventory_default_is_compact_and_names_what_it_left_out() {
    let c = catalog(Scenario::Healthy);
    let v = ok(&call(&c, "get_gpu_inventory", json!({})).await);
    let bytes = serde_json::to_string(&v).unwrap().len();
    assert!(
        bytes < 8 * 1024,
        "default inventory of 8 GPUs is {bytes} bytes"
    );
    assert!(!serde_json::to_string(&v).unwrap().contains("\"value\""));
    assert_eq!(
        v["gpus"][0]["nvlink"],
        json!({"links": 18, "active": 18, "all_clean": true})
    );
    assert!(v["more"].as_str().unwrap().contains("full"));
    let full = ok(&call(&c, "get_gpu_inventory", json!({"full": true})).await);
    assert_matches_schema("get_gpu_inventory", &full);
    assert_eq!(
        full["gpus"][0]["nvlink"]["detail"]
            .as_array()
            .unwrap()
            .len(),
        18
    );
    assert!(full.get("more").is_none());
    // A link with errors is listed even in the default answer.
    let c = catalog(Scenario::NvlinkCrcErrors);
    let v = ok(&call(&c, "get_gpu_inventory", json!({})).await);
    let dirty: Vec<&Value> = v["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["nvlink"]["all_clean"] == false)
        .collect();
    assert!(!dirty.is_empty());
    assert!(!dirty[0]["nvlink"]["detail"].as_array().unwrap().is_empty());
    let only = ok(&call(&c, "get_gpu_inventory", json!({"sections": ["thermal"]})).await);
    assert!(only["gpus"][0].get("name").is_none());
    assert!(only["gpus"][0]["temperature_c"]["gpu"].is_u64());
}

#[tokio::test]
async fn an_undated_kernel_log_xid_is_history_not_a_recent_error() {
    let cfg = MockConfig {
        node_name: "gpu-node-1".into(),
        gpus: 8,
        scenario: Scenario::Healthy,
        ..MockConfig::default()
    };
    let dir = std::env::temp_dir().join(format!("gpu-mcp-tools-undated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("syslog");
    // A syslog file copied from elsewhere: no prefix the parser can date. GPU 2 is bus 0x3a.
    std::fs::write(
        &path,
        "NVRM: Xid (PCI:0000:3a:00): 79, pid=1, name=x, GPU has fallen off the bus.\n",
    )
    .unwrap();
    let c = catalog_with(cfg, Some(path));
    let h = call(&c, "get_gpu_health", json!({})).await;
    let hv = &ok(&h);
    assert_eq!(hv["verdict"], "healthy", "{hv}");
    // The whole history still lists it.
    let x = call(&c, "analyze_xid_errors", json!({})).await;
    let v = &ok(&x);
    assert!(
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["xid"] == 79),
        "{v}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
