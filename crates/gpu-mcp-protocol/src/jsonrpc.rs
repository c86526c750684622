//! JSON-RPC 2.0 messages as MCP uses them, and the codec that turns bytes into them and back.
//!
//! # Decoding policy
//!
//! [`parse_message`] parses the bytes exactly once into a [`serde_json::Value`] and then moves the
//! members out of it, so a large `params` object is never copied.
//! Everything it rejects comes back as a ready-to-send error [`Response`]:
//!
//! - bytes that are not JSON (including invalid UTF-8, trailing garbage, an empty line, and
//!   nesting deeper than serde_json's recursion limit of 128) are `-32700` with `id: null`;
//! - JSON that is not a JSON-RPC 2.0 message is `-32600`, carrying the request's id when it can be
//!   read: a non-object, a batch array (JSON-RPC batching was removed from MCP in 2025-06-18), a
//!   missing or wrong `jsonrpc`, a non-string `method`, `params` that is neither object nor array,
//!   and a request whose `id` is `null`, fractional or not a string/integer.
//!
//! `"params": null` is accepted and read as absent, which some clients send.
//!
//! # Encoding
//!
//! [`encode`] writes compact JSON on one line: serde_json escapes control characters inside strings,
//! so the output never contains a newline and can be framed by newline-delimited transports.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// A request id: a string or an integer (never `null` in MCP).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// Integer id.
    Number(i64),
    /// String id.
    String(String),
}

impl RequestId {
    /// Reads an id from a JSON value; `None` for anything but a string or an integer that fits
    /// `i64`.
    pub fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(Self::String(s.clone())),
            Value::Number(n) => n.as_i64().map(Self::Number),
            _ => None,
        }
    }

    fn from_owned_value(value: Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(Self::String(s)),
            Value::Number(n) => n.as_i64().map(Self::Number),
            _ => None,
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<i64> for RequestId {
    fn from(n: i64) -> Self {
        Self::Number(n)
    }
}

impl From<String> for RequestId {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

/// The only JSON-RPC version string.
pub const JSONRPC_VERSION: &str = "2.0";

/// A request: has an id and expects a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// Correlates the response.
    pub id: RequestId,
    /// Method name, e.g. `tools/call`.
    pub method: String,
    /// Parameters (an object in MCP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

impl Request {
    /// A request with the given id, method and parameters.
    pub fn new(id: impl Into<RequestId>, method: impl Into<String>, params: Option<Value>) -> Self {
        Self {
            jsonrpc: JSONRPC_VERSION.into(),
            id: id.into(),
            method: method.into(),
            params,
        }
    }
}

/// A notification: no id, no response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// Method name, e.g. `notifications/initialized`.
    pub method: String,
    /// Parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

impl Notification {
    /// A notification with the given method and parameters.
    pub fn new(method: impl Into<String>, params: Option<Value>) -> Self {
        Self {
            jsonrpc: JSONRPC_VERSION.into(),
            method: method.into(),
            params,
        }
    }
}

/// A response: `result` or `error`, never both.
///
/// A success payload is either a [`Value`] (`result`) or, for large results built straight from
/// Rust types, JSON already encoded ([`Response::success_encoded`]), which is written to the wire
/// as is instead of going through a `Value` tree.
/// Read the payload with [`Response::result_value`] to cover both.
#[derive(Debug, Clone, Deserialize)]
pub struct Response {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// The request's id; `null` only when the id could not be read (parse errors).
    pub id: Option<RequestId>,
    /// Success payload (`None` for an error, and for a success built with
    /// [`Response::success_encoded`]).
    #[serde(default)]
    pub result: Option<Value>,
    /// Failure payload.
    #[serde(default)]
    pub error: Option<ErrorObject>,
    /// Success payload already encoded as JSON.
    #[serde(skip)]
    encoded_result: Option<Box<RawValue>>,
}

impl Serialize for Response {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Response", 3)?;
        s.serialize_field("jsonrpc", &self.jsonrpc)?;
        s.serialize_field("id", &self.id)?;
        if let Some(raw) = &self.encoded_result {
            s.serialize_field("result", raw)?;
        } else if let Some(result) = &self.result {
            s.serialize_field("result", result)?;
        }
        if let Some(error) = &self.error {
            s.serialize_field("error", error)?;
        }
        s.end()
    }
}

impl PartialEq for Response {
    fn eq(&self, other: &Self) -> bool {
        self.jsonrpc == other.jsonrpc
            && self.id == other.id
            && self.error == other.error
            && self.result_value() == other.result_value()
    }
}

impl Response {
    /// A success response.
    pub fn success(id: RequestId, result: Value) -> Self {
        Self {
            jsonrpc: JSONRPC_VERSION.into(),
            id: Some(id),
            result: Some(result),
            error: None,
            encoded_result: None,
        }
    }
    /// A success response whose result is JSON already encoded (for example with
    /// [`serde_json::value::to_raw_value`]): it is written out byte for byte, so a large result
    /// is serialized once, straight from its Rust types, with no [`Value`] in between.
    /// It must be compact JSON (no newline), as `to_raw_value` writes it, since stdio frames
    /// messages by line.
    pub fn success_encoded(id: RequestId, result: Box<RawValue>) -> Self {
        Self {
            jsonrpc: JSONRPC_VERSION.into(),
            id: Some(id),
            result: None,
            error: None,
            encoded_result: Some(result),
        }
    }
    /// An error response.
    pub fn error(id: Option<RequestId>, error: ErrorObject) -> Self {
        Self {
            jsonrpc: JSONRPC_VERSION.into(),
            id,
            result: None,
            error: Some(error),
            encoded_result: None,
        }
    }
    /// Whether this is an error response.
    pub fn is_error(&self) -> bool {
        self.error.is_some()
    }
    /// The success payload when it was built with [`Response::success_encoded`].
    pub fn encoded_result(&self) -> Option<&RawValue> {
        self.encoded_result.as_deref()
    }
    /// The success payload as a [`Value`], however it was built (an encoded payload is parsed,
    /// so prefer [`Response::encoded_result`] on hot paths).
    pub fn result_value(&self) -> Option<Cow<'_, Value>> {
        if let Some(result) = &self.result {
            return Some(Cow::Borrowed(result));
        }
        let raw = self.encoded_result.as_ref()?;
        serde_json::from_str(raw.get()).ok().map(Cow::Owned)
    }
}

/// The error member of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// Error code (see [`ErrorCode`]).
    pub code: i64,
    /// Short human-readable description.
    pub message: String,
    /// Optional structured detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// Builds an error object from a standard code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.code(),
            message: message.into(),
            data: None,
        }
    }
    /// Attaches structured detail.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
    /// `-32700`: the bytes are not JSON.
    pub fn parse_error(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ParseError, message)
    }
    /// `-32600`: the JSON is not a valid request, or the request is not allowed now.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    /// `-32601` for `method`.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            ErrorCode::MethodNotFound,
            format!("Method not found: {method}"),
        )
    }
    /// `-32602`: bad parameters.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParams, message)
    }
    /// `-32603`: the server failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }
    /// `-32020`: an HTTP header disagrees with the body (2026-07-28).
    pub fn header_mismatch(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::HeaderMismatch, message)
    }
    /// `-32021`: the request needs a client capability the client did not declare (2026-07-28);
    /// `data.requiredCapabilities` lists it.
    pub fn missing_client_capability(required: Value) -> Self {
        Self::new(
            ErrorCode::MissingClientCapability,
            "Missing required client capability",
        )
        .with_data(serde_json::json!({ "requiredCapabilities": required }))
    }
    /// `-32022`: `requested` is not a protocol version this server speaks (2026-07-28);
    /// `data` is `{supported: [...], requested}` so the client can pick another.
    pub fn unsupported_protocol_version(requested: &str, supported: &[&str]) -> Self {
        Self::new(
            ErrorCode::UnsupportedProtocolVersion,
            format!("Unsupported protocol version: {requested}"),
        )
        .with_data(serde_json::json!({ "supported": supported, "requested": requested }))
    }
}

/// JSON-RPC and MCP error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// -32700: invalid JSON.
    ParseError,
    /// -32600: not a valid request object.
    InvalidRequest,
    /// -32601: method does not exist.
    MethodNotFound,
    /// -32602: invalid method parameters (also: unknown tool).
    InvalidParams,
    /// -32603: internal error.
    InternalError,
    /// -32002: resource not found.
    ResourceNotFound,
    /// -32020: HTTP headers disagree with the body (2026-07-28).
    HeaderMismatch,
    /// -32021: a required client capability is missing (2026-07-28).
    MissingClientCapability,
    /// -32022: unsupported protocol version (2026-07-28).
    UnsupportedProtocolVersion,
    /// -32042: URL elicitation required (2025-11-25).
    UrlElicitationRequired,
}

impl ErrorCode {
    /// Every code, for lookups.
    pub const ALL: [ErrorCode; 10] = [
        Self::ParseError,
        Self::InvalidRequest,
        Self::MethodNotFound,
        Self::InvalidParams,
        Self::InternalError,
        Self::ResourceNotFound,
        Self::HeaderMismatch,
        Self::MissingClientCapability,
        Self::UnsupportedProtocolVersion,
        Self::UrlElicitationRequired,
    ];

    /// The numeric code.
    pub fn code(self) -> i64 {
        match self {
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::InternalError => -32603,
            Self::ResourceNotFound => -32002,
            Self::HeaderMismatch => -32020,
            Self::MissingClientCapability => -32021,
            Self::UnsupportedProtocolVersion => -32022,
            Self::UrlElicitationRequired => -32042,
        }
    }

    /// The named code for a number, if it is one of ours.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// The HTTP status a Streamable HTTP server answers a JSON-RPC error with (the 2026-07-28 map):
/// `-32700`, `-32600`, `-32602`, `-32020`, `-32021` and `-32022` are `400`, `-32601` is `404`,
/// everything else (including tool failures, which are results, not errors) is `200`.
pub fn http_status_for_error(code: i64) -> u16 {
    match code {
        -32700 | -32600 | -32602 | -32020 | -32021 | -32022 => 400,
        -32601 => 404,
        _ => 200,
    }
}

/// Any incoming or outgoing JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A notification.
    Notification(Notification),
    /// A response (to a request this side sent).
    Response(Response),
}

impl Message {
    /// The method of a request or notification.
    pub fn method(&self) -> Option<&str> {
        match self {
            Self::Request(r) => Some(&r.method),
            Self::Notification(n) => Some(&n.method),
            Self::Response(_) => None,
        }
    }

    /// The id of a request or response.
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            Self::Request(r) => Some(&r.id),
            Self::Notification(_) => None,
            Self::Response(r) => r.id.as_ref(),
        }
    }
}

impl Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Request(r) => r.serialize(serializer),
            Self::Notification(n) => n.serialize(serializer),
            Self::Response(r) => r.serialize(serializer),
        }
    }
}

impl From<Request> for Message {
    fn from(r: Request) -> Self {
        Self::Request(r)
    }
}

impl From<Notification> for Message {
    fn from(n: Notification) -> Self {
        Self::Notification(n)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Self::Response(r)
    }
}

/// Decodes one JSON-RPC message.
///
/// The `Err` is the ready error reply: `-32700` (id `null`) for bytes that are not JSON, `-32600`
/// (with the id when it can be read) for JSON that is not a JSON-RPC 2.0 message.
/// See the module documentation for the exact rules.
// The reply is returned by value: it is the contract transports code against, and it is
// built only on the error path.
#[allow(clippy::result_large_err)]
pub fn parse_message(bytes: &[u8]) -> Result<Message, Response> {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            let message = match std::str::from_utf8(bytes) {
                Err(utf8) => format!("Parse error: invalid UTF-8: {utf8}"),
                Ok(_) => format!("Parse error: {e}"),
            };
            return Err(Response::error(None, ErrorObject::parse_error(message)));
        }
    };
    message_from_value(value)
}

/// Interprets an already-parsed JSON value as a JSON-RPC message, by the same rules as
/// [`parse_message`].
// The reply is returned by value: it is the contract transports code against, and it is
// built only on the error path.
#[allow(clippy::result_large_err)]
pub fn message_from_value(value: Value) -> Result<Message, Response> {
    let mut obj = match value {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Err(invalid(
                None,
                "Invalid request: batch arrays are not supported (JSON-RPC batching was removed in MCP 2025-06-18)",
            ));
        }
        _ => {
            return Err(invalid(
                None,
                "Invalid request: a JSON-RPC message must be a JSON object",
            ));
        }
    };

    let raw_id = obj.remove("id");
    let id = raw_id.as_ref().and_then(RequestId::from_value);

    match obj.remove("jsonrpc") {
        Some(Value::String(v)) if v == JSONRPC_VERSION => {}
        _ => return Err(invalid(id, "Invalid request: `jsonrpc` must be \"2.0\"")),
    }

    if let Some(method) = obj.remove("method") {
        let Value::String(method) = method else {
            return Err(invalid(id, "Invalid request: `method` must be a string"));
        };
        let params = match obj.remove("params") {
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

    let result = obj.remove("result");
    let error = obj.remove("error");
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
    }
}

macro_rules! encodable {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {}
        impl Encode for $t {}
    )*};
}
encodable!(Message, Request, Notification);

impl private::Sealed for Response {
    fn encoded_len_hint(&self) -> usize {
        128 + self.encoded_result.as_ref().map_or(0, |r| r.get().len())
    }
}
impl Encode for Response {}

/// Fallback written if a message cannot be serialized, which cannot happen for messages made of
/// `serde_json::Value`s and strings.
const ENCODE_FAILURE: &[u8] =
    br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"Internal error: response could not be encoded"}}"#;

/// Encodes a message as compact JSON on one line (no trailing newline, no embedded newline).
pub fn encode<T: Encode + ?Sized>(message: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.encoded_len_hint());
    if serde_json::to_writer(&mut out, message).is_err() {
        out.clear();
        out.extend_from_slice(ENCODE_FAILURE);
    }
    out
}

/// [`encode`] followed by a single `\n`, the framing of the stdio transport.
pub fn encode_line<T: Encode + ?Sized>(message: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.encoded_len_hint() + 1);
    if serde_json::to_writer(&mut out, message).is_err() {
        out.clear();
        out.extend_from_slice(ENCODE_FAILURE);
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encoded_results_are_written_as_is() {
        let raw = serde_json::value::to_raw_value(&json!({"b": [1, 2], "a": "x"})).unwrap();
        let r = Response::success_encoded(RequestId::Number(7), raw);
        assert!(r.result.is_none() && !r.is_error());
        assert_eq!(
            String::from_utf8(encode(&r)).unwrap(),
            r#"{"jsonrpc":"2.0","id":7,"result":{"a":"x","b":[1,2]}}"#
        );
        let plain = Response::success(RequestId::Number(7), json!({"a": "x", "b": [1, 2]}));
        assert_eq!(r, plain);
        assert_eq!(encode(&r), encode(&plain));
        let back: Response = serde_json::from_slice(&encode(&r)).unwrap();
        assert_eq!(back.result, plain.result);
        assert!(back.encoded_result().is_none());
    }

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

    #[test]
    fn error_constructors_use_their_codes() {
        assert_eq!(ErrorObject::parse_error("x").code, -32700);
        assert_eq!(ErrorObject::invalid_request("x").code, -32600);
        let e = ErrorObject::method_not_found("server/discover");
        assert_eq!(e.code, -32601);
        assert!(e.message.contains("server/discover"));
        assert_eq!(ErrorObject::invalid_params("x").code, -32602);
        assert_eq!(ErrorObject::internal("x").code, -32603);
        assert_eq!(ErrorObject::header_mismatch("x").code, -32020);
        let e = ErrorObject::missing_client_capability(json!({"sampling": {}}));
        assert_eq!(e.code, -32021);
        assert_eq!(
            e.data,
            Some(json!({"requiredCapabilities": {"sampling": {}}}))
        );
    }

    #[test]
    fn http_status_map() {
        for c in [-32700, -32600, -32602, -32020, -32021, -32022] {
            assert_eq!(http_status_for_error(c), 400, "{c}");
        }
        assert_eq!(http_status_for_error(-32601), 404);
        assert_eq!(http_status_for_error(-32603), 200);
        assert_eq!(http_status_for_error(-32002), 200);
    }

    #[test]
    fn error_codes_round_trip() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(c.code()), Some(c));
        }
        assert_eq!(ErrorCode::from_code(1), None);
    }

    #[test]
    fn unsupported_version_error_lists_versions() {
        let e = ErrorObject::unsupported_protocol_version("2099-01-01", &["2026-07-28"]);
        assert_eq!(e.code, -32022);
        assert_eq!(
            e.data,
            Some(json!({"supported": ["2026-07-28"], "requested": "2099-01-01"}))
        );
    }
}
