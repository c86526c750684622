//! MCP wire protocol: JSON-RPC 2.0 framing, MCP message types, protocol-version negotiation and the
//! standard error codes.
//!
//! This crate is pure: it performs no I/O, spawns nothing and reads no environment. Transports hand
//! it bytes and get typed messages back; the server core hands it typed results and gets bytes.

mod error;
pub mod jsonrpc;
pub mod mcp;
pub mod version;

pub use error::{Error, Result};
pub use jsonrpc::{ErrorCode, ErrorObject, Message, Notification, Request, RequestId, Response};
pub use mcp::{CallToolResult, Content, Tool, ToolAnnotations};
pub use version::ProtocolVersion;

/// A JSON object, as used for tool arguments, schemas and `_meta`.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;
