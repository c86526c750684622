//! A POSTed request that sends notifications before its response: its progress and its
//! session's log messages go out as SSE events on the POST's own response, then the response
//! as the last event, and the stream ends.
//!
//! Nothing changes for a request that sends none: when its reply is ready before any
//! notification, it is framed as usual (JSON or one event, with its own HTTP status).
//! The limits stay those of every request: the dispatcher's request deadline bounds the whole
//! stream, each event takes its bytes from the process-wide budget until hyper has taken it (a
//! notification that does not fit is dropped, a response that does not fit is replaced by a
//! short error), and a client that goes away drops the stream, which aborts the request.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use gpu_mcp_protocol::RequestId;
use gpu_mcp_service::{Incoming, Reply, Session};
use http::header::CACHE_CONTROL;
use http::{HeaderValue, StatusCode};
use tokio::sync::mpsc;
use tokio::task::JoinError;
use tokio_util::task::AbortOnDropHandle;

use super::body::{EventStream, ReplyBody};
use super::handler::{HttpResponse, Shared};
use super::post::{EVENT_STREAM, frame, sse_event};
use super::security::ReplyFormat;
use crate::budget::{Budget, Held};
use crate::dispatch::forward;

/// Notifications one request may have waiting for the client; more are dropped (progress is
/// never allowed to slow the request down).
const QUEUED_NOTIFICATIONS: usize = 64;

/// Encoded events waiting for hyper to take them.
const QUEUED_EVENTS: usize = 8;

/// Whether `incoming` may send notifications before its reply: it asks for progress or for its
/// own log records, or its session's client turned log messages on. Any other request is
/// answered as JSON or one event without the channel, the boxed request and the `select!` of
/// [`serve`].
pub(super) fn may_notify(session: &Session, incoming: &Incoming) -> bool {
    incoming.may_notify() || session.log_level().is_some()
}

/// Serves `incoming` on `session`, streaming its notifications when it sends any.
///
/// The request runs inside this handler until it sends its first notification: most requests
/// send none, and they cost no task of their own (spawning one, waking the handler from another
/// worker and freeing it took a large share of a cached call's time). Only a request that
/// notifies before it is answered moves, already started, into the task that feeds its event
/// stream, which the response body owns.
pub(super) async fn serve(
    shared: &Shared,
    session: Session,
    incoming: Incoming,
    format: ReplyFormat,
) -> HttpResponse {
    let id = incoming.request_id().cloned();
    let (notify, mut notifications) = mpsc::channel::<Vec<u8>>(QUEUED_NOTIFICATIONS);
    let incoming = incoming.with_notifications(notify.clone());
    let dispatcher = shared.dispatcher.clone();
    let mut request: Request = Box::pin(async move {
        // The session's log messages, once its client asked for them, travel on this stream
        // while the request runs, unless another stream of the session already carries them.
        let _logs = session
            .log_level()
            .and_then(|_| session.log_messages())
            .map(|messages| AbortOnDropHandle::new(tokio::spawn(forward(messages, notify))));
        dispatcher.dispatch(&session, incoming).await
    });
    let (first, pending) = tokio::select! {
        biased;
        Some(first) = notifications.recv() => {
            (first, Pending::Running(AbortOnDropHandle::new(tokio::spawn(request))))
        }
        reply = &mut request => match notifications.try_recv() {
            Ok(first) => (first, Pending::Done(reply)),
            Err(_) => return frame(reply, format, None),
        },
    };
    let (events, rx) = mpsc::channel(QUEUED_EVENTS);
    let producer = tokio::spawn(produce(
        Events {
            budget: shared.budget.clone(),
            tx: events,
        },
        first,
        notifications,
        pending,
        id,
    ));
    event_stream(rx, producer)
}

/// A request being served, before it moved into a task of its own.
type Request = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// The request behind a stream: still running, or answered with notifications still queued.
enum Pending {
    Running(AbortOnDropHandle<Reply>),
    Done(Reply),
}

/// The reply of a request task; a task that panicked outside the dispatcher's guard gets an
/// error reply.
fn answered(joined: Result<Reply, JoinError>, id: Option<&RequestId>) -> Reply {
    joined.unwrap_or_else(|_| {
        Reply::internal_error(id.cloned(), "internal error while handling the request")
    })
}

/// Sends `first`, every later notification while the request runs, what it queued before it
/// ended, then its response.
async fn produce(
    events: Events,
    first: Vec<u8>,
    mut notifications: mpsc::Receiver<Vec<u8>>,
    pending: Pending,
    id: Option<RequestId>,
) {
    events.notification(&first).await;
    let reply = match pending {
        Pending::Done(reply) => reply,
        Pending::Running(mut request) => loop {
            tokio::select! {
                biased;
                Some(notification) = notifications.recv() => events.notification(&notification).await,
                joined = &mut request => break answered(joined, id.as_ref()),
            }
        },
    };
    while let Ok(notification) = notifications.try_recv() {
        events.notification(&notification).await;
    }
    events.reply(reply, id).await;
}

/// A 200 event stream of what `producer` sends on `rx`; dropping it aborts `producer`.
fn event_stream(
    rx: mpsc::Receiver<(Bytes, Held)>,
    producer: tokio::task::JoinHandle<()>,
) -> HttpResponse {
    let body = ReplyBody::Events(EventStream::new(rx, AbortOnDropHandle::new(producer)));
    let mut response = http::Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(EVENT_STREAM),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Where a stream's events go, each with its bytes of the budget.
struct Events {
    budget: Budget,
    tx: mpsc::Sender<(Bytes, Held)>,
}

impl Events {
    /// Queues one notification; dropped when the budget cannot hold it.
    async fn notification(&self, notification: &[u8]) {
        let event = sse_event(notification);
        match self.budget.try_take(event.len()) {
            // An error only means the client went away, which aborts this task anyway.
            Some(held) => drop(self.tx.send((event, held)).await),
            None => {
                tracing::debug!("a notification was dropped: the buffered-bytes budget is spent");
            }
        }
    }

    /// Queues the response of request `id` as the last event; one the budget cannot hold is
    /// replaced by a short error, as a complete reply would be by a 503.
    async fn reply(&self, reply: Reply, id: Option<RequestId>) {
        let Some(body) = reply.into_body() else {
            return;
        };
        let event = sse_event(&body);
        let queued = match self.budget.try_take(event.len()) {
            Some(held) => (event, held),
            None => {
                tracing::warn!(
                    size = event.len(),
                    "response replaced: the buffered-bytes budget is spent"
                );
                let busy = Reply::internal_error(id, "the server is busy; retry later");
                let Some(busy) = busy.into_body() else {
                    return;
                };
                (sse_event(&busy), Held::none())
            }
        };
        drop(self.tx.send(queued).await);
    }
}
