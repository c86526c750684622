//! Routing of one request to one node or to every node, with bounded concurrency.
//!
//! The router is the one place that judges a node before a request leaves: unknown
//! ([`NodeError::NotFound`]), not ready ([`NodeError::NotReady`]), skipped by its circuit breaker
//! ([`NodeError::CircuitOpen`]) or too slow ([`NodeError::Timeout`], the only deadline on the
//! gateway-to-agent hop). Callers word these errors; they do not decide them again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use gpu_mcp_protocol::{Request, Response};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::endpoint::{AgentEndpoint, NodeDirectory};
use crate::error::NodeError;
use crate::events::{FleetEvent, FleetEvents, NoEvents};
use crate::node_name::NodeName;
use crate::transport::NodeTransport;

/// Settings of [`Router`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// Most requests in flight at once during a fan-out.
    pub concurrency: usize,
    /// Deadline for one node's answer: from handing the request to the transport until the
    /// agent's response is read (connecting included). Transports set no deadline of their own.
    pub node_timeout: Duration,
    /// Per-node circuit breaker; `None` sends every request.
    pub circuit_breaker: Option<CircuitBreakerConfig>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            concurrency: 32,
            node_timeout: Duration::from_secs(10),
            circuit_breaker: None,
        }
    }
}

/// A simple per-node circuit breaker: after `failure_threshold` consecutive agent failures the
/// node is skipped for `cool_down`, then one trial request decides whether it closes again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long an open breaker skips the node.
    pub cool_down: Duration,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

/// One node's answer in a routed request.
#[derive(Debug, Clone)]
pub struct NodeResult {
    /// The node.
    pub node_name: String,
    /// The agent pod that was used, when one is known.
    pub pod_name: Option<String>,
    /// The agent's JSON-RPC response, or why there is none.
    pub outcome: Result<Response, NodeError>,
    /// Time spent on this node.
    pub duration: Duration,
}

impl NodeResult {
    /// Whether the agent answered (possibly with a JSON-RPC error).
    pub fn is_ok(&self) -> bool {
        self.outcome.is_ok()
    }
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    trial_started: Option<Instant>,
}

/// Routes JSON-RPC requests to agents found in a [`NodeDirectory`] through a [`NodeTransport`].
///
/// Dropping a routing future cancels its in-flight node requests.
pub struct Router {
    directory: Arc<dyn NodeDirectory>,
    transport: Arc<dyn NodeTransport>,
    config: RouterConfig,
    breakers: Mutex<HashMap<String, Breaker>>,
    events: Arc<dyn FleetEvents>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Router {
    /// Build a router.
    pub fn new(
        directory: Arc<dyn NodeDirectory>,
        transport: Arc<dyn NodeTransport>,
        config: RouterConfig,
    ) -> Router {
        Router {
            directory,
            transport,
            config,
            breakers: Mutex::new(HashMap::new()),
            events: Arc::new(NoEvents),
        }
    }

    /// Reports every node answer and failure, and every breaker that opens or closes, to
    /// `events`.
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn FleetEvents>) -> Router {
        self.events = events;
        self
    }

    /// The directory nodes are looked up in.
    pub fn directory(&self) -> &Arc<dyn NodeDirectory> {
        &self.directory
    }

    /// The router's configuration.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// Send `request` to the agent on `node`.
    ///
    /// A node the directory does not know is [`NodeError::NotFound`], carrying the known nodes
    /// and whether the directory had synced, so the caller can word a hint without a second
    /// lookup.
    pub async fn route_to_node(&self, node: &NodeName, request: &Request) -> NodeResult {
        let started = Instant::now();
        match self.directory.node(node.as_str()) {
            Some(endpoint) => self.dispatch(endpoint, request).await,
            None => NodeResult {
                node_name: node.to_string(),
                pod_name: None,
                outcome: Err(NodeError::NotFound {
                    node: node.to_string(),
                    known: self
                        .directory
                        .nodes()
                        .into_iter()
                        .map(|n| n.node_name)
                        .collect(),
                    synced: self.directory.is_synced(),
                }),
                duration: started.elapsed(),
            },
        }
    }

    /// Send `request` to every node's agent, at most `concurrency` at a time.
    ///
    /// Every node in the directory has one result, sorted by node name; nodes that are not
    /// ready are reported with an error, not skipped.
    pub async fn route_to_all(&self, request: &Request) -> Vec<NodeResult> {
        self.route_to_all_with(request, |_| true, |_, _| {}).await
    }

    /// Send `request` to the agents of the nodes whose name `wanted` admits, as
    /// [`Router::route_to_all`] does for every node.
    pub async fn route_to_matching(
        &self,
        request: &Request,
        wanted: impl Fn(&str) -> bool,
    ) -> Vec<NodeResult> {
        self.route_to_all_with(request, wanted, |_, _| {}).await
    }

    /// [`Router::route_to_matching`], calling `answered(result, total)` as each node's result
    /// comes in (in the order they come in), so a caller can report progress.
    ///
    /// Dropping the future stops the node calls still outstanding.
    pub async fn route_to_all_with(
        &self,
        request: &Request,
        wanted: impl Fn(&str) -> bool,
        mut answered: impl FnMut(&NodeResult, usize),
    ) -> Vec<NodeResult> {
        let mut nodes = self.directory.nodes();
        nodes.retain(|n| wanted(&n.node_name));
        let total = nodes.len();
        let mut results: Vec<NodeResult> = futures::stream::iter(nodes)
            .map(|endpoint| self.dispatch(endpoint, request))
            .buffer_unordered(self.config.concurrency.max(1))
            .inspect(|result| answered(result, total))
            .collect()
            .await;
        results.sort_by(|a, b| a.node_name.cmp(&b.node_name));
        results
    }

    async fn dispatch(&self, endpoint: AgentEndpoint, request: &Request) -> NodeResult {
        let started = Instant::now();
        let outcome = self.attempt(&endpoint, request).await;
        NodeResult {
            node_name: endpoint.node_name,
            pod_name: (!endpoint.pod_name.is_empty()).then_some(endpoint.pod_name),
            outcome,
            duration: started.elapsed(),
        }
    }

    async fn attempt(
        &self,
        endpoint: &AgentEndpoint,
        request: &Request,
    ) -> Result<Response, NodeError> {
        if !endpoint.ready {
            return Err(NodeError::NotReady {
                node: endpoint.node_name.clone(),
                pod: endpoint.pod_name.clone(),
            });
        }
        self.admit(&endpoint.node_name)?;
        let deadline = self.config.node_timeout;
        let outcome =
            match tokio::time::timeout(deadline, self.transport.send(endpoint, request)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(NodeError::Timeout { after: deadline }),
            };
        let breaker = self.record(&endpoint.node_name, &outcome);
        let node = || endpoint.node_name.clone();
        match &outcome {
            Ok(_) => self
                .events
                .observe(FleetEvent::NodeAnswered { node: node() }),
            Err(error) if error.is_agent_failure() => self.events.observe(FleetEvent::NodeFailed {
                node: node(),
                error: error.clone(),
            }),
            Err(_) => {}
        }
        if let Some(event) = breaker {
            self.events.observe(event);
        }
        outcome
    }

    fn admit(&self, node: &str) -> Result<(), NodeError> {
        let Some(config) = self.config.circuit_breaker else {
            return Ok(());
        };
        let mut breakers = self.breakers.lock();
        let Some(breaker) = breakers.get_mut(node) else {
            return Ok(());
        };
        let Some(open_until) = breaker.open_until else {
            return Ok(());
        };
        let now = Instant::now();
        if now < open_until {
            return Err(NodeError::CircuitOpen {
                failures: breaker.failures,
                retry_in: open_until - now,
            });
        }
        // Half-open: one trial at a time; a trial abandoned by a cancelled caller expires.
        let trial_live = breaker
            .trial_started
            .is_some_and(|t| now.duration_since(t) < self.config.node_timeout * 2);
        if trial_live {
            return Err(NodeError::CircuitOpen {
                failures: breaker.failures,
                retry_in: config.cool_down.min(self.config.node_timeout),
            });
        }
        breaker.trial_started = Some(now);
        Ok(())
    }

    /// Counts `outcome` in the node's breaker; the breaker's change, if it opened or closed.
    fn record(&self, node: &str, outcome: &Result<Response, NodeError>) -> Option<FleetEvent> {
        let config = self.config.circuit_breaker?;
        let mut breakers = self.breakers.lock();
        match outcome {
            Ok(_) => breakers.remove(node).and_then(|b| b.open_until).map(|_| {
                FleetEvent::CircuitClosed {
                    node: node.to_owned(),
                }
            }),
            Err(err) if err.is_agent_failure() => {
                let breaker = breakers.entry(node.to_owned()).or_default();
                breaker.failures = breaker.failures.saturating_add(1);
                breaker.trial_started = None;
                if breaker.failures < config.failure_threshold.max(1) {
                    return None;
                }
                breaker.open_until = Some(Instant::now() + config.cool_down);
                Some(FleetEvent::CircuitOpened {
                    node: node.to_owned(),
                    failures: breaker.failures,
                    cool_down: config.cool_down,
                })
            }
            Err(_) => {
                if let Some(breaker) = breakers.get_mut(node) {
                    breaker.trial_started = None;
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
