//! MCP transports: newline-delimited JSON-RPC over stdio, and Streamable HTTP on hyper 1.x with
//! the operational endpoints (`/healthz`, `/readyz`, `/version`, `/metrics`).
//!
//! The transports own sockets, limits, timeouts, security checks, the HTTP session table, framing
//! and shutdown; everything about MCP itself (decoding, versions, header checks, lifecycle, tools,
//! reply statuses) is [`gpu_mcp_service`]'s. Both hand the bytes of each message (and, over HTTP,
//! its MCP headers) to [`gpu_mcp_service::Incoming`], serve it on a [`gpu_mcp_service::Session`]
//! and write back the [`gpu_mcp_service::Reply`]; metrics take their labels and outcomes from the
//! server core.
//!
//! - [`serve_stdio`] / [`serve_stdio_with`]: one session over a reader/writer pair.
//! - [`HttpServer`]: `POST /mcp` (JSON or SSE replies; a request that sends notifications
//!   streams them, then its response, on its own event stream), optional `Mcp-Session-Id`
//!   sessions, `DELETE /mcp`, `Origin` allow-list, bearer token, body limit, TLS, graceful shutdown;
//!   with [`OAuthConfig`], an OAuth 2.1 resource server: JWT access tokens of one issuer for this
//!   resource, and its RFC 9728 metadata at `/.well-known/oauth-protected-resource`.
//! - [`Metrics`] and [`Health`]: shared with the binaries, which may add their own metrics.
//!
//! # The MCP endpoint's answers
//!
//! | situation | answer |
//! |---|---|
//! | a request | 200, `application/json`, or `text/event-stream` (one `message` event) when `Accept` prefers it |
//! | a request that sends notifications (progress, its session's log messages) before its response, when `Accept` names `text/event-stream` | 200, `text/event-stream`: one event per notification, the response last |
//! | a notification or a response | 202, no body |
//! | a 2026-07-28 request whose reply is an error | the status of [`gpu_mcp_protocol::http_status_for_error`] |
//! | body that is not JSON / not JSON-RPC | 400 with `-32700` / `-32600` |
//! | unsupported or malformed `MCP-Protocol-Version` | 400, the supported versions in `error.data` |
//! | a 2026-07-28 request without `Mcp-Method` (or `Mcp-Name`), or with headers that disagree with the body | 400 with `-32020` |
//! | `Mcp-Session-Id` required but missing ([`SessionMode::Required`]) | 400 |
//! | missing or wrong bearer token | 401 with `WWW-Authenticate: Bearer` |
//! | with OAuth: no token / a refused token | 401, `WWW-Authenticate: Bearer resource_metadata="…"` (with `error="invalid_token"` for a refused one) |
//! | with OAuth: a valid token without the required scopes | 403, `WWW-Authenticate: Bearer …, error="insufficient_scope", scope="…"` |
//! | with OAuth: the issuer's signing keys cannot be read | 503 with `Retry-After` |
//! | `Origin` (or `Host`) not allowed | 403 |
//! | unknown or ended session | 404 (the client initializes again) |
//! | `GET` where no standalone stream is offered (sessions disabled, or a resource list that never changes) | 405 with `Allow: POST, DELETE` |
//! | `GET` while the session's standalone stream is open | 409 |
//! | `Accept` admits neither JSON nor an event stream | 406 |
//! | body not received within the request timeout | 408 |
//! | body over the limit (from `Content-Length`, or while reading) | 413 |
//! | `Content-Type` other than `application/json` | 415 |
//! | the client POSTed faster than its rate limit ([`RateLimit`]) | 429 with `Retry-After` |
//! | a connection, byte or session limit of the whole server is reached | 503 with `Retry-After` |
//!
//! A missing `MCP-Protocol-Version` is left to the server core, which assumes 2025-03-26 after
//! `initialize`. Requests without a session are served on a fresh session of their own, so a bare
//! `tools/call` works without `initialize` unless the server's policy is strict.

mod budget;
mod codec;
mod dispatch;
mod error;
mod health;
mod http;
mod metrics;
mod stdio;

pub use error::{Error, Result};
pub use health::Health;
pub use http::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_OAUTH_FETCH_TIMEOUT,
    DEFAULT_OAUTH_MAX_DOCUMENT_BYTES, DEFAULT_OAUTH_REFRESH_INTERVAL, DEFAULT_RATE_LIMIT_BURST,
    DEFAULT_RATE_LIMIT_PER_SECOND, HttpConfig, HttpServer, OAuthConfig, RateLimit, SessionMode,
    TlsConfig,
};
pub use metrics::{Metrics, OPENMETRICS_CONTENT_TYPE};
pub use stdio::{
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_LINE_BYTES, StdioConfig, serve_stdio, serve_stdio_with,
};
