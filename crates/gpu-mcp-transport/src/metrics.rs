//! Prometheus / OpenMetrics metrics of the MCP transports.

use std::sync::Arc;

use parking_lot::RwLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

/// Content type of [`Metrics::encode`]'s output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of `mcp_requests_total`. The method and the outcome are fixed names and the tool is
/// the label the server core made for the request, so counting one allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    tool: String,
    outcome: &'static str,
}

/// Labels of `mcp_request_duration_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

/// Labels of `mcp_http_responses_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabels {
    status: u16,
}

/// How one request ended, as counted in `mcp_requests_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A result (for `tools/call`, without `isError`).
    Ok,
    /// A `tools/call` result with `isError: true`.
    ToolError,
    /// A JSON-RPC error reply.
    Error,
    /// No reply within the per-request timeout.
    Timeout,
}

impl From<gpu_mcp_service::Outcome> for Outcome {
    fn from(outcome: gpu_mcp_service::Outcome) -> Self {
        use gpu_mcp_service::Outcome as O;
        match outcome {
            O::Ok | O::NoReply => Self::Ok,
            O::ToolError => Self::ToolError,
            O::Error => Self::Error,
        }
    }
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ToolError => "tool_error",
            Self::Error => "error",
            Self::Timeout => "timeout",
        }
    }
}

#[derive(Debug)]
struct Inner {
    registry: RwLock<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    in_flight: Gauge,
    http_responses: Family<StatusLabels, Counter>,
    rate_limited: Counter,
}

/// The metrics registry of one process; cheap to clone.
///
/// Holds an explicit `prometheus_client` [`Registry`] (no global recorder) so tests can inspect
/// their own instance and the gateway can add its metrics with [`Metrics::register`].
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~8 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Metrics {
    /// A registry with the transport metrics registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Family<MethodLabels, Histogram> =
            Family::new_with_constructor(latency_histogram);
        let in_flight = Gauge::default();
        let http_responses = Family::<StatusLabels, Counter>::default();
        let rate_limited = Counter::default();
        registry.register(
            "mcp_requests",
            "MCP requests answered, by method, tool and outcome",
            requests.clone(),
        );
        registry.register(
            "mcp_request_duration_seconds",
            "Time from receiving an MCP request to having its reply, by method",
            latency.clone(),
        );
        registry.register(
            "mcp_requests_in_flight",
            "MCP requests being handled now",
            in_flight.clone(),
        );
        registry.register(
            "mcp_http_responses",
            "HTTP responses sent, by status code",
            http_responses.clone(),
        );
        registry.register(
            "mcp_http_rate_limited",
            "POSTs to the MCP endpoint refused with 429 because their client was over its rate limit",
            rate_limited.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry: RwLock::new(registry),
                requests,
                latency,
                in_flight,
                http_responses,
                rate_limited,
            }),
        }
    }

    /// Registers an extra metric (for example the gateway's per-node counters).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.inner.registry.write().register(name, help, metric);
    }

    /// The registry in OpenMetrics text format (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry.read());
        out
    }

    /// Counts one HTTP response.
    pub(crate) fn http_response(&self, status: u16) {
        self.inner
            .http_responses
            .get_or_create(&StatusLabels { status })
            .inc();
    }

    /// Counts one request refused by the per-client rate limit.
    pub(crate) fn rate_limited(&self) {
        self.inner.rate_limited.inc();
    }

    /// Starts timing a request; the guard keeps the in-flight gauge up until it is finished or dropped.
    pub(crate) fn request_started(&self) -> InFlight {
        self.inner.in_flight.inc();
        InFlight {
            metrics: self.clone(),
            started: tokio::time::Instant::now(),
            done: false,
        }
    }

    fn finish(&self, method: &str, tool: String, outcome: Outcome, elapsed: Duration) {
        let method = label_method(method);
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                method,
                tool,
                outcome: outcome.as_str(),
            })
            .inc();
        self.inner
            .latency
            .get_or_create(&MethodLabels { method })
            .observe(elapsed.as_secs_f64());
    }
}

/// Methods MCP defines keep their name; anything else is `other` (bounded cardinality).
fn label_method(method: &str) -> &'static str {
    gpu_mcp_protocol::mcp::methods::request(method).unwrap_or("other")
}

/// A request being handled: decrements the in-flight gauge when dropped.
#[derive(Debug)]
pub(crate) struct InFlight {
    metrics: Metrics,
    started: tokio::time::Instant,
    done: bool,
}

impl InFlight {
    /// Records the request's method, tool label and outcome.
    pub(crate) fn finish(mut self, method: &str, tool: String, outcome: Outcome) {
        self.done = true;
        self.metrics
            .finish(method, tool, outcome, self.started.elapsed());
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.inner.in_flight.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters_histogram_and_gauge() {
        let m = Metrics::new();
        m.request_started()
            .finish("tools/call", "echo".to_owned(), Outcome::Ok);
        m.request_started()
            .finish("made/up", String::new(), Outcome::Error);
        m.http_response(200);
        m.rate_limited();
        let text = m.encode();
        assert!(
            text.contains(r#"mcp_requests_total{method="tools/call",tool="echo",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"mcp_requests_total{method="other",tool="",outcome="error"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("mcp_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(text.contains("mcp_requests_in_flight 0"), "{text}");
        assert!(
            text.contains(r#"mcp_http_responses_total{status="200"} 1"#),
            "{text}"
        );
        assert!(text.contains("mcp_http_rate_limited_total 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn in_flight_guard_counts_until_dropped() {
        let m = Metrics::new();
        let g = m.request_started();
        assert!(m.encode().contains("mcp_requests_in_flight 1"));
        drop(g);
        assert!(m.encode().contains("mcp_requests_in_flight 0"));
    }

    #[test]
    fn extra_metrics_can_be_registered() {
        let m = Metrics::new();
        let c = Counter::<u64>::default();
        m.register("gateway_nodes_up", "nodes", c.clone());
        c.inc();
        assert!(m.encode().contains("gateway_nodes_up_total 1"));
    }
}
