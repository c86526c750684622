//! The 2026-07-28 per-request envelope: `params._meta` keys that make a request self-contained.
//!
//! A request carries the envelope when its `params._meta` has
//! [`META_PROTOCOL_VERSION`]. Such a request needs no `initialize`: it is served statelessly, in
//! the revision it names, on any transport. [`RequestEnvelope::from_params`] reads it and applies
//! the rules:
//!
//! - the version must be a string (`-32602`) naming a revision we speak (`-32022`, whose
//!   `data.supported` lists every revision we speak, the handshake ones included, so a client of
//!   both eras can fall back to `initialize`);
//! - [`META_CLIENT_CAPABILITIES`] must be present and an object (`-32602` naming the key);
//! - [`META_CLIENT_INFO`] is optional.
//!
//! Results of envelope requests carry `resultType: "complete"` and the server's identity under
//! `_meta` [`META_SERVER_INFO`].

use serde_json::Value;

use crate::{ErrorObject, JsonObject, ProtocolVersion};

/// `params._meta` key of the request's protocol revision.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `params._meta` key of the client's capabilities (required with the envelope).
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `params._meta` key of the client's implementation info (optional).
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `params._meta` key by which a request opts in to log messages at a level.
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// `result._meta` key of the server's implementation info.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `resultType` of a finished result.
pub const RESULT_TYPE_COMPLETE: &str = "complete";

/// The envelope of one request, borrowed from its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestEnvelope<'a> {
    /// The revision the request is written in.
    pub protocol_version: ProtocolVersion,
    /// The client's declared capabilities.
    pub client_capabilities: &'a JsonObject,
    /// The client's implementation info, if sent.
    pub client_info: Option<&'a Value>,
}

/// The `_meta` object of request parameters, if any.
pub fn params_meta(params: Option<&Value>) -> Option<&JsonObject> {
    params?.as_object()?.get("_meta")?.as_object()
}

/// The raw envelope version of request parameters, if the envelope is present and the version
/// is a string (whether or not we speak it).
pub fn envelope_version(params: Option<&Value>) -> Option<&str> {
    params_meta(params)?.get(META_PROTOCOL_VERSION)?.as_str()
}

impl<'a> RequestEnvelope<'a> {
    /// Reads the envelope of request parameters: `Ok(None)` when there is none, `Err` with the
    /// ready JSON-RPC error when it is present but unusable.
    pub fn from_params(params: Option<&'a Value>) -> Result<Option<Self>, ErrorObject> {
        let Some(meta) = params_meta(params) else {
            return Ok(None);
        };
        let Some(raw_version) = meta.get(META_PROTOCOL_VERSION) else {
            return Ok(None);
        };
        let Some(raw_version) = raw_version.as_str() else {
            return Err(ErrorObject::invalid_params(format!(
                "`_meta.{META_PROTOCOL_VERSION}` must be a string"
            )));
        };
        let Some(protocol_version) = ProtocolVersion::parse(raw_version) else {
            return Err(ErrorObject::unsupported_protocol_version(
                raw_version,
                &ProtocolVersion::supported_strs(),
            ));
        };
        let Some(client_capabilities) = meta
            .get(META_CLIENT_CAPABILITIES)
            .and_then(Value::as_object)
        else {
            return Err(ErrorObject::invalid_params(format!(
                "request _meta is missing or has malformed required fields: {META_CLIENT_CAPABILITIES}"
            )));
        };
        Ok(Some(Self {
            protocol_version,
            client_capabilities,
            client_info: meta.get(META_CLIENT_INFO),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use serde_json::json;

    fn params(meta: Value) -> Value {
        json!({"name": "x", "_meta": meta})
    }

    #[test]
    fn absent_envelope_is_none() {
        assert_eq!(RequestEnvelope::from_params(None), Ok(None));
        let p = json!({"name": "x"});
        assert_eq!(RequestEnvelope::from_params(Some(&p)), Ok(None));
        let p = params(json!({"progressToken": 1}));
        assert_eq!(RequestEnvelope::from_params(Some(&p)), Ok(None));
    }

    #[test]
    fn full_envelope_is_read() {
        let p = params(json!({
            META_PROTOCOL_VERSION: "2026-07-28",
            META_CLIENT_CAPABILITIES: {"sampling": {}},
            META_CLIENT_INFO: {"name": "c", "version": "1"},
        }));
        let env = RequestEnvelope::from_params(Some(&p)).unwrap().unwrap();
        assert_eq!(env.protocol_version, ProtocolVersion::V2026_07_28);
        assert!(env.client_capabilities.contains_key("sampling"));
        assert_eq!(env.client_info, Some(&json!({"name": "c", "version": "1"})));
        assert_eq!(envelope_version(Some(&p)), Some("2026-07-28"));
    }

    #[test]
    fn missing_capabilities_is_invalid_params() {
        let p = params(json!({META_PROTOCOL_VERSION: "2026-07-28"}));
        let e = RequestEnvelope::from_params(Some(&p)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParams.code());
        assert!(e.message.contains(META_CLIENT_CAPABILITIES));
        let p = params(json!({META_PROTOCOL_VERSION: "2026-07-28", META_CLIENT_CAPABILITIES: 3}));
        assert_eq!(
            RequestEnvelope::from_params(Some(&p)).unwrap_err().code,
            -32602
        );
    }

    #[test]
    fn non_string_version_is_invalid_params() {
        let p = params(json!({META_PROTOCOL_VERSION: 2026, META_CLIENT_CAPABILITIES: {}}));
        assert_eq!(
            RequestEnvelope::from_params(Some(&p)).unwrap_err().code,
            -32602
        );
    }

    #[test]
    fn unknown_version_is_unsupported_with_list() {
        let p = params(json!({META_PROTOCOL_VERSION: "2099-01-01", META_CLIENT_CAPABILITIES: {}}));
        let e = RequestEnvelope::from_params(Some(&p)).unwrap_err();
        assert_eq!(e.code, -32022);
        let data = e.data.unwrap();
        assert_eq!(data["requested"], "2099-01-01");
        assert_eq!(data["supported"][0], "2026-07-28");
        assert_eq!(data["supported"].as_array().unwrap().len(), 5);
    }
}
