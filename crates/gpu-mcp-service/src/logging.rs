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
//! Records hold what their writer chose to put in them, built from our own fields (node
//! names, error descriptions); callers never put tokens, headers or request bodies in them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gpu_mcp_protocol::mcp::LoggingLevel;
use gpu_mcp_protocol::{Notification, encode};
use serde_json::{Value, json};
use tokio::sync::broadcast;

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
                Err(broadcast::error::RecvError::Lagged(missed)) => LogRecord {
                    level: LoggingLevel::Warning,
                    logger: "server".to_owned(),
                    data: json!({"message": format!("{missed} log messages were dropped")}),
                    seq: u64::MAX,
                },
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
        (record.seq > since && record.level >= threshold).then(|| {
            let params = json!({
                "level": record.level,
                "logger": record.logger,
                "data": record.data,
            });
            encode(&Notification::new(LOG_MESSAGE_METHOD, Some(params)))
        })
    }
}
