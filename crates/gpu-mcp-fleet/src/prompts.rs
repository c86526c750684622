//! The gateway's prompts: the GPU prompt templates for the cluster ([`PromptScope::Fleet`]),
//! whose `node` argument is checked like a tool's before a prompt is filled with it: a valid
//! node name, and one the directory knows once it has synced (with the closest known name when
//! it does not).

use std::collections::BTreeMap;

use futures::FutureExt;
use futures::future::BoxFuture;
use gpu_mcp_k8s::{NodeDirectory, NodeName};
use gpu_mcp_model::prompts::{ARG_NODE, PromptScope, offered_prompts, render_prompt};
use gpu_mcp_protocol::mcp::{CompleteRequestParams, Completion, GetPromptResult, Prompt};
use gpu_mcp_service::{PromptCatalog, PromptError};

use crate::ClusterCatalog;
use crate::node_arg::closest_match;

/// The fleet prompts; `node` completes from the directory and `gpu` from the chosen node's agent.
impl PromptCatalog for ClusterCatalog {
    fn prompts(&self) -> Vec<Prompt> {
        offered_prompts(PromptScope::Fleet, |t| self.serves(t))
    }

    fn get_prompt(
        &self,
        name: &str,
        arguments: &BTreeMap<String, String>,
    ) -> Result<GetPromptResult, PromptError> {
        if !self.prompts().iter().any(|p| p.name == name) {
            return Err(PromptError::UnknownPrompt(name.to_owned()));
        }
        get_prompt(self.router().directory().as_ref(), name, arguments)
    }

    fn complete<'a>(&'a self, request: &'a CompleteRequestParams) -> BoxFuture<'a, Completion> {
        crate::completion::complete(self.router(), request).boxed()
    }
}

/// Fills a gateway prompt, after checking its `node`.
pub(crate) fn get_prompt(
    directory: &dyn NodeDirectory,
    name: &str,
    arguments: &BTreeMap<String, String>,
) -> Result<GetPromptResult, PromptError> {
    if let Some(node) = arguments.get(ARG_NODE).map(|n| n.trim())
        && !node.is_empty()
    {
        check_node(directory, node)?;
    }
    render_prompt(PromptScope::Fleet, name, arguments).map_err(|e| match e {
        gpu_mcp_model::Error::UnknownPrompt(name) => PromptError::UnknownPrompt(name),
        other => PromptError::InvalidArguments(other.to_string()),
    })
}

fn check_node(directory: &dyn NodeDirectory, node: &str) -> Result<(), PromptError> {
    let name = NodeName::try_from(node)
        .map_err(|e| PromptError::InvalidArguments(format!("Invalid argument `node`: {e}")))?;
    if !directory.is_synced() || directory.node(name.as_str()).is_some() {
        return Ok(());
    }
    let known: Vec<String> = directory.nodes().into_iter().map(|n| n.node_name).collect();
    let hint = closest_match(name.as_str(), known.iter().map(String::as_str))
        .map(|c| format!(" Did you mean {c}?"))
        .unwrap_or_default();
    Err(PromptError::InvalidArguments(format!(
        "Invalid argument `node`: no GPU node named {name} has an agent.{hint}"
    )))
}

#[cfg(test)]
mod tests {
    use gpu_mcp_k8s::StaticDirectory;
    use gpu_mcp_model::prompts::gpu_prompts;

    use super::*;

    fn directory() -> StaticDirectory {
        StaticDirectory::new([("gpu-node-5", "http://127.0.0.1:1")]).unwrap()
    }

    fn args(node: &str) -> BTreeMap<String, String> {
        [(ARG_NODE.to_owned(), node.to_owned())].into()
    }

    #[test]
    fn the_gateway_prompts_take_node_and_check_it() {
        let fleet = gpu_prompts(PromptScope::Fleet);
        assert!(fleet.iter().all(|p| p.arguments[0].name == ARG_NODE));
        let d = directory();
        let filled = get_prompt(&d, "gpu-triage", &args("gpu-node-5")).unwrap();
        let text = filled.messages[0].content.as_text().unwrap_or_default();
        assert!(text.contains(r#""node": "gpu-node-5""#), "{text}");
        let e = get_prompt(&d, "gpu-triage", &args("gpu-node-6")).unwrap_err();
        assert!(e.to_string().contains("Did you mean gpu-node-5?"), "{e}");
        let e = get_prompt(&d, "gpu-triage", &args("../etc")).unwrap_err();
        assert!(e.to_string().contains("`node`"), "{e}");
        let e = get_prompt(&d, "gpu-drain-check", &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("needs the argument `node`"), "{e}");
        assert!(matches!(
            get_prompt(&d, "nope", &BTreeMap::new()),
            Err(PromptError::UnknownPrompt(_))
        ));
    }
}
