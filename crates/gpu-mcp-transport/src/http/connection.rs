//! One accepted connection: hyper serves it, each request is counted in flight from its headers
//! until its response is written, and one watch keeps the connection's deadlines (HTTP/1's
//! header deadline between requests, HTTP/2's idle time) from that activity, so requests only
//! move a timestamp.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Conn;
use super::handler::{self, Shared};

/// Per-connection activity, for the header and idle deadlines, and the server's state: a
/// request clones this connection's `Arc`, whose count no other connection's requests touch,
/// rather than the server's, which every worker thread would contend for.
#[derive(Debug)]
struct Activity {
    shared: Arc<Shared>,
    epoch: Instant,
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
    /// The connection speaks HTTP/2 (known from its first request).
    http2: AtomicBool,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }
}

/// One request in flight on a connection, from its headers until its response is written or
/// dropped.
#[derive(Debug)]
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// Serves one accepted connection until it ends, the server closes it, or its deadlines pass.
pub(super) async fn serve<I>(
    io: I,
    conn_info: Conn,
    shared: Arc<Shared>,
    builder: &auto::Builder<TokioExecutor>,
    closing: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let idle = shared.config.idle_timeout;
    let headers_within = shared.config.header_read_timeout;
    let close_limit = shared.config.effective_shutdown_grace().max(idle);
    let activity = Arc::new(Activity {
        shared,
        epoch: Instant::now(),
        in_flight: AtomicUsize::new(0),
        last_ms: AtomicU64::new(0),
        http2: AtomicBool::new(false),
    });
    let svc = {
        let activity = activity.clone();
        service_fn(move |req: hyper::Request<Incoming>| {
            let activity = activity.clone();
            if req.version() == http::Version::HTTP_2 {
                activity.http2.store(true, Ordering::Relaxed);
            }
            async move {
                // Busy until the whole body is written (an event stream outlives the handler).
                let busy = Busy::start(activity.clone());
                let shared = &activity.shared;
                let response = handler::handle(shared, conn_info, req).await;
                Ok::<_, Infallible>(shared.budgeted(response, busy))
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    // With no request in flight, an HTTP/1 connection is waiting for request headers: the next
    // request's, or the rest of those it started to send. It gets `header_read_timeout` from
    // the end of its last request (from its start before the first), as hyper's own header
    // deadline would give it; an HTTP/2 connection, whose streams carry their own headers, gets
    // `idle_timeout`. Requests only move a timestamp: the watch sleeps until the deadline that
    // timestamp sets and looks again.
    let quiet_watch = async {
        loop {
            let bound = if activity.http2.load(Ordering::Relaxed) {
                idle
            } else {
                headers_within
            };
            let last = Duration::from_millis(activity.last_ms.load(Ordering::Relaxed));
            tokio::time::sleep_until(activity.epoch + last + bound).await;
            if activity.in_flight.load(Ordering::Relaxed) > 0 {
                // Busy: look again later; the request's end moves the deadline.
                tokio::time::sleep(bound).await;
                continue;
            }
            if Duration::from_millis(activity.last_ms.load(Ordering::Relaxed)) == last {
                break activity.http2.load(Ordering::Relaxed);
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
        http2 = quiet_watch => {
            if !http2 {
                // Nothing is in flight, so nothing is lost: a client still sending headers
                // is not waited for (a graceful close would wait for its request).
                tracing::debug!("closing an HTTP/1 connection that sent no request headers in time");
                return;
            }
            tracing::debug!("closing an idle connection");
        }
    }
    conn.as_mut().graceful_shutdown();
    // In-flight requests end within their own deadlines; a client that does not read its
    // responses gets the idle timeout once more, then the connection is dropped.
    match tokio::time::timeout(close_limit, conn).await {
        Ok(Err(e)) => tracing::debug!(error = %e, "connection ended with an error"),
        Ok(Ok(())) => {}
        Err(_) => tracing::debug!("dropping a connection that did not finish closing"),
    }
}
