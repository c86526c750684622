//! Fan-out through the Router over 50 simulated nodes found by Discovery (mocked API server),
//! reached over HTTP on loopback pod IPs and over exec through the WebSocket stand-in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use gpu_mcp_k8s::{
    Discovery, DiscoveryConfig, ExecTransport, ExecTransportConfig, HttpTransport,
    HttpTransportConfig, NodeDirectory, NodeError, NodeTransport, Router, RouterConfig,
};
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use support::{Behavior, LoopbackAgent, pod, pod_list, spawn_agent_on, spawn_exec_standin};
use tower_test::mock::{self, Handle};

const T0: &str = "2026-01-01T00:00:00Z";

/// Start Discovery on a mocked API server that lists `pods` once and then holds the watch open.
async fn discovery_with(
    pods: Vec<Value>,
) -> (
    Arc<Discovery>,
    Pin<Box<Handle<Request<Body>, Response<Body>>>>,
) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let mut handle = Box::pin(handle);
    let discovery = Discovery::start(
        kube::Client::new(service, "default"),
        DiscoveryConfig::default(),
    )
    .unwrap();
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(Response::new(Body::from(pod_list(pods, 1))));
    discovery
        .wait_until_synced(Duration::from_secs(10))
        .await
        .unwrap();
    (Arc::new(discovery), handle)
}

fn with_port(mut pod: Value, port: u16) -> Value {
    pod["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(port);
    pod
}

fn tools_list() -> gpu_mcp_protocol::Request {
    support::request_of(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
}

#[tokio::test]
async fn http_fan_out_over_50_nodes_with_3_broken() {
    let mut agents: Vec<LoopbackAgent> = Vec::new();
    let mut pods = Vec::new();
    for i in 0..50u8 {
        let node = format!("gpu-node-{i:02}");
        let behavior = match i {
            7 => Behavior::Hang,
            23 => Behavior::Status500,
            41 => Behavior::Garbage,
            _ => Behavior::Good,
        };
        // Each simulated pod has its own loopback pod IP.
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 1, i + 1));
        let agent = spawn_agent_on(SocketAddr::new(ip, 0), &node, behavior).await;
        pods.push(with_port(
            pod(
                &format!("agent-{i:02}"),
                Some(&node),
                true,
                Some(&ip.to_string()),
                10 + u64::from(i),
                T0,
            ),
            agent.addr.port(),
        ));
        agents.push(agent);
    }
    let (discovery, _api) = discovery_with(pods).await;
    assert_eq!(discovery.nodes().len(), 50);
    let transport = Arc::new(HttpTransport::new(HttpTransportConfig::default()).unwrap());
    let router = Router::new(
        discovery,
        transport,
        RouterConfig {
            concurrency: 8,
            node_timeout: Duration::from_secs(3),
            circuit_breaker: None,
        },
    );
    let results = router.route_to_all(&tools_list()).await;
    assert_eq!(results.len(), 50);
    let names: Vec<_> = results.iter().map(|r| r.node_name.clone()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    let ok: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(ok.len(), 47);
    for r in &ok {
        assert_eq!(
            support::json_of(r.outcome.as_ref().unwrap())["result"]["node"],
            r.node_name.as_str()
        );
        assert_eq!(
            r.pod_name.as_deref(),
            Some(format!("agent-{}", &r.node_name[9..]).as_str())
        );
    }
    let errors: Vec<(String, NodeError)> = results
        .iter()
        .filter_map(|r| r.outcome.clone().err().map(|e| (r.node_name.clone(), e)))
        .collect();
    assert_eq!(errors.len(), 3);
    assert_eq!(errors[0].0, "gpu-node-07");
    assert_eq!(
        errors[0].1,
        NodeError::Timeout {
            after: Duration::from_secs(3)
        }
    );
    assert_eq!(errors[1].0, "gpu-node-23");
    assert_eq!(
        errors[1].1,
        NodeError::HttpStatus {
            status: 500,
            body: "internal agent failure".into()
        }
    );
    assert_eq!(errors[2].0, "gpu-node-41");
    assert!(
        matches!(&errors[2].1, NodeError::Protocol { message } if message.contains("not JSON"))
    );

    // One node at a time, too.
    let one = router
        .route_to_node(&"gpu-node-12".parse().unwrap(), &tools_list())
        .await;
    assert_eq!(
        support::json_of(&one.outcome.unwrap())["result"]["node"],
        "gpu-node-12"
    );
    let unknown = router
        .route_to_node(&"gpu-node-99".parse().unwrap(), &tools_list())
        .await;
    let err = unknown.outcome.unwrap_err();
    assert!(matches!(&err, NodeError::NotFound { known, synced: true, .. } if known.len() == 50));
}

#[tokio::test]
async fn exec_fan_out_over_50_nodes_with_3_broken() {
    let standin = spawn_exec_standin(true).await;
    let mut pods = Vec::new();
    for i in 0..50u8 {
        let node = format!("gpu-node-{i:02}");
        let prefix = match i {
            5 => "fail",
            17 => "forbidden",
            33 => "garbage",
            _ => "ok",
        };
        pods.push(pod(
            &format!("{prefix}-{i:02}"),
            Some(&node),
            true,
            Some("127.0.2.1"),
            10 + u64::from(i),
            T0,
        ));
    }
    let (discovery, _api) = discovery_with(pods).await;
    let transport =
        Arc::new(ExecTransport::new(standin.client(), ExecTransportConfig::default()).unwrap());
    let router = Router::new(discovery, transport, RouterConfig::default());
    let results = router.route_to_all(&tools_list()).await;
    assert_eq!(results.len(), 50);
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 47);
    let kinds: Vec<_> = results
        .iter()
        .filter_map(|r| {
            r.outcome
                .as_ref()
                .err()
                .map(|e| (r.node_name.as_str(), e.kind()))
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("gpu-node-05", "exec_failed"),
            ("gpu-node-17", "api"),
            ("gpu-node-33", "protocol")
        ]
    );
    assert!(matches!(
        &results[5].outcome,
        Err(NodeError::ExecFailed {
            exit_code: Some(3),
            ..
        })
    ));
    assert!(matches!(
        &results[17].outcome,
        Err(NodeError::Api { code: 403, .. })
    ));
    // Every node but the refused one got an exec session.
    assert_eq!(standin.calls.lock().len(), 49);
}

#[tokio::test]
async fn unready_and_ip_less_pods_are_reported_not_skipped() {
    let agent = spawn_agent_on(
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 3, 1)), 0),
        "node-a",
        Behavior::Good,
    )
    .await;
    let pods = vec![
        with_port(
            pod("agent-a", Some("node-a"), true, Some("127.0.3.1"), 1, T0),
            agent.addr.port(),
        ),
        pod("agent-b", Some("node-b"), false, Some("127.0.3.2"), 2, T0),
        pod("agent-c", Some("node-c"), true, None, 3, T0),
        pod("agent-pending", None, false, None, 4, T0),
    ];
    let (discovery, _api) = discovery_with(pods).await;
    let transport: Arc<dyn NodeTransport> =
        Arc::new(HttpTransport::new(HttpTransportConfig::default()).unwrap());
    let router = Router::new(discovery.clone(), transport, RouterConfig::default());
    let results = router.route_to_all(&tools_list()).await;
    let lines: Vec<String> = results
        .iter()
        .map(|r| match &r.outcome {
            Ok(_) => format!("{}: ok", r.node_name),
            Err(e) => format!("{}: {e}", r.node_name),
        })
        .collect();
    assert_eq!(
        lines,
        [
            "node-a: ok",
            "node-b: agent pod agent-b on node \"node-b\" is not ready",
            "node-c: agent pod agent-c on node \"node-c\" has no pod IP yet",
        ]
    );
    assert_eq!(discovery.unscheduled_pods(), ["agent-pending"]);
}
