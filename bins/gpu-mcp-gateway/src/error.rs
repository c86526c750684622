//! Errors of the gateway's start-up and serving.

use gpu_mcp_cli::{EX_USAGE, ExitStatus};

/// Why the gateway could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is inconsistent (exit status 64).
    #[error("invalid configuration: {0}")]
    Config(String),
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
            Self::Config(_) => true,
            Self::Kubernetes(e) => matches!(
                e,
                K::ClientConfig { .. }
                    | K::InvalidNodeName { .. }
                    | K::InvalidStaticAgent { .. }
                    | K::InvalidDiscoveryConfig(_)
                    | K::InvalidHttpConfig(_)
                    | K::InvalidExecConfig(_)
            ),
            Self::Transport(e) => e.is_config(),
        }
    }
}

impl ExitStatus for Error {
    /// [`EX_USAGE`] for configuration errors ([`Error::is_config`]), 1 otherwise.
    fn exit_code(&self) -> u8 {
        if self.is_config() { EX_USAGE } else { 1 }
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
