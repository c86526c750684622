//! Properties of what a client feeds the server core over HTTP: any MCP header values with any
//! body are decoded and answered without a panic, every reply is one well-formed JSON-RPC
//! response to the request's own id with an HTTP status, and so is any stdio line, before or
//! after the handshake; headers mirrored from the body as a client must write them are never
//! refused as a mismatch. The fuzz target `service_request` (`cargo xtask fuzz`) hunts the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use futures::future::BoxFuture;
use gpu_mcp_protocol::envelope::{
    META_CLIENT_CAPABILITIES, META_CLIENT_INFO, META_PROTOCOL_VERSION,
};
use gpu_mcp_protocol::http::{
    METHOD_HEADER, NAME_HEADER, PROTOCOL_VERSION_HEADER, mirrored_headers,
};
use gpu_mcp_protocol::{
    CallToolResult, JsonObject, Message, ProtocolVersion, Request, Tool, parse_message,
};
use gpu_mcp_service::{
    CallContext, CallError, HttpHeaders, Incoming, McpServer, ServerInfo, ToolCatalog,
    parse_arguments, tool_definition,
};
use proptest::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
                Ok(i) => i,
                Err(e) => return Ok(e),
            };
            Ok(CallToolResult::from_structured(json!({"text": input.text})))
        })
    }
}

fn server() -> McpServer {
    let info = ServerInfo {
        name: "properties".into(),
        version: "0.0.0".into(),
        title: None,
        instructions: None,
    };
    McpServer::new(info, Arc::new(Echo))
}

/// 128 cases, or `PROPTEST_CASES` for a longer hunt.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 128;
    }
    config
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A header value: absent, one that means something, or anything.
fn header() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        2 => prop::sample::select(vec![
            "2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", "tools/call",
            "tools/list", "initialize", "ping", "echo", "=?base64?ZWNobw==?=", "=?base64?!?=",
            "", " ", "2026-07-28 ",
        ])
        .prop_map(|s| Some(s.to_owned())),
        1 => prop::collection::vec(any::<u8>(), 0..24)
            .prop_map(|bytes| Some(String::from_utf8_lossy(&bytes).into_owned())),
    ]
}

fn headers() -> impl Strategy<Value = HttpHeaders> {
    (header(), header(), header()).prop_map(|(protocol_version, method, name)| HttpHeaders {
        protocol_version,
        method,
        name,
    })
}

fn envelope(version: &str) -> Value {
    json!({
        META_PROTOCOL_VERSION: version,
        META_CLIENT_CAPABILITIES: {},
        META_CLIENT_INFO: {"name": "p", "version": "0"},
    })
}

/// Requests this server serves, in the handshake style or with the 2026-07-28 envelope.
fn request() -> impl Strategy<Value = Request> {
    let method = prop::sample::select(vec![
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "server/discover",
        "prompts/list",
        "made/up",
    ]);
    let version = prop::option::of(prop::sample::select(
        ProtocolVersion::supported_strs().to_vec(),
    ));
    (
        any::<i64>(),
        method,
        version,
        any::<String>(),
        any::<bool>(),
    )
        .prop_map(|(id, method, version, text, good_tool)| {
            let mut params = match method {
                "initialize" => json!({
                    "protocolVersion": version.unwrap_or("2025-06-18"),
                    "capabilities": {},
                    "clientInfo": {"name": "p", "version": "0"},
                }),
                "tools/call" => json!({
                    "name": if good_tool { "echo" } else { "nope" },
                    "arguments": {"text": text},
                }),
                _ => json!({}),
            };
            if method != "initialize"
                && let Some(v) = version
            {
                params["_meta"] = envelope(v);
            }
            Request::new(id, method, Some(params))
        })
}

/// Checks one answer: a body (a request always gets one) that is a JSON-RPC response to `id`,
/// and an HTTP status.
fn check_reply(reply: &gpu_mcp_service::Reply, request: Option<&Request>) -> Option<Value> {
    assert!((200..600).contains(&reply.status()), "{}", reply.status());
    let body = reply.body()?;
    assert!(!body.contains(&b'\n'), "one line");
    let Ok(Message::Response(response)) = parse_message(body) else {
        panic!("not a response: {}", String::from_utf8_lossy(body));
    };
    if let Some(request) = request {
        assert_eq!(response.id.as_ref(), Some(&request.id));
    }
    Some(serde_json::from_slice(body).unwrap())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_headers_with_any_body_are_answered(
        headers in headers(),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        if let Err(reply) = Incoming::from_http(headers, &body) {
            prop_assert_eq!(reply.status(), 400);
            check_reply(&reply, None);
        }
    }

    #[test]
    fn any_headers_with_a_valid_request_are_answered(
        headers in headers(),
        request in request(),
    ) {
        let body = gpu_mcp_protocol::encode(&request);
        let incoming = match Incoming::from_http(headers, &body) {
            Ok(incoming) => incoming,
            Err(reply) => {
                prop_assert_eq!(reply.status(), 400);
                check_reply(&reply, Some(&request));
                return Ok(());
            }
        };
        let reply = runtime().block_on(server().session().answer(incoming));
        prop_assert!(check_reply(&reply, Some(&request)).is_some(), "a request gets a reply");
    }

    #[test]
    fn any_stdio_line_is_answered_before_and_after_the_handshake(
        line in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            request().prop_map(|r| gpu_mcp_protocol::encode(&r)),
        ],
        handshake in any::<bool>(),
    ) {
        let session = server().session();
        let rt = runtime();
        if handshake {
            let initialize = Request::new(
                0,
                "initialize",
                Some(json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "p", "version": "0"},
                })),
            );
            let initialized = gpu_mcp_protocol::Notification::new("notifications/initialized", None);
            for message in [gpu_mcp_protocol::encode(&initialize), gpu_mcp_protocol::encode(&initialized)] {
                rt.block_on(session.answer(Incoming::from_line(&message).unwrap()));
            }
        }
        match Incoming::from_line(&line) {
            Err(reply) => {
                prop_assert!(check_reply(&reply, None).is_some(), "a refusal has a body");
            }
            Ok(incoming) => {
                let request = match incoming.message() {
                    Message::Request(r) => Some(r.clone()),
                    _ => None,
                };
                let reply = rt.block_on(session.answer(incoming));
                let answered = check_reply(&reply, request.as_ref()).is_some();
                prop_assert!(answered || request.is_none(), "a request gets a reply");
            }
        }
    }

    #[test]
    fn mirrored_headers_are_never_a_mismatch(request in request()) {
        let is_envelope = request
            .params
            .as_ref()
            .and_then(|p| p.get("_meta"))
            .is_some();
        let version = request.params.as_ref().and_then(|p| {
            p.get("_meta")?.get(META_PROTOCOL_VERSION)?.as_str().map(str::to_owned)
        });
        let mirrored: Vec<(&str, String)> = if is_envelope && version.as_deref() == Some("2026-07-28") {
            mirrored_headers(&request)
        } else {
            Vec::new()
        };
        let mut values: Vec<(&str, Vec<u8>)> =
            mirrored.iter().map(|(n, v)| (*n, v.clone().into_bytes())).collect();
        if let Some(v) = &version {
            values.push((PROTOCOL_VERSION_HEADER, v.clone().into_bytes()));
        }
        let headers = HttpHeaders::from_lookup(|name| {
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_slice())
        });
        prop_assert!(
            headers.method.is_some() == values.iter().any(|(n, _)| *n == METHOD_HEADER)
                && headers.name.is_some() == values.iter().any(|(n, _)| *n == NAME_HEADER)
        );
        let body = gpu_mcp_protocol::encode(&request);
        let incoming = Incoming::from_http(headers, &body).unwrap();
        let reply = runtime().block_on(server().session().answer(incoming));
        let answer = check_reply(&reply, Some(&request)).unwrap();
        prop_assert_ne!(answer.pointer("/error/code"), Some(&json!(-32020)), "{}", answer);
    }
}

#[test]
fn header_values_that_are_not_utf8_are_judged_not_dropped() {
    let raw: &[u8] = b"2026-07-28\xff";
    let headers = HttpHeaders::from_lookup(|name| (name == PROTOCOL_VERSION_HEADER).then_some(raw));
    let version = headers.protocol_version.clone().unwrap();
    assert!(version.starts_with("2026-07-28") && version.ends_with('\u{fffd}'));
    let body = gpu_mcp_protocol::encode(&Request::new(1, "ping", None));
    let Err(reply) = Incoming::from_http(headers, &body) else {
        panic!("an unreadable version is refused");
    };
    assert_eq!(reply.status(), 400);
}
