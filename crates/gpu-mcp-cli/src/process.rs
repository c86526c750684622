//! The life of a binary's process: parse, log, run with a shutdown token, exit with a code.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::flags::LogFlags;
use crate::logging::init_tracing;

/// `EX_USAGE`: the command line, the environment or a file it names is wrong.
pub const EX_USAGE: u8 = 64;

/// `EX_UNAVAILABLE`: a service the program needs is missing (NVML in real mode).
pub const EX_UNAVAILABLE: u8 = 69;

/// `EX_SOFTWARE`: an internal failure (the async runtime could not start).
pub const EX_SOFTWARE: u8 = 70;

/// How long the runtime waits for its tasks after the program ends: a blocking stdin read
/// cannot be interrupted, so do not wait for it.
const RUNTIME_SHUTDOWN: Duration = Duration::from_millis(100);

/// An error that ends the program, with the exit code it maps to.
pub trait ExitStatus: std::fmt::Display {
    /// The process exit code: [`EX_USAGE`], [`EX_UNAVAILABLE`], [`EX_SOFTWARE`] or 1.
    fn exit_code(&self) -> u8;
}

/// What [`main`] needs to know about the binary.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// The binary's name, for messages printed before logging is set up.
    pub name: &'static str,
    /// Prefix of its environment variables ([`crate::AGENT_ENV_PREFIX`] ...).
    pub env_prefix: &'static str,
    /// Runtime worker threads; `None` for one per CPU.
    pub worker_threads: Option<usize>,
}

/// Runs a binary: parses `C` (flags and environment), sets up logging from `log(&cli)`, turns
/// the CLI into a configuration with `configure`, and runs `run(config, shutdown)` on a
/// multi-threaded runtime where SIGINT and SIGTERM cancel `shutdown`.
///
/// `--help` and `--version` exit 0; a usage error exits [`EX_USAGE`]; any other failure is
/// reported once (logged when logging is up, else printed to stderr) and exits with its
/// [`ExitStatus::exit_code`].
pub fn main<C, Cfg, E, Fut>(
    program: &Program,
    log: fn(&C) -> &LogFlags,
    configure: impl FnOnce(C) -> Result<Cfg, Error>,
    run: impl FnOnce(Cfg, CancellationToken) -> Fut,
) -> ExitCode
where
    C: Parser,
    E: ExitStatus,
    Fut: Future<Output = Result<(), E>>,
{
    let cli = match crate::parse::<C>(program.env_prefix) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are "errors" that print to stdout and succeed.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EX_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Err(e) = init_tracing(log(&cli)) {
        eprintln!("{}: {e}", program.name);
        return ExitCode::from(e.exit_code());
    }
    let config = match configure(cli) {
        Ok(config) => config,
        Err(e) => return fail(program, &e),
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = program.worker_threads {
        builder.worker_threads(workers.max(1));
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(program, &Error::Runtime(e)),
    };
    let shutdown = CancellationToken::new();
    let result = runtime.block_on(async {
        tokio::spawn(shutdown_on_signals(shutdown.clone()));
        run(config, shutdown).await
    });
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(program, &e),
    }
}

/// Reports `error` once: as an error event when the log filter lets one through, else on stderr.
fn fail(program: &Program, error: &dyn ExitStatus) -> ExitCode {
    if tracing::enabled!(tracing::Level::ERROR) {
        tracing::error!("{error}");
    } else {
        eprintln!("{}: {error}", program.name);
    }
    ExitCode::from(error.exit_code())
}

/// Cancels `shutdown` on SIGINT or SIGTERM (Ctrl-C elsewhere), logging which arrived.
pub async fn shutdown_on_signals(shutdown: CancellationToken) {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot watch for SIGINT: {e}");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
        () = shutdown.cancelled() => return,
    }
    shutdown.cancel();
}
