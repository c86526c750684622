//! The bounded table of HTTP sessions (`Mcp-Session-Id` → [`Session`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use parking_lot::Mutex;

use gpu_mcp_service::Session;
use tokio::time::Instant;

#[derive(Debug)]
struct Entry {
    session: Session,
    last_used: Instant,
}

/// Sessions by id, bounded in size (least recently used evicted first) and in idle time.
#[derive(Debug)]
pub(crate) struct SessionTable {
    entries: Mutex<HashMap<String, Entry>>,
    max: usize,
    idle_ttl: Duration,
}

impl SessionTable {
    pub(crate) fn new(max: usize, idle_ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            max: max.max(1),
            idle_ttl,
        }
    }

    /// The live session with this id, marked as used now.
    pub(crate) fn get(&self, id: &str) -> Option<Session> {
        let mut entries = self.entries.lock();
        let now = Instant::now();
        let expired = match entries.get_mut(id) {
            None => return None,
            Some(e) if now.duration_since(e.last_used) > self.idle_ttl => true,
            Some(e) => {
                e.last_used = now;
                return Some(e.session.clone());
            }
        };
        if expired {
            entries.remove(id);
        }
        None
    }

    /// Stores a session under a fresh random id and returns the id; `None` when no random id could
    /// be made.
    pub(crate) fn insert(&self, session: Session) -> Option<String> {
        let id = new_session_id()?;
        let mut entries = self.entries.lock();
        let now = Instant::now();
        if entries.len() >= self.max {
            entries.retain(|_, e| now.duration_since(e.last_used) <= self.idle_ttl);
        }
        while entries.len() >= self.max {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    tracing::debug!("evicting the least recently used MCP session");
                    entries.remove(&k);
                }
                None => break,
            }
        }
        entries.insert(
            id.clone(),
            Entry {
                session,
                last_used: now,
            },
        );
        Some(id)
    }

    /// Ends a session and returns it; `None` when there was none with this id.
    pub(crate) fn remove(&self, id: &str) -> Option<Session> {
        self.entries.lock().remove(id).map(|e| e.session)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().len()
    }
}

/// 128 random bits from the operating system, as 32 lowercase hex characters.
fn new_session_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    let mut id = String::with_capacity(32);
    for b in bytes {
        let _ = write!(id, "{b:02x}");
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gpu_mcp_protocol::Tool;
    use gpu_mcp_service::{CallContext, CallError, McpServer, ServerInfo, ToolCatalog};

    use super::*;

    struct Empty;
    impl ToolCatalog for Empty {
        fn tools(&self) -> Vec<Tool> {
            Vec::new()
        }
        fn call<'a>(
            &'a self,
            name: &'a str,
            _: Option<gpu_mcp_protocol::JsonObject>,
            _: CallContext,
        ) -> futures::future::BoxFuture<'a, Result<gpu_mcp_protocol::CallToolResult, CallError>>
        {
            Box::pin(async move { Err(CallError::UnknownTool(name.to_owned())) })
        }
    }

    fn server() -> McpServer {
        let info = ServerInfo {
            name: "t".into(),
            version: "0".into(),
            title: None,
            instructions: None,
        };
        McpServer::new(info, Arc::new(Empty))
    }

    #[test]
    fn ids_are_visible_ascii_and_distinct() {
        let a = new_session_id().unwrap();
        let b = new_session_id().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_graphic()));
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn evicts_least_recently_used_when_full() {
        tokio::time::pause();
        let s = server();
        let t = SessionTable::new(2, Duration::from_secs(3600));
        let a = t.insert(s.session()).unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        let b = t.insert(s.session()).unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(t.get(&a).is_some()); // a is now the most recently used
        let c = t.insert(s.session()).unwrap();
        assert_eq!(t.len(), 2);
        assert!(t.get(&b).is_none());
        assert!(t.get(&a).is_some());
        assert!(t.get(&c).is_some());
    }

    #[tokio::test]
    async fn idle_sessions_expire_and_remove_ends_them() {
        tokio::time::pause();
        let s = server();
        let t = SessionTable::new(10, Duration::from_secs(60));
        let a = t.insert(s.session()).unwrap();
        let b = t.insert(s.session()).unwrap();
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(t.get(&a).is_none());
        assert!(t.remove(&b).is_some());
        assert!(t.remove(&b).is_none());
    }
}
