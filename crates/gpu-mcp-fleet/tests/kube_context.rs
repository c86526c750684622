#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The Kubernetes-context tools through the gateway's catalog: `describe_gpu_node` and
//! `get_pod_gpu_allocation` over a cluster cache of 10 to 5,000 GPU nodes with eight GPU pods
//! each, and agents of which some serve `get_gpu_processes` and some do not.
//! Answers validate against their output schemas, stay within the answer bounds at any size,
//! and pages walk every pod exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use gpu_mcp_fleet::ClusterCatalog;
use gpu_mcp_k8s::{
    AgentEndpoint, ClusterCache, Condition, ContainerFacts, GPU_RESOURCE, GpuPod, NodeDirectory,
    NodeError, NodeFacts, NodeTransport, Router, RouterConfig, Taint,
};
use gpu_mcp_model::gpu_tool_definitions;
use gpu_mcp_protocol::{CallToolResult, Request, Response, Tool};
use gpu_mcp_service::{CallContext, ToolCatalog};
use serde_json::{Value, json};

const MAX_STRUCTURED: usize = 24 * 1024;
const MAX_TEXT: usize = 16 * 1024;

fn name(i: usize) -> String {
    format!("gpu-node-{i:05}")
}

/// Node 3 has a critical GPU 3; even nodes serve `get_gpu_processes`, odd ones do not.
fn serves_processes(i: usize) -> bool {
    i.is_multiple_of(2)
}

struct Directory(Vec<AgentEndpoint>);

impl NodeDirectory for Directory {
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
struct Agents {
    tool_lists: AtomicUsize,
    process_calls: AtomicUsize,
}

fn health(i: usize) -> Value {
    let sick = i == 3;
    let gpus: Vec<Value> = (0..8)
        .map(|g| {
            let bad = sick && g == 3;
            json!({"index": g, "verdict": if bad {"critical"} else {"healthy"},
                "uuid": format!("GPU-{i:05}-{g}"), "name": "NVIDIA H100 80GB HBM3",
                "reasons": if bad { json!([{"check": "xid", "severity": "critical",
                    "summary": "Xid 79: the GPU has fallen off the bus", "observed": "Xid 79",
                    "threshold": "any", "action": "Drain the node and reboot it."}]) } else { json!([]) },
                "notes": [], "not_checked": []})
        })
        .collect();
    json!({"verdict": if sick {"critical"} else {"healthy"}, "summary": "s", "node": name(i),
        "backend": "mock", "counts": {"healthy": if sick {7} else {8}, "warning": 0,
        "degraded": 0, "critical": u32::from(sick)}, "xid_since": "2026-12-01T00:00:00Z",
        "node_findings": [], "gpus": gpus})
}

/// The mock fleet's attribution: GPU `g` of node `N` to `ml-training/{N}-job-{g}/worker`.
fn processes(i: usize, args: &Value) -> Value {
    let node = name(i);
    let allocations: Vec<Value> = (0..8)
        .map(|g| {
            json!({"device_uuid": format!("GPU-{i:05}-{g}"), "gpu_index": g,
            "verdict": if i == 3 && g == 3 {"critical"} else {"healthy"},
            "holders": [{"namespace": "ml-training", "pod": format!("{node}-job-{g}"),
                         "container": "worker"}]})
        })
        .filter(|a| {
            args.get("pod")
                .and_then(Value::as_str)
                .is_none_or(|p| a["holders"][0]["pod"] == p)
        })
        .collect();
    json!({"headline": "h", "node": node, "process_count": 0, "processes_omitted": 0,
        "pods_by_namespace": {}, "attribution": [], "gpus": [], "allocations": allocations})
}

impl NodeTransport for Agents {
    fn send<'a>(
        &'a self,
        target: &'a AgentEndpoint,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<Response, NodeError>> {
        async move {
            // The request as the agent reads it off the wire.
            let id = request.id.clone();
            let request = &serde_json::to_value(request).unwrap();
            let i: usize = target.node_name["gpu-node-".len()..].parse().unwrap();
            if request["method"] == "tools/list" {
                self.tool_lists.fetch_add(1, Ordering::Relaxed);
                let mut tools = vec![json!({"name": "get_gpu_health"})];
                if serves_processes(i) {
                    tools.push(json!({"name": "get_gpu_processes"}));
                }
                return Ok(Response::success(id, json!({"tools": tools})));
            }
            let structured = match request["params"]["name"].as_str().unwrap() {
                "get_gpu_health" => health(i),
                "analyze_xid_errors" => {
                    // Nodes 2 and 3: Xid 79 on GPU 3 during the pods' run.
                    let groups = if i == 2 || i == 3 {
                        json!([{"gpu_index": 3, "xid": 79, "known": true,
                            "mnemonic": "GPU_HAS_FALLEN_OFF_THE_BUS",
                            "name": "GPU has fallen off the bus", "category": "hardware",
                            "severity": "critical", "application_error": false,
                            "action": "Drain the node and reboot it.", "count": 1,
                            "first_seen": "2026-12-02T10:00:00Z",
                            "last_seen": "2026-12-02T10:00:00Z", "sources": ["kernel_log"],
                            "last_message": "NVRM: Xid 79"}])
                    } else {
                        json!([])
                    };
                    assert_eq!(
                        request["params"]["arguments"]["since"], "2026-12-02T09:00:00Z",
                        "the window starts with the pod"
                    );
                    json!({"summary": "s", "node": name(i), "total_events": 0,
                        "returned_events": 0, "truncated": false, "groups": groups, "events": []})
                }
                "get_gpu_processes" => {
                    assert!(serves_processes(i), "asked an agent that does not list it");
                    self.process_calls.fetch_add(1, Ordering::Relaxed);
                    processes(i, &request["params"]["arguments"])
                }
                other => panic!("unexpected tool {other}"),
            };
            Ok(Response::success(
                id,
                json!({
                "content": [{"type": "text", "text": "words"}], "structuredContent": structured}),
            ))
        }
        .boxed()
    }
}

fn node_facts(i: usize) -> NodeFacts {
    NodeFacts {
        name: name(i),
        gpu_labels: BTreeMap::from([
            (
                "nvidia.com/gpu.product".into(),
                "NVIDIA-H100-80GB-HBM3".into(),
            ),
            ("nvidia.com/gpu.count".into(), "8".into()),
        ]),
        taints: if i == 3 {
            vec![Taint {
                key: "nvidia.com/gpu-unhealthy".into(),
                value: Some("xid-79".into()),
                effect: "NoSchedule".into(),
            }]
        } else {
            Vec::new()
        },
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: Some("KubeletReady".into()),
            message: None,
        }],
        unschedulable: i == 4,
        capacity: BTreeMap::from([(GPU_RESOURCE.into(), 8)]),
        allocatable: BTreeMap::from([(GPU_RESOURCE.into(), 8)]),
    }
}

fn pods_of(i: usize) -> Vec<GpuPod> {
    (0..8)
        .map(|g| GpuPod {
            namespace: "ml-training".into(),
            name: format!("{}-job-{g}", name(i)),
            node: Some(name(i)),
            phase: if g == 7 { "Succeeded" } else { "Running" }.into(),
            gpus: BTreeMap::from([(GPU_RESOURCE.into(), 1)]),
            started: "2026-12-02T09:00:00Z".parse().ok(),
            containers: vec![ContainerFacts {
                name: "worker".into(),
                gpus: BTreeMap::from([(GPU_RESOURCE.into(), 1)]),
                state: if g == 3 { "terminated" } else { "running" }.into(),
                reason: (g == 3).then(|| "Error".to_owned()),
                exit_code: (g == 3).then_some(139),
                ..ContainerFacts::default()
            }],
            ..GpuPod::default()
        })
        .collect()
}

struct Fixture {
    catalog: ClusterCatalog,
    agents: Arc<Agents>,
}

fn cluster(n: usize) -> Fixture {
    let endpoints = (0..n)
        .map(|i| {
            let mut e = AgentEndpoint::from_url(name(i), format!("http://127.0.0.1:9/{i}"));
            e.pod_name = format!("agent-{i}");
            e
        })
        .collect();
    let agents = Arc::new(Agents::default());
    let router = Router::new(
        Arc::new(Directory(endpoints)),
        agents.clone(),
        RouterConfig {
            concurrency: 64,
            node_timeout: Duration::from_secs(5),
            circuit_breaker: None,
        },
    );
    let cache = ClusterCache::fixed(
        (0..n).map(node_facts).collect(),
        (0..n).flat_map(pods_of).collect(),
    );
    let catalog = ClusterCatalog::new(Arc::new(router), gpu_tool_definitions())
        .with_cluster_context(Arc::new(cache));
    Fixture { catalog, agents }
}

async fn call(c: &ClusterCatalog, tool: &str, args: Value) -> CallToolResult {
    c.call(tool, args.as_object().cloned(), CallContext::default())
        .await
        .unwrap()
}

fn tool(c: &ClusterCatalog, name: &str) -> Tool {
    c.tools().into_iter().find(|t| t.name == name).unwrap()
}

/// Checks the answer against the tool's output schema and the bounds; returns its parts.
fn checked(c: &ClusterCatalog, name: &str, r: &CallToolResult) -> (Value, String) {
    assert!(!r.failed(), "{name}: {:?}", r.content);
    let schema = Value::Object(tool(c, name).output_schema.unwrap());
    let validator = jsonschema::validator_for(&schema).unwrap();
    let s = r.structured_content.clone().unwrap();
    let errors: Vec<String> = validator.iter_errors(&s).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}");
    let text = r.content[0].as_text().unwrap().to_owned();
    let size = serde_json::to_vec(&s).unwrap().len();
    eprintln!(
        "{name}: {size} bytes structured, {} bytes of text",
        text.len()
    );
    assert!(size <= MAX_STRUCTURED, "{name}: {size} bytes structured");
    assert!(
        text.len() <= MAX_TEXT,
        "{name}: {} bytes of text",
        text.len()
    );
    (s, text)
}

#[tokio::test]
async fn the_tools_are_listed_with_portable_schemas() {
    let f = cluster(2);
    for name in [
        "describe_gpu_node",
        "get_pod_gpu_allocation",
        "explain_pod_gpu_failure",
    ] {
        let t = tool(&f.catalog, name);
        let input = serde_json::to_string(&t.input_schema).unwrap();
        assert!(
            !input.contains("null") && !input.contains("\"format\""),
            "{input}"
        );
        assert_eq!(t.input_schema["additionalProperties"], false);
        assert!(t.description.len() > 200, "{name} steers");
        assert_eq!(t.annotations.unwrap().read_only_hint, Some(true));
    }
    assert_eq!(
        tool(&f.catalog, "describe_gpu_node").input_schema["required"],
        json!(["node"])
    );
    // Without the cluster context the tools do not exist.
    let plain = ClusterCatalog::new(
        Arc::new(Router::new(
            Arc::new(Directory(Vec::new())),
            Arc::new(Agents::default()),
            RouterConfig::default(),
        )),
        gpu_tool_definitions(),
    );
    assert!(plain.tools().iter().all(|t| t.name != "describe_gpu_node"));
}

#[tokio::test]
async fn from_a_failed_pod_to_its_gpu_its_verdict_and_the_drain_command() {
    let f = cluster(10);
    let pod = "gpu-node-00003-job-3";
    let r = call(
        &f.catalog,
        "get_pod_gpu_allocation",
        json!({"namespace": "ml-training", "pod": pod}),
    )
    .await;
    let (s, text) = checked(&f.catalog, "get_pod_gpu_allocation", &r);
    // Node 3 does not serve get_gpu_processes: the answer says so instead of guessing.
    assert_eq!(s["total"], 1);
    assert_eq!(s["pods"][0]["node"], "gpu-node-00003");
    assert_eq!(s["pods"][0]["devices_known"], false);
    assert!(
        s["pods"][0]["trouble"]
            .as_str()
            .unwrap()
            .contains("exit code 139")
    );
    assert!(
        s["device_notes"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("does not serve get_gpu_processes"),
        "{s}"
    );
    assert!(text.contains("exit code 139"), "{text}");

    let r = call(
        &f.catalog,
        "describe_gpu_node",
        json!({"node": "gpu-node-00003"}),
    )
    .await;
    let (s, text) = checked(&f.catalog, "describe_gpu_node", &r);
    assert_eq!(
        s["gpus"]["requested"][GPU_RESOURCE], 7,
        "the succeeded pod holds none"
    );
    assert_eq!(s["gpus"]["free"][GPU_RESOURCE], 1);
    assert_eq!(s["taints"][0]["key"], "nvidia.com/gpu-unhealthy");
    assert_eq!(s["agent"]["verdict"], "critical");
    assert_eq!(s["agent"]["sick_gpus"][0]["index"], 3);
    assert_eq!(s["commands"][0]["command"], "kubectl cordon gpu-node-00003");
    assert!(
        s["commands"][1]["command"]
            .as_str()
            .unwrap()
            .starts_with("kubectl drain gpu-node-00003 --ignore-daemonsets --delete-emptydir-data")
    );
    assert_eq!(s["gpu_labels"]["nvidia.com/gpu.count"], "8");
    assert!(text.contains("kubectl drain gpu-node-00003"), "{text}");

    // On a node whose agent serves get_gpu_processes the pod's GPU and verdict are joined.
    let r = call(
        &f.catalog,
        "get_pod_gpu_allocation",
        json!({"pod": "gpu-node-00002-job-5"}),
    )
    .await;
    let (s, _) = checked(&f.catalog, "get_pod_gpu_allocation", &r);
    assert_eq!(s["pods"][0]["devices_known"], true);
    assert_eq!(
        s["pods"][0]["devices"],
        json!([{"uuid": "GPU-00002-5", "gpu_index": 5, "verdict": "healthy", "container": "worker"}])
    );
}

#[tokio::test]
async fn refusals_are_said_once_and_name_what_is_known() {
    let f = cluster(10);
    let r = call(
        &f.catalog,
        "describe_gpu_node",
        json!({"node": "gpu-node-0003"}),
    )
    .await;
    assert!(r.failed());
    let message = r.content[0].as_text().unwrap();
    assert!(
        message.contains("Did you mean \"gpu-node-00003\""),
        "{message}"
    );
    for (args, needle) in [
        (json!({}), "node"),
        (json!({"node": "Bad Node"}), "node"),
        (json!({"node": "gpu-node-00001", "extra": 1}), "extra"),
    ] {
        let r = call(&f.catalog, "describe_gpu_node", args).await;
        assert!(r.failed());
        assert!(r.content[0].as_text().unwrap().contains(needle));
    }
    let r = call(&f.catalog, "get_pod_gpu_allocation", json!({"limit": 201})).await;
    assert!(r.failed());
    let r = call(
        &f.catalog,
        "get_pod_gpu_allocation",
        json!({"pod": "nothing-here"}),
    )
    .await;
    let (s, _) = checked(&f.catalog, "get_pod_gpu_allocation", &r);
    assert_eq!(s["total"], 0);
    assert!(s["headline"].as_str().unwrap().contains("No pod named"));
    // A cordoned healthy node is offered the uncordon, nothing else.
    let r = call(
        &f.catalog,
        "describe_gpu_node",
        json!({"node": "gpu-node-00004"}),
    )
    .await;
    let (s, _) = checked(&f.catalog, "describe_gpu_node", &r);
    assert_eq!(s["cordoned"], true);
    assert_eq!(
        s["commands"],
        json!([{"purpose": s["commands"][0]["purpose"],
        "command": "kubectl uncordon gpu-node-00004"}])
    );
}

#[tokio::test]
async fn answers_stay_bounded_and_pages_walk_every_pod_once() {
    for n in [10, 100, 1_000, 5_000] {
        let f = cluster(n);
        let r = call(&f.catalog, "get_pod_gpu_allocation", json!({})).await;
        let (s, _) = checked(&f.catalog, "get_pod_gpu_allocation", &r);
        assert_eq!(s["total"], n * 8, "at {n} nodes");
        let r = call(&f.catalog, "get_pod_gpu_allocation", json!({"limit": 200})).await;
        checked(&f.catalog, "get_pod_gpu_allocation", &r);
        let r = call(
            &f.catalog,
            "describe_gpu_node",
            json!({"node": name(n / 2)}),
        )
        .await;
        checked(&f.catalog, "describe_gpu_node", &r);
    }

    let n = 1_000;
    let f = cluster(n);
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut args = json!({"limit": 200});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let r = call(&f.catalog, "get_pod_gpu_allocation", args).await;
        let (s, _) = checked(&f.catalog, "get_pod_gpu_allocation", &r);
        for p in s["pods"].as_array().unwrap() {
            let key = format!("{}/{}", p["namespace"], p["pod"]);
            assert!(seen.insert(key.clone()), "{key} twice");
            let serves = p["node"]
                .as_str()
                .is_some_and(|node| serves_processes(node["gpu-node-".len()..].parse().unwrap()));
            assert_eq!(p["devices_known"], serves, "{key}");
        }
        pages += 1;
        match s["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), n * 8);
    assert!(pages >= n * 8 / 200, "{pages} pages");
    // Each agent's tool list was asked once and remembered.
    assert_eq!(f.agents.tool_lists.load(Ordering::Relaxed), n);
    assert!(f.agents.process_calls.load(Ordering::Relaxed) >= n / 2);

    // One node's pods, with the node filter.
    let r = call(
        &f.catalog,
        "get_pod_gpu_allocation",
        json!({"node": "gpu-node-00010"}),
    )
    .await;
    let (s, _) = checked(&f.catalog, "get_pod_gpu_allocation", &r);
    assert_eq!(s["total"], 8);
    assert_eq!(s["pods"][7]["holds_gpus"], false);
}

#[tokio::test]
async fn a_hostile_node_description_stays_within_the_bounds() {
    let mut facts = node_facts(0);
    let noisy = "\u{1b}[31m\"\\".repeat(200);
    facts.gpu_labels = (0..200)
        .map(|i| (format!("nvidia.com/label-{i:040}"), "v".repeat(63)))
        .collect();
    facts.taints = (0..200)
        .map(|i| Taint {
            key: format!("example.com/{i:0200}"),
            value: Some("x".repeat(63)),
            effect: "NoSchedule".into(),
        })
        .collect();
    facts.conditions = (0..200)
        .map(|i| Condition {
            type_: format!("Problem{i}"),
            status: "True".into(),
            reason: Some("Bad".into()),
            message: Some(noisy.clone()),
        })
        .collect();
    let endpoints = vec![AgentEndpoint::from_url(name(0), "http://127.0.0.1:9/0")];
    let router = Router::new(
        Arc::new(Directory(endpoints)),
        Arc::new(Agents::default()),
        RouterConfig::default(),
    );
    let catalog = ClusterCatalog::new(Arc::new(router), gpu_tool_definitions())
        .with_cluster_context(Arc::new(ClusterCache::fixed(vec![facts], pods_of(0))));
    let r = call(&catalog, "describe_gpu_node", json!({"node": name(0)})).await;
    let (s, text) = checked(&catalog, "describe_gpu_node", &r);
    assert!(s["omitted"].as_u64().unwrap() > 0, "says what it left out");
    assert!(!text.contains('\u{1b}'));
}

#[tokio::test]
async fn a_failed_pod_is_blamed_on_its_gpu_only_on_evidence() {
    let f = cluster(10);
    let explain = |pod: &str| {
        call(
            &f.catalog,
            "explain_pod_gpu_failure",
            json!({"namespace": "ml-training", "pod": pod}),
        )
    };
    // Node 2's agent says the pod holds GPU 3, which reported Xid 79 during its run.
    let r = explain("gpu-node-00002-job-3").await;
    let (s, text) = checked(&f.catalog, "explain_pod_gpu_failure", &r);
    assert_eq!(s["conclusion"], "gpu_fault_likely", "{s}");
    assert_eq!(s["gpus_held"][0]["gpu_index"], 3);
    assert_eq!(s["xids"][0]["pod_held_it"], true);
    assert_eq!(s["containers"][0]["exit_code"], 139);
    assert!(text.contains("Xid 79"), "{text}");
    // Another pod on that node: the Xid was not on its GPU.
    let r = explain("gpu-node-00002-job-5").await;
    let (s, _) = checked(&f.catalog, "explain_pod_gpu_failure", &r);
    assert_eq!(s["conclusion"], "no_gpu_evidence", "{s}");
    assert_eq!(s["xids"][0]["pod_held_it"], false);
    // Node 3's agent does not say which GPU a pod holds: it cannot tell, and says why.
    let r = explain("gpu-node-00003-job-3").await;
    let (s, _) = checked(&f.catalog, "explain_pod_gpu_failure", &r);
    assert_eq!(s["conclusion"], "cannot_tell", "{s}");
    assert!(
        s["cannot_know"].to_string().contains("get_gpu_processes"),
        "{s}"
    );
    // A pod the gateway does not know is refused, naming why.
    let r = explain("nothing").await;
    assert!(r.failed());
    assert!(r.content[0].as_text().unwrap().contains("requests GPUs"));
}
