//! SIGTERM on a real gateway process while a call is in flight: `/readyz` turns 503 first, the
//! call still gets its whole answer, then the process exits 0.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// A loopback agent that reports each request it reads and answers it only when told to.
async fn slow_agent() -> (u16, mpsc::Receiver<oneshot::Sender<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = tcp.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break body.to_owned();
                        }
                    }
                };
                let request: Value = serde_json::from_str(&body).unwrap();
                let (go, wait) = oneshot::channel();
                tx.send(go).await.unwrap();
                let _ = wait.await;
                let reply = json!({"jsonrpc": "2.0", "id": request["id"], "result": {
                    "content": [{"type": "text", "text": "slow but complete"}],
                    "structuredContent": {"answer": "slow but complete"}}})
                .to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = tcp.write_all(response.as_bytes()).await;
            });
        }
    });
    (port, rx)
}

async fn exchange(port: u16, request: String) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readiness_off_first_and_lets_the_call_in_flight_finish() {
    let (agent_port, mut requests) = slow_agent().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut gateway = tokio::process::Command::new(env!("CARGO_BIN_EXE_gpu-mcp-gateway"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--agents",
            &format!("slow=http://127.0.0.1:{agent_port}/mcp"),
        ])
        .args([
            "--node-timeout",
            "30s",
            "--drain-delay",
            "10s",
            "--log-level",
            "warn",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut ready = String::new();
    for _ in 0..300 {
        if let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", port)).await {
            tcp.write_all(get("/readyz").as_bytes()).await.unwrap();
            ready.clear();
            tcp.read_to_string(&mut ready).await.unwrap();
            if ready.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready.starts_with("HTTP/1.1 200"), "never ready: {ready}");

    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "get_gpu_health", "arguments": {"node": "slow"}}})
    .to_string();
    let call = tokio::spawn(exchange(
        port,
        format!(
            "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             connection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ),
    ));
    // The call is at the agent: stop the gateway.
    let go = requests.recv().await.unwrap();
    let pid = gateway.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut readiness = String::new();
    for _ in 0..300 {
        readiness = exchange(port, get("/readyz")).await;
        if readiness.starts_with("HTTP/1.1 503") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(readiness.starts_with("HTTP/1.1 503"), "{readiness}");
    // Liveness still answers while draining.
    assert!(
        exchange(port, get("/healthz"))
            .await
            .starts_with("HTTP/1.1 200")
    );
    go.send(()).unwrap();
    let reply = call.await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let (_, body) = reply.split_once("\r\n\r\n").unwrap();
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["id"], 7, "{v}");
    assert!(v.to_string().contains("slow but complete"), "{v}");
    let status = gateway.wait().await.unwrap();
    assert!(status.success(), "{status:?}");
}
