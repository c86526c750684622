//! NVSwitch SXid errors through the agent's tools: the mock scenario and kernel-log lines are
//! listed by `analyze_xid_errors` and judged by `get_gpu_health`'s node-level rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gpu_mcp_backend::{MOCK_UPTIME, MockBackend, MockConfig, Scenario};
use gpu_mcp_protocol::{CallToolResult, Content};
use gpu_mcp_service::{CallContext, ToolCatalog};
use gpu_mcp_tools::{AgentCatalog, AgentCatalogConfig};
use serde_json::{Value, json};

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn catalog(scenario: Scenario, kmsg: Option<PathBuf>) -> AgentCatalog {
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
            kmsg_path: kmsg,
            boot_time: Some(now() - MOCK_UPTIME),
            now: Some(now()),
            ..AgentCatalogConfig::default()
        },
    )
}

async fn call(c: &AgentCatalog, name: &str, args: Value) -> (Value, String) {
    let r: CallToolResult = c
        .call(name, args.as_object().cloned(), CallContext::default())
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{name}: {r:?}");
    let text = r
        .content
        .iter()
        .filter_map(|c| match c {
            Content::Text { text } => Some(text.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n");
    (r.structured_value().unwrap().into_owned(), text)
}

fn sxid_findings(health: &Value) -> Vec<&Value> {
    health["node_findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "nvswitch_sxid")
        .collect()
}

fn gpu_sxid_findings(gpu: &Value) -> Vec<&Value> {
    gpu["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "nvswitch_sxid")
        .collect()
}

#[tokio::test]
async fn a_fatal_sxid_makes_the_nvswitch_fabric_critical() {
    let c = catalog(Scenario::NvswitchFatalSxid, None);
    let (h, text) = call(&c, "get_gpu_health", json!({})).await;
    assert_eq!(h["verdict"], "critical");
    let f = sxid_findings(&h);
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0]["severity"], "critical");
    assert!(f[0]["summary"].as_str().unwrap().contains("SXid 24007"));
    assert!(f[0]["action"].as_str().unwrap().contains("HGX baseboard"));
    assert_eq!(f[1]["severity"], "warning", "the repeated non-fatal one");
    assert!(text.contains("Fatal SXid 24007"), "{text}");
    // The GPUs themselves are not judged by the switch's errors.
    assert!(
        h["gpus"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["verdict"] == "healthy")
    );
    // Asked about one GPU whose NVLinks go through that NVSwitch (every GPU of the mock's HGX
    // board does), the fabric's findings are the GPU's and count in its verdict.
    for i in [0, 5] {
        let (one, text) = call(&c, "get_gpu_health", json!({"gpu_index": i})).await;
        assert!(sxid_findings(&one).is_empty(), "{one}");
        let g = &one["gpus"][0];
        assert_eq!(g["index"], i);
        assert_eq!(g["verdict"], "critical", "{g}");
        assert_eq!(one["counts"]["critical"], 1);
        let mine = gpu_sxid_findings(g);
        assert_eq!(mine.len(), 2, "{mine:?}");
        assert_eq!(mine[0]["severity"], "critical");
        assert!(
            mine[0]["summary"]
                .as_str()
                .unwrap()
                .contains(&format!("GPU {i}'s NVLinks go through it")),
            "{mine:?}"
        );
        assert_eq!(one["verdict"], "critical");
        assert!(text.contains("SXid 24007"), "{text}");
    }

    let (x, text) = call(&c, "analyze_xid_errors", json!({})).await;
    let n = &x["nvswitch"];
    assert_eq!(n["total_events"], 3);
    assert_eq!(n["fatal_events"], 1);
    let groups = n["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["sxid"], 24007, "newest first");
    assert_eq!(groups[0]["fatal"], true);
    assert_eq!(groups[0]["known"], true);
    assert_eq!(groups[0]["pci_bus_id"], "0000:05:00.0");
    assert_eq!(groups[0]["switch"], "nvidia-nvswitch0");
    assert_eq!(groups[0]["links"], json!([44]));
    assert_eq!(groups[1]["count"], 2);
    assert!(
        text.contains("nvidia-nvswitch0 (0000:05:00.0) SXid 24007"),
        "{text}"
    );
    assert!(x["summary"].as_str().unwrap().contains("1 fatal"));
}

#[tokio::test]
async fn sxid_lines_in_the_kernel_log_are_read_and_judged() {
    let dir = std::env::temp_dir().join(format!("gpu-mcp-tools-sxid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kmsg.log");
    let up = |mins: u64| (MOCK_UPTIME - Duration::from_secs(mins * 60)).as_micros();
    let log = format!(
        "6,100,{},-;nvidia-nvswitch3: SXid (PCI:0000:c1:00.0): 12028, Non-fatal, Link 32 egress non-posted PRIV error (First)\n\
         6,101,{},-;nvidia-nvswitch3: SXid (PCI:0000:c1:00.0): 12028, Non-fatal, Link 32 egress non-posted PRIV error\n\
         6,102,{},-;nvidia-nvswitch2: SXid (PCI:0000:b7:00.0): 20001, Non-fatal, Link 3 TX replay error\n",
        up(30),
        up(20),
        up(10)
    );
    std::fs::write(&path, log).unwrap();
    let c = catalog(Scenario::Healthy, Some(path));
    let (h, _) = call(&c, "get_gpu_health", json!({})).await;
    let f = sxid_findings(&h);
    assert_eq!(f.len(), 1, "one repeated, one single: {f:?}");
    assert_eq!(f[0]["severity"], "warning");
    assert!(
        f[0]["summary"]
            .as_str()
            .unwrap()
            .contains("nvidia-nvswitch3")
    );
    assert_eq!(h["verdict"], "warning");

    let (x, _) = call(&c, "analyze_xid_errors", json!({})).await;
    assert_eq!(x["nvswitch"]["total_events"], 3);
    assert_eq!(x["nvswitch"]["groups"][0]["sxid"], 20001, "newest first");
    // A window that ends before the lines leaves them out.
    let (old, _) = call(&c, "analyze_xid_errors", json!({"since": "5m"})).await;
    assert!(old.get("nvswitch").is_none(), "{old}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes `lines` (each `(minutes ago, message)`) as a `/dev/kmsg` capture and returns its path.
fn kmsg_file(tag: &str, lines: &[(u64, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gpu-mcp-tools-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kmsg.log");
    let mut log = String::new();
    for (seq, (mins, msg)) in lines.iter().enumerate() {
        let up = (MOCK_UPTIME - Duration::from_secs(mins * 60)).as_micros();
        log.push_str(&format!("6,{seq},{up},-;{msg}\n"));
    }
    std::fs::write(&path, log).unwrap();
    path
}

#[tokio::test]
async fn an_always_fatal_sxid_is_fatal_even_when_its_line_says_non_fatal() {
    let path = kmsg_file(
        "always-fatal",
        &[(
            10,
            "nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 23001, Non-fatal, Link 12 ingress SRC-VC buffer overflow",
        )],
    );
    let c = catalog(Scenario::Healthy, Some(path.clone()));
    let (x, text) = call(&c, "analyze_xid_errors", json!({})).await;
    let g = &x["nvswitch"]["groups"][0];
    assert_eq!(g["sxid"], 23001);
    assert_eq!(g["fatal"], true);
    assert_eq!(g["always_fatal"], true);
    assert_eq!(g["severity"], "critical");
    assert_eq!(x["nvswitch"]["fatal_events"], 1);
    assert!(text.contains("[always fatal]"), "{text}");
    let (h, _) = call(&c, "get_gpu_health", json!({})).await;
    let f = sxid_findings(&h);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["severity"], "critical");
    assert!(
        f[0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("Always-fatal SXid 23001")
    );
    assert!(f[0]["action"].as_str().unwrap().contains("always fatal"));
    assert_eq!(h["verdict"], "critical");
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_switch_the_gpu_does_not_use_stands_beside_its_answer() {
    // 0000:c1:00.0 is none of the mock board's NVSwitches.
    let path = kmsg_file(
        "beside",
        &[
            (
                10,
                "nvidia-nvswitch3: SXid (PCI:0000:c1:00.0): 24007, Fatal, Link 4 sourcetrack timeout error",
            ),
            (
                5,
                "nvidia-nvswitch2: SXid (PCI:unreadable): 24007, Fatal, Link 4 sourcetrack timeout error",
            ),
        ],
    );
    let c = catalog(Scenario::Healthy, Some(path.clone()));
    let (one, _) = call(&c, "get_gpu_health", json!({"gpu_index": 2})).await;
    let g = &one["gpus"][0];
    assert_eq!(g["verdict"], "healthy", "{g}");
    assert!(gpu_sxid_findings(g).is_empty());
    assert_eq!(one["counts"]["healthy"], 1);
    let f = sxid_findings(&one);
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(f.iter().all(|f| f["severity"] == "critical"));
    let said = |i: usize| f[i]["summary"].as_str().unwrap();
    assert!(
        said(0).contains("Whether GPU 2's NVLinks go through it is not known"),
        "{f:?}"
    );
    assert!(
        said(1).contains("None of GPU 2's NVLinks goes through it"),
        "{f:?}"
    );
    assert_eq!(
        one["verdict"], "critical",
        "the node's fabric, beside the GPU"
    );
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
