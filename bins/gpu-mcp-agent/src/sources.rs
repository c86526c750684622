//! The start-up check of the attribution sources the agent is configured with (the kubelet's
//! pod-resources socket, the host's `/proc`), whatever the GPU backend: one log line per
//! source, and the `agent_attribution_source_up` and `agent_attribution_source_entries`
//! gauges on `/metrics`, so a wrong mount shows when the agent is deployed.

use std::path::PathBuf;
use std::time::Duration;

use gpu_mcp_attribution::{PodResourcesClient, ProcRoot, SourceCheck};
use gpu_mcp_model::AttributionSource;
use gpu_mcp_transport::Metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// Labels of `agent_attribution_source_up`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct UpLabels {
    /// `pod_resources` or `cgroup` (the host's `/proc`), as `get_gpu_processes` names them.
    source: String,
    /// `ok`, or why the source cannot be used (`missing`, `permission_denied`, ...).
    reason: String,
}

/// Labels of `agent_attribution_source_entries`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

/// The gauges of the start-up check, registered on the agent's `/metrics`.
#[derive(Debug, Clone)]
pub(crate) struct SourceGauges {
    up: Family<UpLabels, Gauge>,
    entries: Family<SourceLabels, Gauge>,
}

impl SourceGauges {
    /// Registers the gauges (no series until a check is recorded).
    pub(crate) fn register(metrics: &Metrics) -> Self {
        let gauges = Self {
            up: Family::default(),
            entries: Family::default(),
        };
        metrics.register(
            "agent_attribution_source_up",
            "Whether an attribution source answered the agent's start-up check (1) or not (0), \
             by source (pod_resources, cgroup) and reason (ok, or why not); \
             no series for a source that is not configured",
            gauges.up.clone(),
        );
        metrics.register(
            "agent_attribution_source_entries",
            "What an attribution source showed at the agent's start-up check: the pods the \
             kubelet's List answered with (pod_resources), the processes under the host's /proc \
             (cgroup)",
            gauges.entries.clone(),
        );
        gauges
    }

    fn record(&self, check: &SourceCheck) {
        let source = check.source.as_str().to_owned();
        self.up
            .get_or_create(&UpLabels {
                source: source.clone(),
                reason: check.reason().to_owned(),
            })
            .set(i64::from(check.is_ok()));
        if let Some(n) = check.entries() {
            self.entries
                .get_or_create(&SourceLabels { source })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

/// The attribution sources as configured; `None` leaves a source out.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub(crate) pod_resources_socket: Option<PathBuf>,
    pub(crate) host_proc: Option<PathBuf>,
    /// The deadline of each source's check.
    pub(crate) deadline: Duration,
    /// The backend simulates its processes (mock): the sources are checked but not consulted.
    pub(crate) simulated: bool,
}

impl Sources {
    /// Checks both sources at once, logs one line per source (a source that is off included)
    /// and records the checks in `gauges`. Returns the checks of the configured sources.
    pub(crate) async fn check(&self, gauges: Option<&SourceGauges>) -> Vec<SourceCheck> {
        let pod_resources = async {
            match &self.pod_resources_socket {
                Some(p) => Some(PodResourcesClient::new(p, self.deadline).check().await),
                None => None,
            }
        };
        let host_proc = async {
            match &self.host_proc {
                Some(p) => Some(ProcRoot::new(p, self.deadline).check().await),
                None => None,
            }
        };
        let (pod_resources, host_proc) = tokio::join!(pod_resources, host_proc);
        let mut checks = Vec::new();
        for (source, check) in [
            (AttributionSource::PodResources, pod_resources),
            (AttributionSource::Cgroup, host_proc),
        ] {
            let Some(check) = check else {
                tracing::info!(
                    source = source.as_str(),
                    reason = "not_configured",
                    "attribution source off: {}",
                    match source {
                        AttributionSource::PodResources =>
                            "no kubelet pod-resources socket is configured",
                        _ => "no host /proc is configured",
                    }
                );
                continue;
            };
            self.log(&check);
            if let Some(g) = gauges {
                g.record(&check);
            }
            checks.push(check);
        }
        checks
    }

    fn log(&self, check: &SourceCheck) {
        let consulted = if self.simulated {
            "; not consulted while the mock backend simulates the GPU processes"
        } else {
            ""
        };
        let (source, reason, path) = (check.source.as_str(), check.reason(), check.path.display());
        match check.entries() {
            Some(entries) => tracing::info!(
                source,
                reason,
                path = %path,
                entries,
                "attribution source ready: {check}{consulted}"
            ),
            None => tracing::warn!(
                source,
                reason,
                path = %path,
                "attribution source unusable: {check}{consulted}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checks_are_recorded_as_gauges_and_unconfigured_sources_have_none() {
        let dir =
            std::env::temp_dir().join(format!("gpu-mcp-agent-sources-{}", std::process::id()));
        let proc_root = dir.join("proc");
        std::fs::create_dir_all(proc_root.join("1")).unwrap();
        std::fs::write(proc_root.join("1").join("cgroup"), "0::/init.scope\n").unwrap();
        let metrics = Metrics::new();
        let gauges = SourceGauges::register(&metrics);
        let sources = Sources {
            pod_resources_socket: Some(dir.join("pod-resources").join("kubelet.sock")),
            host_proc: Some(proc_root),
            deadline: Duration::from_secs(5),
            simulated: true,
        };
        let checks = sources.check(Some(&gauges)).await;
        assert_eq!(checks.len(), 2);
        let text = metrics.encode();
        for line in [
            "agent_attribution_source_up{source=\"pod_resources\",reason=\"missing\"} 0",
            "agent_attribution_source_up{source=\"cgroup\",reason=\"ok\"} 1",
            "agent_attribution_source_entries{source=\"cgroup\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert!(
            !text.contains("agent_attribution_source_entries{source=\"pod_resources\"}"),
            "{text}"
        );

        let off = Sources {
            pod_resources_socket: None,
            host_proc: None,
            ..sources
        };
        let metrics = Metrics::new();
        assert!(
            off.check(Some(&SourceGauges::register(&metrics)))
                .await
                .is_empty()
        );
        assert!(!metrics.encode().contains("agent_attribution_source_up{"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
