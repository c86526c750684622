//! `cargo xtask bench agent`.
//!
//! 1. HTTP: `tools/call get_gpu_inventory` over keep-alive connections against the real agent
//!    (mock backend), then, in the same run, against a bare hyper server answering the very bytes
//!    the agent answered (the floor).
//! 2. stdio one-shot cold start: spawn, write one bare `tools/call` line, time to the first line
//!    of output; repeated.
//! 3. Idle RSS of the HTTP agent, from `/proc/<pid>/status`, before and after the load.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderValue};

use super::floor::FloorServer;
use super::load::{self, LoadConfig, Summary, fmt_dur};
use super::report;
use crate::programs::start_http_agent;
use crate::util::net;
use crate::util::workspace::Workspace;

/// Options of `cargo xtask bench agent`.
#[derive(Debug, clap::Args)]
pub(crate) struct AgentArgs {
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Measured requests per target (agent, floor).
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Upper bound of each load run, in seconds.
    #[arg(long, default_value_t = 30)]
    max_secs: u64,
    /// Mock GPUs on the benchmarked agent.
    #[arg(long, default_value_t = 8)]
    gpus: usize,
    /// Runs of the stdio cold start.
    #[arg(long, default_value_t = 50)]
    cold_runs: usize,
}

/// The JSON-RPC request every HTTP measurement sends (stateless: no `initialize` first).
pub(crate) const INVENTORY_CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_gpu_inventory","arguments":{}}}"#;

/// Headers of a Streamable HTTP POST.
pub(crate) fn mcp_headers() -> Vec<(hyper::header::HeaderName, HeaderValue)> {
    vec![
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        ),
    ]
}

/// The command line as typed (with `nice` when the process runs niced).
pub(crate) fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nice = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Field 19 (niceness) counted after the `)` that closes the command name.
            let rest = s.rsplit_once(')')?.1;
            rest.split_whitespace().nth(16)?.parse::<i32>().ok()
        })
        .filter(|n| *n > 0)
        .map_or_else(String::new, |n| format!("nice -n {n} "));
    format!("{nice}cargo xtask {}", args.join(" "))
}

pub(crate) async fn run(ws: &Workspace, args: &AgentArgs) -> Result<String> {
    let log_dir = ws.scratch("bench-agent");
    let port = net::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut agent = start_http_agent(
        ws,
        "agent-http",
        addr,
        "bench-node",
        args.gpus,
        None,
        &[],
        &log_dir,
    )?;

    // Idle RSS: give the allocator a moment after start-up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = agent.rss_kib()?;

    let cfg = LoadConfig {
        addr,
        path: "/mcp".to_owned(),
        body: Bytes::from_static(INVENTORY_CALL.as_bytes()),
        headers: mcp_headers(),
        connections: args.connections,
        requests: args.requests,
        warmup_per_connection: 50,
        max_duration: Duration::from_secs(args.max_secs),
    };
    let (status, body, content_type) = load::one_shot(&cfg).await?;
    check_inventory_answer(status, &body)?;
    let content_type = content_type.unwrap_or_else(|| "application/json".to_owned());

    eprintln!("load: agent at {addr} ({} connections)", args.connections);
    let agent_run = load::run(&cfg).await?;
    let rss_after_load = agent.rss_kib()?;
    if !agent.is_running() {
        bail!("the agent died under load; log:\n{}", agent.log_tail(30));
    }
    agent.kill();

    let floor = FloorServer::start(body.clone(), content_type, 2)?;
    let floor_cfg = LoadConfig {
        addr: floor.addr(),
        ..cfg.clone()
    };
    eprintln!("load: floor at {}", floor.addr());
    let floor_run = load::run(&floor_cfg).await?;
    drop(floor);

    eprintln!("cold start: {} runs", args.cold_runs);
    let cold = tokio::task::spawn_blocking({
        let bin = ws.binary("gpu-mcp-agent");
        let runs = args.cold_runs;
        let gpus = args.gpus;
        move || cold_start(&bin, runs, gpus)
    })
    .await??;

    let a = agent_run.summary();
    let f = floor_run.summary();
    Ok(render(
        ws,
        args,
        &a,
        &f,
        &cold,
        (idle_rss, rss_after_load),
        body.len(),
    ))
}

/// The probe's answer must be a successful `tools/call` result with structured content.
fn check_inventory_answer(status: u16, body: &[u8]) -> Result<()> {
    let text = String::from_utf8_lossy(body);
    if status != 200 {
        bail!("the agent answered HTTP {status} to tools/call: {text}");
    }
    // A JSON answer, or one SSE event carrying it.
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap_or(&text);
    let v: serde_json::Value =
        serde_json::from_str(json.trim()).context("the agent's answer is not JSON")?;
    let result = v
        .get("result")
        .with_context(|| format!("no result in {v}"))?;
    if result.get("isError").and_then(serde_json::Value::as_bool) == Some(true) {
        bail!("get_gpu_inventory answered isError: {result}");
    }
    if result.get("structuredContent").is_none() {
        bail!("get_gpu_inventory answered no structuredContent: {result}");
    }
    Ok(())
}

/// Spawn → first answer of a one-shot stdio agent, `runs` times.
fn cold_start(bin: &std::path::Path, runs: usize, gpus: usize) -> Result<Summary> {
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        let start = Instant::now();
        let mut child = Command::new(bin)
            .args([
                "--transport",
                "stdio",
                "--nvml-mode",
                "mock",
                "--log-level",
                "warn",
            ])
            .arg("--mock-gpus")
            .arg(gpus.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let mut stdin = child.stdin.take().context("no stdin")?;
        writeln!(stdin, "{INVENTORY_CALL}")?;
        drop(stdin); // EOF: one-shot use, as exec routing does it
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let elapsed = start.elapsed();
        let status = child.wait()?;
        if line.trim().is_empty() || !line.contains("\"result\"") {
            bail!("cold start run {i}: no answer on stdout (exit {status}): {line:?}");
        }
        samples.push(elapsed);
    }
    Ok(Summary::of(&samples))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn render(
    ws: &Workspace,
    args: &AgentArgs,
    a: &Summary,
    f: &Summary,
    cold: &Summary,
    (idle_rss, rss_after_load): (u64, u64),
    body_len: usize,
) -> String {
    let ratio = if f.p50.is_zero() {
        0.0
    } else {
        a.p50.as_secs_f64() / f.p50.as_secs_f64()
    };
    let verdict = |ok: bool| if ok { "met" } else { "missed" };
    let mut s = String::new();
    s.push_str(&format!("Command: `{}`\n\n", command_line()));
    s.push_str(&format!("Machine: {}.\n\n", report::machine_line()));
    s.push_str(&format!(
        "{} build, mock backend with {} GPUs, everything on 127.0.0.1.\n\
         The load generator (hyper HTTP/1.1 client in xtask) keeps {} connections busy with \
         `tools/call get_gpu_inventory` (a bare call, no `initialize`, {} bytes answered) \
         until {} measured requests or {} s, after 50 warm-up requests per connection.\n\
         The floor is a bare hyper server in the same xtask process that answers the same bytes; \
         it runs right after the agent with the same load.\n\n",
        if ws.profile == "release" {
            "Release"
        } else {
            "Debug (not comparable)"
        },
        args.gpus,
        args.connections,
        body_len,
        args.requests,
        args.max_secs
    ));
    s.push_str("| measurement | p50 | p99 | max | throughput | errors |\n");
    s.push_str("|---|---|---|---|---|---|\n");
    s.push_str(&format!(
        "| agent, HTTP `tools/call` ({} requests) | {} | {} | {} | {:.0} req/s | {} |\n",
        a.count,
        fmt_dur(a.p50),
        fmt_dur(a.p99),
        fmt_dur(a.max),
        a.throughput,
        a.errors
    ));
    s.push_str(&format!(
        "| floor, bare hyper, same bytes ({} requests) | {} | {} | {} | {:.0} req/s | {} |\n",
        f.count,
        fmt_dur(f.p50),
        fmt_dur(f.p99),
        fmt_dur(f.max),
        f.throughput,
        f.errors
    ));
    s.push_str(&format!(
        "| stdio one-shot cold start, spawn → first answer ({} runs) | {} | {} | {} | | |\n\n",
        cold.count,
        fmt_dur(cold.p50),
        fmt_dur(cold.p99),
        fmt_dur(cold.max)
    ));
    s.push_str("| target | measured | verdict |\n|---|---|---|\n");
    s.push_str(&format!(
        "| HTTP p50 within 1.5× the floor | {ratio:.2}× | {} |\n",
        verdict(ratio > 0.0 && ratio <= 1.5)
    ));
    s.push_str(&format!(
        "| stdio cold start < 20 ms (p50) | {} | {} |\n",
        fmt_dur(cold.p50),
        verdict(cold.p50 < Duration::from_millis(20))
    ));
    s.push_str(&format!(
        "| idle RSS < 10 MiB (HTTP agent, 2 s after start) | {} | {} |\n",
        mib(idle_rss),
        verdict(idle_rss < 10 * 1024)
    ));
    s.push_str(&format!(
        "\nRSS after the load run: {}.\n",
        mib(rss_after_load)
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_answer_checks() {
        let ok =
            br#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"structuredContent":{"gpus":[]}}}"#;
        assert!(check_inventory_answer(200, ok).is_ok());
        let sse = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"structuredContent\":{}}}\n\n";
        assert!(check_inventory_answer(200, sse).is_ok());
        let err = br#"{"jsonrpc":"2.0","id":1,"result":{"isError":true,"structuredContent":{}}}"#;
        assert!(check_inventory_answer(200, err).is_err());
        assert!(check_inventory_answer(400, ok).is_err());
        assert!(check_inventory_answer(200, b"nope").is_err());
    }
}
