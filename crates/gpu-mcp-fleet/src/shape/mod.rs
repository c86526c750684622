//! The bounded fan-out answer: the fleet's totals first, then only what needs attention, worst
//! first, then what was left out and how to get it; or, with `detail: full`, every node's
//! answer a page at a time. Whatever the fleet size, one answer stays within [`BUDGET_BYTES`]
//! of details, and every node is counted in the summary.

use gpu_mcp_model::output::Verdict;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aggregate::{FailureKind, NodeEntry, Summary};
use crate::fleet_args::{Cursor, Detail, FleetArgs};
use crate::verdict::{node_verdict, rank};

mod problems;
mod words;

use problems::problem_of;
use words::{headline, how_to_get_more};
pub(crate) use words::{name, words};

/// The most bytes of per-node details (problems, failures, full entries) one answer carries;
/// with the summary and the words around them the structured answer stays under 24 KB.
pub(crate) const BUDGET_BYTES: usize = 16 * 1024;
/// How many failed nodes the first page names (the rest are counted by kind).
const LISTED_FAILURES: usize = 25;
/// How many characters of a node's error message an answer quotes.
const FAILURE_MESSAGE_CHARS: usize = 240;

/// The answer of a GPU tool called without `node`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct FleetAnswer {
    /// One sentence: how many nodes and GPUs need attention and how many did not answer.
    pub headline: String,
    /// What this answer details: `summary`, `problems` or `full`.
    pub detail: String,
    /// Totals over every node asked.
    pub summary: Summary,
    /// Nodes that need attention, worst first, each with only its non-healthy GPUs and their
    /// findings (`detail: problems`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ProblemNode>,
    /// Nodes that did not answer, with the reason (first page only; all are counted in
    /// `summary`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<FailedNode>,
    /// Every node's complete answer, in name order, one page (`detail: full`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeEntry>,
    /// What this answer left out, and how to get it.
    pub omitted: Omitted,
    /// Pass as `cursor` (with the same other arguments) for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One node that needs attention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct ProblemNode {
    /// The Kubernetes node (pass it as `node` for its full answer).
    pub node: String,
    /// The node's verdict.
    pub verdict: Verdict,
    /// The agent's own one-paragraph summary (its first 400 characters), when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The agent's details of what is wrong, trimmed to the GPUs, findings or Xid groups at or
    /// above `min_verdict`: health `gpus` (with `reasons`) and `node_findings`, Xid `groups`,
    /// topology `findings` (with the `interconnect`), or inventory GPUs with fields that could
    /// not be read; `left_out` instead when they alone are more than one answer holds.
    pub details: Value,
}

/// One node that did not answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct FailedNode {
    /// The Kubernetes node.
    pub node: String,
    /// The class of failure.
    pub kind: FailureKind,
    /// What happened, in words (quoted from the router or the agent, shortened).
    pub message: String,
}

/// What an answer left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Omitted {
    /// Nodes that answered healthy and are not detailed.
    pub healthy_nodes: usize,
    /// Nodes needing attention that this page did not detail (see `next_cursor`).
    pub problem_nodes: usize,
    /// Failed nodes not named in `failures` (they are counted in `summary`).
    pub failed_nodes: usize,
    /// Nodes not on this page (`detail: full`).
    pub nodes: usize,
    /// How to get what was left out, in words.
    pub how: String,
}

/// Shapes the fan-out answer of `tool` over every node's entry (sorted by name).
pub(crate) fn shape(
    tool: &str,
    entries: Vec<NodeEntry>,
    summary: Summary,
    args: &FleetArgs,
) -> Result<FleetAnswer, String> {
    let attention = entries
        .iter()
        .filter(|e| e.ok)
        .filter_map(|e| e.result.as_ref().and_then(node_verdict))
        .filter(|v| *v != Verdict::Healthy)
        .count();
    let mut answer = FleetAnswer {
        headline: headline(tool, &summary, attention),
        detail: args.detail.as_str().to_owned(),
        summary,
        problems: Vec::new(),
        failures: Vec::new(),
        nodes: Vec::new(),
        omitted: Omitted::default(),
        next_cursor: None,
    };
    let mut budget = Budget::new(BUDGET_BYTES);
    let first_page = args.cursor.is_none();
    let failed: Vec<&NodeEntry> = entries.iter().filter(|e| !e.ok).collect();
    if first_page && args.detail != Detail::Full {
        for e in failed.iter().take(LISTED_FAILURES) {
            let f = failed_node(e);
            if !budget.take(&f) {
                break;
            }
            answer.failures.push(f);
        }
    }
    answer.omitted.failed_nodes = failed.len() - answer.failures.len();
    match args.detail {
        Detail::Summary => {
            answer.omitted.healthy_nodes = count_healthy(&entries, args.min_verdict);
            answer.omitted.problem_nodes =
                entries.iter().filter(|e| e.ok).count() - answer.omitted.healthy_nodes;
        }
        Detail::Problems => {
            let after = args
                .cursor
                .as_deref()
                .map(|c| Cursor::decode(c, 'p'))
                .transpose()?;
            let mut problems: Vec<(u8, ProblemNode)> = entries
                .iter()
                .filter_map(|e| problem_of(tool, e, args.min_verdict))
                .map(|p| (rank(p.verdict), p))
                .collect();
            problems.sort_by(|(ra, a), (rb, b)| rb.cmp(ra).then_with(|| a.node.cmp(&b.node)));
            answer.omitted.healthy_nodes = entries.iter().filter(|e| e.ok).count() - problems.len();
            let remaining: Vec<(u8, ProblemNode)> = problems
                .into_iter()
                .filter(|(r, p)| {
                    after
                        .as_ref()
                        .is_none_or(|c| c.before_worst_first(*r, &p.node))
                })
                .collect();
            let total = remaining.len();
            let mut last = None;
            for (r, mut p) in remaining {
                if answer.problems.len() >= args.node_limit {
                    break;
                }
                if !budget.take(&p) {
                    if !answer.problems.is_empty() {
                        break;
                    }
                    // A page details at least one node: one whose details alone outgrow the
                    // budget is named with its verdict, and its details are left to `node`.
                    p.details = too_large(tool, &p.details);
                    budget.force(&p);
                }
                last = Some((r, p.node.clone()));
                answer.problems.push(p);
            }
            answer.omitted.problem_nodes = total - answer.problems.len();
            if answer.omitted.problem_nodes > 0
                && let Some((rank, node)) = last
            {
                answer.next_cursor = Some(
                    Cursor {
                        section: 'p',
                        rank,
                        node,
                    }
                    .encode(),
                );
            }
        }
        Detail::Full => {
            let after = args
                .cursor
                .as_deref()
                .map(|c| Cursor::decode(c, 'f'))
                .transpose()?;
            let remaining: Vec<NodeEntry> = entries
                .into_iter()
                .filter(|e| {
                    after
                        .as_ref()
                        .is_none_or(|c| e.name.as_str() > c.node.as_str())
                })
                .collect();
            let total = remaining.len();
            for e in remaining {
                if answer.nodes.len() >= args.node_limit
                    || (!answer.nodes.is_empty() && !budget.take(&e))
                {
                    break;
                }
                answer.nodes.push(e);
            }
            answer.omitted.nodes = total - answer.nodes.len();
            answer.omitted.failed_nodes = 0;
            if answer.omitted.nodes > 0
                && let Some(last) = answer.nodes.last()
            {
                answer.next_cursor = Some(
                    Cursor {
                        section: 'f',
                        rank: 0,
                        node: last.name.clone(),
                    }
                    .encode(),
                );
            }
        }
    }
    answer.omitted.how = how_to_get_more(tool, args, &answer);
    Ok(answer)
}

/// A byte budget for the details of one answer.
struct Budget {
    left: usize,
}

impl Budget {
    fn new(bytes: usize) -> Self {
        Self { left: bytes }
    }

    /// Takes the encoded size of `item`; false (and nothing taken) when it does not fit.
    fn take<T: Serialize>(&mut self, item: &T) -> bool {
        let size = encoded_size(item);
        if size > self.left {
            return false;
        }
        self.left -= size;
        true
    }

    /// Takes the encoded size of `item` whether it fits or not.
    fn force<T: Serialize>(&mut self, item: &T) {
        self.left = self.left.saturating_sub(encoded_size(item));
    }
}

fn encoded_size<T: Serialize>(item: &T) -> usize {
    serde_json::to_vec(item).map_or(usize::MAX, |v| v.len())
}

/// What stands for a problem node's details that alone are more than one answer holds.
fn too_large(tool: &str, details: &Value) -> Value {
    serde_json::json!({
        "left_out": format!(
            "{} bytes of details, more than one answer holds: call {tool} with `node` for them",
            encoded_size(details)
        )
    })
}

fn failed_node(e: &NodeEntry) -> FailedNode {
    let (kind, message) = e.error.as_ref().map_or_else(
        || (FailureKind::InvalidResponse, "no result".to_owned()),
        |f| (f.kind, f.message.clone()),
    );
    let mut message: String = message.chars().take(FAILURE_MESSAGE_CHARS).collect();
    if message.len() < e.error.as_ref().map_or(0, |f| f.message.len()) {
        message.push('…');
    }
    FailedNode {
        node: e.name.clone(),
        kind,
        message,
    }
}

fn count_healthy(entries: &[NodeEntry], min: Verdict) -> usize {
    entries
        .iter()
        .filter(|e| e.ok)
        .filter(|e| {
            e.result
                .as_ref()
                .and_then(node_verdict)
                .is_none_or(|v| rank(v) < rank(min) || v == Verdict::Healthy)
        })
        .count()
}
