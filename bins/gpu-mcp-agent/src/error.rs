//! Errors that stop the agent.

use gpu_mcp_cli::{EX_UNAVAILABLE, EX_USAGE, ExitStatus};

/// Why the agent could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The GPU backend could not start (for example NVML is missing in real mode).
    #[error(transparent)]
    Gpu(#[from] gpu_mcp_backend::Error),
    /// The transport failed (for example the listen address is taken).
    #[error(transparent)]
    Transport(#[from] gpu_mcp_transport::Error),
    /// The NVML start-up thread did not finish.
    #[error("GPU backend start-up was interrupted")]
    Startup,
}

impl ExitStatus for Error {
    /// [`EX_USAGE`] for configuration errors, [`EX_UNAVAILABLE`] when the GPU backend cannot
    /// start, 1 otherwise.
    fn exit_code(&self) -> u8 {
        match self {
            Self::Transport(gpu_mcp_transport::Error::Tls(_)) => EX_USAGE,
            Self::Gpu(_) | Self::Startup => EX_UNAVAILABLE,
            Self::Transport(_) => 1,
        }
    }
}

/// Result type of the agent.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(
            Error::Transport(gpu_mcp_transport::Error::Tls("bad pem".into())).exit_code(),
            64
        );
        assert_eq!(Error::Startup.exit_code(), 69);
        let io = std::io::Error::other("boom");
        assert_eq!(
            Error::Transport(gpu_mcp_transport::Error::Io(io)).exit_code(),
            1
        );
    }
}
