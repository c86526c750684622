#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The agent's resources through the server core: templates, this node's concrete resources,
//! reads that equal the tools' full answers, clean not-found errors, and completion of the
//! template variables.

use std::sync::Arc;

use gpu_mcp_backend::{MockBackend, MockConfig};
use gpu_mcp_protocol::{Message, Request, Response};
use gpu_mcp_service::{McpServer, RequestContext, ServerInfo};
use gpu_mcp_tools::{AgentCatalog, AgentCatalogConfig};
use serde_json::{Value, json};

fn server(gpus: usize) -> (McpServer, AgentCatalog) {
    let backend = MockBackend::new(MockConfig {
        node_name: "gpu-node-1".into(),
        gpus,
        ..MockConfig::default()
    })
    .unwrap();
    let catalog = AgentCatalog::new(
        Arc::new(backend),
        AgentCatalogConfig {
            node_name: "gpu-node-1".into(),
            ..AgentCatalogConfig::default()
        },
    );
    let info = ServerInfo {
        name: "agent".into(),
        version: "1".into(),
        title: None,
        instructions: None,
    };
    (McpServer::new(info, Arc::new(catalog.clone())), catalog)
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
async fn the_agent_lists_the_templates_and_this_nodes_resources() {
    let (s, _) = server(4);
    let templates = result(&call(&s, "resources/templates/list", json!({})).await);
    let uris: Vec<&str> = templates["resourceTemplates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["uriTemplate"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        [
            "gpu://{node}/inventory",
            "gpu://{node}/health",
            "gpu://{node}/xids",
            "gpu://{node}/processes",
            "gpu://{node}/topology",
            "gpu://{node}/gpu/{index}/inventory"
        ]
    );
    let listed = result(&call(&s, "resources/list", json!({})).await);
    let uris: Vec<&str> = listed["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        [
            "gpu://gpu-node-1/health",
            "gpu://gpu-node-1/inventory",
            "gpu://gpu-node-1/xids",
            "gpu://gpu-node-1/processes",
            "gpu://gpu-node-1/topology",
            "gpu://gpu-node-1/gpu/0/inventory",
            "gpu://gpu-node-1/gpu/1/inventory",
            "gpu://gpu-node-1/gpu/2/inventory",
            "gpu://gpu-node-1/gpu/3/inventory"
        ]
    );
    assert!(listed.get("nextCursor").is_none());
}

#[tokio::test]
async fn a_read_is_the_tools_full_answer() {
    let (s, catalog) = server(2);
    let read = result(
        &call(
            &s,
            "resources/read",
            json!({"uri": "gpu://gpu-node-1/inventory"}),
        )
        .await,
    );
    let content = &read["contents"][0];
    assert_eq!(content["uri"], "gpu://gpu-node-1/inventory");
    assert_eq!(content["mimeType"], "application/json");
    let inventory: Value = serde_json::from_str(content["text"].as_str().unwrap()).unwrap();
    let mut args = serde_json::Map::new();
    args.insert("full".into(), json!(true));
    let tool = catalog.run("get_gpu_inventory", Some(args)).await.unwrap();
    assert_eq!(inventory, *tool.structured_value().unwrap());
    assert_eq!(inventory["full"], true);

    let gpu = result(
        &call(
            &s,
            "resources/read",
            json!({"uri": "gpu://gpu-node-1/gpu/1/inventory"}),
        )
        .await,
    );
    let gpu: Value = serde_json::from_str(gpu["contents"][0]["text"].as_str().unwrap()).unwrap();
    let indexes: Vec<&Value> = gpu["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| &g["index"])
        .collect();
    assert_eq!(indexes, [&json!(1)]);

    for uri in ["gpu://gpu-node-1/health", "gpu://gpu-node-1/xids"] {
        let r = result(&call(&s, "resources/read", json!({"uri": uri})).await);
        let body: Value = serde_json::from_str(r["contents"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(body["node"], "gpu-node-1", "{uri}");
    }

    // Processes and topology read through their tools with everything listed.
    for (uri, tool, args) in [
        (
            "gpu://gpu-node-1/processes",
            "get_gpu_processes",
            json!({"limit": 1000}),
        ),
        (
            "gpu://gpu-node-1/topology",
            "get_nvlink_topology",
            json!({"full": true}),
        ),
    ] {
        let r = result(&call(&s, "resources/read", json!({"uri": uri})).await);
        let body: Value = serde_json::from_str(r["contents"][0]["text"].as_str().unwrap()).unwrap();
        let tool = catalog.run(tool, args.as_object().cloned()).await.unwrap();
        assert_eq!(body, *tool.structured_value().unwrap(), "{uri}");
    }
}

#[tokio::test]
async fn bad_uris_are_not_found_with_the_reason() {
    let (s, _) = server(2);
    for (uri, says) in [
        ("gpu://gpu-node-2/health", "serves node gpu-node-1 only"),
        (
            "gpu://gpu-node-1/gpu/5/inventory",
            "has no GPU 5 (it has GPUs 0-1)",
        ),
        ("gpu://gpu-node-1/gpu/x/inventory", "not a number"),
        ("gpu://gpu-node-1/temperature", "the templates are"),
        ("file:///etc/passwd", "not a GPU resource"),
    ] {
        let r = call(&s, "resources/read", json!({"uri": uri})).await;
        let e = r.error.expect("an error");
        assert_eq!(e.code, -32002, "{uri}");
        assert_eq!(e.data, Some(json!({"uri": uri})));
        assert!(e.message.contains(says), "{uri}: {}", e.message);
    }
}

#[tokio::test]
async fn template_variables_complete_from_this_node() {
    let (s, _) = server(12);
    let complete = |uri: &'static str, name: &'static str, value: &'static str| {
        let s = s.clone();
        async move {
            let r = result(
                &call(
                    &s,
                    "completion/complete",
                    json!({"ref": {"type": "ref/resource", "uri": uri},
                           "argument": {"name": name, "value": value}}),
                )
                .await,
            );
            r["completion"]["values"].clone()
        }
    };
    assert_eq!(
        complete("gpu://{node}/health", "node", "").await,
        json!(["gpu-node-1"])
    );
    assert_eq!(
        complete("gpu://{node}/gpu/{index}/inventory", "index", "1").await,
        json!(["1", "10", "11"])
    );
    assert_eq!(
        complete("gpu://{node}/health", "index", "").await,
        json!([])
    );
}
