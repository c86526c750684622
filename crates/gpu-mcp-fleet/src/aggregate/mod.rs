//! The gateway's answer shapes (one node, or every node plus a summary) and the summary
//! computation over the agents' structured results.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gpu_mcp_model::output::Verdict;
use gpu_mcp_model::{ANALYZE_XID_ERRORS, GET_GPU_INVENTORY};
use gpu_mcp_protocol::{CallToolResult, Content};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::verdict::parse_verdict;

/// How many XIDs `summary.top_xids` lists at most.
const TOP_XIDS: usize = 10;
/// How many node names a summary list carries at most (the counts cover every node).
pub(crate) const LISTED_NAMES: usize = 10;
/// How many GPU models `summary.gpu_models` lists at most (`gpus_total` counts every GPU).
const LISTED_MODELS: usize = 20;
/// The most characters of a model name an answer repeats (an agent's string, so unbounded).
pub(crate) const MODEL_NAME_CHARS: usize = 100;
/// The key under which GPUs and nodes are counted whose verdict is not one of the model's words.
pub(crate) const UNKNOWN_VERDICT: &str = "unknown";

/// The answer of a GPU tool called without `node`: every node's result or error, and a summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct FanOutAnswer {
    /// One entry per known node, sorted by node name.
    pub nodes: Vec<NodeEntry>,
    /// Totals over all nodes.
    pub summary: Summary,
}

/// One node's part of a fan-out answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct NodeEntry {
    /// The Kubernetes node.
    pub name: String,
    /// The agent pod on that node, when one is known.
    #[serde(default)]
    pub pod: Option<String>,
    /// Whether the node's agent answered with a successful result.
    pub ok: bool,
    /// The agent's `structuredContent` (present when `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why this node has no result (present when not `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<NodeFailure>,
    /// How long the gateway waited for this node, in milliseconds.
    pub duration_ms: u64,
}

/// Why a node did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct NodeFailure {
    /// The class of failure.
    pub kind: FailureKind,
    /// What happened, in words.
    pub message: String,
}

impl NodeFailure {
    /// A failure of the given kind.
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Classes of per-node failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FailureKind {
    /// The agent pod is not ready (or has no address yet); nothing was sent.
    NotReady,
    /// The agent could not be reached (connection refused, reset, exec failed).
    Unreachable,
    /// The agent did not answer within the node timeout.
    Timeout,
    /// The agent ran the tool and reported a failure (`isError: true`).
    ToolError,
    /// The agent answered with a JSON-RPC error.
    AgentError,
    /// The agent's answer was not a JSON-RPC response carrying a tool result.
    InvalidResponse,
}

impl FailureKind {
    /// The `snake_case` name, as serialized and as used in metric labels.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::NotReady => "not_ready",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::ToolError => "tool_error",
            Self::AgentError => "agent_error",
            Self::InvalidResponse => "invalid_response",
        }
    }
}

/// Totals over a fan-out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Summary {
    /// Nodes asked (every known node).
    pub nodes_total: usize,
    /// Nodes that answered with a successful result.
    pub nodes_ok: usize,
    /// Ready nodes that did not (unreachable, timeout, tool or agent error).
    pub nodes_failed: usize,
    /// Nodes skipped because their agent pod is not ready.
    pub nodes_not_ready: usize,
    /// Names of the nodes without a result (failed or not ready), sorted; the first
    /// ten only, `failed_nodes_omitted` counts the rest.
    pub failed_nodes: Vec<String>,
    /// Failed nodes not named in `failed_nodes`.
    #[serde(default)]
    pub failed_nodes_omitted: usize,
    /// Nodes without a result per failure kind (`timeout`, `unreachable`, `not_ready`, ...).
    #[serde(default)]
    pub failed_by_kind: BTreeMap<String, u64>,
    /// GPUs reported by the nodes that answered.
    pub gpus_total: u64,
    /// GPUs per health verdict (`healthy`, `warning`, `degraded`, `critical`, and `unknown`
    /// for any other word), over the nodes that answered; empty when the tool reports no
    /// per-GPU verdict.
    pub gpus_by_verdict: BTreeMap<String, u64>,
    /// Nodes per node-level health verdict (the same words), over the nodes that answered;
    /// empty when the tool reports no node verdict.
    pub nodes_by_verdict: BTreeMap<String, u64>,
    /// The most frequent XIDs across nodes, most frequent first (XID analysis only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_xids: Option<Vec<XidCount>>,
    /// GPU models and how many of each (inventory only), most common first: the first twenty,
    /// each name cut at 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_models: Option<Vec<ModelCount>>,
}

/// One XID code across the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct XidCount {
    /// The XID code.
    pub xid: u64,
    /// Occurrences over all nodes.
    pub count: u64,
    /// How many nodes it occurred on.
    pub node_count: usize,
    /// Nodes where it occurred, sorted; the first ten only.
    pub nodes: Vec<String>,
}

/// One GPU model across the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct ModelCount {
    /// The model name as the driver reports it.
    pub model: String,
    /// How many GPUs of that model.
    pub count: u64,
}

/// One node's outcome before it is shaped into a [`NodeEntry`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeOutcome {
    /// The Kubernetes node.
    pub node: String,
    /// The agent pod, if known.
    pub pod: Option<String>,
    /// Time spent on this node.
    pub duration: Duration,
    /// The agent's tool result, or why there is none.
    pub reply: Result<CallToolResult, NodeFailure>,
}

/// The first text block of a result, for error messages.
pub(crate) fn result_text(result: &CallToolResult) -> String {
    let text: Vec<&str> = result.content.iter().filter_map(Content::as_text).collect();
    if text.is_empty() {
        "the tool reported an error without a message".to_owned()
    } else {
        text.join("\n")
    }
}

impl NodeEntry {
    /// Shapes one outcome. A tool result with `isError: true` counts as a failure of kind
    /// [`FailureKind::ToolError`] carrying the agent's message.
    pub(crate) fn from_outcome(outcome: NodeOutcome) -> Self {
        let duration_ms = u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX);
        let (ok, result, error) = match outcome.reply {
            Ok(r) if r.failed() => (
                false,
                None,
                Some(NodeFailure::new(
                    FailureKind::ToolError,
                    gpu_mcp_k8s::quote_untrusted(&result_text(&r)),
                )),
            ),
            Ok(r) => (
                true,
                Some(r.structured_content.unwrap_or(Value::Null)),
                None,
            ),
            Err(f) => (false, None, Some(f)),
        };
        Self {
            name: outcome.node,
            pod: outcome.pod,
            ok,
            result,
            error,
            duration_ms,
        }
    }
}

impl FanOutAnswer {
    /// Builds the answer of `tool` from every node's outcome: entries sorted by node name and the
    /// summary over them.
    pub(crate) fn build(tool: &str, outcomes: Vec<NodeOutcome>) -> Self {
        let mut nodes: Vec<NodeEntry> = outcomes.into_iter().map(NodeEntry::from_outcome).collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let summary = Summary::compute(tool, &nodes);
        Self { nodes, summary }
    }

    /// Whether no node produced a result (and at least one was asked, or none exist).
    pub(crate) fn all_failed(&self) -> bool {
        self.summary.nodes_ok == 0
    }
}

impl Summary {
    /// Computes the totals of `tool` over node entries.
    pub(crate) fn compute(tool: &str, nodes: &[NodeEntry]) -> Self {
        let mut summary = Self {
            nodes_total: nodes.len(),
            ..Self::default()
        };
        let mut xids: BTreeMap<u64, (u64, BTreeSet<String>)> = BTreeMap::new();
        let mut models: BTreeMap<String, u64> = BTreeMap::new();
        for node in nodes {
            match (&node.result, &node.error) {
                (Some(result), _) if node.ok => {
                    summary.nodes_ok += 1;
                    if let Some(verdict) = top_level_verdict(result) {
                        add(&mut summary.nodes_by_verdict, verdict_key(verdict), 1);
                    }
                    let gpus = gpu_entries(result);
                    // The agent's own `counts` where it reports them (every GPU, even when the
                    // answer lists only some); else the listed GPUs. The agent's numbers are
                    // added without overflowing, whatever it claims.
                    let counts = verdict_counts(result);
                    let gpus_here = counts.as_ref().map_or(gpus.len() as u64, |c| {
                        c.iter().fold(0u64, |sum, (_, n)| sum.saturating_add(*n))
                    });
                    summary.gpus_total = summary.gpus_total.saturating_add(gpus_here);
                    for (verdict, n) in counts.iter().flatten() {
                        add(&mut summary.gpus_by_verdict, verdict_key(verdict), *n);
                    }
                    for gpu in gpus {
                        if counts.is_none()
                            && let Some(verdict) = gpu_verdict(gpu)
                        {
                            add(&mut summary.gpus_by_verdict, verdict_key(&verdict), 1);
                        }
                        if let Some(model) = gpu_model(gpu) {
                            let entry = models.entry(clip(model, MODEL_NAME_CHARS)).or_default();
                            *entry = entry.saturating_add(1);
                        }
                    }
                    for (xid, count) in xid_counts(result) {
                        let entry = xids.entry(xid).or_default();
                        entry.0 = entry.0.saturating_add(count);
                        entry.1.insert(node.name.clone());
                    }
                }
                (_, failure) => {
                    let kind = failure
                        .as_ref()
                        .map_or(FailureKind::InvalidResponse, |f| f.kind);
                    if kind == FailureKind::NotReady {
                        summary.nodes_not_ready += 1;
                    } else {
                        summary.nodes_failed += 1;
                    }
                    *summary
                        .failed_by_kind
                        .entry(kind.as_str().to_owned())
                        .or_default() += 1;
                    summary.failed_nodes.push(node.name.clone());
                }
            }
        }
        summary.failed_nodes.sort();
        summary.failed_nodes_omitted = summary.failed_nodes.len().saturating_sub(LISTED_NAMES);
        summary.failed_nodes.truncate(LISTED_NAMES);
        if tool == ANALYZE_XID_ERRORS {
            let mut top: Vec<XidCount> = xids
                .into_iter()
                .map(|(xid, (count, nodes))| XidCount {
                    xid,
                    count,
                    node_count: nodes.len(),
                    nodes: nodes.into_iter().take(LISTED_NAMES).collect(),
                })
                .collect();
            top.sort_by(|a, b| b.count.cmp(&a.count).then(a.xid.cmp(&b.xid)));
            top.truncate(TOP_XIDS);
            summary.top_xids = Some(top);
        }
        if tool == GET_GPU_INVENTORY {
            let mut list: Vec<ModelCount> = models
                .into_iter()
                .map(|(model, count)| ModelCount { model, count })
                .collect();
            list.sort_by(|a, b| b.count.cmp(&a.count).then(a.model.cmp(&b.model)));
            list.truncate(LISTED_MODELS);
            summary.gpu_models = Some(list);
        }
        summary
    }
}

/// Adds `n` to `key`'s count, saturating.
fn add(counts: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    let count = counts.entry(key.to_owned()).or_default();
    *count = count.saturating_add(n);
}

/// The key a verdict word of an agent is counted under: the model's word, or
/// [`UNKNOWN_VERDICT`] for any other string (so an agent cannot add keys to the summary).
pub(crate) fn verdict_key(word: &str) -> &'static str {
    parse_verdict(word).map_or(UNKNOWN_VERDICT, Verdict::as_str)
}

/// The first `chars` characters of `text`, with `…` when it was longer.
pub(crate) fn clip(text: &str, chars: usize) -> String {
    let mut out: String = text.chars().take(chars).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// The GPUs per verdict of a result that reports them (`counts: {verdict: n}`), without zeros.
fn verdict_counts(result: &Value) -> Option<Vec<(String, u64)>> {
    let counts = result.get("counts")?.as_object()?;
    Some(
        counts
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
            .filter(|(_, n)| *n > 0)
            .collect(),
    )
}

/// The per-GPU objects of an agent result (`gpus[]`), or none.
pub(crate) fn gpu_entries(result: &Value) -> &[Value] {
    result
        .get("gpus")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A GPU's health verdict: `verdict`, or `health.verdict` / `health.status`, or a string
/// `health` / `status`.
pub(crate) fn gpu_verdict(gpu: &Value) -> Option<String> {
    let direct = ["verdict", "health", "status"]
        .iter()
        .find_map(|k| gpu.get(*k).and_then(Value::as_str));
    let nested = || {
        let health = gpu.get("health")?;
        ["verdict", "status"]
            .iter()
            .find_map(|k| health.get(*k).and_then(Value::as_str))
    };
    direct.or_else(nested).map(str::to_owned)
}

/// A GPU's model name: `name`, `model` or `product_name`, either a plain string or a reading
/// (`{"value": "..."}`; unsupported or failed readings give none).
pub(crate) fn gpu_model(gpu: &Value) -> Option<&str> {
    ["name", "model", "product_name"].iter().find_map(|k| {
        let field = gpu.get(*k)?;
        field
            .as_str()
            .filter(|s| *s != "not_supported")
            .or_else(|| field.get("value").and_then(Value::as_str))
    })
}

/// XID occurrences in an XID-analysis result: the per-code `groups[]` (each with `xid` and
/// `count`) when present, else the individual `events[]` (or `xids[]`), each counting once unless
/// it has a `count`; at top level or under each of `gpus[]`.
pub(crate) fn xid_counts(result: &Value) -> Vec<(u64, u64)> {
    fn collect(value: &Value, out: &mut Vec<(u64, u64)>) {
        let list = ["groups", "events", "xids"]
            .iter()
            .find_map(|k| value.get(*k).and_then(Value::as_array));
        for item in list.map(Vec::as_slice).unwrap_or_default() {
            if let Some(xid) = item.get("xid").and_then(Value::as_u64) {
                let count = item.get("count").and_then(Value::as_u64).unwrap_or(1);
                out.push((xid, count));
            }
        }
    }
    let mut out = Vec::new();
    collect(result, &mut out);
    for gpu in gpu_entries(result) {
        collect(gpu, &mut out);
    }
    out
}

/// The node-level verdict of a result, when the tool reports one (`verdict` at top level).
pub(crate) fn top_level_verdict(result: &Value) -> Option<&str> {
    result.get("verdict").and_then(Value::as_str)
}

#[cfg(test)]
mod tests;
