//! The process's tracing subscriber.

use std::io::IsTerminal;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt, registry};

use crate::error::{Error, Result};
use crate::flags::{LogFlags, LogFormat};

/// Installs the process's subscriber: logs on stderr (stdout may carry MCP on stdio), filtered
/// by `--log-level`, as text (coloured only when stderr is a terminal) or one JSON object per
/// line.
///
/// The filter is a level, or comma-separated `target=level` directives with an optional bare
/// default level (`gpu_mcp_fleet=debug,info`). Matching targets by prefix, with no span or field
/// filters, keeps a regular-expression engine out of both binaries.
pub fn init_tracing(flags: &LogFlags) -> Result<()> {
    let filter = parse_filter(&flags.log_level)?;
    let layer = fmt::layer()
        .with_writer(std::io::stderr)
        // A closed stderr (`… 2>&1 | head`) must not stop the process: the default reports a
        // failed write with `eprintln!`, which panics on that same closed stderr.
        .log_internal_errors(false);
    let layer = match flags.log_format {
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
        LogFormat::Text => layer.with_ansi(std::io::stderr().is_terminal()).boxed(),
    };
    registry()
        .with(layer.with_filter(filter))
        .try_init()
        .map_err(|e| Error::Logging(format!("cannot set up logging: {e}")))
}

fn parse_filter(spec: &str) -> Result<Targets> {
    spec.parse::<Targets>()
        .map_err(|e| Error::Logging(format!("invalid --log-level `{spec}`: {e}")))
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn a_level_or_per_target_directives_are_accepted() {
        let filter = parse_filter("info").unwrap();
        assert!(filter.would_enable("gpu_mcp_fleet", &Level::INFO));
        assert!(!filter.would_enable("gpu_mcp_fleet", &Level::DEBUG));

        let filter = parse_filter("gpu_mcp_fleet=debug,warn").unwrap();
        assert!(filter.would_enable("gpu_mcp_fleet::single", &Level::DEBUG));
        assert!(!filter.would_enable("hyper", &Level::INFO));
        assert!(filter.would_enable("hyper", &Level::WARN));
    }

    #[test]
    fn a_malformed_filter_is_refused_with_the_flag_named() {
        let err = parse_filter("gpu_mcp=loud").unwrap_err().to_string();
        assert!(err.contains("--log-level `gpu_mcp=loud`"), "{err}");
    }
}
