#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The gateway's default answers at 10 to 5,000 nodes stay within what an assistant can read,
//! name what needs attention and what did not answer, and page through everything else.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use gpu_mcp_fleet::ClusterCatalog;
use gpu_mcp_k8s::{AgentEndpoint, NodeDirectory, NodeError, NodeTransport, Router, RouterConfig};
use gpu_mcp_model::gpu_tool_definitions;
use gpu_mcp_protocol::{CallToolResult, ErrorObject, Request, Response};
use gpu_mcp_service::{CallContext, ToolCatalog};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// The bounds of a default answer.
const MAX_STRUCTURED: usize = 24 * 1024;
const MAX_TEXT: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Healthy,
    Warning,
    Critical,
    Unreachable,
    Hung,
}

/// Node `i` of a fleet of `n`: a few critical and warning nodes, a few unreachable, one hung.
fn kind_of(i: usize, n: usize) -> Kind {
    if i == n / 2 {
        Kind::Hung
    } else if i % 400 == 7 {
        Kind::Critical
    } else if i % 1000 == 11 {
        Kind::Warning
    } else if i % 700 == 3 {
        Kind::Unreachable
    } else {
        Kind::Healthy
    }
}

fn name(i: usize) -> String {
    format!("gpu-node-{i:05}")
}

fn gpu(node: usize, index: usize, verdict: &str, reasons: Value) -> Value {
    json!({"index": index, "verdict": verdict,
           "uuid": format!("GPU-{node:08x}-0000-4000-8000-{index:012x}"),
           "name": "NVIDIA H100 80GB HBM3", "pci_bus_id": format!("0000:{:02x}:00.0", 0x18 + index),
           "reasons": reasons, "notes": [], "not_checked": []})
}

/// What the agent of node `i` answers to `tool`, shaped as the agent's tools answer.
fn agent_answer(tool: &str, i: usize, kind: Kind) -> Value {
    let node = name(i);
    match tool {
        "get_gpu_health" => {
            let (verdict, sick) = match kind {
                Kind::Critical => (
                    "critical",
                    Some(json!([{"check": "xid", "severity": "critical",
                    "summary": "Xid 79: the GPU has fallen off the bus",
                    "observed": "Xid 79 at 2026-12-02T10:00:00Z", "threshold": "any",
                    "action": "Drain the node and reboot it; a GPU reset cannot recover Xid 79."}])),
                ),
                Kind::Warning => (
                    "warning",
                    Some(json!([{"check": "thermal", "severity": "warning",
                    "summary": "GPU temperature near its slowdown threshold",
                    "observed": "84 C", "threshold": "87 C (slowdown)",
                    "action": "Check the node's airflow and fan speeds."}])),
                ),
                _ => ("healthy", None),
            };
            let gpus: Vec<Value> = (0..8)
                .map(|g| match (&sick, g) {
                    (Some(r), 3) => gpu(i, g, verdict, r.clone()),
                    _ => gpu(i, g, "healthy", json!([])),
                })
                .collect();
            json!({"verdict": verdict, "summary": format!("{node}: {verdict}."), "node": node,
                   "backend": "mock",
                   "counts": {"healthy": if verdict == "healthy" { 8 } else { 7 },
                              "warning": u32::from(verdict == "warning"), "degraded": 0,
                              "critical": u32::from(verdict == "critical")},
                   "xid_since": "2026-12-01T10:00:00Z", "node_findings": [], "gpus": gpus})
        }
        "analyze_xid_errors" => {
            let groups = if kind == Kind::Critical {
                json!([{"gpu_index": 3, "xid": 79, "known": true, "mnemonic": "GPU_HAS_FALLEN_OFF_THE_BUS",
                        "name": "GPU has fallen off the bus", "category": "hardware",
                        "severity": "critical", "application_error": false,
                        "action": "Drain the node and reboot it.", "count": 2,
                        "first_seen": "2026-12-02T09:00:00Z", "last_seen": "2026-12-02T10:00:00Z",
                        "sources": ["kernel_log"], "last_message": "NVRM: Xid 79"}])
            } else {
                json!([])
            };
            let total = if kind == Kind::Critical { 2 } else { 0 };
            json!({"summary": format!("{total} Xid events."), "node": node, "total_events": total,
                   "returned_events": 0, "truncated": false, "groups": groups, "events": []})
        }
        "get_nvlink_topology" => topology_answer(&node, kind),
        "get_gpu_processes" => {
            let sick = match kind {
                Kind::Critical => "critical",
                Kind::Warning => "warning",
                _ => "healthy",
            };
            let verdict = |g: usize| if g == 3 { sick } else { "healthy" };
            let uuid = |g: usize| format!("GPU-{i:08x}-0000-4000-8000-{g:012x}");
            let pod = |g: usize| {
                json!({"namespace": "ml-training", "pod": format!("{node}-job-{g}"),
                       "container": "worker"})
            };
            let gpus: Vec<Value> = (0..8)
                .map(|g| {
                    json!({"index": g, "uuid": uuid(g), "verdict": verdict(g), "processes": [
                        {"pid": 40_000 + g, "name": "python3", "kind": "compute",
                         "used_memory_bytes": 60_000_000_000u64,
                         "owner": {"pod": pod(g), "sources": ["mock_fleet"]}}]})
                })
                .collect();
            let allocations: Vec<Value> = (0..8)
                .map(|g| {
                    json!({"device_uuid": uuid(g), "gpu_index": g, "verdict": verdict(g),
                           "holders": [pod(g)]})
                })
                .collect();
            json!({"headline": format!("8 processes on 8 GPUs of {node}."), "node": node,
                   "process_count": 8, "processes_omitted": 0,
                   "pods_by_namespace": {"ml-training": 8},
                   "attribution": [{"source": "mock_fleet", "state": "ok"}],
                   "gpus": gpus, "allocations": allocations})
        }
        _ => {
            let gpus: Vec<Value> = (0..8)
                .map(|g| {
                    json!({"index": g, "name": "NVIDIA H100 80GB HBM3",
                                "uuid": format!("GPU-{i:08x}-{g}"), "memory": {"total_mib": 81559}})
                })
                .collect();
            json!({"node": node, "driver_version": "580.95.05", "gpus": gpus})
        }
    }
}

/// An HGX H100's `get_nvlink_topology` answer: healthy, a replaying link (warning) or an
/// unregistered fabric (critical) on GPU 3.
fn topology_answer(node: &str, kind: Kind) -> Value {
    let (verdict, findings) = match kind {
        Kind::Critical => (
            "critical",
            json!([{"gpu": 3, "check": "fabric", "severity": "critical",
                "summary": "The fabric manager has not started registering this GPU with the NVSwitch fabric.",
                "observed": "fabric state not_started", "threshold": "completed",
                "action": "Start nvidia-fabricmanager and read its log."}]),
        ),
        Kind::Warning => (
            "warning",
            json!([{"gpu": 3, "check": "nvlink_errors", "severity": "warning",
                "summary": "NVLink link 3 is erroring now: new errors since the previous reading.",
                "observed": "link 3: 0 CRC, 57 replay, 0 recovery new", "threshold": "0 new",
                "action": "Drain the node, reset the GPUs and check the NVLink connection."}]),
        ),
        _ => ("healthy", json!([])),
    };
    let mut matrix = vec![
        "      GPU0  GPU1  GPU2  GPU3  GPU4  GPU5  GPU6  GPU7  CPU Affinity    NUMA Affinity"
            .to_owned(),
    ];
    for g in 0..8 {
        let cells: Vec<&str> = (0..8).map(|p| if p == g { "X" } else { "NV18" }).collect();
        let cpus = if g < 4 {
            "0-55,112-167    0"
        } else {
            "56-111,168-223  1"
        };
        matrix.push(format!("GPU{g}  {}  {cpus}", cells.join("  ")));
    }
    let gpus: Vec<Value> = (0..8)
        .map(|g| {
            json!({"index": g, "uuid": format!("GPU-{node}-{g}"), "pci_bus_id": "0000:18:00",
                   "numa_node": g / 4, "cpu_affinity": "0-55,112-167",
                   "nvlink": {"wired": 18, "up": 18, "down": 0, "disabled": 0, "remote": "NVSwitch"},
                   "fabric": {"state": "completed", "status": "success", "clique_id": 1}})
        })
        .collect();
    json!({"headline": format!("8 GPUs, NVSwitch, NV18 between every pair. Topology {verdict}."),
           "verdict": verdict, "node": node, "interconnect": "nvswitch", "findings": findings,
           "matrix": matrix, "p2p": [], "gpus": gpus})
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

/// Which arguments a stand-in agent knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// Answers in full whatever it is asked (what the other tests need).
    Full,
    /// Takes `detail` and `min_verdict` and lists what they ask for, as the agent does.
    Current,
    /// An agent from before `detail`: refuses it by name, as a tool error on even nodes and as a
    /// JSON-RPC error on odd ones.
    Old,
}

struct Agents {
    n: usize,
    /// Whether the hung node hangs (a timing run leaves it healthy).
    hang: bool,
    release: Release,
    /// The arguments of every call each node received.
    seen: Mutex<Vec<(usize, Value)>>,
    /// Bytes of the JSON-RPC responses the agents sent.
    sent: AtomicUsize,
}

/// `full` as an agent lists it under `arguments`' `detail` and `min_verdict`.
fn listed(tool: &str, mut full: Value, arguments: &Value) -> Value {
    let rank = |v: &Value| {
        ["healthy", "warning", "degraded", "critical"]
            .iter()
            .position(|w| v.as_str() == Some(*w))
            .unwrap_or(0)
    };
    let detail = arguments["detail"].as_str().unwrap_or("full");
    match (tool, detail) {
        ("get_gpu_health", "problems") => {
            let min = rank(&arguments["min_verdict"]).max(1);
            let keep = |list: &Value| -> Value {
                let kept = list.as_array().unwrap().iter();
                Value::Array(
                    kept.filter(|f| rank(&f["severity"]) >= min)
                        .cloned()
                        .collect(),
                )
            };
            let gpus: Vec<Value> = full["gpus"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|g| rank(&g["verdict"]) >= min)
                .map(|g| {
                    let mut g = g.clone();
                    g["reasons"] = keep(&g["reasons"]);
                    g
                })
                .collect();
            full["gpus"] = Value::Array(gpus);
            full["node_findings"] = keep(&full["node_findings"]);
            full["detail"] = json!("problems");
            full["min_verdict"] = json!(["healthy", "warning", "degraded", "critical"][min]);
        }
        ("get_gpu_health", "summary") => {
            full["gpus"] = json!([]);
            full["node_findings"] = json!([]);
            full["detail"] = json!("summary");
        }
        ("analyze_xid_errors", "summary") => {
            full["events"] = json!([]);
            full["returned_events"] = json!(0);
            if full["total_events"] != 0 {
                full["detail"] = json!("summary");
            }
        }
        _ => {}
    }
    full
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
            match kind_of(i, self.n) {
                Kind::Hung if self.hang => std::future::pending().await,
                Kind::Unreachable => Err(NodeError::Connect {
                    url: target.url.clone().unwrap_or_default(),
                    message: "connection refused".into(),
                }),
                kind => {
                    let tool = request["params"]["name"].as_str().unwrap();
                    let arguments = &request["params"]["arguments"];
                    // No arguments and an empty object read alike.
                    let received = match arguments {
                        Value::Object(o) if o.is_empty() => Value::Null,
                        other => other.clone(),
                    };
                    self.seen.lock().push((i, received));
                    let new_argument = ["detail", "min_verdict"]
                        .into_iter()
                        .find(|a| arguments.get(*a).is_some());
                    let response = match (self.release, new_argument) {
                        (Release::Old, Some(a)) if i.is_multiple_of(2) => Response::success(
                            id,
                            json!({"content": [{"type": "text", "text": format!(
                                "Invalid arguments: unknown field `{a}`, expected one of \
                                 `gpu_index`, `gpu_uuid`, `xid_since`")}],
                                   "isError": true}),
                        ),
                        (Release::Old, Some(a)) => Response::error(
                            Some(id),
                            ErrorObject {
                                code: -32602,
                                message: format!("unknown field `{a}`"),
                                data: None,
                            },
                        ),
                        (release, _) => {
                            let mut structured = agent_answer(tool, i, kind);
                            if release == Release::Current {
                                structured = listed(tool, structured, arguments);
                            }
                            Response::success(
                                id,
                                json!({
                                "content": [{"type": "text", "text": "words"}],
                                "structuredContent": structured}),
                            )
                        }
                    };
                    let bytes = serde_json::to_vec(&response).unwrap().len();
                    self.sent.fetch_add(bytes, Ordering::Relaxed);
                    Ok(response)
                }
            }
        }
        .boxed()
    }
}

fn fleet(n: usize) -> ClusterCatalog {
    fleet_of(n, true)
}

fn fleet_of(n: usize, hang: bool) -> ClusterCatalog {
    released(n, hang, Release::Full).0
}

/// A fleet of `n` agents of `release`, and the agents, to see what they received and sent.
fn released(n: usize, hang: bool, release: Release) -> (ClusterCatalog, Arc<Agents>) {
    let endpoints = (0..n)
        .map(|i| AgentEndpoint::from_url(name(i), format!("http://127.0.0.1:9/{i}")))
        .collect();
    let agents = Arc::new(Agents {
        n,
        hang,
        release,
        seen: Mutex::default(),
        sent: AtomicUsize::new(0),
    });
    let router = Router::new(
        Arc::new(Directory(endpoints)),
        agents.clone(),
        RouterConfig {
            concurrency: 64,
            node_timeout: Duration::from_secs(5),
            circuit_breaker: None,
        },
    );
    let catalog = ClusterCatalog::new(Arc::new(router), gpu_tool_definitions());
    (catalog, agents)
}

async fn call(c: &ClusterCatalog, tool: &str, args: Value) -> CallToolResult {
    c.call(tool, args.as_object().cloned(), CallContext::default())
        .await
        .unwrap()
}

fn sizes(r: &CallToolResult) -> (usize, usize) {
    let structured = serde_json::to_vec(r.structured_content.as_ref().unwrap())
        .unwrap()
        .len();
    let text: usize = r
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(str::len)
        .sum();
    (structured, text)
}

fn names_of(kind: Kind, n: usize) -> BTreeSet<String> {
    (0..n)
        .filter(|i| kind_of(*i, n) == kind)
        .map(name)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn default_answers_stay_small_and_count_every_node_at_any_size() {
    for n in [10, 100, 1_000, 5_000] {
        let c = fleet(n);
        let sick: BTreeSet<String> = names_of(Kind::Critical, n)
            .into_iter()
            .chain(names_of(Kind::Warning, n))
            .collect();
        let failed: BTreeSet<String> = names_of(Kind::Unreachable, n)
            .into_iter()
            .chain(names_of(Kind::Hung, n))
            .collect();
        for tool in [
            "get_gpu_health",
            "analyze_xid_errors",
            "get_gpu_inventory",
            "get_gpu_processes",
            "get_nvlink_topology",
            "list_gpu_nodes",
        ] {
            let r = call(&c, tool, json!({})).await;
            let (structured, text) = sizes(&r);
            assert!(
                structured <= MAX_STRUCTURED,
                "{tool} at {n} nodes: {structured} bytes structured"
            );
            assert!(
                text <= MAX_TEXT,
                "{tool} at {n} nodes: {text} bytes of text"
            );
            // A link to each detailed node's full answer, at most ten.
            let links = r.content.iter().filter_map(|c| c.link_uri()).count();
            assert!(links <= 10, "{tool} at {n}: {links} links");
            let s = r.structured_content.unwrap();
            let words = r.content[0].as_text().unwrap().to_owned();
            assert!(
                !words.trim_start().starts_with('{'),
                "{tool}: the text block is words"
            );
            let detailed = s["problems"].as_array().map_or(0, Vec::len);
            // Only the tools whose full answer is also a resource link to it.
            let has_resource = matches!(
                tool,
                "get_gpu_inventory"
                    | "get_gpu_health"
                    | "analyze_xid_errors"
                    | "get_gpu_processes"
                    | "get_nvlink_topology"
            );
            let expected = if has_resource { detailed.min(10) } else { 0 };
            assert_eq!(links, expected, "{tool} at {n}");
            if tool == "list_gpu_nodes" {
                assert_eq!(s["node_count"], n, "{tool}");
                continue;
            }
            // Read top-down: the headline and totals before any detail, and each problem's node
            // and verdict before its details.
            let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys[..3], ["headline", "detail", "summary"], "{tool}");
            if let Some(first) = s["problems"].get(0) {
                let keys: Vec<&str> = first
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert_eq!(keys[..2], ["node", "verdict"], "{tool}");
            }
            assert_eq!(s["summary"]["nodes_total"], n, "{tool} at {n}");
            assert_eq!(s["summary"]["nodes_ok"], n - failed.len(), "{tool} at {n}");
            // Every failed node is named, or counted as left out.
            let named: BTreeSet<String> = s["failures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["node"].as_str().unwrap().to_owned())
                .collect();
            assert!(named.is_subset(&failed), "{tool} at {n}");
            assert_eq!(
                named.len() + s["omitted"]["failed_nodes"].as_u64().unwrap() as usize,
                failed.len(),
                "{tool} at {n}"
            );
            if tool == "get_gpu_processes" {
                // Who is on the sick GPUs, in both blocks; every sick node counted.
                let problems = s["problems"].as_array().unwrap();
                assert_eq!(
                    problems.len() + s["omitted"]["problem_nodes"].as_u64().unwrap() as usize,
                    sick.len(),
                    "{n}"
                );
                if let Some(first) = problems.first() {
                    let node = first["node"].as_str().unwrap();
                    let gpu = &first["details"]["gpus"][0];
                    assert_eq!(gpu["index"], 3);
                    assert_eq!(gpu["processes"][0]["pod"]["pod"], format!("{node}-job-3"));
                    assert_eq!(first["details"]["allocations"].as_array().unwrap().len(), 1);
                    assert!(
                        words.contains(&format!("ml-training/{node}-job-3/worker")),
                        "{words}"
                    );
                }
            }
            if tool == "get_nvlink_topology" {
                let problems: BTreeSet<String> = s["problems"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["node"].as_str().unwrap().to_owned())
                    .collect();
                assert!(problems.is_subset(&sick), "{n}");
                assert_eq!(
                    problems.len() + s["omitted"]["problem_nodes"].as_u64().unwrap() as usize,
                    sick.len(),
                    "{n}"
                );
                if let Some(first) = s["problems"].as_array().unwrap().first() {
                    assert_eq!(first["verdict"], "critical");
                    let f = &first["details"]["findings"][0];
                    assert_eq!(f["gpu"], 3);
                    assert_eq!(f["check"], "fabric");
                    assert!(
                        first.get("summary").is_some(),
                        "the agent's headline: {first}"
                    );
                    assert!(words.contains("GPU 3 critical"), "{words}");
                    assert!(
                        words.contains("Action: \"Start nvidia-fabricmanager"),
                        "{words}"
                    );
                }
            }
            if tool == "get_gpu_health" {
                let problems: BTreeSet<String> = s["problems"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["node"].as_str().unwrap().to_owned())
                    .collect();
                assert!(problems.is_subset(&sick), "{n}");
                assert_eq!(
                    problems.len() + s["omitted"]["problem_nodes"].as_u64().unwrap() as usize,
                    sick.len(),
                    "{n}"
                );
                assert_eq!(
                    s["omitted"]["healthy_nodes"].as_u64().unwrap() as usize,
                    n - failed.len() - sick.len()
                );
                // Worst first: every critical node shown comes before every warning node.
                let verdicts: Vec<&str> = s["problems"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["verdict"].as_str().unwrap())
                    .collect();
                assert!(
                    verdicts
                        .windows(2)
                        .all(|w| !(w[0] == "warning" && w[1] == "critical"))
                );
                // The sick GPU is named with its reason and action, in both blocks.
                if let Some(first) = s["problems"].as_array().unwrap().first() {
                    let gpu = &first["details"]["gpus"][0];
                    assert_eq!(gpu["index"], 3);
                    assert!(gpu["reasons"][0]["action"].as_str().unwrap().len() > 10);
                    assert!(words.contains("GPU 3"), "{words}");
                    assert!(words.contains("Action:"), "{words}");
                }
                if n <= 1_000 {
                    assert_eq!(
                        problems, sick,
                        "at {n} nodes every sick node fits the first page"
                    );
                }
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn paging_problems_returns_every_sick_node_exactly_once() {
    let n = 5_000;
    let c = fleet(n);
    let sick: BTreeSet<String> = names_of(Kind::Critical, n)
        .into_iter()
        .chain(names_of(Kind::Warning, n))
        .collect();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _page in 0..100 {
        let mut args = json!({"node_limit": 4});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let r = call(&c, "get_gpu_health", args).await;
        let s = r.structured_content.unwrap();
        seen.extend(
            s["problems"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["node"].as_str().unwrap().to_owned()),
        );
        match s.get("next_cursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no node twice");
    assert_eq!(unique, sick);
}

#[tokio::test(start_paused = true)]
async fn full_detail_pages_are_the_union_of_the_agents_answers() {
    let n = 100;
    let c = fleet(n);
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 200, "paging must end");
        let mut args = json!({"detail": "full", "node_limit": 500});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let r = call(&c, "get_gpu_health", args).await;
        let (structured, _) = sizes(&r);
        assert!(
            structured <= MAX_STRUCTURED,
            "a full page stays bounded too: {structured}"
        );
        let s = r.structured_content.unwrap();
        for entry in s["nodes"].as_array().unwrap() {
            let node = entry["name"].as_str().unwrap().to_owned();
            let i: usize = node["gpu-node-".len()..].parse().unwrap();
            match kind_of(i, n) {
                Kind::Unreachable | Kind::Hung => assert_eq!(entry["ok"], false),
                kind => assert_eq!(entry["result"], agent_answer("get_gpu_health", i, kind)),
            }
            assert!(seen.insert(node), "no node twice");
        }
        match s.get("next_cursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), n);
    assert!(pages > 1, "100 full answers do not fit one page");
}

#[tokio::test(start_paused = true)]
async fn list_gpu_nodes_pages_through_every_node_once() {
    let n = 1_000;
    let c = fleet(n);
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = json!({"node_limit": 300});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let r = call(&c, "list_gpu_nodes", args).await;
        let s = r.structured_content.unwrap();
        for node in s["nodes"].as_array().unwrap() {
            assert!(seen.insert(node["name"].as_str().unwrap().to_owned()));
        }
        match s.get("next_cursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), n);
}

#[tokio::test(start_paused = true)]
async fn node_pattern_asks_only_the_matching_nodes_and_bad_arguments_are_refused_once() {
    let c = fleet(100);
    let r = call(
        &c,
        "get_gpu_health",
        json!({"node_pattern": "gpu-node-0000?"}),
    )
    .await;
    let s = r.structured_content.unwrap();
    assert_eq!(s["summary"]["nodes_total"], 10);
    let r = call(
        &c,
        "list_gpu_nodes",
        json!({"node_pattern": "gpu-node-0001*"}),
    )
    .await;
    assert_eq!(r.structured_content.unwrap()["node_count"], 10);
    for bad in [
        json!({"detail": "all"}),
        json!({"node_limit": 0}),
        json!({"cursor": "not-a-cursor"}),
        json!({"min_verdict": "fine"}),
    ] {
        let r = call(&c, "get_gpu_health", bad.clone()).await;
        assert!(r.failed(), "{bad}");
        let text = r.content[0].as_text().unwrap();
        assert!(text.len() < 400, "one message, not one per node: {text}");
    }
}

#[tokio::test(start_paused = true)]
async fn processes_go_to_one_node_with_node_and_bad_arguments_are_refused_once() {
    let c = fleet(100);
    let tool = c
        .tools()
        .into_iter()
        .find(|t| t.name == "get_gpu_processes")
        .expect("the gateway serves get_gpu_processes");
    assert_eq!(tool.input_schema["properties"]["node"]["type"], "string");
    assert!(tool.description.contains("which pod is on this GPU"));
    let r = call(
        &c,
        "get_gpu_processes",
        json!({"node": "gpu-node-00007", "pod": "x"}),
    )
    .await;
    assert!(!r.failed());
    let s = r.structured_content.unwrap();
    assert_eq!(s["node"], "gpu-node-00007");
    // The agent's answer untouched, so the allocations join with pods by UUID.
    assert_eq!(s["result"]["allocations"].as_array().unwrap().len(), 8);
    assert_eq!(s["result"]["allocations"][3]["verdict"], "critical");
    let schema = Value::Object(tool.output_schema.unwrap());
    assert!(jsonschema::is_valid(&schema, &s), "{s}");
    for bad in [
        json!({"limit": "ten"}),
        json!({"pods": "x"}),
        json!({"gpu_index": -1}),
    ] {
        let r = call(&c, "get_gpu_processes", bad.clone()).await;
        assert!(r.failed(), "{bad}");
        let text = r.content[0].as_text().unwrap();
        assert!(text.len() < 400, "one message, not one per node: {text}");
    }
}

#[tokio::test(start_paused = true)]
async fn topology_with_node_is_that_agents_answer_and_bad_arguments_are_refused_once() {
    let c = fleet(100);
    let r = call(
        &c,
        "get_nvlink_topology",
        json!({"node": name(7), "full": true}),
    )
    .await;
    assert!(!r.failed());
    let s = r.structured_content.unwrap();
    assert_eq!(s["node"], name(7));
    assert_eq!(s["result"], topology_answer(&name(7), Kind::Critical));
    for bad in [
        json!({"full": "yes"}),
        json!({"links": true}),
        json!({"gpu_index": -1}),
    ] {
        let r = call(&c, "get_nvlink_topology", bad.clone()).await;
        assert!(r.failed(), "{bad}");
        let text = r.content[0].as_text().unwrap();
        assert!(text.len() < 400, "one message, not one per node: {text}");
    }
}

/// Not a check: prints the size of each tool's default answer at 1 to 5,000 nodes and the time of
/// the 1,000-node default health call, for docs/benchmarks.md:
/// `cargo test --release -p gpu-mcp-fleet --test fleet_scale answer_sizes -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for docs/benchmarks.md, not a test"]
async fn answer_sizes() {
    // The timing run's hung node answers healthy, so no call waits for the node timeout.
    println!("| tool | nodes | structuredContent bytes | text bytes | ~tokens (bytes/4, both) |");
    println!("|---|---|---|---|---|");
    for tool in [
        "get_gpu_health",
        "analyze_xid_errors",
        "get_gpu_inventory",
        "get_gpu_processes",
        "get_nvlink_topology",
        "list_gpu_nodes",
    ] {
        for n in [1, 10, 100, 1_000, 5_000] {
            let c = fleet_of(n, false);
            let r = call(&c, tool, json!({})).await;
            let (s, t) = sizes(&r);
            println!("| {tool} | {n} | {s} | {t} | {} |", (s + t) / 4);
        }
    }
    let c = fleet_of(1_000, false);
    let _ = call(&c, "get_gpu_health", json!({})).await;
    let started = std::time::Instant::now();
    let runs = 20;
    for _ in 0..runs {
        let _ = call(&c, "get_gpu_health", json!({})).await;
    }
    println!(
        "1,000-node default get_gpu_health, in process over fake agents: {:.1} ms per call",
        started.elapsed().as_secs_f64() * 1000.0 / f64::from(runs)
    );
}

/// The calls each fleet answer is compared over: the default, both narrowing details, a stricter
/// `min_verdict`, a second page and `full`.
fn narrowing_calls() -> Vec<Value> {
    vec![
        json!({}),
        json!({"detail": "summary"}),
        json!({"detail": "problems", "min_verdict": "critical"}),
        json!({"min_verdict": "healthy", "node_limit": 2}),
        json!({"detail": "full", "node_limit": 3}),
    ]
}

#[tokio::test(start_paused = true)]
async fn agents_are_asked_only_for_what_the_answer_uses_and_the_answer_is_the_same() {
    let n = 1_000;
    let (full, _) = released(n, true, Release::Full);
    let (current, agents) = released(n, true, Release::Current);
    for tool in ["get_gpu_health", "analyze_xid_errors", "get_gpu_inventory"] {
        for args in narrowing_calls() {
            agents.seen.lock().clear();
            let want = call(&full, tool, args.clone()).await;
            let got = call(&current, tool, args.clone()).await;
            assert_eq!(
                got, want,
                "{tool} {args}: the same answer from narrowed agents"
            );
            // What each agent received: the narrowing arguments, and nothing else of the
            // gateway's own.
            let expected = match (tool, args["detail"].as_str()) {
                (_, Some("full")) | ("get_gpu_inventory", _) => json!(null),
                ("get_gpu_health", _) => json!({"detail": "problems",
                    "min_verdict": args["min_verdict"].as_str().unwrap_or("warning")}),
                _ => json!({"detail": "summary"}),
            };
            let seen = agents.seen.lock();
            assert!(seen.len() >= n - 10, "{tool} {args}: {} calls", seen.len());
            for (i, received) in seen.iter() {
                assert_eq!(received, &expected, "{tool} {args}: node {i}");
            }
        }
    }
    // With `node` the agent is asked as the client asked.
    agents.seen.lock().clear();
    let one = call(&current, "get_gpu_health", json!({"node": name(7)})).await;
    assert_eq!(
        one.structured_content.unwrap()["result"]["gpus"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
    assert_eq!(agents.seen.lock().as_slice(), [(7, json!(null))]);
}

#[tokio::test(start_paused = true)]
async fn an_agent_that_refuses_the_narrowing_arguments_is_asked_again_without_them() {
    let n = 100;
    let (full, _) = released(n, true, Release::Full);
    let (old, agents) = released(n, true, Release::Old);
    for tool in ["get_gpu_health", "analyze_xid_errors"] {
        for args in narrowing_calls() {
            agents.seen.lock().clear();
            let want = call(&full, tool, args.clone()).await;
            let got = call(&old, tool, args.clone()).await;
            assert_eq!(
                got, want,
                "{tool} {args}: shaped from the full answers as before"
            );
            let seen = agents.seen.lock();
            let answering =
                (0..n).filter(|i| !matches!(kind_of(*i, n), Kind::Unreachable | Kind::Hung));
            for i in answering {
                let calls: Vec<&Value> = seen
                    .iter()
                    .filter(|(j, _)| *j == i)
                    .map(|(_, a)| a)
                    .collect();
                if args["detail"] == "full" {
                    assert_eq!(calls, [&json!(null)], "{tool} {args}: node {i} asked once");
                } else {
                    assert_eq!(calls.len(), 2, "{tool} {args}: node {i} asked twice");
                    assert!(calls[0].get("detail").is_some(), "{tool}: first narrowed");
                    assert_eq!(calls[1], &json!(null), "{tool}: then as the client asked");
                }
            }
        }
    }
}

/// Not a check: prints the bytes the agents send the gateway for one 1,000-node default
/// `get_gpu_health` fan-out, with agents that answer in full and with agents that list what the
/// fan-out asks for, for docs/benchmarks.md:
/// `cargo test -p gpu-mcp-fleet --test fleet_scale agent_bytes -- --ignored --nocapture`
#[tokio::test(start_paused = true)]
#[ignore = "a measurement for docs/benchmarks.md, not a test"]
async fn agent_bytes() {
    println!("| tool | nodes | agents answer | bytes agents sent | per answering node |");
    println!("|---|---|---|---|---|");
    for tool in ["get_gpu_health", "analyze_xid_errors"] {
        for (release, words) in [
            (Release::Full, "in full (before)"),
            (Release::Current, "what the fan-out uses (after)"),
        ] {
            let n = 1_000;
            let (c, agents) = released(n, false, release);
            let _ = call(&c, tool, json!({})).await;
            let sent = agents.sent.load(Ordering::Relaxed);
            let answering = agents.seen.lock().len();
            println!(
                "| {tool} | {n} | {words} | {sent} | {} |",
                sent / answering.max(1)
            );
        }
    }
}

/// The arguments node `i` received, in order.
fn received_by(agents: &Agents, i: usize) -> Vec<Value> {
    let seen = agents.seen.lock();
    seen.iter()
        .filter(|(j, _)| *j == i)
        .map(|(_, a)| a.clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn with_node_the_agent_is_asked_for_the_detail_the_client_asked_for() {
    let n = 20;
    let (current, agents) = released(n, true, Release::Current);
    let sick = 7;
    assert_eq!(kind_of(sick, n), Kind::Critical);
    for (tool, args, sent) in [
        (
            "get_gpu_health",
            json!({"detail": "summary"}),
            json!({"detail": "summary"}),
        ),
        (
            "get_gpu_health",
            json!({"detail": "problems", "min_verdict": "critical"}),
            json!({"detail": "problems", "min_verdict": "critical"}),
        ),
        (
            "get_gpu_health",
            json!({"min_verdict": "degraded", "xid_since": "1h"}),
            json!({"detail": "problems", "min_verdict": "degraded", "xid_since": "1h"}),
        ),
        ("get_gpu_health", json!({"detail": "full"}), json!(null)),
        (
            "analyze_xid_errors",
            json!({"detail": "problems"}),
            json!({"detail": "summary"}),
        ),
        (
            "analyze_xid_errors",
            json!({"detail": "summary", "since": "1h"}),
            json!({"detail": "summary", "since": "1h"}),
        ),
        ("analyze_xid_errors", json!({"detail": "full"}), json!(null)),
        ("get_gpu_inventory", json!({"detail": "full"}), json!(null)),
    ] {
        agents.seen.lock().clear();
        let mut call_args = args.clone();
        call_args["node"] = json!(name(sick));
        let r = call(&current, tool, call_args).await;
        assert!(!r.failed(), "{tool} {args}");
        assert_eq!(
            received_by(&agents, sick),
            std::slice::from_ref(&sent),
            "{tool} {args}"
        );
        let s = r.structured_content.unwrap();
        assert_eq!(s["node"], name(sick));
        assert!(s.get("not_narrowed").is_none(), "{s}");
        // The agent's answer to what it was asked, untouched.
        let asked = if sent.is_null() { json!({}) } else { sent };
        assert_eq!(
            s["result"],
            listed(tool, agent_answer(tool, sick, Kind::Critical), &asked),
            "{tool} {args}"
        );
    }
    let summary = call(
        &current,
        "get_gpu_health",
        json!({"node": name(sick), "detail": "summary"}),
    )
    .await;
    let s = summary.structured_content.unwrap();
    assert_eq!(s["result"]["gpus"], json!([]));
    assert_eq!(s["result"]["counts"]["critical"], 1);
    let problems = call(
        &current,
        "get_gpu_health",
        json!({"node": name(sick), "detail": "problems"}),
    )
    .await;
    let gpus = problems.structured_content.unwrap()["result"]["gpus"].clone();
    assert_eq!(
        gpus.as_array().unwrap().len(),
        1,
        "only the sick GPU: {gpus}"
    );
}

#[tokio::test(start_paused = true)]
async fn with_node_arguments_it_cannot_honour_are_refused_before_anything_is_sent() {
    let n = 20;
    let (current, agents) = released(n, true, Release::Current);
    for (tool, args, words) in [
        (
            "get_gpu_health",
            json!({"node_pattern": "gpu-*"}),
            "`node_pattern`",
        ),
        ("get_gpu_health", json!({"node_limit": 5}), "`node_limit`"),
        ("analyze_xid_errors", json!({"cursor": "abc"}), "`cursor`"),
        (
            "analyze_xid_errors",
            json!({"min_verdict": "critical"}),
            "`min_verdict`",
        ),
        (
            "get_gpu_inventory",
            json!({"detail": "summary"}),
            "`detail`",
        ),
        (
            "get_gpu_processes",
            json!({"detail": "problems"}),
            "`detail`",
        ),
        (
            "get_nvlink_topology",
            json!({"min_verdict": "warning"}),
            "`min_verdict`",
        ),
        // The agent's own arguments are checked when the call is narrowed.
        (
            "get_gpu_health",
            json!({"detail": "summary", "bogus": 1}),
            "`bogus`",
        ),
    ] {
        let mut call_args = args.clone();
        call_args["node"] = json!(name(1));
        let r = call(&current, tool, call_args).await;
        assert!(r.failed(), "{tool} {args}");
        let text = r.content[0].as_text().unwrap();
        assert!(text.contains(words), "{tool} {args}: {text}");
        let all: String = r.content.iter().filter_map(|c| c.as_text()).collect();
        assert!(all.contains("Nothing was sent to any node."), "{all}");
    }
    assert!(agents.seen.lock().is_empty(), "nothing may be sent");
}

#[tokio::test(start_paused = true)]
async fn with_node_an_agent_that_refuses_detail_gives_its_full_answer_and_says_so() {
    let n = 20;
    let (old, agents) = released(n, true, Release::Old);
    // Node 6 refuses with a tool error, node 7 with a JSON-RPC error.
    for i in [6, 7] {
        for (tool, args) in [
            ("get_gpu_health", json!({"detail": "summary"})),
            ("get_gpu_health", json!({"min_verdict": "critical"})),
            ("analyze_xid_errors", json!({"detail": "problems"})),
        ] {
            agents.seen.lock().clear();
            let mut call_args = args.clone();
            call_args["node"] = json!(name(i));
            let r = call(&old, tool, call_args).await;
            assert!(!r.failed(), "{tool} {args} on {i}");
            let calls = received_by(&agents, i);
            assert_eq!(calls.len(), 2, "{tool} {args} on {i}: {calls:?}");
            assert!(calls[0].get("detail").is_some(), "first narrowed");
            assert_eq!(calls[1], json!(null), "then as the client asked");
            let s = r.structured_content.clone().unwrap();
            assert_eq!(s["result"], agent_answer(tool, i, kind_of(i, n)));
            let note = s["not_narrowed"].as_str().unwrap();
            assert!(note.contains("refused `detail`"), "{note}");
            let first = r.content[0].as_text().unwrap();
            assert_eq!(first, note, "the words say it first");
        }
    }
    // A call that asks for no narrowing is sent once, as before.
    agents.seen.lock().clear();
    let r = call(&old, "get_gpu_health", json!({"node": name(6)})).await;
    assert!(!r.failed());
    assert!(r.structured_content.unwrap().get("not_narrowed").is_none());
    assert_eq!(received_by(&agents, 6), [json!(null)]);
}
