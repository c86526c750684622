//! The MCP headers of an HTTP POST: how they are read, whether the version they name is one we
//! speak, and whether they agree with the body.
//!
//! Header names, the body member `Mcp-Name` mirrors and the value encoding are the protocol
//! crate's ([`gpu_mcp_protocol::http`]); this module applies them.

use gpu_mcp_protocol::envelope::{META_PROTOCOL_VERSION, envelope_version};
use gpu_mcp_protocol::http::{
    METHOD_HEADER, NAME_HEADER, PROTOCOL_VERSION_HEADER, decode_header_value, name_member,
};
use gpu_mcp_protocol::mcp::methods;
use gpu_mcp_protocol::{ErrorCode, ErrorObject, ProtocolVersion};
use serde_json::{Value, json};

/// MCP-relevant HTTP headers of one POST, for header/body agreement checks.
#[derive(Debug, Clone, Default)]
pub struct HttpHeaders {
    /// `MCP-Protocol-Version`.
    pub protocol_version: Option<String>,
    /// `Mcp-Method` (2026-07-28).
    pub method: Option<String>,
    /// `Mcp-Name` (2026-07-28).
    pub name: Option<String>,
}

impl HttpHeaders {
    /// Reads the MCP headers through `lookup`, which returns the raw value of a header by its
    /// lower-case name (as [`http::HeaderMap::get`](https://docs.rs/http) does).
    /// Values that are not UTF-8 are kept with replacement characters, so that they are judged
    /// (and refused) rather than silently dropped.
    pub fn from_lookup<'a>(lookup: impl Fn(&str) -> Option<&'a [u8]>) -> Self {
        let read = |name: &str| lookup(name).map(|v| String::from_utf8_lossy(v).into_owned());
        Self {
            protocol_version: read(PROTOCOL_VERSION_HEADER),
            method: read(METHOD_HEADER),
            name: read(NAME_HEADER),
        }
    }

    /// The revision `MCP-Protocol-Version` names, `None` without the header; an error (HTTP
    /// 400) for a value that is not a revision we speak, listing those we do.
    pub(crate) fn version(&self) -> Result<Option<ProtocolVersion>, ErrorObject> {
        let Some(raw) = self.protocol_version.as_deref() else {
            return Ok(None);
        };
        if let Some(v) = ProtocolVersion::parse(raw) {
            return Ok(Some(v));
        }
        let supported: Vec<&str> = ProtocolVersion::ALL.iter().map(|v| v.as_str()).collect();
        Err(ErrorObject::new(
            ErrorCode::InvalidRequest,
            format!(
                "Bad Request: unsupported MCP-Protocol-Version `{raw}` (supported: {})",
                supported.join(", ")
            ),
        )
        .with_data(json!({"supported": supported, "requested": raw})))
    }
}

/// Header/body agreement (`-32020` on disagreement or a missing standard header; `-32602` for
/// a body without the `_meta` protocol version that a 2026-07-28 `MCP-Protocol-Version` header
/// calls for).
/// A 2026-07-28 request (see [`uses_standard_headers`]) must carry `Mcp-Method`, and `Mcp-Name`
/// where its body has the member that header mirrors; `initialize` is exempt.
/// For older revisions absent headers are not checked.
pub(crate) fn check_headers(
    headers: &HttpHeaders,
    method: &str,
    params: Option<&Value>,
) -> Result<(), ErrorObject> {
    let required = method != methods::INITIALIZE && uses_standard_headers(headers, params);
    match headers.method.as_deref() {
        Some(header) if header != method => {
            return Err(ErrorObject::header_mismatch(format!(
                "Mcp-Method header {header:?} does not match the request method {method:?}"
            )));
        }
        None if required => {
            return Err(ErrorObject::header_mismatch(format!(
                "missing required Mcp-Method header (a 2026-07-28 request mirrors its method {method:?} in it)"
            )));
        }
        _ => {}
    }
    if let Some(member) = name_member(method) {
        let body = params.and_then(|p| p.get(member)).and_then(Value::as_str);
        match headers.name.as_deref() {
            Some(header) if decode_header_value(header).as_deref() != body => {
                return Err(ErrorObject::header_mismatch(format!(
                    "Mcp-Name header {header:?} does not match `params.{member}`"
                )));
            }
            None if required && body.is_some() => {
                return Err(ErrorObject::header_mismatch(format!(
                    "missing required Mcp-Name header (a 2026-07-28 {method} mirrors `params.{member}` in it)"
                )));
            }
            _ => {}
        }
    }
    if let Some(header) = headers.protocol_version.as_deref()
        && method != methods::INITIALIZE
    {
        match envelope_version(params) {
            Some(body) if body != header => {
                return Err(ErrorObject::header_mismatch(format!(
                    "MCP-Protocol-Version header {header:?} does not match the request's _meta protocol version {body:?}"
                )));
            }
            // The body is what lacks something here, not the headers: a 2026-07-28 request
            // without its `_meta` envelope has invalid params.
            None if ProtocolVersion::parse(header).is_some_and(|v| !v.uses_handshake()) => {
                return Err(ErrorObject::invalid_params(format!(
                    "request _meta is missing or has malformed required fields: {META_PROTOCOL_VERSION} (the MCP-Protocol-Version header names {header:?})"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether the request is written in a revision with standard headers: the envelope's revision,
/// else the `MCP-Protocol-Version` header's.
fn uses_standard_headers(headers: &HttpHeaders, params: Option<&Value>) -> bool {
    let envelope = envelope_version(params).and_then(ProtocolVersion::parse);
    let header = || {
        headers
            .protocol_version
            .as_deref()
            .and_then(ProtocolVersion::parse)
    };
    envelope
        .or_else(header)
        .is_some_and(ProtocolVersion::uses_standard_headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_checks() {
        let h = HttpHeaders {
            protocol_version: None,
            method: Some("tools/call".into()),
            name: Some("a".into()),
        };
        let p = json!({"name": "a"});
        assert!(check_headers(&h, "tools/call", Some(&p)).is_ok());
        assert_eq!(
            check_headers(&h, "tools/list", Some(&p)).unwrap_err().code,
            -32020
        );
        let p = json!({"name": "b"});
        assert_eq!(
            check_headers(&h, "tools/call", Some(&p)).unwrap_err().code,
            -32020
        );
        assert!(check_headers(&HttpHeaders::default(), "x", None).is_ok());
        let h = HttpHeaders {
            protocol_version: Some("2026-07-28".into()),
            ..Default::default()
        };
        // Without its standard header the request disagrees with its headers first.
        assert_eq!(check_headers(&h, "ping", None).unwrap_err().code, -32020);
        // A 2026-07-28 header over a body without the envelope: the body's params are invalid.
        let h = HttpHeaders {
            method: Some("server/discover".into()),
            ..h
        };
        let e = check_headers(&h, "server/discover", Some(&json!({}))).unwrap_err();
        assert_eq!(e.code, -32602);
        assert!(e.message.contains(META_PROTOCOL_VERSION), "{}", e.message);
        let no_version = json!({"_meta": {"io.modelcontextprotocol/clientCapabilities": {}}});
        assert_eq!(
            check_headers(&h, "server/discover", Some(&no_version))
                .unwrap_err()
                .code,
            -32602
        );
        let h = HttpHeaders { method: None, ..h };
        assert!(check_headers(&h, "initialize", None).is_ok());
        let h = HttpHeaders {
            protocol_version: Some("2025-06-18".into()),
            ..Default::default()
        };
        assert!(check_headers(&h, "ping", None).is_ok());
    }

    #[test]
    fn standard_headers_are_required_from_2026_07_28() {
        let envelope = json!({"name": "echo", "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}});
        let full = HttpHeaders {
            protocol_version: Some("2026-07-28".into()),
            method: Some("tools/call".into()),
            name: Some("echo".into()),
        };
        assert!(check_headers(&full, "tools/call", Some(&envelope)).is_ok());
        let no_method = HttpHeaders {
            method: None,
            ..full.clone()
        };
        let e = check_headers(&no_method, "tools/call", Some(&envelope)).unwrap_err();
        assert_eq!(e.code, -32020);
        assert!(e.message.contains("Mcp-Method"), "{}", e.message);
        let no_name = HttpHeaders {
            name: None,
            ..full.clone()
        };
        let e = check_headers(&no_name, "tools/call", Some(&envelope)).unwrap_err();
        assert_eq!(e.code, -32020);
        assert!(e.message.contains("Mcp-Name"), "{}", e.message);
        // The envelope alone makes the request 2026-07-28, header or not.
        let bare = HttpHeaders::default();
        assert_eq!(
            check_headers(&bare, "tools/call", Some(&envelope))
                .unwrap_err()
                .code,
            -32020
        );
        // Names that are not plain ASCII travel Base64-wrapped.
        let wrapped = HttpHeaders {
            name: Some("=?base64?ZWNobw==?=".into()),
            ..full.clone()
        };
        assert!(check_headers(&wrapped, "tools/call", Some(&envelope)).is_ok());
        // Older revisions: absent headers are fine, present ones must still agree.
        let old = HttpHeaders {
            protocol_version: Some("2025-11-25".into()),
            ..HttpHeaders::default()
        };
        assert!(check_headers(&old, "tools/call", Some(&json!({"name": "echo"}))).is_ok());
        assert!(check_headers(&HttpHeaders::default(), "initialize", None).is_ok());
    }

    #[test]
    fn headers_are_read_by_their_protocol_names() {
        let h = HttpHeaders::from_lookup(|name| match name {
            "mcp-protocol-version" => Some(b"2025-06-18".as_slice()),
            "mcp-name" => Some(b"\xff".as_slice()),
            _ => None,
        });
        assert_eq!(h.protocol_version.as_deref(), Some("2025-06-18"));
        assert_eq!(h.method, None);
        assert_eq!(h.name.as_deref(), Some("\u{fffd}"));
        assert_eq!(h.version(), Ok(Some(ProtocolVersion::V2025_06_18)));
        let bad = HttpHeaders {
            protocol_version: Some("1999-01-01".into()),
            ..HttpHeaders::default()
        };
        let e = bad.version().unwrap_err();
        assert_eq!(e.code, -32600);
        assert_eq!(e.data.unwrap()["requested"], "1999-01-01");
    }
}
