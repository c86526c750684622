//! A small tool catalog and an HTTP client for the transport tests.
#![allow(dead_code, unreachable_pub)]

pub mod idp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::future::BoxFuture;
use gpu_mcp_protocol::{CallToolResult, JsonObject, Tool};
use gpu_mcp_service::{CallContext, CallError, McpServer, ServerInfo, ToolCatalog};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// `echo` returns its arguments; `wait` sends `steps` progress reports (default 1) when the
/// client asked for progress, then blocks until the gate opens (or the call is cancelled);
/// `fail` returns an `isError` result.
#[derive(Default)]
pub struct TestCatalog {
    pub started: Notify,
    pub gate: Notify,
    /// `wait` calls running now, and the most that ever ran at once.
    pub running: AtomicUsize,
    pub peak: AtomicUsize,
}

fn tool(name: &str) -> Tool {
    let schema = json!({"type": "object"});
    serde_json::from_value(
        json!({"name": name, "description": format!("test tool {name}"), "inputSchema": schema}),
    )
    .unwrap()
}

impl ToolCatalog for TestCatalog {
    fn tools(&self) -> Vec<Tool> {
        vec![tool("echo"), tool("wait"), tool("fail")]
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        arguments: Option<JsonObject>,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move {
            match name {
                "echo" => {
                    let args = Value::Object(arguments.unwrap_or_default());
                    Ok(CallToolResult::structured(args.clone(), args.to_string()))
                }
                "wait" => {
                    if let Some(progress) = &ctx.progress {
                        let steps = arguments
                            .as_ref()
                            .and_then(|a| a.get("steps"))
                            .and_then(Value::as_u64)
                            .unwrap_or(1);
                        for done in 1..=steps {
                            progress.report(done, steps, &format!("step {done}"));
                        }
                    }
                    let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
                    self.peak.fetch_max(now, Ordering::SeqCst);
                    let _running = Running(&self.running);
                    self.started.notify_one();
                    tokio::select! {
                        () = self.gate.notified() => Ok(CallToolResult::structured(json!({"waited": true}), "waited")),
                        () = ctx.cancel.cancelled() => Ok(CallToolResult::error("cancelled")),
                    }
                }
                "fail" => Ok(CallToolResult::error("this tool always fails")),
                other => Err(CallError::UnknownTool(other.to_owned())),
            }
        })
    }
}

struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub fn server(catalog: Arc<TestCatalog>) -> McpServer {
    let info = ServerInfo {
        name: "transport-test".into(),
        version: "1.2.3".into(),
        title: None,
        instructions: None,
    };
    McpServer::new(info, catalog)
}

pub fn call(id: i64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})
}

pub fn initialize(id: i64, version: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
}

/// A plain HTTP/1 client against one loopback server.
#[derive(Clone)]
pub struct Http {
    pub addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn error_code(&self) -> i64 {
        self.json()["error"]["code"].as_i64().unwrap()
    }
}

impl Http {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub fn post(&self) -> http::request::Builder {
        http::Request::post(format!("http://{}/mcp", self.addr))
            .header("content-type", "application/json")
    }

    pub async fn send(&self, req: http::request::Builder, body: impl Into<Bytes>) -> Reply {
        let req = req.body(Full::new(body.into())).unwrap();
        let resp = self.client.request(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    /// POSTs one JSON message with the standard headers.
    pub async fn rpc(&self, message: &Value) -> Reply {
        let body = serde_json::to_vec(message).unwrap();
        let req = self
            .post()
            .header("accept", "application/json, text/event-stream");
        self.send(req, body).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        let req = http::Request::get(format!("http://{}{path}", self.addr));
        self.send(req, Bytes::new()).await
    }
}
