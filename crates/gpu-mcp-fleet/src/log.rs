//! What the gateway tells its clients' logs (`notifications/message`) about the fleet: a node
//! that stopped answering and answers again, a circuit breaker that opened or closed, discovery
//! that lost and regained its watch.
//!
//! [`FleetLog`] turns the router's and discovery's [`FleetEvent`]s into log records, bounded
//! twice: a node is said to fail when it goes from answering to failing, not on every failed
//! call, and a [`ThrottledLog`] sends at most one record per node (and per breaker, and for
//! the watch) per interval, counting the rest. A flapping node costs a client one record a
//! minute, whatever the fleet's size or traffic.

use std::collections::HashSet;

use gpu_mcp_k8s::{FleetEvent, FleetEvents};
use gpu_mcp_protocol::mcp::LoggingLevel;
use gpu_mcp_service::ThrottledLog;
use parking_lot::Mutex;
use serde_json::json;

use crate::forward::failure_of;

/// Logger name of node and breaker records.
const FLEET_LOGGER: &str = "fleet";
/// Logger name of the watch's records.
const DISCOVERY_LOGGER: &str = "discovery";

/// Most nodes remembered as failing; beyond it a failing node is reported on every change.
const MAX_FAILING: usize = 65_536;

/// The gateway's [`FleetEvents`] observer, writing to a [`ThrottledLog`].
#[derive(Debug)]
pub struct FleetLog {
    log: ThrottledLog,
    /// Nodes whose last call failed.
    failing: Mutex<HashSet<String>>,
}

impl FleetLog {
    /// An observer writing to `log`.
    pub fn new(log: ThrottledLog) -> Self {
        Self {
            log,
            failing: Mutex::default(),
        }
    }
}

impl FleetEvents for FleetLog {
    fn observe(&self, event: FleetEvent) {
        match event {
            FleetEvent::NodeFailed { node, error } => {
                let newly = {
                    let mut failing = self.failing.lock();
                    failing.len() >= MAX_FAILING || failing.insert(node.clone())
                };
                if newly {
                    let failure = failure_of(&error);
                    self.log.log(
                        LoggingLevel::Warning,
                        FLEET_LOGGER,
                        &format!("node/{node}"),
                        json!({
                            "message": format!("{node} stopped answering: {}", failure.message),
                            "node": node,
                            "kind": failure.kind.as_str(),
                        }),
                    );
                }
            }
            FleetEvent::NodeAnswered { node } => {
                if self.failing.lock().remove(&node) {
                    self.log.log(
                        LoggingLevel::Notice,
                        FLEET_LOGGER,
                        &format!("node/{node}"),
                        json!({"message": format!("{node} answers again"), "node": node}),
                    );
                }
            }
            FleetEvent::CircuitOpened {
                node,
                failures,
                cool_down,
            } => {
                self.log.log(
                    LoggingLevel::Error,
                    FLEET_LOGGER,
                    &format!("breaker/{node}"),
                    json!({
                        "message": format!(
                            "{node} is skipped for {} s after {failures} consecutive failures (circuit breaker open)",
                            cool_down.as_secs()
                        ),
                        "node": node,
                        "failures": failures,
                        "retry_in_s": cool_down.as_secs(),
                    }),
                );
            }
            FleetEvent::CircuitClosed { node } => {
                self.log.log(
                    LoggingLevel::Notice,
                    FLEET_LOGGER,
                    &format!("breaker/{node}"),
                    json!({
                        "message": format!("{node} is asked again (circuit breaker closed)"),
                        "node": node,
                    }),
                );
            }
            FleetEvent::WatchLost { error } => {
                self.log.log(
                    LoggingLevel::Error,
                    DISCOVERY_LOGGER,
                    "watch",
                    json!({
                        "message": format!(
                            "discovery lost its watch of the agent pods; serving the last known nodes while it retries: {}",
                            gpu_mcp_k8s::quote_untrusted(&error)
                        ),
                    }),
                );
            }
            FleetEvent::WatchRestored => {
                self.log.log(
                    LoggingLevel::Notice,
                    DISCOVERY_LOGGER,
                    "watch",
                    json!({"message": "discovery watches the agent pods again"}),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use gpu_mcp_k8s::NodeError;
    use gpu_mcp_service::{LogRecord, LogSink};
    use serde_json::Value;
    use tokio::sync::broadcast;

    use super::*;

    fn observer() -> (Arc<FleetLog>, broadcast::Receiver<LogRecord>) {
        let sink = LogSink::new();
        let rx = sink.subscribe();
        let log = ThrottledLog::new(sink, Duration::from_secs(60));
        (Arc::new(FleetLog::new(log)), rx)
    }

    fn written(rx: &mut broadcast::Receiver<LogRecord>) -> Vec<(LoggingLevel, String, Value)> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|r| (r.level, r.logger, r.data))
            .collect()
    }

    fn refused(node: &str) -> FleetEvent {
        FleetEvent::NodeFailed {
            node: node.to_owned(),
            error: NodeError::Connect {
                url: "http://127.0.0.1:1/mcp".into(),
                message: "connection refused".into(),
            },
        }
    }

    fn answered(node: &str) -> FleetEvent {
        FleetEvent::NodeAnswered {
            node: node.to_owned(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_is_said_to_fail_once_and_to_answer_again_once() {
        let (log, mut rx) = observer();
        log.observe(answered("gpu-1"));
        for _ in 0..5 {
            log.observe(refused("gpu-1"));
        }
        let first = written(&mut rx);
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(first[0].0, LoggingLevel::Warning);
        assert_eq!(first[0].1, "fleet");
        assert_eq!(first[0].2["node"], "gpu-1");
        assert_eq!(first[0].2["kind"], "unreachable");
        let message = first[0].2["message"].as_str().unwrap();
        assert!(
            message.starts_with("gpu-1 stopped answering: "),
            "{message}"
        );

        tokio::time::advance(Duration::from_secs(61)).await;
        log.observe(answered("gpu-1"));
        log.observe(answered("gpu-1"));
        let again = written(&mut rx);
        assert_eq!(again.len(), 1, "{again:?}");
        assert_eq!(again[0].0, LoggingLevel::Notice);
        assert_eq!(again[0].2["message"], "gpu-1 answers again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_flapping_node_is_reported_once_per_interval_with_a_count() {
        let (log, mut rx) = observer();
        for _ in 0..100 {
            log.observe(refused("gpu-2"));
            log.observe(answered("gpu-2"));
        }
        let burst = written(&mut rx);
        assert_eq!(burst.len(), 1, "{burst:?}");
        tokio::time::advance(Duration::from_secs(61)).await;
        log.observe(refused("gpu-2"));
        let next = written(&mut rx);
        assert_eq!(next.len(), 1);
        // 199 changes were held back: 100 recoveries and 99 failures.
        assert_eq!(next[0].2["suppressed"], 199);
    }

    #[tokio::test(start_paused = true)]
    async fn breakers_and_the_watch_have_their_own_levels() {
        let (log, mut rx) = observer();
        log.observe(FleetEvent::CircuitOpened {
            node: "gpu-3".into(),
            failures: 5,
            cool_down: Duration::from_secs(30),
        });
        log.observe(FleetEvent::WatchLost {
            error: "pods is forbidden\nsecond line".into(),
        });
        tokio::time::advance(Duration::from_secs(61)).await;
        log.observe(FleetEvent::CircuitClosed {
            node: "gpu-3".into(),
        });
        log.observe(FleetEvent::WatchRestored);
        let all = written(&mut rx);
        let levels: Vec<(LoggingLevel, &str)> = all
            .iter()
            .map(|(l, logger, _)| (*l, logger.as_str()))
            .collect();
        assert_eq!(
            levels,
            [
                (LoggingLevel::Error, "fleet"),
                (LoggingLevel::Error, "discovery"),
                (LoggingLevel::Notice, "fleet"),
                (LoggingLevel::Notice, "discovery"),
            ]
        );
        assert_eq!(all[0].2["retry_in_s"], 30);
        // The API server's text is quoted: no line break reaches the client's log.
        let lost = all[1].2["message"].as_str().unwrap();
        assert!(!lost.contains('\n'), "{lost}");
        assert!(lost.contains("pods is forbidden"), "{lost}");
    }
}
