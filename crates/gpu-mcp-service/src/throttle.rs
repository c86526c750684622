//! Bounded log writing for components whose events can repeat without end (a node that flaps,
//! a GPU that keeps timing out): [`ThrottledLog`] sends at most one record per key per
//! interval, and says in the next one it sends how many it held back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gpu_mcp_protocol::mcp::LoggingLevel;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::time::Instant;

use crate::logging::LogSink;

/// Default shortest time between two records of one key.
pub const DEFAULT_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Most keys remembered at once; a new key beyond them is held back until old ones expire.
const MAX_KEYS: usize = 4096;

/// A [`LogSink`] writer that sends at most one record per key (a node, a GPU, a source) per
/// interval; cheap to clone (clones share the counts).
///
/// A record held back is counted, and the next record sent for its key carries the count as
/// `data.suppressed`, so a client still learns that something kept happening.
#[derive(Debug, Clone)]
pub struct ThrottledLog {
    sink: LogSink,
    interval: Duration,
    keys: Arc<Mutex<HashMap<String, KeyState>>>,
}

#[derive(Debug)]
struct KeyState {
    last_sent: Instant,
    suppressed: u64,
}

impl ThrottledLog {
    /// Writes to `sink`, at most one record per key per `interval`.
    pub fn new(sink: LogSink, interval: Duration) -> Self {
        Self {
            sink,
            interval,
            keys: Arc::default(),
        }
    }

    /// Writes `data` (an object) for `key`, unless a record of `key` went out less than the
    /// interval ago; returns whether it was written.
    pub fn log(&self, level: LoggingLevel, logger: &str, key: &str, mut data: Value) -> bool {
        let now = Instant::now();
        let suppressed = {
            let mut keys = self.keys.lock();
            if let Some(state) = keys.get_mut(key) {
                if now.duration_since(state.last_sent) < self.interval {
                    state.suppressed = state.suppressed.saturating_add(1);
                    return false;
                }
                state.last_sent = now;
                std::mem::take(&mut state.suppressed)
            } else {
                if keys.len() >= MAX_KEYS {
                    let interval = self.interval;
                    keys.retain(|_, s| now.duration_since(s.last_sent) < interval);
                    if keys.len() >= MAX_KEYS {
                        return false;
                    }
                }
                keys.insert(
                    key.to_owned(),
                    KeyState {
                        last_sent: now,
                        suppressed: 0,
                    },
                );
                0
            }
        };
        if suppressed > 0
            && let Some(object) = data.as_object_mut()
        {
            object.insert("suppressed".into(), suppressed.into());
        }
        self.sink.log(level, logger, data);
        true
    }

    /// The sink written to.
    pub fn sink(&self) -> &LogSink {
        &self.sink
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_record_per_key_per_interval_and_the_count_of_the_rest() {
        let sink = LogSink::new();
        let mut rx = sink.subscribe();
        let log = ThrottledLog::new(sink, Duration::from_secs(60));
        assert!(log.log(LoggingLevel::Warning, "fleet", "node/a", json!({"n": 1})));
        assert!(!log.log(LoggingLevel::Warning, "fleet", "node/a", json!({"n": 2})));
        assert!(!log.log(LoggingLevel::Info, "fleet", "node/a", json!({"n": 3})));
        // Another key is not held back by the first.
        assert!(log.log(LoggingLevel::Warning, "fleet", "node/b", json!({"n": 4})));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(log.log(LoggingLevel::Info, "fleet", "node/a", json!({"n": 5})));

        let sent: Vec<Value> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|r| r.data)
            .collect();
        assert_eq!(
            sent,
            [
                json!({"n": 1}),
                json!({"n": 4}),
                json!({"n": 5, "suppressed": 2})
            ]
        );
    }
}
