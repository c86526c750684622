//! Blocking HTTP/1.1 GETs on loopback: health and readiness probes of the processes started.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::process::Supervised;

/// One blocking HTTP/1.1 GET of `path` on `addr`; returns the status code and the body.
/// `timeout` bounds the connect, and each read and write.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, String)> {
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
pub fn wait_ok(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    mut proc: Option<&mut Supervised>,
) -> Result<()> {
    let start = Instant::now();
    let mut last = String::from("no answer yet");
    while start.elapsed() < timeout {
        match get(addr, path, Duration::from_secs(2)) {
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

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn reads_status_and_body() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            // Read the whole request: closing with unread bytes would reset the connection
            // before the client reads the answer.
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "the client closed before the end of its request");
                request.extend_from_slice(&buf[..n]);
            }
            stream
                .write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 8\r\n\r\nnot yet\n",
                )
                .unwrap();
        });
        let (status, body) = get(addr, "/readyz", Duration::from_secs(5)).unwrap();
        server.join().unwrap();
        assert_eq!(status, 503);
        assert_eq!(body, "not yet\n");
    }
}
