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
    // Asked about one GPU, the node-level rule stays out of the answer.
    let (one, _) = call(&c, "get_gpu_health", json!({"gpu_index": 0})).await;
    assert!(sxid_findings(&one).is_empty());

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
