//! The agent's prompts and completions: the GPU prompt templates for this node
//! ([`PromptScope::Node`], no `node` argument), and completion of `gpu` from the node's GPUs
//! (indexes and UUIDs) and of `since` from the usual windows.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use gpu_mcp_backend::GpuBackend;
use gpu_mcp_model::prompts::{
    ARG_GPU, PromptScope, gpu_candidates, prompt_arguments, render_prompt, static_completion,
};
use gpu_mcp_protocol::mcp::{CompleteRequestParams, Completion, CompletionReference};
use gpu_mcp_protocol::mcp::{GetPromptResult, Prompt};
use gpu_mcp_service::{PromptCatalog, PromptError};

use crate::AgentCatalog;

/// The agent's prompt definitions whose tools all pass `offered`.
pub(crate) fn prompts(offered: impl Fn(&str) -> bool) -> Vec<Prompt> {
    gpu_mcp_model::prompts::offered_prompts(PromptScope::Node, offered)
}

/// Fills an agent prompt.
pub(crate) fn get_prompt(
    name: &str,
    arguments: &BTreeMap<String, String>,
) -> Result<GetPromptResult, PromptError> {
    render_prompt(PromptScope::Node, name, arguments).map_err(|e| match e {
        gpu_mcp_model::Error::UnknownPrompt(name) => PromptError::UnknownPrompt(name),
        other => PromptError::InvalidArguments(other.to_string()),
    })
}

/// Completes a prompt argument: `gpu` from a snapshot of the node's GPUs (none when the GPUs
/// cannot be read), `since` from the usual windows.
pub(crate) async fn complete(
    backend: &dyn GpuBackend,
    request: &CompleteRequestParams,
) -> Completion {
    let CompletionReference::Prompt { name } = &request.reference else {
        return Completion::default();
    };
    let argument = request.argument.name.as_str();
    let prefix = request.argument.value.as_str();
    if let Some(c) = static_completion(PromptScope::Node, name, argument, prefix) {
        return c;
    }
    let takes_gpu = prompt_arguments(PromptScope::Node, name)
        .is_some_and(|args| args.contains(&ARG_GPU) && argument == ARG_GPU);
    if !takes_gpu {
        return Completion::default();
    }
    match backend.snapshot().await {
        Ok(snapshot) => Completion::matching(gpu_candidates(&snapshot), prefix),
        Err(_) => Completion::default(),
    }
}

/// The GPU prompts for this node; `gpu` completes from the node's GPUs.
impl PromptCatalog for AgentCatalog {
    fn prompts(&self) -> Vec<Prompt> {
        prompts(|t| self.offers_tool(t))
    }

    fn get_prompt(
        &self,
        name: &str,
        arguments: &BTreeMap<String, String>,
    ) -> Result<GetPromptResult, PromptError> {
        if !self.prompts().iter().any(|p| p.name == name) {
            return Err(PromptError::UnknownPrompt(name.to_owned()));
        }
        get_prompt(name, arguments)
    }

    fn complete<'a>(&'a self, request: &'a CompleteRequestParams) -> BoxFuture<'a, Completion> {
        Box::pin(complete(self.backend().as_ref(), request))
    }
}
