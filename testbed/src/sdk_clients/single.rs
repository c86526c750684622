//! The SDK checks against one server started elsewhere (the image smoke test's agent, the e2e's
//! gateway on a real cluster), with the token and tool arguments that server needs.

use std::path::Path;

use anyhow::{Result, bail};
use serde_json::Value;

use super::{Client, ClientChoice, Server, Target, install, start_client};
use crate::util::fs as files;

/// The environment variable the check programs read a bearer token from (not an argument, so
/// it stays out of process listings).
pub(super) const TOKEN_ENV: &str = "GPU_MCP_CHECK_TOKEN";

/// What a check sends beyond each SDK's defaults.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Sent as `Authorization: Bearer <token>` on every HTTP request.
    pub token: Option<String>,
    /// Tools called with these arguments (required ones left out take their defaults) rather
    /// than with defaults alone; each must be listed.
    pub arguments: Vec<(String, Value)>,
}

/// Runs the official Python SDK's checks (in its default mode) against one server, installing
/// the SDK when missing; fails naming every failed check. Its report and log go to
/// `<out_dir>/python-<name>.{json,log}`.
pub fn check_with_python(name: &'static str, server: Server, out_dir: &Path) -> Result<()> {
    check(
        ClientChoice::Python,
        name,
        server,
        CheckOptions::default(),
        out_dir,
    )
}

/// Runs the chosen SDK clients' checks (each in its default mode, plus `options`) against one
/// server, one client after the other, installing each SDK when missing; fails naming every
/// failed check of every client. Reports and logs go to `<out_dir>/<client>-<name>.{json,log}`.
pub fn check(
    clients: ClientChoice,
    name: &'static str,
    server: Server,
    options: CheckOptions,
    out_dir: &Path,
) -> Result<()> {
    let clients = clients.clients();
    install::check_prerequisites(clients)?;
    files::create_dir(out_dir)?;
    let target = Target {
        name,
        server,
        progress: None,
        cancel: None,
        options,
    };
    let mut failed = Vec::new();
    for &client in clients {
        let inst = match client {
            Client::Python => install::python()?,
            Client::Typescript => install::typescript()?,
        };
        let outcome = start_client(client, &inst, &target, out_dir)?.finish();
        if outcome.failures.is_empty() {
            eprintln!(
                "  {} SDK ({}) -> {name}: {} checks passed, {} skipped (protocol {})",
                client.name(),
                inst.sdk,
                outcome.passed,
                outcome.skipped,
                outcome.protocol.as_deref().unwrap_or("?")
            );
        } else {
            failed.push(format!(
                "{} SDK -> {name}: {} check(s) failed:\n    {}\n    report {}, log {}",
                client.name(),
                outcome.failures.len(),
                outcome.failures.join("\n    "),
                outcome.report.display(),
                outcome.log.display()
            ));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("{}", failed.join("\n  "))
    }
}
