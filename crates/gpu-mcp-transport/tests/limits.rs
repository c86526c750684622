//! The HTTP transport's limits, driven over loopback with raw sockets: silent and slow clients,
//! connection slots per peer and for probes, the byte budget, the body deadline, sessions per
//! client, the per-client rate limit and the smaller header rules. Every case ends by checking
//! that a valid request from another client still succeeds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::{Http, TestCatalog, call, initialize};
use gpu_mcp_transport::{
    DEFAULT_RATE_LIMIT_BURST, Health, HttpConfig, HttpServer, Metrics, RateLimit,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

const OTHER_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

struct Running {
    http: Http,
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(mut config: HttpConfig) -> Running {
    config.listen = "127.0.0.1:0".parse().unwrap();
    let catalog = Arc::new(TestCatalog::default());
    let server = HttpServer::bind(
        config,
        common::server(catalog),
        Health::new(true),
        Metrics::new(),
    )
    .await
    .unwrap();
    let http = Http::new(server.local_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(server.serve(shutdown.clone()));
    Running { http, shutdown }
}

/// A TCP connection to `addr` from the loopback address `from`.
async fn connect_from(from: IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Whether the server closes `tcp` (rather than leaving it open) within a minute.
async fn closed_by_server(tcp: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), tcp.read_to_end(&mut rest))
        .await
        .is_ok()
}

/// One raw HTTP/1.1 exchange on `tcp` (the server closes the connection after the reply).
async fn exchange(tcp: &mut TcpStream, request: &str) -> String {
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), tcp.read_to_end(&mut reply)).await;
    String::from_utf8_lossy(&reply).into_owned()
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
}

fn post(body: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A valid call from another peer address succeeds.
async fn other_client_is_served(addr: SocketAddr) {
    let body = call(7, "echo", json!({"ok": true})).to_string();
    let mut tcp = connect_from(OTHER_PEER, addr).await;
    let reply = exchange(&mut tcp, &post(&body)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(r#""ok":true"#), "{reply}");
}

#[tokio::test]
async fn silent_sockets_are_closed_after_the_header_timeout() {
    let s = start(HttpConfig {
        header_read_timeout: Duration::from_millis(200),
        max_connections: 8,
        probe_connections: 0,
        ..HttpConfig::default()
    })
    .await;
    // Twice as many silent sockets as there are slots: each is closed, none is kept.
    let mut silent = Vec::new();
    for _ in 0..16 {
        silent.push(TcpStream::connect(s.http.addr).await.unwrap());
    }
    for tcp in &mut silent {
        assert!(closed_by_server(tcp).await, "a silent socket was kept open");
    }
    other_client_is_served(s.http.addr).await;
}

#[tokio::test]
async fn a_peer_over_its_connection_limit_is_refused_and_others_are_served() {
    let s = start(HttpConfig {
        max_connections_per_peer: 3,
        ..HttpConfig::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(s.http.addr).await.unwrap();
        tcp.write_all(b"G").await.unwrap(); // past the first byte, headers unfinished
        held.push(tcp);
    }
    let mut refused = TcpStream::connect(s.http.addr).await.unwrap();
    let reply = exchange(&mut refused, &get("/healthz")).await;
    assert!(
        reply.is_empty(),
        "a 4th connection from one peer was served: {reply}"
    );
    other_client_is_served(s.http.addr).await;
    // Slots come back when connections end.
    held.clear();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = TcpStream::connect(s.http.addr).await.unwrap();
    assert!(
        exchange(&mut again, &get("/healthz"))
            .await
            .starts_with("HTTP/1.1 200")
    );
}

#[tokio::test]
async fn probes_are_answered_while_every_mcp_slot_is_taken() {
    let s = start(HttpConfig {
        max_connections: 4,
        probe_connections: 2,
        ..HttpConfig::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut tcp = TcpStream::connect(s.http.addr).await.unwrap();
        tcp.write_all(b"G").await.unwrap();
        held.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut probe = connect_from(OTHER_PEER, s.http.addr).await;
    let reply = exchange(&mut probe, &get("/healthz")).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let mut readiness = connect_from(OTHER_PEER, s.http.addr).await;
    let reply = exchange(&mut readiness, &get("/readyz")).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let mut mcp = connect_from(OTHER_PEER, s.http.addr).await;
    let body = call(1, "echo", json!({})).to_string();
    let reply = exchange(&mut mcp, &post(&body)).await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("retry-after: 1"),
        "{reply}"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    other_client_is_served(s.http.addr).await;
}

#[tokio::test]
async fn bodies_beyond_the_byte_budget_get_503_and_the_budget_comes_back() {
    let s = start(HttpConfig {
        max_buffered_bytes: 100_000,
        ..HttpConfig::default()
    })
    .await;
    // Two slow bodies of 40 kB each hold 80 kB of the budget while they trickle in.
    let head = "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                content-length: 40000\r\n\r\n{";
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut tcp = TcpStream::connect(s.http.addr).await.unwrap();
        tcp.write_all(head.as_bytes()).await.unwrap();
        slow.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"pad":"{}"}}}}}}"#,
        "x".repeat(30_000)
    );
    let mut third = connect_from(OTHER_PEER, s.http.addr).await;
    let reply = exchange(&mut third, &post(&big)).await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    // A chunked body (no declared length) is counted while it is read.
    let chunked = format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         connection: close\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let mut fourth = connect_from(OTHER_PEER, s.http.addr).await;
    let reply = exchange(&mut fourth, &chunked).await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    drop(slow);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fifth = connect_from(OTHER_PEER, s.http.addr).await;
    let reply = exchange(&mut fifth, &post(&big)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408() {
    let s = start(HttpConfig {
        body_read_timeout: Duration::from_millis(200),
        ..HttpConfig::default()
    })
    .await;
    let mut tcp = TcpStream::connect(s.http.addr).await.unwrap();
    let head = "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                content-length: 100\r\n\r\n{\"jsonrpc\"";
    let reply = exchange(&mut tcp, head).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    other_client_is_served(s.http.addr).await;
}

#[tokio::test]
async fn the_default_body_limit_fits_mcp() {
    let s = start(HttpConfig::default()).await;
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(70_000));
    let r = s
        .http
        .send(s.http.post().header("accept", "application/json"), big)
        .await;
    assert_eq!(r.status, 413);
    other_client_is_served(s.http.addr).await;
}

async fn initialize_from(addr: SocketAddr, from: IpAddr) -> String {
    let body = initialize(1, "2025-06-18").to_string();
    let mut tcp = connect_from(from, addr).await;
    let reply = exchange(&mut tcp, &post(&body)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    reply
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("mcp-session-id")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no session id in {reply}"))
}

#[tokio::test]
async fn one_client_cannot_evict_another_clients_session() {
    let s = start(HttpConfig {
        max_sessions: 8,
        max_sessions_per_client: 4,
        ..HttpConfig::default()
    })
    .await;
    let victim = initialize_from(s.http.addr, OTHER_PEER).await;
    let attacker = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for _ in 0..50 {
        initialize_from(s.http.addr, attacker).await;
    }
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         mcp-session-id: {victim}\r\nmcp-protocol-version: 2025-06-18\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut tcp = connect_from(OTHER_PEER, s.http.addr).await;
    let reply = exchange(&mut tcp, &request).await;
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "victim lost its session: {reply}"
    );
}

#[tokio::test]
async fn header_rules_session_id_host_and_reply_labels() {
    let s = start(HttpConfig::default()).await;
    let h = &s.http;
    // A non-ASCII Mcp-Session-Id is refused, not ignored.
    let body = call(1, "echo", json!({})).to_string();
    let mut req = post(&body).into_bytes();
    let at = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    req.splice(at..at, b"\r\nmcp-session-id: caf\xc3\xa9".iter().copied());
    let mut tcp = TcpStream::connect(h.addr).await.unwrap();
    tcp.write_all(&req).await.unwrap();
    let mut reply = Vec::new();
    tcp.read_to_end(&mut reply).await.unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    // On a loopback listener, a foreign Host (DNS rebinding) is refused.
    let foreign = post(&body).replace("host: localhost", "host: evil.example");
    let mut tcp = TcpStream::connect(h.addr).await.unwrap();
    let reply = exchange(&mut tcp, &foreign).await;
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    // Replies are labelled against caching and content sniffing.
    let r = h.rpc(&call(2, "echo", json!({}))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    other_client_is_served(h.addr).await;
}

#[tokio::test]
async fn a_client_over_its_rate_limit_gets_429_and_others_are_served() {
    // Two requests at once, then one every thousand seconds: the third is refused.
    let s = start(HttpConfig {
        rate_limit: Some(RateLimit {
            burst: 2,
            per_second: 0.001,
        }),
        ..HttpConfig::default()
    })
    .await;
    let h = &s.http;
    for id in 0..2 {
        let r = h.rpc(&call(id, "echo", json!({}))).await;
        assert_eq!(r.status, 200, "within the burst");
    }
    let r = h.rpc(&call(3, "echo", json!({}))).await;
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=1000).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.json()["error"]["code"], -32600);
    // A browser client on an allowed origin is refused with the CORS headers that let it read
    // the refusal and its Retry-After.
    let r = h
        .send(
            h.post().header("origin", "http://localhost:6274"),
            serde_json::to_vec(&call(4, "echo", json!({}))).unwrap(),
        )
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:6274")
    );
    assert!(r.header("retry-after").is_some());
    // Only POSTs take from the bucket: a GET is still answered for what it is.
    let get = h.get("/mcp").await;
    assert_eq!(get.status, 405);
    // The probes and the metrics are not limited, and count the refusal.
    assert_eq!(h.get("/healthz").await.status, 200);
    assert_eq!(h.get("/readyz").await.status, 200);
    let metrics = String::from_utf8(h.get("/metrics").await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("mcp_http_rate_limited_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"mcp_http_responses_total{status="429"} 2"#),
        "{metrics}"
    );
    // Another client address has its own bucket.
    other_client_is_served(h.addr).await;
}

#[tokio::test]
async fn the_rate_limit_comes_before_the_token_and_can_be_turned_off() {
    let s = start(HttpConfig {
        bearer_token: Some("s3cret".into()),
        rate_limit: Some(RateLimit {
            burst: 3,
            per_second: 0.001,
        }),
        ..HttpConfig::default()
    })
    .await;
    let h = &s.http;
    // Guessing tokens spends the bucket like any request.
    for id in 0..3 {
        let r = h
            .send(
                h.post()
                    .header("accept", "application/json")
                    .header("authorization", format!("Bearer guess{id}")),
                call(id, "echo", json!({})).to_string(),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let r = h
        .send(
            h.post()
                .header("accept", "application/json")
                .header("authorization", "Bearer s3cret"),
            call(9, "echo", json!({})).to_string(),
        )
        .await;
    assert_eq!(r.status, 429, "even the right token waits for the bucket");
    drop(s);

    // Off: far more than any burst passes.
    let s = start(HttpConfig {
        rate_limit: None,
        ..HttpConfig::default()
    })
    .await;
    for id in 0..(DEFAULT_RATE_LIMIT_BURST as i64 + 50) {
        let r = s.http.rpc(&call(id, "echo", json!({}))).await;
        assert_eq!(r.status, 200, "request {id}");
    }
}

#[tokio::test]
async fn the_default_rate_limit_admits_a_busy_assistant() {
    // An assistant that fires a hundred calls at once (a big fan-out of its own) is not limited.
    let s = start(HttpConfig::default()).await;
    let calls = (0..100).map(|id| {
        let h = s.http.clone();
        tokio::spawn(async move { h.rpc(&call(id, "echo", json!({}))).await.status })
    });
    for status in futures::future::join_all(calls).await {
        assert_eq!(status.unwrap(), 200);
    }
}
