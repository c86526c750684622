//! The gateway binary in `--agents` mode over real `gpu-mcp-agent` processes on loopback ports,
//! driven through the `rmcp` client.
//!
//! The agent binary comes from the same target directory as the gateway; when it is missing it is
//! built with `cargo build -p gpu-mcp-agent`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig, ProtocolVersion};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Client = RunningService<RoleClient, ClientConfig>;

const GPU_TOOLS: [&str; 5] = [
    "get_gpu_inventory",
    "get_gpu_health",
    "analyze_xid_errors",
    "get_gpu_processes",
    "get_nvlink_topology",
];

/// A child process killed when dropped.
struct Proc {
    child: Child,
    name: String,
}

impl Proc {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn agent_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let gateway = Path::new(env!("CARGO_BIN_EXE_gpu-mcp-gateway"));
        let bin = gateway.with_file_name(format!("gpu-mcp-agent{}", std::env::consts::EXE_SUFFIX));
        if !bin.exists() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "gpu-mcp-agent"])
                .status()
                .expect("run cargo build -p gpu-mcp-agent");
            assert!(status.success(), "cargo build -p gpu-mcp-agent: {status}");
        }
        assert!(bin.exists(), "no agent binary at {}", bin.display());
        bin
    })
    .clone()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `port`.
async fn wait_for_port(port: u16, proc: &mut Proc) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!("{} exited early: {status}", proc.name);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} does not listen on 127.0.0.1:{port}", proc.name);
}

/// Three agents (optionally with scenarios) and a gateway over them.
struct Cluster {
    agents: Vec<(String, u16, Proc)>,
    gateway_port: u16,
    _gateway: Proc,
}

impl Cluster {
    async fn start(nodes: &[(&str, usize, &str)]) -> Self {
        Self::start_with(nodes, &[], &[]).await
    }

    /// Like `start`, with extra arguments for every agent and for the gateway.
    async fn start_with(
        nodes: &[(&str, usize, &str)],
        agent_args: &[&str],
        gateway_args: &[&str],
    ) -> Self {
        let mut agents = Vec::new();
        for (name, gpus, scenario) in nodes {
            let port = free_port();
            let child = Command::new(agent_bin())
                .args(["--transport", "http", "--listen"])
                .arg(format!("127.0.0.1:{port}"))
                .args([
                    "--nvml-mode",
                    "mock",
                    "--node-name",
                    name,
                    "--mock-scenario",
                    scenario,
                ])
                .arg("--mock-gpus")
                .arg(gpus.to_string())
                .args(["--log-level", "warn"])
                .args(agent_args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("start gpu-mcp-agent");
            let mut proc = Proc {
                child,
                name: format!("agent {name}"),
            };
            wait_for_port(port, &mut proc).await;
            agents.push(((*name).to_owned(), port, proc));
        }
        let list: Vec<String> = agents
            .iter()
            .map(|(n, p, _)| format!("{n}=http://127.0.0.1:{p}/mcp"))
            .collect();
        let gateway_port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_gpu-mcp-gateway"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{gateway_port}"))
            .arg("--agents")
            .arg(list.join(","))
            .args(["--node-timeout", "5s", "--log-level", "warn"])
            .args(gateway_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start gpu-mcp-gateway");
        let mut gateway = Proc {
            child,
            name: "gateway".into(),
        };
        wait_for_port(gateway_port, &mut gateway).await;
        Self {
            agents,
            gateway_port,
            _gateway: gateway,
        }
    }

    async fn client(&self) -> Client {
        connect(self.gateway_port).await
    }

    fn names(&self) -> Vec<String> {
        self.agents.iter().map(|(n, _, _)| n.clone()).collect()
    }
}

async fn connect(port: u16) -> Client {
    try_connect(port, None).await.expect("MCP client connects")
}

async fn try_connect(port: u16, token: Option<&str>) -> Result<Client, String> {
    // rmcp's HTTP client builds a TLS stack even for http:// URLs; ring is the one provider.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let mut config =
        StreamableHttpClientTransportConfig::with_uri(format!("http://127.0.0.1:{port}/mcp"));
    if let Some(token) = token {
        config = config.auth_header(token);
    }
    ClientConfig::default()
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .map_err(|e| e.to_string())
}

async fn call(client: &Client, tool: &str, args: Value) -> CallToolResult {
    client
        .call_tool(
            CallToolRequestParams::new(tool.to_owned())
                .with_arguments(args.as_object().cloned().unwrap()),
        )
        .await
        .unwrap_or_else(|e| panic!("{tool} {args}: {e}"))
}

fn failed(r: &CallToolResult) -> bool {
    r.is_error == Some(true)
}

fn text(r: &CallToolResult) -> String {
    let v = serde_json::to_value(&r.content).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn structured(r: &CallToolResult) -> Value {
    r.structured_content
        .clone()
        .unwrap_or_else(|| panic!("no structuredContent: {}", text(r)))
}

/// The GPU UUIDs of an inventory result.
fn uuids(result: &Value) -> BTreeSet<String> {
    result["gpus"]
        .as_array()
        .unwrap_or_else(|| panic!("no gpus[] in {result}"))
        .iter()
        .map(|g| {
            let u = &g["uuid"];
            u.as_str()
                .or_else(|| u["value"].as_str())
                .unwrap_or_else(|| panic!("no uuid in {g}"))
                .to_owned()
        })
        .collect()
}

/// A raw HTTP/1.1 GET on loopback: (status, body).
async fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let raw = String::from_utf8_lossy(&buf).into_owned();
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

const HEALTHY3: [(&str, usize, &str); 3] = [
    ("gpu-node-1", 2, "healthy"),
    ("gpu-node-2", 3, "healthy"),
    ("gpu-node-3", 1, "healthy"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_shows_list_gpu_nodes_and_node_on_every_gpu_tool() {
    let cluster = Cluster::start(&HEALTHY3).await;
    let client = cluster.client().await;
    let tools = client.list_all_tools().await.unwrap();
    let names: BTreeSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(names.contains("list_gpu_nodes"), "{names:?}");

    // The agent's tools, each with `node` added: compare with the agent's own list.
    let agent = connect(cluster.agents[0].1).await;
    let agent_tools = agent.list_all_tools().await.unwrap();
    for at in &agent_tools {
        let gt = tools
            .iter()
            .find(|t| t.name == at.name)
            .unwrap_or_else(|| panic!("gateway lacks {}", at.name));
        let schema = serde_json::to_value(&*gt.input_schema).unwrap();
        let node = &schema["properties"]["node"];
        assert_eq!(node["type"], "string", "{}: {schema}", gt.name);
        assert!(
            node["description"]
                .as_str()
                .unwrap()
                .contains("list_gpu_nodes")
        );
        assert!(
            !schema["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("node"))),
            "{}: node must be optional",
            gt.name
        );
        assert!(
            gt.description
                .as_deref()
                .unwrap_or_default()
                .contains("`node`")
        );
        // Every agent argument is offered as the agent defines it, except the gateway's own
        // (`detail`, `min_verdict`), which say what they do without `node` and with it.
        let agent_schema = serde_json::to_value(&*at.input_schema).unwrap();
        for (k, v) in agent_schema["properties"].as_object().unwrap() {
            if matches!(k.as_str(), "detail" | "min_verdict") {
                let words = schema["properties"][k]["description"].as_str().unwrap();
                assert!(words.contains("Without `node`"), "{}.{k}: {words}", gt.name);
                assert!(words.contains("With `node`"), "{}.{k}: {words}", gt.name);
                continue;
            }
            assert_eq!(&schema["properties"][k], v, "{}.{k}", gt.name);
        }
    }
    for t in GPU_TOOLS {
        assert!(names.contains(t), "{t} missing: {names:?}");
    }
    assert_eq!(tools.len(), agent_tools.len() + 1);
    agent.cancel().await.unwrap();
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_per_node_and_fan_out_agree() {
    let cluster = Cluster::start(&HEALTHY3).await;
    let client = cluster.client().await;

    // list_gpu_nodes: every node, ready, with its GPU count.
    let r = call(&client, "list_gpu_nodes", json!({})).await;
    assert!(!failed(&r), "{}", text(&r));
    let list = structured(&r);
    assert_eq!(list["status"], "ok", "{list}");
    assert_eq!(list["node_count"], 3);
    for (i, (name, gpus, _)) in HEALTHY3.iter().enumerate() {
        let n = &list["nodes"][i];
        assert_eq!(n["name"], *name);
        assert_eq!(n["ready"], true);
        assert_eq!(n["gpu_count"], *gpus as u64, "{n}");
        assert_eq!(n["health"], "healthy", "{n}");
    }

    // With `node`: exactly that node's GPUs, tagged with the node.
    let mut per_node = BTreeSet::new();
    for (name, gpus, _) in HEALTHY3 {
        let r = call(&client, "get_gpu_inventory", json!({"node": name})).await;
        assert!(!failed(&r), "{name}: {}", text(&r));
        let s = structured(&r);
        assert_eq!(s["node"], name);
        assert_eq!(s["result"]["node"], name, "the agent on {name} answered");
        let ids = uuids(&s["result"]);
        assert_eq!(ids.len(), gpus, "{name}");
        assert!(
            per_node.is_disjoint(&ids),
            "{name} reports another node's GPUs"
        );
        per_node.extend(ids);
    }

    // Without `node`, with every node's full answer: the union of the nodes' GPUs equals the
    // per-node answers.
    let r = call(&client, "get_gpu_inventory", json!({"detail": "full"})).await;
    assert!(!failed(&r), "{}", text(&r));
    let fan = structured(&r);
    let mut union = BTreeSet::new();
    for (i, (name, _, _)) in HEALTHY3.iter().enumerate() {
        let e = &fan["nodes"][i];
        assert_eq!(e["name"], *name);
        assert_eq!(e["ok"], true, "{e}");
        assert!(e["duration_ms"].is_u64());
        union.extend(uuids(&e["result"]));
    }
    assert_eq!(union, per_node);
    let summary = &fan["summary"];
    assert_eq!(summary["nodes_ok"], 3);
    assert_eq!(summary["gpus_total"], per_node.len() as u64);
    let models: u64 = summary["gpu_models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["count"].as_u64().unwrap())
        .sum();
    assert_eq!(models, per_node.len() as u64, "{summary}");
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xid_79_node_is_critical_in_aggregated_health() {
    let cluster =
        Cluster::start(&[("gpu-node-1", 2, "healthy"), ("gpu-node-2", 2, "xid-79")]).await;
    let client = cluster.client().await;
    // The default answer: the critical node in detail, the healthy one only counted.
    let r = call(&client, "get_gpu_health", json!({})).await;
    assert!(!failed(&r), "{}", text(&r));
    let fan = structured(&r);
    assert_eq!(fan["problems"].as_array().unwrap().len(), 1, "{fan}");
    assert_eq!(fan["problems"][0]["node"], "gpu-node-2", "{fan}");
    assert_eq!(fan["problems"][0]["verdict"], "critical", "{fan}");
    assert_eq!(fan["omitted"]["healthy_nodes"], 1, "{fan}");
    let words = text(&r);
    assert!(words.starts_with("1 of 2 nodes need attention"), "{words}");
    assert!(
        words.contains("gpu-node-2 [critical]") && words.contains("Action:"),
        "{words}"
    );

    let r = call(&client, "get_gpu_health", json!({"detail": "full"})).await;
    let fan = structured(&r);
    assert_eq!(fan["nodes"][0]["result"]["verdict"], "healthy", "{fan}");
    assert_eq!(fan["nodes"][1]["result"]["verdict"], "critical", "{fan}");
    assert_eq!(
        fan["summary"]["nodes_by_verdict"]["critical"], 1,
        "{}",
        fan["summary"]
    );

    let r = call(&client, "analyze_xid_errors", json!({})).await;
    assert!(!failed(&r), "{}", text(&r));
    let top = structured(&r)["summary"]["top_xids"].clone();
    let xid79 = top
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["xid"] == 79)
        .unwrap_or_else(|| panic!("no Xid 79 in {top}"));
    assert_eq!(xid79["nodes"], json!(["gpu-node-2"]));

    let r = call(&client, "list_gpu_nodes", json!({})).await;
    let list = structured(&r);
    assert_eq!(list["nodes"][1]["health"], "critical", "{list}");

    // With `node`, the agent's own answer at the detail asked: the verdict and counts only,
    // then the groups without the events; what cannot apply to one node is refused.
    let r = call(
        &client,
        "get_gpu_health",
        json!({"node": "gpu-node-2", "detail": "summary"}),
    )
    .await;
    assert!(!failed(&r), "{}", text(&r));
    let one = structured(&r);
    assert_eq!(one["result"]["verdict"], "critical", "{one}");
    assert_eq!(one["result"]["detail"], "summary", "{one}");
    assert_eq!(one["result"]["gpus"], json!([]), "{one}");
    assert_eq!(one["result"]["counts"]["critical"], 1, "{one}");
    let r = call(
        &client,
        "get_gpu_health",
        json!({"node": "gpu-node-2", "detail": "problems"}),
    )
    .await;
    let one = structured(&r);
    assert_eq!(one["result"]["gpus"].as_array().unwrap().len(), 1, "{one}");
    let r = call(
        &client,
        "analyze_xid_errors",
        json!({"node": "gpu-node-2", "detail": "summary"}),
    )
    .await;
    let one = structured(&r);
    assert_eq!(one["result"]["events"], json!([]), "{one}");
    assert!(one["result"]["total_events"].as_u64().unwrap() > 0, "{one}");
    let r = call(
        &client,
        "get_gpu_health",
        json!({"node": "gpu-node-2", "node_limit": 5}),
    )
    .await;
    assert!(failed(&r));
    assert!(
        text(&r).contains("Invalid argument `node_limit`"),
        "{}",
        text(&r)
    );

    // Who is on the sick GPU: with `node`, that agent's complete answer; without, the fan-out
    // names the pod on the critical GPU only.
    let r = call(&client, "get_gpu_processes", json!({"node": "gpu-node-2"})).await;
    assert!(!failed(&r), "{}", text(&r));
    let one = structured(&r);
    assert_eq!(one["node"], "gpu-node-2");
    let sick = &one["result"]["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["gpu_index"] == 0)
        .cloned()
        .unwrap_or_else(|| panic!("no allocation of GPU 0: {one}"));
    assert_eq!(sick["verdict"], "critical");
    assert_eq!(sick["holders"][0]["pod"], "gpu-node-2-job-0");
    let r = call(&client, "get_gpu_processes", json!({})).await;
    assert!(!failed(&r), "{}", text(&r));
    let fan = structured(&r);
    assert_eq!(fan["summary"]["nodes_ok"], 2, "{fan}");
    assert_eq!(fan["problems"].as_array().unwrap().len(), 1, "{fan}");
    assert_eq!(fan["problems"][0]["node"], "gpu-node-2", "{fan}");
    assert!(
        text(&r).contains("ml-training/gpu-node-2-job-0/worker"),
        "{}",
        text(&r)
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_with_node_is_the_agents_and_without_names_the_unregistered_fabric() {
    let cluster = Cluster::start(&[
        ("gpu-node-1", 8, "healthy"),
        ("gpu-node-2", 8, "fabric-not-started"),
    ])
    .await;
    let client = cluster.client().await;
    let r = call(
        &client,
        "get_nvlink_topology",
        json!({"node": "gpu-node-1"}),
    )
    .await;
    assert!(!failed(&r), "{}", text(&r));
    let one = structured(&r);
    assert_eq!(one["node"], "gpu-node-1");
    let result = &one["result"];
    assert_eq!(result["verdict"], "healthy", "{result}");
    assert_eq!(result["interconnect"], "nvswitch");
    assert_eq!(result["matrix"].as_array().unwrap().len(), 9);
    assert!(
        result["matrix"][1].as_str().unwrap().contains("X     NV18"),
        "{result}"
    );

    let r = call(&client, "get_nvlink_topology", json!({})).await;
    assert!(!failed(&r), "{}", text(&r));
    let fan = structured(&r);
    assert_eq!(fan["summary"]["nodes_ok"], 2, "{fan}");
    assert_eq!(fan["problems"].as_array().unwrap().len(), 1, "{fan}");
    let p = &fan["problems"][0];
    assert_eq!(p["node"], "gpu-node-2");
    assert_eq!(p["verdict"], "critical");
    let checks: Vec<&Value> = p["details"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["check"])
        .collect();
    assert!(checks.contains(&&json!("fabric")), "{p}");
    assert!(
        p["details"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["gpu"] == 0)
    );
    assert_eq!(fan["omitted"]["healthy_nodes"], 1, "{fan}");
    let words = text(&r);
    assert!(words.contains("GPU 0 critical"), "{words}");
    assert!(words.contains("nvidia-fabricmanager"), "{words}");
    let size = serde_json::to_vec(&fan).unwrap().len();
    assert!(size < 8 * 1024, "{size} bytes");

    // Arguments invalid on every node are refused once, before any node is asked.
    let r = call(&client, "get_nvlink_topology", json!({"full": "yes"})).await;
    assert!(failed(&r));
    assert!(text(&r).contains("full"), "{}", text(&r));
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_gives_a_partial_answer_naming_it() {
    let mut cluster = Cluster::start(&HEALTHY3).await;
    let client = cluster.client().await;
    cluster.agents[1].2.kill();
    let r = call(&client, "get_gpu_health", json!({})).await;
    assert!(!failed(&r), "a partial answer is a success: {}", text(&r));
    assert_eq!(structured(&r)["failures"][0]["node"], "gpu-node-2");
    assert!(
        text(&r).contains("Did not answer:\n- gpu-node-2"),
        "{}",
        text(&r)
    );
    let r = call(&client, "get_gpu_health", json!({"detail": "full"})).await;
    let fan = structured(&r);
    let s = &fan["summary"];
    assert_eq!(s["nodes_ok"], 2, "{s}");
    assert_eq!(s["nodes_failed"], 1, "{s}");
    assert_eq!(s["failed_nodes"], json!(["gpu-node-2"]));
    assert_eq!(fan["nodes"][1]["ok"], false);
    assert!(fan["nodes"][1]["error"]["message"].is_string());

    let r = call(&client, "get_gpu_health", json!({"node": "gpu-node-2"})).await;
    assert!(failed(&r));
    assert!(text(&r).contains("gpu-node-2"), "{}", text(&r));

    let r = call(&client, "list_gpu_nodes", json!({})).await;
    let list = structured(&r);
    assert_eq!(list["status"], "degraded");
    assert!(list["nodes"][1]["error"].is_object(), "{list}");

    // Every agent gone: an error result, still with every node's failure.
    cluster.agents[0].2.kill();
    cluster.agents[2].2.kill();
    let r = call(&client, "get_gpu_health", json!({})).await;
    assert!(failed(&r), "{}", text(&r));
    assert_eq!(structured(&r)["summary"]["nodes_failed"], 3);
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_node_values_and_unknown_tools() {
    let cluster = Cluster::start(&HEALTHY3[..2]).await;
    let client = cluster.client().await;
    let long = "a".repeat(254);
    for bad in [
        json!(""),
        json!(long),
        json!("Gpu_Node_1"),
        json!("../gpu-node-1"),
        json!("gpu-node-1;rm -rf /"),
        json!("gpu-node-1\ninjected"),
        json!(7),
    ] {
        let r = call(&client, "get_gpu_health", json!({"node": bad})).await;
        assert!(failed(&r), "{bad}: {}", text(&r));
        let t = text(&r);
        assert!(t.contains("Nothing was sent"), "{bad}: {t}");
        assert!(t.contains("gpu-node-1, gpu-node-2"), "{bad}: {t}");
    }
    let r = call(&client, "get_gpu_health", json!({"node": "gpu-node-9"})).await;
    assert!(failed(&r));
    let t = text(&r);
    assert!(t.contains("Unknown node \"gpu-node-9\""), "{t}");
    assert!(t.contains("Known nodes: gpu-node-1, gpu-node-2"), "{t}");
    assert!(t.contains("Did you mean"), "{t}");

    // Unknown tool: the JSON-RPC error the agent itself gives.
    let gateway_err = client
        .call_tool(CallToolRequestParams::new("get_gpu_horoscope"))
        .await
        .unwrap_err();
    let agent = connect(cluster.agents[0].1).await;
    let agent_err = agent
        .call_tool(CallToolRequestParams::new("get_gpu_horoscope"))
        .await
        .unwrap_err();
    let code = |e: &rmcp::ServiceError| match e {
        rmcp::ServiceError::McpError(d) => d.code.0,
        other => panic!("not a JSON-RPC error: {other}"),
    };
    assert_eq!(code(&gateway_err), -32602);
    assert_eq!(code(&gateway_err), code(&agent_err));
    agent.cancel().await.unwrap();
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_and_metrics() {
    let cluster = Cluster::start(&HEALTHY3[..1]).await;
    let (status, _) = http_get(cluster.gateway_port, "/readyz").await;
    assert_eq!(status, 200, "static mode is ready at once");
    let client = cluster.client().await;
    let _ = call(&client, "get_gpu_health", json!({})).await;
    let _ = call(&client, "get_gpu_health", json!({"node": "gpu-node-1"})).await;
    let (status, body) = http_get(cluster.gateway_port, "/metrics").await;
    assert_eq!(status, 200);
    for needle in [
        r#"gateway_node_calls_total{node="gpu-node-1",tool="get_gpu_health",outcome="ok"} 2"#,
        "gateway_fan_out_nodes_count 1",
        r#"gateway_tool_call_duration_seconds_count{tool="get_gpu_health",mode="single"} 1"#,
        "gateway_cached_agent_pods 1",
        "gateway_ready_agent_pods 1",
    ] {
        assert!(body.contains(needle), "missing {needle} in\n{body}");
    }
    client.cancel().await.unwrap();
    assert_eq!(cluster.names(), ["gpu-node-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_is_required_and_the_gateway_uses_its_own_with_agents() {
    const TOKEN: &str = "s3cr3t-token-for-tests";
    const AGENT_TOKEN: &str = "the-gateways-own-agent-token";
    let dir = std::env::temp_dir().join(format!("gpu-mcp-gateway-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let agent_file = dir.join("agent-token");
    std::fs::write(&agent_file, AGENT_TOKEN).unwrap();
    let file = file.to_str().unwrap().to_owned();
    let agent_file = agent_file.to_str().unwrap().to_owned();
    let cluster = Cluster::start_with(
        &HEALTHY3[..2],
        &["--auth-token", AGENT_TOKEN],
        &[
            "--auth-token-file",
            &file,
            "--agent-token-file",
            &agent_file,
        ],
    )
    .await;
    assert!(try_connect(cluster.gateway_port, None).await.is_err());
    assert!(
        try_connect(cluster.gateway_port, Some("wrong"))
            .await
            .is_err()
    );
    let client = try_connect(cluster.gateway_port, Some(TOKEN))
        .await
        .unwrap();
    // The agents require the gateway's own token: it must have sent it.
    let r = call(&client, "get_gpu_health", json!({})).await;
    assert!(!failed(&r), "{}", text(&r));
    assert_eq!(structured(&r)["summary"]["nodes_ok"], 2);
    client.cancel().await.unwrap();

    // A client's token is never forwarded: agents that expect it refuse the gateway.
    let cluster = Cluster::start_with(
        &HEALTHY3[..1],
        &["--auth-token", TOKEN],
        &["--auth-token-file", &file],
    )
    .await;
    let client = try_connect(cluster.gateway_port, Some(TOKEN))
        .await
        .unwrap();
    let r = call(&client, "get_gpu_health", json!({"node": "gpu-node-1"})).await;
    assert!(
        failed(&r),
        "the client's token reached an agent: {}",
        text(&r)
    );
    assert!(text(&r).contains("401"), "{}", text(&r));
    client.cancel().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn configuration_errors_exit_64() {
    for args in [
        vec![
            "--agents",
            "Bad Name=http://127.0.0.1:1/mcp",
            "--listen",
            "127.0.0.1:0",
        ],
        vec!["--agents", "a=http://127.0.0.1:1/mcp", "--routing", "exec"],
        vec!["--node-timeout", "soon"],
        vec!["--no-such-flag"],
        vec![
            "--agents",
            "a=http://127.0.0.1:1/mcp",
            "--auth-token-file",
            "/nonexistent/token",
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_gpu-mcp-gateway"))
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: says why");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_transport_serves_the_same_catalog() {
    let cluster = Cluster::start(&HEALTHY3[..2]).await;
    let list: Vec<String> = cluster
        .agents
        .iter()
        .map(|(n, p, _)| format!("{n}=http://127.0.0.1:{p}/mcp"))
        .collect();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_gpu-mcp-gateway"));
    cmd.args(["--transport", "stdio", "--log-level", "warn", "--agents"])
        .arg(list.join(","));
    let client = ClientConfig::default()
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
        .serve(rmcp::transport::TokioChildProcess::new(cmd).unwrap())
        .await
        .unwrap();
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "list_gpu_nodes"));
    let r = call(&client, "get_gpu_inventory", json!({"node": "gpu-node-2"})).await;
    assert!(!failed(&r), "{}", text(&r));
    assert_eq!(uuids(&structured(&r)["result"]).len(), 3);
    client.cancel().await.unwrap();
}

/// Sends SIGTERM to a process.
fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_gateway_cleanly() {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_gpu-mcp-gateway"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "--agents",
            "gpu-node-1=http://127.0.0.1:9/mcp",
            "--log-level",
            "warn",
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut gateway = Proc {
        child,
        name: "gateway".into(),
    };
    wait_for_port(port, &mut gateway).await;
    terminate(&gateway.child);
    let mut status = None;
    for _ in 0..300 {
        if let Some(s) = gateway.child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = status.expect("the gateway exits after SIGTERM");
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_mode_is_not_ready_until_discovery_syncs() {
    // A kubeconfig whose API server refuses connections: discovery never syncs.
    let dir = std::env::temp_dir().join(format!("gpu-mcp-gateway-kube-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: dead\n\
         clusters:\n- name: dead\n  cluster:\n    server: http://127.0.0.1:9\n\
         contexts:\n- name: dead\n  context:\n    cluster: dead\n    user: nobody\n    namespace: gpu-diagnostics\n\
         users:\n- name: nobody\n  user:\n    token: none\n",
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_gpu-mcp-gateway"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--log-level", "error"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut gateway = Proc {
        child,
        name: "gateway".into(),
    };
    wait_for_port(port, &mut gateway).await;
    let (status, _) = http_get(port, "/healthz").await;
    assert_eq!(status, 200, "alive");
    let (status, _) = http_get(port, "/readyz").await;
    assert_eq!(status, 503, "not ready before discovery has synced");
    let client = connect(port).await;
    let r = call(&client, "get_gpu_health", json!({"node": "gpu-node-1"})).await;
    assert!(failed(&r));
    assert!(
        text(&r).contains("discovery has not finished"),
        "{}",
        text(&r)
    );
    client.cancel().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A node that keeps failing is skipped by its circuit breaker, with no request and no wait for
/// its deadline, and asked again once the cool-down has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_node_is_skipped_by_its_breaker_then_asked_again() {
    // gpu-node-2 is a port that accepts connections and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_port = hang.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hang.accept().await {
            held.push(socket);
        }
    });
    let start_agent = |name: &str, port: u16| {
        let child = Command::new(agent_bin())
            .args(["--transport", "http", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--nvml-mode", "mock", "--node-name", name])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start gpu-mcp-agent");
        Proc {
            child,
            name: format!("agent {name}"),
        }
    };
    let port_1 = free_port();
    let mut agent_1 = start_agent("gpu-node-1", port_1);
    wait_for_port(port_1, &mut agent_1).await;
    let gateway_port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_gpu-mcp-gateway"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{gateway_port}"))
        .arg("--agents")
        .arg(format!(
            "gpu-node-1=http://127.0.0.1:{port_1}/mcp,gpu-node-2=http://127.0.0.1:{hang_port}/mcp"
        ))
        .args(["--node-timeout", "1s", "--log-level", "warn"])
        .args(["--breaker-failures", "2", "--breaker-cool-down", "2s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start gpu-mcp-gateway");
    let mut gateway = Proc {
        child,
        name: "gateway".into(),
    };
    wait_for_port(gateway_port, &mut gateway).await;
    let client = connect(gateway_port).await;
    let node_2 = json!({"node": "gpu-node-2"});

    // Two calls wait for the node's deadline and count as failures.
    for _ in 0..2 {
        let r = call(&client, "get_gpu_health", node_2.clone()).await;
        assert!(failed(&r));
        assert!(
            text(&r).contains("no answer from the agent within"),
            "{}",
            text(&r)
        );
    }
    // The breaker is open: the node is skipped at once, by the breaker, not by its deadline.
    let r = call(&client, "get_gpu_health", node_2.clone()).await;
    assert!(failed(&r));
    assert!(
        text(&r).contains("skipped after 2 consecutive failures"),
        "{}",
        text(&r)
    );
    // A fan-out still answers for the other node and names the skipped one.
    let r = call(&client, "get_gpu_health", json!({"detail": "full"})).await;
    assert!(!failed(&r), "{}", text(&r));
    let fan = structured(&r);
    assert_eq!(fan["summary"]["nodes_ok"], 1, "{fan}");
    assert_eq!(fan["summary"]["failed_nodes"], json!(["gpu-node-2"]));

    // The node comes back on the same address; after the cool-down a trial reaches it and the
    // breaker closes.
    holder.abort();
    let _ = holder.await;
    let mut agent_2 = start_agent("gpu-node-2", hang_port);
    wait_for_port(hang_port, &mut agent_2).await;
    let mut answered = None;
    for _ in 0..100 {
        let r = call(&client, "get_gpu_health", node_2.clone()).await;
        if !failed(&r) {
            answered = Some(r);
            break;
        }
        assert!(
            text(&r).contains("skipped after") || text(&r).contains("gpu-node-2"),
            "{}",
            text(&r)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = answered.expect("the node is asked again after the cool-down");
    assert_eq!(structured(&r)["node"], "gpu-node-2");
    let r = call(&client, "get_gpu_health", json!({})).await;
    assert_eq!(structured(&r)["summary"]["nodes_ok"], 2, "{}", text(&r));
    client.cancel().await.unwrap();
}
