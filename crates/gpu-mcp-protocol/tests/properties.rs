//! Properties of everything a client or a node feeds this crate: the JSON-RPC decoder never
//! panics on any bytes and answers what it refuses with a well-formed error reply; encoding a
//! message and parsing it back gives the same message, and so does reading it as JSON first (as
//! the gateway reads an agent's reply); a tool result re-encodes to itself; the 2026-07-28
//! envelope reader never panics and agrees with the raw version it reads; header values survive
//! their encoding. The fuzz target `jsonrpc_message` (`cargo xtask fuzz`) hunts the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gpu_mcp_protocol::envelope::{
    META_CLIENT_CAPABILITIES, META_CLIENT_INFO, META_PROTOCOL_VERSION, envelope_version,
};
use gpu_mcp_protocol::http::{decode_header_value, encode_header_value, mirrored_headers};
use gpu_mcp_protocol::{
    CallToolResult, Content, ErrorObject, Message, Notification, ProtocolVersion, Request,
    RequestEnvelope, RequestId, Response, encode, encode_line, message_from_value, parse_message,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// 256 cases, or `PROPTEST_CASES` for a longer hunt.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    config
}

/// Keys that matter to the decoder and the envelope, mixed with arbitrary ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "jsonrpc", "id", "method", "params", "result", "error", "code", "message", "data",
            "_meta", "name", "arguments", META_PROTOCOL_VERSION, META_CLIENT_CAPABILITIES,
            META_CLIENT_INFO,
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// JSON values without floats (a float may not survive a text round trip bit for bit).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec!["2.0", "tools/call", "2026-07-28", "2025-06-18", ""])
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn request_id() -> impl Strategy<Value = RequestId> {
    prop_oneof![
        any::<i64>().prop_map(RequestId::Number),
        any::<String>().prop_map(RequestId::String),
    ]
}

/// `params` as the decoder keeps them: an object or an array, or none.
fn params() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        json_value().prop_map(|v| match v {
            p @ (Value::Object(_) | Value::Array(_)) => Some(p),
            other => Some(json!({ "value": other })),
        }),
    ]
}

fn error_object() -> impl Strategy<Value = ErrorObject> {
    (
        any::<i64>(),
        any::<String>(),
        prop::option::of(json_value()),
    )
        // `"data": null` reads back as no data, which means the same.
        .prop_map(|(code, message, data)| ErrorObject {
            code,
            message,
            data: data.filter(|d| !d.is_null()),
        })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (request_id(), any::<String>(), params())
            .prop_map(|(id, method, params)| Message::Request(Request::new(id, method, params))),
        (any::<String>(), params())
            .prop_map(|(method, params)| Message::Notification(Notification::new(method, params))),
        (request_id(), json_value())
            .prop_map(|(id, result)| Message::Response(Response::success(id, result))),
        (prop::option::of(request_id()), error_object())
            .prop_map(|(id, error)| Message::Response(Response::error(id, error))),
    ]
}

/// What the decoder answers for input it refuses: an error reply with a parse or invalid-request
/// code that encodes to one line of JSON and decodes again.
fn assert_clean_refusal(reply: &Response) {
    let error = reply.error.as_ref().expect("a refusal is an error reply");
    assert!(
        error.code == -32700 || error.code == -32600,
        "code {}",
        error.code
    );
    let bytes = encode(reply);
    assert!(!bytes.contains(&b'\n'));
    match parse_message(&bytes) {
        Ok(Message::Response(back)) => assert_eq!(&back, reply),
        other => panic!("the refusal does not decode as a response: {other:?}"),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_decode_or_get_a_clean_refusal(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(reply) = parse_message(&bytes) {
            assert_clean_refusal(&reply);
        }
    }

    #[test]
    fn any_json_decodes_or_gets_an_invalid_request(value in json_value()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        match parse_message(&bytes) {
            Ok(message) => {
                // Whatever was accepted encodes and decodes to itself.
                prop_assert_eq!(parse_message(&encode(&message)).unwrap(), message);
            }
            Err(reply) => {
                assert_clean_refusal(&reply);
                prop_assert_eq!(reply.error.as_ref().unwrap().code, -32600);
            }
        }
    }

    #[test]
    fn messages_round_trip_through_the_codec(message in message()) {
        let bytes = encode(&message);
        prop_assert!(!bytes.contains(&b'\n'), "one line");
        prop_assert_eq!(parse_message(&bytes).unwrap(), message.clone());
        let line = encode_line(&message);
        prop_assert_eq!(line.last(), Some(&b'\n'));
        prop_assert_eq!(parse_message(&line[..line.len() - 1]).unwrap(), message);
    }

    #[test]
    fn decoding_bytes_and_decoding_their_json_value_agree(value in json_value()) {
        // The gateway's HTTP transport reads an agent's body as JSON first, then as a message.
        let bytes = serde_json::to_vec(&value).unwrap();
        match (parse_message(&bytes), message_from_value(value)) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "the decoders disagree: {a:?} vs {b:?}"),
        }
    }

    #[test]
    fn a_tool_result_read_from_a_reply_re_encodes_to_itself(
        text in any::<String>(),
        structured in prop::option::of(json_value()),
        is_error in prop::option::of(any::<bool>()),
        encoded in any::<bool>(),
    ) {
        // `"structuredContent": null` reads back as none, which means the same.
        let structured = structured.filter(|s| !s.is_null());
        let result = match (&structured, encoded) {
            (Some(s), true) => CallToolResult::structured_encoded(s, text.clone()),
            _ => CallToolResult::new(vec![Content::text(text.clone())], structured.clone(), is_error),
        };
        let raw = result.to_raw_value(None).unwrap();
        let back: CallToolResult = serde_json::from_str(raw.get()).unwrap();
        prop_assert_eq!(&back, &result);
        let again: CallToolResult =
            serde_json::from_str(back.to_raw_value(None).unwrap().get()).unwrap();
        prop_assert_eq!(again, back);
    }

    #[test]
    fn damaged_messages_never_panic(
        message in message(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut bytes = encode(&message);
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let cut = cut.index(bytes.len() + 1);
        if let Err(reply) = parse_message(&bytes[..cut]) {
            assert_clean_refusal(&reply);
        }
    }

    #[test]
    fn the_envelope_reader_never_panics_and_agrees_with_the_raw_version(
        meta in prop::collection::vec((key(), json_value()), 0..5),
        version in prop_oneof![
            prop::sample::select(ProtocolVersion::supported_strs().to_vec()).prop_map(str::to_owned),
            any::<String>(),
        ],
        capabilities in prop::option::of(json_value()),
    ) {
        let mut meta: Map<String, Value> = meta.into_iter().collect();
        meta.insert(META_PROTOCOL_VERSION.to_owned(), Value::String(version.clone()));
        if let Some(c) = capabilities {
            meta.insert(META_CLIENT_CAPABILITIES.to_owned(), c);
        }
        let params = json!({"name": "x", "_meta": meta});
        prop_assert_eq!(envelope_version(Some(&params)), Some(version.as_str()));
        match RequestEnvelope::from_params(Some(&params)) {
            Ok(Some(envelope)) => {
                prop_assert_eq!(envelope.protocol_version.as_str(), version.as_str());
                prop_assert!(meta[META_CLIENT_CAPABILITIES].is_object());
            }
            Ok(None) => prop_assert!(false, "a present version is an envelope"),
            Err(error) => prop_assert!(error.code == -32602 || error.code == -32022),
        }
    }

    #[test]
    fn any_params_are_read_without_panicking(params in prop::option::of(json_value())) {
        let raw = envelope_version(params.as_ref());
        if let Ok(Some(envelope)) = RequestEnvelope::from_params(params.as_ref()) {
            prop_assert_eq!(Some(envelope.protocol_version.as_str()), raw);
        }
    }

    #[test]
    fn header_values_round_trip_and_stay_visible_ascii(value in any::<String>()) {
        let encoded = encode_header_value(&value);
        prop_assert!(encoded.bytes().all(|b| (0x20..0x7f).contains(&b)), "{encoded:?}");
        prop_assert!(!encoded.starts_with([' ', '\t']) && !encoded.ends_with([' ', '\t']));
        let decoded = decode_header_value(&encoded).map(|d| d.into_owned());
        prop_assert_eq!(decoded, Some(value));
    }

    #[test]
    fn any_header_value_decodes_without_panicking(raw in any::<String>(), inner in any::<String>()) {
        let _ = decode_header_value(&raw);
        let wrapped = format!("=?base64?{inner}?=");
        if let Some(decoded) = decode_header_value(&wrapped) {
            // A value that decodes is one the encoder would write the same way back, or plain.
            let encoded = encode_header_value(&decoded).into_owned();
            let again = decode_header_value(&encoded).map(|d| d.into_owned());
            prop_assert_eq!(again, Some(decoded.into_owned()));
        }
    }

    #[test]
    fn mirrored_headers_decode_to_the_body_members(
        method in prop_oneof![
            prop::sample::select(vec!["tools/call", "prompts/get", "resources/read", "ping"])
                .prop_map(str::to_owned),
            any::<String>(),
        ],
        name in any::<String>(),
    ) {
        let member = if method == "resources/read" { "uri" } else { "name" };
        let request = Request::new(1, method.clone(), Some(json!({ member: name })));
        let headers = mirrored_headers(&request);
        prop_assert_eq!(&headers[0].1, &method);
        if let Some((_, value)) = headers.get(1) {
            let decoded = decode_header_value(value).map(|d| d.into_owned());
            prop_assert_eq!(decoded, Some(name));
        }
    }
}

#[test]
fn deep_nesting_and_huge_numbers_are_refused_cleanly() {
    for depth in [127usize, 128, 129, 100_000] {
        let mut body = "[".repeat(depth);
        body.push_str(&"]".repeat(depth));
        if let Err(reply) = parse_message(body.as_bytes()) {
            assert_clean_refusal(&reply);
        }
        let mut body = r#"{"jsonrpc":"2.0","id":1,"method":"x","params":"#.to_owned();
        body.push_str(&"{\"a\":".repeat(depth));
        body.push('1');
        body.push_str(&"}".repeat(depth));
        body.push('}');
        if let Err(reply) = parse_message(body.as_bytes()) {
            assert_clean_refusal(&reply);
        }
    }
    for id in ["1e400", "-1e400", "18446744073709551616", "1.5", "-0"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
        if let Err(reply) = parse_message(body.as_bytes()) {
            assert_clean_refusal(&reply);
        }
    }
}
