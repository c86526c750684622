//! The seam between the server core and the tools (and prompts) it serves.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use gpu_mcp_protocol::mcp::{
    CompleteRequestParams, Completion, GetPromptResult, Prompt, ReadResourceResult, Resource,
    ResourceTemplate,
};
use gpu_mcp_protocol::{CallToolResult, JsonObject, SharedCallToolResult, Tool};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::progress::Progress;

/// Per-call context handed to a tool.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// Cancelled when the client cancels the request (`notifications/cancelled`) or goes away.
    pub cancel: CancellationToken,
    /// The request's `params._meta`, if any.
    pub meta: Option<JsonObject>,
    /// Where to report progress: set when the request carries a `progressToken` and the
    /// transport can deliver notifications while it runs.
    pub progress: Option<Progress>,
}

/// Why a catalog could not run a call at all (as opposed to a tool failure, which is an
/// `isError: true` [`CallToolResult`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No tool of that name: JSON-RPC `-32602`.
    #[error("unknown tool: {0}")]
    UnknownTool(String),
}

/// What a tool call answered: a result of its own, or one the catalog shares with identical
/// calls, encoded once ([`ToolCatalog::call_shared`]).
#[derive(Debug, Clone)]
pub enum ToolAnswer {
    /// A result made for this call.
    Own(CallToolResult),
    /// A result shared with other calls; the server writes its bytes into the response as they
    /// are wherever the request's revision takes the result unchanged.
    Shared(SharedCallToolResult),
}

impl ToolAnswer {
    /// The result, by value (a copy of a shared one).
    pub fn into_result(self) -> CallToolResult {
        match self {
            Self::Own(result) => result,
            Self::Shared(shared) => shared.into_result(),
        }
    }
}

impl From<CallToolResult> for ToolAnswer {
    fn from(result: CallToolResult) -> Self {
        Self::Own(result)
    }
}

/// Why a prompt could not be filled: JSON-RPC `-32602` with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    /// No prompt of that name.
    #[error("Unknown prompt: {0}")]
    UnknownPrompt(String),
    /// An argument is unknown, missing or unusable; the message names it.
    #[error("{0}")]
    InvalidArguments(String),
}

/// A set of tools: their definitions and how to call them; optionally prompt templates and
/// argument completion.
pub trait ToolCatalog: Send + Sync + 'static {
    /// All tool definitions in a stable order.
    fn tools(&self) -> Vec<Tool>;

    /// Runs one tool. Bad arguments and execution failures are `Ok` results with `isError: true`
    /// and a message that names the argument or the failure.
    fn call<'a>(
        &'a self,
        name: &'a str,
        arguments: Option<JsonObject>,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>>;

    /// Runs one tool like [`ToolCatalog::call`], for the server: a catalog that reuses answers
    /// between identical calls returns them as [`ToolAnswer::Shared`], so that a reuse costs
    /// the server one copy of the answer's bytes and no encoding.
    /// By default, [`ToolCatalog::call`]'s own result.
    fn call_shared<'a>(
        &'a self,
        name: &'a str,
        arguments: Option<JsonObject>,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<ToolAnswer, CallError>> {
        Box::pin(async move { self.call(name, arguments, ctx).await.map(ToolAnswer::Own) })
    }

    /// The catalog's prompt templates and argument completion, if it has any; the server
    /// declares the `prompts` and `completions` capabilities only then.
    fn prompt_catalog(&self) -> Option<&dyn PromptCatalog> {
        None
    }

    /// The catalog's resources, if it has any; the server declares the `resources` capability
    /// (and `completions`, for the templates' variables) only when it has templates.
    fn resource_catalog(&self) -> Option<&dyn ResourceCatalog> {
        None
    }
}

/// Prompt templates (`prompts/list`, `prompts/get`) and argument completion
/// (`completion/complete`) of a [`ToolCatalog`].
pub trait PromptCatalog: Send + Sync {
    /// Prompt templates in a stable order.
    fn prompts(&self) -> Vec<Prompt>;

    /// Fills prompt `name` with `arguments`.
    fn get_prompt(
        &self,
        name: &str,
        arguments: &BTreeMap<String, String>,
    ) -> Result<GetPromptResult, PromptError>;

    /// Values for the argument of a prompt that `request` names (at most
    /// [`gpu_mcp_protocol::mcp::MAX_COMPLETION_VALUES`]); no values for an argument the catalog
    /// cannot complete. The variables of resource templates are
    /// [`ResourceCatalog::complete`]'s.
    fn complete<'a>(&'a self, request: &'a CompleteRequestParams) -> BoxFuture<'a, Completion>;
}

/// Why a resource could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// No resource at that URI (not one of the templates, or a node or GPU that does not
    /// exist): `-32602` in 2026-07-28 (`-32002` before) with this message and `data: {uri}`.
    #[error("{0}")]
    NotFound(String),
    /// The resource exists but could not be read now (the GPUs or the node did not answer):
    /// `-32603` with this message.
    #[error("{0}")]
    Unavailable(String),
}

/// Resources (`resources/list`, `resources/templates/list`, `resources/read`) of a
/// [`ToolCatalog`], and completion of their templates' variables.
pub trait ResourceCatalog: Send + Sync {
    /// Resource templates in a stable order (fixed for the life of the process).
    fn templates(&self) -> Vec<ResourceTemplate>;

    /// The concrete resources, in a stable order; the server pages them.
    fn resources(&self) -> BoxFuture<'_, Vec<Resource>>;

    /// How long a `resources/list` page stays true, in milliseconds (2026-07-28 `ttlMs`).
    fn resources_ttl_ms(&self) -> u64;

    /// How long a read stays true, in milliseconds (2026-07-28 `ttlMs` of `resources/read`).
    /// Default 0: every read is the state now.
    fn read_ttl_ms(&self) -> u64 {
        0
    }

    /// Reads the resource at `uri` (its `ttlMs` and `cacheScope` are the server's to set);
    /// `cancel` fires when the client cancels the request.
    fn read<'a>(
        &'a self,
        uri: &'a str,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<ReadResourceResult, ResourceError>>;

    /// Values for the variable of a resource template that `request` names (at most
    /// [`gpu_mcp_protocol::mcp::MAX_COMPLETION_VALUES`]).
    fn complete<'a>(&'a self, request: &'a CompleteRequestParams) -> BoxFuture<'a, Completion>;

    /// A generation that moves whenever the list of [`ResourceCatalog::resources`] changes,
    /// if it can change; the server then announces changes to its sessions
    /// (`notifications/resources/list_changed`). Default `None`: the list is fixed, or its
    /// changes are told only by its `ttlMs`. Asked once, when the server is made.
    fn list_changes(&self) -> Option<watch::Receiver<u64>> {
        None
    }
}
