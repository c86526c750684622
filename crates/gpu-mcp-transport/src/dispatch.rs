//! The part both transports share: hand one decoded message to a session, bound its time and
//! count it in the metrics with the label and outcome the server core reports.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use gpu_mcp_service::{Incoming, ListChanges, LogMessages, McpServer, Reply, Session};
use tokio::sync::mpsc;

use crate::metrics::{Metrics, Outcome};

/// Shared per-transport dispatch state; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Dispatcher {
    server: McpServer,
    metrics: Option<Metrics>,
    request_timeout: Option<Duration>,
}

impl Dispatcher {
    pub(crate) fn new(
        server: McpServer,
        metrics: Option<Metrics>,
        request_timeout: Option<Duration>,
    ) -> Self {
        Self {
            server,
            metrics,
            request_timeout,
        }
    }

    pub(crate) fn server(&self) -> &McpServer {
        &self.server
    }

    /// Serves one message. Requests always get a reply (an error reply on timeout or panic).
    pub(crate) async fn dispatch(&self, session: &Session, incoming: Incoming) -> Reply {
        let Some(label) = self.server.label(&incoming) else {
            return session.answer(incoming).await;
        };
        let id = incoming.request_id().cloned();
        let guard = self.metrics.as_ref().map(Metrics::request_started);
        let handled = AssertUnwindSafe(session.answer(incoming))
            .catch_unwind()
            .map(|r| {
                r.unwrap_or_else(|_| {
                    Reply::internal_error(id.clone(), "internal error while handling the request")
                })
            });
        let (reply, timed_out) = match self.request_timeout {
            Some(limit) => match tokio::time::timeout(limit, handled).await {
                Ok(reply) => (reply, false),
                Err(_) => (
                    Reply::internal_error(
                        id,
                        format!("request timed out after {} s", limit.as_secs_f64()),
                    ),
                    true,
                ),
            },
            None => (handled.await, false),
        };
        if let Some(guard) = guard {
            let outcome = if timed_out {
                Outcome::Timeout
            } else {
                Outcome::from(reply.outcome())
            };
            guard.finish(label.method, label.tool, outcome);
        }
        reply
    }
}

/// Sends a session's log messages to `tx` until the server or the receiver is gone.
pub(crate) async fn forward(mut messages: LogMessages, tx: mpsc::Sender<Vec<u8>>) {
    while let Some(message) = messages.next().await {
        if tx.send(message).await.is_err() {
            break;
        }
    }
}

/// Sends a session's resource list change notifications to `tx` until the catalog or the
/// receiver is gone.
pub(crate) async fn forward_list_changes(mut changes: ListChanges, tx: mpsc::Sender<Vec<u8>>) {
    while let Some(message) = changes.next().await {
        if tx.send(message).await.is_err() {
            break;
        }
    }
}
