#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The gateway's resources through the server core: the templates, every node's resources
//! listed a page at a time, reads routed to the named node's agent as the tool call that holds
//! them, clean errors for bad URIs and unknown nodes, completion of `node` and `index`, and the
//! `resource_link` blocks of a fan-out answer, and list changes when the nodes change.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use gpu_mcp_fleet::ClusterCatalog;
use gpu_mcp_k8s::{
    AgentEndpoint, NodeDirectory, NodeError, NodeTransport, Router, RouterConfig, StaticDirectory,
};
use gpu_mcp_model::gpu_tool_definitions;
use gpu_mcp_protocol::{Message, Request, Response};
use gpu_mcp_service::{McpServer, RequestContext, ServerInfo};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// Agents: `gpu-node-0` has a critical GPU, `gpu-node-3` refuses connections, the rest are
/// healthy; every node has two GPUs. Records what each was asked.
#[derive(Default)]
struct Agents {
    asked: Mutex<Vec<(String, Value)>>,
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
            let node = target.node_name.clone();
            self.asked.lock().push((node.clone(), request.clone()));
            if node == "gpu-node-3" {
                return Err(NodeError::Connect {
                    url: "http://127.0.0.1:1/mcp".into(),
                    message: "connection refused".into(),
                });
            }
            if request["method"] == "completion/complete" {
                let prefix = request["params"]["argument"]["value"].as_str().unwrap_or("");
                let values: Vec<&str> = ["0", "1"].into_iter().filter(|v| v.starts_with(prefix)).collect();
                return Ok(Response::success(id, json!({"completion": {"values": values}})));
            }
            let args = &request["params"]["arguments"];
            if let Some(i) = args.get("gpu_index").and_then(Value::as_u64)
                && i > 1
            {
                return Ok(Response::success(id, json!({
                    "content": [{"type": "text", "text": format!("Invalid argument `gpu_index`: GPU {i} does not exist; this node has 2 GPU(s), indexes 0-1.")}],
                    "isError": true})));
            }
            let verdict = if node == "gpu-node-0" { "critical" } else { "healthy" };
            let structured = json!({
                "node": node, "verdict": verdict, "summary": format!("{node} is {verdict}."),
                "counts": {"healthy": 1, "warning": 0, "degraded": 0, "critical": u32::from(verdict == "critical")},
                "gpus": [{"index": 0, "verdict": "healthy", "reasons": []},
                         {"index": 1, "verdict": verdict, "reasons": []}],
                "tool": request["params"]["name"], "args": args,
            });
            Ok(Response::success(id, json!({
                "content": [{"type": "text", "text": "words"}], "structuredContent": structured})))
        }
        .boxed()
    }
}

fn gateway(nodes: usize) -> (McpServer, Arc<Agents>) {
    let names: Vec<(String, String)> = (0..nodes)
        .map(|i| (format!("gpu-node-{i}"), format!("http://127.0.0.1:9/{i}")))
        .collect();
    let directory =
        StaticDirectory::new(names.iter().map(|(n, u)| (n.as_str(), u.as_str()))).unwrap();
    let agents = Arc::new(Agents::default());
    let router = Router::new(
        Arc::new(directory),
        agents.clone(),
        RouterConfig {
            concurrency: 8,
            node_timeout: Duration::from_secs(5),
            circuit_breaker: None,
        },
    );
    let catalog = ClusterCatalog::new(Arc::new(router), gpu_tool_definitions());
    let info = ServerInfo {
        name: "gateway".into(),
        version: "1".into(),
        title: None,
        instructions: None,
    };
    (McpServer::new(info, Arc::new(catalog)), agents)
}

async fn call(server: &McpServer, method: &str, params: Value) -> Response {
    let message = Message::Request(Request::new(1, method, Some(params)));
    server
        .session()
        .handle(message, RequestContext::stdio())
        .await
        .expect("a response")
}

fn result(r: &Response) -> Value {
    assert!(r.error.is_none(), "unexpected error {:?}", r.error);
    r.result_value().unwrap().into_owned()
}

#[tokio::test]
async fn every_nodes_resources_are_listed_a_page_at_a_time() {
    let (s, agents) = gateway(70);
    let templates = result(&call(&s, "resources/templates/list", json!({})).await);
    assert_eq!(templates["resourceTemplates"].as_array().unwrap().len(), 6);
    let mut seen = Vec::new();
    let mut params = json!({});
    loop {
        let page = result(&call(&s, "resources/list", params.clone()).await);
        let listed = page["resources"].as_array().unwrap();
        assert!(listed.len() <= 100);
        seen.extend(listed.iter().map(|r| r["uri"].as_str().unwrap().to_owned()));
        match page.get("nextCursor") {
            Some(c) => params = json!({"cursor": c}),
            None => break,
        }
    }
    assert_eq!(
        seen.len(),
        70 * 5,
        "health, inventory, Xids, processes and topology of every node"
    );
    let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "each exactly once");
    assert!(seen.contains(&"gpu://gpu-node-42/inventory".to_owned()));
    assert!(seen.contains(&"gpu://gpu-node-42/processes".to_owned()));
    assert!(seen.contains(&"gpu://gpu-node-42/topology".to_owned()));
    assert!(agents.asked.lock().is_empty(), "listing asks no agent");
}

#[tokio::test]
async fn a_read_is_routed_to_the_named_node_as_its_tool_call() {
    let (s, agents) = gateway(3);
    let r = result(
        &call(
            &s,
            "resources/read",
            json!({"uri": "gpu://gpu-node-1/gpu/1/inventory"}),
        )
        .await,
    );
    let content = &r["contents"][0];
    assert_eq!(content["uri"], "gpu://gpu-node-1/gpu/1/inventory");
    assert_eq!(content["mimeType"], "application/json");
    let body: Value = serde_json::from_str(content["text"].as_str().unwrap()).unwrap();
    assert_eq!(body["node"], "gpu-node-1");
    let asked = agents.asked.lock().clone();
    assert_eq!(asked.len(), 1, "one node asked");
    assert_eq!(asked[0].0, "gpu-node-1");
    assert_eq!(asked[0].1["method"], "tools/call");
    assert_eq!(asked[0].1["params"]["name"], "get_gpu_inventory");
    assert_eq!(
        asked[0].1["params"]["arguments"],
        json!({"full": true, "gpu_index": 1})
    );
    let health = result(
        &call(
            &s,
            "resources/read",
            json!({"uri": "gpu://gpu-node-0/health"}),
        )
        .await,
    );
    let body: Value =
        serde_json::from_str(health["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        (&body["tool"], &body["verdict"]),
        (&json!("get_gpu_health"), &json!("critical"))
    );
}

#[tokio::test]
async fn bad_uris_unknown_nodes_and_failed_nodes_get_clean_errors() {
    let (s, agents) = gateway(4);
    for (uri, code, says) in [
        ("gpu://gpu-node-9/health", -32002, "Did you mean"),
        ("gpu://Not_A_Node/health", -32002, "no valid node"),
        (
            "gpu://gpu-node-1/gpu/7/inventory",
            -32002,
            "GPU 7 does not exist",
        ),
        ("gpu://gpu-node-1/fans", -32002, "the templates are"),
        ("https://example.com/", -32002, "not a GPU resource"),
        ("gpu://gpu-node-3/health", -32603, "connection refused"),
    ] {
        let r = call(&s, "resources/read", json!({"uri": uri})).await;
        let e = r.error.unwrap_or_else(|| panic!("{uri}: no error"));
        assert_eq!(e.code, code, "{uri}: {}", e.message);
        assert!(e.message.contains(says), "{uri}: {}", e.message);
        if code == -32002 {
            assert_eq!(e.data, Some(json!({"uri": uri})));
        }
    }
    let asked: Vec<String> = agents.asked.lock().iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(
        asked,
        ["gpu-node-1", "gpu-node-3"],
        "nothing routed for a bad URI or node"
    );
}

#[tokio::test]
async fn template_variables_complete_from_discovery_and_the_chosen_agent() {
    let (s, agents) = gateway(12);
    let node = result(
        &call(
            &s,
            "completion/complete",
            json!({"ref": {"type": "ref/resource", "uri": "gpu://{node}/health"},
                   "argument": {"name": "node", "value": "gpu-node-1"}}),
        )
        .await,
    );
    assert_eq!(
        node["completion"]["values"],
        json!(["gpu-node-1", "gpu-node-10", "gpu-node-11"])
    );
    let index = result(
        &call(
            &s,
            "completion/complete",
            json!({"ref": {"type": "ref/resource", "uri": "gpu://{node}/gpu/{index}/inventory"},
                   "argument": {"name": "index", "value": "1"},
                   "context": {"arguments": {"node": "gpu-node-5"}}}),
        )
        .await,
    );
    assert_eq!(index["completion"]["values"], json!(["1"]));
    let asked = agents.asked.lock().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].0, "gpu-node-5");
    assert_eq!(
        asked[0].1["params"]["ref"]["uri"],
        "gpu://{node}/gpu/{index}/inventory"
    );
}

#[tokio::test]
async fn a_fan_out_links_each_detailed_node_to_its_resource() {
    let (s, _) = gateway(5);
    let r = result(&call(&s, "tools/call", json!({"name": "get_gpu_health"})).await);
    let links: Vec<&Value> = r["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "resource_link")
        .collect();
    assert_eq!(links.len(), 1, "{r}");
    assert_eq!(links[0]["uri"], "gpu://gpu-node-0/health");
    assert_eq!(links[0]["mimeType"], "application/json");
    assert_eq!(r["content"][0]["type"], "text", "the words come first");
}

#[tokio::test]
async fn toolsets_limit_the_tools_prompts_and_resources() {
    let directory = StaticDirectory::new([("gpu-node-0", "http://127.0.0.1:9/0")]).unwrap();
    let agents = Arc::new(Agents::default());
    let router = Router::new(Arc::new(directory), agents.clone(), RouterConfig::default());
    let toolsets = gpu_mcp_model::toolsets::Toolsets::parse("health").unwrap();
    let catalog =
        ClusterCatalog::new(Arc::new(router), gpu_tool_definitions()).with_toolsets(&toolsets);
    let info = ServerInfo {
        name: "gateway".into(),
        version: "1".into(),
        title: None,
        instructions: None,
    };
    let s = McpServer::new(info, Arc::new(catalog));
    let tools = result(&call(&s, "tools/list", json!({})).await);
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_gpu_health", "analyze_xid_errors"]);
    for disabled in ["list_gpu_nodes", "get_gpu_inventory"] {
        let r = call(&s, "tools/call", json!({"name": disabled})).await;
        let e = r.error.expect("an unknown tool");
        assert_eq!(e.code, -32602, "{disabled}");
        assert!(e.message.contains("Unknown tool"), "{}", e.message);
    }
    // Every gateway prompt starts with list_gpu_nodes: none is offered.
    assert_eq!(
        call(&s, "prompts/list", json!({}))
            .await
            .error
            .unwrap()
            .code,
        -32601
    );
    let templates = result(&call(&s, "resources/templates/list", json!({})).await);
    assert_eq!(templates["resourceTemplates"].as_array().unwrap().len(), 2);
    let r = call(
        &s,
        "resources/read",
        json!({"uri": "gpu://gpu-node-0/inventory"}),
    )
    .await;
    assert_eq!(r.error.unwrap().code, -32002);
    let listed = result(&call(&s, "resources/list", json!({})).await);
    assert_eq!(listed["resources"].as_array().unwrap().len(), 2);
    assert!(
        agents.asked.lock().is_empty(),
        "nothing disabled reached an agent"
    );
}

/// Static agents whose set of nodes is said to change with `generation`, as discovery's does.
struct Changing {
    agents: StaticDirectory,
    generation: tokio::sync::watch::Receiver<u64>,
}

impl NodeDirectory for Changing {
    fn nodes(&self) -> Vec<AgentEndpoint> {
        self.agents.nodes()
    }

    fn node(&self, name: &str) -> Option<AgentEndpoint> {
        self.agents.node(name)
    }

    fn is_synced(&self) -> bool {
        true
    }

    fn node_set_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.generation.clone())
    }
}

fn initialize_params() -> Value {
    json!({"protocolVersion": "2025-11-25", "capabilities": {},
           "clientInfo": {"name": "c", "version": "1"}})
}

#[tokio::test(start_paused = true)]
async fn the_list_changes_when_the_directorys_nodes_do_and_never_with_static_agents() {
    let (fixed, _) = gateway(2);
    let init = result(&call(&fixed, "initialize", initialize_params()).await);
    assert_eq!(init["capabilities"]["resources"]["listChanged"], false);
    assert!(fixed.session().resource_list_changes().is_none());

    let (tx, generation) = tokio::sync::watch::channel(0);
    let agents = StaticDirectory::new([("gpu-node-0", "http://127.0.0.1:9/0")]).unwrap();
    let router = Router::new(
        Arc::new(Changing { agents, generation }),
        Arc::new(Agents::default()),
        RouterConfig::default(),
    );
    let catalog = ClusterCatalog::new(Arc::new(router), gpu_tool_definitions());
    let info = ServerInfo {
        name: "gateway".into(),
        version: "1".into(),
        title: None,
        instructions: None,
    };
    let server = McpServer::new(info, Arc::new(catalog));
    let session = server.session();
    let message = Message::Request(Request::new(1, "initialize", Some(initialize_params())));
    let init = session
        .handle(message, RequestContext::stdio())
        .await
        .unwrap();
    assert_eq!(
        result(&init)["capabilities"]["resources"]["listChanged"],
        true
    );
    let mut changes = session.resource_list_changes().unwrap();
    tx.send_modify(|g| *g += 1);
    let notification = tokio::time::timeout(Duration::from_secs(10), changes.next())
        .await
        .unwrap()
        .unwrap();
    let notification: Value = serde_json::from_slice(&notification).unwrap();
    assert_eq!(
        notification["method"],
        "notifications/resources/list_changed"
    );
}
