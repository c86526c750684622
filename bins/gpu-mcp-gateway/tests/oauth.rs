//! The gateway binary in OAuth resource-server mode: the `--oauth-*` flags reach the transport,
//! a token of the configured issuer is accepted, others are challenged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::Duration;

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

/// One HTTP/1.1 exchange: the status line, the lower-cased headers and the body.
async fn exchange(port: u16, request: &str) -> Option<(String, String, String)> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    tcp.write_all(request.as_bytes()).await.ok()?;
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    Some((
        status.to_owned(),
        headers.to_ascii_lowercase(),
        body.to_owned(),
    ))
}

fn list_nodes(token: Option<&str>) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "list_gpu_nodes", "arguments": {}}})
    .to_string();
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         accept: application/json\r\n{auth}connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_accepts_tokens_of_its_issuer() {
    let jwks = jwks_server().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_gpu-mcp-gateway"));
    for (k, _) in std::env::vars() {
        if k.starts_with("GPU_MCP_") {
            cmd.env_remove(k);
        }
    }
    let _gateway = cmd
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--agents", "node-a=http://127.0.0.1:1/mcp"])
        .args(["--oauth-issuer", "https://idp.example.test"])
        .args(["--oauth-audience", AUDIENCE])
        .args(["--oauth-jwks-url", &jwks])
        .args(["--log-level", "warn"])
        .env("GPU_MCP_GATEWAY_OAUTH_REQUIRED_SCOPES", "gpu.read")
        .env("GPU_MCP_GATEWAY_AUTH_TOKEN", "static-t0ken")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let readyz = "GET /readyz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
    let mut ready = false;
    for _ in 0..300 {
        if let Some((status, _, _)) = exchange(port, readyz).await
            && status.starts_with("HTTP/1.1 200")
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the gateway never became ready");

    let (status, _, body) = exchange(port, &list_nodes(Some(&fixture("token.jwt"))))
        .await
        .unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status} {body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert!(reply["result"]["structuredContent"].is_object(), "{reply}");
    // The static token is accepted too (it and the scopes came from environment variables).
    let (status, _, _) = exchange(port, &list_nodes(Some("static-t0ken")))
        .await
        .unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");

    let metadata = "https://gpu-mcp.example.test/.well-known/oauth-protected-resource/mcp";
    let (status, headers, _) = exchange(port, &list_nodes(None)).await.unwrap();
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    assert!(
        headers.contains(&format!(
            r#"www-authenticate: bearer resource_metadata="{metadata}""#
        )),
        "{headers}"
    );
    let (status, headers, _) = exchange(port, &list_nodes(Some(&fixture("token-no-scope.jwt"))))
        .await
        .unwrap();
    assert!(status.starts_with("HTTP/1.1 403"), "{status}");
    assert!(
        headers.contains(r#"error="insufficient_scope""#),
        "{headers}"
    );

    let (status, _, body) = exchange(
        port,
        "GET /.well-known/oauth-protected-resource HTTP/1.1\r\nhost: localhost\r\n\
         connection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["resource"], AUDIENCE);
    assert_eq!(doc["scopes_supported"], json!(["gpu.read"]));
}
