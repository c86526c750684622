//! The catalog over a fake directory and transport.
use super::*;
use crate::aggregate::result_text;
use gpu_mcp_k8s::{AgentEndpoint, NodeError, NodeTransport, RouterConfig};
use gpu_mcp_protocol::{ErrorObject, Response};
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use std::time::Duration;

/// What a fake node does with a request.
#[derive(Clone)]
enum Behaviour {
    /// Answers with `gpus` verdicts.
    Gpus(Vec<&'static str>),
    /// Answers a tool error.
    ToolError(&'static str),
    /// Answers a JSON-RPC error.
    RpcError(i64, &'static str),
    /// Never answers.
    Hang,
    /// Connection refused.
    Refuse,
}

struct FakeDirectory(Vec<AgentEndpoint>);

impl NodeDirectory for FakeDirectory {
    fn nodes(&self) -> Vec<AgentEndpoint> {
        self.0.clone()
    }
    fn node(&self, name: &str) -> Option<AgentEndpoint> {
        self.0.iter().find(|e| e.node_name == name).cloned()
    }
    fn is_synced(&self) -> bool {
        true
    }
}

#[derive(Default)]
struct FakeTransport {
    behaviours: Vec<(String, Behaviour)>,
    seen: Mutex<Vec<(String, Value)>>,
}

impl NodeTransport for FakeTransport {
    fn send<'a>(
        &'a self,
        target: &'a AgentEndpoint,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<Response, NodeError>> {
        async move {
            // The request as the agent reads it off the wire.
            let id = request.id.clone();
            let request = &serde_json::to_value(request).unwrap();
            self.seen
                .lock()
                .push((target.node_name.clone(), request.clone()));
            let behaviour = self
                .behaviours
                .iter()
                .find(|(n, _)| *n == target.node_name)
                .map(|(_, b)| b.clone())
                .unwrap_or(Behaviour::Refuse);
            match behaviour {
                Behaviour::Gpus(verdicts) => {
                    let gpus: Vec<Value> = verdicts
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            json!({"index": i, "name": "NVIDIA H100 80GB HBM3",
                                   "verdict": v, "node_seen": target.node_name})
                        })
                        .collect();
                    Ok(Response::success(id, json!({
                        "content": [{"type": "text", "text": "gpus"}],
                        "structuredContent": {"gpus": gpus, "args": request["params"]["arguments"]}})))
                }
                Behaviour::ToolError(m) => Ok(Response::success(id, json!({
                    "content": [{"type": "text", "text": m}], "isError": true}))),
                Behaviour::RpcError(code, m) => Ok(Response::error(
                    Some(id),
                    ErrorObject {
                        code,
                        message: m.into(),
                        data: None,
                    },
                )),
                Behaviour::Hang => futures::future::pending().await,
                Behaviour::Refuse => Err(NodeError::Connect {
                    url: "http://127.0.0.1:1/mcp".into(),
                    message: "connection refused".into(),
                }),
            }
        }
        .boxed()
    }
}

fn endpoint(name: &str, ready: bool) -> AgentEndpoint {
    let mut e = AgentEndpoint::from_url(name, format!("http://127.0.0.1:1/{name}"));
    e.pod_name = format!("agent-{name}");
    e.ready = ready;
    e
}

fn agent_tools() -> Vec<Tool> {
    ["get_gpu_inventory", "get_gpu_health", "analyze_xid_errors"]
        .iter()
        .map(|n| Tool {
            name: (*n).into(),
            title: None,
            description: format!("{n} of this node."),
            input_schema: json!({"type": "object", "properties": {
                "include_processes": {"type": "boolean"}}})
            .as_object()
            .cloned()
            .unwrap(),
            output_schema: json!({"type": "object", "properties": {"gpus": {"type": "array"}},
                "required": ["gpus"]})
            .as_object()
            .cloned(),
            annotations: None,
        })
        .collect()
}

struct Fixture {
    catalog: ClusterCatalog,
    transport: Arc<FakeTransport>,
    registry: Registry,
}

fn fixture(nodes: Vec<(&str, bool, Behaviour)>) -> Fixture {
    let directory = Arc::new(FakeDirectory(
        nodes.iter().map(|(n, r, _)| endpoint(n, *r)).collect(),
    ));
    let transport = Arc::new(FakeTransport {
        behaviours: nodes
            .into_iter()
            .map(|(n, _, b)| (n.to_owned(), b))
            .collect(),
        seen: Mutex::default(),
    });
    let router = Arc::new(Router::new(
        directory,
        transport.clone(),
        RouterConfig {
            concurrency: 4,
            node_timeout: Duration::from_secs(10),
            circuit_breaker: None,
        },
    ));
    let mut registry = Registry::default();
    let metrics = ClusterMetrics::register(&mut registry);
    Fixture {
        catalog: ClusterCatalog::new(router, agent_tools()).with_metrics(metrics),
        transport,
        registry,
    }
}

fn three_nodes() -> Fixture {
    fixture(vec![
        (
            "gpu-node-1",
            true,
            Behaviour::Gpus(vec!["healthy", "healthy"]),
        ),
        ("gpu-node-2", true, Behaviour::Gpus(vec!["critical"])),
        ("gpu-node-3", true, Behaviour::Refuse),
    ])
}

async fn call(f: &Fixture, tool: &str, args: Value) -> CallToolResult {
    f.catalog
        .call(tool, args.as_object().cloned(), CallContext::default())
        .await
        .unwrap()
}

fn text(r: &CallToolResult) -> String {
    result_text(r)
}

fn seen(f: &Fixture) -> Vec<(String, Value)> {
    f.transport.seen.lock().clone()
}

#[test]
fn definitions_are_the_agent_tools_plus_list_gpu_nodes() {
    let f = three_nodes();
    let tools = f.catalog.tools();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "list_gpu_nodes",
            "get_gpu_inventory",
            "get_gpu_health",
            "analyze_xid_errors"
        ]
    );
    for t in &tools[1..] {
        assert_eq!(t.input_schema["properties"]["node"]["type"], "string");
    }
}

#[tokio::test]
async fn unknown_tool_is_a_call_error() {
    let f = three_nodes();
    let err = f
        .catalog
        .call("get_gpu_temperature", None, CallContext::default())
        .await
        .unwrap_err();
    assert_eq!(err, CallError::UnknownTool("get_gpu_temperature".into()));
    assert!(seen(&f).is_empty());
}

#[tokio::test]
async fn node_routes_to_that_node_only_and_tags_the_result() {
    let f = three_nodes();
    let r = call(
        &f,
        "get_gpu_health",
        json!({"node": "gpu-node-2", "include_processes": true}),
    )
    .await;
    assert!(!r.failed(), "{}", text(&r));
    let s = r.structured_content.clone().unwrap();
    assert_eq!(s["node"], "gpu-node-2");
    assert_eq!(s["pod"], "agent-gpu-node-2");
    assert_eq!(s["result"]["gpus"][0]["node_seen"], "gpu-node-2");
    assert_eq!(s["result"]["gpus"].as_array().unwrap().len(), 1);
    // `node` is the gateway's; the agent gets the rest.
    assert_eq!(s["result"]["args"], json!({"include_processes": true}));
    let seen = seen(&f);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "gpu-node-2");
    assert_eq!(seen[0].1["method"], "tools/call");
    assert_eq!(seen[0].1["params"]["name"], "get_gpu_health");
    // The text block is the same JSON, for clients that ignore structured content.
    assert_eq!(serde_json::from_str::<Value>(&text(&r)).unwrap(), s);
    let schema = Value::Object(f.catalog.tools()[2].output_schema.clone().unwrap());
    assert!(jsonschema::is_valid(&schema, &s));
}

#[tokio::test]
async fn bad_node_values_are_refused_before_routing() {
    let f = three_nodes();
    for bad in [
        json!(""),
        json!("a".repeat(300)),
        json!("GPU-Node-1"),
        json!("../gpu-node-1"),
        json!("gpu-node-1;reboot"),
        json!("gpu-node-1\nX-Injected: 1"),
        json!(42),
        json!(["gpu-node-1"]),
    ] {
        let r = call(&f, "get_gpu_inventory", json!({"node": bad})).await;
        assert!(r.failed(), "{bad}");
        let t = text(&r);
        assert!(t.contains("`node`"), "{t}");
        assert!(
            t.contains("Known nodes: gpu-node-1, gpu-node-2, gpu-node-3"),
            "{t}"
        );
        assert!(!t.contains("X-Injected: 1\n"), "{t}");
    }
    let r = call(&f, "get_gpu_inventory", json!({"node": "GPU-Node-1"})).await;
    assert!(
        text(&r).contains("Did you mean \"gpu-node-1\"?"),
        "{}",
        text(&r)
    );
    assert!(seen(&f).is_empty(), "nothing may be routed");
}

#[tokio::test]
async fn unknown_and_not_ready_nodes_list_the_known_ones() {
    let f = fixture(vec![
        ("gpu-node-1", true, Behaviour::Gpus(vec!["healthy"])),
        ("gpu-node-2", false, Behaviour::Gpus(vec!["healthy"])),
    ]);
    let r = call(&f, "get_gpu_health", json!({"node": "gpu-node-7"})).await;
    assert!(r.failed());
    let t = text(&r);
    assert!(t.contains("Unknown node \"gpu-node-7\""), "{t}");
    assert!(t.contains("Known nodes: gpu-node-1, gpu-node-2."), "{t}");
    assert!(t.contains("Did you mean \"gpu-node-1\"?"), "{t}");
    let r = call(&f, "get_gpu_health", json!({"node": "gpu-node-2"})).await;
    assert!(r.failed());
    assert!(text(&r).contains("not ready"), "{}", text(&r));
    assert!(seen(&f).is_empty());
}

#[tokio::test]
async fn agent_errors_keep_their_is_error_and_name_the_node() {
    let f = fixture(vec![
        (
            "a",
            true,
            Behaviour::ToolError("NVML unavailable: libnvidia-ml.so.1 missing"),
        ),
        (
            "b",
            true,
            Behaviour::RpcError(-32602, "unknown argument `x`"),
        ),
        ("c", true, Behaviour::Refuse),
    ]);
    let r = call(&f, "get_gpu_health", json!({"node": "a"})).await;
    assert!(r.failed());
    assert!(
        text(&r).starts_with("node a (pod agent-a): \"NVML unavailable"),
        "{}",
        text(&r)
    );
    let r = call(&f, "get_gpu_health", json!({"node": "b"})).await;
    assert!(r.failed());
    assert!(text(&r).contains("-32602"), "{}", text(&r));
    let r = call(&f, "get_gpu_health", json!({"node": "c"})).await;
    assert!(r.failed());
    assert!(text(&r).contains("connection refused"), "{}", text(&r));
}

#[tokio::test]
async fn fan_out_partial_failure_is_a_success_naming_the_failed_node() {
    let f = three_nodes();
    // The default answer: the totals, the sick node in detail, the failed one named.
    let r = call(&f, "get_gpu_health", json!({})).await;
    assert!(!r.failed(), "{}", text(&r));
    let s = r.structured_content.clone().unwrap();
    assert_eq!(s["detail"], "problems");
    let problems = s["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{s}");
    assert_eq!(problems[0]["verdict"], "critical");
    assert_eq!(s["failures"][0]["node"], "gpu-node-3");
    assert_eq!(s["failures"][0]["kind"], "unreachable");
    assert_eq!(s["omitted"]["healthy_nodes"], 1);
    assert!(s.get("nodes").is_none(), "{s}");
    let words = text(&r);
    assert!(words.starts_with("1 of 3 nodes need attention"), "{words}");
    assert!(words.contains("gpu-node-3 (unreachable)"), "{words}");
    assert!(
        !words.trim_start().starts_with('{'),
        "the text block is words"
    );
    let schema = Value::Object(f.catalog.tools()[2].output_schema.clone().unwrap());
    assert!(jsonschema::is_valid(&schema, &s), "{s}");

    let r = call(&f, "get_gpu_health", json!({"detail": "full"})).await;
    assert!(!r.failed(), "{}", text(&r));
    let s = r.structured_content.clone().unwrap();
    let summary = &s["summary"];
    assert_eq!(summary["nodes_total"], 3);
    assert_eq!(summary["nodes_ok"], 2);
    assert_eq!(summary["nodes_failed"], 1);
    assert_eq!(summary["failed_nodes"], json!(["gpu-node-3"]));
    assert_eq!(
        summary["gpus_by_verdict"],
        json!({"critical": 1, "healthy": 2})
    );
    assert_eq!(s["nodes"][2]["error"]["kind"], "unreachable");
    assert_eq!(s["nodes"][0]["result"]["gpus"].as_array().unwrap().len(), 2);
    let schema = Value::Object(f.catalog.tools()[2].output_schema.clone().unwrap());
    assert!(jsonschema::is_valid(&schema, &s));

    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &f.registry).unwrap();
    assert!(
        out.contains(r#"gateway_node_calls_total{node="gpu-node-3",tool="get_gpu_health",outcome="unreachable"} 2"#),
        "{out}"
    );
    assert!(out.contains("gateway_fan_out_nodes_sum 6"), "{out}");
}

#[tokio::test]
async fn fan_out_with_every_node_failing_is_an_error() {
    let f = fixture(vec![
        ("a", true, Behaviour::Refuse),
        ("b", false, Behaviour::Gpus(vec!["healthy"])),
    ]);
    let r = call(&f, "get_gpu_inventory", json!({})).await;
    assert!(r.failed());
    let t = text(&r);
    assert!(t.starts_with("All 2 nodes failed"), "{t}");
    assert!(t.contains("- b (not_ready)"), "{t}");
    let s = r.structured_content.unwrap();
    assert_eq!(s["summary"]["nodes_not_ready"], 1);
    assert_eq!(s["summary"]["failed_nodes"], json!(["a", "b"]));
}

#[tokio::test]
async fn agent_arguments_invalid_on_every_node_are_refused_once_before_any_fan_out() {
    let f = three_nodes();
    for (bad, words) in [
        (json!({"gpu_index": "two"}), "Invalid argument `gpu_index`"),
        (json!({"gpu_index": -1}), "Invalid argument `gpu_index`"),
        (json!({"bogus": 1}), "unknown field `bogus`"),
    ] {
        let r = call(&f, "get_gpu_health", bad.clone()).await;
        assert!(r.failed(), "{bad}");
        let t = text(&r);
        assert_eq!(t.matches(words).count(), 1, "{bad}: {t}");
        assert!(t.contains("Nothing was sent to any node."), "{t}");
    }
    assert!(seen(&f).is_empty(), "nothing may be routed");
    // Valid agent arguments still go to every node.
    let r = call(&f, "get_gpu_health", json!({"xid_since": "2h"})).await;
    assert!(!r.failed(), "{}", text(&r));
    assert_eq!(seen(&f).len(), 3);
}

#[tokio::test]
async fn one_refusal_shared_by_every_node_is_said_once() {
    let refusal = "Invalid argument `gpu_index`: GPU 99 does not exist; this node has GPUs 0 to 7.";
    let f = fixture(vec![
        ("a", true, Behaviour::ToolError(refusal)),
        ("b", true, Behaviour::ToolError(refusal)),
        ("c", true, Behaviour::ToolError(refusal)),
    ]);
    let r = call(&f, "get_gpu_health", json!({"gpu_index": 99})).await;
    assert!(r.failed());
    let t = r.content[0].as_text().unwrap_or_default().to_owned();
    assert_eq!(t.matches("GPU 99 does not exist").count(), 1, "{t}");
    assert!(
        t.starts_with("All 3 nodes refused get_gpu_health with the same answer"),
        "{t}"
    );
}

#[tokio::test]
async fn fan_out_without_nodes_is_an_error() {
    let f = fixture(vec![]);
    let r = call(&f, "get_gpu_health", json!({})).await;
    assert!(r.failed());
    assert!(text(&r).contains("No GPU nodes are known"), "{}", text(&r));
}

#[tokio::test(start_paused = true)]
async fn list_gpu_nodes_reports_gpus_health_and_reasons() {
    let f = fixture(vec![
        (
            "gpu-node-1",
            true,
            Behaviour::Gpus(vec!["healthy", "warning"]),
        ),
        ("gpu-node-2", true, Behaviour::Hang),
        ("gpu-node-3", false, Behaviour::Gpus(vec!["healthy"])),
    ]);
    let r = call(&f, "list_gpu_nodes", json!({})).await;
    assert!(!r.failed(), "{}", text(&r));
    let s = r.structured_content.unwrap();
    assert_eq!(s["status"], "degraded");
    assert_eq!(s["node_count"], 3);
    let n = &s["nodes"];
    assert_eq!(n[0]["name"], "gpu-node-1");
    assert_eq!(n[0]["pod_name"], "agent-gpu-node-1");
    assert_eq!(n[0]["ready"], true);
    assert_eq!(n[0]["gpu_count"], 2);
    assert_eq!(n[0]["gpu_models"], json!(["NVIDIA H100 80GB HBM3"]));
    assert_eq!(n[0]["health"], "warning");
    assert_eq!(n[1]["error"]["kind"], "timeout");
    assert_eq!(n[2]["ready"], false);
    assert_eq!(n[2]["error"]["kind"], "not_ready");
    let schema = Value::Object(f.catalog.tools()[0].output_schema.clone().unwrap());
    assert!(jsonschema::is_valid(&schema, &s));

    let r = call(&f, "list_gpu_nodes", json!({"node": "gpu-node-1"})).await;
    assert!(r.failed());
    assert!(text(&r).contains("`node`"), "{}", text(&r));
}

#[tokio::test]
async fn a_cancelled_call_stops_waiting() {
    let f = fixture(vec![("a", true, Behaviour::Hang)]);
    let ctx = CallContext::default();
    ctx.cancel.cancel();
    let r = f.catalog.call("get_gpu_health", None, ctx).await.unwrap();
    assert!(r.failed());
    assert!(text(&r).contains("cancelled"));
}

#[test]
fn every_gateway_tool_belongs_to_a_toolset() {
    let tools = gateway_tools(gpu_mcp_model::gpu_tool_definitions())
        .into_iter()
        .chain(kube_tools());
    for t in tools {
        assert!(
            gpu_mcp_model::toolsets::Toolset::of(&t.name).is_some(),
            "{} has no toolset",
            t.name
        );
    }
}
