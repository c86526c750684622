//! Transport-agnostic MCP server core: connection lifecycle (`initialize`, `ping`, `server/discover`),
//! version negotiation, and dispatch of `tools/list` / `tools/call` to a [`ToolCatalog`].
//!
//! Transports (stdio, Streamable HTTP) own the bytes; they parse with [`gpu_mcp_protocol`], keep one
//! [`Session`] per connection or HTTP session, and hand each message to [`Session::handle`].
//! The policy decisions (versions, lifecycle strictness, per-revision fields, header/body
//! agreement, cancellation) are documented on the `server` module and in `docs/protocol.md`;
//! in short:
//!
//! - `initialize` answers 2025-11-25, 2025-06-18, 2025-03-26 and 2024-11-05 with themselves and
//!   anything else with 2025-11-25; it is never refused for its version.
//! - Requests carrying the 2026-07-28 `_meta` envelope are served statelessly on any transport.
//! - By default requests before `initialize` are served ([`SessionPolicy::strict_lifecycle`]).
//! - Fields a negotiated revision does not define are stripped.
//!
//! Tool authors use [`tool_definition`] to derive definitions from Rust types and
//! [`parse_arguments`] to read arguments, and implement [`ToolCatalog`].

mod catalog;
mod error;
mod server;
mod tool;

pub use catalog::{CallContext, CallError, ToolCatalog};
pub use error::{Error, Result};
pub use server::{
    HttpHeaders, McpServer, RequestContext, ServerInfo, Session, SessionPolicy, TransportKind,
};
pub use tool::{
    MAX_TOOL_NAME_LEN, is_valid_tool_name, parse_arguments, tool_definition, try_tool_definition,
    validate_tool, validate_tools,
};
