#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The agent's prompts and completions through the catalog: the prompt list, filled prompts,
//! and `gpu` completed from the node's GPUs.

use std::collections::BTreeMap;
use std::sync::Arc;

use gpu_mcp_backend::{MockBackend, MockConfig};
use gpu_mcp_protocol::mcp::{CompleteRequestParams, Completion};
use gpu_mcp_service::{PromptError, ToolCatalog};
use gpu_mcp_tools::{AgentCatalog, AgentCatalogConfig};
use serde_json::json;

fn catalog(gpus: usize) -> AgentCatalog {
    let backend = MockBackend::new(MockConfig {
        node_name: "gpu-node-1".into(),
        gpus,
        ..MockConfig::default()
    })
    .unwrap();
    AgentCatalog::new(
        Arc::new(backend),
        AgentCatalogConfig {
            node_name: "gpu-node-1".into(),
            ..AgentCatalogConfig::default()
        },
    )
}

async fn complete(c: &AgentCatalog, prompt: &str, argument: &str, value: &str) -> Completion {
    let request: CompleteRequestParams = serde_json::from_value(json!({
        "ref": {"type": "ref/prompt", "name": prompt},
        "argument": {"name": argument, "value": value}
    }))
    .unwrap();
    c.prompt_catalog().unwrap().complete(&request).await
}

#[test]
fn the_agent_serves_the_gpu_prompts_without_node() {
    let agent = catalog(2);
    let c = agent.prompt_catalog().unwrap();
    let names: Vec<String> = c.prompts().into_iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "gpu-health-check",
            "diagnose-xid-errors",
            "gpu-triage",
            "gpu-drain-check"
        ]
    );
    let args: BTreeMap<String, String> = [("gpu".to_owned(), "1".to_owned())].into();
    let filled = c.get_prompt("gpu-health-check", &args).unwrap();
    let text = filled.messages[0].content.as_text().unwrap();
    assert!(text.contains(r#""gpu_index": 1"#), "{text}");
    let with_node: BTreeMap<String, String> = [("node".to_owned(), "n".to_owned())].into();
    assert!(matches!(
        c.get_prompt("gpu-triage", &with_node),
        Err(PromptError::InvalidArguments(m)) if m.contains("`node`")
    ));
    assert!(matches!(
        c.get_prompt("nope", &BTreeMap::new()),
        Err(PromptError::UnknownPrompt(_))
    ));
}

#[tokio::test]
async fn gpu_completes_from_the_node_indexes_and_uuids() {
    let c = catalog(4);
    let all = complete(&c, "gpu-triage", "gpu", "").await;
    assert_eq!(all.values.len(), 8, "{:?}", all.values);
    assert_eq!(&all.values[..4], ["0", "1", "2", "3"]);
    let uuids = complete(&c, "gpu-triage", "gpu", "GPU-").await;
    assert_eq!(uuids.values.len(), 4);
    assert!(uuids.values.iter().all(|u| u.starts_with("GPU-")));
    let one = complete(&c, "gpu-triage", "gpu", "2").await;
    assert_eq!(one.values, ["2"]);
    let since = complete(&c, "diagnose-xid-errors", "since", "6").await;
    assert_eq!(since.values, ["6h"]);
    assert!(
        complete(&c, "gpu-triage", "node", "")
            .await
            .values
            .is_empty()
    );
    assert!(complete(&c, "nope", "gpu", "").await.values.is_empty());
}
