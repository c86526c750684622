#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Results encoded once and shared by many responses (`Response::success_shared`) are written as
//! the bytes a response encoded for itself would be, with each response's own id.

use gpu_mcp_protocol::{
    CallToolResult, EncodedMembers, EncodedObject, JsonObject, Message, RequestId, Response,
    SharedCallToolResult, encode, encode_line, parse_message,
};
use serde_json::value::{RawValue, to_raw_value};
use serde_json::{Value, json};

fn members() -> JsonObject {
    json!({"resultType": "complete", "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "n\"1", "version": "0"}}})
        .as_object()
        .cloned()
        .unwrap()
}

fn result() -> CallToolResult {
    CallToolResult::structured_encoded(
        &json!({"gpus": [{"uuid": "GPU-1", "temp": 41.5}], "note": "a\"b\\c\n"}),
        "GPU 0 is healthy.",
    )
}

fn ids() -> Vec<RequestId> {
    vec![
        RequestId::Number(0),
        RequestId::Number(i64::MIN),
        RequestId::String(String::new()),
        RequestId::String("quote \" backslash \\ newline \n control \u{1f} é".into()),
    ]
}

#[test]
fn a_shared_result_is_written_as_the_result_encoded_for_one_response() {
    let shared = SharedCallToolResult::new(result()).unwrap();
    for id in ids() {
        for extra in [None, Some(members())] {
            let own = Response::success_encoded(
                id.clone(),
                shared.result().to_raw_value(extra.as_ref()).unwrap(),
            );
            let spliced = Response::success_shared(
                id.clone(),
                shared.encoded().clone(),
                extra.as_ref().map(EncodedMembers::new),
            );
            assert_eq!(
                String::from_utf8(encode(&spliced)).unwrap(),
                String::from_utf8(encode(&own)).unwrap(),
                "{id}"
            );
            // Through serde, as a message, on a line, read back: the same response.
            assert_eq!(
                serde_json::to_string(&spliced).unwrap(),
                serde_json::to_string(&own).unwrap()
            );
            let message = Message::Response(spliced.clone());
            assert_eq!(encode(&message), encode(&own));
            let mut line = encode(&own);
            line.push(b'\n');
            assert_eq!(encode_line(&spliced), line);
            assert_eq!(spliced, own);
            assert_eq!(spliced.result_value(), own.result_value());
            assert_eq!(
                spliced.encoded_result().unwrap().get(),
                own.encoded_result().unwrap().get()
            );
            let Ok(Message::Response(back)) = parse_message(&encode(&spliced)) else {
                panic!("a shared response does not read back");
            };
            assert_eq!(back.id.as_ref(), Some(&id));
            assert_eq!(back.result_value(), own.result_value());
        }
    }
}

#[test]
fn members_are_spliced_into_any_object() {
    let object =
        |text: &str| EncodedObject::new(RawValue::from_string(text.to_owned()).unwrap()).unwrap();
    let one = |m: Value| EncodedMembers::new(m.as_object().unwrap());
    let cases = [
        ("{}", json!({"a": 1}), r#"{"a":1}"#),
        ("{ }", json!({"a": 1}), r#"{ "a":1}"#),
        (
            r#"{"x":[1,{}]}"#,
            json!({"a": 1, "b": "}"}),
            r#"{"x":[1,{}],"a":1,"b":"}"}"#,
        ),
        (r#"{"x":1}"#, json!({}), r#"{"x":1}"#),
    ];
    for (text, extra, want) in cases {
        let r = Response::success_shared(RequestId::Number(3), object(text), Some(one(extra)));
        let bytes = String::from_utf8(encode(&r)).unwrap();
        assert_eq!(
            bytes,
            format!(r#"{{"jsonrpc":"2.0","id":3,"result":{want}}}"#)
        );
        let _: Value = serde_json::from_str(&bytes).unwrap();
    }
    let r = Response::success_shared(RequestId::Number(3), object(r#"{"x":1}"#), None);
    assert_eq!(
        String::from_utf8(encode(&r)).unwrap(),
        r#"{"jsonrpc":"2.0","id":3,"result":{"x":1}}"#
    );
}

#[test]
fn only_objects_are_encoded_objects_and_clones_share_their_bytes() {
    for text in [r#""{""#, "[1]", "1", "null"] {
        assert!(EncodedObject::new(RawValue::from_string(text.into()).unwrap()).is_none());
    }
    let shared = SharedCallToolResult::new(result()).unwrap();
    let clone = shared.clone();
    assert!(EncodedObject::ptr_eq(shared.encoded(), clone.encoded()));
    assert_eq!(
        shared.encoded().get(),
        to_raw_value(shared.result()).unwrap().get()
    );
    assert_eq!(clone.into_result(), result());
}
