//! Log messages reach a session's client as `notifications/message`, filtered by the level the
//! client set with `logging/setLevel`, and not at all before it set one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use futures::future::BoxFuture;
use gpu_mcp_protocol::mcp::LoggingLevel;
use gpu_mcp_protocol::{CallToolResult, JsonObject, Message, Request, Tool};
use gpu_mcp_service::{
    CallContext, CallError, McpServer, RequestContext, ServerInfo, Session, ToolCatalog,
};
use serde_json::{Value, json};

struct NoTools;

impl ToolCatalog for NoTools {
    fn tools(&self) -> Vec<Tool> {
        Vec::new()
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        _arguments: Option<JsonObject>,
        _ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move { Err(CallError::UnknownTool(name.to_owned())) })
    }
}

fn server() -> McpServer {
    McpServer::new(
        ServerInfo {
            name: "test".into(),
            version: "0.0.0".into(),
            title: None,
            instructions: None,
        },
        Arc::new(NoTools),
    )
}

async fn request(session: &Session, id: i64, method: &str, params: Value) -> Value {
    let message = Message::Request(Request::new(id, method, Some(params)));
    let response = session
        .handle(message, RequestContext::stdio())
        .await
        .expect("a request is answered");
    serde_json::to_value(response).expect("a response serializes")
}

fn decode(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("a notification is JSON")
}

#[tokio::test]
async fn logging_capability_is_declared() {
    let session = server().session();
    let init = request(
        &session,
        1,
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    )
    .await;
    assert_eq!(init["result"]["capabilities"]["logging"], json!({}));
}

#[tokio::test]
async fn messages_below_the_set_level_are_held_back() {
    let server = server();
    let session = server.session();
    let mut messages = session.log_messages().expect("the first stream");
    let set = request(&session, 1, "logging/setLevel", json!({"level": "warning"})).await;
    assert_eq!(set["result"], json!({}));

    let sink = server.log_sink();
    sink.log(LoggingLevel::Info, "fleet", json!({"message": "routine"}));
    sink.log(
        LoggingLevel::Error,
        "fleet",
        json!({"message": "node stopped answering", "node": "gpu-1"}),
    );
    let first = decode(&messages.next().await.expect("a message"));
    assert_eq!(first["jsonrpc"], "2.0");
    assert_eq!(first["method"], "notifications/message");
    assert!(first.get("id").is_none());
    assert_eq!(first["params"]["level"], "error");
    assert_eq!(first["params"]["logger"], "fleet");
    assert_eq!(first["params"]["data"]["node"], "gpu-1");
}

#[tokio::test]
async fn nothing_is_sent_before_a_level_is_set() {
    let server = server();
    let session = server.session();
    let mut messages = session.log_messages().expect("the first stream");
    let sink = server.log_sink();
    sink.log(
        LoggingLevel::Emergency,
        "fleet",
        json!({"message": "unasked"}),
    );
    request(&session, 1, "logging/setLevel", json!({"level": "debug"})).await;
    sink.log(LoggingLevel::Debug, "fleet", json!({"message": "asked"}));
    let first = decode(&messages.next().await.expect("a message"));
    assert_eq!(first["params"]["data"]["message"], "asked");
    assert_eq!(first["params"]["level"], "debug");
}

#[tokio::test]
async fn each_session_has_its_own_level() {
    let server = server();
    let quiet = server.session();
    let loud = server.session();
    let mut quiet_messages = quiet.log_messages().expect("the first stream");
    let mut loud_messages = loud.log_messages().expect("the first stream");
    request(&quiet, 1, "logging/setLevel", json!({"level": "critical"})).await;
    request(&loud, 1, "logging/setLevel", json!({"level": "info"})).await;
    let sink = server.log_sink();
    sink.log(LoggingLevel::Notice, "discovery", json!({"message": "a"}));
    sink.log(LoggingLevel::Alert, "discovery", json!({"message": "b"}));
    let loud_first = decode(&loud_messages.next().await.expect("a message"));
    assert_eq!(loud_first["params"]["data"]["message"], "a");
    let quiet_first = decode(&quiet_messages.next().await.expect("a message"));
    assert_eq!(quiet_first["params"]["data"]["message"], "b");
}

#[tokio::test]
async fn an_unknown_level_is_refused() {
    let session = server().session();
    let set = request(&session, 1, "logging/setLevel", json!({"level": "verbose"})).await;
    assert_eq!(set["error"]["code"], -32602);
    assert_eq!(session.log_level(), None);
}

#[tokio::test]
async fn one_stream_of_a_session_carries_its_messages_at_a_time() {
    let server = server();
    let session = server.session();
    request(&session, 1, "logging/setLevel", json!({"level": "info"})).await;
    let first = session.log_messages().expect("the first stream");
    assert!(
        session.log_messages().is_none(),
        "a second stream would send every message twice"
    );
    drop(first);
    let mut second = session
        .log_messages()
        .expect("taken over once the first is gone");
    server
        .log_sink()
        .log(LoggingLevel::Warning, "fleet", json!({"message": "once"}));
    let message = decode(&second.next().await.expect("a message"));
    assert_eq!(message["params"]["data"]["message"], "once");
}
