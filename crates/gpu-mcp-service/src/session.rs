//! One session: its negotiated state, the calls in flight and their cancellation.

use std::collections::HashMap;
use std::sync::Arc;

use gpu_mcp_protocol::mcp::{Implementation, LoggingLevel, methods};
use gpu_mcp_protocol::{Message, Notification, ProtocolVersion, Request, RequestId, Response};
use parking_lot::{Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

use crate::exchange::{Incoming, Reply, RequestContext};
use crate::server::McpServer;

#[derive(Debug, Default)]
pub(crate) struct SessionState {
    pub(crate) version: Option<ProtocolVersion>,
    pub(crate) client_info: Option<Implementation>,
    pub(crate) initialized_notified: bool,
    pub(crate) log_level: Option<LoggingLevel>,
    /// How many log records had been written when the level was set.
    pub(crate) log_level_since: u64,
    /// Whether a [`crate::LogMessages`] of this session is alive.
    pub(crate) log_stream_taken: bool,
    pub(crate) in_flight: HashMap<RequestId, CancellationToken>,
}

/// Per-connection state: negotiated version, initialized flag, in-flight requests.
///
/// Cheap to clone (clones share the state); [`Session::handle`] may be called concurrently.
#[derive(Clone, Debug)]
pub struct Session {
    pub(crate) server: McpServer,
    pub(crate) state: Arc<Mutex<SessionState>>,
}

/// Removes a call from the in-flight table when it ends, however it ends.
pub(crate) struct InFlight<'a> {
    session: &'a Session,
    id: RequestId,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.session.lock().in_flight.remove(&self.id);
    }
}

/// What handling one request produced, before it is encoded.
pub(crate) struct Answer {
    pub(crate) response: Response,
    /// A `tools/call` result with `isError: true`.
    pub(crate) tool_failed: bool,
}

impl Answer {
    pub(crate) fn of(response: Response) -> Self {
        Self {
            response,
            tool_failed: false,
        }
    }
}

impl Session {
    pub(crate) fn lock(&self) -> MutexGuard<'_, SessionState> {
        // No poisoning: every update is one assignment or map operation, so it stays consistent.
        self.state.lock()
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

    /// Registers a call in flight under its request id; `None` when the id is already in use.
    pub(crate) fn start_call(&self, id: &RequestId) -> Option<(CancellationToken, InFlight<'_>)> {
        let cancel = CancellationToken::new();
        {
            let mut state = self.lock();
            if state.in_flight.contains_key(id) {
                return None;
            }
            state.in_flight.insert(id.clone(), cancel.clone());
        }
        let guard = InFlight {
            session: self,
            id: id.clone(),
        };
        Some((cancel, guard))
    }

    /// Handles one message. Requests get `Some(response)`; notifications and responses `None`.
    /// A request cancelled by `notifications/cancelled` (or [`Session::cancel_in_flight`]) also
    /// gets `None`: the spec says the receiver should not answer it.
    pub async fn handle(&self, message: Message, ctx: RequestContext) -> Option<Response> {
        let req = self.take_request(message)?;
        self.handle_request(req, &ctx).await.map(|a| a.response)
    }

    /// Serves one message read by [`McpServer::read_http`] or [`McpServer::read_line`] and
    /// returns the encoded reply with what a transport needs to frame and count it.
    pub async fn answer(&self, incoming: Incoming) -> Reply {
        let Incoming {
            message,
            ctx,
            stateless,
        } = incoming;
        let opens = matches!(&message, Message::Request(r) if r.method == methods::INITIALIZE);
        let answer = match self.take_request(message) {
            Some(req) => self.handle_request(req, &ctx).await,
            None => None,
        };
        Reply::from_answer(answer, opens, stateless)
    }

    /// A request, to be answered; a notification is acted on here and a response ignored.
    /// (Synchronous, so that the request's future nests `handle_request`'s directly: each
    /// `async fn` level in between would copy it once more.)
    fn take_request(&self, message: Message) -> Option<Request> {
        match message {
            Message::Request(req) => Some(req),
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
}
