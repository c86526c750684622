//! Streamable HTTP transport, driven over loopback with a plain HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{Http, TestCatalog, call, initialize};
use gpu_mcp_transport::{Health, HttpConfig, HttpServer, Metrics, SessionMode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Running {
    http: Http,
    catalog: Arc<TestCatalog>,
    health: Health,
    shutdown: CancellationToken,
    task: JoinHandle<gpu_mcp_transport::Result<()>>,
}

async fn start(mut config: HttpConfig) -> Running {
    config.listen = "127.0.0.1:0".parse().unwrap();
    let catalog = Arc::new(TestCatalog::default());
    let health = Health::new(true);
    let server = HttpServer::bind(
        config,
        common::server(catalog.clone()),
        health.clone(),
        Metrics::new(),
    )
    .await
    .unwrap();
    let http = Http::new(server.local_addr());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.serve(shutdown.clone()));
    Running {
        http,
        catalog,
        health,
        shutdown,
        task,
    }
}

/// A valid tool call that must succeed.
async fn assert_serving(http: &Http) {
    let r = http.rpc(&call(99, "echo", json!({"x": 1}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let v = r.json();
    assert_eq!(v["id"], 99);
    assert_eq!(v["result"]["structuredContent"], json!({"x": 1}), "{v}");
}

/// A server whose header deadline is `ms` milliseconds.
async fn start_with_header_deadline(ms: u64) -> Running {
    start(HttpConfig {
        header_read_timeout: std::time::Duration::from_millis(ms),
        ..HttpConfig::default()
    })
    .await
}

/// Whether the server closes `tcp` within a minute (read to its end); a hang fails the caller.
async fn closed_by_the_server(tcp: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut rest = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tcp.read_to_end(&mut rest),
    )
    .await
    .is_ok()
}

async fn raw(http: &Http, body: impl Into<Bytes>) -> common::Reply {
    http.send(http.post(), body).await
}

#[tokio::test]
async fn valid_call_is_answered_with_json() {
    let s = start(HttpConfig::default()).await;
    let r = s.http.rpc(&call(1, "echo", json!({"a": "b"}))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["result"]["structuredContent"]["a"], "b");
    // A bare tools/call carries no session id back.
    assert!(r.header("mcp-session-id").is_none());
}

#[tokio::test]
async fn bad_input_gets_a_clean_answer_and_the_server_keeps_serving() {
    let s = start(HttpConfig::default()).await;
    let h = &s.http;

    let r = raw(h, "{not json").await;
    assert_eq!((r.status, r.error_code()), (400, -32700));
    assert!(r.json()["id"].is_null());
    assert_serving(h).await;

    let r = raw(h, r#"{"hello":"world"}"#).await;
    assert_eq!((r.status, r.error_code()), (400, -32600));
    assert_serving(h).await;

    let r = raw(h, r#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#).await;
    assert_eq!((r.status, r.error_code()), (400, -32600));
    assert_serving(h).await;

    let r = raw(
        h,
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xc3\x28\"}".to_vec(),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (400, -32700));
    assert_serving(h).await;

    let bomb = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}{}}}"#,
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    let r = raw(h, bomb).await;
    assert_eq!((r.status, r.error_code()), (400, -32700));
    assert_serving(h).await;

    let r = h
        .rpc(&json!({"jsonrpc":"2.0","id":5,"method":"no/such/method"}))
        .await;
    assert_eq!((r.status, r.error_code()), (200, -32601));
    assert_eq!(r.json()["id"], 5);
    assert_serving(h).await;

    let r = h
        .rpc(&json!({"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"arguments":{}}}))
        .await;
    assert_eq!((r.status, r.error_code()), (200, -32602));
    assert_serving(h).await;

    let r = h.rpc(&call(7, "no_such_tool", json!({}))).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert!(
        v["error"]["code"] == -32602 || v["result"]["isError"] == true,
        "{v}"
    );
    assert_serving(h).await;

    let r = h.rpc(&call(8, "fail", json!({}))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["result"]["isError"], true);
    assert_serving(h).await;

    let r = h
        .rpc(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
        .await;
    assert_eq!(r.status, 202);
    assert!(r.body.is_empty());
    let r = h.rpc(&json!({"jsonrpc":"2.0","id":"x","result":{}})).await;
    assert_eq!(r.status, 202);
    assert_serving(h).await;

    let r = h
        .send(
            h.post().header("mcp-protocol-version", "1999-01-01"),
            serde_json::to_vec(&call(9, "echo", json!({}))).unwrap(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["id"], 9);
    assert!(
        r.json()["error"]["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-11-25"))
    );
    let r = h
        .send(h.post().header("mcp-protocol-version", "garbage"), "{}")
        .await;
    assert_eq!(r.status, 400);
    assert_serving(h).await;

    let r = h
        .send(
            http::Request::post(format!("http://{}/mcp", h.addr))
                .header("content-type", "text/plain"),
            serde_json::to_vec(&call(1, "echo", json!({}))).unwrap(),
        )
        .await;
    assert_eq!(r.status, 415);
    let r = h
        .send(
            http::Request::post(format!("http://{}/mcp", h.addr))
                .header("accept", "application/json"),
            serde_json::to_vec(&call(1, "echo", json!({}))).unwrap(),
        )
        .await;
    assert_eq!(r.status, 415, "a missing Content-Type is refused too");
    assert_serving(h).await;

    let r = h
        .send(
            h.post().header("accept", "text/html"),
            serde_json::to_vec(&call(1, "echo", json!({}))).unwrap(),
        )
        .await;
    assert_eq!(r.status, 406);
    assert_serving(h).await;

    let r = h
        .send(
            h.post().header("origin", "http://evil.example"),
            serde_json::to_vec(&call(1, "echo", json!({}))).unwrap(),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = h
        .send(
            h.post().header("origin", "http://localhost:6274"),
            serde_json::to_vec(&call(1, "echo", json!({}))).unwrap(),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_serving(h).await;

    let r = h.get("/mcp").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST, DELETE"));
    let r = h.get("/nowhere").await;
    assert_eq!(r.status, 404);
    assert_serving(h).await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_before_and_while_reading() {
    let s = start(HttpConfig {
        max_body_bytes: 64 * 1024,
        ..HttpConfig::default()
    })
    .await;
    let h = &s.http;
    // Declared length over the limit.
    let big = vec![b' '; 64 * 1024 + 1];
    let r = raw(h, big).await;
    assert_eq!(r.status, 413);
    assert_serving(h).await;

    // Chunked (no Content-Length): the limit trips while reading.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let head = "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, " ".repeat(16 * 1024));
    for _ in 0..5 {
        if tcp.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert_serving(h).await;
}

#[tokio::test]
async fn event_stream_reply_when_the_client_prefers_it() {
    let s = start(HttpConfig::default()).await;
    let h = &s.http;
    let body = serde_json::to_vec(&call(3, "echo", json!({"k": "v"}))).unwrap();
    let r = h
        .send(h.post().header("accept", "text/event-stream"), body.clone())
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let text = std::str::from_utf8(&r.body).unwrap();
    let data = text
        .strip_prefix("event: message\ndata: ")
        .and_then(|t| t.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("not one SSE message event: {text:?}"));
    let v: Value = serde_json::from_str(data).unwrap();
    assert_eq!(v["id"], 3);
    assert_eq!(v["result"]["structuredContent"]["k"], "v");

    let r = h.send(h.post().header("accept", "*/*"), body).await;
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn session_lifecycle() {
    let s = start(HttpConfig::default()).await;
    let h = &s.http;
    let r = h.rpc(&initialize(1, "2025-06-18")).await;
    assert_eq!(r.status, 200);
    let id = r
        .header("mcp-session-id")
        .expect("initialize issues a session id")
        .to_owned();
    assert!(id.bytes().all(|b| b.is_ascii_graphic()));
    assert_eq!(r.json()["result"]["protocolVersion"], "2025-06-18");

    let with_id = |b: http::request::Builder| {
        b.header("mcp-session-id", id.as_str())
            .header("mcp-protocol-version", "2025-06-18")
    };
    let r = h
        .send(
            with_id(h.post()),
            serde_json::to_vec(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 202);
    let r = h
        .send(
            with_id(h.post()),
            serde_json::to_vec(&call(2, "echo", json!({"s": 1}))).unwrap(),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["result"]["structuredContent"]["s"], 1);

    let r = h
        .send(
            h.post().header("mcp-session-id", "0123456789abcdef"),
            serde_json::to_vec(&call(3, "echo", json!({}))).unwrap(),
        )
        .await;
    assert_eq!(r.status, 404);

    let del = http::Request::delete(format!("http://{}/mcp", h.addr));
    let r = h.send(with_id(del), Bytes::new()).await;
    assert_eq!(r.status, 200);
    let r = h
        .send(
            with_id(h.post()),
            serde_json::to_vec(&call(4, "echo", json!({}))).unwrap(),
        )
        .await;
    assert_eq!(r.status, 404, "a deleted session is gone");
    let del = http::Request::delete(format!("http://{}/mcp", h.addr));
    let r = h.send(with_id(del), Bytes::new()).await;
    assert_eq!(r.status, 404);
    assert_serving(h).await;
}

#[tokio::test]
async fn required_sessions_refuse_requests_without_an_id() {
    let s = start(HttpConfig {
        sessions: SessionMode::Required,
        ..HttpConfig::default()
    })
    .await;
    let h = &s.http;
    let r = h.rpc(&call(1, "echo", json!({}))).await;
    assert_eq!(r.status, 400);
    let r = h.rpc(&initialize(1, "2025-11-25")).await;
    let id = r.header("mcp-session-id").unwrap().to_owned();
    let r = h
        .send(
            h.post().header("mcp-session-id", id),
            serde_json::to_vec(&call(2, "echo", json!({}))).unwrap(),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn disabled_sessions_issue_no_id() {
    let s = start(HttpConfig {
        sessions: SessionMode::Disabled,
        ..HttpConfig::default()
    })
    .await;
    let h = &s.http;
    let r = h.rpc(&initialize(1, "2025-11-25")).await;
    assert_eq!(r.status, 200);
    assert!(r.header("mcp-session-id").is_none());
    let r = h
        .send(
            http::Request::delete(format!("http://{}/mcp", h.addr)),
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 405);
    assert_serving(h).await;
}

#[tokio::test]
async fn bearer_token_and_configured_origins() {
    let s = start(HttpConfig {
        bearer_token: Some("t0ken".into()),
        allowed_origins: vec!["https://console.example.com".into()],
        ..HttpConfig::default()
    })
    .await;
    let h = &s.http;
    let body = serde_json::to_vec(&call(1, "echo", json!({}))).unwrap();
    let r = h.send(h.post(), body.clone()).await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    let r = h
        .send(
            h.post().header("authorization", "Bearer wrong"),
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = h
        .send(
            h.post().header("authorization", "Bearer t0ken"),
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = h
        .send(
            h.post()
                .header("authorization", "Bearer t0ken")
                .header("origin", "http://localhost:1"),
            body.clone(),
        )
        .await;
    assert_eq!(
        r.status, 403,
        "the configured list replaces the local default"
    );
    let r = h
        .send(
            h.post()
                .header("authorization", "Bearer t0ken")
                .header("origin", "https://console.example.com"),
            body,
        )
        .await;
    assert_eq!(r.status, 200);
    // Probes stay open without the token.
    assert_eq!(h.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn health_readiness_version_and_metrics() {
    let s = start(HttpConfig {
        git_sha: Some("abc123".into()),
        ..HttpConfig::default()
    })
    .await;
    let h = &s.http;
    assert_eq!(h.get("/healthz").await.status, 200);
    s.health.set_ready(false);
    assert_eq!(h.get("/readyz").await.status, 503);
    s.health.set_ready(true);
    assert_eq!(h.get("/readyz").await.status, 200);
    let v = h.get("/version").await.json();
    assert_eq!(
        v,
        json!({"name": "transport-test", "version": "1.2.3", "gitSha": "abc123"})
    );

    h.rpc(&call(1, "echo", json!({}))).await;
    h.rpc(&call(2, "fail", json!({}))).await;
    h.rpc(&call(3, "made_up_tool", json!({}))).await;
    raw(h, "nope").await;
    let r = h.get("/metrics").await;
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = std::str::from_utf8(&r.body).unwrap();
    for needle in [
        r#"mcp_requests_total{method="tools/call",tool="echo",outcome="ok"} 1"#,
        r#"mcp_requests_total{method="tools/call",tool="fail",outcome="tool_error"} 1"#,
        r#"tool="other""#,
        r#"mcp_request_duration_seconds_count{method="tools/call"} 3"#,
        "mcp_requests_in_flight 0",
        r#"mcp_http_responses_total{status="200"}"#,
        r#"mcp_http_responses_total{status="400"} 1"#,
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test]
async fn requests_run_concurrently() {
    let s = start(HttpConfig::default()).await;
    let h = s.http.clone();
    let waiting = tokio::spawn(async move { h.rpc(&call(1, "wait", json!({}))).await });
    s.catalog.started.notified().await;
    // While `wait` blocks, other calls are answered.
    assert_serving(&s.http).await;
    s.catalog.gate.notify_one();
    let r = waiting.await.unwrap();
    assert_eq!(r.json()["result"]["structuredContent"]["waited"], true);
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_call_finish() {
    let s = start(HttpConfig::default()).await;
    let h = s.http.clone();
    let waiting = tokio::spawn(async move { h.rpc(&call(1, "wait", json!({}))).await });
    s.catalog.started.notified().await;
    s.shutdown.cancel();
    // New connections are no longer accepted once the listener is closed.
    tokio::task::yield_now().await;
    s.catalog.gate.notify_one();
    let r = waiting.await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["result"]["structuredContent"]["waited"], true);
    s.task.await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(s.http.addr).await.is_err());
}

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    let s = start(HttpConfig::default()).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<Bytes>>();
    let req = s
        .http
        .post()
        .body(http_body_util::Full::new(Bytes::from(
            serde_json::to_vec(&call(1, "echo", json!({"h": 2}))).unwrap(),
        )))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn slow_headers_are_cut_off_and_the_server_keeps_serving() {
    use tokio::io::AsyncWriteExt;
    let s = start_with_header_deadline(200).await;
    let mut tcp = tokio::net::TcpStream::connect(s.http.addr).await.unwrap();
    tcp.write_all(b"POST /mcp HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    // The headers never finish: the server closes the connection (a hang fails the test).
    assert!(
        closed_by_the_server(&mut tcp).await,
        "the server kept a connection with unfinished headers open"
    );
    assert_serving(&s.http).await;
}

/// `fixtures/`: a test CA and a `localhost` / `127.0.0.1` leaf certificate it signed (P-256,
/// valid for 100 years), made with openssl.
#[tokio::test]
async fn tls_serves_https_from_pem_bytes() {
    use gpu_mcp_transport::TlsConfig;
    use hyper_util::rt::TokioIo;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};

    let s = start(HttpConfig {
        tls: Some(TlsConfig::Pem {
            cert_chain: include_bytes!("fixtures/localhost.pem").to_vec(),
            private_key: include_bytes!("fixtures/localhost.key").to_vec(),
        }),
        ..HttpConfig::default()
    })
    .await;
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(include_bytes!("fixtures/test-ca.pem")).unwrap())
        .unwrap();
    let mut client = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(s.http.addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let body = serde_json::to_vec(&call(1, "echo", json!({"tls": true}))).unwrap();
    let req = http::Request::post("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(body)))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    use http_body_util::BodyExt;
    let v: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["result"]["structuredContent"]["tls"], true);

    // Plain HTTP to the TLS port gets no MCP answer.
    let plain = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<Bytes>>();
    let req = s
        .http
        .post()
        .body(http_body_util::Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    assert!(plain.request(req).await.is_err());
}

#[tokio::test]
async fn browser_clients_on_allowed_origins_get_cors_headers() {
    let s = start(HttpConfig::default()).await;
    let h = &s.http;
    let preflight = http::Request::builder()
        .method("OPTIONS")
        .uri(format!("http://{}/mcp", h.addr))
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST");
    let r = h.send(preflight, Bytes::new()).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:6274")
    );
    assert!(
        r.header("access-control-allow-headers")
            .unwrap()
            .contains("mcp-session-id")
    );

    let r = h
        .send(
            h.post().header("origin", "http://localhost:6274"),
            serde_json::to_vec(&initialize(1, "2025-11-25")).unwrap(),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:6274")
    );
    assert!(
        r.header("access-control-expose-headers")
            .unwrap()
            .contains("mcp-session-id")
    );

    // A foreign origin gets neither a preflight nor an answer.
    let preflight = http::Request::builder()
        .method("OPTIONS")
        .uri(format!("http://{}/mcp", h.addr))
        .header("origin", "http://evil.example");
    let r = h.send(preflight, Bytes::new()).await;
    assert_eq!(r.status, 403);
    assert!(r.header("access-control-allow-origin").is_none());
    // Non-browser clients (no Origin) see no CORS headers.
    let r = h.rpc(&call(2, "echo", json!({}))).await;
    assert!(r.header("access-control-allow-origin").is_none());
}

/// Reads one HTTP/1 response with a `content-length` from `tcp`, leaving the connection open.
async fn read_one_response(tcp: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the response: {got:?}");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap();
            if got.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

fn echo_request() -> Vec<u8> {
    let body = serde_json::to_vec(&call(1, "echo", json!({"k": 1}))).unwrap();
    let mut req = format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    req
}

#[tokio::test]
async fn a_keep_alive_connection_gets_the_header_deadline_again_for_its_next_request() {
    use tokio::io::AsyncWriteExt;
    let s = start_with_header_deadline(300).await;
    // Quiet, then slow: a connection that answered a request and then sends nothing, and one
    // that starts its next request's headers and never finishes them, are both closed.
    for next in [&b""[..], b"POST /mcp HTTP/1.1\r\nhost: loc"] {
        let mut tcp = tokio::net::TcpStream::connect(s.http.addr).await.unwrap();
        tcp.write_all(&echo_request()).await.unwrap();
        assert!(
            read_one_response(&mut tcp)
                .await
                .starts_with("HTTP/1.1 200")
        );
        tcp.write_all(next).await.unwrap();
        assert!(
            closed_by_the_server(&mut tcp).await,
            "still open after {:?}",
            String::from_utf8_lossy(next)
        );
    }
    // Requests that keep coming are served on the one connection well past the deadline.
    let mut tcp = tokio::net::TcpStream::connect(s.http.addr).await.unwrap();
    for _ in 0..8 {
        tcp.write_all(&echo_request()).await.unwrap();
        assert!(
            read_one_response(&mut tcp)
                .await
                .starts_with("HTTP/1.1 200")
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_serving(&s.http).await;
}

#[tokio::test]
async fn a_request_in_flight_longer_than_the_header_deadline_is_answered() {
    let s = start_with_header_deadline(200).await;
    let h = s.http.clone();
    let waiting = tokio::spawn(async move { h.rpc(&call(1, "wait", json!({}))).await });
    s.catalog.started.notified().await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    s.catalog.gate.notify_one();
    let r = waiting.await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["result"]["structuredContent"]["waited"], true);
}

#[tokio::test]
async fn a_body_sent_in_several_chunks_is_read_whole() {
    use tokio::io::AsyncWriteExt;
    let s = start(HttpConfig::default()).await;
    let body = serde_json::to_vec(&call(5, "echo", json!({"parts": "a-b-c", "n": 3}))).unwrap();
    let mut tcp = tokio::net::TcpStream::connect(s.http.addr).await.unwrap();
    tcp.write_all(
        b"POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
          accept: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    // Three chunks, each written and flushed on its own, so the server reads several frames.
    for part in body.chunks(body.len() / 3 + 1) {
        let mut chunk = format!("{:x}\r\n", part.len()).into_bytes();
        chunk.extend_from_slice(part);
        chunk.extend_from_slice(b"\r\n");
        tcp.write_all(&chunk).await.unwrap();
        tcp.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tcp.write_all(b"0\r\n\r\n").await.unwrap();
    let text = read_one_response(&mut tcp).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let json_start = text.find("\r\n\r\n").unwrap() + 4;
    let reply: Value = serde_json::from_str(&text[json_start..]).unwrap();
    assert_eq!(reply["id"], 5);
    assert_eq!(
        reply["result"]["structuredContent"],
        json!({"parts": "a-b-c", "n": 3})
    );
}
