//! Errors of the binaries' plumbing: flags, files and logging.

use std::path::PathBuf;

use crate::process::{EX_SOFTWARE, EX_USAGE, ExitStatus};

/// Why a binary could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The flags are inconsistent or a value is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file named by a flag (token, certificate, key, profile) could not be read.
    #[error("cannot read the {what} {}: {source}", path.display())]
    ReadFile {
        /// What the file is for.
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// A secret or text file is not UTF-8.
    #[error("the {what} {} is not UTF-8", path.display())]
    NotUtf8 {
        /// What the file is for.
        what: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// A token is empty (after trimming whitespace).
    #[error("the {what} is empty")]
    EmptySecret {
        /// What the token is for, with where it came from.
        what: String,
    },
    /// The log filter or the subscriber could not be set up.
    #[error("{0}")]
    Logging(String),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl ExitStatus for Error {
    /// [`EX_USAGE`] for what the operator fixes in flags or files, [`EX_SOFTWARE`] when the
    /// runtime cannot start.
    fn exit_code(&self) -> u8 {
        match self {
            Error::Runtime(_) => EX_SOFTWARE,
            _ => EX_USAGE,
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
