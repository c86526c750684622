//! Errors of the transport crate.

use std::net::SocketAddr;

/// Why a transport could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP listener could not bind its address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// Reading from or writing to the stdio pair (or the listener) failed.
    #[error("transport I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS material could not be turned into a server configuration.
    #[error("invalid TLS configuration: {0}")]
    Tls(String),
    /// The OAuth settings cannot be used (a URL, the audience or a scope name).
    #[error("invalid OAuth configuration: {0}")]
    OAuth(String),
}

impl Error {
    /// Whether the settings given are at fault (TLS material, OAuth settings), not the
    /// machine or the network.
    pub fn is_config(&self) -> bool {
        matches!(self, Self::Tls(_) | Self::OAuth(_))
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
