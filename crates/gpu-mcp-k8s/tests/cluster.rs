//! Integration tests against a real Kubernetes API server (the project's local loopback
//! control plane). They run only when `GPU_MCP_TEST_KUBECONFIG` names a kubeconfig; otherwise
//! they print a note and pass.
//!
//! Optional exec check through the API server (needs a kubelet stand-in such as kwok that runs
//! exec'd commands locally): set `GPU_MCP_TEST_EXEC_NODE` to a node it manages and
//! `GPU_MCP_TEST_EXEC_COMMAND` to the agent's stdio command line (space-separated).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gpu_mcp_k8s::{
    ClientOptions, Discovery, DiscoveryConfig, ExecTransport, ExecTransportConfig, HttpTransport,
    HttpTransportConfig, NodeDirectory, Router, RouterConfig,
};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{Behavior, spawn_agent_on};

fn kubeconfig() -> Option<PathBuf> {
    match std::env::var_os("GPU_MCP_TEST_KUBECONFIG") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            eprintln!("note: GPU_MCP_TEST_KUBECONFIG is not set; skipping the cluster test");
            None
        }
    }
}

fn agent_pod(name: &str, node: &str, port: u16) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/name": "k8s-gpu-mcp-server", "app.kubernetes.io/component": "agent"}
        },
        "spec": {
            "nodeName": node,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "agent",
                "image": "gpu-mcp-agent:test",
                "ports": [{"name": "http", "containerPort": port}]
            }]
        }
    }))
    .unwrap()
}

async fn set_status(pods: &Api<Pod>, name: &str, ready: bool, ip: Option<&str>) {
    let ips: Vec<Value> = ip.iter().map(|ip| json!({"ip": ip})).collect();
    let status = json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": ips,
        "startTime": "2026-01-01T00:00:00Z",
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// Create namespace `name`, run `body` in it, then delete the namespace whether `body`
/// passed or panicked.
async fn in_namespace<F, Fut>(client: &kube::Client, name: &str, body: F)
where
    F: FnOnce(kube::Client, String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let outcome = tokio::spawn(body(client.clone(), name.to_owned())).await;
    let _ = namespaces.delete(name, &DeleteParams::default()).await;
    if let Err(err) = outcome {
        if err.is_panic() {
            std::panic::resume_unwind(err.into_panic());
        }
        panic!("test body failed: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_follows_real_pods_and_routes_over_http() {
    let Some(path) = kubeconfig() else { return };
    let client = gpu_mcp_k8s::client(&ClientOptions {
        kubeconfig: Some(path),
        context: None,
    })
    .await
    .unwrap();
    let ns_name = format!("gpu-mcp-k8s-test-{}", std::process::id());
    in_namespace(&client, &ns_name, follow_pods).await;
}

async fn follow_pods(client: kube::Client, ns_name: String) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns_name);

    let discovery = Arc::new(
        Discovery::start(
            client.clone(),
            DiscoveryConfig {
                namespace: ns_name.clone(),
                agent_component_only: true,
                ..DiscoveryConfig::default()
            },
        )
        .unwrap(),
    );
    discovery
        .wait_until_synced(Duration::from_secs(30))
        .await
        .unwrap();
    assert!(discovery.nodes().is_empty());

    // Loopback agents stand for the pods' HTTP servers.
    let ip_a = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 10));
    let ip_b = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 11));
    let agent_a = spawn_agent_on(SocketAddr::new(ip_a, 0), "gpu-node-a", Behavior::Good).await;
    let agent_b = spawn_agent_on(SocketAddr::new(ip_b, 0), "gpu-node-b", Behavior::Good).await;

    // Appear: scheduled, not ready, no IP.
    pods.create(
        &PostParams::default(),
        &agent_pod("agent-a", "gpu-node-a", agent_a.addr.port()),
    )
    .await
    .unwrap();
    support::eventually("pod appears", || discovery.node("gpu-node-a").is_some()).await;
    let a = discovery.node("gpu-node-a").unwrap();
    assert!(!a.ready);
    assert_eq!(a.pod_ip, None);

    let transport = Arc::new(HttpTransport::new(HttpTransportConfig::default()).unwrap());
    let router = Router::new(discovery.clone(), transport, RouterConfig::default());
    let request = support::request_of(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    let result = router
        .route_to_node(&"gpu-node-a".parse().unwrap(), &request)
        .await;
    assert_eq!(result.outcome.unwrap_err().kind(), "not_ready");

    // Turn ready with a loopback pod IP; route to it.
    set_status(&pods, "agent-a", true, Some(&ip_a.to_string())).await;
    support::eventually("pod ready", || {
        discovery.node("gpu-node-a").is_some_and(|e| e.ready)
    })
    .await;
    let result = router
        .route_to_node(&"gpu-node-a".parse().unwrap(), &request)
        .await;
    assert_eq!(
        support::json_of(&result.outcome.unwrap())["result"]["node"],
        "gpu-node-a"
    );

    // Move: the pod is replaced by one on another node.
    pods.delete("agent-a", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    pods.create(
        &PostParams::default(),
        &agent_pod("agent-b", "gpu-node-b", agent_b.addr.port()),
    )
    .await
    .unwrap();
    set_status(&pods, "agent-b", true, Some(&ip_b.to_string())).await;
    support::eventually("pod moved", || {
        let names: Vec<_> = discovery.nodes().into_iter().map(|n| n.node_name).collect();
        names == ["gpu-node-b"] && discovery.node("gpu-node-b").is_some_and(|e| e.ready)
    })
    .await;
    let all = router.route_to_all(&request).await;
    assert_eq!(all.len(), 1);
    assert_eq!(
        support::json_of(all[0].outcome.as_ref().unwrap())["result"]["node"],
        "gpu-node-b"
    );

    // Delete.
    pods.delete("agent-b", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    support::eventually("pod deleted", || discovery.nodes().is_empty()).await;
    assert!(
        discovery.last_error().is_none(),
        "{:?}",
        discovery.last_error()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_goes_through_the_api_server() {
    let Some(path) = kubeconfig() else { return };
    let (Ok(node), Ok(command)) = (
        std::env::var("GPU_MCP_TEST_EXEC_NODE"),
        std::env::var("GPU_MCP_TEST_EXEC_COMMAND"),
    ) else {
        eprintln!(
            "note: GPU_MCP_TEST_EXEC_NODE / GPU_MCP_TEST_EXEC_COMMAND not set; skipping exec"
        );
        return;
    };
    let client = gpu_mcp_k8s::client(&ClientOptions {
        kubeconfig: Some(path),
        context: None,
    })
    .await
    .unwrap();
    let ns_name = format!("gpu-mcp-k8s-exec-{}", std::process::id());
    in_namespace(&client, &ns_name, move |client, ns_name| {
        exec_in(client, ns_name, node, command)
    })
    .await;
}

async fn exec_in(client: kube::Client, ns_name: String, node: String, command: String) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns_name);
    pods.create(
        &PostParams::default(),
        &agent_pod("agent-exec", &node, 8080),
    )
    .await
    .unwrap();
    let discovery = Arc::new(
        Discovery::start(
            client.clone(),
            DiscoveryConfig {
                namespace: ns_name.clone(),
                ..DiscoveryConfig::default()
            },
        )
        .unwrap(),
    );
    // The kubelet stand-in marks the pod ready.
    for _ in 0..600 {
        if discovery.node(&node).is_some_and(|e| e.ready) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let transport = Arc::new(
        ExecTransport::new(
            client,
            ExecTransportConfig {
                command: command.split_whitespace().map(str::to_owned).collect(),
                ..ExecTransportConfig::default()
            },
        )
        .unwrap(),
    );
    let router = Router::new(discovery, transport, RouterConfig::default());
    let request = support::request_of(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    let result = router.route_to_node(&node.parse().unwrap(), &request).await;
    let response = support::json_of(&result.outcome.unwrap());
    assert!(
        response["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{response}"
    );
}
