//! `POST /mcp` in three steps: **read** the body within the limits, **resolve** the session it
//! belongs to, **reply** with what the server core answered, framed as JSON or one SSE event.
//!
//! What the message means (its revision, whether it parses, the reply and its status) is the
//! server core's ([`gpu_mcp_service::Incoming`], [`gpu_mcp_service::Reply`]); this module owns
//! the HTTP limits, the session table and the framing.

use bytes::Bytes;
use gpu_mcp_protocol::ErrorCode;
use gpu_mcp_protocol::http::SESSION_ID_HEADER;
use gpu_mcp_service::{HttpHeaders, Incoming, Reply, Session, SessionUse};
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Limited};

use super::SessionMode;
use super::handler::{HttpResponse, Shared, rpc_error, with_type};
use super::security::{self, ReplyFormat};

pub(super) async fn post(
    shared: &Shared,
    req: http::Request<hyper::body::Incoming>,
) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let (format, bytes) = match read(shared, headers, body).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let mcp_headers = HttpHeaders::from_lookup(|name| headers.get(name).map(HeaderValue::as_bytes));
    let incoming = match Incoming::from_http(mcp_headers, &bytes) {
        Ok(incoming) => incoming,
        Err(rejected) => return frame(rejected, ReplyFormat::Json, None),
    };
    let (session, fresh) = match resolve(shared, headers, &incoming) {
        Ok(resolved) => resolved,
        Err(refusal) => return refusal.reply(&incoming),
    };
    let reply = shared.dispatcher.dispatch(&session, incoming).await;
    let session_id = if fresh && reply.opens_session() {
        shared.sessions.insert(session)
    } else {
        None
    };
    frame(reply, format, session_id)
}

/// Read: `Content-Type`, `Accept`, then the body within the size limit and the request timeout.
async fn read(
    shared: &Shared,
    headers: &HeaderMap,
    body: hyper::body::Incoming,
) -> Result<(ReplyFormat, Bytes), HttpResponse> {
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
    let collected = tokio::time::timeout(
        config.request_timeout,
        Limited::new(body, config.max_body_bytes).collect(),
    )
    .await;
    match collected {
        Ok(Ok(c)) => Ok((format, c.to_bytes())),
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
    headers: &HeaderMap,
    incoming: &Incoming,
) -> Result<(Session, bool), Refusal> {
    let fresh = || shared.dispatcher.server().session();
    let named = headers.get(SESSION_ID_HEADER).and_then(|v| v.to_str().ok());
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
fn frame(reply: Reply, format: ReplyFormat, session_id: Option<String>) -> HttpResponse {
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
            let mut event = Vec::with_capacity(body.len() + 24);
            event.extend_from_slice(b"event: message\ndata: ");
            event.extend_from_slice(&body);
            event.extend_from_slice(b"\n\n");
            let mut r = with_type(status, "text/event-stream", Bytes::from(event));
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
    };
    if let Some(id) = session_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(SESSION_ID_HEADER, id);
    }
    response
}
