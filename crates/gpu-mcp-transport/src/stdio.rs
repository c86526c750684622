//! MCP over stdio: newline-delimited JSON-RPC on a reader/writer pair.
//!
//! Each line is one message. Requests run concurrently and are answered as they finish; the writer
//! serialises replies so lines never interleave. `initialize` and notifications are handled in
//! order before the next line is read, so a one-shot `initialize` + `tools/call` sees the session
//! initialized. A line longer than the cap is discarded while it is read (memory stays bounded)
//! and answered with `-32600`; an unparsable line is answered with `-32700` and `id: null`.
//! At most [`StdioConfig::max_in_flight`] requests run at once: a slot is taken before the next
//! line is read and given back once its reply is handed to the writer, so a client that sends
//! faster than it reads stdout stalls its own input instead of growing memory.
//! Log messages the client asked for with `logging/setLevel`, and the progress notifications
//! of requests that carry a `progressToken`, are written between replies.
//! End of input ends the loop once every in-flight request has been answered.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use gpu_mcp_protocol::ErrorCode;
use gpu_mcp_service::{Incoming, McpServer};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::codec::{encode_response, error_response};
use crate::dispatch::{Dispatcher, forward, forward_list_changes};
use crate::error::Result;
use crate::metrics::Metrics;

/// Default cap on one stdin line: 4 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 4 << 20;

/// Default cap on stdio requests in flight.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// Settings of the stdio transport.
#[derive(Debug, Clone)]
pub struct StdioConfig {
    /// Longest accepted line in bytes (without the newline); longer ones are discarded and answered
    /// with an error.
    pub max_line_bytes: usize,
    /// On shutdown, how long in-flight requests may still run before they are dropped.
    pub shutdown_grace: Duration,
    /// Upper bound on one request's handling; `None` for no bound.
    pub request_timeout: Option<Duration>,
    /// Requests being handled or waiting for the writer at once; the next line is read only
    /// when one of them is done.
    pub max_in_flight: usize,
    /// Where to count requests, if anywhere.
    pub metrics: Option<Metrics>,
}

impl Default for StdioConfig {
    fn default() -> Self {
        Self {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            shutdown_grace: Duration::from_secs(10),
            request_timeout: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            metrics: None,
        }
    }
}

/// Serves one MCP session over `input`/`output` with the default [`StdioConfig`].
///
/// Returns when the input ends (after answering every in-flight request) or when `shutdown` is
/// cancelled (after a grace period for in-flight requests).
pub async fn serve_stdio<R, W>(
    server: McpServer,
    input: R,
    output: W,
    shutdown: CancellationToken,
) -> Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    serve_stdio_with(StdioConfig::default(), server, input, output, shutdown).await
}

/// Serves one MCP session over `input`/`output`; see [`serve_stdio`].
pub async fn serve_stdio_with<R, W>(
    config: StdioConfig,
    server: McpServer,
    input: R,
    output: W,
    shutdown: CancellationToken,
) -> Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let dispatcher = Dispatcher::new(server, config.metrics.clone(), config.request_timeout);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(64);
    let writer_gone = CancellationToken::new();
    let writer = write_loop(output, rx, writer_gone.clone());
    let reader = read_loop(
        &config,
        dispatcher,
        BufReader::with_capacity(64 * 1024, input),
        tx,
        shutdown,
        writer_gone,
    );
    let (read, write) = tokio::join!(reader, writer);
    read?;
    write
}

async fn read_loop<R: AsyncBufRead + Unpin>(
    config: &StdioConfig,
    dispatcher: Dispatcher,
    mut input: R,
    tx: mpsc::Sender<Vec<u8>>,
    shutdown: CancellationToken,
    writer_gone: CancellationToken,
) -> Result<()> {
    let session = dispatcher.server().session();
    // Log messages the client asked for (`logging/setLevel`) go out between the replies while
    // the session lasts.
    let _log_messages = session
        .log_messages()
        .map(|messages| AbortOnDropHandle::new(tokio::spawn(forward(messages, tx.clone()))));
    // So do resource list changes, once the session is initialized.
    let _list_changes = session.resource_list_changes().map(|changes| {
        AbortOnDropHandle::new(tokio::spawn(forward_list_changes(changes, tx.clone())))
    });
    let mut tasks = JoinSet::new();
    let mut buf = Vec::new();
    let slots = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let result = loop {
        // A slot first: with every slot taken, the next line waits in the pipe.
        let slot = tokio::select! {
            biased;
            () = shutdown.cancelled() => break Ok(()),
            () = writer_gone.cancelled() => break Ok(()),
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break Ok(()),
            },
        };
        let line = tokio::select! {
            biased;
            () = shutdown.cancelled() => break Ok(()),
            () = writer_gone.cancelled() => break Ok(()),
            line = read_line(&mut input, &mut buf, config.max_line_bytes) => line,
        };
        while tasks.try_join_next().is_some() {}
        let line = match line {
            Ok(Line::Eof) => break Ok(()),
            Ok(Line::TooLong) => {
                tracing::warn!(
                    limit = config.max_line_bytes,
                    "discarded an over-long stdin line"
                );
                let reply = error_response(
                    None,
                    ErrorCode::InvalidRequest,
                    format!(
                        "Invalid request: message exceeds the {}-byte line limit",
                        config.max_line_bytes
                    ),
                );
                let _ = tx.send(encode_response(&reply)).await;
                continue;
            }
            Ok(Line::Complete) => trim(&buf),
            Err(e) => break Err(e.into()),
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let incoming = match Incoming::from_line(line) {
            Ok(m) => m.with_notifications(tx.clone()),
            Err(reply) => {
                tracing::debug!("rejected a stdin line that is not JSON-RPC");
                if let Some(body) = reply.into_body() {
                    let _ = tx.send(body).await;
                }
                continue;
            }
        };
        if session.runs_in_order(&incoming) {
            if let Some(body) = dispatcher.dispatch(&session, incoming).await.into_body() {
                let _ = tx.send(body).await;
            }
        } else {
            let (dispatcher, session, tx) = (dispatcher.clone(), session.clone(), tx.clone());
            tasks.spawn(async move {
                if let Some(body) = dispatcher.dispatch(&session, incoming).await.into_body() {
                    let _ = tx.send(body).await;
                }
                drop(slot);
            });
        }
    };
    // Answer what is in flight: all of it at end of input, within the grace period on shutdown.
    while !tasks.is_empty() {
        tokio::select! {
            _ = tasks.join_next() => {}
            () = shutdown.cancelled() => break,
        }
    }
    if !tasks.is_empty() {
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(config.shutdown_grace, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                left = tasks.len(),
                "dropping requests still running after the shutdown grace period"
            );
            session.cancel_in_flight();
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }
    result
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut output: W,
    mut rx: mpsc::Receiver<Vec<u8>>,
    gone: CancellationToken,
) -> Result<()> {
    let result = async {
        while let Some(mut line) = rx.recv().await {
            line.push(b'\n');
            output.write_all(&line).await?;
            if rx.is_empty() {
                output.flush().await?;
            }
        }
        output.flush().await
    }
    .await;
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            gone.cancel();
            if e.kind() == ErrorKind::BrokenPipe {
                tracing::debug!("stdout closed by the client");
                Ok(())
            } else {
                Err(e.into())
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// `buf` holds one line without its newline.
    Complete,
    /// The line was longer than the cap and has been skipped.
    TooLong,
    /// End of input.
    Eof,
}

/// Reads one `\n`-terminated line into `buf`, holding at most `max` bytes of it in memory.
async fn read_line<R: AsyncBufRead + Unpin>(
    input: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let mut overflow = false;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            return Ok(if overflow {
                Line::TooLong
            } else if buf.is_empty() {
                Line::Eof
            } else {
                Line::Complete
            });
        }
        let (chunk, used, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        if !overflow {
            if buf.len() + chunk.len() > max {
                overflow = true;
                buf.clear();
                buf.shrink_to(64 * 1024);
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        input.consume(used);
        if done {
            return Ok(if overflow {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

fn trim(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn read_line_splits_caps_and_recovers() {
        let data = b"short\n0123456789abcdef\nok\r\nlast".to_vec();
        let mut r = BufReader::with_capacity(4, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut r, &mut buf, 8).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"short");
        assert_eq!(read_line(&mut r, &mut buf, 8).await.unwrap(), Line::TooLong);
        assert_eq!(
            read_line(&mut r, &mut buf, 8).await.unwrap(),
            Line::Complete
        );
        assert_eq!(trim(&buf), b"ok");
        assert_eq!(
            read_line(&mut r, &mut buf, 8).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"last");
        assert_eq!(read_line(&mut r, &mut buf, 8).await.unwrap(), Line::Eof);
    }

    #[tokio::test]
    async fn over_long_final_line_without_newline_is_too_long() {
        let data = [b'x'; 100];
        let mut r = BufReader::with_capacity(16, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut r, &mut buf, 10).await.unwrap(),
            Line::TooLong
        );
        assert!(buf.capacity() <= 64 * 1024);
        assert_eq!(read_line(&mut r, &mut buf, 10).await.unwrap(), Line::Eof);
    }
}
