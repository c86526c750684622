//! The cancellation targets: the gateway with a node that never answers.
//!
//! Each run of a client gets a fresh set: a hung agent (a loopback listener of this process
//! that accepts connections, reads whatever comes and never answers), a node that refuses
//! connections (a free loopback port nobody listens on), and the gateway over HTTP (started
//! here, with a client token and its own agent token) or over stdio (the command line the client
//! spawns, with the agent token), both with `--node-timeout` [`NODE_TIMEOUT`] so that the hung
//! node would hold a fan-out for minutes. Fresh, because the gateway says a node stopped
//! answering once per process (and at most once a minute), and the log check needs that message.
//!
//! The hung agent keeps its connection counts in a JSON file, `{"accepted": N, "open": M}`,
//! replaced whole on every change; the client reads it to see that the fan-out reached the hung
//! node and that the gateway closed that connection once the call was cancelled.

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::{Client, FAN_OUT, Outcome, Server, Target, install, start_client};
use crate::programs;
use crate::util::net;
use crate::util::workspace::Workspace;

/// The gateway over HTTP with the hung node.
pub(super) const HTTP_TARGET: &str = "gateway-cancel-http";
/// The gateway over stdio with the hung node.
pub(super) const STDIO_TARGET: &str = "gateway-cancel-stdio";
/// The node whose agent never answers.
const HUNG_NODE: &str = "sdk-node-hung";
/// The node whose agent refuses connections.
const GONE_NODE: &str = "sdk-node-gone";
/// The gateway's deadline of one node call: far longer than a run, so only a cancellation
/// ends the hung node's call.
const NODE_TIMEOUT: &str = "300s";
/// The environment variable with the values no log message may contain, one a line (not an
/// argument, so they stay out of process listings).
pub(super) const SECRETS_ENV: &str = "GPU_MCP_CHECK_SECRETS";
/// How often the hung agent's threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// What the client's `--cancel` checks are given.
#[derive(Debug, Clone)]
pub(super) struct Cancel {
    /// The fan-out the client starts and cancels.
    pub(super) tool: &'static str,
    /// How many nodes it fans out over (the hung one included).
    pub(super) total: usize,
    /// The hung agent's status file.
    pub(super) hung_status: PathBuf,
    /// The node the gateway must log about.
    pub(super) unreachable: &'static str,
    /// A node the next request goes to.
    pub(super) answering: &'static str,
    /// Values no log message may contain (the gateway's agent token), beyond the client's token.
    pub(super) secrets: Vec<String>,
}

/// Runs `client` against both cancellation targets; `agents` is the gateway's `--agents` list
/// of the answering agents, `answering` one of its nodes.
pub(super) fn run(
    ws: &Workspace,
    client: Client,
    inst: &install::Installed,
    agents: &str,
    answering: &'static str,
    out_dir: &Path,
) -> Result<Vec<Outcome>> {
    let mut outcomes = Vec::new();
    for name in [HTTP_TARGET, STDIO_TARGET] {
        let stem = format!("{}-{name}", client.name());
        let hung = HungAgent::start(out_dir.join(format!("{stem}-hung.json")))?;
        let gone = net::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let agent_token = secret("agent");
        let agent_token_file = out_dir.join(format!("{stem}-agent-token"));
        std::fs::write(&agent_token_file, &agent_token)
            .with_context(|| format!("writing {}", agent_token_file.display()))?;
        let mut args = vec![
            "--agents".to_owned(),
            format!(
                "{agents},{HUNG_NODE}={},{GONE_NODE}=http://127.0.0.1:{gone}/mcp",
                hung.url()
            ),
            "--node-timeout".to_owned(),
            NODE_TIMEOUT.to_owned(),
            "--agent-token-file".to_owned(),
            agent_token_file.display().to_string(),
            "--log-level".to_owned(),
            "warn".to_owned(),
        ];
        let mut target = Target {
            name,
            server: Server::Http(String::new()),
            progress: None,
            cancel: Some(Cancel {
                tool: FAN_OUT.0,
                total: FAN_OUT.1 + 2,
                hung_status: hung.status.clone(),
                unreachable: GONE_NODE,
                answering,
                secrets: vec![agent_token],
            }),
            options: super::CheckOptions::default(),
        };
        // Held until the client is done.
        let _gateway = if name == HTTP_TARGET {
            let token = secret("client");
            let token_file = out_dir.join(format!("{stem}-client-token"));
            std::fs::write(&token_file, &token)
                .with_context(|| format!("writing {}", token_file.display()))?;
            args.extend([
                "--auth-token-file".to_owned(),
                token_file.display().to_string(),
            ]);
            let port = net::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
            let gateway = programs::start_gateway(
                ws,
                &format!("gateway-{stem}"),
                SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                &args,
                out_dir,
                Duration::from_secs(30),
            )?;
            target.server = Server::Http(format!("http://127.0.0.1:{port}/mcp"));
            target.options.token = Some(token);
            Some(gateway)
        } else {
            let mut argv = vec![
                ws.binary("gpu-mcp-gateway").display().to_string(),
                "--transport".to_owned(),
                "stdio".to_owned(),
            ];
            argv.extend(args);
            target.server = Server::Stdio(argv);
            None
        };
        outcomes.push(start_client(client, inst, &target, out_dir)?.finish());
    }
    Ok(outcomes)
}

/// A token for one run, unlike any other run's (it only has to be recognisable in a message).
fn secret(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("sdk-check-{what}-{:x}-{nanos:x}", std::process::id())
}

/// A loopback listener that accepts connections, reads them and never answers; stopped on drop.
#[derive(Debug)]
struct HungAgent {
    addr: SocketAddr,
    status: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

/// The hung agent's connection counts, in its status file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    accepted: u64,
    open: u64,
}

impl Counts {
    /// Replaces the status file (a rename, so a reader never sees half of it).
    fn write(self, status: &Path) {
        let text = format!(
            "{{\"accepted\": {}, \"open\": {}}}\n",
            self.accepted, self.open
        );
        let tmp = status.with_extension("tmp");
        // A failed write leaves the old counts, which the client reports as a failed check.
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, status);
        }
    }
}

impl HungAgent {
    /// Listens on a free loopback port, its counts in `status`.
    fn start(status: PathBuf) -> Result<Self> {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the hung agent's port")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        Counts::default().write(&status);
        let accept = {
            let (status, stop) = (status.clone(), stop.clone());
            std::thread::Builder::new()
                .name("hung-agent".to_owned())
                .spawn(move || accept_loop(&listener, &status, &stop))
                .context("starting the hung agent")?
        };
        Ok(Self {
            addr,
            status,
            stop,
            accept: Some(accept),
        })
    }

    fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}

impl Drop for HungAgent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Accepts until stopped, one thread per connection, and keeps the counts (the one writer of
/// the status file: connection threads say they closed on `closed`); joins them when stopped.
fn accept_loop(listener: &TcpListener, status: &Path, stop: &Arc<AtomicBool>) {
    let (closed_tx, closed) = mpsc::channel::<()>();
    let mut counts = Counts::default();
    let mut connections = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let before = counts;
        match listener.accept() {
            Ok((stream, _)) => {
                counts.accepted += 1;
                counts.open += 1;
                let (stop, closed_tx) = (stop.clone(), closed_tx.clone());
                // A thread that cannot start drops the stream with its closure, and with it
                // the sender: the connection closes, as a gateway's would, and is counted so.
                match std::thread::Builder::new()
                    .name("hung-agent-conn".to_owned())
                    .spawn(move || hold(stream, &stop, &closed_tx))
                {
                    Ok(handle) => connections.push(handle),
                    Err(_) => counts.open -= 1,
                }
            }
            // Nothing to accept yet (or a failed accept, which the peer sees as a failure).
            Err(_) => std::thread::sleep(POLL),
        }
        while closed.try_recv().is_ok() {
            counts.open = counts.open.saturating_sub(1);
        }
        if counts != before {
            counts.write(status);
        }
    }
    for handle in connections {
        let _ = handle.join();
    }
}

/// Reads and drops everything the peer sends until it closes the connection (or the agent
/// stops), then says so on `closed`.
fn hold(mut stream: TcpStream, stop: &AtomicBool, closed: &mpsc::Sender<()>) {
    let readable =
        stream.set_nonblocking(false).is_ok() && stream.set_read_timeout(Some(POLL)).is_ok();
    let mut buf = [0u8; 4096];
    while readable && !stop.load(Ordering::SeqCst) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
    drop(stream);
    // The accept loop is gone only when the agent stopped; nothing is counted then.
    let _ = closed.send(());
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Instant;

    use super::*;

    fn counts(path: &Path) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn wait_for(path: &Path, want: serde_json::Value) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while counts(path) != want {
            assert!(Instant::now() < deadline, "{} != {want}", counts(path));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn the_hung_agent_counts_connections_it_never_answers() {
        let dir = std::env::temp_dir().join(format!("hung-agent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let status = dir.join("status.json");
        let hung = HungAgent::start(status.clone()).unwrap();
        assert_eq!(
            counts(&status),
            serde_json::json!({"accepted": 0, "open": 0})
        );

        let mut conn = TcpStream::connect(hung.addr).unwrap();
        conn.write_all(b"POST /mcp HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        wait_for(&status, serde_json::json!({"accepted": 1, "open": 1}));
        conn.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 16];
        // A signal delivered to the test process (other tests start and stop children) can
        // interrupt the read (EINTR); only an answer or the end of the wait counts.
        let read = loop {
            match conn.read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        assert!(
            matches!(&read, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
            "the hung agent answered: {read:?}"
        );
        drop(conn);
        wait_for(&status, serde_json::json!({"accepted": 1, "open": 0}));
        drop(hung);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
