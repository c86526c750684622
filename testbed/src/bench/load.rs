//! A small concurrent HTTP/1.1 keep-alive load generator and latency statistics.
//!
//! Each of `connections` tasks opens one TCP connection and sends requests back to back on it
//! until the shared request budget or the duration bound is spent.
//! Every latency is recorded (no sampling), so percentiles are exact for the run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What to send, how often and how hard.
#[derive(Debug, Clone)]
pub(crate) struct LoadConfig {
    pub(crate) addr: SocketAddr,
    pub(crate) path: String,
    pub(crate) body: Bytes,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) connections: usize,
    /// Measured requests in total (after warm-up).
    pub(crate) requests: usize,
    /// Unmeasured requests per connection before the clock starts.
    pub(crate) warmup_per_connection: usize,
    /// The run stops at this bound even if requests remain.
    pub(crate) max_duration: Duration,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub(crate) struct LoadResult {
    pub(crate) latencies: Vec<Duration>,
    pub(crate) errors: usize,
    pub(crate) elapsed: Duration,
}

impl LoadResult {
    pub(crate) fn summary(&self) -> Summary {
        let mut s = Summary::of(&self.latencies);
        s.errors = self.errors;
        let secs = self.elapsed.as_secs_f64();
        s.throughput = if secs > 0.0 {
            self.latencies.len() as f64 / secs
        } else {
            0.0
        };
        s
    }
}

/// Percentiles of a set of latencies.
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    pub(crate) count: usize,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
    pub(crate) errors: usize,
    /// Requests per second (0 when not applicable).
    pub(crate) throughput: f64,
}

impl Summary {
    /// Nearest-rank percentiles of `samples`.
    pub(crate) fn of(samples: &[Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let count = sorted.len();
        Self {
            count,
            p50: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            max: sorted[count - 1],
            errors: 0,
            throughput: 0.0,
        }
    }
}

/// Nearest-rank percentile of an ascending slice (`p` in 0..=100).
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Formats a duration in the unit that reads best (µs below 1 ms, ms below 10 s).
pub(crate) fn fmt_dur(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 10_000_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.1} s", us / 1e6)
    }
}

/// Sends one request on a fresh connection and returns the status and body.
pub(crate) async fn one_shot(cfg: &LoadConfig) -> Result<(u16, Bytes, Option<String>)> {
    let stream = TcpStream::connect(cfg.addr)
        .await
        .with_context(|| format!("connecting to {}", cfg.addr))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let resp = sender.send_request(build_request(cfg)?).await?;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.into_body().collect().await?.to_bytes();
    drop(sender);
    driver.abort();
    Ok((status, body, content_type))
}

fn build_request(cfg: &LoadConfig) -> Result<Request<Full<Bytes>>> {
    let mut builder =
        Request::post(cfg.path.as_str()).header(hyper::header::HOST, cfg.addr.to_string());
    for (k, v) in &cfg.headers {
        builder = builder.header(k, v);
    }
    Ok(builder.body(Full::new(cfg.body.clone()))?)
}

/// Runs the load and returns every measured latency.
pub(crate) async fn run(cfg: &LoadConfig) -> Result<LoadResult> {
    if cfg.connections == 0 {
        bail!("at least one connection is needed");
    }
    let cfg = Arc::new(cfg.clone());
    let budget = Arc::new(AtomicUsize::new(0));
    // Connect and warm up every connection first, then start the clock together.
    let mut senders = Vec::with_capacity(cfg.connections);
    for _ in 0..cfg.connections {
        let stream = TcpStream::connect(cfg.addr)
            .await
            .with_context(|| format!("connecting to {}", cfg.addr))?;
        stream.set_nodelay(true)?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        for _ in 0..cfg.warmup_per_connection {
            sender.ready().await?;
            let resp = sender.send_request(build_request(&cfg)?).await?;
            let status = resp.status();
            resp.into_body().collect().await?;
            if !status.is_success() {
                bail!("warm-up request answered HTTP {status}");
            }
        }
        senders.push(sender);
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(senders.len());
    for mut sender in senders {
        let cfg = Arc::clone(&cfg);
        let budget = Arc::clone(&budget);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            while budget.fetch_add(1, Ordering::Relaxed) < cfg.requests
                && start.elapsed() < cfg.max_duration
            {
                let Ok(req) = build_request(&cfg) else {
                    errors += 1;
                    break;
                };
                let t0 = Instant::now();
                if sender.ready().await.is_err() {
                    errors += 1;
                    break;
                }
                match sender.send_request(req).await {
                    Ok(resp) => {
                        let ok = resp.status().is_success();
                        let body = resp.into_body().collect().await;
                        if ok && body.is_ok() {
                            latencies.push(t0.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::with_capacity(cfg.requests);
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        latencies.extend(l);
        errors += e;
    }
    Ok(LoadResult {
        latencies,
        errors,
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 50.0), ms(50));
        assert_eq!(percentile(&sorted, 99.0), ms(99));
        assert_eq!(percentile(&sorted, 100.0), ms(100));
        assert_eq!(percentile(&[ms(7)], 99.0), ms(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn summary_sorts() {
        let s = Summary::of(&[ms(3), ms(1), ms(2)]);
        assert_eq!(s.count, 3);
        assert_eq!(s.p50, ms(2));
        assert_eq!(s.max, ms(3));
    }

    #[test]
    fn durations_format_in_readable_units() {
        assert_eq!(fmt_dur(Duration::from_micros(250)), "250 µs");
        assert_eq!(fmt_dur(ms(12)), "12.00 ms");
        assert_eq!(fmt_dur(Duration::from_secs(12)), "12.0 s");
    }
}
