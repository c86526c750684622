//! Resource list changes reach clients: over stdio between the replies, and over real loopback
//! HTTP on the standalone event stream (`GET /mcp`), one stream per session, which ends when
//! the session is deleted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Http, initialize};
use futures::FutureExt;
use futures::future::BoxFuture;
use gpu_mcp_protocol::mcp::{
    CompleteRequestParams, Completion, ReadResourceResult, Resource, ResourceTemplate,
};
use gpu_mcp_protocol::{CallToolResult, JsonObject, Tool};
use gpu_mcp_service::{
    CallContext, CallError, McpServer, ResourceCatalog, ResourceError, ServerInfo, ToolCatalog,
};
use gpu_mcp_transport::{Health, HttpConfig, HttpServer, Metrics};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A hang guard for steps that must happen; never a measured time.
const GUARD: Duration = Duration::from_secs(20);

/// Resources whose list changes when `generation` moves.
struct Nodes {
    generation: watch::Receiver<u64>,
}

impl ToolCatalog for Nodes {
    fn tools(&self) -> Vec<Tool> {
        Vec::new()
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        _arguments: Option<JsonObject>,
        _ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        async move { Err(CallError::UnknownTool(name.to_owned())) }.boxed()
    }

    fn resource_catalog(&self) -> Option<&dyn ResourceCatalog> {
        Some(self)
    }
}

impl ResourceCatalog for Nodes {
    fn templates(&self) -> Vec<ResourceTemplate> {
        vec![ResourceTemplate {
            uri_template: "node://{name}".into(),
            name: "node".into(),
            title: None,
            description: None,
            mime_type: None,
        }]
    }

    fn resources(&self) -> BoxFuture<'_, Vec<Resource>> {
        async move { Vec::new() }.boxed()
    }

    fn resources_ttl_ms(&self) -> u64 {
        5_000
    }

    fn read<'a>(
        &'a self,
        uri: &'a str,
        _cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<ReadResourceResult, ResourceError>> {
        async move { Err(ResourceError::NotFound(format!("No node at {uri}."))) }.boxed()
    }

    fn complete<'a>(&'a self, _request: &'a CompleteRequestParams) -> BoxFuture<'a, Completion> {
        async move { Completion::matching(Vec::<String>::new(), "") }.boxed()
    }

    fn list_changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.generation.clone())
    }
}

fn server(generation: watch::Receiver<u64>) -> McpServer {
    let info = ServerInfo {
        name: "t".into(),
        version: "1".into(),
        title: None,
        instructions: None,
    };
    McpServer::new(info, Arc::new(Nodes { generation }))
}

async fn start(generation: watch::Receiver<u64>) -> (Http, tokio_util::sync::DropGuard) {
    let server = server(generation);
    let config = HttpConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..HttpConfig::default()
    };
    let http_server = HttpServer::bind(config, server, Health::new(true), Metrics::new())
        .await
        .unwrap();
    let http = Http::new(http_server.local_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(http_server.serve(shutdown.clone()));
    (http, shutdown.drop_guard())
}

fn get(http: &Http, session: Option<&str>) -> http::request::Builder {
    let mut req = http::Request::get(format!("http://{}/mcp", http.addr))
        .header("accept", "text/event-stream");
    if let Some(session) = session {
        req = req.header("mcp-session-id", session);
    }
    req
}

/// The messages of an event stream, skipping comments (keep-alives).
struct Stream {
    body: hyper::body::Incoming,
    buf: Vec<u8>,
}

impl Stream {
    async fn open(http: &Http, session: &str) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let req = get(http, Some(session))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = tokio::time::timeout(GUARD, client.request(req))
            .await
            .expect("response headers")
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Self {
            body: resp.into_body(),
            buf: Vec::new(),
        }
    }

    /// The next message; `None` when the stream ended.
    async fn next(&mut self) -> Option<Value> {
        loop {
            while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8(event).unwrap();
                if let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) {
                    return Some(serde_json::from_str(data).unwrap());
                }
            }
            let frame = tokio::time::timeout(GUARD, self.body.frame())
                .await
                .expect("the next event")?;
            if let Ok(data) = frame.ok()?.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }
}

#[tokio::test]
async fn the_session_stream_carries_list_changes_and_ends_with_the_session() {
    let (tx, rx) = watch::channel(0);
    let (http, _shutdown) = start(rx).await;
    let r = http.rpc(&initialize(1, "2025-11-25")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["result"]["capabilities"]["resources"]["listChanged"],
        true
    );
    let session = r.header("mcp-session-id").unwrap().to_owned();

    assert_eq!(http.send(get(&http, None), Bytes::new()).await.status, 400);
    let unknown = http.send(get(&http, Some("nope")), Bytes::new()).await;
    assert_eq!(unknown.status, 404);
    let json_only = http::Request::get(format!("http://{}/mcp", http.addr))
        .header("accept", "application/json")
        .header("mcp-session-id", &session);
    assert_eq!(http.send(json_only, Bytes::new()).await.status, 406);

    let mut stream = Stream::open(&http, &session).await;
    let second = http.send(get(&http, Some(&session)), Bytes::new()).await;
    assert_eq!(second.status, 409, "one stream per session");

    for _ in 0..5 {
        tx.send_modify(|g| *g += 1);
    }
    let notification = stream.next().await.expect("a notification");
    assert_eq!(
        notification["method"],
        "notifications/resources/list_changed"
    );

    let deleted = http
        .send(
            http::Request::delete(format!("http://{}/mcp", http.addr))
                .header("mcp-session-id", &session),
            Bytes::new(),
        )
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        stream.next().await,
        None,
        "the stream ends with its session"
    );
}

#[tokio::test]
async fn shutdown_ends_the_session_stream_at_once() {
    let (_tx, rx) = watch::channel(0);
    let config = HttpConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        drain_delay: std::time::Duration::from_secs(30),
        ..HttpConfig::default()
    };
    let http_server = HttpServer::bind(config, server(rx), Health::new(true), Metrics::new())
        .await
        .unwrap();
    let http = Http::new(http_server.local_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(http_server.serve(shutdown.clone()));
    let r = http.rpc(&initialize(1, "2025-11-25")).await;
    let session = r.header("mcp-session-id").unwrap().to_owned();
    let mut stream = Stream::open(&http, &session).await;
    // The listener keeps serving for the drain delay, but a stream of notifications ends as
    // soon as shutdown starts instead of holding its connection through the grace period.
    shutdown.cancel();
    assert_eq!(stream.next().await, None, "the stream ends on shutdown");
}

#[tokio::test]
async fn stdio_writes_list_changes_between_the_replies_once_initialized() {
    let (tx, rx) = watch::channel(0);
    let (mut input, server_in) = tokio::io::duplex(64 * 1024);
    let (server_out, output) = tokio::io::duplex(64 * 1024);
    let shutdown = CancellationToken::new();
    let _task = tokio::spawn(gpu_mcp_transport::serve_stdio_with(
        gpu_mcp_transport::StdioConfig::default(),
        server(rx),
        server_in,
        server_out,
        shutdown.clone(),
    ));
    let mut output = BufReader::new(output).lines();
    let mut line = serde_json::to_vec(&initialize(1, "2025-11-25")).unwrap();
    line.push(b'\n');
    input.write_all(&line).await.unwrap();
    let reply = tokio::time::timeout(GUARD, output.next_line())
        .await
        .unwrap();
    let reply: Value = serde_json::from_str(&reply.unwrap().unwrap()).unwrap();
    assert_eq!(reply["id"], 1);

    tx.send_modify(|g| *g += 1);
    let written = tokio::time::timeout(GUARD, output.next_line())
        .await
        .unwrap();
    let written: Value = serde_json::from_str(&written.unwrap().unwrap()).unwrap();
    assert_eq!(written["method"], "notifications/resources/list_changed");
    shutdown.cancel();
}
