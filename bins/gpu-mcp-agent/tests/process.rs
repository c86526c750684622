//! The agent binary as a process: one-shot stdio use (the gateway's exec routing), bad input on a
//! live process, exit codes, signals, the start-up check of the attribution sources.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

async fn one_shot(args: &[&str], input: &[Value]) -> (Vec<Value>, std::process::ExitStatus) {
    let mut child = common::agent(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for m in input {
        let mut line = serde_json::to_vec(m).unwrap();
        line.push(b'\n');
        stdin.write_all(&line).await.unwrap();
    }
    drop(stdin); // EOF
    let out = child.wait_with_output().await.unwrap();
    let lines = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "stdout line is not JSON ({e}): {}",
                    String::from_utf8_lossy(l)
                )
            })
        })
        .collect();
    (lines, out.status)
}

fn initialize(id: i64) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"exec","version":"0"}}})
}

fn call(id: i64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":args}})
}

#[tokio::test]
async fn one_shot_initialize_and_call_then_eof() {
    let (lines, status) = one_shot(
        &[],
        &[
            initialize(1),
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            call(2, "get_gpu_health", json!({})),
        ],
    )
    .await;
    assert!(status.success(), "{status:?}");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(lines[0]["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(lines[1]["id"], 2);
    assert!(
        lines[1]["result"]["structuredContent"].is_object(),
        "{}",
        lines[1]
    );
    assert_ne!(lines[1]["result"]["isError"], true);
}

#[tokio::test]
async fn one_shot_bare_call_then_eof() {
    let (lines, status) = one_shot(
        &["--mock-scenario", "xid-79"],
        &[call(7, "get_gpu_inventory", json!({}))],
    )
    .await;
    assert!(status.success(), "{status:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["id"], 7);
    assert!(
        lines[0]["result"]["structuredContent"].is_object(),
        "{}",
        lines[0]
    );
}

#[tokio::test]
async fn a_fatal_nvswitch_sxid_makes_the_node_critical() {
    let (lines, status) = one_shot(
        &["--mock-scenario", "nvswitch-fatal-sxid"],
        &[
            call(1, "get_gpu_health", json!({})),
            call(2, "analyze_xid_errors", json!({})),
        ],
    )
    .await;
    assert!(status.success(), "{status:?}");
    let by_id = |id: i64| lines.iter().find(|l| l["id"] == id).unwrap();
    let health = &by_id(1)["result"]["structuredContent"];
    assert_eq!(health["verdict"], "critical", "{health}");
    let finding = health["node_findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "nvswitch_sxid" && f["severity"] == "critical")
        .unwrap_or_else(|| panic!("no fatal SXid finding: {health}"));
    assert!(finding["summary"].as_str().unwrap().contains("24007"));
    let xids = &by_id(2)["result"]["structuredContent"];
    assert_eq!(xids["nvswitch"]["fatal_events"], 1, "{xids}");
    assert_eq!(xids["nvswitch"]["groups"][0]["sxid"], 24007);
}

#[tokio::test]
async fn strict_lifecycle_refuses_a_bare_call_and_keeps_serving() {
    let (lines, status) = one_shot(
        &["--strict-lifecycle"],
        &[
            call(1, "get_gpu_health", json!({})),
            initialize(2),
            call(3, "get_gpu_health", json!({})),
        ],
    )
    .await;
    assert!(status.success());
    assert_eq!(lines.len(), 3, "{lines:?}");
    let by_id = |id: i64| lines.iter().find(|l| l["id"] == id).unwrap();
    assert!(by_id(1)["error"]["code"].is_i64(), "{}", by_id(1));
    assert!(
        by_id(3)["result"]["structuredContent"].is_object(),
        "{}",
        by_id(3)
    );
}

#[tokio::test]
async fn bad_input_on_a_live_stdio_process() {
    let mut child = common::agent(&[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut exchange = async |line: Vec<u8>| -> Value {
        stdin.write_all(&line).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
        let reply = stdout.next_line().await.unwrap().expect("a reply");
        serde_json::from_str(&reply).unwrap()
    };
    let ok =
        json!({"jsonrpc":"2.0","id":100,"method":"tools/call","params":{"name":"get_gpu_health"}});
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{\"jsonrpc\":".to_vec(), "-32700"),
        (b"\"just a string\"".to_vec(), "-32600"),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xfe\"}".to_vec(),
            "-32700",
        ),
        (
            serde_json::to_vec(&json!({"jsonrpc":"2.0","id":2,"method":"gpus/reboot"})).unwrap(),
            "-32601",
        ),
        (
            serde_json::to_vec(&call(3, "get_gpu_health", json!({"gpu_index": "zero"}))).unwrap(),
            "isError",
        ),
        (
            serde_json::to_vec(&call(
                4,
                "get_gpu_health",
                json!({"unexpected_argument": 1}),
            ))
            .unwrap(),
            "isError",
        ),
        (
            serde_json::to_vec(&call(5, "reboot_gpu", json!({}))).unwrap(),
            "unknown tool",
        ),
    ];
    for (line, expect) in cases {
        let v = exchange(line).await;
        match expect {
            "isError" => assert_eq!(v["result"]["isError"], true, "{v}"),
            "unknown tool" => assert!(
                v["error"]["code"] == -32602 || v["result"]["isError"] == true,
                "{v}"
            ),
            code => assert_eq!(v["error"]["code"].to_string(), code, "{v}"),
        }
        let v = exchange(serde_json::to_vec(&ok).unwrap()).await;
        assert!(
            v["result"]["structuredContent"].is_object(),
            "not serving after {expect}: {v}"
        );
    }
    drop(stdin);
    assert!(child.wait().await.unwrap().success());
}

#[tokio::test]
async fn configuration_errors_exit_64() {
    for args in [
        &["--listen", "not-an-address"][..],
        &["--mock-scenario", "on-fire"],
        &["--mock-profile", "/nonexistent/profile.json"],
        &["--transport", "carrier-pigeon"],
        &["--tls-cert", "/nonexistent/cert.pem"],
    ] {
        let status = common::agent(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .unwrap();
        assert_eq!(status.code(), Some(64), "{args:?}");
    }
}

#[tokio::test]
async fn real_mode_without_nvml_fails_at_start_with_one_clear_sentence() {
    let out = common::agent(&[
        "--nvml-mode",
        "real",
        "--nvml-library-path",
        "/nonexistent/libnvidia-ml.so.1",
        "--log-format",
        "text",
    ])
    .stdin(Stdio::null())
    .output()
    .await
    .unwrap();
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(69));
    assert!(out.stdout.is_empty(), "stdout carries only MCP messages");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/libnvidia-ml.so.1") && err.contains("could not be loaded"),
        "{err}"
    );
}

#[tokio::test]
async fn help_and_version() {
    let out = common::agent(&["--help"]).output().await.unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--transport",
        "GPU_MCP_AGENT_LISTEN",
        "Examples:",
        "--nvml-mode",
    ] {
        assert!(help.contains(needle), "{needle} missing from --help");
    }
    let out = common::agent(&["--version"]).output().await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("gpu-mcp-agent "));
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_stops_the_http_agent_cleanly() {
    let mut agent = common::HttpAgent::start(&[]).await;
    let pid = agent.child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = agent.child.wait().await.unwrap();
    assert!(exit.success(), "{exit:?}");
}

/// One HTTP/1.1 exchange over a fresh loopback connection; returns the status and the body.
async fn http_post(
    addr: std::net::SocketAddr,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, Value) {
    use tokio::io::AsyncReadExt;
    let body = serde_json::to_vec(body).unwrap();
    let mut req = format!(
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(req.as_bytes()).await.unwrap();
    tcp.write_all(&body).await.unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let status = text[9..12].parse().unwrap();
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn http_strict_lifecycle_refuses_a_call_before_initialize_and_keeps_serving() {
    let agent = common::HttpAgent::start(&["--strict-lifecycle"]).await;
    let (status, v) = http_post(
        agent.addr,
        &[("mcp-protocol-version", "2025-06-18")],
        &call(1, "get_gpu_health", json!({})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(v["error"]["code"].is_i64(), "{v}");
    let (status, v) = http_post(agent.addr, &[], &initialize(2)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["protocolVersion"], "2025-11-25");
}

#[tokio::test]
async fn http_bare_call_is_answered_statelessly() {
    let agent = common::HttpAgent::start(&["--mock-scenario", "thermal-slowdown"]).await;
    let (status, v) = http_post(agent.addr, &[], &call(1, "get_gpu_health", json!({}))).await;
    assert_eq!(status, 200);
    assert!(v["result"]["structuredContent"].is_object(), "{v}");
    let (status, _) = http_post(
        agent.addr,
        &[("origin", "http://evil.example")],
        &call(2, "get_gpu_health", json!({})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = http_post(
        agent.addr,
        &[("mcp-protocol-version", "2099-01-01")],
        &call(3, "get_gpu_health", json!({})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, v) = http_post(
        agent.addr,
        &[],
        &call(4, "get_gpu_health", json!({"gpu_index": "zero"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["result"]["isError"], true, "{v}");
    let (status, v) = http_post(agent.addr, &[], &call(5, "get_gpu_inventory", json!({}))).await;
    assert_eq!(status, 200);
    assert!(v["result"]["structuredContent"].is_object(), "{v}");
}

#[tokio::test]
async fn a_closed_stderr_does_not_turn_the_verdict_into_a_crash() {
    // `gpu-mcp-agent health 2>&1 | head -1`: the reader is gone before the verdict is logged.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = common::agent(&["health", "--mock-scenario", "xid-79"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(writer))
        .status()
        .await
        .unwrap();
    assert_eq!(status.code(), Some(4), "critical, not a panic (101)");
}

/// One HTTP/1.1 GET over a fresh loopback connection; returns the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    text.split_once("\r\n\r\n").unwrap().1.to_owned()
}

#[tokio::test]
async fn the_http_agent_checks_its_attribution_sources_at_start_up() {
    let dir = std::env::temp_dir().join(format!("gpu-mcp-agent-start-up-{}", std::process::id()));
    let proc_root = dir.join("proc");
    std::fs::create_dir_all(proc_root.join("1")).unwrap();
    std::fs::write(proc_root.join("1").join("cgroup"), "0::/init.scope\n").unwrap();
    let socket = dir.join("pod-resources").join("kubelet.sock");
    let agent = common::HttpAgent::start(&[
        "--pod-resources-socket",
        socket.to_str().unwrap(),
        "--host-proc",
        proc_root.to_str().unwrap(),
    ])
    .await;
    // The check runs beside serving: wait for its gauges.
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = http_get(agent.addr, "/metrics").await;
        if metrics.contains("agent_attribution_source_up{source=\"cgroup\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for line in [
        "agent_attribution_source_up{source=\"pod_resources\",reason=\"missing\"} 0",
        "agent_attribution_source_up{source=\"cgroup\",reason=\"ok\"} 1",
        "agent_attribution_source_entries{source=\"cgroup\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in\n{metrics}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
