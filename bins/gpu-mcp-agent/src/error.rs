//! Errors that stop the agent.

/// Why the agent could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable (exit code 64).
    #[error("invalid configuration: {0}")]
    Config(String),
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

impl Error {
    /// The process exit code for this error: 64 (`EX_USAGE`) for configuration errors,
    /// 69 (`EX_UNAVAILABLE`) when the GPU backend cannot start, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => 64,
            Self::Transport(
                gpu_mcp_transport::Error::Tls(_) | gpu_mcp_transport::Error::Config(_),
            ) => 64,
            Self::Gpu(_) | Self::Startup => 69,
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
        assert_eq!(Error::Config("x".into()).exit_code(), 64);
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
