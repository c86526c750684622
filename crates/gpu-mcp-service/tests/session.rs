//! Drives `Session::handle` through every supported revision and every kind of bad input, with a
//! small test catalog. After each bad input the next valid request on the same session must work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::BoxFuture;
use gpu_mcp_protocol::{
    CallToolResult, JsonObject, Message, Notification, Request, Response, Tool, parse_message,
};
use gpu_mcp_service::{
    CallContext, CallError, HttpHeaders, McpServer, RequestContext, ServerInfo, Session,
    SessionPolicy, ToolCatalog, parse_arguments, tool_definition,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;

const HANDSHAKE_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
const ENVELOPE_VERSION: &str = "2026-07-28";

/// Echo input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EchoInput {
    /// Text to echo.
    text: String,
    /// Upper-case it.
    #[serde(default)]
    upper: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
struct EchoOutput {
    text: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoInput {}

#[derive(Debug, Serialize, JsonSchema)]
struct Done {
    done: bool,
}

/// `echo` returns its text; `wait_for_cancel` runs until cancelled; `hang` never finishes and
/// ignores cancellation; `gate` waits until `open` has been called; `open` opens the gate;
/// `fail` reports a tool error.
#[derive(Default)]
struct TestCatalog {
    gate: Notify,
    gate_waiters: AtomicUsize,
    extra_tools: usize,
}

impl TestCatalog {
    fn with_extra(extra_tools: usize) -> Self {
        Self {
            extra_tools,
            ..Self::default()
        }
    }
}

fn done() -> CallToolResult {
    CallToolResult::from_structured(json!({"done": true}))
}

impl ToolCatalog for TestCatalog {
    fn tools(&self) -> Vec<Tool> {
        let mut tools = vec![
            tool_definition::<EchoInput, EchoOutput>("echo", "Echo", "Echoes text."),
            tool_definition::<NoInput, Done>("wait_for_cancel", "Wait", "Runs until cancelled."),
            tool_definition::<NoInput, Done>("hang", "Hang", "Never finishes."),
            tool_definition::<NoInput, Done>("gate", "Gate", "Waits for `open`."),
            tool_definition::<NoInput, Done>("open", "Open", "Opens the gate."),
            tool_definition::<NoInput, Done>("fail", "Fail", "Always fails."),
        ];
        for i in 0..self.extra_tools {
            tools.push(tool_definition::<NoInput, Done>(
                format!("extra_{i}"),
                "Extra",
                "Padding for pagination.",
            ));
        }
        tools
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        arguments: Option<JsonObject>,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move {
            match name {
                "echo" => {
                    let input: EchoInput = match parse_arguments(arguments) {
                        Ok(i) => i,
                        Err(e) => return Ok(e),
                    };
                    let text = if input.upper {
                        input.text.to_uppercase()
                    } else {
                        input.text
                    };
                    Ok(CallToolResult::from_structured(json!({ "text": text })))
                }
                "wait_for_cancel" => {
                    ctx.cancel.cancelled().await;
                    Ok(done())
                }
                "hang" => std::future::pending().await,
                "gate" => {
                    let notified = self.gate.notified();
                    self.gate_waiters.fetch_add(1, Ordering::SeqCst);
                    notified.await;
                    Ok(done())
                }
                "open" => {
                    // Wait until `gate` is parked, so `open` cannot run before it.
                    while self.gate_waiters.load(Ordering::SeqCst) == 0 {
                        tokio::task::yield_now().await;
                    }
                    self.gate.notify_waiters();
                    Ok(done())
                }
                "fail" => Ok(CallToolResult::error("the device fell off the bus")),
                other if other.starts_with("extra_") => Ok(done()),
                other => Err(CallError::UnknownTool(other.to_owned())),
            }
        })
    }
}

fn info() -> ServerInfo {
    ServerInfo {
        name: "test-server".into(),
        version: "1.2.3".into(),
        title: Some("Test Server".into()),
        instructions: Some("Use the tools.".into()),
    }
}

fn server_with(policy: SessionPolicy, catalog: TestCatalog) -> McpServer {
    McpServer::with_policy(info(), Arc::new(catalog), policy)
}

fn server() -> McpServer {
    server_with(SessionPolicy::default(), TestCatalog::default())
}

fn strict_server() -> McpServer {
    server_with(
        SessionPolicy {
            strict_lifecycle: true,
            ..SessionPolicy::default()
        },
        TestCatalog::default(),
    )
}

/// Sends raw bytes as a transport would: a decode error is the reply itself.
async fn send_raw(session: &Session, bytes: &[u8], ctx: RequestContext) -> Option<Response> {
    match parse_message(bytes) {
        Ok(message) => session.handle(message, ctx).await,
        Err(reply) => Some(reply),
    }
}

async fn request_with(
    session: &Session,
    id: i64,
    method: &str,
    params: Value,
    ctx: RequestContext,
) -> Response {
    let params = if params.is_null() { None } else { Some(params) };
    let message = Message::Request(Request::new(id, method, params));
    // Round-trip through the codec, as a transport would.
    let bytes = gpu_mcp_protocol::encode(&message);
    send_raw(session, &bytes, ctx)
        .await
        .expect("a request gets a response")
}

async fn request(session: &Session, id: i64, method: &str, params: Value) -> Response {
    request_with(session, id, method, params, RequestContext::stdio()).await
}

async fn notify(session: &Session, method: &str, params: Value) {
    let params = if params.is_null() { None } else { Some(params) };
    let reply = session
        .handle(
            Message::Notification(Notification::new(method, params)),
            RequestContext::stdio(),
        )
        .await;
    assert!(reply.is_none(), "a notification got a reply: {reply:?}");
}

fn ok(r: &Response) -> &Value {
    assert!(r.error.is_none(), "unexpected error: {:?}", r.error);
    r.result.as_ref().unwrap()
}

fn err_code(r: &Response) -> i64 {
    assert!(r.result.is_none(), "expected an error, got {:?}", r.result);
    r.error.as_ref().unwrap().code
}

fn err_message(r: &Response) -> &str {
    &r.error.as_ref().unwrap().message
}

fn envelope(version: &str) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "probe", "version": "0"},
    })
}

async fn initialize(session: &Session, version: &str) -> Value {
    let r = request(
        session,
        0,
        "initialize",
        json!({
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "test-client", "version": "0.1"},
        }),
    )
    .await;
    let result = ok(&r).clone();
    notify(session, "notifications/initialized", Value::Null).await;
    result
}

/// The canary: a valid request that must succeed after any bad input.
async fn assert_still_serving(session: &Session) {
    let r = request(
        session,
        9999,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "still here"}}),
    )
    .await;
    let result = ok(&r);
    assert_eq!(result["structuredContent"]["text"], "still here");
    let r = request(session, 9998, "ping", Value::Null).await;
    assert_eq!(ok(&r), &json!({}));
}

#[tokio::test]
async fn every_handshake_version_is_answered_with_itself() {
    for version in HANDSHAKE_VERSIONS {
        let session = server().session();
        let result = initialize(&session, version).await;
        assert_eq!(result["protocolVersion"], version);
        assert_eq!(result["capabilities"]["tools"]["listChanged"], false);
        assert_eq!(result["serverInfo"]["name"], "test-server");
        assert_eq!(result["serverInfo"]["version"], "1.2.3");
        assert_eq!(result["instructions"], "Use the tools.");
        let has_title = result["serverInfo"].get("title").is_some();
        assert_eq!(has_title, version >= "2025-06-18", "{version}");
        assert_eq!(session.protocol_version().unwrap().as_str(), version);
        assert!(session.initialized_notified());
        assert_eq!(
            session.client_info().unwrap().name,
            "test-client",
            "{version}"
        );
    }
}

#[tokio::test]
async fn unknown_or_newer_versions_get_the_latest_handshake_version() {
    for asked in [ENVELOPE_VERSION, "2099-01-01", "1.0.0", ""] {
        let session = server().session();
        let result = initialize(&session, asked).await;
        assert_eq!(result["protocolVersion"], "2025-11-25", "asked {asked:?}");
        assert_still_serving(&session).await;
    }
}

#[tokio::test]
async fn fields_follow_the_negotiated_version() {
    for version in HANDSHAKE_VERSIONS {
        let session = server().session();
        initialize(&session, version).await;
        let r = request(&session, 1, "tools/list", json!({})).await;
        let tools = ok(&r)["tools"].as_array().unwrap().clone();
        let echo = tools.iter().find(|t| t["name"] == "echo").unwrap();
        let modern = version >= "2025-06-18";
        assert_eq!(echo.get("title").is_some(), modern, "{version}");
        assert_eq!(echo.get("outputSchema").is_some(), modern, "{version}");
        assert_eq!(
            echo.get("annotations").is_some(),
            version >= "2025-03-26",
            "{version}"
        );
        assert_eq!(echo["inputSchema"]["type"], "object");
        assert!(r.result.as_ref().unwrap().get("nextCursor").is_none());

        let r = request(
            &session,
            2,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "hi", "upper": true}}),
        )
        .await;
        let result = ok(&r);
        assert_eq!(
            result.get("structuredContent").is_some(),
            modern,
            "{version}"
        );
        let text = result["content"][0]["text"].as_str().unwrap();
        let parsed: Value = serde_json::from_str(text).unwrap();
        assert_eq!(parsed, json!({"text": "HI"}), "{version}");
        assert!(result.get("resultType").is_none());
    }
}

#[tokio::test]
async fn bare_tools_call_without_initialize_is_served_by_default() {
    let session = server().session();
    let r = request(
        &session,
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "one-shot"}}),
    )
    .await;
    let result = ok(&r);
    assert_eq!(result["structuredContent"]["text"], "one-shot");
    assert!(!session.is_initialized());
    let r = request(&session, 2, "tools/list", Value::Null).await;
    assert_eq!(ok(&r)["tools"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn unnegotiated_http_requests_follow_the_protocol_version_header() {
    let session = server().session();
    let ctx = RequestContext::http(HttpHeaders {
        protocol_version: Some("2025-03-26".into()),
        ..HttpHeaders::default()
    });
    let r = request_with(
        &session,
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}}),
        ctx,
    )
    .await;
    assert!(ok(&r).get("structuredContent").is_none());
}

#[tokio::test]
async fn strict_lifecycle_refuses_requests_before_initialize() {
    let session = strict_server().session();
    for method in ["tools/list", "tools/call", "logging/setLevel"] {
        let r = request(&session, 1, method, json!({"name": "echo"})).await;
        assert_eq!(err_code(&r), -32600, "{method}");
        assert!(err_message(&r).contains("not initialized"));
    }
    // Allowed before initialize.
    let r = request(&session, 2, "ping", Value::Null).await;
    assert_eq!(ok(&r), &json!({}));
    let r = request(&session, 3, "server/discover", Value::Null).await;
    assert_eq!(ok(&r)["resultType"], "complete");
    let r = request(
        &session,
        4,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "e"}, "_meta": envelope(ENVELOPE_VERSION)}),
    )
    .await;
    assert_eq!(ok(&r)["structuredContent"]["text"], "e");
    let r = request(&session, 5, "resources/list", Value::Null).await;
    assert_eq!(err_code(&r), -32601);
    // After initialize everything works.
    initialize(&session, "2025-06-18").await;
    assert_still_serving(&session).await;
}

#[tokio::test]
async fn duplicate_initialize_is_refused_and_the_session_keeps_its_version() {
    for server in [server(), strict_server()] {
        let session = server.session();
        initialize(&session, "2025-06-18").await;
        let r = request(
            &session,
            1,
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}),
        )
        .await;
        assert_eq!(err_code(&r), -32600);
        assert_eq!(session.protocol_version().unwrap().as_str(), "2025-06-18");
        assert_still_serving(&session).await;
    }
}

#[tokio::test]
async fn bad_initialize_params_are_invalid_params() {
    let session = server().session();
    for params in [Value::Null, json!({}), json!({"protocolVersion": 20250618})] {
        let r = request(&session, 1, "initialize", params.clone()).await;
        assert_eq!(err_code(&r), -32602, "{params}");
    }
    assert!(!session.is_initialized());
    initialize(&session, "2025-11-25").await;
    assert_still_serving(&session).await;
}

#[tokio::test]
async fn discover_works_before_and_without_initialize() {
    let session = server().session();
    for params in [Value::Null, json!({"_meta": envelope(ENVELOPE_VERSION)})] {
        let r = request(&session, 1, "server/discover", params).await;
        let result = ok(&r);
        assert_eq!(result["resultType"], "complete");
        assert_eq!(
            result["supportedVersions"],
            json!([
                "2026-07-28",
                "2025-11-25",
                "2025-06-18",
                "2025-03-26",
                "2024-11-05"
            ])
        );
        assert_eq!(result["capabilities"]["tools"]["listChanged"], false);
        assert_eq!(result["instructions"], "Use the tools.");
        // Versions, capabilities and instructions are the same for every caller and change
        // only with a new server: an hour, shareable.
        assert_eq!(result["ttlMs"], 3_600_000);
        assert_eq!(result["cacheScope"], "public");
        assert_eq!(
            result["_meta"]["io.modelcontextprotocol/serverInfo"],
            json!({"name": "test-server", "version": "1.2.3", "title": "Test Server"})
        );
    }
    assert!(!session.is_initialized());
    // A client that probed can still initialize afterwards.
    initialize(&session, "2025-11-25").await;
    assert_still_serving(&session).await;
}

#[tokio::test]
async fn envelope_requests_are_served_statelessly() {
    let session = server().session();
    let r = request(
        &session,
        1,
        "tools/list",
        json!({"_meta": envelope(ENVELOPE_VERSION)}),
    )
    .await;
    let result = ok(&r);
    assert_eq!(result["resultType"], "complete");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "test-server"
    );
    assert!(result["tools"][0].get("outputSchema").is_some());

    let r = request(
        &session,
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}, "_meta": envelope(ENVELOPE_VERSION)}),
    )
    .await;
    let result = ok(&r);
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["structuredContent"]["text"], "x");
    assert!(result["_meta"]["io.modelcontextprotocol/serverInfo"].is_object());
    assert!(
        !session.is_initialized(),
        "envelope requests do not initialize"
    );

    // An envelope naming an older revision is served in that revision's shape.
    let r = request(
        &session,
        3,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}, "_meta": envelope("2025-03-26")}),
    )
    .await;
    assert!(ok(&r).get("structuredContent").is_none());

    // Also on an initialized session, without changing its version.
    initialize(&session, "2025-06-18").await;
    let r = request(
        &session,
        4,
        "tools/list",
        json!({"_meta": envelope(ENVELOPE_VERSION)}),
    )
    .await;
    assert_eq!(ok(&r)["resultType"], "complete");
    assert_eq!(session.protocol_version().unwrap().as_str(), "2025-06-18");
    // 2026-07-28 has no `ping`; the session's own revision still has it.
    let r = request(
        &session,
        5,
        "ping",
        json!({"_meta": envelope(ENVELOPE_VERSION)}),
    )
    .await;
    assert_eq!(err_code(&r), -32601);
    let r = request(&session, 6, "ping", json!({})).await;
    assert_eq!(ok(&r), &json!({}));
}

#[tokio::test]
async fn bad_envelopes_are_refused_with_the_right_codes() {
    let session = server().session();
    let r = request(
        &session,
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}, "_meta": envelope("2099-01-01")}),
    )
    .await;
    assert_eq!(err_code(&r), -32022);
    let data = r.error.as_ref().unwrap().data.as_ref().unwrap();
    assert_eq!(data["requested"], "2099-01-01");
    assert!(
        data["supported"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28"))
    );
    assert!(
        data["supported"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-11-25"))
    );
    assert_still_serving(&session).await;

    let r = request(
        &session,
        2,
        "server/discover",
        json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}),
    )
    .await;
    assert_eq!(err_code(&r), -32602);
    assert!(err_message(&r).contains("clientCapabilities"));
    assert_still_serving(&session).await;

    let r = request(
        &session,
        3,
        "tools/list",
        json!({"_meta": {"io.modelcontextprotocol/protocolVersion": 7, "io.modelcontextprotocol/clientCapabilities": {}}}),
    )
    .await;
    assert_eq!(err_code(&r), -32602);
    assert_still_serving(&session).await;
}

#[tokio::test]
async fn unknown_methods_are_method_not_found_in_every_state() {
    for server in [server(), strict_server()] {
        let session = server.session();
        for method in [
            "resources/list",
            "prompts/list",
            "nonsense",
            "notifications/initialized",
        ] {
            let r = request(&session, 1, method, Value::Null).await;
            assert_eq!(err_code(&r), -32601, "{method}");
            assert!(err_message(&r).contains(method));
        }
        let r = request(
            &session,
            2,
            "completion/complete",
            json!({"_meta": envelope(ENVELOPE_VERSION)}),
        )
        .await;
        assert_eq!(err_code(&r), -32601);
        initialize(&session, "2025-11-25").await;
        let r = request(&session, 3, "resources/list", Value::Null).await;
        assert_eq!(err_code(&r), -32601);
        assert_still_serving(&session).await;
    }
}

#[tokio::test]
async fn tools_call_protocol_errors_are_invalid_params() {
    let session = server().session();
    initialize(&session, "2025-11-25").await;
    let cases = [
        (Value::Null, "name"),
        (json!({}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "echo", "arguments": [1, 2]}), "arguments"),
        (json!({"name": "echo", "arguments": "text"}), "arguments"),
        (json!({"name": "nope"}), "Unknown tool: nope"),
    ];
    for (params, needle) in cases {
        let r = request(&session, 1, "tools/call", params.clone()).await;
        assert_eq!(err_code(&r), -32602, "{params}");
        assert!(
            err_message(&r).contains(needle),
            "{params}: {}",
            err_message(&r)
        );
        assert_still_serving(&session).await;
    }
    // Params that are not an object at all.
    let r = send_raw(
        &session,
        br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":["echo"]}"#,
        RequestContext::stdio(),
    )
    .await
    .unwrap();
    assert_eq!(err_code(&r), -32602);
    assert_still_serving(&session).await;
}

#[tokio::test]
async fn argument_errors_are_tool_results_naming_the_argument() {
    let session = server().session();
    initialize(&session, "2025-11-25").await;
    let cases = [
        (json!({"text": 42}), "`text`"),
        (json!({"text": "a", "upper": "yes"}), "`upper`"),
        (json!({"text": "a", "colour": "red"}), "colour"),
        (json!({}), "`text`"),
    ];
    for (arguments, needle) in cases {
        let r = request(
            &session,
            1,
            "tools/call",
            json!({"name": "echo", "arguments": arguments}),
        )
        .await;
        let result = ok(&r);
        assert_eq!(result["isError"], true, "{arguments}");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(needle), "{arguments}: {text}");
        assert_still_serving(&session).await;
    }
    let r = request(&session, 2, "tools/call", json!({"name": "fail"})).await;
    let result = ok(&r);
    assert_eq!(result["isError"], true);
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("fell off the bus")
    );
    assert_still_serving(&session).await;
}

#[tokio::test]
async fn undecodable_bytes_get_error_replies_and_the_session_keeps_serving() {
    let session = server().session();
    initialize(&session, "2025-11-25").await;
    let mut bomb = vec![b'['; 100_000];
    bomb.extend(vec![b']'; 100_000]);
    let cases: Vec<(Vec<u8>, i64)> = vec![
        (b"{not json".to_vec(), -32700),
        (b"".to_vec(), -32700),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"pi\xffng\"}".to_vec(),
            -32700,
        ),
        (bomb, -32700),
        (
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.to_vec(),
            -32600,
        ),
        (
            br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#.to_vec(),
            -32600,
        ),
        (br#"{"id":1,"method":"ping"}"#.to_vec(), -32600),
        (br#"{"jsonrpc":"2.0","id":1}"#.to_vec(), -32600),
        (b"17".to_vec(), -32600),
    ];
    for (bytes, code) in cases {
        let r = send_raw(&session, &bytes, RequestContext::stdio())
            .await
            .unwrap();
        assert_eq!(
            err_code(&r),
            code,
            "{}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
        );
        assert_still_serving(&session).await;
    }
}

#[tokio::test]
async fn notifications_and_responses_get_no_reply() {
    let session = server().session();
    notify(&session, "notifications/whatever", json!({"x": 1})).await;
    notify(
        &session,
        "notifications/cancelled",
        json!({"requestId": 404}),
    )
    .await;
    notify(&session, "notifications/cancelled", Value::Null).await;
    let reply = send_raw(
        &session,
        br#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
        RequestContext::stdio(),
    )
    .await;
    assert!(reply.is_none());
    assert_still_serving(&session).await;
}

#[tokio::test]
async fn header_body_disagreement_is_header_mismatch() {
    let session = server().session();
    let call =
        json!({"name": "echo", "arguments": {"text": "h"}, "_meta": envelope(ENVELOPE_VERSION)});
    let good = HttpHeaders {
        protocol_version: Some(ENVELOPE_VERSION.into()),
        method: Some("tools/call".into()),
        name: Some("echo".into()),
    };
    let r = request_with(
        &session,
        1,
        "tools/call",
        call.clone(),
        RequestContext::http(good.clone()),
    )
    .await;
    assert_eq!(ok(&r)["structuredContent"]["text"], "h");

    let bad = [
        HttpHeaders {
            method: Some("tools/list".into()),
            ..good.clone()
        },
        HttpHeaders {
            name: Some("other".into()),
            ..good.clone()
        },
        HttpHeaders {
            protocol_version: Some("2025-11-25".into()),
            ..good.clone()
        },
    ];
    for headers in bad {
        let r = request_with(
            &session,
            2,
            "tools/call",
            call.clone(),
            RequestContext::http(headers.clone()),
        )
        .await;
        assert_eq!(err_code(&r), -32020, "{headers:?}");
        let r = request_with(
            &session,
            3,
            "tools/call",
            call.clone(),
            RequestContext::http(good.clone()),
        )
        .await;
        assert_eq!(ok(&r)["structuredContent"]["text"], "h");
    }

    // A stateless revision in the header without the envelope in the body.
    let r = request_with(
        &session,
        4,
        "tools/list",
        Value::Null,
        RequestContext::http(HttpHeaders {
            protocol_version: Some(ENVELOPE_VERSION.into()),
            ..HttpHeaders::default()
        }),
    )
    .await;
    assert_eq!(err_code(&r), -32020);
    // Handshake-era requests carry only MCP-Protocol-Version, which is fine.
    let r = request_with(
        &session,
        5,
        "tools/list",
        Value::Null,
        RequestContext::http(HttpHeaders {
            protocol_version: Some("2025-06-18".into()),
            ..HttpHeaders::default()
        }),
    )
    .await;
    ok(&r);
    assert_still_serving(&session).await;
}

#[tokio::test]
async fn cancelled_calls_get_no_response_and_leave_no_trace() {
    let session = server().session();
    initialize(&session, "2025-11-25").await;
    for tool in ["wait_for_cancel", "hang"] {
        let running = tokio::spawn({
            let session = session.clone();
            async move {
                session
                    .handle(
                        Message::Request(Request::new(
                            "call-1",
                            "tools/call",
                            Some(json!({"name": tool})),
                        )),
                        RequestContext::stdio(),
                    )
                    .await
            }
        });
        while session.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        notify(
            &session,
            "notifications/cancelled",
            json!({"requestId": "call-1", "reason": "user pressed stop"}),
        )
        .await;
        let reply = running.await.unwrap();
        assert!(
            reply.is_none(),
            "{tool}: cancelled call answered: {reply:?}"
        );
        assert_eq!(session.in_flight(), 0);
        assert_still_serving(&session).await;
    }
}

#[tokio::test]
async fn cancel_in_flight_cancels_every_running_call() {
    let session = server().session();
    let calls: Vec<_> = (0..3)
        .map(|i| {
            let session = session.clone();
            tokio::spawn(async move {
                session
                    .handle(
                        Message::Request(Request::new(
                            i,
                            "tools/call",
                            Some(json!({"name": "hang"})),
                        )),
                        RequestContext::stdio(),
                    )
                    .await
            })
        })
        .collect();
    while session.in_flight() < 3 {
        tokio::task::yield_now().await;
    }
    session.cancel_in_flight();
    for call in calls {
        assert!(call.await.unwrap().is_none());
    }
    assert_eq!(session.in_flight(), 0);
    assert_still_serving(&session).await;
}

#[tokio::test]
async fn a_dropped_call_leaves_the_in_flight_table() {
    let session = server().session();
    let running = tokio::spawn({
        let session = session.clone();
        async move {
            session
                .handle(
                    Message::Request(Request::new(1, "tools/call", Some(json!({"name": "hang"})))),
                    RequestContext::stdio(),
                )
                .await
        }
    });
    while session.in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    // A transport drops the future when its connection goes away.
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    assert_eq!(session.in_flight(), 0);
    // The id is free again.
    let r = request(
        &session,
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "again"}}),
    )
    .await;
    assert_eq!(ok(&r)["structuredContent"]["text"], "again");
}

#[tokio::test]
async fn calls_on_one_session_run_concurrently() {
    let session = server().session();
    initialize(&session, "2025-11-25").await;
    // `gate` finishes only once `open` ran, so this completes only if both are in flight at once.
    let gate = request(&session, 1, "tools/call", json!({"name": "gate"}));
    let open = request(&session, 2, "tools/call", json!({"name": "open"}));
    let (gate, open) = tokio::join!(gate, open);
    assert_eq!(ok(&gate)["structuredContent"]["done"], true);
    assert_eq!(ok(&open)["structuredContent"]["done"], true);
    assert_eq!(session.in_flight(), 0);
}

#[tokio::test]
async fn reusing_an_in_flight_id_is_invalid_request() {
    let session = server().session();
    let first = tokio::spawn({
        let session = session.clone();
        async move {
            session
                .handle(
                    Message::Request(Request::new(
                        7,
                        "tools/call",
                        Some(json!({"name": "wait_for_cancel"})),
                    )),
                    RequestContext::stdio(),
                )
                .await
        }
    });
    while session.in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    let r = request(
        &session,
        7,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}}),
    )
    .await;
    assert_eq!(err_code(&r), -32600);
    assert_eq!(
        session.in_flight(),
        1,
        "the refused duplicate must not evict the running call"
    );
    notify(&session, "notifications/cancelled", json!({"requestId": 7})).await;
    assert!(first.await.unwrap().is_none());
    assert_still_serving(&session).await;
}

#[tokio::test]
async fn logging_level_is_stored_and_validated() {
    let session = server().session();
    initialize(&session, "2025-06-18").await;
    assert_eq!(session.log_level(), None);
    let r = request(&session, 1, "logging/setLevel", json!({"level": "warning"})).await;
    assert_eq!(ok(&r), &json!({}));
    assert_eq!(
        session.log_level(),
        Some(gpu_mcp_protocol::LoggingLevel::Warning)
    );
    for params in [
        json!({"level": "verbose"}),
        json!({}),
        Value::Null,
        json!({"level": 3}),
    ] {
        let r = request(&session, 2, "logging/setLevel", params.clone()).await;
        assert_eq!(err_code(&r), -32602, "{params}");
        assert_still_serving(&session).await;
    }
    assert_eq!(
        session.log_level(),
        Some(gpu_mcp_protocol::LoggingLevel::Warning)
    );
}

#[tokio::test]
async fn tools_list_paginates_with_opaque_cursors() {
    let server = server_with(
        SessionPolicy {
            page_size: 4,
            ..SessionPolicy::default()
        },
        TestCatalog::with_extra(5),
    );
    let session = server.session();
    initialize(&session, "2025-11-25").await;
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let r = request(&session, 1, "tools/list", params).await;
        let result = ok(&r);
        let page = result["tools"].as_array().unwrap();
        assert!(page.len() <= 4);
        names.extend(page.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        pages += 1;
        match result.get("nextCursor") {
            Some(c) => cursor = Some(c.as_str().unwrap().to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 11);
    let expected: Vec<String> = server
        .catalog()
        .tools()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, expected);

    for bad in [
        json!({"cursor": "garbage"}),
        json!({"cursor": "tools:999"}),
        json!({"cursor": 4}),
    ] {
        let r = request(&session, 2, "tools/list", bad.clone()).await;
        assert_eq!(err_code(&r), -32602, "{bad}");
        assert_still_serving(&session).await;
    }
}

#[tokio::test]
async fn default_page_lists_every_tool() {
    let session = server_with(SessionPolicy::default(), TestCatalog::with_extra(200)).session();
    let r = request(&session, 1, "tools/list", Value::Null).await;
    let result = ok(&r);
    assert_eq!(result["tools"].as_array().unwrap().len(), 206);
    assert!(result.get("nextCursor").is_none());
}

#[tokio::test]
async fn string_ids_are_echoed() {
    let session = server().session();
    let r = session
        .handle(
            Message::Request(Request::new("abc", "ping", None)),
            RequestContext::stdio(),
        )
        .await
        .unwrap();
    assert_eq!(r.id, Some("abc".into()));
}

struct BadCatalog(Vec<Tool>);

impl ToolCatalog for BadCatalog {
    fn tools(&self) -> Vec<Tool> {
        self.0.clone()
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

#[test]
fn try_new_rejects_invalid_catalogs() {
    let good = tool_definition::<EchoInput, EchoOutput>("echo", "Echo", "Echoes.");
    assert!(McpServer::try_new(info(), Arc::new(BadCatalog(vec![good.clone()]))).is_ok());
    let mut bad_name = good.clone();
    bad_name.name = "has space".into();
    let mut bad_schema = good.clone();
    bad_schema.input_schema = json!({"type": "array"}).as_object().cloned().unwrap();
    for tools in [vec![bad_name], vec![bad_schema], vec![good.clone(), good]] {
        assert!(McpServer::try_new(info(), Arc::new(BadCatalog(tools))).is_err());
    }
}

#[test]
fn session_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let session = server().session();
    let fut = session.handle(
        Message::Request(Request::new(1, "ping", None)),
        RequestContext::stdio(),
    );
    assert_send(&fut);
}
