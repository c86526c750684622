//! The lifecycle: which revision a request is served in, whether it may be served yet,
//! `initialize`, `server/discover`, and the members 2026-07-28 results carry.

use gpu_mcp_protocol::envelope::{
    META_SERVER_INFO, RESULT_TYPE_COMPLETE, RequestEnvelope, envelope_version,
};
use gpu_mcp_protocol::mcp::{
    CacheScope, DiscoverResult, InitializeRequestParams, InitializeResult, methods,
};
use gpu_mcp_protocol::{ErrorObject, JsonObject, Message, ProtocolVersion};
use serde_json::Value;

use crate::exchange::{Incoming, RequestContext};
use crate::session::Session;

/// The 2026-07-28 result members of a result that has no `_meta` of its own, for a server
/// whose `serverInfo` is `server_info_meta`: `resultType` and the server's identity in `_meta`.
pub(crate) fn stateless_members(server_info_meta: &Value) -> JsonObject {
    let mut meta = JsonObject::new();
    meta.insert(META_SERVER_INFO.into(), server_info_meta.clone());
    let mut extra = JsonObject::new();
    extra.insert("resultType".into(), RESULT_TYPE_COMPLETE.into());
    extra.insert("_meta".into(), Value::Object(meta));
    extra
}

/// How one request is served.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Served {
    pub(crate) version: ProtocolVersion,
    /// Served through the 2026-07-28 envelope (decorate the result).
    pub(crate) stateless: bool,
}

/// Methods this server answers (others are `-32601` whatever the lifecycle state).
fn is_known_method(method: &str) -> bool {
    matches!(
        method,
        methods::INITIALIZE
            | methods::PING
            | methods::DISCOVER
            | methods::TOOLS_LIST
            | methods::TOOLS_CALL
            | methods::LOGGING_SET_LEVEL
    )
}

impl Session {
    /// Whether `incoming` must be served before the next message of the connection is read:
    /// `initialize` changes what later requests may do, and so, under a strict lifecycle, does
    /// everything until the session is initialized (otherwise a request sent before
    /// `initialize` could be judged after it). Notifications and responses are cheap and keep
    /// their order.
    pub fn runs_in_order(&self, incoming: &Incoming) -> bool {
        match &incoming.message {
            Message::Request(r) => {
                r.method == methods::INITIALIZE
                    || (self.server.inner.policy.strict_lifecycle && !self.is_initialized())
            }
            Message::Notification(_) | Message::Response(_) => true,
        }
    }

    /// The revision `method` is served in: the envelope's, the negotiated one, or (before
    /// `initialize`) the HTTP header's or the latest handshake revision; an error when the
    /// envelope is unusable, names a revision without `method` (`-32601`: 2026-07-28 has no
    /// `initialize`, `ping` or `logging/setLevel`), or the strict lifecycle refuses the request.
    pub(crate) fn serving(
        &self,
        method: &str,
        params: Option<&Value>,
        ctx: &RequestContext,
    ) -> Result<Served, ErrorObject> {
        if method == methods::INITIALIZE {
            // `initialize` keeps its handshake whatever else its `_meta` holds, unless the
            // envelope names a revision without it.
            if envelope_version(params)
                .and_then(ProtocolVersion::parse)
                .is_some_and(|v| !v.has_method(method))
            {
                return Err(ErrorObject::method_not_found(method));
            }
        } else if let Some(envelope) = RequestEnvelope::from_params(params)? {
            if !envelope.protocol_version.has_method(method) {
                return Err(ErrorObject::method_not_found(method));
            }
            return Ok(Served {
                version: envelope.protocol_version,
                stateless: true,
            });
        }
        let state = self.lock();
        if self.server.inner.policy.strict_lifecycle
            && state.version.is_none()
            && !matches!(
                method,
                methods::INITIALIZE | methods::PING | methods::DISCOVER
            )
            && (is_known_method(method)
                || self.serves_prompt_method(method)
                || self.serves_resource_method(method))
        {
            return Err(ErrorObject::invalid_request(
                "Server not initialized: send `initialize` first",
            ));
        }
        let version = state.version.unwrap_or_else(|| {
            ctx.http
                .as_ref()
                .and_then(|h| h.protocol_version.as_deref())
                .and_then(ProtocolVersion::parse)
                .filter(|v| v.uses_handshake())
                .unwrap_or(ProtocolVersion::LATEST_HANDSHAKE)
        });
        Ok(Served {
            version,
            stateless: false,
        })
    }

    /// The 2026-07-28 result members of a result that has no `_meta` of its own.
    pub(crate) fn stateless_members(&self) -> JsonObject {
        stateless_members(&self.server.inner.server_info_meta)
    }

    /// Adds the 2026-07-28 result members: `resultType` and the server's identity in `_meta`.
    pub(crate) fn decorate_stateless(&self, result: &mut Value) {
        let Some(obj) = result.as_object_mut() else {
            return;
        };
        obj.insert("resultType".into(), RESULT_TYPE_COMPLETE.into());
        let meta = obj
            .entry("_meta")
            .or_insert_with(|| Value::Object(JsonObject::new()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(
                META_SERVER_INFO.into(),
                self.server.inner.server_info_meta.clone(),
            );
        }
    }

    pub(crate) fn initialize(&self, params: Option<Value>) -> Result<Value, ErrorObject> {
        let params: InitializeRequestParams = match gpu_mcp_protocol::mcp::parse_params(params) {
            Ok(p) => p,
            Err(e) => {
                return Err(ErrorObject::invalid_params(format!("initialize: {e}")));
            }
        };
        let version = ProtocolVersion::negotiate(&params.protocol_version);
        {
            let mut state = self.lock();
            if state.version.is_some() {
                return Err(ErrorObject::invalid_request("Session already initialized"));
            }
            state.version = Some(version);
            state.client_info = params.client_info;
        }
        if version.as_str() != params.protocol_version {
            tracing::debug!(
                requested = %params.protocol_version,
                negotiated = %version,
                "answering initialize with our latest handshake revision"
            );
        }
        let inner = &self.server.inner;
        let server_info = if version.supports_title() {
            inner.implementation_titled.clone()
        } else {
            inner.implementation_plain.clone()
        };
        let result = InitializeResult {
            protocol_version: version.as_str().to_owned(),
            capabilities: self.server.capabilities(),
            server_info,
            instructions: inner.info.instructions.clone(),
            meta: None,
        };
        serde_json::to_value(result).map_err(|e| ErrorObject::internal(e.to_string()))
    }

    pub(crate) fn discover(&self) -> Value {
        let inner = &self.server.inner;
        let result = DiscoverResult {
            result_type: RESULT_TYPE_COMPLETE.to_owned(),
            supported_versions: ProtocolVersion::supported_strs()
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            capabilities: self.server.capabilities_for(false),
            instructions: inner.info.instructions.clone(),
            ttl_ms: inner.policy.discover_ttl_ms,
            cache_scope: CacheScope::Public,
            meta: None,
        };
        serde_json::to_value(result).unwrap_or(Value::Null)
    }
}
