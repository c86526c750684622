//! Plumbing shared by the two binaries, `gpu-mcp-agent` and `gpu-mcp-gateway`, so they parse,
//! log, stop and fail the same way.
//!
//! This crate is for binaries only. Unlike the other library crates it reads the environment
//! and files, prints, and installs process-wide state (the tracing subscriber, signal handlers);
//! no library crate may depend on it.
//!
//! - [`parse`]: a clap CLI whose every `--flag-name` can also be set as `PREFIX_FLAG_NAME`,
//!   one prefix per binary ([`AGENT_ENV_PREFIX`], [`GATEWAY_ENV_PREFIX`]).
//! - Flag groups flattened into both CLIs, each converting into the library configuration:
//!   [`ServeFlags`] (grouping [`ListenFlags`], [`HttpFlags`], [`AuthFlags`], [`SessionFlags`],
//!   [`TimeoutFlags`] and [`LogFlags`]), plus the [`Transport`] choice and [`parse_duration`].
//! - [`read_secret`] / [`read_file`]: the one place tokens, certificates and keys are read.
//! - [`main`]: logging set-up (no ANSI colour unless stderr is a terminal), the runtime,
//!   SIGINT/SIGTERM as a shutdown token, the fatal error reported once, and the exit code
//!   ([`EX_USAGE`] for configuration errors, [`EX_UNAVAILABLE`] when a needed service such as
//!   NVML is missing).

mod duration;
mod env;
mod error;
mod flags;
mod logging;
mod process;
mod secret;

pub use duration::parse_duration;
pub use env::{AGENT_ENV_PREFIX, GATEWAY_ENV_PREFIX, command, env_name, parse, parse_from};
pub use error::{Error, Result};
pub use flags::{
    AuthFlags, HttpFlags, ListenFlags, LogFlags, LogFormat, ServeFlags, SessionFlags, Sessions,
    TimeoutFlags, Transport,
};
pub use logging::init_tracing;
pub use process::{
    EX_SOFTWARE, EX_UNAVAILABLE, EX_USAGE, ExitStatus, Program, main, shutdown_on_signals,
};
pub use secret::{read_file, read_secret};
