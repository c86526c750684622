#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A reused answer goes out through the server core as the very bytes a computed one does, with
//! the caller's own id, in every revision the server speaks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use gpu_mcp_backend::{GpuBackend, MockBackend, MockConfig, Scenario};
use gpu_mcp_model::{BackendKind, EventRecorderStatus, NodeSnapshot, XidEvent};
use gpu_mcp_service::{Incoming, McpServer, Outcome, ServerInfo, Session};
use gpu_mcp_tools::{AgentCatalog, AgentCatalogConfig};
use serde_json::{Value, json};

/// The mock fleet, naming the generation it is told (0: none, so nothing is reused).
struct Generations {
    mock: MockBackend,
    generation: AtomicU64,
}

impl GpuBackend for Generations {
    fn snapshot(&self) -> BoxFuture<'_, gpu_mcp_backend::Result<NodeSnapshot>> {
        self.mock.snapshot()
    }
    fn xid_events(&self) -> Vec<XidEvent> {
        self.mock.xid_events()
    }
    fn xid_recorder_status(&self) -> EventRecorderStatus {
        self.mock.xid_recorder_status()
    }
    fn kind(&self) -> BackendKind {
        self.mock.kind()
    }
    fn fresh_generation(&self) -> Option<u64> {
        Some(self.generation.load(Ordering::SeqCst)).filter(|g| *g != 0)
    }
}

fn server(generation: u64) -> McpServer {
    let backend = Arc::new(Generations {
        mock: MockBackend::new(MockConfig {
            gpus: 4,
            scenario: Scenario::Xid79,
            ..MockConfig::default()
        })
        .unwrap(),
        generation: AtomicU64::new(generation),
    });
    let config = AgentCatalogConfig {
        now: Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000)),
        ..AgentCatalogConfig::default()
    };
    McpServer::new(
        ServerInfo {
            name: "shared-test".into(),
            version: "0.0.0".into(),
            title: Some("Shared".into()),
            instructions: None,
        },
        Arc::new(AgentCatalog::new(backend, config)),
    )
}

/// The revisions a call is made in: a handshake revision (after `initialize`), or 2026-07-28
/// through the envelope.
const REVISIONS: [&str; 5] = [
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

async fn session(server: &McpServer, revision: &str) -> Session {
    let session = server.session();
    if revision != "2026-07-28" {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": revision, "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"}}});
        let reply = session
            .answer(Incoming::from_line(init.to_string().as_bytes()).unwrap())
            .await;
        assert_eq!(reply.outcome(), Outcome::Ok);
    }
    session
}

/// The reply bytes to `get_gpu_health` with `id`, in `revision`.
async fn call(server: &McpServer, revision: &str, id: &Value, arguments: Value) -> String {
    let mut params = json!({"name": "get_gpu_health", "arguments": arguments});
    if revision == "2026-07-28" {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": revision,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"},
        });
    }
    let request = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
    let reply = session(server, revision)
        .await
        .answer(Incoming::from_line(request.to_string().as_bytes()).unwrap())
        .await;
    assert_eq!(reply.outcome(), Outcome::Ok);
    String::from_utf8(reply.into_body().unwrap()).unwrap()
}

/// `bytes` with the id written as `id` replaced by `1`, checking it is written there.
fn with_id_one(bytes: &str, id: &Value) -> String {
    let prefix = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":"#);
    let rest = bytes
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{bytes}"));
    format!(r#"{{"jsonrpc":"2.0","id":1,"result":{rest}"#)
}

#[tokio::test]
async fn a_reused_answer_is_the_computed_bytes_with_the_callers_id_in_every_revision() {
    let ids = [
        json!(1),
        json!(-9_007_199_254_740_993_i64),
        json!("req-7"),
        json!("quote \" backslash \\ newline \n tab \t unicode \u{1} é"),
    ];
    for revision in REVISIONS {
        // Computed every time (no generation), and reused (one generation).
        let computed = call(&server(0), revision, &json!(1), json!({})).await;
        let reusing = server(1);
        let first = call(&reusing, revision, &json!(1), json!({})).await;
        assert_eq!(first, computed, "{revision}: the answer kept");
        for id in &ids {
            let hit = call(&reusing, revision, id, json!({})).await;
            assert_eq!(with_id_one(&hit, id), computed, "{revision}, id {id}");
            let wire: Value = serde_json::from_str(&hit).unwrap();
            assert_eq!(&wire["id"], id, "{revision}");
        }
        let wire: Value = serde_json::from_str(&computed).unwrap();
        let result = &wire["result"];
        assert_eq!(
            result["structuredContent"]["verdict"] == "critical",
            revision >= "2025-06-18",
            "{revision}: {result}"
        );
        let stateless = revision == "2026-07-28";
        assert_eq!(result["resultType"] == "complete", stateless, "{revision}");
        assert_eq!(
            result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "shared-test",
            stateless,
            "{revision}"
        );
    }
}

#[tokio::test]
async fn answers_of_other_revisions_and_arguments_do_not_mix() {
    let reusing = server(1);
    // Reused across revisions, each shaped as its own: older revisions get the data as text.
    let new = call(&reusing, "2025-11-25", &json!(1), json!({})).await;
    let old = call(&reusing, "2025-03-26", &json!(1), json!({})).await;
    let stateless = call(&reusing, "2026-07-28", &json!(1), json!({})).await;
    let [new, old, stateless]: [Value; 3] =
        [new, old, stateless].map(|b| serde_json::from_str(&b).unwrap());
    assert!(old["result"].get("structuredContent").is_none());
    let data: Value =
        serde_json::from_str(old["result"]["content"][1]["text"].as_str().unwrap()).unwrap();
    assert_eq!(data, new["result"]["structuredContent"]);
    assert_eq!(
        stateless["result"]["structuredContent"],
        new["result"]["structuredContent"]
    );
    assert!(new["result"].get("resultType").is_none());
    // Other arguments are another answer.
    let summary = call(
        &reusing,
        "2025-11-25",
        &json!(2),
        json!({"detail": "summary"}),
    )
    .await;
    let summary: Value = serde_json::from_str(&summary).unwrap();
    assert_ne!(
        summary["result"]["structuredContent"],
        new["result"]["structuredContent"]
    );
}
