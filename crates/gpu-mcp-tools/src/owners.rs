//! Who owns the GPU processes a tool names: the attribution sources of this agent (the
//! kubelet's pod-resources API, the host's `/proc`, or the mock fleet's own allocations), read
//! once per call and combined by `gpu_mcp_attribution::attribute`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use gpu_mcp_attribution::{
    CgroupLookup, DeviceAllocations, GpuProcessRef, HostProcess, PodResourcesClient, ProcRoot,
    attribute,
};
use gpu_mcp_backend::GpuBackend;
use gpu_mcp_model::processes::{AttributionStatus, SourceState};
use gpu_mcp_model::{AttributionSource, GpuSnapshot, NodeSnapshot, ProcessOwner};

/// The attribution sources an agent is configured with.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pod_resources: Option<PodResourcesClient>,
    proc_root: Option<ProcRoot>,
    timeout: Duration,
}

/// A process to attribute: its pid and the GPU (and MIG instance) it was seen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Query {
    /// Host pid.
    pub(crate) pid: u32,
    /// The GPU index, when known.
    pub(crate) gpu_index: Option<u32>,
    /// The MIG GPU instance, when known.
    pub(crate) gpu_instance: Option<u32>,
    /// The MIG compute instance, when known.
    pub(crate) compute_instance: Option<u32>,
}

/// What the sources said on one call.
#[derive(Debug, Clone, Default)]
pub(crate) struct Attribution {
    /// Every source and how it fared.
    pub(crate) statuses: Vec<AttributionStatus>,
    /// Which container holds which device, when a source of allocations answered.
    pub(crate) allocations: Option<DeviceAllocations>,
    /// One owner per query, in order.
    pub(crate) owners: Vec<ProcessOwner>,
    /// One name per query, in order, when a source knows it.
    pub(crate) names: Vec<Option<String>>,
}

impl Attribution {
    /// The holders of a device id (empty when no allocation source answered).
    pub(crate) fn holders(&self, device_id: &str) -> Vec<gpu_mcp_model::PodRef> {
        self.allocations
            .as_ref()
            .map(|a| a.holders(device_id).to_vec())
            .unwrap_or_default()
    }

    /// One sentence per source that did not answer.
    pub(crate) fn problems(&self) -> Vec<String> {
        self.statuses
            .iter()
            .filter(|s| s.state == SourceState::Unavailable)
            .map(|s| {
                format!(
                    "{} unavailable: {}",
                    source_words(s.source),
                    s.detail.as_deref().unwrap_or("no detail")
                )
            })
            .collect()
    }
}

/// A source in words.
pub(crate) fn source_words(source: AttributionSource) -> &'static str {
    match source {
        AttributionSource::PodResources => "The kubelet's pod-resources API",
        AttributionSource::Cgroup => "The host's /proc",
        AttributionSource::MockFleet => "The mock fleet's allocations",
    }
}

fn status(
    source: AttributionSource,
    state: SourceState,
    detail: Option<String>,
) -> AttributionStatus {
    AttributionStatus {
        source,
        state,
        detail,
    }
}

/// The device ids a process's GPU may be allocated under, most specific first: its MIG device
/// UUID, the GPU UUID, then the GPU index (the device plugin's index strategy).
fn device_ids(snapshot: Option<&NodeSnapshot>, q: &Query) -> Vec<String> {
    let Some(g) = q
        .gpu_index
        .and_then(|i| snapshot?.gpus.iter().find(|g| g.index == i))
    else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    if let Some(mig) = mig_uuid(g, q.gpu_instance, q.compute_instance) {
        ids.push(mig);
    }
    if let Some(u) = g.uuid.value() {
        ids.push(u.clone());
    }
    ids.push(g.index.to_string());
    ids
}

/// The UUID of the MIG device with these instance ids on `g`, when there is one.
pub(crate) fn mig_uuid(g: &GpuSnapshot, gi: Option<u32>, ci: Option<u32>) -> Option<String> {
    let gi = gi?;
    g.mig
        .instances
        .value()?
        .iter()
        .find(|m| {
            m.gpu_instance_id.get() == Some(gi)
                && ci.is_none_or(|c| m.compute_instance_id.get() == Some(c))
        })
        .and_then(|m| m.uuid.value().cloned())
}

impl Sources {
    /// Sources from the agent's configuration; `None` leaves a source out.
    pub(crate) fn new(
        pod_resources_socket: Option<PathBuf>,
        host_proc: Option<PathBuf>,
        timeout: Duration,
    ) -> Self {
        Self {
            pod_resources: pod_resources_socket.map(|p| PodResourcesClient::new(p, timeout)),
            proc_root: host_proc.map(|p| ProcRoot::new(p, timeout)),
            timeout,
        }
    }

    /// Reads the sources and attributes each query. Never fails: a source that cannot answer
    /// is a status, and its part of each owner is left out.
    pub(crate) async fn attribute(
        &self,
        backend: &dyn GpuBackend,
        snapshot: Option<&NodeSnapshot>,
        queries: &[Query],
    ) -> Attribution {
        let (statuses, allocations, host, fleet_names) = match backend.fleet_allocations() {
            Some(fleet) => {
                let not_consulted = Some(
                    "not consulted: the mock backend's processes are simulated, so only its own allocations name their pods"
                        .to_owned(),
                );
                let allocations = DeviceAllocations::from_holders(
                    AttributionSource::MockFleet,
                    fleet.holders.iter().map(|(id, p)| (id.as_str(), p.clone())),
                );
                (
                    vec![
                        status(AttributionSource::MockFleet, SourceState::Ok, None),
                        status(
                            AttributionSource::PodResources,
                            SourceState::NotConfigured,
                            not_consulted.clone(),
                        ),
                        status(
                            AttributionSource::Cgroup,
                            SourceState::NotConfigured,
                            not_consulted,
                        ),
                    ],
                    Some(allocations),
                    None,
                    Some(fleet.process_names),
                )
            }
            None => {
                let pids: Vec<u32> = queries.iter().map(|q| q.pid).collect();
                let ((pr_status, allocations), (cg_status, host)) =
                    tokio::join!(self.read_pod_resources(), self.read_proc(&pids));
                (vec![pr_status, cg_status], allocations, host, None)
            }
        };
        let ids: Vec<Vec<String>> = queries.iter().map(|q| device_ids(snapshot, q)).collect();
        let id_refs: Vec<Vec<&str>> = ids
            .iter()
            .map(|v| v.iter().map(String::as_str).collect())
            .collect();
        let refs: Vec<GpuProcessRef<'_>> = queries
            .iter()
            .zip(&id_refs)
            .map(|(q, ids)| GpuProcessRef {
                pid: q.pid,
                device_ids: ids,
            })
            .collect();
        let cgroups: Option<Vec<CgroupLookup>> = host
            .as_ref()
            .map(|h| h.iter().map(|p| p.cgroup.clone()).collect());
        let owners = attribute(&refs, allocations.as_ref(), cgroups.as_deref());
        let names = queries
            .iter()
            .enumerate()
            .map(|(i, q)| match (&fleet_names, &host) {
                (Some(n), _) => n.get(&q.pid).cloned(),
                (None, Some(h)) => h.get(i).and_then(|p| p.name.clone()),
                (None, None) => None,
            })
            .collect();
        Attribution {
            statuses,
            allocations,
            owners,
            names,
        }
    }

    async fn read_pod_resources(&self) -> (AttributionStatus, Option<DeviceAllocations>) {
        let source = AttributionSource::PodResources;
        let Some(client) = &self.pod_resources else {
            return (
                status(
                    source,
                    SourceState::NotConfigured,
                    Some("no kubelet pod-resources socket is configured".to_owned()),
                ),
                None,
            );
        };
        let socket = client.socket().to_owned();
        let exists = tokio::time::timeout(self.timeout, tokio::fs::try_exists(&socket)).await;
        match exists {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                return (
                    status(
                        source,
                        SourceState::NotConfigured,
                        Some(format!(
                            "no kubelet pod-resources socket at {} (the kubelet's pod-resources directory is not mounted)",
                            socket.display()
                        )),
                    ),
                    None,
                );
            }
            Ok(Err(e)) => {
                return (
                    status(
                        source,
                        SourceState::Unavailable,
                        Some(format!("cannot look at {}: {e}", socket.display())),
                    ),
                    None,
                );
            }
            Err(_) => {
                return (
                    status(
                        source,
                        SourceState::Unavailable,
                        Some(format!(
                            "looking at {} did not finish within {:?}",
                            socket.display(),
                            self.timeout
                        )),
                    ),
                    None,
                );
            }
        }
        match client.gpu_allocations().await {
            Ok(a) => (status(source, SourceState::Ok, None), Some(a)),
            Err(e) => (
                status(source, SourceState::Unavailable, Some(e.to_string())),
                None,
            ),
        }
    }

    async fn read_proc(&self, pids: &[u32]) -> (AttributionStatus, Option<Vec<HostProcess>>) {
        let source = AttributionSource::Cgroup;
        let Some(root) = &self.proc_root else {
            return (
                status(
                    source,
                    SourceState::NotConfigured,
                    Some("no host /proc is configured".to_owned()),
                ),
                None,
            );
        };
        if pids.is_empty() {
            return (status(source, SourceState::Ok, None), Some(Vec::new()));
        }
        let found = match root.inspect(pids).await {
            Ok(f) => f,
            Err(e) => {
                return (
                    status(source, SourceState::Unavailable, Some(e.to_string())),
                    None,
                );
            }
        };
        let unreadable = found
            .iter()
            .filter_map(|p| match &p.cgroup {
                CgroupLookup::Unreadable(why) => Some(why.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>();
        if unreadable.len() == found.len() {
            let first = unreadable.first().copied().unwrap_or_default();
            return (
                status(
                    source,
                    SourceState::Unavailable,
                    Some(format!(
                        "none of the {} process(es) could be read under {} (is it the host's /proc?): {first}",
                        found.len(),
                        root.root().display()
                    )),
                ),
                Some(found),
            );
        }
        (status(source, SourceState::Ok, None), Some(found))
    }
}

/// A compact label for a process in a sentence: `python3, ml-training/job-0/worker`, or the
/// pod's candidates, or nothing known.
pub(crate) fn label(name: Option<&str>, owner: &ProcessOwner) -> Option<String> {
    let who = match (&owner.pod, owner.candidates.as_slice()) {
        (Some(p), _) => Some(p.path()),
        (None, []) => owner.pod_uid.as_ref().map(|u| format!("pod uid {u}")),
        (None, many) => Some(format!(
            "one of {}",
            many.iter().map(|p| p.path()).collect::<Vec<_>>().join(", ")
        )),
    };
    match (name, who) {
        (Some(n), Some(w)) => Some(format!("{n}, {w}")),
        (Some(n), None) => Some(n.to_owned()),
        (None, Some(w)) => Some(w),
        (None, None) => None,
    }
}

/// Labels by pid from an attribution of `queries`, for the health rules' sentences.
pub(crate) fn labels(queries: &[Query], a: &Attribution) -> BTreeMap<(u32, u32), String> {
    queries
        .iter()
        .zip(a.owners.iter().zip(&a.names))
        .filter_map(|(q, (owner, name))| {
            let l = label(name.as_deref(), owner)?;
            Some(((q.gpu_index?, q.pid), l))
        })
        .collect()
}

/// The processes of one GPU to attribute.
pub(crate) fn gpu_queries(g: &GpuSnapshot) -> Vec<Query> {
    g.processes
        .value()
        .into_iter()
        .flatten()
        .map(|p| Query {
            pid: p.pid,
            gpu_index: Some(g.index),
            gpu_instance: p.gpu_instance,
            compute_instance: p.compute_instance,
        })
        .collect()
}
