//! Watch-backed caches of what Kubernetes thinks of the GPU nodes: every Node (trimmed to its
//! GPU labels, taints, conditions, schedulability and GPU resources) and every Pod that requests
//! GPUs (trimmed to its GPU containers, phase and container states).
//!
//! Each cache is a kube-runtime watcher (list, then watch, re-list after `410 Gone` or a broken
//! stream) feeding a map of compact records; the full objects are never kept, and a pod that
//! requests no GPU is not kept at all, so memory follows the GPU part of the cluster, not its
//! size. Reads are map reads: nothing is listed per call.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};

/// The Kubernetes resource that counts whole GPUs (NVIDIA device plugin).
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";
/// The prefix of the MIG resources the device plugin advertises in its `mixed` strategy.
pub const MIG_RESOURCE_PREFIX: &str = "nvidia.com/mig-";
/// The prefix of the labels GPU feature discovery writes on a node.
pub const GPU_LABEL_PREFIX: &str = "nvidia.com/";
/// Longest condition or termination message kept per record (longer ones are cut).
pub const MESSAGE_LIMIT: usize = 512;

/// Whether `resource` is a GPU resource: `nvidia.com/gpu` or one of `nvidia.com/mig-*`.
pub fn is_gpu_resource(resource: &str) -> bool {
    resource == GPU_RESOURCE || resource.starts_with(MIG_RESOURCE_PREFIX)
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    /// Taint key.
    pub key: String,
    /// Taint value, when set.
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// A node condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Condition type (`Ready`, `MemoryPressure`, ...).
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason, when set.
    pub reason: Option<String>,
    /// What the kubelet or a node-problem detector wrote (untrusted text; cut to
    /// [`MESSAGE_LIMIT`]).
    pub message: Option<String>,
}

/// What the gateway keeps of one Node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeFacts {
    /// Node name.
    pub name: String,
    /// The `nvidia.com/*` labels (GPU feature discovery).
    pub gpu_labels: BTreeMap<String, String>,
    /// Taints.
    pub taints: Vec<Taint>,
    /// Conditions.
    pub conditions: Vec<Condition>,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// GPU resources of `status.capacity` (see [`is_gpu_resource`]).
    pub capacity: BTreeMap<String, i64>,
    /// GPU resources of `status.allocatable`.
    pub allocatable: BTreeMap<String, i64>,
}

/// The state of one container of a GPU pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerFacts {
    /// Container name.
    pub name: String,
    /// Whether it is an init container.
    pub init: bool,
    /// The GPU resources it requests (the request, else the limit, as Kubernetes does for
    /// extended resources).
    pub gpus: BTreeMap<String, i64>,
    /// `running`, `waiting`, `terminated`, or empty before the kubelet reported it.
    pub state: String,
    /// Why it waits or ended (`CrashLoopBackOff`, `OOMKilled`, `Error`, `Completed`, ...).
    pub reason: Option<String>,
    /// The exit code of the current termination.
    pub exit_code: Option<i32>,
    /// How many times the kubelet restarted it.
    pub restart_count: i32,
    /// The reason and exit code of the previous termination, when it restarted.
    pub last_termination: Option<(Option<String>, i32)>,
    /// The termination message the container wrote (untrusted text; cut to [`MESSAGE_LIMIT`]).
    pub message: Option<String>,
    /// When the current or last run started.
    pub started_at: Option<Timestamp>,
    /// When the current or last run ended.
    pub finished_at: Option<Timestamp>,
}

/// What the gateway keeps of one Pod that requests GPUs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GpuPod {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The node it is bound to (`spec.nodeName`), once scheduled.
    pub node: Option<String>,
    /// `status.phase` (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`), empty when unset.
    pub phase: String,
    /// `status.reason` (`Evicted`, `UnexpectedAdmissionError`, ...), when set.
    pub reason: Option<String>,
    /// Whether it is being deleted.
    pub terminating: bool,
    /// When it was created.
    pub created: Option<Timestamp>,
    /// When the kubelet started it.
    pub started: Option<Timestamp>,
    /// The GPUs the pod requests per resource: the larger of its app containers' sum and its
    /// largest init container, as the scheduler counts.
    pub gpus: BTreeMap<String, i64>,
    /// The containers that request GPUs.
    pub containers: Vec<ContainerFacts>,
}

impl GpuPod {
    /// Whether the pod holds its GPUs now: bound to a node and neither succeeded nor failed
    /// (what the scheduler counts against the node's allocatable).
    pub fn holds_gpus(&self) -> bool {
        self.node.is_some() && !matches!(self.phase.as_str(), "Succeeded" | "Failed")
    }

    /// Whole GPUs requested (`nvidia.com/gpu`).
    pub fn whole_gpus(&self) -> i64 {
        self.gpus.get(GPU_RESOURCE).copied().unwrap_or(0)
    }
}

/// Whether a cache has a complete view, and the last watch error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheState {
    /// The first list has been applied.
    pub synced: bool,
    /// The most recent watch error (for example `403 Forbidden` without the RBAC), cleared
    /// by the next successful list.
    pub last_error: Option<String>,
    /// Records held.
    pub len: usize,
}

/// Which GPU pods a page lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFilter {
    /// Only pods bound to this node.
    pub node: Option<String>,
    /// Only pods in this namespace.
    pub namespace: Option<String>,
    /// Only pods with this name.
    pub name: Option<String>,
}

impl PodFilter {
    fn admits(&self, pod: &GpuPod) -> bool {
        self.node
            .as_deref()
            .is_none_or(|n| pod.node.as_deref() == Some(n))
            && self.namespace.as_deref().is_none_or(|n| pod.namespace == n)
            && self.name.as_deref().is_none_or(|n| pod.name == n)
    }
}

/// One page of GPU pods, sorted by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodPage {
    /// The pods of this page.
    pub pods: Vec<GpuPod>,
    /// Pods the filter admits after the cursor, this page included.
    pub remaining: usize,
    /// Pods the filter admits in all.
    pub total: usize,
}

/// A pod's key: namespace, then name.
pub type PodKey = (String, String);

#[derive(Debug)]
struct Cache<K, V> {
    synced: AtomicBool,
    last_error: Mutex<Option<String>>,
    items: RwLock<BTreeMap<K, V>>,
}

impl<K: Ord, V> Default for Cache<K, V> {
    fn default() -> Self {
        Self {
            synced: AtomicBool::new(false),
            last_error: Mutex::new(None),
            items: RwLock::new(BTreeMap::new()),
        }
    }
}

impl<K: Ord, V> Cache<K, V> {
    fn filled(items: BTreeMap<K, V>) -> Self {
        Self {
            synced: AtomicBool::new(true),
            last_error: Mutex::new(None),
            items: RwLock::new(items),
        }
    }

    fn state(&self) -> CacheState {
        CacheState {
            synced: self.synced.load(Ordering::SeqCst),
            last_error: self.last_error.lock().clone(),
            len: self.items.read().len(),
        }
    }
}

/// Feeds `cache` from a watcher stream: `convert` keeps what is needed of an object, or says
/// it is not kept (`None`, and any earlier record of it is dropped).
async fn feed<T, K, V>(
    stream: impl Stream<Item = std::result::Result<watcher::Event<T>, watcher::Error>>,
    cache: Arc<Cache<K, V>>,
    what: &'static str,
    key: fn(&T) -> Option<K>,
    convert: fn(&T) -> Option<V>,
) where
    K: Ord,
{
    let mut stream = std::pin::pin!(stream);
    let mut buffer: Option<BTreeMap<K, V>> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(watcher::Event::Init) => buffer = Some(BTreeMap::new()),
            Ok(watcher::Event::InitApply(object)) => {
                if let (Some(buffer), Some(k), Some(v)) =
                    (buffer.as_mut(), key(&object), convert(&object))
                {
                    buffer.insert(k, v);
                }
            }
            Ok(watcher::Event::InitDone) => {
                if let Some(items) = buffer.take() {
                    *cache.items.write() = items;
                }
                if !cache.synced.swap(true, Ordering::SeqCst) {
                    tracing::info!(what, "cluster cache synced");
                }
                *cache.last_error.lock() = None;
            }
            Ok(watcher::Event::Apply(object)) => {
                let Some(k) = key(&object) else { continue };
                match convert(&object) {
                    Some(v) => cache.items.write().insert(k, v),
                    None => cache.items.write().remove(&k),
                };
            }
            Ok(watcher::Event::Delete(object)) => {
                if let Some(k) = key(&object) {
                    cache.items.write().remove(&k);
                }
            }
            Err(err) => {
                tracing::warn!(what, error = %err, "cluster watch failed; retrying");
                *cache.last_error.lock() = Some(err.to_string());
            }
        }
    }
}

/// Watch-backed caches of Nodes and of Pods that request GPUs, cluster-wide.
///
/// [`ClusterCache::start`] runs two watchers (nodes; pods in every namespace) with the default
/// backoff; [`ClusterCache::fixed`] holds given records (no cluster). Reads never reach the API
/// server. Dropping the cache stops the watchers.
pub struct ClusterCache {
    nodes: Arc<Cache<String, NodeFacts>>,
    pods: Arc<Cache<PodKey, GpuPod>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for ClusterCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCache")
            .field("nodes", &self.nodes.state())
            .field("pods", &self.pods.state())
            .finish()
    }
}

impl Drop for ClusterCache {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl ClusterCache {
    /// Start watching Nodes and Pods with `client`. Must be called inside a Tokio runtime.
    ///
    /// Needs `get, list, watch` on `nodes` and `list, watch` on `pods` in every namespace.
    pub fn start(client: kube::Client) -> Result<ClusterCache> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let nodes = Arc::new(Cache::default());
        let pods = Arc::new(Cache::default());
        let node_stream =
            watcher(Api::<Node>::all(client.clone()), watcher::Config::default()).default_backoff();
        let pod_stream =
            watcher(Api::<Pod>::all(client), watcher::Config::default()).default_backoff();
        let tasks = vec![
            runtime.spawn(feed(
                node_stream,
                Arc::clone(&nodes),
                "nodes",
                |n: &Node| n.metadata.name.clone(),
                |n| Some(node_facts(n)),
            )),
            runtime.spawn(feed(
                pod_stream,
                Arc::clone(&pods),
                "gpu pods",
                pod_key,
                gpu_pod,
            )),
        ];
        Ok(ClusterCache { nodes, pods, tasks })
    }

    /// A cache holding `nodes` and `pods`, synced, watching nothing.
    pub fn fixed(nodes: Vec<NodeFacts>, pods: Vec<GpuPod>) -> ClusterCache {
        ClusterCache {
            nodes: Arc::new(Cache::filled(
                nodes.into_iter().map(|n| (n.name.clone(), n)).collect(),
            )),
            pods: Arc::new(Cache::filled(
                pods.into_iter()
                    .map(|p| ((p.namespace.clone(), p.name.clone()), p))
                    .collect(),
            )),
            tasks: Vec::new(),
        }
    }

    /// The node cache's state.
    pub fn nodes_state(&self) -> CacheState {
        self.nodes.state()
    }

    /// The GPU pod cache's state.
    pub fn pods_state(&self) -> CacheState {
        self.pods.state()
    }

    /// Wait until both caches have applied their first list, at most `timeout`.
    pub async fn wait_until_synced(&self, timeout: Duration) -> Result<()> {
        let synced = || self.nodes.state().synced && self.pods.state().synced;
        let wait = async {
            while !synced() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::SyncTimeout(timeout))
    }

    /// The node named `name`, when the cache knows it.
    pub fn node(&self, name: &str) -> Option<NodeFacts> {
        self.nodes.items.read().get(name).cloned()
    }

    /// The node names the cache knows, sorted.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.items.read().keys().cloned().collect()
    }

    /// Every GPU pod bound to `node`, sorted by namespace and name.
    pub fn pods_on(&self, node: &str) -> Vec<GpuPod> {
        self.pods
            .items
            .read()
            .values()
            .filter(|p| p.node.as_deref() == Some(node))
            .cloned()
            .collect()
    }

    /// The pod `namespace/name`, when it requests GPUs and the cache knows it.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<GpuPod> {
        self.pods
            .items
            .read()
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// At most `limit` GPU pods the filter admits after `after`, sorted by namespace and name,
    /// with how many remain and how many there are in all.
    pub fn pod_page(&self, filter: &PodFilter, after: Option<&PodKey>, limit: usize) -> PodPage {
        let items = self.pods.items.read();
        let total = items.values().filter(|p| filter.admits(p)).count();
        let range = match after {
            Some(k) => items.range::<PodKey, _>((Bound::Excluded(k), Bound::Unbounded)),
            None => items.range::<PodKey, _>(..),
        };
        let mut page = PodPage {
            total,
            ..PodPage::default()
        };
        for pod in range.map(|(_, p)| p).filter(|p| filter.admits(p)) {
            page.remaining += 1;
            if page.pods.len() < limit {
                page.pods.push(pod.clone());
            }
        }
        page
    }
}

fn pod_key(pod: &Pod) -> Option<PodKey> {
    Some((
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone()?,
    ))
}

/// `text` cut to [`MESSAGE_LIMIT`] bytes on a character boundary.
fn bounded(text: &str) -> String {
    if text.len() <= MESSAGE_LIMIT {
        return text.to_owned();
    }
    let mut end = MESSAGE_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// An extended-resource quantity as a whole number (they are integers by the API's rule).
fn count(quantity: &Quantity) -> Option<i64> {
    quantity.0.trim().parse().ok()
}

fn gpu_resources(map: Option<&BTreeMap<String, Quantity>>) -> BTreeMap<String, i64> {
    map.into_iter()
        .flatten()
        .filter(|(k, _)| is_gpu_resource(k))
        .filter_map(|(k, q)| Some((k.clone(), count(q)?)))
        .collect()
}

/// What the gateway keeps of a Node.
pub fn node_facts(node: &Node) -> NodeFacts {
    let spec = node.spec.as_ref();
    let status = node.status.as_ref();
    NodeFacts {
        name: node.metadata.name.clone().unwrap_or_default(),
        gpu_labels: node
            .metadata
            .labels
            .iter()
            .flatten()
            .filter(|(k, _)| k.starts_with(GPU_LABEL_PREFIX))
            .map(|(k, v)| (k.clone(), bounded(v)))
            .collect(),
        taints: spec
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .map(|t| Taint {
                key: t.key.clone(),
                value: t.value.clone().filter(|v| !v.is_empty()),
                effect: t.effect.clone(),
            })
            .collect(),
        conditions: status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .map(|c| Condition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone().filter(|r| !r.is_empty()),
                message: c.message.as_deref().filter(|m| !m.is_empty()).map(bounded),
            })
            .collect(),
        unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
        capacity: gpu_resources(status.and_then(|s| s.capacity.as_ref())),
        allocatable: gpu_resources(status.and_then(|s| s.allocatable.as_ref())),
    }
}

fn container_gpus(container: &Container) -> BTreeMap<String, i64> {
    let resources = container.resources.as_ref();
    let mut gpus = gpu_resources(resources.and_then(|r| r.limits.as_ref()));
    // A request, when given, is what the scheduler counts; it must equal the limit anyway.
    gpus.extend(gpu_resources(resources.and_then(|r| r.requests.as_ref())));
    gpus.retain(|_, n| *n > 0);
    gpus
}

fn container_state(facts: &mut ContainerFacts, status: &ContainerStatus) {
    facts.restart_count = status.restart_count;
    if let Some(state) = status.state.as_ref() {
        if let Some(running) = state.running.as_ref() {
            facts.state = "running".into();
            facts.started_at = running.started_at.as_ref().map(|t| t.0);
        } else if let Some(t) = state.terminated.as_ref() {
            facts.state = "terminated".into();
            facts.reason = t.reason.clone();
            facts.exit_code = Some(t.exit_code);
            facts.message = t.message.as_deref().filter(|m| !m.is_empty()).map(bounded);
            facts.started_at = t.started_at.as_ref().map(|t| t.0);
            facts.finished_at = t.finished_at.as_ref().map(|t| t.0);
        } else if let Some(w) = state.waiting.as_ref() {
            facts.state = "waiting".into();
            facts.reason = w.reason.clone();
            facts.message = w.message.as_deref().filter(|m| !m.is_empty()).map(bounded);
        }
    }
    facts.last_termination = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| (t.reason.clone(), t.exit_code));
}

/// What the gateway keeps of a Pod: `None` when it requests no GPU.
pub fn gpu_pod(pod: &Pod) -> Option<GpuPod> {
    let spec = pod.spec.as_ref()?;
    let status = pod.status.as_ref();
    let statuses = |init: bool| {
        status
            .and_then(|s| {
                if init {
                    s.init_container_statuses.as_ref()
                } else {
                    s.container_statuses.as_ref()
                }
            })
            .into_iter()
            .flatten()
    };
    let mut containers = Vec::new();
    let mut sum: BTreeMap<String, i64> = BTreeMap::new();
    let mut init_max: BTreeMap<String, i64> = BTreeMap::new();
    let all = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| (c, true))
        .chain(spec.containers.iter().map(|c| (c, false)));
    for (container, init) in all {
        let gpus = container_gpus(container);
        if gpus.is_empty() {
            continue;
        }
        for (resource, n) in &gpus {
            if init {
                let max = init_max.entry(resource.clone()).or_default();
                *max = (*max).max(*n);
            } else {
                *sum.entry(resource.clone()).or_default() += n;
            }
        }
        let mut facts = ContainerFacts {
            name: container.name.clone(),
            init,
            gpus,
            ..ContainerFacts::default()
        };
        if let Some(s) = statuses(init).find(|s| s.name == container.name) {
            container_state(&mut facts, s);
        }
        containers.push(facts);
    }
    if containers.is_empty() {
        return None;
    }
    for (resource, n) in init_max {
        let total = sum.entry(resource).or_default();
        *total = (*total).max(n);
    }
    Some(GpuPod {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone()?,
        node: spec.node_name.clone().filter(|n| !n.is_empty()),
        phase: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        reason: status.and_then(|s| s.reason.clone()),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        started: status.and_then(|s| s.start_time.as_ref()).map(|t| t.0),
        gpus: sum,
        containers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gpu_pod_json(name: &str, node: &str, gpus: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ml-training", "managedFields": [{"manager": "x"}]},
            "spec": {"nodeName": node,
                "initContainers": [{"name": "warmup", "resources": {"limits": {"nvidia.com/gpu": "2"}}}],
                "containers": [
                    {"name": "worker", "resources": {"limits": {"nvidia.com/gpu": gpus}}},
                    {"name": "sidecar", "resources": {"requests": {"cpu": "1"}}},
                    {"name": "mig", "resources": {"requests": {"nvidia.com/mig-1g.10gb": "1"},
                                                   "limits": {"nvidia.com/mig-1g.10gb": "1"}}}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "worker", "ready": false, "restartCount": 3, "image": "i", "imageID": "",
                 "state": {"terminated": {"exitCode": 139, "reason": "Error", "message": "x".repeat(2000)}},
                 "lastState": {"terminated": {"exitCode": 1, "reason": "OOMKilled"}}}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_pod_keeps_only_its_gpu_containers_and_counts_like_the_scheduler() {
        let pod = gpu_pod(&gpu_pod_json("a", "n1", "1")).unwrap();
        assert_eq!(pod.node.as_deref(), Some("n1"));
        assert_eq!(pod.phase, "Running");
        let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["warmup", "worker", "mig"]);
        // The init container's 2 GPUs exceed the app containers' 1.
        assert_eq!(pod.whole_gpus(), 2);
        assert_eq!(pod.gpus.get("nvidia.com/mig-1g.10gb"), Some(&1));
        let worker = &pod.containers[1];
        assert_eq!(worker.state, "terminated");
        assert_eq!(worker.exit_code, Some(139));
        assert_eq!(worker.restart_count, 3);
        assert_eq!(worker.last_termination, Some((Some("OOMKilled".into()), 1)));
        assert!(worker.message.as_ref().unwrap().len() <= MESSAGE_LIMIT + 4);
        assert!(pod.holds_gpus());

        let bigger = gpu_pod(&gpu_pod_json("b", "n1", "4")).unwrap();
        assert_eq!(bigger.whole_gpus(), 4);
    }

    #[test]
    fn a_pod_without_gpus_is_not_kept() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1",
                "nvidia.com/gpu": "0"}}}]}
        }))
        .unwrap();
        assert!(gpu_pod(&pod).is_none());
    }

    #[test]
    fn a_node_keeps_gpu_labels_taints_conditions_and_gpu_resources() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "gpu-1", "labels": {"nvidia.com/gpu.product": "NVIDIA-H100",
                "kubernetes.io/os": "linux"}},
            "spec": {"unschedulable": true, "taints": [
                {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]},
            "status": {"capacity": {"nvidia.com/gpu": "8", "cpu": "96"},
                "allocatable": {"nvidia.com/gpu": "7", "nvidia.com/mig-1g.10gb": "x"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": ""}]}
        }))
        .unwrap();
        let facts = node_facts(&node);
        assert_eq!(facts.name, "gpu-1");
        assert_eq!(facts.gpu_labels.len(), 1);
        assert!(facts.unschedulable);
        assert_eq!(facts.taints.len(), 2);
        assert_eq!(facts.taints[1].value, None);
        assert_eq!(facts.capacity, BTreeMap::from([(GPU_RESOURCE.into(), 8)]));
        assert_eq!(
            facts.allocatable,
            BTreeMap::from([(GPU_RESOURCE.into(), 7)])
        );
        assert_eq!(facts.conditions[0].message, None);
    }

    #[test]
    fn pages_follow_namespace_then_name() {
        let pod = |ns: &str, name: &str, node: &str| GpuPod {
            namespace: ns.into(),
            name: name.into(),
            node: Some(node.into()),
            ..GpuPod::default()
        };
        let cache = ClusterCache::fixed(
            vec![],
            vec![
                pod("a-b", "x", "n1"),
                pod("a", "y", "n2"),
                pod("a", "x", "n1"),
                pod("b", "z", "n1"),
            ],
        );
        let all = PodFilter::default();
        let first = cache.pod_page(&all, None, 2);
        let names: Vec<String> = first
            .pods
            .iter()
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .collect();
        assert_eq!(names, ["a/x", "a/y"]);
        assert_eq!((first.remaining, first.total), (4, 4));
        let after = ("a".to_owned(), "y".to_owned());
        let second = cache.pod_page(&all, Some(&after), 2);
        assert_eq!(second.pods[0].namespace, "a-b");
        assert_eq!(second.remaining, 2);
        let on_n1 = PodFilter {
            node: Some("n1".into()),
            ..PodFilter::default()
        };
        assert_eq!(cache.pod_page(&on_n1, None, 10).total, 3);
        assert_eq!(cache.pods_on("n2").len(), 1);
        assert!(cache.pods_state().synced);
    }
}
