//! Errors of the gateway catalog.

/// Why a `node` argument was refused before any routing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The `node` argument is present but not a string.
    #[error("argument `node` must be a string (a Kubernetes node name), got {found}")]
    NodeNotString {
        /// The JSON type that was given instead.
        found: &'static str,
    },
    /// The `node` argument is not a valid Kubernetes node name ([`gpu_mcp_k8s::NodeName`]).
    #[error(
        "argument `node` is not a valid Kubernetes node name {}: {reason}",
        crate::node_arg::quote(given)
    )]
    InvalidNodeName {
        /// The refused value.
        given: String,
        /// What is wrong with it, as [`gpu_mcp_k8s::NodeName`] words it.
        reason: String,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
