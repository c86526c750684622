//! End-to-end scenarios of the gateway against a running Kubernetes cluster, through a real MCP
//! client (`rmcp`).
//!
//! These tests are `#[ignore]`d: they need a cluster with the chart installed, agents behind its
//! pods and a gateway started against it. `cargo xtask e2e` prepares all of that and runs them
//! with `--ignored --test-threads=1` (they run in name order; later ones change the cluster).
//!
//! Inputs (environment, set by `cargo xtask e2e`):
//! - `GPU_MCP_E2E_GATEWAY_URL`: the gateway's MCP endpoint (`http://127.0.0.1:PORT/mcp`)
//! - `GPU_MCP_E2E_TOKEN`: the bearer token clients send (from the Secret the chart generated);
//!   unset where the release runs with `auth.enabled=false` (`--cluster kind`)
//! - `GPU_MCP_E2E_AGENT_URL` (http routing): one agent's MCP endpoint, reached directly
//! - `GPU_MCP_E2E_NODES`: the agent nodes, comma-separated
//! - `GPU_MCP_E2E_SCENARIOS`: `node=scenario,...` for nodes not running the healthy default
//! - `GPU_MCP_E2E_ROUTING`: `http` or `exec`
//! - `GPU_MCP_E2E_NODE_TIMEOUT_SECS`: the gateway's node timeout
//! - `GPU_MCP_E2E_KUBECTL`, `GPU_MCP_E2E_KUBECONFIG` (admin), `GPU_MCP_E2E_NAMESPACE`
//! - `GPU_MCP_E2E_GATEWAY_ROLE`: the gateway's Role (exec routing: the RBAC scenario edits it)
//! - `GPU_MCP_E2E_AGENT_BIN`, `GPU_MCP_E2E_AGENT_PORT`, `GPU_MCP_E2E_AGENT_ARGS` (the
//!   DaemonSet's authentication flags, one a line): to start an agent for a pod added during
//!   the run (http routing: a process on the pod IP plays the container)
//! - `GPU_MCP_E2E_KILL_NODE`, `GPU_MCP_E2E_KILL_CMD`: a node and the shell command that kills
//!   its agent
//! - `GPU_MCP_E2E_WORKLOAD_NAMESPACE`, `GPU_MCP_E2E_JOBS_PER_NODE`: the GPU pods
//!   (`{node}-job-{i}`, one `nvidia.com/gpu` each), `GPU_MCP_E2E_TAINTED_NODE` and
//!   `GPU_MCP_E2E_CORDONED_NODE`: the nodes given the GPU taint and the cordon

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GPU_TOOLS: [&str; 4] = [
    "get_gpu_inventory",
    "get_gpu_health",
    "analyze_xid_errors",
    "get_nvlink_topology",
];

struct Env {
    url: String,
    token: Option<String>,
    nodes: Vec<String>,
    scenarios: BTreeMap<String, String>,
    routing: String,
    node_timeout: Duration,
}

fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run these tests through `cargo xtask e2e`"))
}

fn env() -> Env {
    let scenarios = std::env::var("GPU_MCP_E2E_SCENARIOS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Env {
        url: var("GPU_MCP_E2E_GATEWAY_URL"),
        token: std::env::var("GPU_MCP_E2E_TOKEN").ok(),
        nodes: var("GPU_MCP_E2E_NODES")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        scenarios,
        routing: var("GPU_MCP_E2E_ROUTING"),
        node_timeout: Duration::from_secs(
            std::env::var("GPU_MCP_E2E_NODE_TIMEOUT_SECS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(5),
        ),
    }
}

type Client = RunningService<RoleClient, ()>;

/// An MCP client of the gateway, sending the client token.
async fn connect(e: &Env) -> Client {
    // rmcp's HTTP client builds a TLS stack even for http:// URLs; ring is the one provider.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let mut config = StreamableHttpClientTransportConfig::with_uri(e.url.clone());
    if let Some(token) = &e.token {
        config = config.auth_header(token);
    }
    let transport = StreamableHttpClientTransport::from_config(config);
    ().serve(transport)
        .await
        .unwrap_or_else(|err| panic!("MCP client could not connect to {}: {err}", e.url))
}

/// The HTTP status of an `initialize` POSTed to `url` (`http://HOST:PORT/PATH`) with
/// `Authorization: Bearer <token>`, or without the header.
async fn post_status(url: &str, token: Option<&str>) -> u16 {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "e2e-auth", "version": "0"}}})
    .to_string();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "POST /{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\n{auth}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .unwrap_or_else(|_| panic!("{url} did not answer within 30 s"))
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status from {url}"))
}

/// Calls a tool; a JSON-RPC error fails the test (use `try_call` to expect one).
async fn call(client: &Client, tool: &str, args: Value) -> CallToolResult {
    try_call(client, tool, args)
        .await
        .unwrap_or_else(|e| panic!("{tool}: JSON-RPC error: {e}"))
}

async fn try_call(
    client: &Client,
    tool: &str,
    args: Value,
) -> Result<CallToolResult, rmcp::ServiceError> {
    let Value::Object(arguments) = args else {
        panic!("arguments must be an object");
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
}

fn is_error(r: &CallToolResult) -> bool {
    r.is_error == Some(true)
}

fn structured(r: &CallToolResult) -> &Value {
    r.structured_content
        .as_ref()
        .unwrap_or_else(|| panic!("no structuredContent in {r:?}"))
}

fn text(r: &CallToolResult) -> String {
    serde_json::to_value(&r.content)
        .ok()
        .and_then(|v| {
            v.as_array().map(|blocks| {
                blocks
                    .iter()
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        })
        .unwrap_or_default()
}

/// Every string found under a key named `key`, anywhere in `v` (a reading may be wrapped).
fn strings_under(v: &Value, key: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == key {
                    collect_strings(child, out);
                }
                strings_under(child, key, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| strings_under(c, key, out)),
        _ => {}
    }
}

fn collect_strings(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Object(m) => m.values().for_each(|c| collect_strings(c, out)),
        Value::Array(a) => a.iter().for_each(|c| collect_strings(c, out)),
        _ => {}
    }
}

fn uuids(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    strings_under(v, "uuid", &mut out);
    out
}

/// The fan-out answer's entry for `node`.
fn entry<'a>(fanout: &'a Value, node: &str) -> &'a Value {
    fanout["nodes"]
        .as_array()
        .expect("fan-out answer has nodes[]")
        .iter()
        .find(|e| e["name"] == node)
        .unwrap_or_else(|| panic!("node {node} missing from the fan-out answer: {fanout}"))
}

fn listed_nodes(list: &Value) -> BTreeMap<String, Value> {
    list["nodes"]
        .as_array()
        .expect("list_gpu_nodes has nodes[]")
        .iter()
        .map(|n| (n["name"].as_str().unwrap_or_default().to_owned(), n.clone()))
        .collect()
}

/// Polls `list_gpu_nodes` until `pred` holds (bounded; returns the last listing).
async fn wait_listing(
    client: &Client,
    what: &str,
    pred: impl Fn(&BTreeMap<String, Value>) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..120 {
        let r = call(client, "list_gpu_nodes", json!({})).await;
        last = structured(&r).clone();
        if pred(&listed_nodes(&last)) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("timed out waiting until {what}; last listing: {last}");
}

fn kubectl(args: &[&str]) -> Result<String, String> {
    let out = Command::new(var("GPU_MCP_E2E_KUBECTL"))
        .arg("--kubeconfig")
        .arg(var("GPU_MCP_E2E_KUBECONFIG"))
        .args(args)
        .output()
        .map_err(|e| format!("running kubectl: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn kubectl_stdin(args: &[&str], input: &str) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new(var("GPU_MCP_E2E_KUBECTL"))
        .arg("--kubeconfig")
        .arg(var("GPU_MCP_E2E_KUBECONFIG"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running kubectl: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Waits until every expected node is listed ready (the agents may still be starting).
async fn ready_client(e: &Env) -> Client {
    let client = connect(e).await;
    let expected = e.nodes.clone();
    wait_listing(&client, "every agent node is listed ready", |m| {
        expected
            .iter()
            .all(|n| m.get(n).is_some_and(|v| v["ready"] == true))
    })
    .await;
    client
}

#[tokio::test]
#[ignore = "needs a cluster: run through `cargo xtask e2e`"]
async fn s00_calls_without_the_client_token_are_refused_with_401() {
    let e = env();
    let Some(token) = &e.token else {
        eprintln!("GPU_MCP_E2E_TOKEN is not set: this release runs without auth");
        return;
    };
    assert_eq!(
        post_status(&e.url, None).await,
        401,
        "the gateway answered a call without a token"
    );
    assert_eq!(
        post_status(&e.url, Some("not-the-token")).await,
        401,
        "the gateway answered a call with a wrong token"
    );
    assert_eq!(
        post_status(&e.url, Some(token)).await,
        200,
        "the gateway refused the token of the chart's Secret"
    );
    if let Ok(agent) = std::env::var("GPU_MCP_E2E_AGENT_URL") {
        // Agents take only the gateway's own token: a client that reaches one directly (which
        // the NetworkPolicy would stop first) gets nothing with or without its own token.
        assert_eq!(
            post_status(&agent, None).await,
            401,
            "{agent} without a token"
        );
        assert_eq!(
            post_status(&agent, Some(token)).await,
            401,
            "{agent} accepted the client token"
        );
    }
}

#[tokio::test]
#[ignore = "needs a cluster: run through `cargo xtask e2e`"]
async fn s01_tools_list_shows_list_gpu_nodes_and_gpu_tools_with_node() {
    let e = env();
    let client = connect(&e).await;
    let tools = client.list_all_tools().await.unwrap();
    let by_name: BTreeMap<&str, _> = tools.iter().map(|t| (t.name.as_ref(), t)).collect();
    assert!(
        by_name.contains_key("list_gpu_nodes"),
        "tools: {:?}",
        by_name.keys()
    );
    for tool in GPU_TOOLS {
        let t = by_name
            .get(tool)
            .unwrap_or_else(|| panic!("{tool} missing from tools/list: {:?}", by_name.keys()));
        let node = t
            .input_schema
            .get("properties")
            .and_then(|p| p.get("node"))
            .unwrap_or_else(|| panic!("{tool} has no `node` property: {:?}", t.input_schema));
        assert_eq!(
            node["type"], "string",
            "{tool}: node must be a string: {node}"
        );
        let required = t.input_schema.get("required").cloned().unwrap_or(json!([]));
        assert!(
            !required.as_array().unwrap().contains(&json!("node")),
            "{tool}: node must be optional"
        );
        assert!(
            t.description
                .as_deref()
                .unwrap_or_default()
                .contains("node"),
            "{tool}: the description should explain the node argument"
        );
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
#[ignore = "needs a cluster: run through `cargo xtask e2e`"]
async fn s02_list_gpu_nodes_lists_every_simulated_node() {
    let e = env();
    let client = ready_client(&e).await;
    let r = call(&client, "list_gpu_nodes", json!({})).await;
    assert!(!is_error(&r), "{}", text(&r));
    let list = structured(&r);
    let nodes = listed_nodes(list);
    for n in &e.nodes {
        let info = &nodes[n];
        assert_eq!(info["ready"], true, "{n}: {info}");
        assert!(
            info["pod_name"].as_str().is_some_and(|p| !p.is_empty()),
            "{n}: {info}"
        );
        let ip = info["pod_ip"]
            .as_str()
            .unwrap_or_else(|| panic!("{n} has no pod_ip: {info}"));
        assert!(
            ip.starts_with("127."),
            "{n}: pod IPs on this cluster are loopback, got {ip}"
        );
    }
    assert!(
        list["node_count"].as_u64().unwrap() >= e.nodes.len() as u64,
        "{list}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
#[ignore = "needs a cluster: run through `cargo xtask e2e`"]
async fn s03_inventory_with_node_returns_exactly_that_nodes_gpus() {
    let e = env();
    let client = ready_client(&e).await;
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for n in &e.nodes {
        let r = call(&client, "get_gpu_inventory", json!({ "node": n })).await;
        assert!(!is_error(&r), "{n}: {}", text(&r));
        let s = structured(&r);
        assert_eq!(
            s["node"],
            n.as_str(),
            "the answer is tagged with the node asked: {s}"
        );
        let ids = uuids(&s["result"]);
        assert!(!ids.is_empty(), "{n}: no GPU UUIDs in {s}");
        // The node's own agent answered: the agent reports the node it runs on.
        assert_eq!(
            s["result"]["node"],
            n.as_str(),
            "{n}: answered by another agent: {s}"
        );
        seen.insert(n.clone(), ids);
    }
    // Different nodes have different GPUs: no answer was served by another node's agent.
    let all: Vec<&BTreeSet<String>> = seen.values().collect();
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert!(
                a.is_disjoint(b),
                "two nodes reported the same GPU: {seen:?}"
            );
        }
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
#[ignore = "needs a cluster: run through `cargo xtask e2e`"]
async fn s04_fan_out_inventory_is_the_union_of_the_per_node_answers() {
    let e = env();
    let client = ready_client(&e).await;
    let r = call(&client, "get_gpu_inventory", json!({"detail": "full"})).await;
    assert!(!is_error(&r), "{}", text(&r));
    let fanout = structured(&r).clone();
    let mut union = BTreeSet::new();
    let mut per_node = BTreeSet::new();
    for n in &e.nodes {
        let en = entry(&fanout, n);
        assert_eq!(en["ok"], true, "{n}: {en}");
        union.extend(uuids(&en["result"]));
        let one = call(&client, "get_gpu_inventory", json!({ "node": n })).await;
        per_node.extend(uuids(&structured(&one)["result"]));
    }
    assert!(!union.is_empty());
    assert_eq!(union, per_node, "fan-out and per-node inventories differ");
    let summary = &fanout["summary"];
    assert_eq!(
        summary["nodes_ok"].as_u64().unwrap(),
        fanout["nodes"].as_array().unwrap().len() as u64,
        "{summary}"
    );
    assert_eq!(
        summary["gpus_total"].as_u64().unwrap(),
        union.len() as u64,
        "{summary}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
#[ignore = "needs a cluster: run through `cargo xtask e2e`"]
async fn s05_xid79_node_is_critical_in_the_aggregated_health() {
    let e = env();
    let xid_nodes: Vec<&String> = e
        .scenarios
        .iter()
        .filter(|(_, s)| s.contains("79"))
        .map(|(n, _)| n)
        .collect();
    assert!(
        !xid_nodes.is_empty(),
        "the e2e setup must give one node the XID 79 scenario"
    );
    let client = ready_client(&e).await;
    let r = call(&client, "get_gpu_health", json!({"detail": "full"})).await;
    assert!(!is_error(&r), "{}", text(&r));
    let fanout = structured(&r);
    let critical = fanout["summary"]["gpus_by_verdict"]["critical"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        critical >= 1,
        "no critical GPU in the summary: {}",
        fanout["summary"]
    );
    for n in &e.nodes {
        let en = entry(fanout, n);
        assert_eq!(en["ok"], true, "{n}: {en}");
        let verdict = en["result"]["verdict"].as_str().unwrap_or_default();
        if xid_nodes.contains(&n) {
            assert_eq!(
                verdict, "critical",
                "{n} runs XID 79 but is not critical: {en}"
            );
        } else if !e.scenarios.contains_key(n) {
            assert_eq!(verdict, "healthy", "healthy node {n}: {en}");
        }
    }
    client.cancel().await.unwrap();
}

/// Calls a Kubernetes-context tool until its caches have synced (bounded).
async fn call_synced(client: &Client, tool: &str, args: Value) -> CallToolResult {
    for _ in 0..60 {
        let r = call(client, tool, args.clone()).await;
        if !(is_error(&r) && text(&r).contains("has not synced")) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{tool}: the gateway's cluster caches never synced");
}

#[tokio::test]
#[ignore = "needs a cluster: run through `cargo xtask e2e`"]
async fn s05b_kubernetes_context_from_a_pod_to_its_node_taints_and_drain() {
    let e = env();
    let ns = var("GPU_MCP_E2E_WORKLOAD_NAMESPACE");
    let jobs: usize = var("GPU_MCP_E2E_JOBS_PER_NODE").parse().unwrap();
    let tainted = var("GPU_MCP_E2E_TAINTED_NODE");
    let cordoned = var("GPU_MCP_E2E_CORDONED_NODE");
    let xid_node = e
        .scenarios
        .iter()
        .find(|(_, s)| s.contains("79"))
        .map(|(n, _)| n.clone())
        .expect("one node runs the XID 79 scenario");
    let client = ready_client(&e).await;
    let tools = client.list_all_tools().await.unwrap();
    for name in [
        "describe_gpu_node",
        "get_pod_gpu_allocation",
        "explain_pod_gpu_failure",
    ] {
        assert!(
            tools.iter().any(|t| t.name == name),
            "{name} is served with the chart's --cluster-context"
        );
    }

    // From a pod on the sick node to the GPU it holds.
    let pod = format!("{xid_node}-job-1");
    let r = call_synced(
        &client,
        "get_pod_gpu_allocation",
        json!({"namespace": ns, "pod": pod}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let s = structured(&r);
    assert_eq!(s["total"], 1, "{s}");
    let entry = &s["pods"][0];
    assert_eq!(entry["node"], xid_node.as_str(), "{entry}");
    assert_eq!(entry["requested"]["nvidia.com/gpu"], 1, "{entry}");
    if entry["devices_known"] == true {
        // The mock agent attributes GPU i of node N to pod N-job-i.
        assert_eq!(entry["devices"][0]["gpu_index"], 1, "{entry}");
        assert!(entry["devices"][0]["verdict"].is_string(), "{entry}");
    } else {
        let notes = s["device_notes"].to_string();
        assert!(notes.contains("get_gpu_processes"), "says why: {s}");
    }

    // The node: taints, capacity, requests, the agent's verdict and the drain command.
    let r = call_synced(&client, "describe_gpu_node", json!({"node": xid_node})).await;
    assert!(!is_error(&r), "{}", text(&r));
    let d = structured(&r);
    assert_eq!(d["gpus"]["capacity"]["nvidia.com/gpu"], 8, "{d}");
    assert_eq!(d["gpus"]["requested"]["nvidia.com/gpu"], jobs, "{d}");
    assert_eq!(d["gpus"]["pods_holding_gpus"], jobs, "{d}");
    assert_eq!(d["agent"]["verdict"], "critical", "{d}");
    assert_eq!(
        d["gpu_labels"]["nvidia.com/gpu.product"],
        "NVIDIA-H100-80GB-HBM3"
    );
    let commands = d["commands"].to_string();
    assert!(
        commands.contains(&format!(
            "kubectl drain {xid_node} --ignore-daemonsets --delete-emptydir-data"
        )),
        "{d}"
    );
    assert_eq!(
        commands.contains(&format!("kubectl cordon {xid_node}")),
        xid_node != cordoned,
        "cordon is offered unless already cordoned: {d}"
    );
    assert!(text(&r).contains("kubectl drain"), "{}", text(&r));

    let r = call_synced(&client, "describe_gpu_node", json!({"node": tainted})).await;
    let d = structured(&r);
    assert!(
        d["taints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "nvidia.com/gpu" && t["effect"] == "NoSchedule"),
        "{d}"
    );
    let r = call_synced(&client, "describe_gpu_node", json!({"node": cordoned})).await;
    let d = structured(&r);
    assert_eq!(d["cordoned"], true, "{d}");
    assert!(d["headline"].as_str().unwrap().contains("cordoned"), "{d}");

    // Was it the GPU? On the sick node the evidence points to a GPU or cannot tell; on a
    // healthy node it finds nothing against the GPU.
    let r = call_synced(
        &client,
        "explain_pod_gpu_failure",
        json!({"namespace": ns, "pod": format!("{xid_node}-job-0")}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let x = structured(&r);
    assert!(
        ["gpu_fault_likely", "cannot_tell"].contains(&x["conclusion"].as_str().unwrap()),
        "{x}"
    );
    assert!(!x["cannot_know"].as_array().unwrap().is_empty(), "{x}");
    let healthy = e
        .nodes
        .iter()
        .find(|n| !e.scenarios.contains_key(*n))
        .expect("a healthy node");
    let r = call_synced(
        &client,
        "explain_pod_gpu_failure",
        json!({"namespace": ns, "pod": format!("{healthy}-job-0")}),
    )
    .await;
    assert_eq!(
        structured(&r)["conclusion"],
        "no_gpu_evidence",
        "{}",
        text(&r)
    );

    // Every GPU pod, one page at a time, each exactly once.
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = json!({"namespace": ns, "limit": 1});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let r = call_synced(&client, "get_pod_gpu_allocation", args).await;
        assert!(!is_error(&r), "{}", text(&r));
        let s = structured(&r);
        assert_eq!(s["total"], e.nodes.len() * jobs, "{s}");
        for p in s["pods"].as_array().unwrap() {
            assert!(
                seen.insert(p["pod"].as_str().unwrap().to_owned()),
                "{p} twice"
            );
        }
        match s["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let expected: BTreeSet<String> = e
        .nodes
        .iter()
        .flat_map(|n| (0..jobs).map(move |i| format!("{n}-job-{i}")))
        .collect();
    assert_eq!(seen, expected);
    client.cancel().await.unwrap();
}

#[tokio::test]
#[ignore = "needs a cluster: run through `cargo xtask e2e`"]
async fn s06_bad_node_arguments_are_clean_tool_errors() {
    let e = env();
    let client = ready_client(&e).await;
    let long = "a".repeat(300);
    for bad in [
        "",
        long.as_str(),
        "Node_1",
        "../etc/passwd",
        "gpu-node-1;rm -rf /",
        "gpu-node-1\nx",
    ] {
        let r = call(&client, "get_gpu_health", json!({ "node": bad })).await;
        assert!(is_error(&r), "node {bad:?} was accepted: {r:?}");
        assert!(
            !text(&r).is_empty(),
            "node {bad:?}: the error has no message"
        );
    }
    // An unknown but valid name: the error lists the known nodes.
    let r = call(
        &client,
        "get_gpu_inventory",
        json!({ "node": "no-such-node" }),
    )
    .await;
    assert!(is_error(&r));
    let msg = text(&r);
    assert!(
        e.nodes.iter().any(|n| msg.contains(n.as_str())),
        "the error should list known nodes: {msg}"
    );
    // Wrong type for node.
    let r = call(&client, "get_gpu_inventory", json!({ "node": 7 })).await;
    assert!(is_error(&r), "a numeric node was accepted");
    // A tool the gateway does not know: a JSON-RPC error, as the agent gives.
    let err = try_call(&client, "no_such_tool", json!({})).await;
    match err {
        Err(rmcp::ServiceError::McpError(data)) => assert_eq!(data.code.0, -32602, "{data:?}"),
        other => panic!("unknown tool: expected JSON-RPC -32602, got {other:?}"),
    }
    client.cancel().await.unwrap();
}

/// Removing `pods/exec` from the gateway's Role breaks exec routing with a clear error; putting
/// it back restores it. Proves the chart's Role is what the gateway runs on.
#[tokio::test]
#[ignore = "needs a cluster: run through `cargo xtask e2e`"]
async fn s07_exec_routing_needs_pods_exec_in_the_role() {
    let e = env();
    if e.routing != "exec" {
        eprintln!("http routing: pods/exec is not used, nothing to prove");
        return;
    }
    let ns = var("GPU_MCP_E2E_NAMESPACE");
    let role = var("GPU_MCP_E2E_GATEWAY_ROLE");
    let client = ready_client(&e).await;
    let node = &e.nodes[0];
    let original = kubectl(&["-n", &ns, "get", "role", &role, "-o", "json"]).unwrap();
    let mut stripped: Value = serde_json::from_str(&original).unwrap();
    let rules = stripped["rules"].as_array_mut().unwrap();
    let before = rules.len();
    rules.retain(|r| {
        !r["resources"]
            .as_array()
            .is_some_and(|res| res.contains(&json!("pods/exec")))
    });
    assert!(
        rules.len() < before,
        "the Role has no pods/exec rule to remove: {original}"
    );
    for k in [
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "managedFields",
    ] {
        stripped["metadata"].as_object_mut().unwrap().remove(k);
    }
    kubectl_stdin(&["replace", "-f", "-"], &stripped.to_string()).unwrap();

    // RBAC changes reach the authorizer within moments; poll (bounded) for the refusal.
    let mut refused = None;
    for _ in 0..60 {
        let r = call(&client, "get_gpu_inventory", json!({ "node": node })).await;
        if is_error(&r) {
            refused = Some(text(&r));
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Restore before asserting, so a failure leaves the cluster usable.
    let mut restore: Value = serde_json::from_str(&original).unwrap();
    for k in [
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "managedFields",
    ] {
        restore["metadata"].as_object_mut().unwrap().remove(k);
    }
    kubectl_stdin(&["replace", "-f", "-"], &restore.to_string()).unwrap();

    let msg = refused.expect("exec routing kept working without pods/exec in the Role");
    let lower = msg.to_lowercase();
    assert!(
        lower.contains("forbidden") || lower.contains("403") || lower.contains("pods/exec"),
        "the error should say exec was forbidden: {msg}"
    );
    let mut restored = false;
    for _ in 0..60 {
        let r = call(&client, "get_gpu_inventory", json!({ "node": node })).await;
        if !is_error(&r) {
            restored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        restored,
        "exec routing did not recover after pods/exec was put back"
    );
    client.cancel().await.unwrap();
}

/// An agent started by this test for an added pod (http routing); killed on drop.
struct AgentProcess(Child);

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A node added while the gateway runs gets an agent pod (DaemonSet) that is routable without a
/// restart; when the pod is deleted (node no longer matches), it leaves `list_gpu_nodes`.
#[tokio::test]
#[ignore = "needs a cluster: run through `cargo xtask e2e`"]
async fn s08_added_pod_is_routable_and_deleted_pod_disappears() {
    let e = env();
    let ns = var("GPU_MCP_E2E_NAMESPACE");
    let client = ready_client(&e).await;
    let template = &e.nodes[0];
    let added = "gpu-node-added";

    // A new node shaped like an existing GPU node (labels, annotations, taints), so the same
    // kwok rules manage it and the agent DaemonSet selects it.
    let mut node: Value =
        serde_json::from_str(&kubectl(&["get", "node", template, "-o", "json"]).unwrap()).unwrap();
    node.as_object_mut().unwrap().remove("status");
    let meta = node["metadata"].as_object_mut().unwrap();
    for k in [
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "managedFields",
    ] {
        meta.remove(k);
    }
    meta.insert("name".into(), json!(added));
    if let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut) {
        labels.insert("kubernetes.io/hostname".into(), json!(added));
    }
    if let Some(spec) = node.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("podCIDR");
        spec.remove("podCIDRs");
        spec.remove("providerID");
    }
    let _ = kubectl(&["delete", "node", added, "--ignore-not-found", "--wait=true"]);
    kubectl_stdin(&["create", "-f", "-"], &node.to_string()).unwrap();

    let result = added_pod_scenario(&e, &client, &ns, added).await;
    let _ = kubectl(&[
        "delete",
        "node",
        added,
        "--ignore-not-found",
        "--wait=false",
    ]);
    result.unwrap();
    client.cancel().await.unwrap();
}

async fn added_pod_scenario(e: &Env, client: &Client, ns: &str, added: &str) -> Result<(), String> {
    // Wait for the DaemonSet's pod on the new node to run and get an IP.
    let mut pod_ip = String::new();
    for _ in 0..120 {
        let pods: Value = serde_json::from_str(&kubectl(&[
            "-n",
            ns,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/component=agent",
            "--field-selector",
            &format!("spec.nodeName={added}"),
            "-o",
            "json",
        ])?)
        .map_err(|e| e.to_string())?;
        if let Some(ip) = pods["items"]
            .as_array()
            .and_then(|items| items.iter().find_map(|p| p["status"]["podIP"].as_str()))
        {
            pod_ip = ip.to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if pod_ip.is_empty() {
        return Err(format!("no agent pod with an IP appeared on {added}"));
    }
    let _agent = if e.routing == "http" {
        let port = var("GPU_MCP_E2E_AGENT_PORT");
        let child = Command::new(var("GPU_MCP_E2E_AGENT_BIN"))
            .args([
                "--transport",
                "http",
                "--nvml-mode",
                "mock",
                "--node-name",
                added,
            ])
            .args(
                std::env::var("GPU_MCP_E2E_AGENT_ARGS")
                    .unwrap_or_default()
                    .lines()
                    .filter(|a| !a.is_empty()),
            )
            .arg("--listen")
            .arg(format!("{pod_ip}:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting an agent for {added}: {e}"))?;
        Some(AgentProcess(child))
    } else {
        None
    };

    wait_listing(client, "the added node is listed ready", |m| {
        m.get(added).is_some_and(|v| v["ready"] == true)
    })
    .await;
    // Routable: the agent may take a moment to listen; retry a bounded number of times.
    let mut answered = None;
    for _ in 0..40 {
        let r = call(client, "get_gpu_inventory", json!({ "node": added })).await;
        if !is_error(&r) {
            answered = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let r = answered.ok_or_else(|| format!("{added} never answered get_gpu_inventory"))?;
    let s = structured(&r);
    if s["node"] != added || uuids(&s["result"]).is_empty() {
        return Err(format!("unexpected answer from {added}: {s}"));
    }

    // The node stops matching the DaemonSet: its pod is deleted and must leave the listing.
    kubectl(&["label", "node", added, "nvidia.com/gpu.present-"])?;
    wait_listing(client, "the deleted pod's node leaves the listing", |m| {
        !m.contains_key(added)
    })
    .await;
    let r = call(client, "get_gpu_inventory", json!({ "node": added })).await;
    if !is_error(&r) {
        return Err(format!(
            "{added} is still routable after its pod was deleted"
        ));
    }
    Ok(())
}

/// Killing one agent mid-run: the fan-out answer is partial and names that node; the call
/// returns (the gateway bounds each node by its node timeout).
#[tokio::test]
#[ignore = "needs a cluster: run through `cargo xtask e2e`"]
async fn s09_killed_agent_gives_a_partial_answer_naming_it() {
    let e = env();
    let victim = var("GPU_MCP_E2E_KILL_NODE");
    let kill_cmd = var("GPU_MCP_E2E_KILL_CMD");
    let client = ready_client(&e).await;
    // A fan-out in flight while the agent dies: it must come back, complete or partial.
    let in_flight = {
        let client = client.peer().clone();
        tokio::spawn(async move {
            client
                .call_tool(CallToolRequestParams::new("get_gpu_health").with_arguments(Map::new()))
                .await
        })
    };
    let status = Command::new("sh")
        .arg("-c")
        .arg(&kill_cmd)
        .status()
        .unwrap();
    assert!(status.success(), "kill command failed: {kill_cmd}");
    // A hang guard, not a performance assertion.
    let guard = e.node_timeout * 4 + Duration::from_secs(30);
    let first = tokio::time::timeout(guard, in_flight)
        .await
        .expect("fan-out hung")
        .unwrap();
    assert!(
        first.is_ok(),
        "the in-flight fan-out failed as a whole: {first:?}"
    );

    let r = tokio::time::timeout(
        guard,
        call(&client, "get_gpu_health", json!({"detail": "full"})),
    )
    .await
    .expect("fan-out after the kill hung");
    assert!(
        !is_error(&r),
        "one dead node must not fail the whole answer: {}",
        text(&r)
    );
    let s = structured(&r);
    let failed: Vec<&str> = s["summary"]["failed_nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        failed.contains(&victim.as_str()),
        "{victim} not named as failed: {}",
        s["summary"]
    );
    let en = entry(s, &victim);
    assert_eq!(en["ok"], false);
    assert!(
        en["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{en}"
    );
    for n in e.nodes.iter().filter(|n| **n != victim) {
        assert_eq!(entry(s, n)["ok"], true, "{n} should be unaffected");
    }
    let gw_timeout_ms = u64::try_from(e.node_timeout.as_millis()).unwrap();
    assert!(en["duration_ms"].as_u64().is_some(), "{en}");
    eprintln!(
        "{victim} failed after {} ms (node timeout {gw_timeout_ms} ms)",
        en["duration_ms"]
    );

    // Routed to the dead node: a tool error naming it.
    let r = call(&client, "get_gpu_health", json!({ "node": victim })).await;
    assert!(is_error(&r));
    assert!(text(&r).contains(victim.as_str()), "{}", text(&r));
    client.cancel().await.unwrap();
}
