//! Child processes that die with the run: spawned with their output in a log file, killed on drop.
//!
//! Shared by `cargo xtask bench` and `cargo xtask e2e`, both of which start agents and gateways
//! and must leave nothing running behind them, whether they succeed or fail.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A started child process whose stdout and stderr go to `log`.
#[derive(Debug)]
pub(crate) struct Supervised {
    name: String,
    child: Child,
    log: PathBuf,
    exited: bool,
}

impl Supervised {
    /// Starts `cmd` with stdin closed and its output appended to `<log_dir>/<name>.log`.
    pub(crate) fn spawn(name: &str, cmd: &mut Command, log_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(log_dir)
            .with_context(|| format!("creating log directory {}", log_dir.display()))?;
        let log = log_dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
            exited: false,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log
    }

    /// Whether the process is still running (reaps it if it has exited).
    pub(crate) fn is_running(&mut self) -> bool {
        if self.exited {
            return false;
        }
        match self.child.try_wait() {
            Ok(None) => true,
            Ok(Some(_)) | Err(_) => {
                self.exited = true;
                false
            }
        }
    }

    /// Resident set size in KiB, read from `/proc/<pid>/status`.
    pub(crate) fn rss_kib(&self) -> Result<u64> {
        rss_kib(self.pid())
    }

    /// Kills the process (SIGKILL) and reaps it. Idempotent.
    pub(crate) fn kill(&mut self) {
        if self.exited {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.exited = true;
    }

    /// The last `lines` lines of the log.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `lines` lines of a text file (empty when unreadable).
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Resident set size in KiB of a process, from `/proc/<pid>/status`.
pub(crate) fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS line in /proc status")
}

/// One blocking HTTP/1.1 GET; returns the status code and the body.
pub(crate) fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP status line")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Waits until `GET path` on `addr` answers 200, or fails after `timeout`
/// (early, with the log tail, when `proc` has exited).
pub(crate) fn wait_http_ok(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    mut proc: Option<&mut Supervised>,
) -> Result<()> {
    let start = Instant::now();
    let mut last = String::from("no answer yet");
    while start.elapsed() < timeout {
        match http_get(addr, path, Duration::from_secs(2)) {
            Ok((200, _)) => return Ok(()),
            Ok((code, body)) => last = format!("HTTP {code}: {}", body.trim()),
            Err(e) => last = e.to_string(),
        }
        if let Some(p) = proc.as_deref_mut()
            && !p.is_running()
        {
            bail!(
                "{} exited before http://{addr}{path} answered; log {}:\n{}",
                p.name(),
                p.log_path().display(),
                p.log_tail(30)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("http://{addr}{path} not ready after {timeout:?}: {last}")
}

/// A free TCP port on `ip` (bound then released; good enough for a local run).
pub(crate) fn free_port(ip: std::net::IpAddr) -> Result<u16> {
    let listener = std::net::TcpListener::bind((ip, 0))
        .with_context(|| format!("binding a free port on {ip}"))?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_of_self_is_positive() {
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn tail_keeps_last_lines() {
        let dir = std::env::temp_dir().join(format!("xtask-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.log");
        std::fs::write(&f, "1\n2\n3\n").unwrap();
        assert_eq!(tail(&f, 2), "2\n3");
        assert_eq!(tail(&dir.join("missing"), 2), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn supervised_process_is_killed_on_drop() {
        let dir = std::env::temp_dir().join(format!("xtask-sup-{}", std::process::id()));
        let pid;
        {
            let mut p =
                Supervised::spawn("sleeper", Command::new("sleep").arg("30"), &dir).unwrap();
            pid = p.pid();
            assert!(p.is_running());
        }
        // After drop the process is reaped: its /proc entry is gone.
        assert!(rss_kib(pid).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
