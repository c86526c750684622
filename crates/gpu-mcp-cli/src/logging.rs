//! The process's tracing subscriber.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::error::{Error, Result};
use crate::flags::{LogFlags, LogFormat};

/// Installs the process's subscriber: logs on stderr (stdout may carry MCP on stdio), filtered
/// by `--log-level`, as text (coloured only when stderr is a terminal) or one JSON object per
/// line.
pub fn init_tracing(flags: &LogFlags) -> Result<()> {
    let filter = EnvFilter::try_new(&flags.log_level)
        .map_err(|e| Error::Logging(format!("invalid --log-level `{}`: {e}", flags.log_level)))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A closed stderr (`… 2>&1 | head`) must not stop the process: the default reports a
        // failed write with `eprintln!`, which panics on that same closed stderr.
        .log_internal_errors(false);
    let result = match flags.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    result.map_err(|e| Error::Logging(format!("cannot set up logging: {e}")))
}
