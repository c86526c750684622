//! The bounded table of HTTP sessions (`Mcp-Session-Id` → [`Session`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use gpu_mcp_service::Session;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
struct Entry {
    session: Session,
    last_used: Instant,
    owner: IpAddr,
    /// Cancels the session's standalone event stream (`GET`), if one is open.
    stream: Option<CancellationToken>,
}

type Entries = Arc<Mutex<HashMap<String, Entry>>>;

/// The session already has its standalone event stream open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamOpen;

/// The standalone event stream of one session, from [`SessionTable::open_stream`]: its
/// `closed` token fires when the session is deleted; [`Self::is_live`] says whether the session
/// still exists. Dropping it lets the session open another.
#[derive(Debug)]
pub(crate) struct SessionStream {
    entries: Entries,
    id: String,
    idle_ttl: Duration,
    pub(crate) closed: CancellationToken,
}

impl SessionStream {
    /// Whether the session is still in the table and not idle past its time (a stream does not
    /// keep its session alive; requests do).
    pub(crate) fn is_live(&self) -> bool {
        let now = Instant::now();
        self.entries
            .lock()
            .get(&self.id)
            .is_some_and(|e| now.duration_since(e.last_used) <= self.idle_ttl)
    }
}

impl Drop for SessionStream {
    fn drop(&mut self) {
        if let Some(entry) = self.entries.lock().get_mut(&self.id)
            && entry.stream.as_ref() == Some(&self.closed)
        {
            entry.stream = None;
        }
    }
}

/// The table is full and the client asking holds no session it could give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableFull;

/// Sessions by id, bounded in idle time, in size and per client (the peer address that opened
/// them).
///
/// Eviction only ever takes a session of the client that asks for a new one: at its own cap, or
/// when the table is full, its least recently used session goes; a client with none to give up
/// is refused while the table is full. So no client can push out another's sessions.
#[derive(Debug)]
pub(crate) struct SessionTable {
    entries: Entries,
    max: usize,
    per_client: usize,
    idle_ttl: Duration,
}

impl SessionTable {
    pub(crate) fn new(max: usize, per_client: usize, idle_ttl: Duration) -> Self {
        Self {
            entries: Arc::new(Mutex::new(HashMap::new())),
            max: max.max(1),
            per_client: per_client.max(1),
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

    /// Stores a session opened by `owner` under a fresh random id and returns the id (`None` when
    /// no random id could be made); [`TableFull`] when the table is full and `owner` has no
    /// session to give up.
    pub(crate) fn insert(
        &self,
        session: Session,
        owner: IpAddr,
    ) -> Result<Option<String>, TableFull> {
        let Some(id) = new_session_id() else {
            return Ok(None);
        };
        let mut entries = self.entries.lock();
        let now = Instant::now();
        if entries.len() >= self.max {
            entries.retain(|_, e| now.duration_since(e.last_used) <= self.idle_ttl);
        }
        let owned = entries.values().filter(|e| e.owner == owner).count();
        if owned >= self.per_client || entries.len() >= self.max {
            let oldest = entries
                .iter()
                .filter(|(_, e)| e.owner == owner)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    tracing::debug!(%owner, "evicting the client's least recently used MCP session");
                    entries.remove(&k);
                }
                None => return Err(TableFull),
            }
        }
        entries.insert(
            id.clone(),
            Entry {
                session,
                last_used: now,
                owner,
                stream: None,
            },
        );
        Ok(Some(id))
    }

    /// Ends a session (and closes its standalone stream) and returns it; `None` when there was
    /// none with this id.
    pub(crate) fn remove(&self, id: &str) -> Option<Session> {
        let entry = self.entries.lock().remove(id)?;
        if let Some(stream) = &entry.stream {
            stream.cancel();
        }
        Some(entry.session)
    }

    /// Opens the standalone event stream of session `id` (which [`Self::get`] just found):
    /// [`StreamOpen`] while another is open, `Ok(None)` when the session is gone.
    pub(crate) fn open_stream(&self, id: &str) -> Result<Option<SessionStream>, StreamOpen> {
        let mut entries = self.entries.lock();
        let Some(entry) = entries.get_mut(id) else {
            return Ok(None);
        };
        if entry.stream.is_some() {
            return Err(StreamOpen);
        }
        let closed = CancellationToken::new();
        entry.stream = Some(closed.clone());
        Ok(Some(SessionStream {
            entries: Arc::clone(&self.entries),
            id: id.to_owned(),
            idle_ttl: self.idle_ttl,
            closed,
        }))
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

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn put(t: &SessionTable, s: &McpServer, owner: IpAddr) -> Result<String, TableFull> {
        t.insert(s.session(), owner).map(|id| id.unwrap())
    }

    #[tokio::test]
    async fn a_client_at_its_cap_evicts_its_own_least_recently_used() {
        tokio::time::pause();
        let s = server();
        let t = SessionTable::new(10, 2, Duration::from_secs(3600));
        let a1 = put(&t, &s, A).unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        let a2 = put(&t, &s, A).unwrap();
        let b1 = put(&t, &s, B).unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(t.get(&a1).is_some()); // a1 is now A's most recently used
        let a3 = put(&t, &s, A).unwrap();
        assert_eq!(t.len(), 3);
        assert!(t.get(&a2).is_none());
        assert!(t.get(&a1).is_some());
        assert!(t.get(&a3).is_some());
        assert!(t.get(&b1).is_some());
    }

    #[tokio::test]
    async fn a_full_table_never_evicts_another_clients_session() {
        tokio::time::pause();
        let s = server();
        let t = SessionTable::new(3, 3, Duration::from_secs(3600));
        let b1 = put(&t, &s, B).unwrap();
        let mut a = Vec::new();
        for _ in 0..100 {
            tokio::time::advance(Duration::from_millis(10)).await;
            a.push(put(&t, &s, A).unwrap());
        }
        assert!(t.get(&b1).is_some(), "A's flood evicted B's session");
        assert!(t.get(&a[0]).is_none());
        // B holds one session: it may replace it, but C (none held) must wait.
        let b2 = put(&t, &s, B).unwrap();
        assert!(t.get(&b1).is_none() && t.get(&b2).is_some());
        let c = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));
        assert_eq!(put(&t, &s, c), Err(TableFull));
        // Idle sessions make room again.
        tokio::time::advance(Duration::from_secs(3601)).await;
        assert!(put(&t, &s, c).is_ok());
    }

    #[tokio::test]
    async fn idle_sessions_expire_and_remove_ends_them() {
        tokio::time::pause();
        let s = server();
        let t = SessionTable::new(10, 10, Duration::from_secs(60));
        let a = put(&t, &s, A).unwrap();
        let b = put(&t, &s, A).unwrap();
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(t.get(&a).is_none());
        assert!(t.remove(&b).is_some());
        assert!(t.remove(&b).is_none());
    }
}
