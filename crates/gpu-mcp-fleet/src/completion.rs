//! The gateway's completions: `node` from the discovery directory, `since` from the usual
//! windows, and `gpu` from the agent of the node already chosen (`context.arguments.node`),
//! which answers from its own GPUs; without a chosen node there is nothing to offer for `gpu`.

use gpu_mcp_k8s::{NodeName, Router};
use gpu_mcp_model::prompts::{ARG_GPU, ARG_NODE, PromptScope, prompt_arguments, static_completion};
use gpu_mcp_protocol::Request;
use gpu_mcp_protocol::mcp::{
    CompleteArgument, CompleteRequestParams, Completion, CompletionReference, methods,
};

use crate::forward::completion_of;

/// Completes a prompt argument of the gateway's prompts.
pub(crate) async fn complete(router: &Router, request: &CompleteRequestParams) -> Completion {
    let CompletionReference::Prompt { name } = &request.reference else {
        return Completion::default();
    };
    let argument = request.argument.name.as_str();
    let prefix = request.argument.value.as_str();
    if let Some(c) = static_completion(PromptScope::Fleet, name, argument, prefix) {
        return c;
    }
    let takes = prompt_arguments(PromptScope::Fleet, name).unwrap_or_default();
    if !takes.contains(&argument) {
        return Completion::default();
    }
    match argument {
        ARG_NODE => Completion::matching(
            router.directory().nodes().into_iter().map(|n| n.node_name),
            prefix,
        ),
        ARG_GPU => match request.context_argument(ARG_NODE) {
            Some(node) => gpu_of(router, node, name, prefix).await,
            None => Completion::default(),
        },
        _ => Completion::default(),
    }
}

/// Asks the agent on `node` to complete `gpu` of the same prompt (the agent's prompts take
/// `gpu` too); no values when the node is unknown or its agent does not answer.
async fn gpu_of(router: &Router, node: &str, prompt: &str, prefix: &str) -> Completion {
    let Ok(node) = NodeName::try_from(node) else {
        return Completion::default();
    };
    let params = CompleteRequestParams {
        reference: CompletionReference::Prompt {
            name: prompt.to_owned(),
        },
        argument: CompleteArgument {
            name: ARG_GPU.to_owned(),
            value: prefix.to_owned(),
        },
        context: None,
        meta: None,
    };
    let Ok(params) = serde_json::to_value(params) else {
        return Completion::default();
    };
    let request = Request::new(1, methods::COMPLETION_COMPLETE, Some(params));
    let answer = router.route_to_node(&node, &request).await;
    answer
        .outcome
        .map_or_else(|_| Completion::default(), |r| completion_of(&r))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::FutureExt;
    use futures::future::BoxFuture;
    use gpu_mcp_k8s::{AgentEndpoint, NodeError, NodeTransport, RouterConfig, StaticDirectory};
    use gpu_mcp_protocol::Response;
    use serde_json::{Value, json};

    use super::*;

    /// An agent that completes `gpu` with its own two GPUs, and records what it was asked.
    #[derive(Default)]
    struct Agents {
        asked: parking_lot::Mutex<Vec<(String, Value)>>,
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
                self.asked
                    .lock()
                    .push((target.node_name.clone(), request.clone()));
                let prefix = request["params"]["argument"]["value"]
                    .as_str()
                    .unwrap_or("");
                let values: Vec<&str> = ["0", "1", "GPU-aa"]
                    .into_iter()
                    .filter(|v| v.starts_with(prefix))
                    .collect();
                Ok(Response::success(
                    id,
                    json!({"completion": {"values": values}}),
                ))
            }
            .boxed()
        }
    }

    fn router(agents: Arc<Agents>) -> Router {
        let directory = StaticDirectory::new([
            ("gpu-node-1", "http://127.0.0.1:1"),
            ("gpu-node-2", "http://127.0.0.1:2"),
            ("cpu-node", "http://127.0.0.1:3"),
        ])
        .unwrap();
        Router::new(Arc::new(directory), agents, RouterConfig::default())
    }

    fn request(argument: &str, value: &str, context: Value) -> CompleteRequestParams {
        serde_json::from_value(json!({
            "ref": {"type": "ref/prompt", "name": "gpu-health-check"},
            "argument": {"name": argument, "value": value},
            "context": {"arguments": context}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn node_completes_from_discovery() {
        let agents = Arc::new(Agents::default());
        let r = router(agents.clone());
        let c = complete(&r, &request("node", "gpu", json!({}))).await;
        assert_eq!(c.values, ["gpu-node-1", "gpu-node-2"]);
        assert_eq!(c.total, Some(2));
        assert!(
            agents.asked.lock().is_empty(),
            "no agent is asked for node names"
        );
    }

    #[tokio::test]
    async fn gpu_completes_from_the_chosen_nodes_agent() {
        let agents = Arc::new(Agents::default());
        let r = router(agents.clone());
        let c = complete(&r, &request("gpu", "GPU", json!({"node": "gpu-node-2"}))).await;
        assert_eq!(c.values, ["GPU-aa"]);
        let asked = agents.asked.lock().clone();
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].0, "gpu-node-2");
        assert_eq!(asked[0].1["method"], "completion/complete");
        // No node chosen, or one that does not exist: nothing to offer, and no agent asked.
        let none = complete(&r, &request("gpu", "", json!({}))).await;
        assert!(none.values.is_empty());
        let unknown = complete(&r, &request("gpu", "", json!({"node": "nope"}))).await;
        assert!(unknown.values.is_empty());
        assert_eq!(agents.asked.lock().len(), 1);
        let since = complete(&r, &request("since", "1", json!({}))).await;
        assert_eq!(since.values, ["15m", "1h"]);
    }
}
