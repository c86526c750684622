//! Transport-agnostic MCP server core: connection lifecycle (`initialize`, `ping`, `server/discover`),
//! version negotiation, and dispatch of `tools/list` / `tools/call` to a [`ToolCatalog`].
//!
//! Transports (stdio, Streamable HTTP) own the bytes; they parse with [`gpu_mcp_protocol`], keep one
//! [`Session`] per connection or HTTP session, and hand each message to [`Session::handle`].

mod catalog;
mod error;
mod server;

pub use catalog::{CallContext, CallError, ToolCatalog};
pub use error::{Error, Result};
pub use server::{HttpHeaders, McpServer, RequestContext, ServerInfo, Session, TransportKind};
