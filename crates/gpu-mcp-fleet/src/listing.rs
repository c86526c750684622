//! `list_gpu_nodes`: the nodes the gateway knows, their agent pods, and what each ready agent says
//! about its GPUs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gpu_mcp_protocol::JsonObject;

use gpu_mcp_model::output::Verdict;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aggregate::{
    FailureKind, MODEL_NAME_CHARS, NodeEntry, NodeFailure, clip, gpu_entries, gpu_model,
};
use crate::fleet_args::{Cursor, NodePattern, node_limit};
use crate::shape::name;
use crate::verdict::{node_verdict, parse_verdict, rank};

pub(crate) use gpu_mcp_model::LIST_GPU_NODES;

/// Nodes listed per page by default.
pub(crate) const DEFAULT_LIST_LIMIT: u32 = 50;
/// The most nodes one page lists.
pub(crate) const MAX_LIST_LIMIT: u32 = 500;
/// The most bytes of node entries one page carries.
const LIST_BUDGET_BYTES: usize = 16 * 1024;
/// How many names `attention` lists.
const ATTENTION_NAMES: usize = 20;
/// How many distinct GPU models a node's entry names (a node has a few; an agent could claim
/// any number).
const NODE_MODELS: usize = 8;

/// Arguments of `list_gpu_nodes`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListGpuNodesInput {
    /// List only the nodes whose name matches this pattern (`*` any characters, `?` one
    /// character), for example `gpu-h100-*`.
    #[serde(default)]
    #[schemars(length(min = 1, max = 253))]
    pub node_pattern: Option<String>,
    /// The most nodes one answer lists (default 50, at most 500); the answer also stops early
    /// to stay small, and says so.
    #[serde(default)]
    #[schemars(range(min = 1, max = 500))]
    pub node_limit: Option<u32>,
    /// The `next_cursor` of a previous answer, for the next page.
    #[serde(default)]
    #[schemars(length(min = 1, max = 1024))]
    pub cursor: Option<String>,
}

/// The checked arguments of `list_gpu_nodes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListArgs {
    pub node_pattern: Option<NodePattern>,
    pub node_limit: usize,
    pub after: Option<String>,
}

impl ListArgs {
    /// Checks the arguments; the error is the message for the client.
    pub(crate) fn parse(arguments: Option<JsonObject>) -> Result<Self, String> {
        let input: ListGpuNodesInput =
            serde_json::from_value(Value::Object(arguments.unwrap_or_default()))
                .map_err(|e| format!("Invalid argument of list_gpu_nodes: {e}."))?;
        let node_limit = node_limit(input.node_limit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)?;
        Ok(Self {
            node_pattern: input
                .node_pattern
                .as_deref()
                .map(NodePattern::new)
                .transpose()?,
            node_limit,
            after: input
                .cursor
                .as_deref()
                .map(|c| Cursor::decode(c, 'l').map(|c| c.node))
                .transpose()?,
        })
    }
}

/// The answer of `list_gpu_nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct NodeList {
    /// One sentence: how many nodes, how many answer, how many need attention.
    pub headline: String,
    /// `ok` when every known node is ready and its agent answered, `degraded` when some did not,
    /// `empty` when no agent pod is known.
    pub status: ListStatus,
    /// Number of nodes known (matching `node_pattern`), on every page.
    pub node_count: usize,
    /// Nodes whose agent pod is ready.
    pub nodes_ready: usize,
    /// Nodes whose agent answered the health query.
    pub nodes_answering: usize,
    /// Nodes per health verdict (`not_answering` for nodes without an answer).
    pub by_health: BTreeMap<String, u64>,
    /// Nodes that are not healthy or did not answer, worst first (the first twenty).
    pub attention: Vec<String>,
    /// This page of nodes, sorted by name.
    pub nodes: Vec<NodeInfo>,
    /// Nodes after this page.
    pub nodes_omitted: usize,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Overall state of the node list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ListStatus {
    /// Every node is ready and answered.
    Ok,
    /// At least one node is not ready or did not answer.
    Degraded,
    /// No agent pod is known.
    Empty,
}

/// One node of `list_gpu_nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct NodeInfo {
    /// The Kubernetes node name (the value to pass as `node`).
    pub name: String,
    /// The agent pod on that node.
    #[serde(default)]
    pub pod_name: Option<String>,
    /// The agent pod's IP address, when assigned.
    #[serde(default)]
    pub pod_ip: Option<String>,
    /// Whether the agent pod is ready.
    pub ready: bool,
    /// GPUs on the node, when the agent answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_count: Option<u64>,
    /// Distinct GPU models on the node (the first eight, each name cut at 100 characters),
    /// when the agent answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_models: Option<Vec<String>>,
    /// The node's health verdict (the worst of its GPUs'), when the agent answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// Why there is no GPU information for this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<NodeFailure>,
    /// How long the health query of this node took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// A known node before the health query: what the directory says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KnownNode {
    /// Node name.
    pub name: String,
    /// Agent pod name.
    pub pod_name: Option<String>,
    /// Agent pod IP.
    pub pod_ip: Option<String>,
    /// Pod readiness.
    pub ready: bool,
}

impl NodeList {
    /// Builds the list from the directory's nodes and the health fan-out's entries (matched by
    /// node name). A ready node without an entry is reported as not having answered.
    pub(crate) fn build(known: Vec<KnownNode>, health: &[NodeEntry]) -> Self {
        let health: HashMap<&str, &NodeEntry> =
            health.iter().map(|e| (e.name.as_str(), e)).collect();
        let mut nodes: Vec<NodeInfo> = known
            .into_iter()
            .map(|k| {
                let entry = health.get(k.name.as_str()).copied();
                let mut info = NodeInfo {
                    name: k.name,
                    pod_name: k.pod_name,
                    pod_ip: k.pod_ip,
                    ready: k.ready,
                    gpu_count: None,
                    gpu_models: None,
                    health: None,
                    error: None,
                    duration_ms: entry.map(|e| e.duration_ms),
                };
                match entry {
                    Some(NodeEntry {
                        ok: true,
                        result: Some(result),
                        ..
                    }) => {
                        let gpus = gpu_entries(result);
                        info.gpu_count = Some(gpus.len() as u64);
                        let models: BTreeSet<String> = gpus
                            .iter()
                            .filter_map(gpu_model)
                            .map(|m| clip(m, MODEL_NAME_CHARS))
                            .collect();
                        info.gpu_models = Some(models.into_iter().take(NODE_MODELS).collect());
                        info.health = node_verdict(result).map(|v| v.as_str().to_owned());
                    }
                    Some(e) => info.error = e.error.clone(),
                    None if !info.ready => {
                        info.error = Some(NodeFailure::new(
                            FailureKind::NotReady,
                            "the agent pod is not ready",
                        ));
                    }
                    None => {
                        info.error = Some(NodeFailure::new(
                            FailureKind::Unreachable,
                            "the agent was not asked (it appeared after the query started)",
                        ));
                    }
                }
                info
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let nodes_ready = nodes.iter().filter(|n| n.ready).count();
        let nodes_answering = nodes.iter().filter(|n| n.error.is_none()).count();
        let status = if nodes.is_empty() {
            ListStatus::Empty
        } else if nodes_answering == nodes.len() {
            ListStatus::Ok
        } else {
            ListStatus::Degraded
        };
        let mut by_health: BTreeMap<String, u64> = BTreeMap::new();
        let mut attention: Vec<(u8, &str)> = Vec::new();
        for n in &nodes {
            let verdict = match (&n.health, &n.error) {
                (Some(h), None) => parse_verdict(h),
                _ => None,
            };
            // Worst first: a node without an answer, then critical down to warning.
            let order = verdict.map_or(4, rank);
            if order > 0 {
                attention.push((order, &n.name));
            }
            let key = verdict.map_or("not_answering", Verdict::as_str);
            *by_health.entry(key.to_owned()).or_default() += 1;
        }
        attention.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        let attention_total = attention.len();
        let attention: Vec<String> = attention
            .into_iter()
            .take(ATTENTION_NAMES)
            .map(|(_, n)| n.to_owned())
            .collect();
        let headline = if nodes.is_empty() {
            "No GPU nodes are known.".to_owned()
        } else {
            format!(
                "{} GPU nodes: {nodes_answering} answering, {} ready; {attention_total} need attention{}.",
                nodes.len(),
                nodes_ready,
                if attention_total > attention.len() {
                    format!(" (the first {} named in `attention`)", attention.len())
                } else {
                    String::new()
                }
            )
        };
        Self {
            headline,
            status,
            node_count: nodes.len(),
            nodes_ready,
            nodes_answering,
            by_health,
            attention,
            nodes,
            nodes_omitted: 0,
            next_cursor: None,
        }
    }

    /// Keeps the page after `args.after`: at most `node_limit` nodes within the byte budget
    /// (at least one), the rest counted, with the cursor to them.
    pub(crate) fn page(mut self, args: &ListArgs) -> Self {
        let all = std::mem::take(&mut self.nodes);
        let remaining: Vec<NodeInfo> = all
            .into_iter()
            .filter(|n| args.after.as_deref().is_none_or(|a| n.name.as_str() > a))
            .collect();
        let total = remaining.len();
        let mut left = LIST_BUDGET_BYTES;
        for n in remaining {
            let size = serde_json::to_vec(&n).map_or(usize::MAX, |v| v.len());
            if self.nodes.len() >= args.node_limit || (!self.nodes.is_empty() && size > left) {
                break;
            }
            left = left.saturating_sub(size);
            self.nodes.push(n);
        }
        self.nodes_omitted = total - self.nodes.len();
        if self.nodes_omitted > 0 {
            self.next_cursor = self.nodes.last().map(|n| {
                Cursor {
                    section: 'l',
                    rank: 0,
                    node: n.name.clone(),
                }
                .encode()
            });
        }
        self
    }

    /// The list in words for the text block.
    pub(crate) fn words(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!("{}\n", self.headline);
        if !self.attention.is_empty() {
            let _ = writeln!(out, "Needs attention: {}", self.attention.join(", "));
        }
        let _ = writeln!(out, "\nNodes on this page:");
        for n in &self.nodes {
            let state = match (&n.health, &n.error) {
                (Some(h), None) => format!(
                    "{h}, {} GPUs ({})",
                    n.gpu_count.unwrap_or(0),
                    n.gpu_models
                        .iter()
                        .flatten()
                        .map(|m| name(m))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (_, Some(e)) => format!(
                    "not answering ({}): {}",
                    e.kind.as_str(),
                    e.message.escape_debug()
                ),
                _ => "unknown".to_owned(),
            };
            let _ = writeln!(out, "- {}: {state}", n.name);
        }
        if self.nodes_omitted > 0 {
            let _ = writeln!(
                out,
                "\n{} more nodes: pass `cursor` = `next_cursor` for the next page, or `node_pattern` to narrow.",
                self.nodes_omitted
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn known(name: &str, ready: bool) -> KnownNode {
        KnownNode {
            name: name.into(),
            pod_name: Some(format!("agent-{name}")),
            pod_ip: Some("127.0.0.9".into()),
            ready,
        }
    }

    fn entry(name: &str, result: Option<Value>) -> NodeEntry {
        NodeEntry {
            name: name.into(),
            pod: Some(format!("agent-{name}")),
            ok: result.is_some(),
            error: result
                .is_none()
                .then(|| NodeFailure::new(FailureKind::Timeout, "no answer within 10s")),
            result,
            duration_ms: 5,
        }
    }

    #[test]
    fn lists_every_node_with_gpu_facts_or_a_reason() {
        let list = NodeList::build(
            vec![
                known("b", true),
                known("a", true),
                known("c", false),
                known("d", true),
            ],
            &[
                entry(
                    "a",
                    Some(json!({"gpus": [
                        {"name": "NVIDIA H100", "verdict": "healthy"},
                        {"name": "NVIDIA H100", "verdict": "critical"},
                        {"name": "NVIDIA A100", "verdict": "warning"}]})),
                ),
                entry("b", None),
            ],
        );
        assert_eq!(list.status, ListStatus::Degraded);
        assert_eq!(
            (list.node_count, list.nodes_ready, list.nodes_answering),
            (4, 3, 1)
        );
        let names: Vec<&str> = list.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        let a = &list.nodes[0];
        assert_eq!(a.gpu_count, Some(3));
        assert_eq!(
            a.gpu_models,
            Some(vec!["NVIDIA A100".to_owned(), "NVIDIA H100".to_owned()])
        );
        assert_eq!(a.health.as_deref(), Some("critical"));
        assert_eq!(
            list.nodes[1].error.as_ref().map(|e| e.kind),
            Some(FailureKind::Timeout)
        );
        assert_eq!(
            list.nodes[2].error.as_ref().map(|e| e.kind),
            Some(FailureKind::NotReady)
        );
        assert_eq!(
            list.nodes[3].error.as_ref().map(|e| e.kind),
            Some(FailureKind::Unreachable)
        );
        assert_eq!(list.nodes[0].pod_ip.as_deref(), Some("127.0.0.9"));
    }

    #[test]
    fn status_ok_and_empty() {
        let list = NodeList::build(
            vec![known("a", true)],
            &[entry("a", Some(json!({"verdict": "healthy", "gpus": []})))],
        );
        assert_eq!(list.status, ListStatus::Ok);
        assert_eq!(list.nodes[0].health.as_deref(), Some("healthy"));
        assert_eq!(NodeList::build(vec![], &[]).status, ListStatus::Empty);
    }
}
