//! `POST /mcp` in three steps: **read** the body within the limits, **resolve** the session it
//! belongs to, **reply** with what the server core answered, framed as JSON or one SSE event.
//!
//! What the message means (its revision, whether it parses, the reply and its status) is the
//! server core's ([`gpu_mcp_service::Incoming`], [`gpu_mcp_service::Reply`]); this module owns
//! the HTTP limits, the session table and the framing.

use bytes::{Bytes, BytesMut};
use gpu_mcp_protocol::ErrorCode;
use gpu_mcp_service::{HttpHeaders, Incoming, Reply, Session, SessionUse};
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Limited};

use super::handler::{HttpResponse, Shared, busy, rpc_error, session_id, with_type};
use super::security::{self, ReplyFormat};
use super::sessions::TableFull;
use super::{Conn, SessionMode, names, stream};
use crate::budget::Held;

pub(super) async fn post(
    shared: &Shared,
    conn: Conn,
    req: http::Request<hyper::body::Incoming>,
) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let named = match session_id(headers) {
        Ok(named) => named,
        Err(bad) => return bad.reply(),
    };
    // The body's bytes stay counted against the budget until the reply is made.
    let (format, bytes, _held) = match read(shared, headers, body).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let mcp_headers =
        HttpHeaders::from_lookup(|name| names::get(headers, name).map(HeaderValue::as_bytes));
    let incoming = match Incoming::from_http(mcp_headers, &bytes) {
        Ok(incoming) => incoming,
        Err(rejected) => return frame(rejected, ReplyFormat::Json, None),
    };
    let (session, fresh) = match resolve(shared, named, &incoming) {
        Ok(resolved) => resolved,
        Err(refusal) => return refusal.reply(&incoming),
    };
    // A request on a session it does not open may send notifications before its response,
    // when the client takes an event stream; an `initialize` must name its session in the
    // headers, which go out before anything else.
    if !fresh
        && incoming.request_id().is_some()
        && stream::may_notify(&session, &incoming)
        && security::names_event_stream(headers.get(ACCEPT))
    {
        return stream::serve(shared, session, incoming, format).await;
    }
    let reply = shared.dispatcher.dispatch(&session, incoming).await;
    let session_id = if fresh && reply.opens_session() {
        match shared.sessions.insert(session, conn.peer.ip()) {
            Ok(id) => id,
            Err(TableFull) => {
                return busy("Service Unavailable: the session table is full; retry later");
            }
        }
    } else {
        None
    };
    frame(reply, format, session_id)
}

/// Read: `Content-Type`, `Accept`, then the body within the size limit, the byte budget and the
/// body-read deadline.
async fn read(
    shared: &Shared,
    headers: &HeaderMap,
    body: hyper::body::Incoming,
) -> Result<(ReplyFormat, Bytes, Held), HttpResponse> {
    let config = &shared.config;
    if !security::is_json_content_type(headers.get(CONTENT_TYPE)) {
        return Err(rpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            ErrorCode::InvalidRequest,
            "Unsupported Media Type: Content-Type must be application/json",
        ));
    }
    let Some(format) = security::negotiate(headers.get(ACCEPT)) else {
        return Err(rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            None,
            ErrorCode::InvalidRequest,
            "Not Acceptable: Accept must allow application/json and text/event-stream",
        ));
    };
    let too_large = || {
        rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            ErrorCode::InvalidRequest,
            format!(
                "Payload Too Large: the body limit is {} bytes",
                config.max_body_bytes
            ),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > config.max_body_bytes as u64) {
        return Err(too_large());
    }
    // A declared length is taken from the budget at once, so a body that cannot fit is refused
    // before a byte of it is read.
    let mut held = match declared {
        Some(n) => match shared
            .budget
            .try_take(usize::try_from(n).unwrap_or(usize::MAX))
        {
            Some(held) => held,
            None => return Err(over_budget()),
        },
        None => Held::none(),
    };
    let prepaid = declared.is_some();
    let collect = async {
        let mut body = Limited::new(body, config.max_body_bytes);
        // A body that arrives in one frame (most do) is kept as it came, without a copy.
        let mut whole = Bytes::new();
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            if !prepaid {
                match shared.budget.try_take(data.len()) {
                    Some(more) => held.merge(more),
                    None => return Ok(None),
                }
            }
            if whole.is_empty() && buf.is_empty() {
                whole = data;
            } else {
                if buf.is_empty() {
                    buf.extend_from_slice(&std::mem::take(&mut whole));
                }
                buf.extend_from_slice(&data);
            }
        }
        let bytes = if buf.is_empty() { whole } else { buf.freeze() };
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Some(bytes))
    };
    let collected = tokio::time::timeout(config.body_read_timeout, collect).await;
    match collected {
        Ok(Ok(Some(bytes))) => Ok((format, bytes, held)),
        Ok(Ok(None)) => Err(over_budget()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "reading a request body failed");
            Err(rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                ErrorCode::InvalidRequest,
                "Bad Request: the body could not be read",
            ))
        }
        Err(_) => Err(rpc_error(
            StatusCode::REQUEST_TIMEOUT,
            None,
            ErrorCode::InvalidRequest,
            "Request Timeout: the body was not received in time",
        )),
    }
}

fn over_budget() -> HttpResponse {
    tracing::warn!("request refused: the buffered-bytes budget is spent");
    busy("Service Unavailable: the server is busy; retry later")
}

/// Why a message found no session.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// The named session ended, expired or never existed (404: initialize again).
    UnknownSession,
    /// No session named where sessions are required (400).
    SessionRequired,
}

impl Refusal {
    fn reply(self, incoming: &Incoming) -> HttpResponse {
        let id = incoming.request_id().cloned();
        match self {
            Self::UnknownSession => rpc_error(
                StatusCode::NOT_FOUND,
                id,
                ErrorCode::InvalidRequest,
                "Session not found: it ended or expired; send initialize again",
            ),
            Self::SessionRequired => rpc_error(
                StatusCode::BAD_REQUEST,
                id,
                ErrorCode::InvalidRequest,
                "Bad Request: Mcp-Session-Id header required (send initialize first)",
            ),
        }
    }
}

/// Resolve: the session the message is served on, and whether it is a fresh one that a
/// successful `initialize` would keep.
fn resolve(
    shared: &Shared,
    named: Option<&str>,
    incoming: &Incoming,
) -> Result<(Session, bool), Refusal> {
    let fresh = || shared.dispatcher.server().session();
    match (shared.config.sessions, incoming.session_use(), named) {
        (SessionMode::Disabled, _, _) | (_, SessionUse::Stateless, _) => Ok((fresh(), false)),
        (_, use_, Some(id)) => match shared.sessions.get(id) {
            Some(session) => Ok((session, false)),
            None if use_ == SessionUse::Opens => Ok((fresh(), true)),
            None => Err(Refusal::UnknownSession),
        },
        (_, SessionUse::Opens, None) => Ok((fresh(), true)),
        (SessionMode::Required, SessionUse::Joins, None) => Err(Refusal::SessionRequired),
        (_, _, None) => Ok((fresh(), false)),
    }
}

/// Reply: 202 without a body; otherwise the reply's status, as JSON or as one SSE `message`
/// event, naming the session it opened.
pub(super) fn frame(reply: Reply, format: ReplyFormat, session_id: Option<String>) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status()).unwrap_or(StatusCode::OK);
    let Some(body) = reply.into_body() else {
        return with_type(
            StatusCode::ACCEPTED,
            "text/plain; charset=utf-8",
            Bytes::new(),
        );
    };
    let mut response = match format {
        ReplyFormat::Json => with_type(status, "application/json", Bytes::from(body)),
        ReplyFormat::EventStream => {
            let mut r = with_type(status, EVENT_STREAM, sse_event(&body));
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
    };
    if let Some(id) = session_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(names::SESSION_ID.clone(), id);
    }
    response
}

/// The media type of an event stream.
pub(super) const EVENT_STREAM: &str = "text/event-stream";

/// One SSE `message` event carrying one JSON-RPC message.
pub(super) fn sse_event(message: &[u8]) -> Bytes {
    let mut event = Vec::with_capacity(message.len() + 24);
    event.extend_from_slice(b"event: message\ndata: ");
    event.extend_from_slice(message);
    event.extend_from_slice(b"\n\n");
    Bytes::from(event)
}
