//! Lifecycle, version negotiation and dispatch.
//!
//! # Policy
//!
//! **Versions.**
//! `initialize` negotiates one of the handshake revisions 2025-11-25, 2025-06-18, 2025-03-26 and
//! 2024-11-05: a requested one is answered with itself, anything else (unknown, newer, or
//! 2026-07-28, which rmcp 3.11's default client sends in `initialize`) with 2025-11-25.
//! `initialize` is never refused for its version.
//!
//! **Stateless requests.**
//! A request whose `params._meta` carries `io.modelcontextprotocol/protocolVersion` (the
//! 2026-07-28 envelope) is served on its own, in the revision it names, on any transport, before
//! or after `initialize`, without touching the session's negotiated state.
//! Its result carries `resultType: "complete"` and `_meta["io.modelcontextprotocol/serverInfo"]`.
//! An envelope naming a revision we do not speak gets `-32022` with
//! `data: {supported, requested}`; one without `io.modelcontextprotocol/clientCapabilities` gets
//! `-32602`.
//! `server/discover` is answered at any time, with or without the envelope.
//!
//! **Lifecycle.**
//! With [`SessionPolicy::strict_lifecycle`] off (the default), requests before `initialize` are
//! served as the latest handshake revision, or as the revision of the HTTP
//! `MCP-Protocol-Version` header when it names one: a one-shot stdio run (a bare `tools/call`,
//! then EOF) and a bare HTTP POST work.
//! With it on, anything but `initialize`, `ping`, `server/discover` and envelope requests gets
//! `-32600` "Server not initialized" until `initialize` succeeded.
//! A second `initialize` on a session is `-32600`.
//! An unknown method is `-32601`, whatever the state: the connection is never dropped.
//!
//! **Fields per revision.**
//! `title` (tools, server info), `outputSchema` and `structuredContent` exist from 2025-06-18,
//! tool `annotations` from 2025-03-26.
//! For older revisions they are stripped; a result that loses `structuredContent` keeps (or gets)
//! a text block with its JSON, so the data still reaches the client.
//!
//! **Header/body agreement.**
//! When the transport passes HTTP headers, `Mcp-Method` must equal the method, `Mcp-Name` the
//! `params.name` of `tools/call`/`prompts/get` (`params.uri` of `resources/read`), and
//! `MCP-Protocol-Version` the envelope's version; a header claiming a stateless revision on a
//! request without the envelope is also a mismatch.
//! Any disagreement is `-32020`.
//! Absent headers are not checked; whether a header version is supported at all is the HTTP
//! transport's check (HTTP 400).
//!
//! **Cancellation.**
//! Each `tools/call` in flight is tracked by request id with its own `CancellationToken`;
//! `notifications/cancelled` cancels it, the tool's future is dropped, and no response is sent
//! ([`Session::handle`] returns `None`), as the spec asks.
//! Calls on one session run concurrently; reusing the id of a call still in flight is `-32600`.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::{Either, select};
use gpu_mcp_protocol::envelope::{
    META_SERVER_INFO, RESULT_TYPE_COMPLETE, RequestEnvelope, envelope_version,
};
use gpu_mcp_protocol::mcp::{
    CacheScope, DiscoverResult, Implementation, InitializeRequestParams, InitializeResult,
    ListToolsResult, LoggingLevel, ServerCapabilities, ToolsCapability, methods,
};
use gpu_mcp_protocol::{
    CallToolResult, Content, ErrorObject, JsonObject, Message, Notification, ProtocolVersion,
    Request, RequestId, Response, Tool,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::catalog::{CallContext, CallError, ToolCatalog};
use crate::error::Result;
use crate::tool::validate_tools;

/// Who this server is, as reported in `initialize` / `server/discover`.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Machine name, e.g. `k8s-gpu-mcp-agent`.
    pub name: String,
    /// Semver of the binary.
    pub version: String,
    /// Display title.
    pub title: Option<String>,
    /// Instructions for the model on how to use the tools.
    pub instructions: Option<String>,
}

/// How sessions treat the lifecycle and pagination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Refuse (`-32600`) requests other than `initialize`, `ping`, `server/discover` and
    /// envelope requests before `initialize`. Default `false`, so one-shot use works.
    pub strict_lifecycle: bool,
    /// Tools per `tools/list` page. Default 1000, i.e. one page in practice.
    pub page_size: usize,
    /// `ttlMs` of `server/discover` results. Default 0 (always revalidate).
    pub discover_ttl_ms: u64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            strict_lifecycle: false,
            page_size: 1000,
            discover_ttl_ms: 0,
        }
    }
}

/// Which transport a message arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// Newline-delimited JSON-RPC over stdin/stdout.
    Stdio,
    /// Streamable HTTP.
    Http,
}

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

/// Transport-supplied context of one incoming message.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The transport.
    pub transport: TransportKind,
    /// HTTP headers, for HTTP.
    pub http: Option<HttpHeaders>,
}

impl RequestContext {
    /// A message read from stdio.
    pub fn stdio() -> Self {
        Self {
            transport: TransportKind::Stdio,
            http: None,
        }
    }

    /// A message POSTed over HTTP with these headers.
    pub fn http(headers: HttpHeaders) -> Self {
        Self {
            transport: TransportKind::Http,
            http: Some(headers),
        }
    }
}

struct Inner {
    info: ServerInfo,
    catalog: Arc<dyn ToolCatalog>,
    policy: SessionPolicy,
    /// `serverInfo` with and without `title`, and as `_meta` value, built once.
    implementation_titled: Implementation,
    implementation_plain: Implementation,
    server_info_meta: Value,
}

/// The server: shared, cheap to clone; one per process.
#[derive(Clone)]
pub struct McpServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("info", &self.inner.info)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

fn implementation(info: &ServerInfo, with_title: bool) -> Implementation {
    Implementation {
        name: info.name.clone(),
        version: info.version.clone(),
        title: if with_title { info.title.clone() } else { None },
        ..Implementation::default()
    }
}

impl McpServer {
    /// Creates a server over a tool catalog, with the default [`SessionPolicy`].
    /// Use [`McpServer::try_new`] to reject invalid tool definitions up front.
    pub fn new(info: ServerInfo, catalog: Arc<dyn ToolCatalog>) -> Self {
        Self::with_policy(info, catalog, SessionPolicy::default())
    }

    /// Creates a server with an explicit policy.
    pub fn with_policy(
        info: ServerInfo,
        catalog: Arc<dyn ToolCatalog>,
        policy: SessionPolicy,
    ) -> Self {
        let implementation_titled = implementation(&info, true);
        let implementation_plain = implementation(&info, false);
        let server_info_meta = serde_json::to_value(&implementation_titled).unwrap_or(Value::Null);
        Self {
            inner: Arc::new(Inner {
                info,
                catalog,
                policy,
                implementation_titled,
                implementation_plain,
                server_info_meta,
            }),
        }
    }

    /// Creates a server after checking the catalog's tool definitions (names, object schemas,
    /// unique names).
    pub fn try_new(info: ServerInfo, catalog: Arc<dyn ToolCatalog>) -> Result<Self> {
        validate_tools(&catalog.tools())?;
        Ok(Self::new(info, catalog))
    }

    /// Starts a new session (one stdio connection, or one HTTP session / stateless request).
    pub fn session(&self) -> Session {
        Session {
            server: self.clone(),
            state: Arc::new(Mutex::new(SessionState::default())),
        }
    }

    /// The catalog served.
    pub fn catalog(&self) -> &Arc<dyn ToolCatalog> {
        &self.inner.catalog
    }

    /// Server identity.
    pub fn info(&self) -> &ServerInfo {
        &self.inner.info
    }

    /// The session policy.
    pub fn policy(&self) -> &SessionPolicy {
        &self.inner.policy
    }

    /// The capabilities this server declares.
    pub fn capabilities(&self) -> ServerCapabilities {
        ServerCapabilities {
            tools: Some(ToolsCapability {
                list_changed: Some(false),
            }),
            ..ServerCapabilities::default()
        }
    }
}

#[derive(Debug, Default)]
struct SessionState {
    version: Option<ProtocolVersion>,
    client_info: Option<Implementation>,
    initialized_notified: bool,
    log_level: Option<LoggingLevel>,
    in_flight: HashMap<RequestId, CancellationToken>,
}

/// Per-connection state: negotiated version, initialized flag, in-flight requests.
///
/// Cheap to clone (clones share the state); [`Session::handle`] may be called concurrently.
#[derive(Clone, Debug)]
pub struct Session {
    server: McpServer,
    state: Arc<Mutex<SessionState>>,
}

/// How one request is served.
#[derive(Debug, Clone, Copy)]
struct Served {
    version: ProtocolVersion,
    /// Served through the 2026-07-28 envelope (decorate the result).
    stateless: bool,
}

/// Removes a call from the in-flight table when it ends, however it ends.
struct InFlight<'a> {
    session: &'a Session,
    id: RequestId,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.session.lock().in_flight.remove(&self.id);
    }
}

const CURSOR_PREFIX: &str = "tools:";

impl Session {
    fn lock(&self) -> MutexGuard<'_, SessionState> {
        // A poisoned lock only means another handler panicked mid-update; the state is still
        // consistent enough to keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The server this session belongs to.
    pub fn server(&self) -> &McpServer {
        &self.server
    }

    /// The negotiated protocol version, once `initialize` succeeded.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.lock().version
    }

    /// Whether `initialize` succeeded on this session.
    pub fn is_initialized(&self) -> bool {
        self.lock().version.is_some()
    }

    /// Whether the client sent `notifications/initialized`.
    pub fn initialized_notified(&self) -> bool {
        self.lock().initialized_notified
    }

    /// The client's `clientInfo` from `initialize`.
    pub fn client_info(&self) -> Option<Implementation> {
        self.lock().client_info.clone()
    }

    /// The level set by `logging/setLevel`, if any.
    pub fn log_level(&self) -> Option<LoggingLevel> {
        self.lock().log_level
    }

    /// How many `tools/call` requests are running.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight.len()
    }

    /// Cancels every running call (for example when an HTTP session is deleted); their
    /// requests get no response.
    pub fn cancel_in_flight(&self) {
        for token in self.lock().in_flight.values() {
            token.cancel();
        }
    }

    /// Handles one message. Requests get `Some(response)`; notifications and responses `None`.
    /// A request cancelled by `notifications/cancelled` (or [`Session::cancel_in_flight`]) also
    /// gets `None`: the spec says the receiver should not answer it.
    pub async fn handle(&self, message: Message, ctx: RequestContext) -> Option<Response> {
        match message {
            Message::Request(req) => self.handle_request(req, &ctx).await,
            Message::Notification(n) => {
                self.handle_notification(n);
                None
            }
            Message::Response(_) => None,
        }
    }

    fn handle_notification(&self, n: Notification) {
        match n.method.as_str() {
            methods::INITIALIZED => self.lock().initialized_notified = true,
            methods::CANCELLED => {
                let Some(id) = n
                    .params
                    .as_ref()
                    .and_then(|p| p.get("requestId"))
                    .and_then(RequestId::from_value)
                else {
                    tracing::debug!("ignoring notifications/cancelled without a usable requestId");
                    return;
                };
                if let Some(token) = self.lock().in_flight.get(&id) {
                    tracing::debug!(request_id = %id, "cancelling request");
                    token.cancel();
                }
            }
            other => tracing::trace!(method = other, "ignoring notification"),
        }
    }

    async fn handle_request(&self, req: Request, ctx: &RequestContext) -> Option<Response> {
        let Request {
            id, method, params, ..
        } = req;

        if let Some(headers) = &ctx.http
            && let Err(e) = check_headers(headers, &method, params.as_ref())
        {
            return Some(Response::error(Some(id), e));
        }
        if params.as_ref().is_some_and(|p| !p.is_object()) {
            return Some(Response::error(
                Some(id),
                ErrorObject::invalid_params("`params` must be an object"),
            ));
        }

        let envelope = if method == methods::INITIALIZE {
            None
        } else {
            match RequestEnvelope::from_params(params.as_ref()) {
                Ok(e) => e.map(|e| e.protocol_version),
                Err(e) => return Some(Response::error(Some(id), e)),
            }
        };

        let served = match envelope {
            Some(version) => Served {
                version,
                stateless: true,
            },
            None => {
                let state = self.lock();
                if self.server.inner.policy.strict_lifecycle
                    && state.version.is_none()
                    && !matches!(
                        method.as_str(),
                        methods::INITIALIZE | methods::PING | methods::DISCOVER
                    )
                    && is_known_method(&method)
                {
                    return Some(Response::error(
                        Some(id),
                        ErrorObject::invalid_request(
                            "Server not initialized: send `initialize` first",
                        ),
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
                Served {
                    version,
                    stateless: false,
                }
            }
        };

        let outcome = match method.as_str() {
            methods::INITIALIZE => self.initialize(params),
            methods::PING => Ok(Value::Object(JsonObject::new())),
            methods::DISCOVER => Ok(self.discover()),
            methods::TOOLS_LIST => self.list_tools(params, served.version),
            methods::TOOLS_CALL => match self.call_tool(&id, params, served.version).await {
                None => return None,
                // Structured content encoded by the tool goes out as is: the whole result is
                // serialized once, with no `Value` tree of it built and dropped per call.
                // (Tool errors stay `Value`s, so transports can see `isError` in `result`.)
                Some(Ok(result))
                    if result.encoded_structured_content().is_some() && !result.failed() =>
                {
                    let extra = served.stateless.then(|| self.stateless_members());
                    return Some(match result.to_raw_value(extra.as_ref()) {
                        Ok(raw) => Response::success_encoded(id, raw),
                        Err(e) => Response::error(Some(id), ErrorObject::internal(e.to_string())),
                    });
                }
                Some(r) => r.map(CallToolResult::into_value),
            },
            methods::LOGGING_SET_LEVEL => self.set_level(params),
            _ => {
                return Some(Response::error(
                    Some(id),
                    ErrorObject::method_not_found(&method),
                ));
            }
        };
        Some(match outcome {
            Ok(mut result) => {
                if served.stateless || method == methods::DISCOVER {
                    self.decorate_stateless(&mut result);
                }
                Response::success(id, result)
            }
            Err(error) => Response::error(Some(id), error),
        })
    }

    /// The 2026-07-28 result members of a result that has no `_meta` of its own.
    fn stateless_members(&self) -> JsonObject {
        let mut meta = JsonObject::new();
        meta.insert(
            META_SERVER_INFO.into(),
            self.server.inner.server_info_meta.clone(),
        );
        let mut extra = JsonObject::new();
        extra.insert("resultType".into(), RESULT_TYPE_COMPLETE.into());
        extra.insert("_meta".into(), Value::Object(meta));
        extra
    }

    /// Adds the 2026-07-28 result members: `resultType` and the server's identity in `_meta`.
    fn decorate_stateless(&self, result: &mut Value) {
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

    fn initialize(&self, params: Option<Value>) -> std::result::Result<Value, ErrorObject> {
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

    fn discover(&self) -> Value {
        let inner = &self.server.inner;
        let result = DiscoverResult {
            result_type: RESULT_TYPE_COMPLETE.to_owned(),
            supported_versions: ProtocolVersion::supported_strs()
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            capabilities: self.server.capabilities(),
            instructions: inner.info.instructions.clone(),
            ttl_ms: inner.policy.discover_ttl_ms,
            cache_scope: CacheScope::Private,
            meta: None,
        };
        serde_json::to_value(result).unwrap_or(Value::Null)
    }

    fn list_tools(
        &self,
        params: Option<Value>,
        version: ProtocolVersion,
    ) -> std::result::Result<Value, ErrorObject> {
        let cursor = match params.as_ref().and_then(|p| p.get("cursor")) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(ErrorObject::invalid_params("`cursor` must be a string")),
        };
        let mut tools = self.server.inner.catalog.tools();
        let start = match cursor {
            None => 0,
            Some(c) => match c
                .strip_prefix(CURSOR_PREFIX)
                .and_then(|n| n.parse::<usize>().ok())
            {
                Some(n) if n > 0 && n <= tools.len() => n,
                _ => {
                    return Err(ErrorObject::invalid_params(format!(
                        "Invalid cursor: {c:?}"
                    )));
                }
            },
        };
        let page_size = self.server.inner.policy.page_size.max(1);
        let end = start.saturating_add(page_size).min(tools.len());
        let next_cursor = (end < tools.len()).then(|| format!("{CURSOR_PREFIX}{end}"));
        tools.truncate(end);
        let page: Vec<Tool> = tools
            .drain(start..)
            .map(|t| shape_tool(t, version))
            .collect();
        let result = ListToolsResult {
            tools: page,
            next_cursor,
            meta: None,
        };
        serde_json::to_value(result).map_err(|e| ErrorObject::internal(e.to_string()))
    }

    fn set_level(&self, params: Option<Value>) -> std::result::Result<Value, ErrorObject> {
        let level = params
            .and_then(|mut p| p.as_object_mut().and_then(|o| o.remove("level")))
            .ok_or_else(|| ErrorObject::invalid_params("logging/setLevel needs a `level`"))?;
        let level: LoggingLevel = serde_json::from_value(level).map_err(|e| {
            ErrorObject::invalid_params(format!(
                    "Invalid `level`: {e} (expected debug, info, notice, warning, error, critical, alert or emergency)"
                ),
            )
        })?;
        self.lock().log_level = Some(level);
        Ok(Value::Object(JsonObject::new()))
    }

    /// `None`: the call was cancelled and gets no response.
    async fn call_tool(
        &self,
        id: &RequestId,
        params: Option<Value>,
        version: ProtocolVersion,
    ) -> Option<std::result::Result<CallToolResult, ErrorObject>> {
        let Some(Value::Object(mut params)) = params else {
            return Some(Err(ErrorObject::invalid_params(
                "tools/call needs params with the tool `name`",
            )));
        };
        let name = match params.remove("name") {
            Some(Value::String(name)) if !name.is_empty() => name,
            _ => {
                return Some(Err(ErrorObject::invalid_params(
                    "tools/call: `name` must be a non-empty string",
                )));
            }
        };
        let arguments = match params.remove("arguments") {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => Some(o),
            Some(_) => {
                return Some(Err(ErrorObject::invalid_params(
                    "tools/call: `arguments` must be an object",
                )));
            }
        };
        let meta = match params.remove("_meta") {
            Some(Value::Object(o)) => Some(o),
            _ => None,
        };

        let cancel = CancellationToken::new();
        {
            let mut state = self.lock();
            if state.in_flight.contains_key(id) {
                return Some(Err(ErrorObject::invalid_request(format!(
                    "Request id {id} is already in use by a call in flight"
                ))));
            }
            state.in_flight.insert(id.clone(), cancel.clone());
        }
        let _in_flight = InFlight {
            session: self,
            id: id.clone(),
        };

        let ctx = CallContext {
            cancel: cancel.clone(),
            meta,
        };
        let call = pin!(self.server.inner.catalog.call(&name, arguments, ctx));
        let cancelled = pin!(cancel.cancelled());
        let outcome = match select(call, cancelled).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(((), _)) => return None,
        };
        if cancel.is_cancelled() {
            return None;
        }
        Some(match outcome {
            Ok(result) => Ok(shape_call_result(result, version)),
            Err(CallError::UnknownTool(tool)) => {
                Err(ErrorObject::invalid_params(format!("Unknown tool: {tool}")))
            }
        })
    }
}

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

/// Removes what `version` does not define from a tool definition.
fn shape_tool(mut tool: Tool, version: ProtocolVersion) -> Tool {
    if !version.supports_title() {
        tool.title = None;
    }
    if !version.supports_structured_content() {
        tool.output_schema = None;
    }
    if !version.supports_tool_annotations() {
        tool.annotations = None;
    }
    tool
}

/// Removes `structuredContent` for revisions before 2025-06-18, keeping its JSON in a text block.
fn shape_call_result(mut result: CallToolResult, version: ProtocolVersion) -> CallToolResult {
    if !version.supports_structured_content()
        && let Some(structured) = result.take_structured_json()
        && !result
            .content
            .iter()
            .any(|c| matches!(c, Content::Text { .. }))
    {
        result.content.push(Content::text(structured));
    }
    result
}

/// Header/body agreement (`-32020` on disagreement); absent headers are not checked.
fn check_headers(
    headers: &HttpHeaders,
    method: &str,
    params: Option<&Value>,
) -> std::result::Result<(), ErrorObject> {
    if let Some(header) = headers.method.as_deref()
        && header != method
    {
        return Err(ErrorObject::header_mismatch(format!(
            "Mcp-Method header {header:?} does not match the request method {method:?}"
        )));
    }
    if let Some(header) = headers.name.as_deref() {
        let (field, body) = match method {
            "tools/call" | "prompts/get" => ("name", params.and_then(|p| p.get("name"))),
            "resources/read" => ("uri", params.and_then(|p| p.get("uri"))),
            _ => ("", None),
        };
        if !field.is_empty() && body.and_then(Value::as_str) != Some(header) {
            return Err(ErrorObject::header_mismatch(format!(
                "Mcp-Name header {header:?} does not match `params.{field}`"
            )));
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
            None if ProtocolVersion::parse(header).is_some_and(|v| !v.uses_handshake()) => {
                return Err(ErrorObject::header_mismatch(format!(
                    "MCP-Protocol-Version header {header:?} needs the request's _meta to carry io.modelcontextprotocol/protocolVersion"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str) -> Tool {
        Tool {
            name: name.into(),
            title: Some("T".into()),
            description: "d".into(),
            input_schema: json!({"type": "object"}).as_object().cloned().unwrap(),
            output_schema: Some(json!({"type": "object"}).as_object().cloned().unwrap()),
            annotations: Some(gpu_mcp_protocol::ToolAnnotations::read_only()),
        }
    }

    #[test]
    fn tools_are_shaped_per_version() {
        let t = shape_tool(tool("a"), ProtocolVersion::V2024_11_05);
        assert!(t.title.is_none() && t.output_schema.is_none() && t.annotations.is_none());
        let t = shape_tool(tool("a"), ProtocolVersion::V2025_03_26);
        assert!(t.title.is_none() && t.output_schema.is_none() && t.annotations.is_some());
        let t = shape_tool(tool("a"), ProtocolVersion::V2025_06_18);
        assert!(t.title.is_some() && t.output_schema.is_some() && t.annotations.is_some());
    }

    #[test]
    fn old_versions_get_structured_content_as_text() {
        let r = CallToolResult::new(vec![], Some(json!({"a": 1})), None);
        let shaped = shape_call_result(r.clone(), ProtocolVersion::V2025_03_26);
        assert!(shaped.structured_content.is_none());
        assert_eq!(shaped.content[0].as_text(), Some(r#"{"a":1}"#));
        let kept = shape_call_result(r.clone(), ProtocolVersion::V2025_11_25);
        assert_eq!(kept, r);
        let encoded = CallToolResult::structured_encoded(&json!({"a": 1}), "kept");
        let shaped = shape_call_result(encoded.clone(), ProtocolVersion::V2025_03_26);
        assert!(shaped.structured_value().is_none());
        assert_eq!(shaped.content.len(), 1);
        let mut bare = CallToolResult::structured_encoded(&json!({"a": 1}), "x");
        bare.content.clear();
        let shaped = shape_call_result(bare, ProtocolVersion::V2024_11_05);
        assert_eq!(shaped.content[0].as_text(), Some(r#"{"a":1}"#));
        assert_eq!(
            shape_call_result(encoded.clone(), ProtocolVersion::V2025_06_18),
            encoded
        );
        let with_text = CallToolResult::structured(json!({"a": 1}), "already");
        let shaped = shape_call_result(with_text, ProtocolVersion::V2024_11_05);
        assert_eq!(shaped.content.len(), 1);
        assert_eq!(shaped.content[0].as_text(), Some("already"));
    }

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
        assert_eq!(check_headers(&h, "ping", None).unwrap_err().code, -32020);
        assert!(check_headers(&h, "initialize", None).is_ok());
        let h = HttpHeaders {
            protocol_version: Some("2025-06-18".into()),
            ..Default::default()
        };
        assert!(check_headers(&h, "ping", None).is_ok());
    }
}
