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
    /// No prompt of that name (JSON-RPC `-32602`).
    #[error("Unknown prompt: {0}")]
    UnknownPrompt(String),
    /// An argument the prompt does not take.
    #[error("Prompt {prompt} has no argument `{argument}` (it takes: {expected})")]
    UnknownPromptArgument {
        /// The prompt.
        prompt: String,
        /// The argument given.
        argument: String,
        /// The arguments it takes.
        expected: String,
    },
    /// A required prompt argument is missing.
    #[error("Prompt {prompt} needs the argument `{argument}`")]
    MissingPromptArgument {
        /// The prompt.
        prompt: String,
        /// The argument.
        argument: String,
    },
    /// A prompt argument's value is not usable.
    #[error("Invalid argument `{argument}`: {reason}")]
    InvalidPromptArgument {
        /// The argument.
        argument: String,
        /// Why.
        reason: String,
    },
    /// A toolset name that does not exist (or an empty list).
    #[error("unknown toolset {given:?}; the toolsets are {known} (or all)")]
    UnknownToolset {
        /// What was given.
        given: String,
        /// The toolsets there are.
        known: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
