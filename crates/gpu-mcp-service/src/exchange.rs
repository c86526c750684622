//! The seam with the transports: they hand in the bytes of one message (and, over HTTP, its MCP
//! headers) and get back an [`Incoming`] to serve, then a [`Reply`] to frame.
//!
//! Everything MCP decides about a message is decided here or behind [`Session::answer`]:
//! whether it parses, which revision it is written in, whether it takes part in a session, the
//! bytes of the reply, the HTTP status they go out with, and how the request ended (for
//! metrics).
//! Transports keep what is theirs: sockets, limits, time bounds, the session table, framing.
//!
//! [`Session::answer`]: crate::Session::answer

use gpu_mcp_protocol::envelope::{META_LOG_LEVEL, envelope_version, params_meta};
use gpu_mcp_protocol::mcp::methods;
use gpu_mcp_protocol::{
    ErrorObject, Message, RequestId, Response, encode, http_status_for_error, parse_message,
};
use serde_json::Value;

use crate::headers::HttpHeaders;
use crate::progress::{NotificationSender, PROGRESS_TOKEN};
use crate::server::McpServer;
use crate::session::Answer;

/// Which transport a message arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// Newline-delimited JSON-RPC over stdin/stdout.
    Stdio,
    /// Streamable HTTP.
    Http,
}

/// Transport-supplied context of one incoming message.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The transport.
    pub transport: TransportKind,
    /// HTTP headers, for HTTP.
    pub http: Option<HttpHeaders>,
    /// Where notifications sent while the request runs (progress) go; `None` where the
    /// transport cannot deliver them.
    pub notifications: Option<NotificationSender>,
}

impl RequestContext {
    /// A message read from stdio.
    pub fn stdio() -> Self {
        Self {
            transport: TransportKind::Stdio,
            http: None,
            notifications: None,
        }
    }

    /// A message POSTed over HTTP with these headers.
    pub fn http(headers: HttpHeaders) -> Self {
        Self {
            transport: TransportKind::Http,
            http: Some(headers),
            notifications: None,
        }
    }
}

/// How a message takes part in HTTP sessions (`Mcp-Session-Id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionUse {
    /// A 2026-07-28 message: self-contained, served on a fresh session whatever the headers say.
    Stateless,
    /// `initialize`: opens a session when it succeeds.
    Opens,
    /// `server/discover`: joins the named session if any, and needs none.
    Optional,
    /// Anything else: joins the named session, or a fresh one where sessions are optional.
    Joins,
}

/// A decoded message, with what it was sent with, ready for [`crate::Session::answer`].
#[derive(Debug, Clone)]
pub struct Incoming {
    pub(crate) message: Message,
    pub(crate) ctx: RequestContext,
    /// Written in the stateless 2026-07-28 revision (envelope or version header).
    pub(crate) stateless: bool,
}

impl Incoming {
    /// Decodes one stdio line. The `Err` is the reply to write instead (`-32700` / `-32600`).
    #[allow(clippy::result_large_err)] // built only on the error path, sent at once
    pub fn from_line(line: &[u8]) -> Result<Self, Reply> {
        let message = parse_message(line).map_err(|r| Reply::rejected(&r))?;
        let stateless = envelope_version(params(&message)).is_some();
        Ok(Self {
            message,
            ctx: RequestContext::stdio(),
            stateless,
        })
    }

    /// Decodes one POST body with its MCP headers. The `Err` is the reply to send instead, with
    /// HTTP 400: the body is not JSON-RPC (`-32700` / `-32600`), or `MCP-Protocol-Version`
    /// names a revision we do not speak.
    #[allow(clippy::result_large_err)] // built only on the error path, sent at once
    pub fn from_http(headers: HttpHeaders, body: &[u8]) -> Result<Self, Reply> {
        let message = parse_message(body).map_err(|r| Reply::rejected(&r))?;
        let header_version = match headers.version() {
            Ok(v) => v,
            Err(e) => return Err(Reply::rejected(&Response::error(message.id().cloned(), e))),
        };
        let stateless = header_version.is_some_and(|v| !v.uses_handshake())
            || envelope_version(params(&message)).is_some();
        Ok(Self {
            message,
            ctx: RequestContext::http(headers),
            stateless,
        })
    }

    /// Lets the request send notifications (progress) on `tx` while it runs; the transport
    /// delivers them before the reply.
    #[must_use]
    pub fn with_notifications(mut self, tx: NotificationSender) -> Self {
        self.ctx.notifications = Some(tx);
        self
    }

    /// Whether the request may send notifications of its own before its reply: its `_meta`
    /// asks for progress (`progressToken`) or, in 2026-07-28, for its log records
    /// (`io.modelcontextprotocol/logLevel`). Only such a request needs a channel
    /// ([`Incoming::with_notifications`]); the log messages of a session whose client turned
    /// them on with `logging/setLevel` are the transport's to forward
    /// ([`crate::Session::log_messages`]).
    pub fn may_notify(&self) -> bool {
        let Message::Request(r) = &self.message else {
            return false;
        };
        params_meta(r.params.as_ref()).is_some_and(|meta| {
            meta.contains_key(PROGRESS_TOKEN) || meta.contains_key(META_LOG_LEVEL)
        })
    }

    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The id of a request (`None` for notifications and responses).
    pub fn request_id(&self) -> Option<&RequestId> {
        match &self.message {
            Message::Request(r) => Some(&r.id),
            _ => None,
        }
    }

    /// How the message takes part in HTTP sessions.
    pub fn session_use(&self) -> SessionUse {
        match &self.message {
            _ if self.stateless => SessionUse::Stateless,
            Message::Request(r) if r.method == methods::INITIALIZE => SessionUse::Opens,
            Message::Request(r) if r.method == methods::DISCOVER => SessionUse::Optional,
            _ => SessionUse::Joins,
        }
    }
}

fn params(message: &Message) -> Option<&Value> {
    match message {
        Message::Request(r) => r.params.as_ref(),
        Message::Notification(n) => n.params.as_ref(),
        Message::Response(_) => None,
    }
}

/// Bounded names for reporting one request: the method if MCP defines it, else `other`; for
/// `tools/call`, the tool if the catalog has it, else `other` (empty for other methods).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The method, or `other`.
    pub method: &'static str,
    /// The tool of a `tools/call`, `other` for a name the catalog does not have, empty
    /// otherwise.
    pub tool: String,
}

impl McpServer {
    /// The label a request is reported under; `None` for notifications and responses.
    pub fn label(&self, incoming: &Incoming) -> Option<Label> {
        let Message::Request(r) = &incoming.message else {
            return None;
        };
        let method = methods::request(&r.method).unwrap_or("other");
        let tool = if method == methods::TOOLS_CALL {
            let name = r
                .params
                .as_ref()
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if self.inner.tool_names.contains(name) {
                name
            } else {
                "other"
            }
            .to_owned()
        } else {
            String::new()
        };
        Some(Label { method, tool })
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A result (for `tools/call`, without `isError`).
    Ok,
    /// A `tools/call` result with `isError: true`.
    ToolError,
    /// A JSON-RPC error reply.
    Error,
    /// Nothing to answer: a notification, a response, or a request cancelled by the client.
    NoReply,
}

/// The answer to one message: the encoded JSON-RPC reply (compact, one line, no newline) and
/// what a transport needs to frame and count it.
#[derive(Debug, Clone)]
pub struct Reply {
    body: Option<Vec<u8>>,
    status: u16,
    outcome: Outcome,
    opens_session: bool,
}

impl Reply {
    /// A `-32603` error reply for a failure of the transport's own (a time limit, a handler
    /// that panicked).
    pub fn internal_error(id: Option<RequestId>, message: impl Into<String>) -> Self {
        let response = Response::error(id, ErrorObject::internal(message));
        Self {
            body: Some(encode(&response)),
            status: 200,
            outcome: Outcome::Error,
            opens_session: false,
        }
    }

    /// A message refused before it was served (HTTP 400).
    pub(crate) fn rejected(response: &Response) -> Self {
        Self {
            body: Some(encode(response)),
            status: 400,
            outcome: Outcome::Error,
            opens_session: false,
        }
    }

    pub(crate) fn from_answer(answer: Option<Answer>, opens: bool, stateless: bool) -> Self {
        let Some(Answer {
            response,
            tool_failed,
        }) = answer
        else {
            return Self {
                body: None,
                status: 202,
                outcome: Outcome::NoReply,
                opens_session: false,
            };
        };
        let (outcome, status) = match &response.error {
            // The 2026-07-28 status map; handshake revisions answer every reply with 200.
            Some(e) if stateless => (Outcome::Error, http_status_for_error(e.code)),
            Some(_) => (Outcome::Error, 200),
            None if tool_failed => (Outcome::ToolError, 200),
            None => (Outcome::Ok, 200),
        };
        Self {
            body: Some(encode(&response)),
            status,
            outcome,
            opens_session: opens && outcome != Outcome::Error,
        }
    }

    /// The encoded reply; `None` when there is nothing to send (HTTP 202).
    pub fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }

    /// The encoded reply, by value.
    pub fn into_body(self) -> Option<Vec<u8>> {
        self.body
    }

    /// The HTTP status to send it with: 202 without a body, the 2026-07-28 status map for the
    /// errors of stateless requests, 400 for messages refused before they were served, else 200.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// How the request ended.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Whether this is a successful `initialize`, after which the session it was served on
    /// should be kept (and, over HTTP, named with `Mcp-Session-Id`).
    pub fn opens_session(&self) -> bool {
        self.opens_session
    }
}
