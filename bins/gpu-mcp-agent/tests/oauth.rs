//! The agent binary in OAuth resource-server mode: the `--oauth-*` flags reach the transport,
//! a token of the configured issuer is accepted, others are challenged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../crates/gpu-mcp-transport/tests/fixtures/oauth"
);
const AUDIENCE: &str = "https://gpu-mcp.example.test/mcp";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}"))
        .unwrap()
        .trim()
        .to_owned()
}

/// A loopback server answering every request with the fixture JWKS; its URL.
async fn jwks_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let jwks = fixture("jwks.json");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = tcp.read(&mut buf).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{jwks}",
                jwks.len()
            );
            let _ = tcp.write_all(response.as_bytes()).await;
        }
    });
    format!("http://{addr}/jwks")
}

/// One HTTP/1.1 exchange: the status line, the headers and the body.
async fn exchange(addr: std::net::SocketAddr, request: String) -> (String, String, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (
        status.to_owned(),
        headers.to_ascii_lowercase(),
        body.to_owned(),
    )
}

async fn call(addr: std::net::SocketAddr, token: Option<&str>) -> (String, String, String) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get_gpu_inventory", "arguments": {}}})
    .to_string();
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    exchange(
        addr,
        format!(
            "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             accept: application/json\r\n{auth}connection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_accepts_tokens_of_its_issuer() {
    let jwks = jwks_server().await;
    let agent = common::HttpAgent::start(&[
        "--oauth-issuer",
        "https://idp.example.test",
        "--oauth-audience",
        AUDIENCE,
        "--oauth-jwks-url",
        &jwks,
        "--oauth-required-scopes",
        "gpu.read",
    ])
    .await;

    let (status, _, body) = call(agent.addr, Some(&fixture("token.jwt"))).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status} {body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert!(reply["result"]["structuredContent"].is_object(), "{reply}");

    let metadata = "https://gpu-mcp.example.test/.well-known/oauth-protected-resource/mcp";
    let (status, headers, _) = call(agent.addr, None).await;
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    assert!(
        headers.contains(&format!(
            r#"www-authenticate: bearer resource_metadata="{metadata}""#
        )),
        "{headers}"
    );
    let (status, headers, _) = call(agent.addr, Some(&fixture("token-no-scope.jwt"))).await;
    assert!(status.starts_with("HTTP/1.1 403"), "{status}");
    assert!(
        headers.contains(r#"error="insufficient_scope""#),
        "{headers}"
    );
    let (status, headers, _) = call(agent.addr, Some("a.b.c")).await;
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    assert!(headers.contains(r#"error="invalid_token""#), "{headers}");

    let (status, _, body) = exchange(
        agent.addr,
        "GET /.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nhost: localhost\r\n\
         connection: close\r\n\r\n"
            .to_owned(),
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["resource"], AUDIENCE);
    assert_eq!(
        doc["authorization_servers"],
        json!(["https://idp.example.test"])
    );
}

#[tokio::test]
async fn unusable_oauth_settings_are_a_usage_error() {
    let status = common::agent(&[
        "--transport",
        "http",
        "--listen",
        "127.0.0.1:0",
        "--oauth-issuer",
        "http://idp.example.test",
        "--oauth-audience",
        AUDIENCE,
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .status()
    .await
    .unwrap();
    assert_eq!(
        status.code(),
        Some(64),
        "EX_USAGE: plain http to a remote issuer"
    );
}
