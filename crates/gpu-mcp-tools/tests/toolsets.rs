#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The agent with some toolsets only, through the server core: the tools of the others are
//! unknown tools, and the prompts and resources that need them are not offered.

use std::sync::Arc;

use gpu_mcp_backend::{MockBackend, MockConfig};
use gpu_mcp_model::toolsets::Toolsets;
use gpu_mcp_protocol::{Message, Request, Response};
use gpu_mcp_service::{McpServer, RequestContext, ServerInfo};
use gpu_mcp_tools::{AgentCatalog, AgentCatalogConfig};
use serde_json::{Value, json};

fn server(toolsets: &str) -> McpServer {
    let backend = MockBackend::new(MockConfig {
        node_name: "gpu-node-1".into(),
        gpus: 2,
        ..MockConfig::default()
    })
    .unwrap();
    let catalog = AgentCatalog::new(
        Arc::new(backend),
        AgentCatalogConfig {
            node_name: "gpu-node-1".into(),
            toolsets: Toolsets::parse(toolsets).unwrap(),
            ..AgentCatalogConfig::default()
        },
    );
    let info = ServerInfo {
        name: "agent".into(),
        version: "1".into(),
        title: None,
        instructions: None,
    };
    McpServer::new(info, Arc::new(catalog))
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

fn names(list: &Value, key: &str, field: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn only_the_enabled_toolsets_are_served() {
    let s = server("health");
    let tools = result(&call(&s, "tools/list", json!({})).await);
    assert_eq!(
        names(&tools, "tools", "name"),
        ["get_gpu_health", "analyze_xid_errors"]
    );
    let health = result(&call(&s, "tools/call", json!({"name": "get_gpu_health"})).await);
    assert!(
        health["structuredContent"]["verdict"].is_string(),
        "{health}"
    );
    let disabled = call(&s, "tools/call", json!({"name": "get_gpu_inventory"})).await;
    let e = disabled.error.expect("an unknown tool");
    assert_eq!(e.code, -32602);
    assert!(
        e.message.contains("Unknown tool: get_gpu_inventory"),
        "{}",
        e.message
    );

    // Every prompt walks through the inventory too: none is offered.
    let caps = result(&call(&s, "server/discover", json!({})).await);
    assert!(caps["capabilities"].get("prompts").is_none(), "{caps}");
    assert_eq!(
        call(&s, "prompts/list", json!({}))
            .await
            .error
            .unwrap()
            .code,
        -32601
    );

    let templates = result(&call(&s, "resources/templates/list", json!({})).await);
    assert_eq!(
        names(&templates, "resourceTemplates", "uriTemplate"),
        ["gpu://{node}/health", "gpu://{node}/xids"]
    );
    let listed = result(&call(&s, "resources/list", json!({})).await);
    assert_eq!(
        names(&listed, "resources", "uri"),
        ["gpu://gpu-node-1/health", "gpu://gpu-node-1/xids"]
    );
    let r = call(
        &s,
        "resources/read",
        json!({"uri": "gpu://gpu-node-1/inventory"}),
    )
    .await;
    let e = r.error.expect("not offered");
    assert_eq!(e.code, -32002);
    assert!(e.message.contains("does not offer"), "{}", e.message);
}

#[tokio::test]
async fn inventory_and_health_serve_their_tools_and_every_prompt_but_the_drain_check() {
    let s = server("inventory,health");
    let tools = result(&call(&s, "tools/list", json!({})).await);
    assert_eq!(names(&tools, "tools", "name").len(), 3);
    let prompts = result(&call(&s, "prompts/list", json!({})).await);
    let listed = names(&prompts, "prompts", "name");
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(
        !listed.iter().any(|p| p == "gpu-drain-check"),
        "it asks get_gpu_processes"
    );
    let with_processes = server("inventory,health,processes");
    let prompts = result(&call(&with_processes, "prompts/list", json!({})).await);
    assert_eq!(names(&prompts, "prompts", "name").len(), 4);
    let inventory_only = server("inventory");
    let r = call(
        &inventory_only,
        "prompts/get",
        json!({"name": "gpu-health-check"}),
    )
    .await;
    assert_eq!(r.error.unwrap().code, -32601, "no prompts at all");
}
