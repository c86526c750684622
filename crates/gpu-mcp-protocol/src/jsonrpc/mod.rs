//! JSON-RPC 2.0 messages as MCP uses them, and the codec that turns bytes into them and back.
//!
//! - this module: the message types ([`Request`], [`Notification`], [`Response`], [`Message`]);
//! - [`ErrorObject`], [`ErrorCode`] and [`http_status_for_error`]: errors and their HTTP statuses;
//! - [`parse_message`] and [`encode`]: bytes to messages and back.
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

mod codec;
mod error;
mod shared;

pub use codec::{Encode, encode, encode_line, message_from_value, parse_message};
pub use error::{ErrorCode, ErrorObject, http_status_for_error};
use shared::Spliced;
pub use shared::{EncodedMembers, EncodedObject};

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

    pub(crate) fn from_owned_value(value: Value) -> Option<Self> {
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
/// Rust types, JSON already encoded ([`Response::success_encoded`], or shared by many responses:
/// [`Response::success_shared`]), which is written to the wire as is instead of going through a
/// `Value` tree.
/// Read the payload with [`Response::result_value`] or [`Response::encoded_result`].
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
    encoded_result: Option<Encoded>,
}

/// A success payload already encoded.
#[derive(Debug, Clone)]
enum Encoded {
    /// Encoded for this response.
    Own(Box<RawValue>),
    /// Shared with other responses, with members appended.
    Shared(Spliced),
}

impl Serialize for Response {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Response", 3)?;
        s.serialize_field("jsonrpc", &self.jsonrpc)?;
        s.serialize_field("id", &self.id)?;
        match (&self.encoded_result, &self.result) {
            (Some(Encoded::Own(raw)), _) => s.serialize_field("result", raw)?,
            (Some(Encoded::Shared(spliced)), _) => {
                s.serialize_field("result", &spliced.to_raw())?;
            }
            (None, Some(result)) => s.serialize_field("result", result)?,
            (None, None) => {}
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
            encoded_result: Some(Encoded::Own(result)),
        }
    }
    /// A success response whose result is `object`, encoded once and shared with other
    /// responses, with `members` appended (members `object` already has must not be repeated).
    /// [`crate::encode`] writes it into one buffer sized up front: the id, then the object's
    /// bytes with the members spliced in before its closing brace.
    pub fn success_shared(
        id: RequestId,
        object: EncodedObject,
        members: Option<EncodedMembers>,
    ) -> Self {
        Self {
            jsonrpc: JSONRPC_VERSION.into(),
            id: Some(id),
            result: None,
            error: None,
            encoded_result: Some(Encoded::Shared(Spliced { object, members })),
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
    /// The success payload when it was built with [`Response::success_encoded`] or
    /// [`Response::success_shared`] (the latter's members appended, in a copy).
    pub fn encoded_result(&self) -> Option<Cow<'_, RawValue>> {
        match self.encoded_result.as_ref()? {
            Encoded::Own(raw) => Some(Cow::Borrowed(raw)),
            Encoded::Shared(spliced) => Some(Cow::Owned(spliced.to_raw())),
        }
    }

    /// Bytes of an encoded success payload (0 for any other).
    pub(crate) fn encoded_result_len(&self) -> usize {
        match &self.encoded_result {
            Some(Encoded::Own(raw)) => raw.get().len(),
            Some(Encoded::Shared(spliced)) => spliced.len(),
            None => 0,
        }
    }

    /// Writes a response built with [`Response::success_shared`] into `out` without serde
    /// (`false`, writing nothing, for any other).
    pub(crate) fn write_shared(&self, out: &mut Vec<u8>) -> bool {
        let (Some(Encoded::Shared(spliced)), None) = (&self.encoded_result, &self.error) else {
            return false;
        };
        out.extend_from_slice(b"{\"jsonrpc\":");
        // Strings and ids always encode.
        let _ = serde_json::to_writer(&mut *out, &self.jsonrpc);
        out.extend_from_slice(b",\"id\":");
        let _ = serde_json::to_writer(&mut *out, &self.id);
        out.extend_from_slice(b",\"result\":");
        spliced.write(out);
        out.push(b'}');
        true
    }
    /// The success payload as a [`Value`], however it was built (an encoded payload is parsed,
    /// so prefer [`Response::encoded_result`] on hot paths).
    pub fn result_value(&self) -> Option<Cow<'_, Value>> {
        if let Some(result) = &self.result {
            return Some(Cow::Borrowed(result));
        }
        let raw = self.encoded_result()?;
        serde_json::from_str(raw.get()).ok().map(Cow::Owned)
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
            r#"{"jsonrpc":"2.0","id":7,"result":{"b":[1,2],"a":"x"}}"#
        );
        let plain = Response::success(RequestId::Number(7), json!({"b": [1, 2], "a": "x"}));
        assert_eq!(r, plain);
        assert_eq!(encode(&r), encode(&plain));
        let back: Response = serde_json::from_slice(&encode(&r)).unwrap();
        assert_eq!(back.result, plain.result);
        assert!(back.encoded_result().is_none());
    }
}
