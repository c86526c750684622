//! 2026-07-28 over Streamable HTTP: the standard headers `Mcp-Method` and `Mcp-Name` are
//! required and checked against the body (HTTP 400, `-32020`), and `tools/list` carries the
//! cache hints `ttlMs` and `cacheScope`; handshake revisions are unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{Http, TestCatalog, call};
use gpu_mcp_transport::{Health, HttpConfig, HttpServer, Metrics};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const MODERN: &str = "2026-07-28";

async fn start() -> (Http, CancellationToken) {
    let config = HttpConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..HttpConfig::default()
    };
    let server = HttpServer::bind(
        config,
        common::server(Arc::new(TestCatalog::default())),
        Health::new(true),
        Metrics::new(),
    )
    .await
    .unwrap();
    let http = Http::new(server.local_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(server.serve(shutdown.clone()));
    (http, shutdown)
}

fn with_envelope(mut message: Value) -> Value {
    message["params"]["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    message
}

/// POSTs `message` with `MCP-Protocol-Version: 2026-07-28` and the given standard headers.
async fn post(http: &Http, message: &Value, headers: &[(&str, &str)]) -> common::Reply {
    let mut req = http
        .post()
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    http.send(req, serde_json::to_vec(message).unwrap()).await
}

#[tokio::test]
async fn standard_headers_are_required_and_must_match_the_body() {
    let (http, shutdown) = start().await;
    let echo = with_envelope(call(1, "echo", json!({"x": 1})));

    let r = post(
        &http,
        &echo,
        &[("mcp-method", "tools/call"), ("mcp-name", "echo")],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["result"]["structuredContent"], json!({"x": 1}));

    let bad: [&[(&str, &str)]; 4] = [
        &[("mcp-name", "echo")],
        &[("mcp-method", "tools/call")],
        &[("mcp-method", "tools/list"), ("mcp-name", "echo")],
        &[("mcp-method", "tools/call"), ("mcp-name", "fail")],
    ];
    for headers in bad {
        let r = post(&http, &echo, headers).await;
        assert_eq!((r.status, r.error_code()), (400, -32020), "{headers:?}");
        assert_eq!(r.json()["id"], 1);
    }

    // A method without a target needs only Mcp-Method.
    let list =
        with_envelope(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}));
    let r = post(&http, &list, &[]).await;
    assert_eq!((r.status, r.error_code()), (400, -32020));
    let r = post(&http, &list, &[("mcp-method", "tools/list")]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    shutdown.cancel();
}

#[tokio::test]
async fn tools_list_carries_cache_hints_only_in_2026_07_28() {
    let (http, shutdown) = start().await;
    let list =
        with_envelope(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}));
    let r = post(&http, &list, &[("mcp-method", "tools/list")]).await;
    let result = &r.json()["result"];
    assert_eq!(result["ttlMs"], 3_600_000, "{result}");
    assert_eq!(result["cacheScope"], "public");
    assert_eq!(result["resultType"], "complete");

    // Handshake revisions: no hints and no standard headers needed.
    let r = http
        .send(
            http.post()
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-11-25"),
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let result = &r.json()["result"];
    assert!(result.get("ttlMs").is_none(), "{result}");
    assert!(result.get("cacheScope").is_none(), "{result}");
    assert_eq!(result["tools"].as_array().unwrap().len(), 3);
    shutdown.cancel();
}
