//! Progress of long requests: `notifications/progress` for a request whose `_meta` carries a
//! `progressToken`, sent on the channel the transport gave the request
//! ([`crate::Incoming::with_notifications`]).
//!
//! Without a token, or on a transport that cannot deliver notifications while a request runs
//! (a plain JSON HTTP reply), a tool gets no [`Progress`] and reports nothing.

use gpu_mcp_protocol::{JsonObject, Notification, encode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Method of the progress notification.
pub const PROGRESS_METHOD: &str = "notifications/progress";

/// Where a transport takes the notifications a request sends while it runs (encoded JSON-RPC,
/// compact, no newline).
pub type NotificationSender = mpsc::Sender<Vec<u8>>;

/// The `_meta` member by which a request asks for progress notifications.
pub(crate) const PROGRESS_TOKEN: &str = "progressToken";

/// Reports the progress of one request to its client; cheap to clone.
#[derive(Debug, Clone)]
pub struct Progress {
    token: Value,
    tx: NotificationSender,
}

impl Progress {
    /// A reporter sending on `tx` for the request whose `progressToken` is `token`.
    pub fn new(token: Value, tx: NotificationSender) -> Self {
        Self { token, tx }
    }

    /// The reporter of a request with `meta`, if it carries a usable `progressToken` (a string
    /// or an integer) and the transport can deliver notifications.
    pub(crate) fn of(meta: Option<&JsonObject>, tx: Option<&NotificationSender>) -> Option<Self> {
        let token = meta?.get(PROGRESS_TOKEN)?;
        let usable = token.is_string() || token.is_i64() || token.is_u64();
        Some(Self {
            token: usable.then(|| token.clone())?,
            tx: tx?.clone(),
        })
    }

    /// Reports `done` of `total` steps with a message for people.
    ///
    /// Never waits: a client that does not read its notifications fast enough misses some
    /// reports, and the request itself is never slowed down by them.
    pub fn report(&self, done: u64, total: u64, message: &str) {
        let params = json!({
            "progressToken": self.token,
            "progress": done,
            "total": total,
            "message": message,
        });
        let notification = encode(&Notification::new(PROGRESS_METHOD, Some(params)));
        if self.tx.try_send(notification).is_err() {
            tracing::debug!("a progress notification was dropped");
        }
    }
}
