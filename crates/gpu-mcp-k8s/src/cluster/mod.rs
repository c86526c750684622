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
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};

mod convert;
pub use convert::{gpu_pod, node_facts};

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

#[cfg(test)]
mod tests;
