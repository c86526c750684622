//! What the 2026-07-28 revision changes for a request, seen through `Session::answer`: the log
//! level travels in the request's own `_meta` (and only the records of its run at or above it
//! reach its notification channel), the handshake methods are gone (`-32601`, HTTP 404), a
//! request without its envelope has invalid params (`-32602`, HTTP 400), and a resource that
//! does not exist is `-32602` (SEP-2164). Older revisions keep `logging/setLevel`, `ping` and
//! `-32002`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use futures::future::BoxFuture;
use gpu_mcp_protocol::mcp::LoggingLevel;
use gpu_mcp_protocol::{CallToolResult, JsonObject, Tool};
use gpu_mcp_service::{
    CallContext, CallError, HttpHeaders, Incoming, LogSink, McpServer, Reply, ServerInfo,
    SessionPolicy, ToolCatalog, tool_definition,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const V: &str = "2026-07-28";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoInput {}

#[derive(Debug, Serialize, JsonSchema)]
struct Done {
    done: bool,
}

/// `noisy` writes one record at each of three levels to the sink while it runs.
struct Noisy {
    sink: LogSink,
}

impl ToolCatalog for Noisy {
    fn tools(&self) -> Vec<Tool> {
        vec![tool_definition::<NoInput, Done>(
            "noisy",
            "Noisy",
            "Logs three records.",
        )]
    }

    fn call<'a>(
        &'a self,
        _name: &'a str,
        _arguments: Option<JsonObject>,
        _ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move {
            for (level, message) in [
                (LoggingLevel::Debug, "detail"),
                (LoggingLevel::Warning, "node slow"),
                (LoggingLevel::Error, "node gone"),
            ] {
                self.sink.log(level, "fleet", json!({"message": message}));
            }
            Ok(CallToolResult::from_structured(json!({"done": true})))
        })
    }
}

fn server() -> McpServer {
    let sink = LogSink::new();
    McpServer::with_log_sink(
        ServerInfo {
            name: "test".into(),
            version: "0.0.0".into(),
            title: None,
            instructions: None,
        },
        Arc::new(Noisy { sink: sink.clone() }),
        SessionPolicy::default(),
        sink,
    )
}

fn envelope(extra: Value) -> Value {
    let mut meta = json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    if let (Some(meta), Some(extra)) = (meta.as_object_mut(), extra.as_object()) {
        meta.extend(extra.clone());
    }
    meta
}

fn body(method: &str, params: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 5, "method": method, "params": params}))
        .expect("a request serializes")
}

fn headers(method: &str, name: Option<&str>) -> HttpHeaders {
    HttpHeaders {
        protocol_version: Some(V.into()),
        method: Some(method.into()),
        name: name.map(str::to_owned),
    }
}

fn decoded(reply: &Reply) -> Value {
    serde_json::from_slice(reply.body().expect("a reply")).expect("JSON")
}

/// Calls `noisy` over stdio with `meta` and returns the reply and every notification it sent.
async fn call_noisy(meta: Value) -> (Value, Vec<Value>) {
    let session = server().session();
    let (tx, mut rx) = mpsc::channel(16);
    let line = body(
        "tools/call",
        json!({"name": "noisy", "arguments": {}, "_meta": meta}),
    );
    let incoming = Incoming::from_line(&line)
        .expect("a request")
        .with_notifications(tx);
    let reply = decoded(&session.answer(incoming).await);
    let mut notes = Vec::new();
    while let Ok(note) = rx.try_recv() {
        notes.push(serde_json::from_slice(&note).expect("JSON"));
    }
    (reply, notes)
}

#[tokio::test]
async fn a_request_log_level_gets_that_requests_messages_at_or_above_it() {
    let (reply, notes) = call_noisy(envelope(
        json!({"io.modelcontextprotocol/logLevel": "warning"}),
    ))
    .await;
    assert_eq!(
        reply["result"]["structuredContent"]["done"], true,
        "{reply}"
    );
    let seen: Vec<(&str, &str)> = notes
        .iter()
        .map(|n| {
            assert_eq!(n["method"], "notifications/message");
            assert_eq!(n["params"]["logger"], "fleet");
            (
                n["params"]["level"].as_str().unwrap(),
                n["params"]["data"]["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [("warning", "node slow"), ("error", "node gone")]);
}

#[tokio::test]
async fn without_a_request_log_level_no_message_is_sent() {
    let (reply, notes) = call_noisy(envelope(json!({}))).await;
    assert_eq!(
        reply["result"]["structuredContent"]["done"], true,
        "{reply}"
    );
    assert_eq!(notes, Vec::<Value>::new());
    // The key means nothing before 2026-07-28: there the session's level decides.
    let (_, notes) = call_noisy(json!({"io.modelcontextprotocol/logLevel": "debug"})).await;
    assert_eq!(notes, Vec::<Value>::new());
}

#[tokio::test]
async fn a_request_log_level_that_is_no_level_is_invalid_params() {
    let (reply, notes) = call_noisy(envelope(
        json!({"io.modelcontextprotocol/logLevel": "loud"}),
    ))
    .await;
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    assert!(notes.is_empty());
}

#[tokio::test]
async fn the_handshake_methods_do_not_exist_in_2026_07_28() {
    let server = server();
    for method in ["initialize", "ping", "logging/setLevel"] {
        let incoming = Incoming::from_http(
            headers(method, None),
            &body(method, json!({"_meta": envelope(json!({}))})),
        )
        .expect("a request");
        let reply = server.session().answer(incoming).await;
        assert_eq!(reply.status(), 404, "{method}");
        let answer = decoded(&reply);
        assert_eq!(answer["error"]["code"], -32601, "{method}: {answer}");
        assert_eq!(answer["id"], 5);
    }
    // Over stdio the envelope alone says the same.
    let line = body("ping", json!({"_meta": envelope(json!({}))}));
    let reply = server
        .session()
        .answer(Incoming::from_line(&line).expect("a request"))
        .await;
    assert_eq!(decoded(&reply)["error"]["code"], -32601);
    // The handshake revisions keep them.
    let line = body("ping", json!({}));
    let reply = server
        .session()
        .answer(Incoming::from_line(&line).expect("a request"))
        .await;
    assert_eq!(decoded(&reply)["result"], json!({}));
}

#[tokio::test]
async fn a_2026_07_28_request_without_its_envelope_has_invalid_params() {
    let server = server();
    let no_version = json!({"_meta": {"io.modelcontextprotocol/clientCapabilities": {}}});
    for params in [json!({}), no_version] {
        let incoming = Incoming::from_http(
            headers("server/discover", None),
            &body("server/discover", params.clone()),
        )
        .expect("a request");
        let reply = server.session().answer(incoming).await;
        assert_eq!(reply.status(), 400, "{params}");
        let answer = decoded(&reply);
        assert_eq!(answer["error"]["code"], -32602, "{params}: {answer}");
        assert_eq!(answer["id"], 5);
    }
    // A body that names another revision than the header still disagrees with it.
    let mut other = envelope(json!({}));
    other["io.modelcontextprotocol/protocolVersion"] = json!("2025-11-25");
    let incoming = Incoming::from_http(
        headers("server/discover", None),
        &body("server/discover", json!({"_meta": other})),
    )
    .expect("a request");
    let reply = server.session().answer(incoming).await;
    assert_eq!(decoded(&reply)["error"]["code"], -32020);
}
