use std::path::PathBuf;
use std::time::Duration;

/// Why a source could not answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pod-resources socket could not be reached (absent, permission denied, refused).
    #[error("cannot reach the kubelet pod-resources socket {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The kubelet answered the RPC with an error status.
    #[error("kubelet pod-resources {rpc} failed: {status}")]
    Rpc {
        /// The RPC that failed.
        rpc: &'static str,
        /// The gRPC status.
        status: Box<tonic::Status>,
    },
    /// A source did not answer within its deadline.
    #[error("{what} did not answer within {after:?}")]
    Deadline {
        /// What was asked.
        what: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// A blocking read task was lost (the runtime is shutting down).
    #[error("a blocking read was cancelled")]
    Cancelled,
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
