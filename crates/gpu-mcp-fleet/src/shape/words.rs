//! The fleet answer in words: the headline, what needs attention, what did not answer, and
//! what was left out.

use gpu_mcp_model::{ANALYZE_XID_ERRORS, GET_GPU_HEALTH, GET_GPU_PROCESSES, GET_NVLINK_TOPOLOGY};
use serde_json::Value;

use gpu_mcp_k8s::quote_untrusted;

use super::{FleetAnswer, ProblemNode};
use crate::aggregate::{Summary, gpu_entries, top_level_verdict};
use crate::fleet_args::{Detail, FleetArgs};
use crate::verdict::parse_verdict;

fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One sentence over the totals.
pub(super) fn headline(tool: &str, s: &Summary, attention: usize) -> String {
    if s.nodes_ok == 0 {
        return format!(
            "All {} failed to answer {tool}.",
            plural(s.nodes_total as u64, "node", "nodes")
        );
    }
    let unanswered = s.nodes_failed + s.nodes_not_ready;
    let failed = if unanswered == 0 {
        String::new()
    } else {
        format!(
            "; {} did not answer",
            plural(unanswered as u64, "node", "nodes")
        )
    };
    match tool {
        GET_GPU_HEALTH => {
            let mut by: Vec<String> = ["critical", "degraded", "warning"]
                .iter()
                .filter_map(|v| {
                    s.gpus_by_verdict
                        .get(*v)
                        .filter(|n| **n > 0)
                        .map(|n| format!("{n} {v}"))
                })
                .collect();
            if by.is_empty() {
                by.push("none".into());
            }
            let healthy = s.gpus_by_verdict.get("healthy").copied().unwrap_or(0);
            format!(
                "{} of {} need attention ({} of {} GPUs not healthy: {}){failed}. {healthy} GPUs healthy.",
                attention,
                plural(s.nodes_total as u64, "node", "nodes"),
                s.gpus_total.saturating_sub(healthy),
                s.gpus_total,
                by.join(", ")
            )
        }
        ANALYZE_XID_ERRORS => {
            let top = s
                .top_xids
                .as_ref()
                .and_then(|t| t.first())
                .map_or_else(String::new, |x| {
                    format!(
                        "; most frequent Xid {} ({} on {})",
                        x.xid,
                        plural(x.count, "event", "events"),
                        plural(x.node_count as u64, "node", "nodes")
                    )
                });
            let with: u64 = s.top_xids.as_ref().map_or(0, |t| {
                t.iter().fold(0u64, |sum, x| sum.saturating_add(x.count))
            });
            format!(
                "{} across {} answering{top}{failed}.",
                plural(with, "Xid event", "Xid events"),
                plural(s.nodes_ok as u64, "node", "nodes"),
            )
        }
        GET_GPU_PROCESSES => format!(
            "{} of {} {} processes or pods on GPUs that need attention; {} on {} answering{failed}.",
            attention,
            plural(s.nodes_total as u64, "node", "nodes"),
            if attention == 1 { "has" } else { "have" },
            plural(s.gpus_total, "GPU", "GPUs"),
            plural(s.nodes_ok as u64, "node", "nodes"),
        ),
        GET_NVLINK_TOPOLOGY => {
            let mut by: Vec<String> = ["critical", "degraded", "warning"]
                .iter()
                .filter_map(|v| {
                    s.nodes_by_verdict
                        .get(*v)
                        .filter(|n| **n > 0)
                        .map(|n| format!("{n} {v}"))
                })
                .collect();
            if by.is_empty() {
                by.push("none".into());
            }
            format!(
                "{attention} of {} have interconnect findings ({}){failed}; {} read.",
                plural(s.nodes_total as u64, "node", "nodes"),
                by.join(", "),
                plural(s.gpus_total, "GPU", "GPUs"),
            )
        }
        _ => format!(
            "{} on {} of {} answering{failed}.",
            plural(s.gpus_total, "GPU", "GPUs"),
            s.nodes_ok,
            plural(s.nodes_total as u64, "node", "nodes"),
        ),
    }
}

pub(super) fn how_to_get_more(tool: &str, args: &FleetArgs, a: &FleetAnswer) -> String {
    let mut how = Vec::new();
    if a.next_cursor.is_some() {
        how.push(
            "pass `cursor` = `next_cursor` (same other arguments) for the next page".to_owned(),
        );
    }
    if args.detail != Detail::Full {
        how.push(format!(
            "call {tool} with `node` for one node's complete answer, or `detail: \"full\"` for every node's, {} per page",
            args.node_limit
        ));
    }
    if a.omitted.failed_nodes > 0 {
        how.push("list_gpu_nodes names every node with its state".to_owned());
    }
    if how.is_empty() {
        "nothing was left out".to_owned()
    } else {
        let mut s = how.join("; ");
        s.push('.');
        s
    }
}

/// The answer in words, for the text block: the headline, what needs attention with reason and
/// action, the nodes that did not answer, then what was left out. Never the JSON again.
pub(crate) fn words(tool: &str, a: &FleetAnswer) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{}", a.headline);
    if !a.problems.is_empty() {
        let _ = writeln!(out, "\nNeeds attention (worst first):");
        for p in &a.problems {
            let _ = writeln!(out, "- {} [{}]", p.node, p.verdict.as_str());
            for line in problem_lines(tool, p) {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    if !a.nodes.is_empty() {
        let _ = writeln!(out, "\nNodes on this page:");
        for n in &a.nodes {
            let state = match (&n.result, &n.error) {
                (Some(r), _) if n.ok => top_level_verdict(r)
                    .map(word)
                    .unwrap_or_else(|| format!("{} GPUs", gpu_entries(r).len())),
                (_, Some(f)) => format!(
                    "no answer ({}): {}",
                    f.kind.as_str(),
                    f.message.escape_debug()
                ),
                _ => "no answer".to_owned(),
            };
            let _ = writeln!(out, "- {}: {state}", n.name);
        }
    }
    if !a.failures.is_empty() {
        let _ = writeln!(out, "\nDid not answer:");
        for f in &a.failures {
            let _ = writeln!(
                out,
                "- {} ({}): {}",
                f.node,
                f.kind.as_str(),
                f.message.escape_debug()
            );
        }
    }
    let o = &a.omitted;
    let mut left = Vec::new();
    if o.healthy_nodes > 0 {
        left.push(plural(
            o.healthy_nodes as u64,
            "healthy node",
            "healthy nodes",
        ));
    }
    if o.problem_nodes > 0 {
        left.push(format!(
            "{} needing attention",
            plural(o.problem_nodes as u64, "more node", "more nodes")
        ));
    }
    if o.failed_nodes > 0 {
        left.push(format!(
            "{} that did not answer",
            plural(o.failed_nodes as u64, "more node", "more nodes")
        ));
    }
    if o.nodes > 0 {
        left.push(plural(
            o.nodes as u64,
            "node on later pages",
            "nodes on later pages",
        ));
    }
    if !left.is_empty() {
        let _ = writeln!(
            out,
            "\nLeft out: {}. To get them: {}",
            left.join(", "),
            o.how
        );
    }
    truncate_words(out)
}

/// What a problem node's text says: one line per finding or Xid group.
fn problem_lines(tool: &str, p: &ProblemNode) -> Vec<String> {
    // The agent's sentences are quoted, its words and names shown only when plain.
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map_or_else(String::new, quote_untrusted)
    };
    let severity = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map_or_else(String::new, word)
    };
    let number = |v: &Value, k: &str| v.get(k).map_or_else(|| "?".to_owned(), scalar);
    let mut lines = Vec::new();
    match tool {
        GET_GPU_HEALTH => {
            for g in p
                .details
                .get("gpus")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let gpu = format!(
                    "GPU {}{}",
                    number(g, "index"),
                    g.get("uuid")
                        .and_then(Value::as_str)
                        .map_or_else(String::new, |u| format!(" ({})", name(u)))
                );
                for f in g
                    .get("reasons")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    lines.push(format!(
                        "{gpu} {}: {} (observed {}, threshold {}). Action: {}",
                        severity(f, "severity"),
                        text(f, "summary"),
                        text(f, "observed"),
                        text(f, "threshold"),
                        text(f, "action")
                    ));
                }
            }
            for f in p
                .details
                .get("node_findings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                lines.push(format!(
                    "node {}: {}. Action: {}",
                    severity(f, "severity"),
                    text(f, "summary"),
                    text(f, "action")
                ));
            }
        }
        ANALYZE_XID_ERRORS => {
            for g in p
                .details
                .get("groups")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                lines.push(format!(
                    "GPU {} Xid {} {} ({}, {}x, last {}). Action: {}",
                    number(g, "gpu_index"),
                    number(g, "xid"),
                    text(g, "name"),
                    severity(g, "severity"),
                    number(g, "count"),
                    g.get("last_seen")
                        .and_then(Value::as_str)
                        .map_or_else(|| "unknown".to_owned(), name),
                    text(g, "action")
                ));
            }
        }
        GET_GPU_PROCESSES => {
            for g in p
                .details
                .get("gpus")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let procs: Vec<String> = g
                    .get("processes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|x| {
                        let who = x
                            .get("pod")
                            .map_or_else(|| "owner unknown".to_owned(), pod_ref);
                        let process = x
                            .get("name")
                            .and_then(Value::as_str)
                            .map_or_else(String::new, name);
                        format!("pid {} {process} ({who})", number(x, "pid"))
                    })
                    .collect();
                lines.push(format!(
                    "GPU {} {}: {}",
                    number(g, "index"),
                    severity(g, "verdict"),
                    if procs.is_empty() {
                        "no processes".to_owned()
                    } else {
                        procs.join(", ")
                    }
                ));
            }
            for a in p
                .details
                .get("allocations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let holders: Vec<String> = a
                    .get("holders")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(pod_ref)
                    .collect();
                lines.push(format!(
                    "{} ({}) allocated to {}",
                    a.get("device_uuid")
                        .and_then(Value::as_str)
                        .map_or_else(String::new, name),
                    severity(a, "verdict"),
                    holders.join(", ")
                ));
            }
        }
        GET_NVLINK_TOPOLOGY => {
            for f in p
                .details
                .get("findings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let who = match (f.get("gpu"), f.get("peer")) {
                    (Some(a), Some(b)) => format!("GPU {} and GPU {}", scalar(a), scalar(b)),
                    (Some(a), None) => format!("GPU {}", scalar(a)),
                    _ => "node".to_owned(),
                };
                lines.push(format!(
                    "{who} {}: {} (observed {}, threshold {}). Action: {}",
                    severity(f, "severity"),
                    text(f, "summary"),
                    text(f, "observed"),
                    text(f, "threshold"),
                    text(f, "action")
                ));
            }
        }
        _ => {
            if let Some(s) = &p.summary {
                lines.push(quote_untrusted(s));
            } else {
                lines.push(quote_untrusted(&p.details.to_string()));
            }
        }
    }
    lines
}

/// The text block's bound.
pub(crate) const TEXT_BYTES: usize = 12 * 1024;

/// A container as `namespace/pod/container`.
fn pod_ref(p: &Value) -> String {
    let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
    name(&format!(
        "{}/{}/{}",
        text("namespace"),
        text("pod"),
        text("container")
    ))
}

/// The most characters of a name (a UUID, a pod, a time) shown as it is.
const PLAIN_NAME_CHARS: usize = 128;

/// A name an agent wrote, as it is when it is plain (letters, digits and `-_.:/@+`, short),
/// else quoted: so what an agent writes can neither start a line nor hide in the text.
pub(crate) fn name(text: &str) -> String {
    let plain = !text.is_empty()
        && text.len() <= PLAIN_NAME_CHARS
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@+".contains(c));
    if plain {
        text.to_owned()
    } else {
        quote_untrusted(text)
    }
}

/// A verdict or severity word an agent wrote: the model's word, `info`, or the string quoted.
fn word(text: &str) -> String {
    match parse_verdict(text) {
        Some(v) => v.as_str().to_owned(),
        None if text == "info" => text.to_owned(),
        None => quote_untrusted(text),
    }
}

/// A number, boolean or name from an agent's answer (an index, a count, a PID).
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => name(s),
        Value::Number(_) | Value::Bool(_) | Value::Null => value.to_string(),
        other => quote_untrusted(&other.to_string()),
    }
}

fn truncate_words(mut text: String) -> String {
    if text.len() <= TEXT_BYTES {
        return text;
    }
    let mut cut = TEXT_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    if let Some(nl) = text[..cut].rfind('\n') {
        cut = nl;
    }
    text.truncate(cut);
    text.push_str("\n… (cut to stay short; the structured content has the rest of this page)\n");
    text
}
