//! The gateway's answer shapes (one node, or every node plus a summary) and the summary
//! computation over the agents' structured results.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gpu_mcp_model::{ANALYZE_XID_ERRORS, GET_GPU_INVENTORY};
use gpu_mcp_protocol::{CallToolResult, Content};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How many XIDs `summary.top_xids` lists at most.
const TOP_XIDS: usize = 10;
/// How many node names a summary list carries at most (the counts cover every node).
pub(crate) const LISTED_NAMES: usize = 10;

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
    /// GPUs per health verdict (for example `healthy`, `warning`, `critical`), over the nodes
    /// that answered; empty when the tool reports no per-GPU verdict.
    pub gpus_by_verdict: BTreeMap<String, u64>,
    /// Nodes per node-level health verdict, over the nodes that answered; empty when the tool
    /// reports no node verdict.
    pub nodes_by_verdict: BTreeMap<String, u64>,
    /// The most frequent XIDs across nodes, most frequent first (XID analysis only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_xids: Option<Vec<XidCount>>,
    /// GPU models and how many of each (inventory only), most common first.
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
                        *summary
                            .nodes_by_verdict
                            .entry(verdict.to_owned())
                            .or_default() += 1;
                    }
                    let gpus = gpu_entries(result);
                    // The agent's own `counts` where it reports them (every GPU, even when the
                    // answer lists only some); else the listed GPUs.
                    let counts = verdict_counts(result);
                    summary.gpus_total += counts
                        .as_ref()
                        .map_or(gpus.len() as u64, |c| c.iter().map(|(_, n)| n).sum());
                    for (verdict, n) in counts.iter().flatten() {
                        *summary.gpus_by_verdict.entry(verdict.clone()).or_default() += n;
                    }
                    for gpu in gpus {
                        if counts.is_none()
                            && let Some(verdict) = gpu_verdict(gpu)
                        {
                            *summary.gpus_by_verdict.entry(verdict).or_default() += 1;
                        }
                        if let Some(model) = gpu_model(gpu) {
                            *models.entry(model.to_owned()).or_default() += 1;
                        }
                    }
                    for (xid, count) in xid_counts(result) {
                        let entry = xids.entry(xid).or_default();
                        entry.0 += count;
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
            summary.gpu_models = Some(list);
        }
        summary
    }
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
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(node: &str, structured: Value) -> NodeOutcome {
        NodeOutcome {
            node: node.into(),
            pod: Some(format!("agent-{node}")),
            duration: Duration::from_millis(12),
            reply: Ok(CallToolResult::structured(structured, "{}")),
        }
    }

    fn failed(node: &str, kind: FailureKind) -> NodeOutcome {
        NodeOutcome {
            node: node.into(),
            pod: None,
            duration: Duration::from_millis(3),
            reply: Err(NodeFailure::new(kind, "boom")),
        }
    }

    #[test]
    fn health_fan_out_counts_verdicts_and_names_failed_nodes() {
        let answer = FanOutAnswer::build(
            "get_gpu_health",
            vec![
                ok(
                    "node-b",
                    json!({"verdict": "critical",
                           "gpus": [{"verdict": "critical"}, {"verdict": "healthy"}]}),
                ),
                ok(
                    "node-a",
                    json!({"verdict": "healthy", "gpus": [{"health": {"verdict": "healthy"}}]}),
                ),
                failed("node-d", FailureKind::NotReady),
                failed("node-c", FailureKind::Timeout),
                NodeOutcome {
                    reply: Ok(CallToolResult::error("NVML unavailable")),
                    ..ok("node-e", json!({}))
                },
            ],
        );
        let names: Vec<&str> = answer.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["node-a", "node-b", "node-c", "node-d", "node-e"]);
        let s = &answer.summary;
        assert_eq!(
            (s.nodes_total, s.nodes_ok, s.nodes_failed, s.nodes_not_ready),
            (5, 2, 2, 1)
        );
        assert_eq!(s.failed_nodes, ["node-c", "node-d", "node-e"]);
        assert_eq!(s.gpus_total, 3);
        assert_eq!(
            s.gpus_by_verdict,
            BTreeMap::from([("critical".into(), 1), ("healthy".into(), 2)])
        );
        assert_eq!(
            s.nodes_by_verdict,
            BTreeMap::from([("critical".into(), 1), ("healthy".into(), 1)])
        );
        assert_eq!(s.top_xids, None);
        assert_eq!(s.gpu_models, None);
        assert!(!answer.all_failed());

        let e = &answer.nodes[4];
        assert!(!e.ok);
        assert_eq!(
            e.error.as_ref().map(|f| f.kind),
            Some(FailureKind::ToolError)
        );
        assert_eq!(
            e.error.as_ref().map(|f| f.message.as_str()),
            Some("\"NVML unavailable\"")
        );
        assert_eq!(answer.nodes[0].duration_ms, 12);
        assert_eq!(answer.nodes[0].pod.as_deref(), Some("agent-node-a"));
    }

    #[test]
    fn inventory_fan_out_lists_models_most_common_first() {
        let answer = FanOutAnswer::build(
            GET_GPU_INVENTORY,
            vec![
                ok(
                    "a",
                    json!({"gpus": [{"name": "NVIDIA H100"}, {"name": "NVIDIA H100"}]}),
                ),
                ok(
                    "b",
                    json!({"gpus": [{"name": {"value": "NVIDIA A100"}}, {"name": "not_supported"},
                                    {"name": {"value": "NVIDIA H100"}}]}),
                ),
            ],
        );
        assert_eq!(
            answer.summary.gpu_models,
            Some(vec![
                ModelCount {
                    model: "NVIDIA H100".into(),
                    count: 3
                },
                ModelCount {
                    model: "NVIDIA A100".into(),
                    count: 1
                },
            ])
        );
        assert_eq!(answer.summary.gpus_total, 5);
    }

    #[test]
    fn xid_fan_out_ranks_xids_across_nodes() {
        let answer = FanOutAnswer::build(
            ANALYZE_XID_ERRORS,
            vec![
                ok(
                    "a",
                    json!({"events": [{"xid": 79}, {"xid": 48}, {"xid": 79}]}),
                ),
                ok(
                    "b",
                    json!({"groups": [{"xid": 48, "count": 5}], "events": [{"xid": 48}]}),
                ),
                ok("c", json!({"events": []})),
            ],
        );
        assert_eq!(
            answer.summary.top_xids,
            Some(vec![
                XidCount {
                    xid: 48,
                    count: 6,
                    node_count: 2,
                    nodes: vec!["a".into(), "b".into()]
                },
                XidCount {
                    xid: 79,
                    count: 2,
                    node_count: 1,
                    nodes: vec!["a".into()]
                },
            ])
        );
    }

    #[test]
    fn gpu_totals_come_from_the_agents_counts() {
        let counts = json!({"counts": {"healthy": 7, "warning": 0, "critical": 1},
                            "gpus": [{"verdict": "critical"}]});
        let answer = FanOutAnswer::build("get_gpu_health", vec![ok("a", counts)]);
        let s = &answer.summary;
        assert_eq!(s.gpus_total, 8);
        let want = BTreeMap::from([("critical".into(), 1), ("healthy".into(), 7)]);
        assert_eq!(s.gpus_by_verdict, want);
    }

    #[test]
    fn all_failing_is_detected() {
        let answer = FanOutAnswer::build(
            "get_gpu_health",
            vec![
                failed("a", FailureKind::Unreachable),
                failed("b", FailureKind::AgentError),
            ],
        );
        assert!(answer.all_failed());
        assert_eq!(answer.summary.nodes_failed, 2);
        assert!(FanOutAnswer::build("get_gpu_health", vec![]).all_failed());
    }

    #[test]
    fn entries_serialize_result_or_error() {
        let answer = FanOutAnswer::build(
            "get_gpu_health",
            vec![
                ok("a", json!({"gpus": []})),
                failed("b", FailureKind::Timeout),
            ],
        );
        let v = serde_json::to_value(&answer).unwrap();
        assert_eq!(v["nodes"][0]["result"], json!({"gpus": []}));
        assert!(v["nodes"][0].get("error").is_none());
        assert_eq!(v["nodes"][1]["error"]["kind"], "timeout");
        assert!(v["nodes"][1].get("result").is_none());
        let back: FanOutAnswer = serde_json::from_value(v).unwrap();
        assert_eq!(back, answer);
    }
}
