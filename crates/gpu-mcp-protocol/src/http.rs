//! What MCP says about Streamable HTTP beyond the body: the header names, which body member each
//! standard header mirrors, how header values are encoded, and the HTTP status of an error reply.
//!
//! Both sides use the same derivation: a client mirrors a request into headers with
//! [`mirrored_headers`], a server reads them back with [`decode_header_value`] and compares them
//! with the body member [`name_member`] names.
//! The standard headers `Mcp-Method` and `Mcp-Name` exist from 2026-07-28
//! ([`crate::ProtocolVersion::uses_standard_headers`]); earlier revisions send only
//! `MCP-Protocol-Version` (after `initialize`) and `Mcp-Session-Id`.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::Request;
use crate::mcp::methods;

pub use crate::jsonrpc::http_status_for_error;

/// `MCP-Protocol-Version`: the revision of the request (lower case, as `http` spells names).
pub const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";
/// `Mcp-Session-Id`: the session a handshake-era request belongs to.
pub const SESSION_ID_HEADER: &str = "mcp-session-id";
/// `Mcp-Method`: mirrors the request's `method` (2026-07-28).
pub const METHOD_HEADER: &str = "mcp-method";
/// `Mcp-Name`: mirrors the member of `params` that names the target (2026-07-28).
pub const NAME_HEADER: &str = "mcp-name";

const BASE64_PREFIX: &str = "=?base64?";
const BASE64_SUFFIX: &str = "?=";

/// The member of `params` that `Mcp-Name` mirrors for `method`: `name` for `tools/call` and
/// `prompts/get`, `uri` for `resources/read`; `None` for methods that name no target.
pub fn name_member(method: &str) -> Option<&'static str> {
    match method {
        methods::TOOLS_CALL | methods::PROMPTS_GET => Some("name"),
        methods::RESOURCES_READ => Some("uri"),
        _ => None,
    }
}

/// The value a standard header carries for `value`: the value itself when it is visible ASCII
/// without surrounding blanks, otherwise `=?base64?<standard base64 of the UTF-8>?=`.
pub fn encode_header_value(value: &str) -> Cow<'_, str> {
    let wrapped = value.starts_with(BASE64_PREFIX) && value.ends_with(BASE64_SUFFIX);
    let blank_edge = value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']);
    let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b)) && !blank_edge && !wrapped;
    if plain {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(format!(
            "{BASE64_PREFIX}{}{BASE64_SUFFIX}",
            STANDARD.encode(value)
        ))
    }
}

/// Reads a standard header value back: a `=?base64?…?=` value decoded, any other as is;
/// `None` when the wrapped Base64 or its UTF-8 is invalid.
pub fn decode_header_value(raw: &str) -> Option<Cow<'_, str>> {
    match raw
        .strip_prefix(BASE64_PREFIX)
        .and_then(|inner| inner.strip_suffix(BASE64_SUFFIX))
    {
        Some(inner) => {
            let bytes = STANDARD.decode(inner).ok()?;
            String::from_utf8(bytes).ok().map(Cow::Owned)
        }
        None => Some(Cow::Borrowed(raw)),
    }
}

/// The standard headers a 2026-07-28 request carries, mirrored from its body:
/// `Mcp-Method`, and `Mcp-Name` where [`name_member`] names a string member.
pub fn mirrored_headers(request: &Request) -> Vec<(&'static str, String)> {
    let mut out = vec![(METHOD_HEADER, request.method.clone())];
    let name = name_member(&request.method)
        .and_then(|member| request.params.as_ref()?.get(member))
        .and_then(Value::as_str);
    if let Some(name) = name {
        out.push((NAME_HEADER, encode_header_value(name).into_owned()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_values_round_trip() {
        for value in [
            "get_gpu_health",
            "file:///a b",
            " padded",
            "größe",
            "=?base64?x?=",
        ] {
            let encoded = encode_header_value(value);
            assert!(
                encoded.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "{value}"
            );
            assert_eq!(decode_header_value(&encoded).as_deref(), Some(value));
        }
        assert_eq!(encode_header_value("tools/call"), "tools/call");
        assert_eq!(decode_header_value("=?base64?!!?="), None);
    }

    #[test]
    fn requests_mirror_method_and_name() {
        let call = Request::new(1, "tools/call", Some(json!({"name": "get_gpu_health"})));
        assert_eq!(
            mirrored_headers(&call),
            [
                (METHOD_HEADER, "tools/call".to_owned()),
                (NAME_HEADER, "get_gpu_health".to_owned())
            ]
        );
        let list = Request::new(2, "tools/list", None);
        assert_eq!(
            mirrored_headers(&list),
            [(METHOD_HEADER, "tools/list".to_owned())]
        );
        assert_eq!(name_member("resources/read"), Some("uri"));
        assert_eq!(name_member("ping"), None);
    }
}
