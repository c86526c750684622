//! Error types: [`Error`] for setting the layer up, [`NodeError`] for one node's request.

use std::time::Duration;

use crate::quote::quote_untrusted;

/// Result alias for this crate's setup operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors raised while configuring the Kubernetes layer (client, discovery, static agents).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable client configuration was found; every source that was tried is listed.
    #[error("no usable Kubernetes client configuration; tried: {}", format_attempts(.attempts))]
    ClientConfig {
        /// Each configuration source tried, in order, with the reason it failed.
        attempts: Vec<ConfigAttempt>,
    },

    /// A configuration was loaded but a client could not be built from it.
    #[error("failed to build a Kubernetes client: {0}")]
    Client(#[source] kube::Error),

    /// A node name is not a valid DNS-1123 subdomain (see [`crate::NodeName`]).
    #[error("invalid node name {name:?}: {reason}")]
    InvalidNodeName {
        /// The rejected name (possibly truncated for display).
        name: String,
        /// Why it was rejected, worded without the name (e.g. `it is empty`).
        reason: String,
    },

    /// A static agent entry (`name=url`) could not be parsed.
    #[error("invalid static agent entry {entry:?}: {reason}")]
    InvalidStaticAgent {
        /// The offending entry.
        entry: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The discovery configuration is unusable (bad namespace or empty selector).
    #[error("invalid discovery configuration: {0}")]
    InvalidDiscoveryConfig(String),

    /// The HTTP transport configuration is unusable (e.g. a token that is not a valid header).
    #[error("invalid HTTP transport configuration: {0}")]
    InvalidHttpConfig(String),

    /// The exec transport configuration is unusable (e.g. an empty command).
    #[error("invalid exec transport configuration: {0}")]
    InvalidExecConfig(String),

    /// The discovery cache did not sync within the allowed time.
    #[error("agent discovery did not sync within {0:?}")]
    SyncTimeout(Duration),

    /// Discovery was started outside a Tokio runtime.
    #[error("agent discovery must be started inside a Tokio runtime")]
    NoRuntime,

    /// The discovery background task ended before the cache synced.
    #[error("agent discovery stopped before the cache synced")]
    DiscoveryStopped,
}

/// One configuration source tried by [`crate::client_config`] and why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigAttempt {
    /// Human-readable name of the source, e.g. `in-cluster service account` or `kubeconfig /path`.
    pub source: String,
    /// The reason the source could not be used.
    pub reason: String,
}

fn format_attempts(attempts: &[ConfigAttempt]) -> String {
    attempts
        .iter()
        .map(|a| format!("{} ({})", a.source, a.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a request to one node's agent failed.
///
/// Its message quotes what the agent, the node or the API server said only through
/// [`crate::quote_untrusted`]: escaped, bounded and in quotes.
///
/// Every variant is specific to one node: a fan-out reports it in that node's
/// [`crate::NodeResult`] and carries on with the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// No agent pod is known on the node.
    #[error("no agent pod on node {node:?} (known nodes: {})", known_list(.known, *.synced))]
    NotFound {
        /// The requested node.
        node: String,
        /// The nodes that do have an agent.
        known: Vec<String>,
        /// Whether the discovery cache had synced when the lookup was made.
        synced: bool,
    },

    /// The node's agent pod exists but is not Ready.
    #[error("agent pod {pod} on node {node:?} is not ready")]
    NotReady {
        /// The node.
        node: String,
        /// The agent pod.
        pod: String,
    },

    /// The node's agent pod has no IP address yet (and no static URL is configured).
    #[error("agent pod {pod} on node {node:?} has no pod IP yet")]
    NoPodIp {
        /// The node.
        node: String,
        /// The agent pod.
        pod: String,
    },

    /// The per-node deadline passed before the agent answered.
    #[error("no answer from the agent within {after:?}")]
    Timeout {
        /// The deadline that expired.
        after: Duration,
    },

    /// The TCP connection to the agent could not be established or broke.
    #[error("cannot connect to the agent at {url}: {}", quote_untrusted(.message))]
    Connect {
        /// The URL that was tried.
        url: String,
        /// The underlying error.
        message: String,
    },

    /// The agent answered with an HTTP status that carries no JSON-RPC response.
    #[error("agent answered HTTP {status}{}", snippet(.body))]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },

    /// The agent's response exceeded the configured size limit.
    #[error("agent response exceeds the {limit}-byte limit")]
    ResponseTooLarge {
        /// The limit in bytes.
        limit: usize,
    },

    /// The agent answered something that is not the JSON-RPC response to the request.
    #[error("agent protocol error: {}", quote_untrusted(.message))]
    Protocol {
        /// What was wrong with the answer.
        message: String,
    },

    /// The exec'd agent exited (or the exec failed) without answering the request.
    #[error("exec in pod {pod} failed{}: {}{}", exit_code.map(|c| format!(" with exit code {c}")).unwrap_or_default(), quote_untrusted(.message), stderr_snippet(.stderr))]
    ExecFailed {
        /// The pod exec'd into.
        pod: String,
        /// The process exit code, when the API server reported one.
        exit_code: Option<i32>,
        /// The status message or the reason the session ended.
        message: String,
        /// The process's standard error (truncated).
        stderr: String,
    },

    /// The Kubernetes API server refused or failed the request.
    #[error("Kubernetes API error {code} {}: {}", quote_untrusted(.reason), quote_untrusted(.message))]
    Api {
        /// The HTTP status code (401, 403, 404, 500 ...).
        code: u16,
        /// The machine-readable reason (`Forbidden`, `NotFound` ...).
        reason: String,
        /// The server's message.
        message: String,
    },

    /// The Kubernetes client failed below the API level (connection, TLS, WebSocket upgrade).
    #[error("Kubernetes client error: {}", quote_untrusted(.message))]
    Kube {
        /// The underlying error.
        message: String,
    },

    /// The node's circuit breaker is open after repeated failures.
    #[error("node skipped after {failures} consecutive failures; retrying in {retry_in:?}")]
    CircuitOpen {
        /// Consecutive failures that opened the breaker.
        failures: u32,
        /// Time left before the next trial request.
        retry_in: Duration,
    },
}

impl NodeError {
    /// A short stable label for the error kind (for metrics and summaries).
    pub fn kind(&self) -> &'static str {
        match self {
            NodeError::NotFound { .. } => "not_found",
            NodeError::NotReady { .. } => "not_ready",
            NodeError::NoPodIp { .. } => "no_pod_ip",
            NodeError::Timeout { .. } => "timeout",
            NodeError::Connect { .. } => "connect",
            NodeError::HttpStatus { .. } => "http_status",
            NodeError::ResponseTooLarge { .. } => "response_too_large",
            NodeError::Protocol { .. } => "protocol",
            NodeError::ExecFailed { .. } => "exec_failed",
            NodeError::Api { .. } => "api",
            NodeError::Kube { .. } => "kube",
            NodeError::CircuitOpen { .. } => "circuit_open",
        }
    }

    /// Whether the failure says something about the agent's health (counts toward the circuit breaker).
    pub fn is_agent_failure(&self) -> bool {
        matches!(
            self,
            NodeError::Timeout { .. }
                | NodeError::Connect { .. }
                | NodeError::HttpStatus { .. }
                | NodeError::ResponseTooLarge { .. }
                | NodeError::Protocol { .. }
                | NodeError::ExecFailed { .. }
                | NodeError::Api { .. }
                | NodeError::Kube { .. }
        )
    }

    pub(crate) fn from_kube(err: kube::Error) -> NodeError {
        match err {
            kube::Error::Api(status) => NodeError::Api {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            other => NodeError::Kube {
                message: other.to_string(),
            },
        }
    }
}

/// Longest body or stderr excerpt kept in an error.
pub(crate) const SNIPPET_LIMIT: usize = 512;

/// Truncate `text` to at most `SNIPPET_LIMIT` bytes on a char boundary.
pub(crate) fn truncate(text: &str) -> String {
    if text.len() <= SNIPPET_LIMIT {
        return text.to_owned();
    }
    let mut end = SNIPPET_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn snippet(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        String::new()
    } else {
        format!(": {}", quote_untrusted(body))
    }
}

fn stderr_snippet(stderr: &str) -> String {
    let stderr = stderr.trim();
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; stderr: {}", quote_untrusted(stderr))
    }
}

fn known_list(known: &[String], synced: bool) -> String {
    let list = if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    };
    if synced {
        list
    } else {
        format!("{list}; discovery has not synced yet")
    }
}
