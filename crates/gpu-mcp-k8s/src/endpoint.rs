//! Agent endpoints, the [`NodeDirectory`] trait and the static directory.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::node_name::NodeName;

/// One node's agent as the gateway routes to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentEndpoint {
    /// Kubernetes node name (`spec.nodeName`), or the name given in static mode.
    pub node_name: String,
    /// Agent pod name; empty in static mode.
    pub pod_name: String,
    /// Agent pod namespace; empty in static mode.
    pub namespace: String,
    /// Pod IP (`status.podIP`), once assigned.
    pub pod_ip: Option<IpAddr>,
    /// Whether the pod's `Ready` condition is `True` (always true in static mode).
    pub ready: bool,
    /// The agent container, used by exec routing.
    pub container: Option<String>,
    /// The agent's MCP port, from a container port named `mcp` or `http`.
    pub port: Option<u16>,
    /// Pod start time (`status.startTime`, else `metadata.creationTimestamp`).
    pub start_time: Option<Timestamp>,
    /// Explicit agent URL (static mode); overrides pod IP and port.
    pub url: Option<String>,
}

impl AgentEndpoint {
    /// An endpoint for a static agent reachable at `url`.
    pub fn from_url(node_name: impl Into<String>, url: impl Into<String>) -> AgentEndpoint {
        AgentEndpoint {
            node_name: node_name.into(),
            pod_name: String::new(),
            namespace: String::new(),
            pod_ip: None,
            ready: true,
            container: None,
            port: None,
            start_time: None,
            url: Some(url.into()),
        }
    }

    /// The pod name, or `None` in static mode.
    pub fn pod(&self) -> Option<&str> {
        (!self.pod_name.is_empty()).then_some(self.pod_name.as_str())
    }
}

/// A source of agent endpoints, keyed by node name.
pub trait NodeDirectory: Send + Sync {
    /// Every node with an agent, sorted by node name (one entry per node).
    fn nodes(&self) -> Vec<AgentEndpoint>;
    /// The agent on `name`, if any.
    fn node(&self, name: &str) -> Option<AgentEndpoint>;
    /// Whether the directory has a complete view (the discovery cache's first list is done).
    fn is_synced(&self) -> bool;
    /// A generation that moves whenever the set of node names changes (a node's agent came or
    /// went), not when an agent's state changes; `None` for a directory that never changes.
    fn node_set_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// A fixed set of agents given as `name=url` pairs (the gateway's `--agents` mode).
///
/// Always synced, every entry ready.
#[derive(Debug, Clone, Default)]
pub struct StaticDirectory {
    entries: BTreeMap<String, AgentEndpoint>,
}

impl StaticDirectory {
    /// Build from `(name, url)` pairs; names must be valid node names, URLs absolute `http://` URLs.
    pub fn new<I, N, U>(pairs: I) -> Result<StaticDirectory>
    where
        I: IntoIterator<Item = (N, U)>,
        N: Into<String>,
        U: Into<String>,
    {
        let mut entries = BTreeMap::new();
        for (name, url) in pairs {
            let (name, url) = (name.into(), url.into());
            let entry = format!("{name}={url}");
            if let Err(invalid) = NodeName::try_from(name.as_str()) {
                return Err(Error::InvalidStaticAgent {
                    entry,
                    reason: invalid.to_string(),
                });
            }
            check_url(&url).map_err(|reason| Error::InvalidStaticAgent {
                entry: entry.clone(),
                reason,
            })?;
            if entries.contains_key(&name) {
                return Err(Error::InvalidStaticAgent {
                    entry,
                    reason: "node name given twice".to_owned(),
                });
            }
            entries.insert(name.clone(), AgentEndpoint::from_url(name, url));
        }
        Ok(StaticDirectory { entries })
    }

    /// Parse a comma-separated list of `name=url` pairs, e.g.
    /// `node-a=http://127.0.0.1:8081/mcp,node-b=http://127.0.0.1:8082/mcp`.
    pub fn parse(list: &str) -> Result<StaticDirectory> {
        let mut pairs = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((name, url)) = item.split_once('=') else {
                return Err(Error::InvalidStaticAgent {
                    entry: item.to_owned(),
                    reason: "expected name=url".to_owned(),
                });
            };
            pairs.push((name.trim().to_owned(), url.trim().to_owned()));
        }
        StaticDirectory::new(pairs)
    }
}

fn check_url(url: &str) -> std::result::Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => return Err(format!("unsupported scheme {other:?} (use http)")),
        None => return Err("URL must start with http://".to_owned()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("URL has no host".to_owned());
    }
    Ok(())
}

impl NodeDirectory for StaticDirectory {
    fn nodes(&self) -> Vec<AgentEndpoint> {
        self.entries.values().cloned().collect()
    }

    fn node(&self, name: &str) -> Option<AgentEndpoint> {
        self.entries.get(name).cloned()
    }

    fn is_synced(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_directory_parses_pairs() {
        let dir = StaticDirectory::parse(
            "node-b=http://127.0.0.1:8082/mcp, node-a=http://127.0.0.1:8081/mcp",
        )
        .unwrap();
        assert!(dir.is_synced());
        let names: Vec<_> = dir.nodes().into_iter().map(|n| n.node_name).collect();
        assert_eq!(names, ["node-a", "node-b"]);
        let a = dir.node("node-a").unwrap();
        assert_eq!(a.url.as_deref(), Some("http://127.0.0.1:8081/mcp"));
        assert!(a.ready);
        assert_eq!(a.pod(), None);
        assert!(dir.node("node-c").is_none());
    }

    #[test]
    fn static_directory_rejects_bad_entries() {
        for (input, needle) in [
            ("node-a", "expected name=url"),
            ("Node=http://127.0.0.1:1/mcp", "node name"),
            ("a=https://127.0.0.1/mcp", "scheme"),
            ("a=127.0.0.1:80", "URL"),
            ("a=http://127.0.0.1:1/mcp,a=http://127.0.0.1:2/mcp", "twice"),
        ] {
            let err = StaticDirectory::parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }
}
