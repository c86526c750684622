/// Errors produced while decoding or validating protocol messages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes were not valid JSON (JSON-RPC `-32700`).
    #[error("parse error: {0}")]
    Parse(String),
    /// The JSON was valid but not a JSON-RPC 2.0 message (JSON-RPC `-32600`).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
