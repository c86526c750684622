//! The server core (`gpu-mcp-service`) as the transports drive it: arbitrary body bytes with
//! arbitrary raw MCP header values (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) through
//! `Incoming::from_http`, or an arbitrary stdio line through `Incoming::from_line`, answered by
//! a session over a one-tool in-memory catalog, optionally after a completed handshake.
//!
//! It never panics; every refusal before the session is HTTP 400 with a JSON-RPC error body;
//! every answer has an HTTP status, and its body, when there is one, is one line holding a
//! JSON-RPC response that round-trips through the codec, to the request's own id; a request
//! always gets a body; the metrics label stays within its bounded names.
#![no_main]

use std::sync::{Arc, LazyLock};

use futures::future::BoxFuture;
use gpu_mcp_fuzz::assert_response_bytes;
use gpu_mcp_protocol::http::{METHOD_HEADER, NAME_HEADER, PROTOCOL_VERSION_HEADER};
use gpu_mcp_protocol::{CallToolResult, JsonObject, Message, Notification, Request, Tool, encode};
use gpu_mcp_service::{
    CallContext, CallError, HttpHeaders, Incoming, McpServer, Reply, ServerInfo, ToolCatalog,
    parse_arguments, tool_definition,
};
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
            let input: EchoInput = match parse_arguments(arguments) {
                Ok(input) => input,
                Err(refusal) => return Ok(refusal),
            };
            Ok(CallToolResult::from_structured(
                serde_json::json!({ "text": input.text }),
            ))
        })
    }
}

static SERVER: LazyLock<McpServer> = LazyLock::new(|| {
    let info = ServerInfo {
        name: "fuzz".into(),
        version: "0.0.0".into(),
        title: None,
        instructions: None,
    };
    McpServer::new(info, Arc::new(Echo))
});

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap_or_else(|e| panic!("a runtime: {e}"))
});

/// Header values that mean something to the core, beside arbitrary bytes.
const KNOWN: &[&str] = &[
    "2026-07-28",
    "2025-11-25",
    "2025-06-18",
    "2025-03-26",
    "2024-11-05",
    "tools/call",
    "tools/list",
    "initialize",
    "ping",
    "server/discover",
    "echo",
    "=?base64?ZWNobw==?=",
    "=?base64?!?=",
    "",
    " 2026-07-28",
];

fn header(u: &mut Unstructured<'_>) -> Option<Vec<u8>> {
    match u.int_in_range(0u8..=3).unwrap_or(0) {
        0 => None,
        1 | 2 => u.choose(KNOWN).ok().map(|s| s.as_bytes().to_vec()),
        _ => {
            let len = u.int_in_range(0usize..=24).unwrap_or(0);
            u.bytes(len).ok().map(<[u8]>::to_vec)
        }
    }
}

fn check(reply: &Reply, incoming: Option<&Message>) {
    assert!(
        (200..600).contains(&reply.status()),
        "status {}",
        reply.status()
    );
    let Some(body) = reply.body() else {
        assert!(
            !matches!(incoming, Some(Message::Request(_))),
            "a request got no reply"
        );
        return;
    };
    let response = assert_response_bytes(body);
    if let Some(Message::Request(request)) = incoming {
        assert_eq!(
            response.id.as_ref(),
            Some(&request.id),
            "the reply answers another id"
        );
    }
}

fn handshake() -> [Vec<u8>; 2] {
    let initialize = Request::new(
        0,
        "initialize",
        Some(serde_json::json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "fuzz", "version": "0"},
        })),
    );
    let initialized = Notification::new("notifications/initialized", None);
    [encode(&initialize), encode(&initialized)]
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mode = u.arbitrary::<u8>().unwrap_or(0);
    let values = [header(&mut u), header(&mut u), header(&mut u)];
    let body = u.take_rest();
    let stdio = mode & 1 == 1;

    let session = SERVER.session();
    if mode & 2 == 2 {
        for message in handshake() {
            let incoming = if stdio {
                Incoming::from_line(&message)
            } else {
                Incoming::from_http(HttpHeaders::default(), &message)
            };
            if let Ok(incoming) = incoming {
                RUNTIME.block_on(session.answer(incoming));
            }
        }
    }

    let incoming = if stdio {
        Incoming::from_line(body)
    } else {
        let names = [PROTOCOL_VERSION_HEADER, METHOD_HEADER, NAME_HEADER];
        let headers = HttpHeaders::from_lookup(|name| {
            let at = names.iter().position(|n| *n == name)?;
            values[at].as_deref()
        });
        Incoming::from_http(headers, body)
    };
    let incoming = match incoming {
        Ok(incoming) => incoming,
        Err(refusal) => {
            assert_eq!(
                refusal.status(),
                400,
                "a refusal before the session is HTTP 400"
            );
            assert!(refusal.body().is_some(), "a refusal has a body");
            check(&refusal, None);
            return;
        }
    };
    if let Some(label) = SERVER.label(&incoming) {
        assert!(
            matches!(label.tool.as_str(), "" | "other" | "echo"),
            "unbounded tool label {:?}",
            label.tool
        );
    }
    let message = incoming.message().clone();
    let reply = RUNTIME.block_on(session.answer(incoming));
    check(&reply, Some(&message));
});
