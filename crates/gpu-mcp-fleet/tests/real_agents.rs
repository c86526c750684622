#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Fan-outs over the agent's own catalog (the mock fleet, one scenario per node, in process):
//! the fleet answer from agents asked only for what it uses is the one from their full answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use futures::future::BoxFuture;
use gpu_mcp_backend::{MOCK_UPTIME, MockBackend, MockConfig, Scenario};
use gpu_mcp_fleet::ClusterCatalog;
use gpu_mcp_k8s::{AgentEndpoint, NodeError, NodeTransport, Router, RouterConfig, StaticDirectory};
use gpu_mcp_model::gpu_tool_definitions;
use gpu_mcp_protocol::{CallToolResult, JsonObject, Request, Response};
use gpu_mcp_service::{CallContext, ToolCatalog};
use gpu_mcp_tools::{AgentCatalog, AgentCatalogConfig};
use serde_json::{Value, json};

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn node(i: usize) -> String {
    format!("gpu-node-{i:02}")
}

/// One agent per scenario; `full` agents drop `detail` and `min_verdict` before they answer, so
/// they answer in full as agents did before those arguments.
struct Agents {
    agents: Vec<AgentCatalog>,
    full: bool,
    /// Bytes of the answers sent.
    sent: AtomicUsize,
}

impl NodeTransport for Agents {
    fn send<'a>(
        &'a self,
        target: &'a AgentEndpoint,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<Response, NodeError>> {
        async move {
            let i: usize = target.node_name["gpu-node-".len()..].parse().unwrap();
            let params = request.params.clone().unwrap();
            let tool = params["name"].as_str().unwrap();
            let mut arguments: Option<JsonObject> =
                params.get("arguments").and_then(|a| a.as_object().cloned());
            if self.full
                && let Some(a) = arguments.as_mut()
            {
                a.remove("detail");
                a.remove("min_verdict");
            }
            let result = self.agents[i]
                .call(tool, arguments, CallContext::default())
                .await
                .unwrap();
            let result = serde_json::to_value(&result).unwrap();
            let bytes = serde_json::to_vec(&result).unwrap().len();
            self.sent.fetch_add(bytes, Ordering::Relaxed);
            Ok(Response::success(request.id.clone(), result))
        }
        .boxed()
    }
}

fn fleet(full: bool) -> (ClusterCatalog, Arc<Agents>) {
    let agents = Scenario::ALL
        .iter()
        .enumerate()
        .map(|(i, scenario)| {
            let backend = MockBackend::new(MockConfig {
                node_name: node(i),
                gpus: 8,
                scenario: *scenario,
                now: Some(now()),
                ..MockConfig::default()
            })
            .unwrap();
            AgentCatalog::new(
                Arc::new(backend),
                AgentCatalogConfig {
                    node_name: node(i),
                    boot_time: Some(now() - MOCK_UPTIME),
                    now: Some(now()),
                    ..AgentCatalogConfig::default()
                },
            )
        })
        .collect::<Vec<_>>();
    let directory = StaticDirectory::new(
        (0..agents.len()).map(|i| (node(i), format!("http://127.0.0.1:9/{i}"))),
    )
    .unwrap();
    let agents = Arc::new(Agents {
        agents,
        full,
        sent: AtomicUsize::new(0),
    });
    let router = Router::new(
        Arc::new(directory),
        agents.clone(),
        RouterConfig {
            concurrency: 8,
            node_timeout: Duration::from_secs(30),
            circuit_breaker: None,
        },
    );
    let catalog = ClusterCatalog::new(Arc::new(router), gpu_tool_definitions());
    (catalog, agents)
}

async fn call(c: &ClusterCatalog, tool: &str, args: &Value) -> CallToolResult {
    c.call(tool, args.as_object().cloned(), CallContext::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn every_scenario_gives_the_same_fleet_answer_from_narrowed_agents() {
    let ((full, full_agents), (narrowed, narrowed_agents)) = (fleet(true), fleet(false));
    for tool in ["get_gpu_health", "analyze_xid_errors"] {
        for args in [
            json!({}),
            json!({"detail": "summary"}),
            json!({"min_verdict": "critical"}),
            json!({"min_verdict": "degraded", "node_limit": 3}),
            json!({"min_verdict": "healthy", "node_limit": 50}),
        ] {
            let before = (
                full_agents.sent.load(Ordering::Relaxed),
                narrowed_agents.sent.load(Ordering::Relaxed),
            );
            let want = call(&full, tool, &args).await;
            let got = call(&narrowed, tool, &args).await;
            assert!(!got.failed(), "{tool} {args}");
            assert_eq!(got, want, "{tool} {args}");
            let full_bytes = full_agents.sent.load(Ordering::Relaxed) - before.0;
            let narrowed_bytes = narrowed_agents.sent.load(Ordering::Relaxed) - before.1;
            assert!(
                narrowed_bytes < full_bytes,
                "{tool} {args}: {narrowed_bytes} bytes narrowed, {full_bytes} in full"
            );
        }
    }
    // The default health answer details every sick node with its findings.
    let r = call(&narrowed, "get_gpu_health", &json!({"node_limit": 50})).await;
    let s = r.structured_content.unwrap();
    let sick: u64 = s["summary"]["nodes_by_verdict"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(v, _)| *v != "healthy")
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    let problems = s["problems"].as_array().unwrap();
    assert!(sick >= 10, "{}", s["summary"]);
    // Those the byte budget leaves out are counted, and on the next page.
    let omitted = s["omitted"]["problem_nodes"].as_u64().unwrap();
    assert_eq!(problems.len() as u64 + omitted, sick);
    assert!(
        problems
            .iter()
            .all(|p| !p["details"]["gpus"].as_array().unwrap().is_empty()
                || !p["details"]["node_findings"].as_array().unwrap().is_empty())
    );
}

#[tokio::test]
async fn with_node_the_answer_is_the_agents_own_at_the_detail_asked() {
    let (gateway, agents) = fleet(false);
    for (i, _) in Scenario::ALL.iter().enumerate() {
        for (tool, args, agent_args) in [
            ("get_gpu_health", json!({}), json!({})),
            (
                "get_gpu_health",
                json!({"detail": "summary"}),
                json!({"detail": "summary"}),
            ),
            (
                "get_gpu_health",
                json!({"detail": "problems", "min_verdict": "degraded"}),
                json!({"detail": "problems", "min_verdict": "degraded"}),
            ),
            (
                "get_gpu_health",
                json!({"min_verdict": "critical"}),
                json!({"detail": "problems", "min_verdict": "critical"}),
            ),
            (
                "analyze_xid_errors",
                json!({"detail": "problems"}),
                json!({"detail": "summary"}),
            ),
            ("analyze_xid_errors", json!({"detail": "full"}), json!({})),
        ] {
            let mut with_node = args.clone();
            with_node["node"] = json!(node(i));
            let got = call(&gateway, tool, &with_node).await;
            let want = agents.agents[i]
                .call(
                    tool,
                    agent_args.as_object().cloned(),
                    CallContext::default(),
                )
                .await
                .unwrap();
            assert_eq!(got.is_error, want.is_error, "{tool} {args} on {}", node(i));
            let got = got.structured_content.unwrap();
            assert_eq!(got["node"], node(i));
            assert_eq!(
                got["result"],
                want.structured_value().unwrap().into_owned(),
                "{tool} {args} on {}",
                node(i)
            );
        }
    }
}
