#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Identical calls within one snapshot generation reuse one answer; a new generation, or a backend
//! that names none, computes the answer again. Also the terminal rendering of the health check.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures::future::BoxFuture;
use gpu_mcp_backend::{GpuBackend, MockBackend, MockConfig, Scenario};
use gpu_mcp_model::{BackendKind, EventRecorderStatus, NodeSnapshot, XidEvent};
use gpu_mcp_protocol::JsonObject;
use gpu_mcp_service::{CallContext, ToolCatalog};
use gpu_mcp_tools::{AgentCatalog, AgentCatalogConfig};
use serde_json::Value;

/// Serves the healthy or the sick fleet, and the generation it is told (0: none).
struct Switch {
    healthy: MockBackend,
    sick: MockBackend,
    use_sick: AtomicBool,
    generation: AtomicU64,
}

impl Switch {
    fn current(&self) -> &MockBackend {
        if self.use_sick.load(Ordering::SeqCst) {
            &self.sick
        } else {
            &self.healthy
        }
    }
}

impl GpuBackend for Switch {
    fn snapshot(&self) -> BoxFuture<'_, gpu_mcp_backend::Result<NodeSnapshot>> {
        self.current().snapshot()
    }
    fn xid_events(&self) -> Vec<XidEvent> {
        self.current().xid_events()
    }
    fn xid_recorder_status(&self) -> EventRecorderStatus {
        self.current().xid_recorder_status()
    }
    fn kind(&self) -> BackendKind {
        self.current().kind()
    }
    fn fresh_generation(&self) -> Option<u64> {
        Some(self.generation.load(Ordering::SeqCst)).filter(|g| *g != 0)
    }
}

fn mock(scenario: Scenario) -> MockBackend {
    MockBackend::new(MockConfig {
        gpus: 4,
        scenario,
        ..MockConfig::default()
    })
    .unwrap()
}

async fn verdict(c: &AgentCatalog, args: &str) -> String {
    let args: JsonObject = serde_json::from_str(args).unwrap();
    let r = c
        .call("get_gpu_health", Some(args), CallContext::default())
        .await
        .unwrap();
    let v: Value = r.structured_value().unwrap().into_owned();
    v["verdict"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_answer_is_reused_within_its_generation_only() {
    let backend = Arc::new(Switch {
        healthy: mock(Scenario::Healthy),
        sick: mock(Scenario::Xid79),
        use_sick: AtomicBool::new(false),
        generation: AtomicU64::new(1),
    });
    let catalog = AgentCatalog::new(backend.clone(), AgentCatalogConfig::default());
    assert_eq!(verdict(&catalog, "{}").await, "healthy");

    // The GPUs changed but the backend still names the same snapshot: the answer is reused.
    backend.use_sick.store(true, Ordering::SeqCst);
    assert_eq!(verdict(&catalog, "{}").await, "healthy");
    // Other arguments are another answer, computed from what the backend serves now.
    assert_eq!(verdict(&catalog, r#"{"xid_since":"1h"}"#).await, "critical");

    // A new generation computes again.
    backend.generation.store(2, Ordering::SeqCst);
    assert_eq!(verdict(&catalog, "{}").await, "critical");

    // No generation (no fresh snapshot): every call is computed.
    backend.generation.store(0, Ordering::SeqCst);
    backend.use_sick.store(false, Ordering::SeqCst);
    assert_eq!(verdict(&catalog, "{}").await, "healthy");
    backend.use_sick.store(true, Ordering::SeqCst);
    assert_eq!(verdict(&catalog, "{}").await, "critical");
}

#[tokio::test]
async fn the_terminal_check_lists_every_gpu_and_each_finding_with_its_action() {
    let catalog = AgentCatalog::new(
        Arc::new(mock(Scenario::Xid79)),
        AgentCatalogConfig::default(),
    );
    let (text, verdict) = gpu_mcp_tools::terminal::check_health(&catalog)
        .await
        .unwrap();
    assert_eq!(verdict.as_str(), "critical");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("CRITICAL"), "{text}");
    let header = lines.iter().position(|l| l.contains("Bus-Id")).unwrap();
    for i in 0..4 {
        assert!(
            lines[header + 1 + i]
                .trim_start()
                .starts_with(&i.to_string()),
            "row of GPU {i} missing:\n{text}"
        );
    }
    assert!(lines[header + 1].contains("CRITICAL"), "{text}");
    assert!(lines[header + 2].contains("HEALTHY"), "{text}");
    assert!(
        text.contains("Findings:") && text.contains("action:"),
        "{text}"
    );
    let healthy = AgentCatalog::new(
        Arc::new(mock(Scenario::Healthy)),
        AgentCatalogConfig::default(),
    );
    let (text, verdict) = gpu_mcp_tools::terminal::check_health(&healthy)
        .await
        .unwrap();
    assert_eq!(verdict.as_str(), "healthy");
    assert!(!text.contains("Findings:"), "{text}");
}
