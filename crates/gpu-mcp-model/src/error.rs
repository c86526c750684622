//! Errors of the model crate.

/// Errors returned by this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `since` value is neither a relative window nor an RFC 3339 time.
    #[error(
        "{value:?} is neither a window like 30m, 6h, 7d nor an RFC 3339 time like 2026-01-31T12:00:00Z"
    )]
    InvalidSince {
        /// The value given.
        value: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
