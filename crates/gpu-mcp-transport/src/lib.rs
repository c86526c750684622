//! MCP transports: newline-delimited JSON-RPC over stdio, and Streamable HTTP on hyper 1.x with
//! the operational endpoints (`/healthz`, `/readyz`, `/version`, `/metrics`).
//!
//! The transports own bytes, limits, timeouts, security checks and shutdown; everything about MCP
//! itself (lifecycle, versions, tools) is [`gpu_mcp_server`]'s. Both hand each decoded message to a
//! [`gpu_mcp_server::Session`] and write back what it answers.
//!
//! - [`serve_stdio`] / [`serve_stdio_with`]: one session over a reader/writer pair.
//! - [`HttpServer`]: `POST /mcp` (JSON or one-event SSE replies), optional `Mcp-Session-Id`
//!   sessions, `DELETE /mcp`, `Origin` allow-list, bearer token, body limit, TLS, graceful shutdown.
//! - [`Metrics`] and [`Health`]: shared with the binaries, which may add their own metrics.

mod codec;
mod dispatch;
mod error;
mod health;
mod http;
mod metrics;
mod stdio;

pub use error::{Error, Result};
pub use health::Health;
pub use http::{DEFAULT_MAX_BODY_BYTES, HttpConfig, HttpServer, SessionMode, TlsConfig};
pub use metrics::{Metrics, OPENMETRICS_CONTENT_TYPE};
pub use stdio::{DEFAULT_MAX_LINE_BYTES, StdioConfig, serve_stdio, serve_stdio_with};
