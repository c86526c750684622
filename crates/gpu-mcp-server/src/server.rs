//! Lifecycle and dispatch. (First cut: the full negotiation rules live in this module.)

use std::sync::{Arc, Mutex};

use gpu_mcp_protocol::{ErrorCode, ErrorObject, Message, ProtocolVersion, Request, Response};
use serde_json::{Value, json};

use crate::catalog::{CallContext, CallError, ToolCatalog};

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

struct Inner {
    info: ServerInfo,
    catalog: Arc<dyn ToolCatalog>,
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
            .finish_non_exhaustive()
    }
}

impl McpServer {
    /// Creates a server over a tool catalog.
    pub fn new(info: ServerInfo, catalog: Arc<dyn ToolCatalog>) -> Self {
        Self {
            inner: Arc::new(Inner { info, catalog }),
        }
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
}

#[derive(Debug, Default)]
struct SessionState {
    version: Option<ProtocolVersion>,
}

/// Per-connection state: negotiated version, initialized flag, in-flight requests.
#[derive(Clone, Debug)]
pub struct Session {
    server: McpServer,
    state: Arc<Mutex<SessionState>>,
}

impl Session {
    /// The negotiated protocol version, once `initialize` succeeded.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.state.lock().ok().and_then(|s| s.version)
    }

    /// Handles one message. Requests get `Some(response)`; notifications and responses `None`.
    pub async fn handle(&self, message: Message, _ctx: RequestContext) -> Option<Response> {
        match message {
            Message::Request(req) => Some(self.handle_request(req).await),
            Message::Notification(_) | Message::Response(_) => None,
        }
    }

    async fn handle_request(&self, req: Request) -> Response {
        let id = req.id.clone();
        match req.method.as_str() {
            "initialize" => {
                let version = ProtocolVersion::LATEST_HANDSHAKE;
                if let Ok(mut s) = self.state.lock() {
                    s.version = Some(version);
                }
                let info = &self.server.inner.info;
                Response::success(
                    id,
                    json!({
                        "protocolVersion": version.as_str(),
                        "capabilities": {"tools": {"listChanged": false}},
                        "serverInfo": {"name": info.name, "version": info.version},
                    }),
                )
            }
            "ping" => Response::success(id, json!({})),
            "tools/list" => {
                let tools = self.server.inner.catalog.tools();
                Response::success(id, json!({ "tools": tools }))
            }
            "tools/call" => {
                let params = req.params.unwrap_or(Value::Null);
                let Some(name) = params.get("name").and_then(Value::as_str) else {
                    return Response::error(
                        Some(id),
                        ErrorObject::new(ErrorCode::InvalidParams, "tools/call needs a `name`"),
                    );
                };
                let args = params.get("arguments").and_then(Value::as_object).cloned();
                match self
                    .server
                    .inner
                    .catalog
                    .call(name, args, CallContext::default())
                    .await
                {
                    Ok(result) => match serde_json::to_value(result) {
                        Ok(v) => Response::success(id, v),
                        Err(e) => Response::error(
                            Some(id),
                            ErrorObject::new(ErrorCode::InternalError, e.to_string()),
                        ),
                    },
                    Err(CallError::UnknownTool(t)) => Response::error(
                        Some(id),
                        ErrorObject::new(ErrorCode::InvalidParams, format!("Unknown tool: {t}")),
                    ),
                }
            }
            other => Response::error(
                Some(id),
                ErrorObject::new(
                    ErrorCode::MethodNotFound,
                    format!("Method not found: {other}"),
                ),
            ),
        }
    }
}
