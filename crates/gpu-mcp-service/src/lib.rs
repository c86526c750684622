//! Transport-agnostic MCP server core: connection lifecycle (`initialize`, `ping`, `server/discover`),
//! version negotiation, and dispatch of `tools/list` / `tools/call` (and `prompts/list`,
//! `prompts/get`, `completion/complete`, `resources/list`, `resources/templates/list`,
//! `resources/read` where the catalog offers them) to a [`ToolCatalog`].
//!
//! Transports (stdio, Streamable HTTP) own sockets, limits and framing.
//! They hand the bytes of each message (and, over HTTP, its MCP headers) to
//! [`Incoming::from_line`] / [`Incoming::from_http`], keep one [`Session`] per connection or HTTP
//! session as [`Incoming::session_use`] says, serve it with [`Session::answer`], and frame the
//! [`Reply`]: its bytes, HTTP status, whether it opens a session, and its [`Outcome`] for
//! metrics.
//! [`Session::handle`] serves an already-decoded [`gpu_mcp_protocol::Message`] (tests, embedders).
//!
//! # Policy
//!
//! **Versions.**
//! `initialize` negotiates one of the handshake revisions 2025-11-25, 2025-06-18, 2025-03-26 and
//! 2024-11-05: a requested one is answered with itself, anything else (unknown, newer, or
//! 2026-07-28, which rmcp 3.11's default client sends in `initialize`) with 2025-11-25.
//! `initialize` is never refused for its version.
//! Over HTTP, an `MCP-Protocol-Version` header naming a revision we do not speak is refused
//! (HTTP 400) before the message is served.
//!
//! **Stateless requests.**
//! A request whose `params._meta` carries `io.modelcontextprotocol/protocolVersion` (the
//! 2026-07-28 envelope) is served on its own, in the revision it names, on any transport, before
//! or after `initialize`, without touching the session's negotiated state.
//! Its result carries `resultType: "complete"` and `_meta["io.modelcontextprotocol/serverInfo"]`.
//! An envelope naming a revision we do not speak gets `-32022` with
//! `data: {supported, requested}`; one without `io.modelcontextprotocol/clientCapabilities` gets
//! `-32602`.
//! `server/discover` is answered at any time, with or without the envelope.
//! Over HTTP the errors of stateless requests go out with the 2026-07-28 status map
//! ([`gpu_mcp_protocol::http_status_for_error`]).
//!
//! **Lifecycle.**
//! With [`SessionPolicy::strict_lifecycle`] off (the default), requests before `initialize` are
//! served as the latest handshake revision, or as the revision of the HTTP
//! `MCP-Protocol-Version` header when it names one: a one-shot stdio run (a bare `tools/call`,
//! then EOF) and a bare HTTP POST work.
//! With it on, anything but `initialize`, `ping`, `server/discover` and envelope requests gets
//! `-32600` "Server not initialized" until `initialize` succeeded.
//! A second `initialize` on a session is `-32600`.
//! An unknown method is `-32601`, whatever the state: the connection is never dropped.
//! So are `initialize`, `ping` and `logging/setLevel` sent as 2026-07-28 requests (HTTP 404):
//! that revision has none of them.
//!
//! **Fields per revision.**
//! `title` (tools, server info), `outputSchema` and `structuredContent` exist from 2025-06-18,
//! tool `annotations` from 2025-03-26.
//! For older revisions they are stripped; a result that loses `structuredContent` keeps (or gets)
//! a text block with its JSON, so the data still reaches the client.
//!
//! **Cache hints.**
//! In 2026-07-28, `tools/list` and `prompts/list` results carry `ttlMs`
//! ([`SessionPolicy::tools_ttl_ms`], an hour by default) and `cacheScope: "public"`: the lists
//! are the same for every caller and change only when the server restarts.
//! `server/discover` carries `ttlMs` ([`SessionPolicy::discover_ttl_ms`], also an hour) and
//! `cacheScope: "public"`, for the same reason.
//! Handshake revisions get neither.
//!
//! **Header/body agreement.**
//! When the transport passes HTTP headers, `Mcp-Method` must equal the method, `Mcp-Name` the
//! `params.name` of `tools/call`/`prompts/get` (`params.uri` of `resources/read`), and
//! `MCP-Protocol-Version` the envelope's version; a header claiming a stateless revision on a
//! request without the envelope's protocol version is `-32602` (invalid params, HTTP 400): the
//! body lacks what its revision requires.
//! A 2026-07-28 request over HTTP (one with the envelope, or whose `MCP-Protocol-Version` names
//! 2026-07-28) must carry `Mcp-Method`, and `Mcp-Name` where the body has the member it
//! mirrors; `initialize` is exempt.
//! Any disagreement or missing header is `-32020` (HTTP 400).
//! For older revisions absent headers are not checked.
//!
//! **Cancellation.**
//! Each `tools/call` in flight is tracked by request id with its own `CancellationToken`;
//! `notifications/cancelled` cancels it, the tool's future is dropped, and no response is sent
//! ([`Session::handle`] returns `None`), as the spec asks.
//! Calls on one session run concurrently; reusing the id of a call still in flight is `-32600`.
//!
//! **Logging.**
//! The server declares the `logging` capability.
//! Components write operator-relevant events to the server's [`LogSink`]; a session passes on,
//! as `notifications/message`, those at or above the level its client set with
//! `logging/setLevel` ([`Session::log_messages`]), and none before the client set one.
//! A 2026-07-28 request instead names a level in its own `_meta`
//! (`io.modelcontextprotocol/logLevel`) and gets the records at or above it written while it
//! runs, on its notification channel before its response; without the key it gets none.
//!
//! **Progress.**
//! A `tools/call` whose `_meta` carries a `progressToken` gets a [`Progress`] in its
//! [`CallContext`] when the transport gave it a notification channel
//! ([`Incoming::with_notifications`]); the tool reports `notifications/progress` with it
//! (done / total and a message) while it runs.
//!
//! **Resources.**
//! A catalog with a [`ResourceCatalog`] that has templates gets the `resources` capability
//! and `completions`, in every revision, with `subscribe` false: every read is the GPUs' state
//! now, so there is nothing to subscribe to.
//! `listChanged` is true in the handshake revisions when the catalog's list changes
//! ([`ResourceCatalog::list_changes`], the gateway's nodes coming and going): each initialized
//! session then gets `notifications/resources/list_changed` ([`Session::resource_list_changes`],
//! at most one per [`LIST_CHANGED_INTERVAL`]) on the stream its transport keeps outside
//! requests. 2026-07-28 gets `listChanged: false`: its change notifications need
//! `subscriptions/listen`, which is not served.
//! `resources/list` pages at most 100 resources and, in 2026-07-28, carries the catalog's
//! `ttlMs` with `cacheScope: "public"`; `resources/templates/list` carries the tool list's hints.
//! A URI that names no resource is `-32602` in 2026-07-28 (SEP-2164) and `-32002` before,
//! with `data: {uri}`; a read is cancellable like a
//! call. `resource_link` blocks in tool results go to 2025-06-18 and later as they are, and
//! become a sentence naming the URI before.
//!
//! The same policy, for users, is in `docs/protocol.md`.
//!
//! # Modules
//!
//! `exchange` (the seam with transports), `headers` (MCP headers over HTTP), `session` (state
//! and cancellation), `lifecycle` (revision and lifecycle decisions, `initialize`,
//! `server/discover`), `list_changes` (resource list change notifications), `dispatch` (methods to handlers), `prompts` (`prompts/list`,
//! `prompts/get`, `completion/complete`), `resources` (`resources/list`,
//! `resources/templates/list`, `resources/read`), `shaping` (per-revision fields),
//! `logging` (log messages for clients), `progress` (progress notifications), `server` (identity and policy), `tool` (definitions from Rust types, argument parsing).
//!
//! Tool authors use [`tool_definition`] to derive definitions from Rust types and
//! [`parse_arguments`] to read arguments, and implement [`ToolCatalog`].

mod catalog;
mod dispatch;
mod error;
mod exchange;
mod headers;
mod lifecycle;
mod list_changes;
mod logging;
mod paging;
mod progress;
mod prompts;
mod resources;
mod server;
mod session;
mod shaping;
mod throttle;
mod tool;

pub use catalog::{
    CallContext, CallError, PromptCatalog, PromptError, ResourceCatalog, ResourceError, ToolAnswer,
    ToolCatalog,
};
pub use error::{Error, Result};
pub use exchange::{Incoming, Label, Outcome, Reply, RequestContext, SessionUse, TransportKind};
pub use headers::HttpHeaders;
pub use list_changes::{LIST_CHANGED_INTERVAL, ListChanges, RESOURCE_LIST_CHANGED_METHOD};
pub use logging::{LOG_MESSAGE_METHOD, LogMessages, LogRecord, LogSink};
pub use progress::{NotificationSender, PROGRESS_METHOD, Progress};
pub use server::{DEFAULT_TOOLS_TTL_MS, McpServer, ServerInfo, SessionPolicy};
pub use session::Session;
pub use throttle::{DEFAULT_LOG_INTERVAL, ThrottledLog};
pub use tool::{
    MAX_TOOL_NAME_LEN, is_valid_tool_name, parse_arguments, tool_definition, try_tool_definition,
    validate_tool, validate_tools,
};
