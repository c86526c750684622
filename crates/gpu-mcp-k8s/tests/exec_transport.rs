//! ExecTransport through kube's WebSocket exec against a loopback stand-in of the API server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use gpu_mcp_k8s::{AgentEndpoint, ExecTransport, ExecTransportConfig, NodeError, NodeTransport};
use gpu_mcp_protocol::Request;
use serde_json::json;
use support::{json_of, request_of, send_within, spawn_exec_standin};

fn target(pod: &str) -> AgentEndpoint {
    AgentEndpoint {
        node_name: "node-a".into(),
        pod_name: pod.into(),
        namespace: "gpu-diagnostics".into(),
        pod_ip: None,
        ready: true,
        container: Some("agent".into()),
        port: None,
        start_time: None,
        url: None,
    }
}

fn request(id: i64) -> Request {
    request_of(
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "get_gpu_inventory"}}),
    )
}

#[tokio::test]
async fn success_with_initialize_over_v5() {
    let standin = spawn_exec_standin(true).await;
    let transport = ExecTransport::new(standin.client(), ExecTransportConfig::default()).unwrap();
    let response = json_of(&transport.send(&target("ok-a"), &request(42)).await.unwrap());
    assert_eq!(response["id"], 42);
    assert_eq!(response["result"]["pod"], "ok-a");
    assert_eq!(response["result"]["method"], "tools/call");

    let call = standin.calls.lock()[0].clone();
    assert_eq!(call.protocol, "v5.channel.k8s.io");
    assert_eq!(call.namespace, "gpu-diagnostics");
    assert_eq!(call.pod, "ok-a");
    assert_eq!(call.container.as_deref(), Some("agent"));
    assert_eq!(
        call.command,
        [
            "/gpu-mcp-agent",
            "--transport",
            "stdio",
            "--nvml-mode",
            "real"
        ]
    );
    assert_eq!(call.flags.get("stdin").map(String::as_str), Some("true"));
    let methods: Vec<_> = call
        .stdin
        .iter()
        .map(|m| m["method"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        methods,
        ["initialize", "notifications/initialized", "tools/call"]
    );
}

#[tokio::test]
async fn bare_request_over_v4_with_custom_command() {
    let standin = spawn_exec_standin(false).await;
    let config = ExecTransportConfig {
        command: vec!["/agent".into(), "--nvml-mode=real".into()],
        container: Some("gpu-agent".into()),
        initialize: false,
        ..ExecTransportConfig::default()
    };
    let transport = ExecTransport::new(standin.client(), config).unwrap();
    let response = json_of(&transport.send(&target("ok-b"), &request(7)).await.unwrap());
    assert_eq!(response["result"]["pod"], "ok-b");
    let call = standin.calls.lock()[0].clone();
    assert_eq!(call.protocol, "v4.channel.k8s.io");
    assert_eq!(call.command, ["/agent", "--nvml-mode=real"]);
    assert_eq!(call.container.as_deref(), Some("gpu-agent"));
    assert_eq!(call.stdin.len(), 1);
}

#[tokio::test]
async fn non_zero_exit_surfaces_status_and_stderr() {
    let standin = spawn_exec_standin(true).await;
    let transport = ExecTransport::new(standin.client(), ExecTransportConfig::default()).unwrap();
    let err = transport
        .send(&target("fail-a"), &request(1))
        .await
        .unwrap_err();
    let NodeError::ExecFailed {
        pod,
        exit_code,
        message,
        stderr,
    } = &err
    else {
        panic!("expected ExecFailed, got {err:?}");
    };
    assert_eq!(pod, "fail-a");
    assert_eq!(*exit_code, Some(3));
    assert!(message.contains("non-zero exit code"), "{message}");
    assert!(stderr.contains("libnvidia-ml.so.1"), "{stderr}");
    let text = err.to_string();
    assert!(
        text.starts_with("exec in pod fail-a failed with exit code 3: "),
        "{text}"
    );
    assert!(text.contains("stderr: \"error: NVML unavailable"), "{text}");
    // stdin was closed so the agent could see EOF.
    assert!(standin.calls.lock()[0].stdin_eof);
}

#[tokio::test]
async fn forbidden_is_an_api_error() {
    let standin = spawn_exec_standin(true).await;
    let transport = ExecTransport::new(standin.client(), ExecTransportConfig::default()).unwrap();
    let err = transport
        .send(&target("forbidden-a"), &request(1))
        .await
        .unwrap_err();
    let NodeError::Api {
        code,
        reason,
        message,
    } = &err
    else {
        panic!("expected Api, got {err:?}");
    };
    assert_eq!(*code, 403);
    assert_eq!(reason, "Forbidden");
    assert!(
        message.contains("cannot create resource \"pods/exec\""),
        "{message}"
    );
}

#[tokio::test]
async fn garbage_silence_and_hang() {
    let standin = spawn_exec_standin(true).await;
    let transport = ExecTransport::new(standin.client(), ExecTransportConfig::default()).unwrap();

    let err = transport
        .send(&target("garbage-a"), &request(1))
        .await
        .unwrap_err();
    assert!(matches!(err, NodeError::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("this is not JSON-RPC"), "{err}");

    let err = transport
        .send(&target("silent-a"), &request(1))
        .await
        .unwrap_err();
    let NodeError::ExecFailed {
        exit_code, message, ..
    } = &err
    else {
        panic!("expected ExecFailed, got {err:?}");
    };
    assert_eq!(*exit_code, Some(0));
    assert!(message.contains("without answering"), "{message}");

    let short = Duration::from_millis(300);
    let err = send_within(
        Arc::new(transport.clone()),
        target("hang-a"),
        &request(1),
        short,
    )
    .await
    .unwrap_err();
    assert_eq!(err, NodeError::Timeout { after: short });

    // Static agents have no pod to exec into.
    let err = transport
        .send(
            &AgentEndpoint::from_url("n", "http://127.0.0.1:1/mcp"),
            &request(1),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exec routing needs one"), "{err}");
}

#[tokio::test]
async fn api_server_down_is_a_client_error() {
    let closed = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let client =
        kube::Client::try_from(kube::Config::new(format!("http://{addr}").parse().unwrap()))
            .unwrap();
    let transport = ExecTransport::new(client, ExecTransportConfig::default()).unwrap();
    let err = transport
        .send(&target("ok-a"), &request(1))
        .await
        .unwrap_err();
    assert!(matches!(err, NodeError::Kube { .. }), "{err:?}");
}

#[tokio::test]
async fn unauthorized_and_backend_failures_are_api_errors() {
    let standin = spawn_exec_standin(true).await;
    let transport = ExecTransport::new(standin.client(), ExecTransportConfig::default()).unwrap();
    let err = transport
        .send(&target("unauthorized-a"), &request(1))
        .await
        .unwrap_err();
    assert!(matches!(&err, NodeError::Api { code: 401, .. }), "{err:?}");
    let err = transport
        .send(&target("dialfail-a"), &request(1))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Kubernetes API error 500 "InternalError": "error dialing backend: dial tcp 127.0.0.1:10250: connect: connection refused""#
    );
}
