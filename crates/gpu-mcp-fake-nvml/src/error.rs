//! The error of the test-side helpers.

use std::path::PathBuf;

/// Errors of [`crate::FakeNvml`] and the scenario parser.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario does not parse or names something that does not exist.
    #[error("invalid scenario: {0}")]
    Scenario(String),
    /// The built library is not where a test binary finds it.
    #[error(
        "the fake NVML library libgpu_mcp_fake_nvml.so is not beside {exe}; it is built with the crate's tests when gpu-mcp-fake-nvml is a dev-dependency"
    )]
    NotBuilt {
        /// The running test binary.
        exe: String,
    },
    /// A file could not be read or written.
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A symbol cannot be hidden from the loader.
    #[error("cannot hide symbol {symbol}: {reason}")]
    Symbol {
        /// The symbol.
        symbol: String,
        /// Why.
        reason: &'static str,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
