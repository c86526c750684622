/// Errors produced while decoding or validating protocol messages.
///
/// Decoding a whole message reports through [`crate::parse_message`]'s ready JSON-RPC error
/// reply instead; this enum serves the typed helpers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A protocol version string this implementation does not speak.
    #[error("unsupported protocol version {0:?}")]
    UnsupportedVersion(String),
    /// Message parameters did not match the expected MCP type (JSON-RPC `-32602`).
    #[error("invalid params: {0}")]
    InvalidParams(#[source] serde_json::Error),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
