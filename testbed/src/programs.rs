//! The project's programs as the harness runs them: the agent and the gateway started as
//! supervised processes (each waited on until its health endpoint answers), and the gateway's
//! end-to-end scenario runner.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::util::process::Supervised;
use crate::util::workspace::Workspace;
use crate::util::{cmd, http, workspace};

/// Starts an HTTP agent (mock backend, `gpus` GPUs, optional scenario, no per-client rate limit,
/// then `extra_args`, e.g. the chart's `--auth-token-file`) on `addr` as node `node_name`, and
/// waits for `/healthz`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_http_agent(
    ws: &Workspace,
    name: &str,
    addr: SocketAddr,
    node_name: &str,
    gpus: usize,
    scenario: Option<&str>,
    extra_args: &[String],
    log_dir: &Path,
) -> Result<Supervised> {
    let mut cmd = Command::new(ws.binary("gpu-mcp-agent"));
    cmd.args([
        "--transport",
        "http",
        "--nvml-mode",
        "mock",
        "--log-level",
        "warn",
        // The load generators and the gateway send from one loopback address far faster than
        // any one client does; the per-client rate limit is tested in the transport's tests.
        "--rate-limit-rps",
        "0",
    ])
    .arg("--listen")
    .arg(addr.to_string())
    .arg("--mock-gpus")
    .arg(gpus.to_string())
    .arg("--node-name")
    .arg(node_name);
    if let Some(s) = scenario {
        cmd.arg("--mock-scenario").arg(s);
    }
    cmd.args(extra_args);
    let mut agent = Supervised::spawn(name, &mut cmd, log_dir)?;
    http::wait_ok(addr, "/healthz", Duration::from_secs(20), Some(&mut agent))?;
    Ok(agent)
}

/// Starts the gateway with `args` on `addr` and waits for `/readyz`. The per-client rate limit
/// is off, as for the agents above, unless `args` set it (the chart's arguments do).
pub(crate) fn start_gateway(
    ws: &Workspace,
    name: &str,
    addr: SocketAddr,
    args: &[String],
    log_dir: &Path,
    ready_timeout: Duration,
) -> Result<Supervised> {
    let mut cmd = Command::new(ws.binary("gpu-mcp-gateway"));
    cmd.arg("--listen").arg(addr.to_string());
    if !args.iter().any(|a| a.starts_with("--rate-limit-rps")) {
        cmd.args(["--rate-limit-rps", "0"]);
    }
    cmd.args(args);
    let mut gw = Supervised::spawn(name, &mut cmd, log_dir)?;
    http::wait_ok(addr, "/readyz", ready_timeout, Some(&mut gw))?;
    Ok(gw)
}

/// Runs the gateway's MCP scenarios (`bins/gpu-mcp-gateway/tests/e2e_cluster.rs`, an `rmcp`
/// client), given the gateway URL and the cluster through the `GPU_MCP_E2E_*` variables in
/// `env`; `build_only` compiles them without running, `skip` names scenarios to leave out.
pub(crate) fn run_scenarios<K, V>(
    env: impl IntoIterator<Item = (K, V)>,
    build_only: bool,
    skip: &[&str],
) -> Result<()>
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut cargo = cmd::cargo();
    cargo.current_dir(workspace::workspace_root()).args([
        // `--workspace`, as stage 1 of `cargo xtask test` builds: the same features, so its
        // build is reused (see `Workspace::build`).
        "test",
        "--workspace",
        "--locked",
        "--test",
        "e2e_cluster",
    ]);
    if build_only {
        cargo.arg("--no-run");
    } else {
        cargo.args(["--", "--ignored", "--test-threads=1"]);
        for scenario in skip {
            cargo.args(["--skip", scenario]);
        }
    }
    cargo.envs(env);
    cmd::status(&mut cargo)
}
