//! What the router and discovery observe that an operator wants to hear about, handed to a
//! [`FleetEvents`] observer (the gateway turns them into log messages for its clients).
//!
//! The events are facts, one per observation (every failed node call, every breaker that
//! opens); deciding what is worth saying and how often is the observer's.

use std::time::Duration;

use crate::error::NodeError;

/// One observation of the router or of discovery.
#[derive(Debug, Clone)]
pub enum FleetEvent {
    /// A node's agent answered a request.
    NodeAnswered {
        /// The node.
        node: String,
    },
    /// A node's agent failed to answer (unreachable, timed out, a bad reply): the failures
    /// that count toward its circuit breaker.
    NodeFailed {
        /// The node.
        node: String,
        /// Why.
        error: NodeError,
    },
    /// A node's circuit breaker opened: the node is skipped without a request for a while.
    CircuitOpened {
        /// The node.
        node: String,
        /// Consecutive failures so far.
        failures: u32,
        /// How long it is skipped before the next trial.
        cool_down: Duration,
    },
    /// A node's circuit breaker closed: its trial request was answered.
    CircuitClosed {
        /// The node.
        node: String,
    },
    /// Discovery's watch of the agent pods failed; the last known nodes are still served and
    /// the watch is retried.
    WatchLost {
        /// The watch error.
        error: String,
    },
    /// Discovery's watch listed the agent pods again after a failure.
    WatchRestored,
}

/// Receives [`FleetEvent`]s; called inline, so it must not block.
pub trait FleetEvents: Send + Sync {
    /// One observation.
    fn observe(&self, event: FleetEvent);
}

/// Ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl FleetEvents for NoEvents {
    fn observe(&self, _event: FleetEvent) {}
}
