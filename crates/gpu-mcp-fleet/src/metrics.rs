//! Prometheus metrics of the gateway catalog: routed calls per node and outcome, fan-out size,
//! latencies, and the size of the node cache.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

/// Somewhere metrics can be registered: a `prometheus_client` [`Registry`], or a binary's
/// wrapper around the registry its HTTP server exposes.
pub trait MetricSink {
    /// Registers `metric` under `name` (without the `_total` suffix of counters).
    fn register_metric<M: Metric>(&mut self, name: &str, help: &str, metric: M);
}

impl MetricSink for Registry {
    fn register_metric<M: Metric>(&mut self, name: &str, help: &str, metric: M) {
        self.register(name, help, metric);
    }
}

/// Labels of one routed call to one node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct NodeCallLabels {
    /// The node.
    pub(crate) node: String,
    /// The tool.
    pub(crate) tool: String,
    /// `ok`, or a [`crate::FailureKind`] name.
    pub(crate) outcome: String,
}

/// Labels of one gateway tool call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct CallLabels {
    /// The tool.
    pub(crate) tool: String,
    /// `single` (with `node`), `fan_out` (without) or `list`.
    pub(crate) mode: String,
}

/// Labels of a per-node latency observation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    /// `ok`, or a [`crate::FailureKind`] name.
    pub(crate) outcome: String,
}

/// The catalog's metrics. Clone-cheap; every clone records into the same series.
#[derive(Debug, Clone)]
pub struct ClusterMetrics {
    node_calls: Family<NodeCallLabels, Counter>,
    node_latency: Family<OutcomeLabels, Histogram>,
    call_latency: Family<CallLabels, Histogram>,
    fan_out_size: Histogram,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~32 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for ClusterMetrics {
    fn default() -> Self {
        Self {
            node_calls: Family::default(),
            node_latency: Family::new_with_constructor(latency_histogram),
            call_latency: Family::new_with_constructor(latency_histogram),
            fan_out_size: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
        }
    }
}

impl ClusterMetrics {
    /// Creates the metrics and registers them (names prefixed `gateway_`).
    pub fn register(sink: &mut impl MetricSink) -> Self {
        let metrics = Self::default();
        sink.register_metric(
            "gateway_node_calls",
            "Calls routed to agents, per node, tool and outcome",
            metrics.node_calls.clone(),
        );
        sink.register_metric(
            "gateway_node_call_duration_seconds",
            "Latency of one routed call to one agent, per outcome",
            metrics.node_latency.clone(),
        );
        sink.register_metric(
            "gateway_tool_call_duration_seconds",
            "Latency of a gateway tool call, per tool and mode (single, fan_out, list)",
            metrics.call_latency.clone(),
        );
        sink.register_metric(
            "gateway_fan_out_nodes",
            "Number of nodes asked by one fan-out",
            metrics.fan_out_size.clone(),
        );
        metrics
    }

    /// Records one call to one node.
    pub fn node_call(&self, node: &str, tool: &str, outcome: &str, seconds: f64) {
        self.node_calls
            .get_or_create(&NodeCallLabels {
                node: node.to_owned(),
                tool: tool.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.node_latency
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .observe(seconds);
    }

    /// Records one gateway tool call.
    pub fn tool_call(&self, tool: &str, mode: &str, seconds: f64) {
        self.call_latency
            .get_or_create(&CallLabels {
                tool: tool.to_owned(),
                mode: mode.to_owned(),
            })
            .observe(seconds);
    }

    /// Records the size of one fan-out.
    pub fn fan_out(&self, nodes: usize) {
        self.fan_out_size.observe(nodes as f64);
    }
}

/// Counts of the node cache, read on every scrape.
pub trait CacheSize: Send + Sync + 'static {
    /// `(known nodes, ready nodes)`.
    fn cache_size(&self) -> (usize, usize);
}

impl<F> CacheSize for F
where
    F: Fn() -> (usize, usize) + Send + Sync + 'static,
{
    fn cache_size(&self) -> (usize, usize) {
        self()
    }
}

/// A gauge whose value is read from the node cache when scraped.
struct CacheGauge {
    source: Arc<dyn CacheSize>,
    ready_only: bool,
}

impl std::fmt::Debug for CacheGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheGauge")
            .field("ready_only", &self.ready_only)
            .finish_non_exhaustive()
    }
}

impl EncodeMetric for CacheGauge {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (known, ready) = self.source.cache_size();
        let value = if self.ready_only { ready } else { known };
        encoder.encode_gauge(&i64::try_from(value).unwrap_or(i64::MAX))
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// Registers gauges of the node cache's size, read from `source` at scrape time.
pub fn register_cache_size(sink: &mut impl MetricSink, source: Arc<dyn CacheSize>) {
    sink.register_metric(
        "gateway_cached_agent_pods",
        "Agent pods in the discovery cache",
        CacheGauge {
            source: source.clone(),
            ready_only: false,
        },
    );
    sink.register_metric(
        "gateway_ready_agent_pods",
        "Ready agent pods in the discovery cache",
        CacheGauge {
            source,
            ready_only: true,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn records_and_exports_series() {
        let mut registry = Registry::default();
        let metrics = ClusterMetrics::register(&mut registry);
        register_cache_size(&mut registry, Arc::new(|| (3, 2)));
        metrics.node_call("gpu-node-1", "get_gpu_health", "ok", 0.01);
        metrics.node_call("gpu-node-2", "get_gpu_health", "timeout", 10.0);
        metrics.tool_call("get_gpu_health", "fan_out", 10.0);
        metrics.fan_out(2);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for needle in [
            r#"gateway_node_calls_total{node="gpu-node-1",tool="get_gpu_health",outcome="ok"} 1"#,
            r#"gateway_node_calls_total{node="gpu-node-2",tool="get_gpu_health",outcome="timeout"} 1"#,
            r#"gateway_tool_call_duration_seconds_count{tool="get_gpu_health",mode="fan_out"} 1"#,
            "gateway_fan_out_nodes_count 1",
            "gateway_cached_agent_pods 3",
            "gateway_ready_agent_pods 2",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
