//! MCP wire protocol: JSON-RPC 2.0 framing, MCP message types, protocol-version negotiation and the
//! standard error codes.
//!
//! This crate is pure: it performs no I/O, spawns nothing and reads no environment. Transports hand
//! it bytes and get typed messages back ([`parse_message`]); the server core hands it typed results
//! and gets bytes ([`encode`]).
//!
//! - [`jsonrpc`]: messages, the codec and its rules for bad input, error codes and their HTTP
//!   statuses.
//! - [`mcp`]: MCP payloads (lifecycle, tools, prompts, resources, cancellation, logging, discovery).
//! - [`version`]: the revisions we speak and how `initialize` negotiates between them.
//! - [`envelope`]: the 2026-07-28 per-request `_meta` envelope.
//! - [`tool_definition`]: a tool's definition with schemas derived from Rust types.
//! - [`http`]: Streamable HTTP header names, the headers that mirror the body, their value
//!   encoding and the HTTP status of error replies.

pub mod envelope;
mod error;
pub mod http;
pub mod jsonrpc;
pub mod mcp;
mod tool_schema;
pub mod version;

pub use envelope::RequestEnvelope;
pub use error::{Error, Result};
pub use jsonrpc::{
    Encode, EncodedMembers, EncodedObject, ErrorCode, ErrorObject, Message, Notification, Request,
    RequestId, Response, encode, encode_line, http_status_for_error, message_from_value,
    parse_message,
};
pub use mcp::{
    CallToolRequestParams, CallToolResult, CancelledNotificationParams, ClientCapabilities,
    Content, DiscoverResult, Implementation, InitializeRequestParams, InitializeResult,
    ListToolsResult, LoggingLevel, ServerCapabilities, SharedCallToolResult, Tool, ToolAnnotations,
    ToolsCapability,
};
pub use tool_schema::tool_definition;
pub use version::ProtocolVersion;

/// A JSON object, as used for tool arguments, schemas and `_meta`.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;
