//! Golden tests: the example messages of the MCP specification revisions (2024-11-05 through
//! 2026-07-28), kept under `tests/fixtures/`, decode into the typed messages and payloads and
//! encode back to the same JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gpu_mcp_protocol::mcp::{
    CancelledNotificationParams, DiscoverResult, EmptyResult, PaginatedRequestParams,
    SetLevelRequestParams,
};
use gpu_mcp_protocol::{
    CallToolRequestParams, CallToolResult, ErrorObject, InitializeRequestParams, InitializeResult,
    ListToolsResult, Message, RequestEnvelope, encode, parse_message,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

macro_rules! fixture {
    ($name:literal) => {
        ($name, include_str!(concat!("fixtures/", $name)))
    };
}

/// Decodes a fixture, checks that re-encoding the message gives the same JSON, and returns it.
fn decode((name, text): (&str, &str)) -> (Message, Value) {
    let original: Value = serde_json::from_str(text).unwrap();
    let message = parse_message(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let reencoded: Value = serde_json::from_slice(&encode(&message)).unwrap();
    assert_eq!(reencoded, original, "{name}: message does not round-trip");
    assert!(
        !encode(&message).contains(&b'\n'),
        "{name}: encoded on more than one line"
    );
    (message, original)
}

/// Deserializes `value` as `T` and checks that serializing it gives `value` back.
fn typed_round_trip<T: DeserializeOwned + Serialize>(name: &str, value: &Value) -> T {
    let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| {
        panic!(
            "{name}: does not decode as {}: {e}",
            std::any::type_name::<T>()
        )
    });
    assert_eq!(
        &serde_json::to_value(&typed).unwrap(),
        value,
        "{name}: {} does not round-trip",
        std::any::type_name::<T>()
    );
    typed
}

fn request_params<T: DeserializeOwned + Serialize>(fixture: (&str, &str), method: &str) -> T {
    let name = fixture.0;
    let (message, original) = decode(fixture);
    let Message::Request(request) = message else {
        panic!("{name}: not a request");
    };
    assert_eq!(request.method, method);
    let params = original
        .get("params")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    typed_round_trip(name, &params)
}

fn result<T: DeserializeOwned + Serialize>(fixture: (&str, &str)) -> T {
    let name = fixture.0;
    let (message, _) = decode(fixture);
    let Message::Response(response) = message else {
        panic!("{name}: not a response");
    };
    assert!(response.error.is_none(), "{name}");
    typed_round_trip(name, response.result.as_ref().unwrap())
}

fn error(fixture: (&str, &str)) -> ErrorObject {
    let name = fixture.0;
    let (message, original) = decode(fixture);
    let Message::Response(response) = message else {
        panic!("{name}: not a response");
    };
    assert!(response.result.is_none(), "{name}");
    typed_round_trip(name, &original["error"])
}

#[test]
fn initialize_requests_of_every_handshake_revision() {
    let p: InitializeRequestParams =
        request_params(fixture!("initialize_request_2024-11-05.json"), "initialize");
    assert_eq!(p.protocol_version, "2024-11-05");
    let p: InitializeRequestParams =
        request_params(fixture!("initialize_request_2025-06-18.json"), "initialize");
    assert_eq!(
        p.client_info.unwrap().title.as_deref(),
        Some("Example Client Display Name")
    );
    assert!(p.capabilities.elicitation.is_some());
    let p: InitializeRequestParams =
        request_params(fixture!("initialize_request_2025-11-25.json"), "initialize");
    let info = p.client_info.unwrap();
    assert_eq!(
        info.icons.unwrap()[0].sizes.as_deref(),
        Some(&["48x48".to_owned()][..])
    );
    assert_eq!(info.website_url.as_deref(), Some("https://example.com"));
    assert!(p.capabilities.other.contains_key("tasks"));
}

#[test]
fn initialize_response() {
    let r: InitializeResult = result(fixture!("initialize_response_2025-06-18.json"));
    assert_eq!(r.protocol_version, "2025-06-18");
    assert_eq!(r.capabilities.tools.unwrap().list_changed, Some(true));
    assert_eq!(r.capabilities.resources.unwrap().subscribe, Some(true));
    assert_eq!(r.server_info.name, "ExampleServer");
    assert_eq!(
        r.instructions.as_deref(),
        Some("Optional instructions for the client")
    );
}

#[test]
fn initialized_notification() {
    let (m, _) = decode(fixture!("initialized_notification.json"));
    assert!(matches!(m, Message::Notification(ref n) if n.method == "notifications/initialized"));
}

#[test]
fn lifecycle_error() {
    let e = error(fixture!("initialize_error_unsupported_version.json"));
    assert_eq!(e.code, -32602);
    assert_eq!(e.data.unwrap()["requested"], "1.0.0");
}

#[test]
fn tools_list() {
    let p: PaginatedRequestParams =
        request_params(fixture!("tools_list_request.json"), "tools/list");
    assert_eq!(p.cursor.as_deref(), Some("optional-cursor-value"));
    let r: ListToolsResult = result(fixture!("tools_list_response.json"));
    assert_eq!(r.page.next_cursor.as_deref(), Some("next-page-cursor"));
    assert_eq!(r.tools[0].input_schema["type"], "object");
    let r: ListToolsResult = result(fixture!(
        "tools_list_response_output_schema_annotations.json"
    ));
    let tool = &r.tools[0];
    assert_eq!(
        tool.output_schema.as_ref().unwrap()["required"][2],
        "humidity"
    );
    let hints = tool.annotations.as_ref().unwrap();
    assert_eq!(hints.read_only_hint, Some(true));
    assert_eq!(hints.open_world_hint, Some(true));
    assert!(r.page.next_cursor.is_none());
}

#[test]
fn tools_call() {
    let p: CallToolRequestParams =
        request_params(fixture!("tools_call_request.json"), "tools/call");
    assert_eq!(p.name, "get_weather");
    assert_eq!(p.arguments.unwrap()["location"], "New York");
    let r: CallToolResult = result(fixture!("tools_call_response.json"));
    assert!(!r.failed());
    assert!(r.content[0].as_text().unwrap().contains("72°F"));
    let r: CallToolResult = result(fixture!("tools_call_response_structured.json"));
    assert_eq!(r.structured_content.unwrap()["humidity"], 65);
    let r: CallToolResult = result(fixture!("tools_call_response_content_types.json"));
    assert_eq!(r.content.len(), 4);
    let r: CallToolResult = result(fixture!("tools_call_error_result.json"));
    assert!(r.failed());
}

#[test]
fn protocol_error_for_unknown_tool() {
    let e = error(fixture!("error_unknown_tool.json"));
    assert_eq!(e.code, -32602);
    assert_eq!(e.message, "Unknown tool: invalid_tool_name");
}

#[test]
fn cancellation() {
    let (m, original) = decode(fixture!("cancelled_notification.json"));
    assert!(matches!(m, Message::Notification(_)));
    let p: CancelledNotificationParams =
        typed_round_trip("cancelled_notification.json", &original["params"]);
    assert_eq!(p.request_id, "123".into());
}

#[test]
fn ping() {
    let _: EmptyResult = request_params(fixture!("ping_request.json"), "ping");
    let _: EmptyResult = result(fixture!("ping_response.json"));
}

#[test]
fn logging_set_level() {
    let p: SetLevelRequestParams = request_params(
        fixture!("logging_set_level_request.json"),
        "logging/setLevel",
    );
    assert_eq!(p.level, gpu_mcp_protocol::LoggingLevel::Info);
}

#[test]
fn discover_and_envelope_2026() {
    let (m, _) = decode(fixture!("discover_request_2026-07-28.json"));
    let Message::Request(req) = m else { panic!() };
    assert_eq!(req.method, "server/discover");
    let env = RequestEnvelope::from_params(req.params.as_ref())
        .unwrap()
        .unwrap();
    assert_eq!(env.protocol_version.as_str(), "2026-07-28");
    assert!(env.client_info.is_some());

    let r: DiscoverResult = result(fixture!("discover_response_2026-07-28.json"));
    assert_eq!(r.result_type, "complete");
    assert_eq!(r.supported_versions[0], "2026-07-28");
    assert!(
        r.meta
            .unwrap()
            .contains_key("io.modelcontextprotocol/serverInfo")
    );

    let p: CallToolRequestParams =
        request_params(fixture!("tools_call_request_2026-07-28.json"), "tools/call");
    assert!(
        p.meta
            .unwrap()
            .contains_key("io.modelcontextprotocol/clientCapabilities")
    );

    let e = error(fixture!("error_unsupported_version_2026-07-28.json"));
    assert_eq!(e.code, -32022);
    let e = error(fixture!("error_header_mismatch_2026-07-28.json"));
    assert_eq!(e.code, -32020);
}
