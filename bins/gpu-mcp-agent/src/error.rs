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
    /// A check could not be made (for example the GPUs could not be read).
    #[error("{0}")]
    Check(String),
    /// A check's answer could not be written to stdout.
    #[error("cannot write to stdout: {0}")]
    Output(std::io::Error),
    /// A check found the node not healthy: exit code 2 (warning), 3 (degraded), 4 (critical).
    #[error("the node's GPU verdict is {}", .0.as_str())]
    Verdict(gpu_mcp_model::output::Verdict),
}

impl ExitStatus for Error {
    /// [`EX_USAGE`] for configuration errors, [`EX_UNAVAILABLE`] when the GPU backend cannot
    /// start, 2 to 4 for a check's warning, degraded or critical verdict, 1 otherwise.
    fn exit_code(&self) -> u8 {
        use gpu_mcp_model::output::Verdict;
        match self {
            Self::Verdict(Verdict::Warning) => 2,
            Self::Verdict(Verdict::Degraded) => 3,
            Self::Verdict(Verdict::Critical) => 4,
            Self::Verdict(Verdict::Healthy) | Self::Check(_) | Self::Output(_) => 1,
            Self::Transport(e) if e.is_config() => EX_USAGE,
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
        use gpu_mcp_model::output::Verdict;
        assert_eq!(Error::Verdict(Verdict::Warning).exit_code(), 2);
        assert_eq!(Error::Verdict(Verdict::Degraded).exit_code(), 3);
        assert_eq!(Error::Verdict(Verdict::Critical).exit_code(), 4);
        let io = std::io::Error::other("boom");
        assert_eq!(
            Error::Transport(gpu_mcp_transport::Error::Io(io)).exit_code(),
            1
        );
    }
}
