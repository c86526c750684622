//! Log messages for clients: what `logging/setLevel` turns on and `notifications/message`
//! carries.
//!
//! Components that see operator-relevant events (a node that stopped answering, discovery
//! that lost its watch) write a [`LogRecord`] to the server's [`LogSink`].
//! Each session reads the records through [`LogMessages`], which passes on only those at or
//! above the level the client set with `logging/setLevel`.
//! A session whose client never set a level gets no log messages: a client that did not ask
//! for them (a one-shot `tools/call` over stdio, say) never sees an unexpected notification.
//!
//! 2026-07-28 has no `logging/setLevel` and no session: a request opts in with a level in its
//! own `_meta` ([`META_LOG_LEVEL`]) and gets, on its own notification channel before its
//! response, the records at or above that level written while it runs ([`RequestLog`]); a
//! request without the key gets none.
//!
//! Records hold what their writer chose to put in them, built from our own fields (node
//! names, error descriptions); callers never put tokens, headers or request bodies in them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gpu_mcp_protocol::envelope::{META_LOG_LEVEL, params_meta};
use gpu_mcp_protocol::mcp::LoggingLevel;
use gpu_mcp_protocol::{ErrorObject, Notification, encode};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::progress::NotificationSender;
use crate::session::Session;

/// Method of the log message notification.
pub const LOG_MESSAGE_METHOD: &str = "notifications/message";

/// How many records a slow session may fall behind before it misses some.
const SINK_CAPACITY: usize = 256;

/// One log record: its severity, the component that wrote it, and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Severity.
    pub level: LoggingLevel,
    /// The component, e.g. `fleet` or `discovery`.
    pub logger: String,
    /// What happened, as JSON (an object with a `message` and fields such as `node`).
    pub data: Value,
    /// Position in the sink's sequence, so a level applies only to records written after it
    /// was set.
    seq: u64,
}

/// Where components write log records for clients; cheap to clone, one per server.
#[derive(Debug, Clone)]
pub struct LogSink {
    tx: broadcast::Sender<LogRecord>,
    written: Arc<AtomicU64>,
}

impl Default for LogSink {
    fn default() -> Self {
        Self::new()
    }
}

impl LogSink {
    /// A sink with no readers yet.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(SINK_CAPACITY);
        Self {
            tx,
            written: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Writes one record for every session that reads log messages; without readers it is
    /// dropped.
    pub fn log(&self, level: LoggingLevel, logger: &str, data: Value) {
        let seq = self.written.fetch_add(1, Ordering::SeqCst) + 1;
        // An error only means no session is reading now.
        let _ = self.tx.send(LogRecord {
            level,
            logger: logger.to_owned(),
            data,
            seq,
        });
    }

    /// How many records were written so far.
    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Every record written from now on, unfiltered (sessions read theirs through
    /// [`Session::log_messages`], which applies the client's level).
    pub fn subscribe(&self) -> broadcast::Receiver<LogRecord> {
        self.tx.subscribe()
    }
}

/// The log messages of one session, encoded as `notifications/message` (compact JSON, no
/// newline), from [`Session::log_messages`].
///
/// A session has at most one at a time, so a transport with several streams open for one
/// session (Streamable HTTP) sends each message on one of them only; dropping it lets the next
/// stream take over.
#[derive(Debug)]
pub struct LogMessages {
    rx: broadcast::Receiver<LogRecord>,
    session: Session,
}

impl Drop for LogMessages {
    fn drop(&mut self) {
        self.session.lock().log_stream_taken = false;
    }
}

impl LogMessages {
    fn new(session: Session) -> Self {
        let rx = session.server.inner.log_sink.subscribe();
        Self { rx, session }
    }

    /// The next message this session's client asked for; `None` once the server is gone.
    ///
    /// A session that falls more than a few hundred records behind gets one warning saying
    /// how many it missed, then carries on with the newest.
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            let record = match self.rx.recv().await {
                Ok(record) => record,
                Err(broadcast::error::RecvError::Closed) => return None,
                Err(broadcast::error::RecvError::Lagged(missed)) => missed_record(missed),
            };
            if let Some(message) = self.session.log_message(&record) {
                return Some(message);
            }
        }
    }
}

impl Session {
    /// This session's log messages from now on, for a transport to deliver on one stream;
    /// `None` while another stream of this session carries them (until that one is dropped).
    pub fn log_messages(&self) -> Option<LogMessages> {
        {
            let mut state = self.lock();
            if state.log_stream_taken {
                return None;
            }
            state.log_stream_taken = true;
        }
        Some(LogMessages::new(self.clone()))
    }

    /// Sets the level from `logging/setLevel`, for records written from now on.
    pub(crate) fn set_log_level(&self, level: LoggingLevel) {
        let since = self.server.inner.log_sink.written();
        let mut state = self.lock();
        state.log_level = Some(level);
        state.log_level_since = since;
    }

    /// The encoded notification for `record`, if the client's level lets it through.
    fn log_message(&self, record: &LogRecord) -> Option<Vec<u8>> {
        let (threshold, since) = {
            let state = self.lock();
            (state.log_level?, state.log_level_since)
        };
        (record.seq > since && record.level >= threshold).then(|| encode_record(record))
    }

    /// The log messages at or above `level` written while one request runs, for a request
    /// that opted in with its `_meta` log level, sent on `tx` (the request's notification
    /// channel). Reading starts now, so a record written before the request is not among them.
    pub(crate) fn request_log(&self, level: LoggingLevel, tx: NotificationSender) -> RequestLog {
        RequestLog {
            rx: self.server.inner.log_sink.subscribe(),
            level,
            tx,
        }
    }
}

/// `notifications/message` for `record`, encoded.
fn encode_record(record: &LogRecord) -> Vec<u8> {
    let params = json!({
        "level": record.level,
        "logger": record.logger,
        "data": record.data,
    });
    encode(&Notification::new(LOG_MESSAGE_METHOD, Some(params)))
}

/// The record that stands for `missed` records a reader fell behind on.
fn missed_record(missed: u64) -> LogRecord {
    LogRecord {
        level: LoggingLevel::Warning,
        logger: "server".to_owned(),
        data: json!({"message": format!("{missed} log messages were dropped")}),
        seq: u64::MAX,
    }
}

/// The level a 2026-07-28 request opts in to with [`META_LOG_LEVEL`] in its `_meta`: `None`
/// without the key, `-32602` for a value that is not a level.
pub(crate) fn request_log_level(
    params: Option<&Value>,
) -> Result<Option<LoggingLevel>, ErrorObject> {
    let Some(raw) = params_meta(params).and_then(|meta| meta.get(META_LOG_LEVEL)) else {
        return Ok(None);
    };
    serde_json::from_value(raw.clone()).map(Some).map_err(|_| {
        ErrorObject::invalid_params(format!(
            "`_meta.{META_LOG_LEVEL}` must be one of debug, info, notice, warning, error, \
             critical, alert or emergency"
        ))
    })
}

/// The log messages of one request that asked for them in its `_meta` (2026-07-28), from
/// [`Session::request_log`].
#[derive(Debug)]
pub(crate) struct RequestLog {
    rx: broadcast::Receiver<LogRecord>,
    level: LoggingLevel,
    tx: NotificationSender,
}

impl RequestLog {
    /// Runs `work`, sending every record at or above the level written until it finishes
    /// (those written just before it finished included), then returns its output.
    /// `work` is pinned by the caller, so that its state is not moved into this one.
    pub(crate) async fn around<T>(mut self, mut work: impl Future<Output = T> + Unpin) -> T {
        loop {
            tokio::select! {
                biased;
                out = &mut work => {
                    self.drain();
                    return out;
                }
                record = self.rx.recv() => match record {
                    Ok(record) => self.send(&record),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        self.send(&missed_record(missed));
                    }
                    Err(broadcast::error::RecvError::Closed) => return work.await,
                },
            }
        }
    }

    /// Sends what was written but not read yet.
    fn drain(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(record) => self.send(&record),
                Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                    self.send(&missed_record(missed));
                }
                Err(_) => return,
            }
        }
    }

    /// Sends `record` if its level is at or above the request's; never waits (a client that
    /// does not read its notifications misses some, and the request is not slowed down).
    fn send(&self, record: &LogRecord) {
        if record.level >= self.level && self.tx.try_send(encode_record(record)).is_err() {
            tracing::debug!("a log notification of a request was dropped");
        }
    }
}
