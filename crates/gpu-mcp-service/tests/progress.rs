//! A `tools/call` with a `progressToken` hands the tool a `Progress` that sends
//! `notifications/progress` on the request's notification channel; without a token or a
//! channel the tool gets none.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use futures::future::BoxFuture;
use gpu_mcp_protocol::{CallToolResult, JsonObject, Tool};
use gpu_mcp_service::{
    CallContext, CallError, Incoming, McpServer, ServerInfo, ToolCatalog, tool_definition,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoInput {}

#[derive(Debug, Serialize, JsonSchema)]
struct Steps {
    reported: bool,
}

/// `steps` reports three steps when it may, and says whether it could.
struct StepCatalog;

impl ToolCatalog for StepCatalog {
    fn tools(&self) -> Vec<Tool> {
        vec![tool_definition::<NoInput, Steps>(
            "steps",
            "Steps",
            "Three steps.",
        )]
    }

    fn call<'a>(
        &'a self,
        _name: &'a str,
        _arguments: Option<JsonObject>,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move {
            if let Some(progress) = &ctx.progress {
                for done in 1..=3 {
                    progress.report(done, 3, &format!("step {done} of 3"));
                }
            }
            Ok(CallToolResult::from_structured(
                json!({"reported": ctx.progress.is_some()}),
            ))
        })
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
        Arc::new(StepCatalog),
    )
}

fn line(meta: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "steps", "arguments": {}, "_meta": meta}
    }))
    .expect("a request serializes")
}

fn reported(reply: &gpu_mcp_service::Reply) -> Value {
    let body: Value = serde_json::from_slice(reply.body().expect("a reply")).expect("JSON");
    body["result"]["structuredContent"]["reported"].clone()
}

#[tokio::test]
async fn a_progress_token_gets_progress_notifications() {
    let session = server().session();
    let (tx, mut rx) = mpsc::channel(16);
    let incoming = Incoming::from_line(&line(json!({"progressToken": "fan-1"})))
        .expect("a request")
        .with_notifications(tx);
    let reply = session.answer(incoming).await;
    assert_eq!(reported(&reply), true);
    for done in 1..=3 {
        let note: Value =
            serde_json::from_slice(&rx.recv().await.expect("a notification")).expect("JSON");
        assert_eq!(note["method"], "notifications/progress");
        assert_eq!(note["params"]["progressToken"], "fan-1");
        assert_eq!(note["params"]["progress"], done);
        assert_eq!(note["params"]["total"], 3);
        assert_eq!(note["params"]["message"], format!("step {done} of 3"));
    }
}

#[tokio::test]
async fn no_token_or_no_channel_means_no_progress() {
    let session = server().session();
    let (tx, _rx) = mpsc::channel(16);
    let without_token = Incoming::from_line(&line(json!({})))
        .expect("a request")
        .with_notifications(tx.clone());
    assert_eq!(reported(&session.answer(without_token).await), false);
    let bad_token = Incoming::from_line(&line(json!({"progressToken": {"no": 1}})))
        .expect("a request")
        .with_notifications(tx);
    assert_eq!(reported(&session.answer(bad_token).await), false);
    let without_channel =
        Incoming::from_line(&line(json!({"progressToken": 5}))).expect("a request");
    assert_eq!(reported(&session.answer(without_channel).await), false);
}

#[tokio::test]
async fn a_request_that_may_notify_says_so_and_one_that_says_not_sends_nothing() {
    let session = server().session();
    for (meta, may) in [
        (json!({"progressToken": "p"}), true),
        (json!({"progressToken": 3}), true),
        (json!({"io.modelcontextprotocol/logLevel": "debug"}), true),
        (json!({}), false),
        (json!({"other": 1}), false),
    ] {
        let incoming = Incoming::from_line(&line(meta.clone())).expect("a request");
        assert_eq!(incoming.may_notify(), may, "{meta}");
        if !may {
            // Given a channel anyway, it stays silent.
            let (tx, mut rx) = mpsc::channel(16);
            let reply = session.answer(incoming.with_notifications(tx)).await;
            assert_eq!(reported(&reply), false);
            assert!(rx.try_recv().is_err(), "{meta} sent a notification");
        }
    }
    let notification = Incoming::from_line(
        br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"_meta":{"progressToken":1},"requestId":1}}"#,
    )
    .expect("a notification");
    assert!(
        !notification.may_notify(),
        "a notification is answered by nothing"
    );
}
