//! MCP Streamable HTTP on hyper 1.x (HTTP/1.1 and cleartext HTTP/2), plus the operational
//! endpoints `/healthz`, `/readyz`, `/version` and `/metrics`.

mod handler;
mod post;
mod security;
mod sessions;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use gpu_mcp_service::McpServer;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use tls::TlsConfig;

use crate::dispatch::Dispatcher;
use crate::error::{Error, Result};
use crate::health::Health;
use crate::metrics::Metrics;
use handler::Shared;
use sessions::SessionTable;

/// Default cap on a POST body: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

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
    /// Token required as `Authorization: Bearer <token>` on the MCP endpoint.
    pub bearer_token: Option<String>,
    /// Serve HTTPS with this certificate.
    pub tls: Option<TlsConfig>,
    /// Time a client has to send request headers (also bounds idle HTTP/1 keep-alive waits) and to
    /// finish a TLS handshake.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// Upper bound on reading one body and handling one MCP request.
    pub request_timeout: Duration,
    /// On shutdown, how long in-flight requests may still run.
    pub shutdown_grace: Duration,
    /// Open connections beyond this wait in the listen backlog.
    pub max_connections: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Session handling.
    pub sessions: SessionMode,
    /// Most sessions kept (least recently used evicted first).
    pub max_sessions: usize,
    /// Sessions unused for this long are forgotten.
    pub session_idle_ttl: Duration,
    /// Source revision reported by `/version`.
    pub git_sha: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            mcp_path: "/mcp".into(),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            bearer_token: None,
            tls: None,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            max_connections: 1024,
            max_concurrent_streams: 256,
            sessions: SessionMode::Optional,
            max_sessions: 4096,
            session_idle_ttl: Duration::from_secs(3600),
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
    pub async fn bind(
        config: HttpConfig,
        server: McpServer,
        health: Health,
        metrics: Metrics,
    ) -> Result<Self> {
        let tls = config.tls.as_ref().map(TlsConfig::acceptor).transpose()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr()?;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(config.max_concurrent_streams)
            .keep_alive_interval(config.idle_timeout / 2)
            .keep_alive_timeout(config.header_read_timeout);
        let dispatcher =
            Dispatcher::new(server, Some(metrics.clone()), Some(config.request_timeout));
        let sessions = SessionTable::new(config.max_sessions, config.session_idle_ttl);
        let shared = Arc::new(Shared::new(config, dispatcher, sessions, health, metrics));
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

    /// Serves until `shutdown` is cancelled, then stops accepting, lets in-flight requests finish
    /// within the grace period and closes every connection.
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
        let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
        let builder = Arc::new(builder);
        let closing = CancellationToken::new();
        let mut connections = JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let permit = tokio::select! {
                () = shutdown.cancelled() => break,
                p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            let (tcp, peer) = tokio::select! {
                () = shutdown.cancelled() => break,
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
            let _ = tcp.set_nodelay(true);
            let (shared, builder, closing, tls) = (
                shared.clone(),
                builder.clone(),
                closing.clone(),
                tls.clone(),
            );
            connections.spawn(async move {
                match tls {
                    None => serve_connection(tcp, shared, &builder, closing).await,
                    Some(acceptor) => {
                        let timeout = shared.config.header_read_timeout;
                        match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => {
                                serve_connection(stream, shared, &builder, closing).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
                drop(permit);
            });
        }
        drop(listener);
        closing.cancel();
        let grace = config.shutdown_grace;
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

/// Per-connection activity, for the idle timeout.
#[derive(Debug)]
struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }
}

async fn serve_connection<I>(
    io: I,
    shared: Arc<Shared>,
    builder: &auto::Builder<TokioExecutor>,
    closing: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity {
        epoch: Instant::now(),
        in_flight: AtomicUsize::new(0),
        last_ms: AtomicU64::new(0),
    });
    let idle = shared.config.idle_timeout;
    let svc = {
        let activity = activity.clone();
        service_fn(move |req: hyper::Request<Incoming>| {
            let (shared, activity) = (shared.clone(), activity.clone());
            async move {
                activity.in_flight.fetch_add(1, Ordering::Relaxed);
                activity.touch();
                let response = handler::handle(&shared, req).await;
                activity.in_flight.fetch_sub(1, Ordering::Relaxed);
                activity.touch();
                Ok::<_, Infallible>(response)
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let idle_watch = async {
        loop {
            let last = Duration::from_millis(activity.last_ms.load(Ordering::Relaxed));
            let deadline = activity.epoch + last + idle;
            tokio::time::sleep_until(deadline).await;
            if activity.in_flight.load(Ordering::Relaxed) > 0 {
                // Busy: look again later; the request's end moves the deadline.
                tokio::time::sleep(idle).await;
                continue;
            }
            if Duration::from_millis(activity.last_ms.load(Ordering::Relaxed)) == last {
                break;
            }
        }
    };
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        () = closing.cancelled() => {}
        () = idle_watch => tracing::debug!("closing an idle connection"),
    }
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
