//! `notifications/resources/list_changed`: telling a session's client that the resource list
//! changed (nodes came or went), at most once per [`LIST_CHANGED_INTERVAL`].
//!
//! A [`ResourceCatalog`] whose list changes hands the server a generation
//! ([`ResourceCatalog::list_changes`]) that moves with every change.
//! The server then declares `resources.listChanged: true` in the handshake revisions, and a
//! transport delivers each session's [`ListChanges`] where the session has a stream outside
//! any request (between the replies over stdio, the standalone `GET` stream over HTTP).
//! A change is announced only to a session that completed `initialize`: its client reads the
//! list after that anyway, so nothing before it is worth a notification.
//! A burst of changes (a rolling restart of the agents, a discovery storm) becomes one
//! notification: the session waits out the interval after the first change, then announces
//! the list once.
//!
//! 2026-07-28 has no session stream: its clients ask for change notifications with
//! `subscriptions/listen`, which this server does not serve, so `server/discover` and
//! envelope requests see `listChanged: false` and rely on the list's `ttlMs`.
//!
//! [`ResourceCatalog`]: crate::ResourceCatalog
//! [`ResourceCatalog::list_changes`]: crate::ResourceCatalog::list_changes

use std::time::Duration;

use gpu_mcp_protocol::{Notification, encode};
use tokio::sync::watch;

use crate::server::McpServer;
use crate::session::Session;

/// Method of the resource list change notification.
pub const RESOURCE_LIST_CHANGED_METHOD: &str = "notifications/resources/list_changed";

/// Least time between two list change notifications to one session; changes within it are
/// announced once, at its end.
pub const LIST_CHANGED_INTERVAL: Duration = Duration::from_secs(1);

/// The resource list changes of one session, encoded as
/// `notifications/resources/list_changed` (compact JSON, no newline), from
/// [`Session::resource_list_changes`].
#[derive(Debug)]
pub struct ListChanges {
    rx: watch::Receiver<u64>,
    session: Session,
}

impl ListChanges {
    /// The next notification for this session's client: after a change, once the interval
    /// has passed and the session is initialized; `None` once the catalog can change no more.
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            self.rx.changed().await.ok()?;
            // Gather the rest of the burst; the changes seen so far are announced by this one.
            tokio::time::sleep(LIST_CHANGED_INTERVAL).await;
            self.rx.borrow_and_update();
            if self.session.is_initialized() {
                return Some(encode(&Notification::new(
                    RESOURCE_LIST_CHANGED_METHOD,
                    None,
                )));
            }
        }
    }
}

impl McpServer {
    /// Whether this server's resource list changes, so that its sessions have
    /// [`Session::resource_list_changes`] to deliver.
    pub fn announces_resource_list_changes(&self) -> bool {
        self.inner.list_changes.is_some()
    }
}

impl Session {
    /// This session's resource list change notifications from now on, for a transport to
    /// deliver outside any request; `None` when the catalog's list never changes.
    pub fn resource_list_changes(&self) -> Option<ListChanges> {
        let mut rx = self.server.inner.list_changes.clone()?;
        rx.borrow_and_update();
        Some(ListChanges {
            rx,
            session: self.clone(),
        })
    }
}
