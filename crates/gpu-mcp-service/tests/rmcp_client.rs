//! Interoperability with the official Rust SDK's client (rmcp), driving a `Session` through an
//! in-memory newline-delimited pipe: the default client (which asks for 2026-07-28 in
//! `initialize`), a client pinned to each handshake revision, and the 2026-07-28 discover-first
//! lifecycle.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use futures::future::BoxFuture;
use gpu_mcp_protocol::{CallToolResult, JsonObject, Tool, encode_line, parse_message};
use gpu_mcp_service::{
    CallContext, CallError, McpServer, RequestContext, ServerInfo, ToolCatalog, parse_arguments,
    tool_definition,
};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;

/// Echo input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EchoInput {
    /// Text to echo.
    text: String,
}

#[derive(Debug, Serialize, JsonSchema)]
struct EchoOutput {
    text: String,
}

struct Echo;

impl ToolCatalog for Echo {
    fn tools(&self) -> Vec<Tool> {
        vec![tool_definition::<EchoInput, EchoOutput>(
            "echo",
            "Echo",
            "Echoes text.",
        )]
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        arguments: Option<JsonObject>,
        _ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move {
            if name != "echo" {
                return Err(CallError::UnknownTool(name.to_owned()));
            }
            Ok(match parse_arguments::<EchoInput>(arguments) {
                Ok(input) => CallToolResult::from_structured(json!({ "text": input.text })),
                Err(e) => e,
            })
        })
    }
}

/// A minimal newline-delimited server loop over one end of a pipe, answering concurrently.
fn spawn_server(stream: DuplexStream) {
    let server = McpServer::new(
        ServerInfo {
            name: "rmcp-interop".into(),
            version: "0.0.1".into(),
            title: Some("Interop".into()),
            instructions: None,
        },
        Arc::new(Echo),
    );
    let session = server.session();
    let (read, mut write) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if write.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let session = session.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let reply = match parse_message(line.as_bytes()) {
                    Ok(message) => session.handle(message, RequestContext::stdio()).await,
                    Err(reply) => Some(reply),
                };
                if let Some(reply) = reply {
                    let _ = tx.send(encode_line(&reply));
                }
            });
        }
    });
}

fn pipe() -> (
    tokio::io::ReadHalf<DuplexStream>,
    tokio::io::WriteHalf<DuplexStream>,
) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    spawn_server(server);
    tokio::io::split(client)
}

fn echo_call(text: &str) -> CallToolRequestParams {
    CallToolRequestParams::new("echo")
        .with_arguments(json!({ "text": text }).as_object().cloned().unwrap())
}

#[tokio::test]
async fn default_client_asking_for_2026_gets_latest_handshake_version() {
    let client = ().serve(pipe()).await.unwrap();
    let info = client.peer_info().unwrap();
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
    assert_eq!(info.server_info.as_ref().unwrap().name, "rmcp-interop");
    let tools = client.list_tools(None).await.unwrap();
    assert_eq!(tools.tools[0].name, "echo");
    assert!(tools.tools[0].output_schema.is_some());
    let result = client.call_tool(echo_call("hello")).await.unwrap();
    assert_eq!(result.structured_content, Some(json!({"text": "hello"})));
    assert_ne!(result.is_error, Some(true));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn clients_pinned_to_each_handshake_version_get_it() {
    for version in [
        ProtocolVersion::V_2024_11_05,
        ProtocolVersion::V_2025_03_26,
        ProtocolVersion::V_2025_06_18,
        ProtocolVersion::V_2025_11_25,
    ] {
        let client = ClientConfig::default()
            .with_protocol_version(version.clone())
            .serve(pipe())
            .await
            .unwrap();
        assert_eq!(client.peer_info().unwrap().protocol_version, version);
        let tools = client.list_tools(None).await.unwrap();
        let modern = version.as_str() >= "2025-06-18";
        assert_eq!(tools.tools[0].output_schema.is_some(), modern, "{version}");
        let result = client.call_tool(echo_call("v")).await.unwrap();
        assert_eq!(result.structured_content.is_some(), modern, "{version}");
        // Bad arguments are a tool error the client can show, not a protocol failure.
        let bad = CallToolRequestParams::new("echo")
            .with_arguments(json!({"text": 1}).as_object().cloned().unwrap());
        let result = client.call_tool(bad).await.unwrap();
        assert_eq!(result.is_error, Some(true), "{version}");
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn discover_first_clients_use_the_stateless_envelope() {
    for mode in [
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        },
    ] {
        let client = ClientConfig::default()
            .serve_with_lifecycle(pipe(), mode.clone())
            .await
            .unwrap();
        assert_eq!(
            client.peer_info().unwrap().protocol_version,
            ProtocolVersion::V_2026_07_28,
            "{mode:?}"
        );
        let tools = client.list_tools(None).await.unwrap();
        assert_eq!(tools.tools.len(), 1);
        let result = client.call_tool(echo_call("modern")).await.unwrap();
        assert_eq!(result.structured_content, Some(json!({"text": "modern"})));
        client.cancel().await.unwrap();
    }
}
