//! `GET /mcp`: the standalone event stream of one session, which carries what the server
//! sends outside any request: `notifications/resources/list_changed` when the catalog's
//! resource list changes (the gateway's nodes coming and going).
//!
//! It is offered only where there is something to carry: with sessions on and a catalog whose
//! resource list changes; otherwise `GET` is 405, as before. The request names its session
//! (`Mcp-Session-Id`, 400 without, 404 for one that does not exist) and accepts
//! `text/event-stream` (406 otherwise).
//! A session has at most one stream: a second `GET` while the first is open is 409, so a
//! client cannot multiply the streams one session holds.
//!
//! The limits are those that already hold: the stream lives on its connection, so it holds
//! that connection's slot (per peer and in all) until it ends; each event takes its bytes from
//! the process-wide budget until hyper has taken it (an event that does not fit is dropped);
//! a comment every [`KEEP_ALIVE`] keeps proxies from closing a quiet stream and tells a gone
//! client from a live one. The stream ends when the session is deleted (at once), when it
//! expired (at the next keep-alive: the stream does not keep its session alive), when the
//! catalog can change no more, or when the client goes away.

use std::time::Duration;

use bytes::Bytes;
use gpu_mcp_protocol::ErrorCode;
use gpu_mcp_service::ListChanges;
use http::header::{ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::SessionMode;
use super::body::{EventStream, ReplyBody};
use super::handler::{HttpResponse, Shared, plain, rpc_error, session_id};
use super::post::{EVENT_STREAM, sse_event};
use super::security;
use super::sessions::{SessionStream, StreamOpen};
use crate::budget::{Budget, Held};

/// Time between two keep-alive comments on a quiet stream.
pub(super) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Encoded events waiting for hyper to take them.
const QUEUED_EVENTS: usize = 4;

/// The keep-alive comment.
const KEEP_ALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

/// Whether `GET` opens a stream here: sessions are on and the resource list changes.
fn offered(shared: &Shared) -> bool {
    shared.config.sessions != SessionMode::Disabled
        && shared.dispatcher.server().announces_resource_list_changes()
}

/// The methods the MCP endpoint takes (for CORS preflights).
pub(super) fn allowed_methods(shared: &Shared) -> &'static str {
    if offered(shared) {
        "GET, POST, DELETE"
    } else {
        "POST, DELETE"
    }
}

/// 405 for a method the MCP endpoint does not take, naming those it does.
pub(super) fn not_allowed(shared: &Shared) -> HttpResponse {
    let (text, allow) = if offered(shared) {
        (
            "this endpoint takes POST (one JSON-RPC message), GET (the session's event stream) and DELETE (end a session)\n",
            allowed_methods(shared),
        )
    } else {
        (
            "this endpoint takes POST (one JSON-RPC message) and DELETE (end a session); notifications travel on the event stream of the request they belong to, so no standalone stream is offered\n",
            "POST, DELETE",
        )
    };
    let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, text);
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

/// Answers `GET` on the MCP endpoint.
pub(super) fn get(shared: &Shared, headers: &HeaderMap) -> HttpResponse {
    if !offered(shared) {
        return not_allowed(shared);
    }
    if !security::names_event_stream(headers.get(ACCEPT)) {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            None,
            ErrorCode::InvalidRequest,
            "Not Acceptable: GET opens an event stream; Accept must allow text/event-stream",
        );
    }
    let id = match session_id(headers) {
        Ok(Some(id)) => id,
        Ok(None) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                ErrorCode::InvalidRequest,
                "Bad Request: Mcp-Session-Id header required",
            );
        }
        Err(bad) => return bad.reply(),
    };
    let not_found = || {
        rpc_error(
            StatusCode::NOT_FOUND,
            None,
            ErrorCode::InvalidRequest,
            "Session not found",
        )
    };
    let Some(session) = shared.sessions.get(id) else {
        return not_found();
    };
    let stream = match shared.sessions.open_stream(id) {
        Ok(Some(stream)) => stream,
        Ok(None) => return not_found(),
        Err(StreamOpen) => {
            return rpc_error(
                StatusCode::CONFLICT,
                None,
                ErrorCode::InvalidRequest,
                "Conflict: this session's event stream is already open",
            );
        }
    };
    let Some(changes) = session.resource_list_changes() else {
        return not_found();
    };
    let (tx, rx) = mpsc::channel(QUEUED_EVENTS);
    let producer = tokio::spawn(produce(
        shared.budget.clone(),
        tx,
        changes,
        stream,
        shared.streams_closing.clone(),
    ));
    let body = ReplyBody::Events(EventStream::new(rx, AbortOnDropHandle::new(producer)));
    let mut response = http::Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Sends the session's notifications and keep-alives until the stream ends.
async fn produce(
    budget: Budget,
    tx: mpsc::Sender<(Bytes, Held)>,
    mut changes: ListChanges,
    stream: SessionStream,
    shutting_down: CancellationToken,
) {
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    keep_alive.tick().await;
    loop {
        let event = tokio::select! {
            biased;
            () = stream.closed.cancelled() => return,
            () = shutting_down.cancelled() => return,
            notification = changes.next() => match notification {
                Some(notification) => sse_event(&notification),
                None => return,
            },
            _ = keep_alive.tick() => {
                if !stream.is_live() {
                    return;
                }
                Bytes::from_static(KEEP_ALIVE_COMMENT)
            }
        };
        match budget.try_take(event.len()) {
            Some(held) => {
                if tx.send((event, held)).await.is_err() {
                    return;
                }
            }
            None => {
                tracing::debug!("a stream event was dropped: the buffered-bytes budget is spent");
            }
        }
    }
}
