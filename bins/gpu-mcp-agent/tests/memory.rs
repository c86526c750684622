//! Memory under hostile load, measured on the real agent process (Linux `/proc`): many HTTP/2
//! streams and HTTP/1 connections that send part of a body and stall. The resident set must stay
//! under the chart's memory limit, the probes must keep answering, and a valid call must succeed
//! once the load is gone. The numbers are printed for docs/security.md.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The agent's memory limit in the chart.
const CHART_LIMIT_BYTES: u64 = 128 << 20;

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// A connection from 127.0.0.2, another peer than the load (as the kubelet is in a cluster).
async fn other_peer(addr: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut tcp = other_peer(addr).await;
    let req = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn valid_call(addr: std::net::SocketAddr) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get_gpu_inventory", "arguments": {}}})
    .to_string();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap()
}

/// A body that sends `first` bytes and then never ends.
fn stalled_body(
    first: usize,
) -> StreamBody<futures::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>> {
    let chunk = Bytes::from(vec![b' '; first]);
    let stream = futures::stream::once(async move { Ok(Frame::data(chunk)) })
        .chain(futures::stream::pending())
        .boxed();
    StreamBody::new(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_http2_streams_and_http1_bodies_stay_under_the_chart_limit() {
    // Without the per-client rate limit: memory must stay bounded whatever a client's rate, and
    // a client with many addresses escapes a per-address limit anyway.
    let agent = common::HttpAgent::start(&["--mock-gpus", "8", "--rate-limit-rps", "0"]).await;
    let pid = agent.child.id().unwrap();
    let addr = agent.addr;
    valid_call(addr).await;
    let baseline = rss_bytes(pid);

    // HTTP/2: 100 connections, each opening 256 streams that declare a 60 kB body, send 16 kB and
    // stall (the server admits 32 concurrent streams per connection).
    let mut held = Vec::new();
    for _ in 0..100 {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap();
        held.push(tokio::spawn(async move {
            let _ = conn.await;
        }));
        for _ in 0..256 {
            let req = http::Request::post("http://localhost/mcp")
                .header("content-type", "application/json")
                .header("content-length", "60000")
                .body(stalled_body(16 << 10))
                .unwrap();
            let fut = sender.send_request(req);
            held.push(tokio::spawn(async move {
                if let Ok(resp) = fut.await {
                    let _ = resp.into_body().collect().await;
                }
            }));
        }
    }
    // HTTP/1.1: 100 more connections with a stalled 60 kB body each.
    let mut h1 = Vec::new();
    for _ in 0..100 {
        // Past the per-peer connection limit the agent closes these at once; the writes may fail.
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let head = "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                    content-length: 60000\r\n\r\n";
        let _ = tcp.write_all(head.as_bytes()).await;
        let _ = tcp.write_all(&[b' '; 16 << 10]).await;
        h1.push(tcp);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded = rss_bytes(pid);
    let health = get(addr, "/healthz").await;
    let ready = get(addr, "/readyz").await;
    eprintln!(
        "agent RSS: baseline {:.1} MiB, under 25,600 stalled HTTP/2 streams and 100 stalled \
         HTTP/1 bodies {:.1} MiB",
        baseline as f64 / 1048576.0,
        loaded as f64 / 1048576.0
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(
        loaded < CHART_LIMIT_BYTES,
        "RSS {loaded} bytes is over the chart's limit"
    );
    for task in held {
        task.abort();
    }
    drop(h1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let v = valid_call(addr).await;
    assert!(v["result"]["structuredContent"].is_object(), "{v}");
    eprintln!(
        "agent RSS after the load ended: {:.1} MiB",
        rss_bytes(pid) as f64 / 1048576.0
    );
}
