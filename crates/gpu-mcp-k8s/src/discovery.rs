//! Watch-backed discovery of agent pods (a kube-runtime reflector cache).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

use crate::endpoint::{AgentEndpoint, NodeDirectory};
use crate::error::{Error, Result};
use crate::events::{FleetEvent, FleetEvents, NoEvents};
use parking_lot::{Mutex, RwLock};

/// Namespace the agents run in by default.
pub const DEFAULT_NAMESPACE: &str = "gpu-diagnostics";
/// Label selector that matches the project's pods by default.
pub const DEFAULT_LABEL_SELECTOR: &str = "app.kubernetes.io/name=k8s-gpu-mcp-server";
/// Extra selector term that keeps only agent pods (not the gateway's own pods).
pub const AGENT_COMPONENT_SELECTOR: &str = "app.kubernetes.io/component=agent";
/// Container name preferred for exec when a pod has several containers.
pub const DEFAULT_AGENT_CONTAINER: &str = "agent";

/// What [`Discovery`] watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Namespace of the agent pods.
    pub namespace: String,
    /// Label selector of the agent pods.
    pub label_selector: String,
    /// Narrow the selector with [`AGENT_COMPONENT_SELECTOR`].
    pub agent_component_only: bool,
    /// The agent container name, used for exec and to find the MCP port.
    pub container: String,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            label_selector: DEFAULT_LABEL_SELECTOR.to_owned(),
            agent_component_only: false,
            container: DEFAULT_AGENT_CONTAINER.to_owned(),
        }
    }
}

impl DiscoveryConfig {
    /// The full label selector sent to the API server.
    pub fn selector(&self) -> String {
        let base = self.label_selector.trim();
        if !self.agent_component_only {
            return base.to_owned();
        }
        if base.is_empty() {
            AGENT_COMPONENT_SELECTOR.to_owned()
        } else {
            format!("{base},{AGENT_COMPONENT_SELECTOR}")
        }
    }

    fn validate(&self) -> Result<()> {
        let ns = &self.namespace;
        let valid_ns = !ns.is_empty()
            && ns.len() <= 63
            && ns
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !ns.starts_with('-')
            && !ns.ends_with('-');
        if !valid_ns {
            return Err(Error::InvalidDiscoveryConfig(format!(
                "namespace {ns:?} is not a DNS-1123 label"
            )));
        }
        if self.selector().is_empty() {
            return Err(Error::InvalidDiscoveryConfig(
                "the label selector is empty; it would match every pod".to_owned(),
            ));
        }
        Ok(())
    }
}

type Index = Arc<BTreeMap<String, AgentEndpoint>>;

#[derive(Debug, Default)]
struct Shared {
    synced: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// One endpoint per node, rebuilt from the store after every applied change.
    index: RwLock<Index>,
    /// Moves when the index's node names change.
    node_set: tokio::sync::watch::Sender<u64>,
}

/// A watch-backed cache of the agent pods in one namespace.
///
/// A background task runs a kube-runtime watcher with the default backoff; it lists, then
/// watches, and re-lists after a `410 Gone` or a broken stream.
/// Reads never touch the API server: a per-node index is rebuilt from the reflector store
/// after each applied change, so a lookup is a map read.
/// [`NodeDirectory::node_set_changes`] moves when that index gains or loses a node, not when
/// a pod's status changes.
/// Dropping the `Discovery` stops the task.
pub struct Discovery {
    store: Store<Pod>,
    shared: Arc<Shared>,
    synced_rx: tokio::sync::watch::Receiver<bool>,
    config: DiscoveryConfig,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("config", &self.config)
            .field("synced", &self.is_synced())
            .field("pods", &self.store.len())
            .finish()
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Discovery {
    /// Start watching agent pods with `client`. Must be called inside a Tokio runtime.
    pub fn start(client: kube::Client, config: DiscoveryConfig) -> Result<Discovery> {
        Self::start_with_events(client, config, Arc::new(NoEvents))
    }

    /// [`Discovery::start`], reporting to `events` when the watch fails after working (or
    /// before its first list) and when it lists again after a failure: once per change, not
    /// once per retry.
    pub fn start_with_events(
        client: kube::Client,
        config: DiscoveryConfig,
        events: Arc<dyn FleetEvents>,
    ) -> Result<Discovery> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let api: Api<Pod> = Api::namespaced(client, &config.namespace);
        let (store, writer) = reflector::store::<Pod>();
        let shared = Arc::new(Shared::default());
        let watch_config = watcher::Config::default().labels(&config.selector());
        let stream = watcher(api, watch_config).default_backoff().reflect(writer);
        let task_shared = Arc::clone(&shared);
        let task_store = store.clone();
        let container = config.container.clone();
        let namespace = config.namespace.clone();
        let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
        let task = runtime.spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(watcher::Event::InitDone) => {
                        rebuild_index(&task_shared, &task_store, &container);
                        if !task_shared.synced.swap(true, Ordering::SeqCst) {
                            tracing::info!(%namespace, "agent discovery synced");
                        }
                        synced_tx.send_replace(true);
                        if set_last_error(&task_shared, None) {
                            events.observe(FleetEvent::WatchRestored);
                        }
                    }
                    Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
                        rebuild_index(&task_shared, &task_store, &container);
                    }
                    // A re-list is buffered by the store and swapped in at InitDone.
                    Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                    Err(err) => {
                        tracing::warn!(%namespace, error = %err, "agent pod watch failed; retrying");
                        let error = err.to_string();
                        if !set_last_error(&task_shared, Some(error.clone())) {
                            events.observe(FleetEvent::WatchLost { error });
                        }
                    }
                }
            }
        });
        Ok(Discovery {
            store,
            shared,
            synced_rx,
            config,
            task,
        })
    }

    /// Wait until the first list has been applied, at most `timeout`.
    pub async fn wait_until_synced(&self, timeout: Duration) -> Result<()> {
        let mut synced = self.synced_rx.clone();
        match tokio::time::timeout(timeout, synced.wait_for(|s| *s)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Error::DiscoveryStopped),
            Err(_) => Err(Error::SyncTimeout(timeout)),
        }
    }

    /// The most recent watch error, cleared by the next successful (re-)list.
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error.lock().clone()
    }

    /// The configuration this cache watches with.
    pub fn config(&self) -> &DiscoveryConfig {
        &self.config
    }

    /// Names of matching pods that are not scheduled to a node yet (no `spec.nodeName`).
    pub fn unscheduled_pods(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .store
            .state()
            .iter()
            .filter(|pod| {
                pod.spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_ref())
                    .is_none()
            })
            .filter_map(|pod| pod.metadata.name.clone())
            .collect();
        names.sort();
        names
    }

    /// Every matching pod as an endpoint, including replaced ones (several per node during
    /// a rolling update), sorted by node then pod name.
    pub fn pods(&self) -> Vec<AgentEndpoint> {
        let mut all: Vec<AgentEndpoint> = self
            .store
            .state()
            .iter()
            .filter_map(|pod| endpoint_from_pod(pod, &self.config.container))
            .collect();
        all.sort_by(|a, b| (&a.node_name, &a.pod_name).cmp(&(&b.node_name, &b.pod_name)));
        all
    }
}

fn rebuild_index(shared: &Shared, store: &Store<Pod>, container: &str) {
    let index = select_per_node(
        store
            .state()
            .iter()
            .filter_map(|pod| endpoint_from_pod(pod, container)),
    );
    let same_nodes = shared.index.read().keys().eq(index.keys());
    *shared.index.write() = Arc::new(index);
    if !same_nodes {
        shared.node_set.send_modify(|generation| *generation += 1);
    }
}

/// Sets the last watch error; whether there was one before.
fn set_last_error(shared: &Shared, value: Option<String>) -> bool {
    std::mem::replace(&mut *shared.last_error.lock(), value).is_some()
}

impl Discovery {
    fn index(&self) -> Index {
        Arc::clone(&self.shared.index.read())
    }
}

impl NodeDirectory for Discovery {
    fn nodes(&self) -> Vec<AgentEndpoint> {
        self.index().values().cloned().collect()
    }

    fn node(&self, name: &str) -> Option<AgentEndpoint> {
        self.index().get(name).cloned()
    }

    fn is_synced(&self) -> bool {
        self.shared.synced.load(Ordering::SeqCst)
    }

    fn node_set_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.shared.node_set.subscribe())
    }
}

/// Keep one endpoint per node: the ready one first, then the newest.
pub(crate) fn select_per_node(
    endpoints: impl Iterator<Item = AgentEndpoint>,
) -> BTreeMap<String, AgentEndpoint> {
    let mut by_node: BTreeMap<String, AgentEndpoint> = BTreeMap::new();
    for endpoint in endpoints {
        match by_node.get(&endpoint.node_name) {
            Some(current) if rank(current) >= rank(&endpoint) => {}
            _ => {
                by_node.insert(endpoint.node_name.clone(), endpoint);
            }
        }
    }
    by_node
}

type Rank<'a> = (bool, Option<k8s_openapi::jiff::Timestamp>, &'a str);

fn rank(endpoint: &AgentEndpoint) -> Rank<'_> {
    (
        endpoint.ready,
        endpoint.start_time,
        endpoint.pod_name.as_str(),
    )
}

/// Convert a pod into an endpoint; `None` when it has no name or no node yet.
pub fn endpoint_from_pod(pod: &Pod, preferred_container: &str) -> Option<AgentEndpoint> {
    let pod_name = pod.metadata.name.clone()?;
    let spec = pod.spec.as_ref()?;
    let node_name = spec.node_name.clone().filter(|n| !n.is_empty())?;
    let status = pod.status.as_ref();
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let ready_condition = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conds| {
            conds
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        });
    let pod_ip = status
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    let container = spec
        .containers
        .iter()
        .find(|c| c.name == preferred_container)
        .or_else(|| spec.containers.first());
    let port = container
        .into_iter()
        .chain(spec.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| matches!(p.name.as_deref(), Some("mcp" | "http")))
        .and_then(|p| u16::try_from(p.container_port).ok());
    let start_time = status
        .and_then(|s| s.start_time.as_ref())
        .or(pod.metadata.creation_timestamp.as_ref())
        .map(|t| t.0);
    Some(AgentEndpoint {
        node_name,
        pod_name,
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        pod_ip,
        ready: ready_condition && !terminating,
        container: container.map(|c| c.name.clone()),
        port,
        start_time,
        url: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: Option<&str>, ready: bool, ip: Option<&str>, start: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "gpu-diagnostics"},
            "spec": {
                "nodeName": node,
                "containers": [
                    {"name": "sidecar"},
                    {"name": "agent", "ports": [{"name": "http", "containerPort": 8080}]}
                ]
            },
            "status": {
                "podIP": ip,
                "startTime": start,
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn converts_pods() {
        let p = pod(
            "a1",
            Some("node-a"),
            true,
            Some("127.0.1.1"),
            "2026-01-01T00:00:00Z",
        );
        let e = endpoint_from_pod(&p, "agent").unwrap();
        assert_eq!(e.node_name, "node-a");
        assert_eq!(e.pod_name, "a1");
        assert_eq!(e.namespace, "gpu-diagnostics");
        assert_eq!(e.pod_ip, Some("127.0.1.1".parse().unwrap()));
        assert!(e.ready);
        assert_eq!(e.container.as_deref(), Some("agent"));
        assert_eq!(e.port, Some(8080));
        assert!(e.start_time.is_some());

        let unscheduled = pod("b", None, false, None, "2026-01-01T00:00:00Z");
        assert!(endpoint_from_pod(&unscheduled, "agent").is_none());
        let no_ip = pod(
            "c",
            Some("node-c"),
            false,
            Some("not-an-ip"),
            "2026-01-01T00:00:00Z",
        );
        let e = endpoint_from_pod(&no_ip, "agent").unwrap();
        assert_eq!(e.pod_ip, None);
        assert!(!e.ready);
        // Falls back to the first container when the preferred one is absent.
        let e = endpoint_from_pod(&p, "other").unwrap();
        assert_eq!(e.container.as_deref(), Some("sidecar"));
        assert_eq!(e.port, Some(8080));
    }

    #[test]
    fn prefers_ready_then_newest() {
        let old_ready = pod(
            "old",
            Some("n"),
            true,
            Some("127.0.1.1"),
            "2026-01-01T00:00:00Z",
        );
        let new_unready = pod(
            "new",
            Some("n"),
            false,
            Some("127.0.1.2"),
            "2026-01-02T00:00:00Z",
        );
        let newest_ready = pod(
            "newest",
            Some("n"),
            true,
            Some("127.0.1.3"),
            "2026-01-03T00:00:00Z",
        );
        let pick = |pods: &[&Pod]| {
            select_per_node(pods.iter().filter_map(|p| endpoint_from_pod(p, "agent")))
                .remove("n")
                .unwrap()
                .pod_name
        };
        assert_eq!(pick(&[&old_ready, &new_unready]), "old");
        assert_eq!(pick(&[&new_unready, &old_ready]), "old");
        assert_eq!(pick(&[&old_ready, &newest_ready, &new_unready]), "newest");
        assert_eq!(pick(&[&newest_ready, &old_ready]), "newest");
    }

    #[test]
    fn config_selector_and_validation() {
        let mut c = DiscoveryConfig::default();
        assert_eq!(c.selector(), DEFAULT_LABEL_SELECTOR);
        c.agent_component_only = true;
        assert_eq!(
            c.selector(),
            "app.kubernetes.io/name=k8s-gpu-mcp-server,app.kubernetes.io/component=agent"
        );
        assert!(c.validate().is_ok());
        c.namespace = "Bad_NS".into();
        assert!(c.validate().unwrap_err().to_string().contains("Bad_NS"));
        let empty = DiscoveryConfig {
            label_selector: " ".into(),
            ..DiscoveryConfig::default()
        };
        assert!(empty.validate().is_err());
    }
}
