//! Errors of the tool catalog.

/// Errors returned by this crate's fallible constructors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool definition could not be generated.
    #[error("tool definition is invalid: {0}")]
    Definition(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
