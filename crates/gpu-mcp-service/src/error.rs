/// Errors of the server core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool definition is not valid MCP (bad name, non-object schema).
    #[error("invalid tool definition `{name}`: {reason}")]
    InvalidTool {
        /// The tool's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Two tools of a catalog share a name.
    #[error("duplicate tool name `{0}`")]
    DuplicateTool(String),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
