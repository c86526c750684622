//! Notifications on a POST's event stream: progress and log messages reach the client while its
//! request runs, before the response, over real loopback HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::{Http, TestCatalog, initialize};
use gpu_mcp_protocol::mcp::LoggingLevel;
use gpu_mcp_service::McpServer;
use gpu_mcp_transport::{Health, HttpConfig, HttpServer, Metrics};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A hang guard for steps that must happen; never a measured time.
const GUARD: Duration = Duration::from_secs(20);

struct Running {
    http: Http,
    server: McpServer,
    catalog: Arc<TestCatalog>,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn start(mut config: HttpConfig) -> Running {
    config.listen = "127.0.0.1:0".parse().unwrap();
    let catalog = Arc::new(TestCatalog::default());
    let server = common::server(catalog.clone());
    let http_server = HttpServer::bind(config, server.clone(), Health::new(true), Metrics::new())
        .await
        .unwrap();
    let http = Http::new(http_server.local_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(http_server.serve(shutdown.clone()));
    Running {
        http,
        server,
        catalog,
        _shutdown: shutdown.drop_guard(),
    }
}

/// `tools/call wait` sending `steps` reports, asking for progress with `token`.
fn report_call(id: i64, steps: u64, token: Option<&str>) -> Value {
    let mut params = json!({"name": "wait", "arguments": {"steps": steps}});
    if let Some(token) = token {
        params["_meta"] = json!({"progressToken": token});
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
}

/// An SSE response read event by event, as it arrives.
struct Events {
    status: u16,
    content_type: Option<String>,
    body: hyper::body::Incoming,
    buf: Vec<u8>,
}

impl Events {
    /// POSTs `message`, accepting JSON and the event stream, with these extra headers.
    async fn post(http: &Http, message: &Value, headers: &[(&str, &str)]) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let mut req = http
            .post()
            .header("accept", "application/json, text/event-stream");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(Full::new(Bytes::from(serde_json::to_vec(message).unwrap())))
            .unwrap();
        let resp = tokio::time::timeout(GUARD, client.request(req))
            .await
            .expect("response headers")
            .unwrap();
        let (parts, body) = resp.into_parts();
        Self {
            status: parts.status.as_u16(),
            content_type: parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body,
            buf: Vec::new(),
        }
    }

    /// The next event's JSON-RPC message (a JSON reply is one message); `None` when the
    /// stream ended.
    async fn next(&mut self) -> Option<Value> {
        if self.content_type.as_deref() == Some("application/json") {
            let mut body = Vec::new();
            while let Some(frame) = self.body.frame().await {
                if let Ok(data) = frame.unwrap().into_data() {
                    body.extend_from_slice(&data);
                }
            }
            return (!body.is_empty()).then(|| serde_json::from_slice(&body).unwrap());
        }
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8(event).unwrap();
                assert!(text.starts_with("event: message\n"), "{text:?}");
                let data = text
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .expect("a data line");
                return Some(serde_json::from_str(data).unwrap());
            }
            let frame = tokio::time::timeout(GUARD, self.body.frame())
                .await
                .expect("the next event")?;
            if let Ok(data) = frame.unwrap().into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }

    /// Every event left, until the stream ends.
    async fn rest(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(event) = self.next().await {
            out.push(event);
        }
        out
    }
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(GUARD, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} did not happen"));
}

#[tokio::test]
async fn progress_reaches_the_client_while_the_call_runs_then_the_response_ends_the_stream() {
    let s = start(HttpConfig::default()).await;
    let mut events = Events::post(&s.http, &report_call(7, 2, Some("tok")), &[]).await;
    assert_eq!(events.status, 200);
    assert_eq!(events.content_type.as_deref(), Some("text/event-stream"));

    // Both reports arrive while the call is still waiting at its gate.
    for step in 1..=2 {
        let n = events.next().await.expect("a progress event");
        assert_eq!(n["method"], "notifications/progress", "{n}");
        assert!(n.get("id").is_none());
        assert_eq!(n["params"]["progressToken"], "tok");
        assert_eq!(n["params"]["progress"], step);
        assert_eq!(n["params"]["total"], 2);
        assert_eq!(n["params"]["message"], format!("step {step}"));
    }
    assert_eq!(s.catalog.running.load(Ordering::SeqCst), 1);
    s.catalog.gate.notify_one();
    let rest = events.rest().await;
    assert_eq!(rest.len(), 1, "only the response is left: {rest:?}");
    assert_eq!(rest[0]["id"], 7);
    assert_eq!(
        rest[0]["result"]["structuredContent"],
        json!({"waited": true})
    );
}

#[tokio::test]
async fn a_client_that_takes_only_json_gets_one_json_reply_and_no_progress() {
    let s = start(HttpConfig::default()).await;
    s.catalog.gate.notify_one();
    let body = serde_json::to_vec(&report_call(3, 3, Some("tok"))).unwrap();
    let r = s
        .http
        .send(s.http.post().header("accept", "application/json"), body)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["id"], 3);
    assert_eq!(
        r.json()["result"]["structuredContent"],
        json!({"waited": true})
    );
}

#[tokio::test]
async fn a_call_that_sends_nothing_is_answered_as_before() {
    let s = start(HttpConfig::default()).await;
    let mut events = Events::post(&s.http, &common::call(4, "echo", json!({"a": 1})), &[]).await;
    assert_eq!(events.status, 200);
    // Equal weights: the plain JSON reply, as for any request without notifications.
    assert_eq!(events.content_type.as_deref(), Some("application/json"));
    let reply = events.rest().await;
    assert_eq!(reply.len(), 1);
    assert_eq!(reply[0]["result"]["structuredContent"], json!({"a": 1}));
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_streamed_call() {
    let s = start(HttpConfig::default()).await;
    let mut events = Events::post(&s.http, &report_call(5, 1, Some("tok")), &[]).await;
    let first = events.next().await.expect("a progress event");
    assert_eq!(first["method"], "notifications/progress");
    assert_eq!(s.catalog.running.load(Ordering::SeqCst), 1);
    drop(events);
    eventually("the call's cancellation", || {
        s.catalog.running.load(Ordering::SeqCst) == 0
    })
    .await;
}

#[tokio::test]
async fn a_client_that_goes_away_before_any_event_cancels_its_call() {
    // A call that sends no notification runs inside the connection's handler, with no task of
    // its own: the client's going away must still end it.
    use tokio::io::AsyncWriteExt;
    let s = start(HttpConfig::default()).await;
    let body = serde_json::to_vec(&report_call(7, 1, None)).unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(s.http.addr).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&body).await.unwrap();
    eventually("the call's start", || {
        s.catalog.running.load(Ordering::SeqCst) == 1
    })
    .await;
    drop(socket);
    eventually("the call's cancellation", || {
        s.catalog.running.load(Ordering::SeqCst) == 0
    })
    .await;
}

#[tokio::test]
async fn the_request_deadline_bounds_a_stream() {
    let s = start(HttpConfig {
        request_timeout: Duration::from_millis(300),
        ..HttpConfig::default()
    })
    .await;
    let mut events = Events::post(&s.http, &report_call(6, 1, Some("tok")), &[]).await;
    let first = events.next().await.expect("a progress event");
    assert_eq!(first["method"], "notifications/progress");
    // The gate never opens: the deadline answers, and the stream ends.
    let rest = events.rest().await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0]["id"], 6);
    assert_eq!(rest[0]["error"]["code"], -32603, "{}", rest[0]);
    assert!(
        rest[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timed out")
    );
    eventually("the call's end", || {
        s.catalog.running.load(Ordering::SeqCst) == 0
    })
    .await;
}

#[tokio::test]
async fn a_sessions_log_messages_travel_on_its_request_stream_once() {
    let s = start(HttpConfig::default()).await;
    let init = s.http.rpc(&initialize(1, "2025-11-25")).await;
    let id = init.header("mcp-session-id").expect("a session").to_owned();
    let set = Events::post(
        &s.http,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel", "params": {"level": "warning"}}),
        &[("mcp-session-id", id.as_str())],
    )
    .await;
    assert_eq!(set.status, 200);
    drop(set);

    // Two calls of the session run at once; a message goes out on one of their streams only.
    // (A call whose stream carries nothing sends its headers with its reply, so each waits in
    // a task of its own.)
    let call = |n: i64| {
        let (http, id) = (s.http.clone(), id.clone());
        tokio::spawn(async move {
            let session = [("mcp-session-id", id.as_str())];
            Events::post(&http, &report_call(n, 1, None), &session)
                .await
                .rest()
                .await
        })
    };
    let (first, second) = (call(3), call(4));
    eventually("both calls running", || {
        s.catalog.running.load(Ordering::SeqCst) == 2
    })
    .await;
    let sink = s.server.log_sink();
    sink.log(LoggingLevel::Info, "fleet", json!({"message": "routine"}));
    sink.log(
        LoggingLevel::Error,
        "fleet",
        json!({"message": "gpu-node-3 stopped answering", "node": "gpu-node-3"}),
    );
    s.catalog.gate.notify_one();
    s.catalog.gate.notify_one();
    let mut all = first.await.unwrap();
    all.extend(second.await.unwrap());
    let messages: Vec<&Value> = all
        .iter()
        .filter(|m| m["method"] == "notifications/message")
        .collect();
    assert_eq!(messages.len(), 1, "{all:?}");
    assert_eq!(messages[0]["params"]["level"], "error");
    assert_eq!(messages[0]["params"]["logger"], "fleet");
    assert_eq!(messages[0]["params"]["data"]["node"], "gpu-node-3");
    let mut ids: Vec<i64> = all.iter().filter_map(|m| m["id"].as_i64()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [3, 4]);
}

#[tokio::test]
async fn a_long_stream_holds_only_the_events_on_their_way_out() {
    // 50 reports of about 150 bytes each would not fit in the budget together; at most a few
    // queued events hold bytes at any time, so every one of them arrives.
    let s = start(HttpConfig {
        max_buffered_bytes: 4096,
        ..HttpConfig::default()
    })
    .await;
    let mut events = Events::post(&s.http, &report_call(9, 50, Some("long")), &[]).await;
    let mut seen = Vec::new();
    while seen.len() < 50 {
        let n = events.next().await.expect("a progress event");
        seen.push(n["params"]["progress"].as_u64().unwrap());
    }
    assert_eq!(seen, (1..=50).collect::<Vec<_>>());
    s.catalog.gate.notify_one();
    let rest = events.rest().await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0]["id"], 9);
}
