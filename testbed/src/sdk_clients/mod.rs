//! `cargo xtask sdk-clients`: the agent and the gateway checked by MCP clients not written here,
//! the official Python SDK (`mcp` 2.x) and TypeScript SDK (`@modelcontextprotocol/sdk` 1.x), each
//! connecting in its default mode.
//!
//! 1. checks the prerequisites (python3 with venv, Node.js) and installs each SDK, and the
//!    conformance suite with the Node.js 22 it needs, at its pinned versions into the user
//!    cache when missing (`install`);
//! 2. builds the agent and the gateway (debug, as the e2e stage does);
//! 3. starts two HTTP agents on free loopback ports (node `sdk-node-a` with the `xid-79`
//!    scenario, `sdk-node-b` healthy) and the gateway over HTTP with `--agents` naming both;
//! 4. runs `testbed/sdk-clients/python/check.py` and `testbed/sdk-clients/ts/check.mjs` against
//!    four servers: the agent over stdio (the client spawns `gpu-mcp-agent --mock-scenario
//!    xid-79`), the agent over HTTP, the gateway over HTTP, and the gateway over stdio (the client
//!    spawns `gpu-mcp-gateway --transport stdio --agents …`);
//! 5. runs each client's cancellation and logging checks against two more, each set up afresh
//!    for every client (`cancel`): the gateway over HTTP and over stdio with two more nodes, one
//!    whose agent (a listener of this process) accepts connections and never answers, one that
//!    refuses them, and `--node-timeout 300s`;
//! 6. runs the official MCP conformance suite, pinned in `testbed/sdk-clients/conformance/`,
//!    against the agent and the gateway over HTTP: every server scenario that applies, at the
//!    revision it speaks, against the baseline of expected failures beside the pins
//!    (`conformance`; `--no-conformance` skips it);
//! 7. prints a table, keeps each client's JSON report and log under
//!    `target/xtask/sdk-clients/`, and fails naming every failed check with its message.
//!
//! Each check lists the tools, calls every tool with its default arguments, validates every
//! `structuredContent` against the tool's `outputSchema`, and lists prompts and resources only
//! when the server advertises them; with resources it reads the first listed ones, fills every
//! template by completing its variables and reads it, and reads the `resource_link` each tool
//! answer carries. Against the gateway both clients also call a fan-out over both agents with
//! a progress callback and require one `notifications/progress` per agent, done / total with a
//! message, before the result (over HTTP they arrive on the POST's event stream).
//!
//! Against the cancellation targets a client runs only these checks (every fan-out there waits
//! for the hung node): it asks for `warning` log messages (TypeScript: `setLoggingLevel`;
//! Python: `log_level` on the `Client`, the SDK's opt-in in 2026-07-28, or `set_logging_level`
//! in a handshake revision), starts the fan-out with a progress callback, waits until every
//! other node answered and the hung agent holds the gateway's connection, cancels the call in
//! the SDK's own way (TypeScript: an `AbortSignal`; Python: cancelling the asyncio task), and
//! requires that the call ends as cancelled, that the gateway then closes its connection to the
//! hung agent (it stopped the outstanding node call; the hung agent's counts are in a status
//! file the client reads), that the next request on the same session answers, and that a
//! `notifications/message` from the `fleet` logger named the refusing node, with neither the
//! client's token nor the gateway's agent token in any message.
//! Everything listens on 127.0.0.1 and stops when the run ends.

mod cancel;
mod conformance;
mod install;
mod report;
mod single;

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::programs;
use crate::util::process::{KillOnDrop, Supervised};
use crate::util::workspace::Workspace;
use crate::util::{fs as files, net};

pub use single::{CheckOptions, check, check_with_python};

/// Hang guard of one client run (a run takes a few seconds).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);
/// Mock scenario of the first agent (also the stdio agent's).
const SCENARIO: &str = "xid-79";
/// The gateway's fan-out the clients follow: `get_gpu_health` without `node` reports one step
/// per agent (two).
const FAN_OUT: (&str, usize) = ("get_gpu_health", 2);
/// The answering agents' nodes: the first with [`SCENARIO`], the second healthy.
const NODES: [(&str, Option<&str>); 2] = [("sdk-node-a", Some(SCENARIO)), ("sdk-node-b", None)];

/// Arguments of `cargo xtask sdk-clients`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which SDK clients to run.
    #[arg(long, value_enum, default_value_t = ClientChoice::Both)]
    client: ClientChoice,
    /// Use the agent and gateway binaries already built (skip `cargo build`).
    #[arg(long)]
    no_build: bool,
    /// Skip the official MCP conformance suite (run by default against the HTTP agent and
    /// the HTTP gateway after the SDK clients).
    #[arg(long)]
    no_conformance: bool,
}

/// Which SDK clients a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientChoice {
    /// The official Python SDK.
    Python,
    /// The official TypeScript SDK.
    Typescript,
    /// Both, Python first.
    Both,
}

/// One SDK client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Python,
    Typescript,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::Typescript => "typescript",
        }
    }
}

impl ClientChoice {
    fn clients(self) -> &'static [Client] {
        match self {
            Self::Python => &[Client::Python],
            Self::Typescript => &[Client::Typescript],
            Self::Both => &[Client::Python, Client::Typescript],
        }
    }
}

/// How a client reaches one server.
#[derive(Debug)]
pub enum Server {
    /// The client spawns this command line and speaks MCP over its stdin and stdout.
    Stdio(Vec<String>),
    /// Streamable HTTP at this URL.
    Http(String),
}

/// One server the clients are run against.
#[derive(Debug)]
struct Target {
    name: &'static str,
    server: Server,
    /// A tool whose call reports this many progress steps (a gateway fan-out over every
    /// agent); the clients call it asking for progress and follow every step.
    progress: Option<(&'static str, usize)>,
    /// The cancellation and logging checks, which a client then runs instead of the others.
    cancel: Option<cancel::Cancel>,
    /// The token and the tool arguments the clients send beyond their defaults.
    options: CheckOptions,
}

/// The outcome of one client against one target.
#[derive(Debug)]
struct Outcome {
    client: Client,
    target: &'static str,
    /// The protocol revision the client and the server agreed on, when they did.
    protocol: Option<String>,
    passed: usize,
    skipped: usize,
    /// `check: message` of each failed check.
    failures: Vec<String>,
    report: PathBuf,
    log: PathBuf,
}

/// Runs the chosen SDK clients against the agent and the gateway.
pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let clients = args.client.clients();
    install::check_prerequisites(clients)?;
    let installed: Vec<(Client, install::Installed)> = clients
        .iter()
        .map(|&c| {
            let i = match c {
                Client::Python => install::python(),
                Client::Typescript => install::typescript(),
            };
            i.map(|i| (c, i))
        })
        .collect::<Result<_>>()?;
    let suite = if args.no_conformance {
        None
    } else {
        Some(install::conformance()?)
    };

    let ws = Workspace::new(false);
    if !args.no_build {
        ws.build(&["gpu-mcp-agent", "gpu-mcp-gateway"])?;
    }
    for bin in ["gpu-mcp-agent", "gpu-mcp-gateway"] {
        if !ws.binary(bin).is_file() {
            bail!(
                "{} is missing; run without --no-build",
                ws.binary(bin).display()
            );
        }
    }
    let out_dir = ws.scratch("sdk-clients");
    if out_dir.exists() {
        std::fs::remove_dir_all(&out_dir)
            .with_context(|| format!("removing {}", out_dir.display()))?;
    }
    files::create_dir(&out_dir)?;

    let (_servers, agents, targets) = start_servers(&ws, &out_dir)?;
    // One client at a time: together they would keep both cores of a CI machine busy, and a
    // client whose event loop is busy for long gaps between requests tests the machine's load
    // rather than the server.
    let mut outcomes = Vec::new();
    for target in &targets {
        for (client, inst) in &installed {
            outcomes.push(start_client(*client, inst, target, &out_dir)?.finish());
        }
    }
    for (client, inst) in &installed {
        outcomes.extend(cancel::run(
            &ws, *client, inst, &agents, NODES[1].0, &out_dir,
        )?);
    }

    let mut names: Vec<&str> = targets.iter().map(|t| t.name).collect();
    names.extend([cancel::HTTP_TARGET, cancel::STDIO_TARGET]);
    report::print_summary(&installed, &names, &outcomes);
    let mut failed: Vec<String> = outcomes
        .iter()
        .flat_map(|o| {
            o.failures.iter().map(move |f| {
                let protocol = o
                    .protocol
                    .as_ref()
                    .map_or_else(String::new, |p| format!(" (protocol {p})"));
                format!(
                    "{} -> {}{protocol}: {f}\n    report {}, log {}",
                    o.client.name(),
                    o.target,
                    o.report.display(),
                    o.log.display()
                )
            })
        })
        .collect();
    if let Some(suite) = &suite {
        let http: Vec<(&'static str, String)> = targets
            .iter()
            .filter_map(|t| match &t.server {
                Server::Http(url) => Some((t.name, url.clone())),
                Server::Stdio(_) => None,
            })
            .collect();
        let started = Instant::now();
        let scenarios = conformance::run(suite, &http, &out_dir)?;
        conformance::print_summary(suite, &scenarios, started.elapsed());
        failed.extend(scenarios.iter().filter_map(|o| {
            o.failure.as_ref().map(|why| {
                format!(
                    "conformance {}@{} -> {}: {why}",
                    o.scenario, o.revision, o.target
                )
            })
        }));
    }
    if failed.is_empty() {
        eprintln!(
            "sdk-clients: every check passed in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    } else {
        bail!(
            "{} SDK client check(s) or conformance scenario(s) failed:\n  {}",
            failed.len(),
            failed.join("\n  ")
        )
    }
}

/// Starts the HTTP agents and the HTTP gateway; returns them (killed on drop), the gateway's
/// `--agents` list and the four targets.
fn start_servers(ws: &Workspace, log_dir: &Path) -> Result<(Vec<Supervised>, String, Vec<Target>)> {
    let ports = net::free_ports(3)?;
    let addr = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let url = |port: u16| format!("http://127.0.0.1:{port}/mcp");
    let mut servers = Vec::new();
    for ((node, scenario), port) in NODES.iter().zip(&ports) {
        servers.push(programs::start_http_agent(
            ws,
            &format!("agent-{node}"),
            addr(*port),
            node,
            8,
            *scenario,
            &[],
            log_dir,
        )?);
    }
    let agents = NODES
        .iter()
        .zip(&ports)
        .map(|((node, _), port)| format!("{node}={}", url(*port)))
        .collect::<Vec<_>>()
        .join(",");
    servers.push(programs::start_gateway(
        ws,
        "gateway-http",
        addr(ports[2]),
        &[
            "--agents".to_owned(),
            agents.clone(),
            "--log-level".to_owned(),
            "warn".to_owned(),
        ],
        log_dir,
        Duration::from_secs(30),
    )?);
    let bin = |name: &str| ws.binary(name).display().to_string();
    let targets = vec![
        Target {
            name: "agent-stdio",
            server: Server::Stdio(vec![
                bin("gpu-mcp-agent"),
                "--mock-scenario".to_owned(),
                SCENARIO.to_owned(),
            ]),
            progress: None,
            cancel: None,
            options: CheckOptions::default(),
        },
        Target {
            name: "agent-http",
            server: Server::Http(url(ports[0])),
            progress: None,
            cancel: None,
            options: CheckOptions::default(),
        },
        Target {
            name: "gateway-http",
            server: Server::Http(url(ports[2])),
            progress: Some(FAN_OUT),
            cancel: None,
            options: CheckOptions::default(),
        },
        Target {
            name: "gateway-stdio",
            server: Server::Stdio(vec![
                bin("gpu-mcp-gateway"),
                "--transport".to_owned(),
                "stdio".to_owned(),
                "--agents".to_owned(),
                agents.clone(),
            ]),
            progress: Some(FAN_OUT),
            cancel: None,
            options: CheckOptions::default(),
        },
    ];
    Ok((servers, agents, targets))
}

/// One client process running against one target.
#[derive(Debug)]
struct Run {
    client: Client,
    target: &'static str,
    child: KillOnDrop,
    started: Instant,
    report: PathBuf,
    log: PathBuf,
}

/// Starts one client against one target, its report going to `<client>-<target>.json` and its
/// log (with a stdio server's log) to `<client>-<target>.log`.
fn start_client(
    client: Client,
    inst: &install::Installed,
    target: &Target,
    out_dir: &Path,
) -> Result<Run> {
    let stem = format!("{}-{}", client.name(), target.name);
    let report = out_dir.join(format!("{stem}.json"));
    let log = out_dir.join(format!("{stem}.log"));
    let mut cmd = Command::new(&inst.program);
    cmd.arg(&inst.script).args(["--name", target.name]);
    if let Some((tool, total)) = target.progress {
        cmd.arg("--progress").arg(format!("{tool}={total}"));
    }
    if let Some(c) = &target.cancel {
        cmd.arg("--cancel")
            .arg(format!("{}={}", c.tool, c.total))
            .arg("--hung-status")
            .arg(&c.hung_status)
            .args(["--unreachable-node", c.unreachable])
            .args(["--answering-node", c.answering])
            .env(cancel::SECRETS_ENV, c.secrets.join("\n"));
    }
    for (tool, arguments) in &target.options.arguments {
        cmd.arg("--arguments").arg(format!("{tool}={arguments}"));
    }
    if let Some(token) = &target.options.token {
        cmd.env(single::TOKEN_ENV, token);
    }
    match &target.server {
        Server::Http(url) => {
            cmd.args(["--url", url]);
        }
        Server::Stdio(argv) => {
            cmd.args(["--stdio", "--"]).args(argv);
        }
    }
    let stdout = File::create(&report).with_context(|| format!("creating {}", report.display()))?;
    let stderr = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let child: Child = cmd
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        // Not `{cmd:?}`: its environment may hold the token.
        .with_context(|| {
            format!(
                "starting the {} client: {} {}",
                client.name(),
                inst.program.display(),
                inst.script.display()
            )
        })?;
    Ok(Run {
        client,
        target: target.name,
        child: KillOnDrop(child),
        started: Instant::now(),
        report,
        log,
    })
}

impl Run {
    /// Waits for the client (killing it after [`CLIENT_TIMEOUT`]) and reads its report.
    fn finish(mut self) -> Outcome {
        let status = loop {
            match self.child.0.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if self.started.elapsed() > CLIENT_TIMEOUT => {
                    break Err(format!(
                        "still running after {} s; killed",
                        CLIENT_TIMEOUT.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(err) => break Err(format!("waiting for it failed: {err}")),
            }
        };
        let mut outcome = Outcome {
            client: self.client,
            target: self.target,
            protocol: None,
            passed: 0,
            skipped: 0,
            failures: Vec::new(),
            report: self.report.clone(),
            log: self.log.clone(),
        };
        let json = std::fs::read_to_string(&self.report)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok());
        match (&status, json) {
            (Ok(status), Some(json)) => report::read_report(&json, *status, &mut outcome),
            (Ok(status), None) => outcome.failures.push(format!(
                "client: exited ({status}) without a JSON report; log tail:\n{}",
                files::quote_lines(&files::tail(&self.log, 15))
            )),
            (Err(why), _) => outcome.failures.push(format!(
                "client: {why}; log tail:\n{}",
                files::quote_lines(&files::tail(&self.log, 15))
            )),
        }
        outcome
    }
}
