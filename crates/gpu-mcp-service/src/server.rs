//! The server: who it is, the policy its sessions follow, and the catalog it serves.

use std::collections::HashSet;
use std::sync::Arc;

use gpu_mcp_protocol::mcp::{
    Implementation, PromptsCapability, ResourcesCapability, ServerCapabilities, ToolsCapability,
};
use gpu_mcp_protocol::{EncodedMembers, JsonObject};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::watch;

use crate::catalog::ToolCatalog;
use crate::error::Result;
use crate::lifecycle::stateless_members;
use crate::logging::LogSink;
use crate::session::{Session, SessionState};
use crate::tool::validate_tools;

/// Who this server is, as reported in `initialize` / `server/discover`.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Machine name, e.g. `k8s-gpu-mcp-agent`.
    pub name: String,
    /// Semver of the binary.
    pub version: String,
    /// Display title.
    pub title: Option<String>,
    /// Instructions for the model on how to use the tools.
    pub instructions: Option<String>,
}

/// How sessions treat the lifecycle and pagination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Refuse (`-32600`) requests other than `initialize`, `ping`, `server/discover` and
    /// envelope requests before `initialize`. Default `false`, so one-shot use works.
    pub strict_lifecycle: bool,
    /// Tools per `tools/list` page. Default 1000, i.e. one page in practice.
    pub page_size: usize,
    /// `ttlMs` of `server/discover` results. Default [`DEFAULT_TOOLS_TTL_MS`]: versions,
    /// capabilities and instructions change only when the server restarts.
    pub discover_ttl_ms: u64,
    /// `ttlMs` of `tools/list` results in revisions with cache hints (2026-07-28).
    /// Default [`DEFAULT_TOOLS_TTL_MS`]: the tool list changes only when the server restarts.
    pub tools_ttl_ms: u64,
}

/// Default `ttlMs` of `tools/list` results: one hour.
///
/// A catalog's tools are fixed for the life of the process (`listChanged` is `false`), so the
/// only change a client can miss is a new version of the server after a restart; an hour bounds
/// how long a client keeps using the old list after a rolling upgrade.
pub const DEFAULT_TOOLS_TTL_MS: u64 = 60 * 60 * 1000;

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            strict_lifecycle: false,
            page_size: 1000,
            discover_ttl_ms: DEFAULT_TOOLS_TTL_MS,
            tools_ttl_ms: DEFAULT_TOOLS_TTL_MS,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) info: ServerInfo,
    pub(crate) catalog: Arc<dyn ToolCatalog>,
    pub(crate) policy: SessionPolicy,
    /// `serverInfo` with and without `title`, and as `_meta` value, built once.
    pub(crate) implementation_titled: Implementation,
    pub(crate) implementation_plain: Implementation,
    pub(crate) server_info_meta: Value,
    /// The 2026-07-28 result members, encoded once for results shared by many responses.
    pub(crate) stateless_members: EncodedMembers,
    /// Names of the catalog's tools, so that reports name only tools that exist.
    pub(crate) tool_names: HashSet<String>,
    /// Whether the catalog offers prompts (fixed for the life of the server).
    pub(crate) has_prompts: bool,
    /// Whether the catalog offers resource templates (fixed for the life of the server).
    pub(crate) has_resources: bool,
    /// Where components write log messages for the sessions' clients.
    pub(crate) log_sink: LogSink,
    /// The generation of the catalog's resource list, when it has resources and they change.
    pub(crate) list_changes: Option<watch::Receiver<u64>>,
}

/// The server: shared, cheap to clone; one per process.
#[derive(Clone)]
pub struct McpServer {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("info", &self.inner.info)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

fn implementation(info: &ServerInfo, with_title: bool) -> Implementation {
    Implementation {
        name: info.name.clone(),
        version: info.version.clone(),
        title: if with_title { info.title.clone() } else { None },
        ..Implementation::default()
    }
}

impl McpServer {
    /// Creates a server over a tool catalog, with the default [`SessionPolicy`].
    /// Use [`McpServer::try_new`] to reject invalid tool definitions up front.
    pub fn new(info: ServerInfo, catalog: Arc<dyn ToolCatalog>) -> Self {
        Self::with_policy(info, catalog, SessionPolicy::default())
    }

    /// Creates a server with an explicit policy.
    pub fn with_policy(
        info: ServerInfo,
        catalog: Arc<dyn ToolCatalog>,
        policy: SessionPolicy,
    ) -> Self {
        Self::with_log_sink(info, catalog, policy, LogSink::new())
    }

    /// Creates a server whose sessions read log messages from `log_sink`, which the components
    /// behind the catalog were given before the server existed.
    pub fn with_log_sink(
        info: ServerInfo,
        catalog: Arc<dyn ToolCatalog>,
        policy: SessionPolicy,
        log_sink: LogSink,
    ) -> Self {
        let implementation_titled = implementation(&info, true);
        let implementation_plain = implementation(&info, false);
        let server_info_meta = serde_json::to_value(&implementation_titled).unwrap_or(Value::Null);
        let stateless_members = EncodedMembers::new(&stateless_members(&server_info_meta));
        let tool_names = catalog.tools().into_iter().map(|t| t.name).collect();
        let has_prompts = catalog
            .prompt_catalog()
            .is_some_and(|p| !p.prompts().is_empty());
        let has_resources = catalog
            .resource_catalog()
            .is_some_and(|r| !r.templates().is_empty());
        let list_changes = catalog
            .resource_catalog()
            .filter(|_| has_resources)
            .and_then(|r| r.list_changes());
        Self {
            inner: Arc::new(Inner {
                info,
                catalog,
                policy,
                implementation_titled,
                implementation_plain,
                server_info_meta,
                stateless_members,
                tool_names,
                has_prompts,
                has_resources,
                log_sink,
                list_changes,
            }),
        }
    }

    /// Creates a server after checking the catalog's tool definitions (names, object schemas,
    /// unique names).
    pub fn try_new(info: ServerInfo, catalog: Arc<dyn ToolCatalog>) -> Result<Self> {
        validate_tools(&catalog.tools())?;
        Ok(Self::new(info, catalog))
    }

    /// Starts a new session (one stdio connection, or one HTTP session / stateless request).
    pub fn session(&self) -> Session {
        Session {
            server: self.clone(),
            state: Arc::new(Mutex::new(SessionState::default())),
        }
    }

    /// The catalog served.
    pub fn catalog(&self) -> &Arc<dyn ToolCatalog> {
        &self.inner.catalog
    }

    /// Server identity.
    pub fn info(&self) -> &ServerInfo {
        &self.inner.info
    }

    /// The session policy.
    pub fn policy(&self) -> &SessionPolicy {
        &self.inner.policy
    }

    /// Where components write log messages for clients (see [`LogSink`]).
    pub fn log_sink(&self) -> &LogSink {
        &self.inner.log_sink
    }

    /// The capabilities this server declares in the handshake revisions.
    pub fn capabilities(&self) -> ServerCapabilities {
        self.capabilities_for(true)
    }

    /// The capabilities declared in `initialize` (`handshake`) or in 2026-07-28
    /// (`server/discover`), which has no session stream for list changes.
    pub(crate) fn capabilities_for(&self, handshake: bool) -> ServerCapabilities {
        ServerCapabilities {
            tools: Some(ToolsCapability {
                list_changed: Some(false),
            }),
            logging: Some(JsonObject::new()),
            prompts: self.inner.has_prompts.then_some(PromptsCapability {
                list_changed: Some(false),
            }),
            // No subscriptions: resources are read fresh. List changes go to sessions of the
            // handshake revisions; `resources/list` says with `ttlMs` how long its page stays
            // true.
            resources: self.inner.has_resources.then_some(ResourcesCapability {
                subscribe: Some(false),
                list_changed: Some(handshake && self.inner.list_changes.is_some()),
            }),
            completions: (self.inner.has_prompts || self.inner.has_resources).then(JsonObject::new),
            ..ServerCapabilities::default()
        }
    }
}
