//! `prompts/list`, `prompts/get` and `completion/complete`: the catalog's prompt templates and
//! argument completion (of prompt arguments and of resource-template variables), shaped per
//! revision.
//!
//! The prompt list is fixed for the life of the process and the same for every caller, so in
//! 2026-07-28 it carries the tool list's cache hints (`ttlMs` of [`crate::SessionPolicy`],
//! `cacheScope: "public"`). Prompt and argument `title`s exist from 2025-06-18.
//! Completion results are never cached (the schema gives them no hints): node names and GPUs
//! change.

use gpu_mcp_protocol::mcp::{
    CompleteRequestParams, CompleteResult, CompletionReference, GetPromptRequestParams,
    ListPromptsResult, MAX_COMPLETION_VALUES, Prompt, methods, parse_params,
};
use gpu_mcp_protocol::{ErrorObject, ProtocolVersion};
use serde_json::Value;

use crate::catalog::{PromptCatalog, PromptError};
use crate::lifecycle::Served;
use crate::paging::{cursor, list_page, page};
use crate::session::Session;

const CURSOR_PREFIX: &str = "prompts:";

/// Removes what `version` does not define from a prompt definition.
fn shape_prompt(mut prompt: Prompt, version: ProtocolVersion) -> Prompt {
    if !version.supports_title() {
        prompt.title = None;
        for a in &mut prompt.arguments {
            a.title = None;
        }
    }
    prompt
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, ErrorObject> {
    serde_json::to_value(v).map_err(|e| ErrorObject::internal(e.to_string()))
}

impl Session {
    /// Whether the catalog offers prompts (else the prompt methods are `-32601`).
    pub(crate) fn has_prompts(&self) -> bool {
        self.server.inner.has_prompts
    }

    /// The catalog's prompts; only called when [`Session::has_prompts`].
    fn prompt_catalog(&self) -> Result<&dyn PromptCatalog, ErrorObject> {
        self.server
            .inner
            .catalog
            .prompt_catalog()
            .ok_or_else(|| ErrorObject::internal("the catalog has no prompts"))
    }

    /// Whether `method` is a prompt or completion method this session's catalog serves.
    pub(crate) fn serves_prompt_method(&self, method: &str) -> bool {
        match method {
            methods::PROMPTS_LIST | methods::PROMPTS_GET => self.has_prompts(),
            methods::COMPLETION_COMPLETE => self.has_prompts() || self.has_resources(),
            _ => false,
        }
    }

    pub(crate) fn list_prompts(
        &self,
        params: Option<Value>,
        served: Served,
    ) -> Result<Value, ErrorObject> {
        let policy = &self.server.inner.policy;
        let (prompts, next_cursor) = page(
            self.prompt_catalog()?.prompts(),
            cursor(params.as_ref())?,
            CURSOR_PREFIX,
            policy.page_size,
        )?;
        to_value(ListPromptsResult {
            prompts: prompts
                .into_iter()
                .map(|p| shape_prompt(p, served.version))
                .collect(),
            page: list_page(next_cursor, served.version, policy.tools_ttl_ms),
        })
    }

    pub(crate) fn get_prompt(&self, params: Option<Value>) -> Result<Value, ErrorObject> {
        let params: GetPromptRequestParams = parse_params(params)
            .map_err(|e| ErrorObject::invalid_params(format!("prompts/get: {e}")))?;
        let arguments = params.arguments.unwrap_or_default();
        match self.prompt_catalog()?.get_prompt(&params.name, &arguments) {
            Ok(result) => to_value(result),
            Err(e @ (PromptError::UnknownPrompt(_) | PromptError::InvalidArguments(_))) => {
                Err(ErrorObject::invalid_params(e.to_string()))
            }
        }
    }

    pub(crate) async fn complete(&self, params: Option<Value>) -> Result<Value, ErrorObject> {
        let params: CompleteRequestParams = parse_params(params)
            .map_err(|e| ErrorObject::invalid_params(format!("completion/complete: {e}")))?;
        let mut completion = match &params.reference {
            CompletionReference::Prompt { name } => {
                let catalog = self
                    .has_prompts()
                    .then(|| self.prompt_catalog())
                    .transpose()?
                    .filter(|c| c.prompts().iter().any(|p| &p.name == name))
                    .ok_or_else(|| {
                        ErrorObject::invalid_params(format!("Unknown prompt: {name}"))
                    })?;
                catalog.complete(&params).await
            }
            CompletionReference::Resource { uri } => {
                let catalog = self
                    .has_resources()
                    .then(|| self.resource_catalog())
                    .transpose()?
                    .filter(|c| c.templates().iter().any(|t| &t.uri_template == uri))
                    .ok_or_else(|| {
                        ErrorObject::invalid_params(format!("Unknown resource template: {uri}"))
                    })?;
                catalog.complete(&params).await
            }
        };
        if completion.values.len() > MAX_COMPLETION_VALUES {
            completion.values.truncate(MAX_COMPLETION_VALUES);
            completion.has_more = Some(true);
        }
        to_value(CompleteResult {
            completion,
            meta: None,
        })
    }
}
