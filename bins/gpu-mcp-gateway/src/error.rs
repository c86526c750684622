//! Errors of the gateway's start-up and serving.

use std::path::PathBuf;

/// Why the gateway could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is inconsistent (exit status 64).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file named by a flag (token, certificate, key) could not be read (exit status 64).
    #[error("cannot read {what} {}: {source}", path.display())]
    ReadFile {
        /// What the file is for.
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// The Kubernetes layer could not be set up.
    #[error(transparent)]
    Kubernetes(#[from] gpu_mcp_k8s::Error),
    /// The MCP transport failed.
    #[error(transparent)]
    Transport(#[from] gpu_mcp_transport::Error),
}

impl Error {
    /// Whether the error is the operator's to fix in flags or files (exit status 64, `EX_USAGE`)
    /// rather than a failure at run time.
    pub fn is_config(&self) -> bool {
        use gpu_mcp_k8s::Error as K;
        match self {
            Self::Config(_) | Self::ReadFile { .. } => true,
            Self::Kubernetes(e) => matches!(
                e,
                K::ClientConfig { .. }
                    | K::InvalidNodeName { .. }
                    | K::InvalidStaticAgent { .. }
                    | K::InvalidDiscoveryConfig(_)
                    | K::InvalidHttpConfig(_)
                    | K::InvalidExecConfig(_)
            ),
            Self::Transport(e) => matches!(
                e,
                gpu_mcp_transport::Error::Tls(_) | gpu_mcp_transport::Error::Config(_)
            ),
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
