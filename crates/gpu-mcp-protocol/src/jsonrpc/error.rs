//! The error member of JSON-RPC responses: codes, constructors and the HTTP status each code is
//! answered with.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// No resource at `uri`, answered in `version`: `-32602` from 2026-07-28 (SEP-2164),
    /// `-32002` before; `data` is `{uri}` in both.
    pub fn resource_not_found(
        version: crate::ProtocolVersion,
        uri: &str,
        message: impl Into<String>,
    ) -> Self {
        let code = if version.resource_not_found_is_invalid_params() {
            ErrorCode::InvalidParams
        } else {
            ErrorCode::ResourceNotFound
        };
        Self::new(code, message).with_data(serde_json::json!({ "uri": uri }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let e =
            ErrorObject::resource_not_found(crate::ProtocolVersion::V2025_11_25, "gpu://a/b", "x");
        assert_eq!(
            (e.code, e.data),
            (-32002, Some(json!({"uri": "gpu://a/b"})))
        );
        let e =
            ErrorObject::resource_not_found(crate::ProtocolVersion::V2026_07_28, "gpu://a/b", "x");
        assert_eq!(
            (e.code, e.data),
            (-32602, Some(json!({"uri": "gpu://a/b"})))
        );
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
