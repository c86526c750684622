//! What the fuzz targets share: the checks every decoded message and every refusal must pass,
//! and a JSON comparison that forgives the last bit of a float (serde_json's default float
//! parsing is not exact, so a float may move by one unit in the last place through a text
//! round trip; the proptest strategies leave floats out for the same reason).

use gpu_mcp_protocol::{Message, Response, encode, parse_message};
use serde_json::Value;

/// Whether `a` and `b` are the same JSON, floats equal to within a few units in the last place.
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-15,
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// The JSON form of anything serialisable (`Null` when it does not serialise, which the caller's
/// comparison then shows).
pub fn json_of<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A decoded message encodes to one line of JSON that decodes to the same message.
pub fn assert_round_trip(message: &Message) {
    let bytes = encode(message);
    assert!(!bytes.contains(&b'\n'), "an encoded message is one line");
    match parse_message(&bytes) {
        Ok(back) => assert!(
            same_json(&json_of(&back), &json_of(message)),
            "round trip changed the message: {message:?} -> {back:?}"
        ),
        Err(reply) => panic!(
            "an encoded message does not decode: {} -> {reply:?}",
            String::from_utf8_lossy(&bytes)
        ),
    }
}

/// A refusal of the decoder is a parse (-32700) or invalid-request (-32600) error reply that
/// itself encodes to one line and decodes as that reply.
pub fn assert_clean_refusal(reply: &Response) {
    let Some(error) = reply.error.as_ref() else {
        panic!("a refusal is an error reply: {reply:?}");
    };
    assert!(
        error.code == -32700 || error.code == -32600,
        "refused with code {}",
        error.code
    );
    assert_response_bytes(&encode(reply));
}

/// Bytes a server writes as its answer: one line of JSON that decodes as a JSON-RPC response
/// and encodes back to the same JSON.
pub fn assert_response_bytes(bytes: &[u8]) -> Response {
    assert!(!bytes.contains(&b'\n'), "a reply is one line");
    match parse_message(bytes) {
        Ok(Message::Response(response)) => {
            assert_round_trip(&Message::Response(response.clone()));
            response
        }
        other => panic!(
            "a reply is not a response: {} -> {other:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}
