//! MCP Streamable HTTP on hyper 1.x (HTTP/1.1 and cleartext HTTP/2), plus the operational
//! endpoints `/healthz`, `/readyz`, `/version` and `/metrics`.

mod body;
mod connection;
mod handler;
mod listen;
mod names;
mod oauth;
mod post;
mod rate;
mod security;
mod sessions;
mod stream;
mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use gpu_mcp_service::McpServer;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use oauth::{
    DEFAULT_OAUTH_FETCH_TIMEOUT, DEFAULT_OAUTH_MAX_DOCUMENT_BYTES, DEFAULT_OAUTH_REFRESH_INTERVAL,
    OAuthConfig,
};
pub use rate::{DEFAULT_RATE_LIMIT_BURST, DEFAULT_RATE_LIMIT_PER_SECOND, RateLimit};
pub use tls::TlsConfig;

use crate::dispatch::Dispatcher;
use crate::error::{Error, Result};
use crate::health::Health;
use crate::metrics::Metrics;
use handler::Shared;
use sessions::SessionTable;

/// Default cap on a POST body: 64 KiB (MCP requests are a few hundred bytes).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 10;

/// Default process-wide budget for request bodies being read and responses being written: 32 MiB.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 32 << 20;

/// Whether the server issues and honours `Mcp-Session-Id`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SessionMode {
    /// Issue an id on `initialize`; requests without one are served statelessly.
    #[default]
    Optional,
    /// Issue an id on `initialize`; other requests without one are refused with 400
    /// (2026-07-28 requests, which have no sessions, excepted).
    Required,
    /// Never issue ids; every POST is served on its own.
    Disabled,
}

impl std::str::FromStr for SessionMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "optional" => Ok(Self::Optional),
            "required" => Ok(Self::Required),
            "disabled" => Ok(Self::Disabled),
            other => Err(format!(
                "unknown session mode `{other}` (expected optional, required or disabled)"
            )),
        }
    }
}

/// Settings of the HTTP transport.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Address to listen on (`127.0.0.1:8080` by default; port 0 picks a free port).
    pub listen: SocketAddr,
    /// Path of the MCP endpoint (`/mcp`).
    pub mcp_path: String,
    /// Browser origins allowed to call the MCP endpoint; empty allows local origins only (see the
    /// crate docs), `*` allows any.
    pub allowed_origins: Vec<String>,
    /// Host names the `Host` header may carry; empty allows any.
    pub allowed_hosts: Vec<String>,
    /// Largest accepted POST body in bytes.
    pub max_body_bytes: usize,
    /// Bytes of request bodies being read and of responses being written, all connections
    /// together; a request that would go over it gets 503, a response is replaced by a 503.
    pub max_buffered_bytes: usize,
    /// Token required as `Authorization: Bearer <token>` on the MCP endpoint.
    pub bearer_token: Option<String>,
    /// Accept OAuth access tokens (JWTs) of this issuer on the MCP endpoint and serve the
    /// protected-resource metadata. With `bearer_token` too, either is accepted.
    pub oauth: Option<OAuthConfig>,
    /// Serve HTTPS with this certificate.
    pub tls: Option<TlsConfig>,
    /// Time a client has to send its first byte, its request headers (also bounds idle HTTP/1
    /// keep-alive waits) and to finish a TLS handshake.
    pub header_read_timeout: Duration,
    /// Time a client has to send a whole request body.
    pub body_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// Upper bound on reading one body and handling one MCP request.
    pub request_timeout: Duration,
    /// On shutdown, how long `/readyz` answers 503 while everything is still served, so load
    /// balancers stop sending before the listener closes.
    pub drain_delay: Duration,
    /// On shutdown, how long in-flight requests may still run; `None` follows the longest
    /// deadline of a request (`body_read_timeout` + `request_timeout`) plus a second.
    pub shutdown_grace: Option<Duration>,
    /// Open connections served in full; connections beyond it are closed at once, except for
    /// `probe_connections` more that are served the operational endpoints only (503 on the MCP
    /// endpoint), so `/healthz` and `/readyz` answer while the MCP endpoint is saturated.
    pub max_connections: usize,
    /// Connections beyond `max_connections` that may still reach the operational endpoints.
    pub probe_connections: usize,
    /// Open connections from one peer address (both shares together); more are closed at once.
    pub max_connections_per_peer: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// HTTP/2 flow-control window of one stream, in bytes (how much a client may send ahead).
    pub stream_window_bytes: u32,
    /// HTTP/2 flow-control window of a whole connection, in bytes.
    pub connection_window_bytes: u32,
    /// Session handling.
    pub sessions: SessionMode,
    /// Most sessions kept, all clients together; when full, a client may only replace its own.
    pub max_sessions: usize,
    /// Most sessions one client (peer address) keeps; its least recently used goes first.
    pub max_sessions_per_client: usize,
    /// Sessions unused for this long are forgotten.
    pub session_idle_ttl: Duration,
    /// Requests one client (peer address) may POST to the MCP endpoint, as a token bucket;
    /// over it the client gets 429 with `Retry-After`. `None` turns the limit off.
    pub rate_limit: Option<RateLimit>,
    /// Source revision reported by `/version`.
    pub git_sha: Option<String>,
}

impl HttpConfig {
    /// The shutdown grace in effect: `shutdown_grace`, or the longest deadline of one request
    /// plus a second.
    pub fn effective_shutdown_grace(&self) -> Duration {
        self.shutdown_grace
            .unwrap_or(self.body_read_timeout + self.request_timeout + Duration::from_secs(1))
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            mcp_path: "/mcp".into(),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            bearer_token: None,
            oauth: None,
            tls: None,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(60),
            drain_delay: Duration::from_secs(2),
            shutdown_grace: None,
            max_connections: 512,
            probe_connections: 16,
            max_connections_per_peer: 128,
            max_concurrent_streams: 32,
            stream_window_bytes: 64 << 10,
            connection_window_bytes: 256 << 10,
            sessions: SessionMode::Optional,
            max_sessions: 4096,
            max_sessions_per_client: 256,
            session_idle_ttl: Duration::from_secs(3600),
            rate_limit: Some(RateLimit::default()),
            git_sha: None,
        }
    }
}

/// A bound, not yet serving, MCP HTTP server.
pub struct HttpServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    builder: auto::Builder<TokioExecutor>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpServer {
    /// Binds the listener and prepares TLS; nothing is served until [`HttpServer::serve`].
    ///
    /// Binding a non-loopback address without a bearer token or OAuth logs a warning: anyone
    /// who can reach the address can call every tool. Unusable OAuth settings are an error.
    pub async fn bind(
        config: HttpConfig,
        server: McpServer,
        health: Health,
        metrics: Metrics,
    ) -> Result<Self> {
        let tls = config.tls.as_ref().map(TlsConfig::acceptor).transpose()?;
        let verifier = match config.oauth.clone() {
            // Loading the system's CA certificates reads files.
            Some(oauth) => {
                let path = config.mcp_path.clone();
                let made = tokio::task::spawn_blocking(move || oauth::Verifier::new(&oauth, &path))
                    .await
                    .map_err(|e| Error::OAuth(format!("preparing the OAuth client failed: {e}")))?;
                Some(made?)
            }
            None => None,
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr()?;
        if !local_addr.ip().is_loopback() && config.bearer_token.is_none() && verifier.is_none() {
            tracing::warn!(
                %local_addr,
                "UNAUTHENTICATED: the MCP endpoint listens on a non-loopback address without a \
                 bearer token or OAuth; anyone who can reach it can call every tool (set an auth \
                 token)"
            );
        }
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // The header deadline of HTTP/1 is kept by the connection's own watch
        // (`connection.rs`), which costs nothing per request; hyper's would arm, allocate
        // and cancel a timer for every request.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_buf_size(HTTP1_MAX_BUF_BYTES)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(config.max_concurrent_streams.max(1))
            .initial_stream_window_size(config.stream_window_bytes.max(MIN_WINDOW_BYTES))
            .initial_connection_window_size(config.connection_window_bytes.max(MIN_WINDOW_BYTES))
            .max_header_list_size(HTTP2_MAX_HEADER_LIST_BYTES)
            .max_send_buf_size(config.stream_window_bytes.max(MIN_WINDOW_BYTES) as usize)
            .max_pending_accept_reset_streams(config.max_concurrent_streams.max(1) as usize)
            .keep_alive_interval(config.idle_timeout / 2)
            .keep_alive_timeout(config.header_read_timeout);
        let dispatcher =
            Dispatcher::new(server, Some(metrics.clone()), Some(config.request_timeout));
        let sessions = SessionTable::new(
            config.max_sessions,
            config.max_sessions_per_client,
            config.session_idle_ttl,
        );
        let shared = Arc::new(Shared::new(
            config, verifier, dispatcher, sessions, health, metrics,
        ));
        Ok(Self {
            listener,
            local_addr,
            shared,
            tls,
            builder,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` is cancelled, then turns `/readyz` false and keeps serving for
    /// the drain delay, stops accepting, lets in-flight requests finish within the grace period
    /// and closes every connection.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<()> {
        let Self {
            listener,
            shared,
            tls,
            builder,
            local_addr,
        } = self;
        let config = &shared.config;
        tracing::info!(%local_addr, tls = tls.is_some(), "serving MCP over HTTP");
        let slots = Slots::new(config);
        let builder = Arc::new(builder);
        let closing = CancellationToken::new();
        let mut connections = JoinSet::new();
        // Readiness first, so load balancers stop sending before the listener goes.
        let stop = async {
            shutdown.cancelled().await;
            shared.health.set_draining();
            shared.streams_closing.cancel();
            tracing::info!(delay = ?config.drain_delay, "shutting down: /readyz answers 503");
            tokio::time::sleep(config.drain_delay).await;
        };
        tokio::pin!(stop);
        loop {
            while connections.try_join_next().is_some() {}
            let (tcp, peer) = tokio::select! {
                () = &mut stop => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Some(slot) = slots.take(peer.ip()) else {
                tracing::debug!(%peer, "connection refused: no slot left for this peer or at all");
                drop(tcp);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (shared, builder, closing, tls) = (
                shared.clone(),
                builder.clone(),
                closing.clone(),
                tls.clone(),
            );
            connections.spawn(async move {
                let timeout = shared.config.header_read_timeout;
                // The first byte falls under the header timeout too: a silent socket holds its
                // slot for that long at most.
                let mut first = [0u8; 1];
                match tokio::time::timeout(timeout, tcp.peek(&mut first)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    Ok(_) => return,
                    Err(_) => {
                        tracing::debug!(%peer, "closing a connection that sent nothing");
                        return;
                    }
                }
                let conn = Conn {
                    peer,
                    probes_only: slot.probes_only(),
                };
                match tls {
                    None => connection::serve(tcp, conn, shared, &builder, closing).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => {
                                connection::serve(stream, conn, shared, &builder, closing).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
                drop(slot);
            });
        }
        drop(listener);
        closing.cancel();
        let grace = config.effective_shutdown_grace();
        let drained = tokio::time::timeout(grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = connections.len(),
                "closing connections still busy after the shutdown grace period"
            );
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        }
        tracing::info!("HTTP server stopped");
        Ok(())
    }
}

/// Bytes hyper may buffer for one HTTP/1 connection (headers included).
const HTTP1_MAX_BUF_BYTES: usize = 64 << 10;

/// Largest header block accepted on HTTP/2.
const HTTP2_MAX_HEADER_LIST_BYTES: u32 = 16 << 10;

/// The smallest HTTP/2 window the protocol allows to configure usefully.
const MIN_WINDOW_BYTES: u32 = 1 << 14;

/// What a connection is allowed, decided when it was accepted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Conn {
    /// The client's address (sessions are counted per client by its IP).
    pub(crate) peer: SocketAddr,
    /// Accepted beyond `max_connections`: operational endpoints only.
    pub(crate) probes_only: bool,
}

/// Connection slots: the full share, the probe share and the count per peer address.
#[derive(Debug, Clone)]
struct Slots {
    full: Arc<Semaphore>,
    probes: Arc<Semaphore>,
    per_peer: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_peer: usize,
}

/// One taken slot; given back when dropped.
struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    probes_only: bool,
    peer: IpAddr,
    per_peer: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Slots {
    fn new(config: &HttpConfig) -> Self {
        Self {
            full: Arc::new(Semaphore::new(config.max_connections.max(1))),
            probes: Arc::new(Semaphore::new(config.probe_connections)),
            per_peer: Arc::new(Mutex::new(HashMap::new())),
            max_per_peer: config.max_connections_per_peer.max(1),
        }
    }

    fn take(&self, peer: IpAddr) -> Option<Slot> {
        let mut counts = self.per_peer.lock();
        let count = counts.entry(peer).or_insert(0);
        if *count >= self.max_per_peer {
            return None;
        }
        let (permit, probes_only) = match self.full.clone().try_acquire_owned() {
            Ok(p) => (p, false),
            Err(_) => (self.probes.clone().try_acquire_owned().ok()?, true),
        };
        *count += 1;
        Some(Slot {
            _permit: permit,
            probes_only,
            peer,
            per_peer: self.per_peer.clone(),
        })
    }
}

impl Slot {
    fn probes_only(&self) -> bool {
        self.probes_only
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.per_peer.lock();
        if let Some(count) = counts.get_mut(&self.peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.peer);
            }
        }
    }
}
