//! Bytes to JSON-RPC messages and back (the policy is on the parent module).

use serde::Serialize;
use serde_json::Value;

use super::{ErrorObject, JSONRPC_VERSION, Message, Notification, Request, RequestId, Response};

/// Decodes one JSON-RPC message.
///
/// The `Err` is the ready error reply: `-32700` (id `null`) for bytes that are not JSON, `-32600`
/// (with the id when it can be read) for JSON that is not a JSON-RPC 2.0 message.
/// See the module documentation for the exact rules.
// The reply is returned by value: it is the contract transports code against, and it is
// built only on the error path.
#[allow(clippy::result_large_err)]
pub fn parse_message(bytes: &[u8]) -> Result<Message, Response> {
    // The members are read straight into their slots: no map of the whole message and no key
    // strings. Everything else is still read as JSON values and dropped, so exactly the bytes
    // that are not JSON for `serde_json::Value` are a parse error.
    match serde_json::from_slice::<Top>(bytes) {
        Ok(Top::Object(members)) => message_from_members(members),
        Ok(Top::Array) => Err(not_batch()),
        Ok(Top::Other) => Err(not_object()),
        Err(e) => {
            let message = match std::str::from_utf8(bytes) {
                Err(utf8) => format!("Parse error: invalid UTF-8: {utf8}"),
                Ok(_) => format!("Parse error: {e}"),
            };
            Err(Response::error(None, ErrorObject::parse_error(message)))
        }
    }
}

/// Interprets an already-parsed JSON value as a JSON-RPC message, by the same rules as
/// [`parse_message`].
// The reply is returned by value: it is the contract transports code against, and it is
// built only on the error path.
#[allow(clippy::result_large_err)]
pub fn message_from_value(value: Value) -> Result<Message, Response> {
    let mut obj = match value {
        Value::Object(o) => o,
        Value::Array(_) => return Err(not_batch()),
        _ => return Err(not_object()),
    };
    message_from_members(Members {
        jsonrpc: obj.remove("jsonrpc"),
        id: obj.remove("id"),
        method: obj.remove("method"),
        params: obj.remove("params"),
        result: obj.remove("result"),
        error: obj.remove("error"),
    })
}

fn not_batch() -> Response {
    invalid(
        None,
        "Invalid request: batch arrays are not supported (JSON-RPC batching was removed in MCP 2025-06-18)",
    )
}

fn not_object() -> Response {
    invalid(
        None,
        "Invalid request: a JSON-RPC message must be a JSON object",
    )
}

/// The members of a message JSON-RPC defines, each as it was sent (`None` when absent; a
/// member sent twice keeps its last value, as a JSON object read into a map does).
#[derive(Debug, Default)]
struct Members {
    jsonrpc: Option<Value>,
    id: Option<Value>,
    method: Option<Value>,
    params: Option<Value>,
    result: Option<Value>,
    error: Option<Value>,
}

/// What a message's bytes hold at the top: an object's members, an array (a batch) or
/// anything else.
// Only ever the parser's return value, consumed at once: boxing the members would cost an
// allocation per message for nothing.
#[allow(clippy::large_enum_variant)]
enum Top {
    Object(Members),
    Array,
    Other,
}

impl<'de> serde::Deserialize<'de> for Top {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopVisitor)
    }
}

/// A member name, matched without being kept.
#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Field {
    Jsonrpc,
    Id,
    Method,
    Params,
    Result,
    Error,
    #[serde(other)]
    Other,
}

struct TopVisitor;

impl<'de> serde::de::Visitor<'de> for TopVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut m = Members::default();
        while let Some(field) = map.next_key::<Field>()? {
            let slot = match field {
                Field::Jsonrpc => &mut m.jsonrpc,
                Field::Id => &mut m.id,
                Field::Method => &mut m.method,
                Field::Params => &mut m.params,
                Field::Result => &mut m.result,
                Field::Error => &mut m.error,
                Field::Other => {
                    map.next_value::<Value>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value::<Value>()?);
        }
        Ok(Top::Object(m))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        // Read to its end: bytes that are not JSON are a parse error wherever they are.
        while seq.next_element::<Value>()?.is_some() {}
        Ok(Top::Array)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Top, E> {
        Ok(Top::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Top, E> {
        Ok(Top::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Top, E> {
        Ok(Top::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Top, E> {
        Ok(Top::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<Top, E> {
        Ok(Top::Other)
    }
    fn visit_unit<E>(self) -> Result<Top, E> {
        Ok(Top::Other)
    }
}

#[allow(clippy::result_large_err)]
fn message_from_members(m: Members) -> Result<Message, Response> {
    let Members {
        jsonrpc,
        id: raw_id,
        method,
        params,
        result,
        error,
    } = m;
    let id = raw_id.as_ref().and_then(RequestId::from_value);

    match jsonrpc {
        Some(Value::String(v)) if v == JSONRPC_VERSION => {}
        _ => return Err(invalid(id, "Invalid request: `jsonrpc` must be \"2.0\"")),
    }

    if let Some(method) = method {
        let Value::String(method) = method else {
            return Err(invalid(id, "Invalid request: `method` must be a string"));
        };
        let params = match params {
            None | Some(Value::Null) => None,
            Some(p @ (Value::Object(_) | Value::Array(_))) => Some(p),
            Some(_) => {
                return Err(invalid(
                    id,
                    "Invalid request: `params` must be an object or an array",
                ));
            }
        };
        return match raw_id {
            None => Ok(Message::Notification(Notification {
                jsonrpc: JSONRPC_VERSION.into(),
                method,
                params,
            })),
            Some(Value::Null) => Err(invalid(
                None,
                "Invalid request: `id` must be a string or an integer, not null",
            )),
            Some(raw) => match RequestId::from_owned_value(raw) {
                Some(id) => Ok(Message::Request(Request {
                    jsonrpc: JSONRPC_VERSION.into(),
                    id,
                    method,
                    params,
                })),
                None => Err(invalid(
                    None,
                    "Invalid request: `id` must be a string or an integer",
                )),
            },
        };
    }

    match (result, error) {
        (Some(result), None) => match id {
            Some(id) => Ok(Message::Response(Response::success(id, result))),
            None => Err(invalid(
                None,
                "Invalid request: a result response needs a string or integer `id`",
            )),
        },
        (None, Some(error)) => {
            if raw_id.is_some_and(|raw| !raw.is_null()) && id.is_none() {
                return Err(invalid(
                    None,
                    "Invalid request: `id` must be a string or an integer",
                ));
            }
            match serde_json::from_value::<ErrorObject>(error) {
                Ok(error) => Ok(Message::Response(Response::error(id, error))),
                Err(e) => Err(invalid(
                    id,
                    format!("Invalid request: malformed `error` member: {e}"),
                )),
            }
        }
        (Some(_), Some(_)) => Err(invalid(
            id,
            "Invalid request: a response carries `result` or `error`, not both",
        )),
        (None, None) => Err(invalid(
            id,
            "Invalid request: a message needs `method`, `result` or `error`",
        )),
    }
}

fn invalid(id: Option<RequestId>, message: impl Into<String>) -> Response {
    Response::error(id, ErrorObject::invalid_request(message))
}

/// Types [`encode`] accepts: the JSON-RPC message types.
pub trait Encode: Serialize + private::Sealed {}

mod private {
    pub trait Sealed {
        /// Bytes to reserve before encoding, so a large message is not copied while it grows.
        fn encoded_len_hint(&self) -> usize {
            128
        }

        /// Writes the message into `out` without serde when it has a faster way (`false`,
        /// writing nothing, when it has none).
        fn write_direct(&self, _out: &mut Vec<u8>) -> bool {
            false
        }
    }
}

macro_rules! encodable {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {}
        impl Encode for $t {}
    )*};
}
encodable!(Request, Notification);

impl private::Sealed for Response {
    fn encoded_len_hint(&self) -> usize {
        // `{"jsonrpc":"2.0","id":` and `,"result":` and `}`, plus an id: 128 covers most ids.
        128 + self.encoded_result_len()
    }

    fn write_direct(&self, out: &mut Vec<u8>) -> bool {
        self.write_shared(out)
    }
}
impl Encode for Response {}

impl private::Sealed for Message {
    fn encoded_len_hint(&self) -> usize {
        match self {
            Self::Response(r) => r.encoded_len_hint(),
            _ => 128,
        }
    }

    fn write_direct(&self, out: &mut Vec<u8>) -> bool {
        match self {
            Self::Response(r) => r.write_direct(out),
            _ => false,
        }
    }
}
impl Encode for Message {}

/// Fallback written if a message cannot be serialized, which cannot happen for messages made of
/// `serde_json::Value`s and strings.
const ENCODE_FAILURE: &[u8] =
    br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"Internal error: response could not be encoded"}}"#;

/// Encodes a message as compact JSON on one line (no trailing newline, no embedded newline).
pub fn encode<T: Encode + ?Sized>(message: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.encoded_len_hint());
    write(message, &mut out);
    out
}

fn write<T: Encode + ?Sized>(message: &T, out: &mut Vec<u8>) {
    if !message.write_direct(out) && serde_json::to_writer(&mut *out, message).is_err() {
        out.clear();
        out.extend_from_slice(ENCODE_FAILURE);
    }
}

/// [`encode`] followed by a single `\n`, the framing of the stdio transport.
pub fn encode_line<T: Encode + ?Sized>(message: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.encoded_len_hint() + 1);
    write(message, &mut out);
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err_of(bytes: &[u8]) -> Response {
        match parse_message(bytes) {
            Err(r) => r,
            Ok(m) => panic!(
                "expected an error for {:?}, got {m:?}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }

    fn code(r: &Response) -> i64 {
        r.error.as_ref().map(|e| e.code).unwrap_or_default()
    }

    #[test]
    fn parses_request_with_number_and_string_ids() {
        let m = parse_message(br#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#).unwrap();
        assert_eq!(m, Message::Request(Request::new(7, "ping", None)));
        let m = parse_message(br#"{"jsonrpc":"2.0","id":"a-1","method":"tools/list","params":{}}"#)
            .unwrap();
        assert_eq!(
            m,
            Message::Request(Request::new("a-1", "tools/list", Some(json!({}))))
        );
    }

    #[test]
    fn parses_notification_and_null_params() {
        let m = parse_message(
            br#"{"jsonrpc":"2.0","method":"notifications/initialized","params":null}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            Message::Notification(Notification::new("notifications/initialized", None))
        );
    }

    #[test]
    fn parses_responses() {
        let m = parse_message(br#"{"jsonrpc":"2.0","id":3,"result":{"ok":true}}"#).unwrap();
        assert_eq!(
            m,
            Message::Response(Response::success(RequestId::Number(3), json!({"ok": true})))
        );
        let m = parse_message(
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#,
        )
        .unwrap();
        assert!(matches!(m, Message::Response(ref r) if r.id.is_none() && r.is_error()));
    }

    #[test]
    fn malformed_json_is_parse_error_with_null_id() {
        for bad in [
            &b"{"[..],
            b"",
            b"   ",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} trailing",
            b"nul",
        ] {
            let r = err_of(bad);
            assert_eq!(code(&r), -32700, "{bad:?}");
            assert_eq!(r.id, None);
        }
    }

    #[test]
    fn invalid_utf8_is_parse_error() {
        let r = err_of(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xffing\"}");
        assert_eq!(code(&r), -32700);
        assert!(r.error.unwrap().message.contains("UTF-8"));
    }

    #[test]
    fn members_are_read_as_a_map_would_read_them() {
        // Escaped names, a member sent twice (the last counts), members JSON-RPC does not define.
        let m = parse_message(
            br#"{"jsonr\u0070c":"2.0","id":1,"id":2,"method":"ping","x":{"y":[1,2]},"params":{}}"#,
        )
        .unwrap();
        let Message::Request(r) = m else {
            panic!("not a request: {m:?}")
        };
        assert_eq!(r.id, RequestId::Number(2));
        assert_eq!(r.method, "ping");
        // A member nobody reads is still JSON that must be valid, in an object or in a batch.
        for bytes in [
            &br#"{"jsonrpc":"2.0","x":"\ud800","method":"ping","id":1}"#[..],
            &b"{\"jsonrpc\":\"2.0\",\"x\":\"\xff\",\"method\":\"ping\",\"id\":1}"[..],
            &br#"[{"jsonrpc":"2.0"}, "\udfff"]"#[..],
            &br#"{"jsonrpc":"2.0","method":"ping","id":1"#[..],
        ] {
            assert_eq!(
                code(&err_of(bytes)),
                -32700,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(code(&err_of(br#"[{"jsonrpc":"2.0"}, 1]"#)), -32600);
        for scalar in ["1", "-1", "1.5", "true", "null", "\"s\""] {
            assert_eq!(code(&err_of(scalar.as_bytes())), -32600, "{scalar}");
        }
    }

    #[test]
    fn nesting_bomb_is_parse_error_not_a_stack_overflow() {
        let bomb = vec![b'['; 100_000];
        let r = err_of(&bomb);
        assert_eq!(code(&r), -32700);
        let mut objects = Vec::new();
        for _ in 0..50_000 {
            objects.extend_from_slice(br#"{"a":"#);
        }
        assert_eq!(code(&err_of(&objects)), -32700);
    }

    #[test]
    fn not_json_rpc_is_invalid_request() {
        let cases: [(&[u8], Option<RequestId>); 11] = [
            (br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, None),
            (b"[]", None),
            (b"42", None),
            (br#""ping""#, None),
            (br#"{"id":1,"method":"ping"}"#, Some(RequestId::Number(1))),
            (
                br#"{"jsonrpc":"1.0","id":"x","method":"ping"}"#,
                Some(RequestId::from("x")),
            ),
            (
                br#"{"jsonrpc":2.0,"id":1,"method":"ping"}"#,
                Some(RequestId::Number(1)),
            ),
            (br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, None),
            (br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, None),
            (
                br#"{"jsonrpc":"2.0","id":2,"method":7}"#,
                Some(RequestId::Number(2)),
            ),
            (
                br#"{"jsonrpc":"2.0","id":2,"method":"ping","params":"x"}"#,
                Some(RequestId::Number(2)),
            ),
        ];
        for (bytes, id) in cases {
            let r = err_of(bytes);
            assert_eq!(code(&r), -32600, "{}", String::from_utf8_lossy(bytes));
            assert_eq!(r.id, id, "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn batch_error_names_batching() {
        let r = err_of(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#);
        assert!(r.error.unwrap().message.contains("batch"));
    }

    #[test]
    fn incomplete_responses_are_invalid() {
        assert_eq!(code(&err_of(br#"{"jsonrpc":"2.0","id":1}"#)), -32600);
        assert_eq!(
            code(&err_of(
                br#"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}"#
            )),
            -32600
        );
        assert_eq!(
            code(&err_of(br#"{"jsonrpc":"2.0","id":1,"error":{"code":"x"}}"#)),
            -32600
        );
        assert_eq!(code(&err_of(br#"{"jsonrpc":"2.0","result":{}}"#)), -32600);
    }

    #[test]
    fn encode_is_one_line_and_round_trips() {
        let req = Request::new(
            1,
            "tools/call",
            Some(json!({"name": "x", "arguments": {"text": "a\nb\r\nc\u{2028}"}})),
        );
        let bytes = encode(&Message::Request(req.clone()));
        assert!(!bytes.contains(&b'\n'));
        assert!(!bytes.contains(&b'\r'));
        assert_eq!(parse_message(&bytes).unwrap(), Message::Request(req));
        let line = encode_line(&Response::error(None, ErrorObject::parse_error("bad")));
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        assert_eq!(line.last(), Some(&b'\n'));
    }

    #[test]
    fn error_response_keeps_null_id() {
        let v: Value = serde_json::from_slice(&encode(&Response::error(
            None,
            ErrorObject::parse_error("x"),
        )))
        .unwrap();
        assert_eq!(v["id"], Value::Null);
        assert_eq!(v["error"]["code"], -32700);
        assert!(v.get("result").is_none());
    }
}
