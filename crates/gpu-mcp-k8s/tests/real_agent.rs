//! Both transports against real agent processes. Runs when `GPU_MCP_TEST_AGENT_BIN` names the
//! built `gpu-mcp-agent` binary (e.g. `target/debug/gpu-mcp-agent`); otherwise prints a note.
//! HTTP: the agent serves Streamable HTTP on a loopback port.
//! Exec: the WebSocket stand-in runs the agent as a local process per exec session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gpu_mcp_k8s::{
    ExecTransport, ExecTransportConfig, HttpTransport, HttpTransportConfig, NodeError, Router,
    RouterConfig, StaticDirectory,
};
use serde_json::json;

fn agent_bin() -> Option<PathBuf> {
    match std::env::var_os("GPU_MCP_TEST_AGENT_BIN") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!("note: GPU_MCP_TEST_AGENT_BIN is not set; skipping the real-agent test");
            None
        }
    }
}

fn tools_list() -> gpu_mcp_protocol::Request {
    support::request_of(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
}

#[tokio::test]
async fn http_transport_reaches_a_real_agent() {
    let Some(bin) = agent_bin() else { return };
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let mut child = tokio::process::Command::new(&bin)
        .args([
            "--transport",
            "http",
            "--listen",
            &addr.to_string(),
            "--nvml-mode",
            "mock",
            "--node-name",
            "node-a",
        ])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let directory =
        Arc::new(StaticDirectory::new([("node-a", format!("http://{addr}/mcp"))]).unwrap());
    let transport = Arc::new(HttpTransport::new(HttpTransportConfig::default()).unwrap());
    let router = Router::new(directory, transport, RouterConfig::default());
    let mut last = None;
    for _ in 0..100 {
        let result = router
            .route_to_node(&"node-a".parse().unwrap(), &tools_list())
            .await;
        match result.outcome {
            Ok(response) => {
                let response = support::json_of(&response);
                let tools = response["result"]["tools"].as_array().unwrap();
                assert!(
                    tools.iter().any(|t| t["name"] == "get_gpu_inventory"),
                    "{response}"
                );
                child.kill().await.unwrap();
                return;
            }
            Err(err @ NodeError::Connect { .. }) => last = Some(err),
            Err(err) => panic!("unexpected error {err}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("agent never came up: {last:?}");
}

#[tokio::test]
async fn exec_transport_runs_a_real_agent() {
    let Some(bin) = agent_bin() else { return };
    let standin = support::spawn_exec_standin_with_program(true, Some(bin)).await;
    let command: Vec<String> = [
        "/gpu-mcp-agent",
        "--transport",
        "stdio",
        "--nvml-mode",
        "mock",
        "--node-name",
        "node-a",
    ]
    .map(String::from)
    .to_vec();
    for initialize in [true, false] {
        let transport = ExecTransport::new(
            standin.client(),
            ExecTransportConfig {
                command: command.clone(),
                initialize,
                ..ExecTransportConfig::default()
            },
        )
        .unwrap();
        let target = gpu_mcp_k8s::AgentEndpoint {
            node_name: "node-a".into(),
            pod_name: "real-agent-a".into(),
            namespace: "gpu-diagnostics".into(),
            pod_ip: None,
            ready: true,
            container: Some("agent".into()),
            port: None,
            start_time: None,
            url: None,
        };
        let response = support::json_of(
            &gpu_mcp_k8s::NodeTransport::send(&transport, &target, &tools_list())
                .await
                .unwrap(),
        );
        let tools = response["result"]["tools"].as_array().unwrap();
        assert!(
            tools.iter().any(|t| t["name"] == "get_gpu_health"),
            "{response}"
        );
    }

    // A bad flag: the agent exits non-zero and says why on stderr.
    let transport = ExecTransport::new(
        standin.client(),
        ExecTransportConfig {
            command: vec!["/gpu-mcp-agent".into(), "--no-such-flag".into()],
            ..ExecTransportConfig::default()
        },
    )
    .unwrap();
    let target = gpu_mcp_k8s::AgentEndpoint {
        node_name: "node-a".into(),
        pod_name: "real-agent-a".into(),
        namespace: "gpu-diagnostics".into(),
        pod_ip: None,
        ready: true,
        container: None,
        port: None,
        start_time: None,
        url: None,
    };
    let err = gpu_mcp_k8s::NodeTransport::send(&transport, &target, &tools_list())
        .await
        .unwrap_err();
    let NodeError::ExecFailed {
        exit_code, stderr, ..
    } = &err
    else {
        panic!("expected ExecFailed, got {err:?}");
    };
    // A usage error: EX_USAGE (64) from the agent, whatever the exact code, never 0.
    assert!(exit_code.is_some_and(|c| c != 0), "{exit_code:?}");
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
}
