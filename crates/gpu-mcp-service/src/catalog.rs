//! The seam between the server core and the tools it serves.

use futures::future::BoxFuture;
use gpu_mcp_protocol::{CallToolResult, JsonObject, Tool};
use tokio_util::sync::CancellationToken;

/// Per-call context handed to a tool.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// Cancelled when the client cancels the request (`notifications/cancelled`) or goes away.
    pub cancel: CancellationToken,
    /// The request's `params._meta`, if any.
    pub meta: Option<JsonObject>,
}

/// Why a catalog could not run a call at all (as opposed to a tool failure, which is an
/// `isError: true` [`CallToolResult`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No tool of that name: JSON-RPC `-32602`.
    #[error("unknown tool: {0}")]
    UnknownTool(String),
}

/// A set of tools: their definitions and how to call them.
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
}
