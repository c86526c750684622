//! stdio transport, driven through in-memory pipes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestCatalog, call, initialize};
use gpu_mcp_transport::{StdioConfig, serve_stdio, serve_stdio_with};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Pipe {
    input: DuplexStream,
    output: Lines<BufReader<DuplexStream>>,
    catalog: Arc<TestCatalog>,
    server: gpu_mcp_service::McpServer,
    shutdown: CancellationToken,
    task: JoinHandle<gpu_mcp_transport::Result<()>>,
}

fn start(config: StdioConfig) -> Pipe {
    let catalog = Arc::new(TestCatalog::default());
    let (input, server_in) = tokio::io::duplex(64 * 1024);
    let (server_out, output) = tokio::io::duplex(64 * 1024);
    let shutdown = CancellationToken::new();
    let server = common::server(catalog.clone());
    let task = tokio::spawn(serve_stdio_with(
        config,
        server.clone(),
        server_in,
        server_out,
        shutdown.clone(),
    ));
    Pipe {
        input,
        output: BufReader::new(output).lines(),
        catalog,
        server,
        shutdown,
        task,
    }
}

impl Pipe {
    async fn send_raw(&mut self, bytes: &[u8]) {
        self.input.write_all(bytes).await.unwrap();
    }
    async fn send(&mut self, v: &Value) {
        let mut line = serde_json::to_vec(v).unwrap();
        line.push(b'\n');
        self.send_raw(&line).await;
    }
    async fn recv(&mut self) -> Value {
        let line = self
            .output
            .next_line()
            .await
            .unwrap()
            .expect("a reply line");
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout carried a non-JSON line ({e}): {line}"))
    }
    async fn assert_serving(&mut self, id: i64) {
        self.send(&call(id, "echo", json!({"n": id}))).await;
        let v = self.recv().await;
        assert_eq!(v["id"], id, "{v}");
        assert_eq!(v["result"]["structuredContent"]["n"], id, "{v}");
    }
}

fn code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {v}"))
}

#[tokio::test]
async fn bad_input_gets_a_clean_answer_and_the_session_keeps_serving() {
    let mut p = start(StdioConfig::default());
    p.send(&initialize(1, "2025-11-25")).await;
    assert_eq!(p.recv().await["result"]["protocolVersion"], "2025-11-25");
    p.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
        .await;

    p.send_raw(b"{not json\n").await;
    let v = p.recv().await;
    assert_eq!(code(&v), -32700);
    assert!(v["id"].is_null());
    p.assert_serving(10).await;

    p.send_raw(b"[1,2,3]\n").await;
    assert_eq!(code(&p.recv().await), -32600);
    p.assert_serving(11).await;

    p.send(&json!({"jsonrpc":"2.0","id":null,"method":"tools/list"}))
        .await;
    assert_eq!(code(&p.recv().await), -32600);
    p.assert_serving(12).await;

    p.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"\xff\"}\n")
        .await;
    assert_eq!(code(&p.recv().await), -32700);
    p.assert_serving(13).await;

    let bomb = format!("{}{}\n", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    p.send_raw(bomb.as_bytes()).await;
    assert_eq!(code(&p.recv().await), -32700);
    p.assert_serving(14).await;

    p.send(&json!({"jsonrpc":"2.0","id":4,"method":"no/such"}))
        .await;
    let v = p.recv().await;
    assert_eq!((code(&v), v["id"].as_i64()), (-32601, Some(4)));
    p.assert_serving(15).await;

    p.send(&json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{}}))
        .await;
    assert_eq!(code(&p.recv().await), -32602);
    p.assert_serving(16).await;

    // A 2026-07-28 envelope asking for a revision this server does not speak.
    p.send(
        &json!({"jsonrpc":"2.0","id":8,"method":"tools/list","params":{"_meta":{
        "io.modelcontextprotocol/protocolVersion":"2099-01-01",
        "io.modelcontextprotocol/clientCapabilities":{}}}}),
    )
    .await;
    let v = p.recv().await;
    assert_eq!(code(&v), -32022, "{v}");
    assert!(
        v["error"]["data"]["supported"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{v}"
    );
    p.assert_serving(20).await;

    p.send(&call(6, "fail", json!({}))).await;
    assert_eq!(p.recv().await["result"]["isError"], true);
    p.assert_serving(17).await;

    // Notifications and stray responses get no reply; blank lines are skipped.
    p.send(&json!({"jsonrpc":"2.0","method":"notifications/whatever"}))
        .await;
    p.send(&json!({"jsonrpc":"2.0","id":99,"result":{}})).await;
    p.send_raw(b"\n\r\n   \n").await;
    p.assert_serving(18).await;

    // CRLF line endings are accepted.
    p.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":19,\"method\":\"ping\"}\r\n")
        .await;
    assert_eq!(p.recv().await["id"], 19);

    drop(p.input);
    p.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_100_mb_line_is_discarded_while_reading() {
    let mut p = start(StdioConfig::default());
    let chunk = vec![b'x'; 1 << 20];
    let mut input = std::mem::replace(&mut p.input, tokio::io::duplex(1).0);
    let writer = tokio::spawn(async move {
        input.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"pad\":\"").await.unwrap();
        for _ in 0..100 {
            input.write_all(&chunk).await.unwrap();
        }
        input.write_all(b"\"}}}\n").await.unwrap();
        input
    });
    let v = p.recv().await;
    assert_eq!(code(&v), -32600);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line limit"),
        "{v}"
    );
    p.input = writer.await.unwrap();
    p.assert_serving(2).await;
}

#[tokio::test]
async fn line_limit_is_configurable() {
    let mut p = start(StdioConfig {
        max_line_bytes: 64,
        ..StdioConfig::default()
    });
    p.send(&call(1, "echo", json!({"pad": "y".repeat(100)})))
        .await;
    assert_eq!(code(&p.recv().await), -32600);
    p.send(&json!({"jsonrpc":"2.0","id":2,"method":"ping"}))
        .await;
    assert_eq!(p.recv().await["id"], 2);
}

#[tokio::test]
async fn concurrent_requests_are_answered_as_they_finish() {
    let mut p = start(StdioConfig::default());
    p.send(&call(1, "wait", json!({}))).await;
    p.catalog.started.notified().await;
    p.assert_serving(2).await; // answered while 1 is still waiting
    p.catalog.gate.notify_one();
    let v = p.recv().await;
    assert_eq!(v["id"], 1);
    assert_eq!(v["result"]["structuredContent"]["waited"], true);
}

#[tokio::test]
async fn end_of_input_waits_for_in_flight_requests() {
    let mut p = start(StdioConfig::default());
    p.send(&call(1, "wait", json!({}))).await;
    p.catalog.started.notified().await;
    p.input.shutdown().await.unwrap();
    p.catalog.gate.notify_one();
    let v = p.recv().await;
    assert_eq!(v["id"], 1);
    assert_eq!(v["result"]["structuredContent"]["waited"], true);
    p.task.await.unwrap().unwrap();
    assert!(
        p.output.next_line().await.unwrap().is_none(),
        "stdout closes after the last reply"
    );
}

#[tokio::test]
async fn one_shot_initialize_and_call_then_eof() {
    let catalog = Arc::new(TestCatalog::default());
    let mut input = Vec::new();
    for m in [
        initialize(1, "2025-06-18"),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        call(2, "echo", json!({"one": "shot"})),
    ] {
        input.extend(serde_json::to_vec(&m).unwrap());
        input.push(b'\n');
    }
    let mut output = Vec::new();
    serve_stdio(
        common::server(catalog),
        &input[..],
        &mut output,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let lines: Vec<Value> = output
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(lines[1]["id"], 2);
    assert_eq!(lines[1]["result"]["structuredContent"]["one"], "shot");
}

#[tokio::test]
async fn bare_call_then_eof_without_trailing_newline() {
    let catalog = Arc::new(TestCatalog::default());
    let input = serde_json::to_vec(&call(7, "echo", json!({"bare": true}))).unwrap();
    let mut output = Vec::new();
    serve_stdio(
        common::server(catalog),
        &input[..],
        &mut output,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(output.strip_suffix(b"\n").unwrap()).unwrap();
    assert_eq!(v["id"], 7);
    assert_eq!(v["result"]["structuredContent"]["bare"], true);
}

#[tokio::test]
async fn shutdown_drops_requests_still_running_after_the_grace_period() {
    let p = start(StdioConfig {
        shutdown_grace: Duration::from_millis(20),
        ..StdioConfig::default()
    });
    let mut p = p;
    p.send(&call(1, "wait", json!({}))).await;
    p.catalog.started.notified().await;
    p.shutdown.cancel();
    p.task.await.unwrap().unwrap();
    assert!(p.output.next_line().await.unwrap().is_none());
}

#[tokio::test]
async fn a_client_that_sends_faster_than_it_reads_is_held_at_the_in_flight_cap() {
    use std::sync::atomic::Ordering;
    let mut p = start(StdioConfig {
        max_in_flight: 4,
        ..StdioConfig::default()
    });
    // 200 calls that all block: only 4 may run, the rest stay unread in the pipe.
    let sender = {
        let mut input = p.input;
        tokio::spawn(async move {
            for id in 0..200 {
                let mut line = serde_json::to_vec(&call(id, "wait", json!({}))).unwrap();
                line.push(b'\n');
                input.write_all(&line).await.unwrap();
            }
            input
        })
    };
    while p.catalog.running.load(Ordering::SeqCst) < 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Give the reader every chance to start a fifth.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(p.catalog.running.load(Ordering::SeqCst), 4);
    // Release the calls one wave at a time: every one is answered, never more than 4 at once.
    let mut answered = std::collections::HashSet::new();
    while answered.len() < 200 {
        p.catalog.gate.notify_waiters();
        let line = tokio::time::timeout(Duration::from_millis(50), p.output.next_line()).await;
        if let Ok(line) = line {
            let v: Value = serde_json::from_str(&line.unwrap().unwrap()).unwrap();
            assert_eq!(
                v["result"]["structuredContent"],
                json!({"waited": true}),
                "{v}"
            );
            answered.insert(v["id"].as_i64().unwrap());
        }
    }
    assert!(p.catalog.peak.load(Ordering::SeqCst) <= 4);
    let input = sender.await.unwrap();
    drop(input);
    p.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn log_messages_follow_the_level_the_client_set() {
    let mut p = start(StdioConfig::default());
    let sink = p.server.log_sink().clone();
    p.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": {"level": "warning"}}))
        .await;
    let set = p.recv().await;
    assert_eq!(set["id"], 1, "{set}");
    assert_eq!(set["result"], json!({}), "{set}");
    sink.log(
        gpu_mcp_protocol::mcp::LoggingLevel::Info,
        "fleet",
        json!({"message": "routine"}),
    );
    sink.log(
        gpu_mcp_protocol::mcp::LoggingLevel::Warning,
        "fleet",
        json!({"message": "node stopped answering", "node": "gpu-7"}),
    );
    let note = p.recv().await;
    assert_eq!(note["method"], "notifications/message", "{note}");
    assert_eq!(note["params"]["level"], "warning", "{note}");
    assert_eq!(note["params"]["data"]["node"], "gpu-7", "{note}");
    p.assert_serving(2).await;
    drop(p.input);
    p.task.await.unwrap().unwrap();
}
