//! Tool results whose structured content is encoded once by the tool
//! (`CallToolResult::structured_encoded`) reach the wire as the same JSON a `Value` result gives,
//! in every revision.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use futures::future::BoxFuture;
use gpu_mcp_protocol::{
    CallToolResult, JsonObject, Message, Request, Response, SharedCallToolResult, Tool,
};
use gpu_mcp_service::{
    CallContext, CallError, Incoming, McpServer, Outcome, RequestContext, ServerInfo, ToolAnswer,
    ToolCatalog, tool_definition,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoInput {}

#[derive(Debug, Serialize, JsonSchema)]
struct Report {
    zeta: Vec<u32>,
    alpha: String,
}

fn report() -> Report {
    Report {
        zeta: vec![3, 1],
        alpha: "line\n\"quoted\"".to_owned(),
    }
}

/// `encoded` answers with encoded structured content, `plain` with the same content as a `Value`;
/// through `call_shared`, `shared` and `failing` answer a result shared by every call.
struct Catalog {
    shared: SharedCallToolResult,
    failing: SharedCallToolResult,
}

impl ToolCatalog for Catalog {
    fn tools(&self) -> Vec<Tool> {
        vec![
            tool_definition::<NoInput, Report>("encoded", "Encoded", "Encoded result."),
            tool_definition::<NoInput, Report>("plain", "Plain", "Value result."),
            tool_definition::<NoInput, Report>("shared", "Shared", "Shared result."),
            tool_definition::<NoInput, Report>("failing", "Failing", "Shared failure."),
        ]
    }

    fn call_shared<'a>(
        &'a self,
        name: &'a str,
        arguments: Option<JsonObject>,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<ToolAnswer, CallError>> {
        Box::pin(async move {
            match name {
                "shared" => Ok(ToolAnswer::Shared(self.shared.clone())),
                "failing" => Ok(ToolAnswer::Shared(self.failing.clone())),
                _ => self.call(name, arguments, ctx).await.map(ToolAnswer::Own),
            }
        })
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        _arguments: Option<JsonObject>,
        _ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move {
            match name {
                "encoded" => Ok(CallToolResult::structured_encoded(&report(), "summary")),
                "plain" => Ok(CallToolResult::structured(
                    serde_json::to_value(report()).unwrap(),
                    "summary",
                )),
                other => Err(CallError::UnknownTool(other.to_owned())),
            }
        })
    }
}

fn server() -> McpServer {
    McpServer::new(
        ServerInfo {
            name: "encoded-test".into(),
            version: "0.0.0".into(),
            title: None,
            instructions: None,
        },
        Arc::new(Catalog {
            shared: SharedCallToolResult::new(CallToolResult::structured_encoded(
                &report(),
                "summary",
            ))
            .unwrap(),
            failing: SharedCallToolResult::new(CallToolResult::error("The GPUs cannot be read."))
                .unwrap(),
        }),
    )
}

/// Calls `tool` on a fresh session, after `initialize` with `version` when given; returns the
/// response and its wire bytes decoded again.
async fn call(tool: &str, version: Option<&str>, meta: Option<Value>) -> (Response, Value) {
    let session = server().session();
    if let Some(v) = version {
        let init = json!({"protocolVersion": v, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}});
        let r = session
            .handle(
                Message::Request(Request::new(0, "initialize", Some(init))),
                RequestContext::stdio(),
            )
            .await
            .unwrap();
        assert!(r.error.is_none(), "{r:?}");
    }
    let mut params = json!({"name": tool});
    if let Some(m) = meta {
        params["_meta"] = m;
    }
    let r = session
        .handle(
            Message::Request(Request::new(1, "tools/call", Some(params))),
            RequestContext::stdio(),
        )
        .await
        .unwrap();
    let wire: Value = serde_json::from_slice(&gpu_mcp_protocol::encode(&r)).unwrap();
    (r, wire)
}

#[tokio::test]
async fn encoded_results_go_out_without_a_value_and_match_value_results() {
    let (r, wire) = call("encoded", None, None).await;
    assert!(
        r.result.is_none(),
        "the encoded result was turned into a Value"
    );
    assert!(r.encoded_result().is_some());
    let (_, plain) = call("plain", None, None).await;
    assert_eq!(wire, plain);
    assert_eq!(wire["result"]["structuredContent"]["zeta"], json!([3, 1]));
    assert_eq!(wire["result"]["content"][0]["text"], "summary");
}

#[tokio::test]
async fn older_revisions_drop_encoded_structured_content() {
    for version in ["2024-11-05", "2025-03-26"] {
        let (_, wire) = call("encoded", Some(version), None).await;
        let (_, plain) = call("plain", Some(version), None).await;
        assert!(
            wire["result"].get("structuredContent").is_none(),
            "{version}"
        );
        // The words, then the data as JSON (the encoded form keeps its own key order).
        assert_eq!(wire["result"]["content"][0]["text"], "summary");
        let data = |r: &Value| -> Value {
            serde_json::from_str(r["result"]["content"][1]["text"].as_str().unwrap()).unwrap()
        };
        assert_eq!(data(&wire), data(&plain), "{version}");
        assert_eq!(data(&wire)["alpha"], report().alpha);
    }
    let (_, wire) = call("encoded", Some("2025-06-18"), None).await;
    assert_eq!(wire["result"]["structuredContent"]["alpha"], report().alpha);
}

#[tokio::test]
async fn envelope_requests_get_the_stateless_members_on_encoded_results() {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "probe", "version": "0"},
    });
    let (_, wire) = call("encoded", None, Some(meta.clone())).await;
    let (_, plain) = call("plain", None, Some(meta)).await;
    assert_eq!(wire, plain);
    assert_eq!(wire["result"]["resultType"], "complete");
    assert_eq!(
        wire["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "encoded-test"
    );
}

/// The reply bytes and outcome of `tool` with `id`, on a fresh session.
async fn bytes(tool: &str, id: Value, meta: Option<Value>) -> (String, Outcome) {
    let mut params = json!({"name": tool});
    if let Some(m) = meta {
        params["_meta"] = m;
    }
    let request = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
    let reply = server()
        .session()
        .answer(Incoming::from_line(request.to_string().as_bytes()).unwrap())
        .await;
    let outcome = reply.outcome();
    (
        String::from_utf8(reply.into_body().unwrap()).unwrap(),
        outcome,
    )
}

#[tokio::test]
async fn shared_results_are_the_bytes_of_encoded_ones_with_the_callers_id() {
    let envelope = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "probe", "version": "0"},
    });
    for meta in [None, Some(envelope)] {
        let (encoded, _) = bytes("encoded", json!(1), meta.clone()).await;
        for id in [json!(1), json!(42), json!("x\"y\\z\n")] {
            let (shared, outcome) = bytes("shared", id.clone(), meta.clone()).await;
            assert_eq!(outcome, Outcome::Ok);
            let own_id = format!(r#""id":{id},"#);
            assert_eq!(shared.replacen(&own_id, r#""id":1,"#, 1), encoded, "{id}");
        }
    }
    // A shared failure is still a tool error.
    let (failing, outcome) = bytes("failing", json!(1), None).await;
    assert_eq!(outcome, Outcome::ToolError);
    let wire: Value = serde_json::from_str(&failing).unwrap();
    assert_eq!(wire["result"]["isError"], true);
}

#[tokio::test]
async fn older_revisions_shape_shared_results_as_they_shape_others() {
    for version in ["2024-11-05", "2025-03-26"] {
        let (_, shared) = call("shared", Some(version), None).await;
        let (_, encoded) = call("encoded", Some(version), None).await;
        assert_eq!(shared, encoded, "{version}");
        assert!(shared["result"].get("structuredContent").is_none());
    }
}
