//! What a node's answer says needs attention, trimmed to what the fleet answer shows.

use gpu_mcp_model::output::Verdict;
use gpu_mcp_model::{
    ANALYZE_XID_ERRORS, GET_GPU_HEALTH, GET_GPU_INVENTORY, GET_GPU_PROCESSES, GET_NVLINK_TOPOLOGY,
};
use serde_json::{Value, json};

use super::ProblemNode;
use crate::aggregate::{NodeEntry, clip, gpu_entries};
use crate::verdict::{node_verdict, parse_verdict, rank};

/// Most processes shown per GPU of a node that needs attention (the agent lists the biggest
/// first; `node` gives the complete list).
const PROCESSES_PER_GPU: usize = 8;
/// The most characters of an agent's own summary a problem node repeats.
const SUMMARY_CHARS: usize = 400;

/// The node's problems at or above `min`, or `None` when it has none to show.
pub(super) fn problem_of(tool: &str, e: &NodeEntry, min: Verdict) -> Option<ProblemNode> {
    let result = e.result.as_ref().filter(|_| e.ok)?;
    let at_least = |v: Option<Verdict>| v.is_some_and(|v| rank(v) >= rank(min) && rank(v) > 0);
    let verdict_of =
        |v: &Value, key: &str| v.get(key).and_then(Value::as_str).and_then(parse_verdict);
    let summary = result
        .get("summary")
        .or_else(|| result.get("headline"))
        .and_then(Value::as_str)
        .map(|s| clip(s, SUMMARY_CHARS));
    let (verdict, details) = match tool {
        GET_GPU_HEALTH => {
            let verdict = node_verdict(result)?;
            if !at_least(Some(verdict)) {
                return None;
            }
            let gpus: Vec<Value> = gpu_entries(result)
                .iter()
                .filter(|g| at_least(verdict_of(g, "verdict")))
                .map(|g| {
                    let reasons = findings_at_least(g, "reasons", min);
                    pick(
                        g,
                        &["index", "verdict", "uuid", "name", "pci_bus_id"],
                        [("reasons", Value::Array(reasons))],
                    )
                })
                .collect();
            let node_findings = findings_at_least(result, "node_findings", min);
            let mut details = json!({"gpus": gpus});
            if !node_findings.is_empty() {
                details["node_findings"] = Value::Array(node_findings);
            }
            (verdict, details)
        }
        ANALYZE_XID_ERRORS => {
            let groups: Vec<Value> = result
                .get("groups")
                .and_then(Value::as_array)
                .map(|g| {
                    g.iter()
                        .filter(|g| at_least(verdict_of(g, "severity").or_else(|| xid_severity(g))))
                        .map(|g| {
                            pick(
                                g,
                                &[
                                    "gpu_index",
                                    "gpu_uuid",
                                    "xid",
                                    "name",
                                    "severity",
                                    "count",
                                    "last_seen",
                                    "action",
                                ],
                                [],
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let verdict = groups
                .iter()
                .filter_map(|g| verdict_of(g, "severity").or_else(|| xid_severity(g)))
                .max_by_key(|v| rank(*v))?;
            (verdict, json!({"groups": groups}))
        }
        GET_GPU_PROCESSES => {
            // Who is on the GPUs that need attention: their processes (the biggest few) and
            // the containers allocated them.
            let gpus: Vec<Value> = gpu_entries(result)
                .iter()
                .filter(|g| at_least(verdict_of(g, "verdict")))
                .map(|g| {
                    let processes: Vec<Value> = g
                        .get("processes")
                        .and_then(Value::as_array)
                        .map(|p| {
                            p.iter()
                                .take(PROCESSES_PER_GPU)
                                .map(|p| {
                                    let mut v = pick(p, &["pid", "name", "used_memory_bytes"], []);
                                    if let Some(pod) = p.get("owner").and_then(|o| o.get("pod")) {
                                        v["pod"] = pod.clone();
                                    }
                                    v
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    pick(
                        g,
                        &["index", "uuid", "verdict"],
                        [("processes", Value::Array(processes))],
                    )
                })
                .collect();
            let allocations: Vec<Value> = result
                .get("allocations")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter(|a| at_least(verdict_of(a, "verdict")))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let verdict = gpus
                .iter()
                .chain(&allocations)
                .filter_map(|g| verdict_of(g, "verdict"))
                .max_by_key(|v| rank(*v))?;
            (verdict, json!({"gpus": gpus, "allocations": allocations}))
        }
        GET_NVLINK_TOPOLOGY => {
            let verdict = verdict_of(result, "verdict")?;
            if !at_least(Some(verdict)) {
                return None;
            }
            let findings = findings_at_least(result, "findings", min);
            let mut details = json!({"findings": findings});
            if let Some(i) = result.get("interconnect").filter(|v| !v.is_null()) {
                details["interconnect"] = i.clone();
            }
            (verdict, details)
        }
        GET_GPU_INVENTORY => {
            let gpus: Vec<Value> = gpu_entries(result)
                .iter()
                .filter(|g| {
                    g.get("unavailable")
                        .and_then(Value::as_object)
                        .is_some_and(|u| !u.is_empty())
                })
                .map(|g| {
                    pick(
                        g,
                        &["index", "uuid", "name", "pci_bus_id", "unavailable"],
                        [],
                    )
                })
                .collect();
            if gpus.is_empty() || rank(min) > rank(Verdict::Warning) {
                return None;
            }
            (
                Verdict::Warning,
                json!({"gpus_with_unreadable_fields": gpus}),
            )
        }
        _ => {
            let verdict = verdict_of(result, "verdict")?;
            if !at_least(Some(verdict)) {
                return None;
            }
            (verdict, Value::Null)
        }
    };
    Some(ProblemNode {
        node: e.name.clone(),
        verdict,
        summary,
        details,
    })
}

/// The findings listed under `key` of `value` whose severity is at or above `min` (and not
/// healthy).
fn findings_at_least(value: &Value, key: &str, min: Verdict) -> Vec<Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|f| {
                    f.get("severity")
                        .and_then(Value::as_str)
                        .and_then(parse_verdict)
                        .is_some_and(|v| rank(v) >= rank(min) && rank(v) > 0)
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// An Xid group's severity (`info`, `warning`, `critical`) as a verdict.
fn xid_severity(group: &Value) -> Option<Verdict> {
    match group.get("severity").and_then(Value::as_str)? {
        "info" => Some(Verdict::Healthy),
        other => parse_verdict(other),
    }
}

/// The listed keys of `value` (when present) plus `extra`.
fn pick<const N: usize>(value: &Value, keys: &[&str], extra: [(&str, Value); N]) -> Value {
    let mut out = serde_json::Map::new();
    for k in keys {
        if let Some(v) = value.get(*k).filter(|v| !v.is_null()) {
            out.insert((*k).to_owned(), v.clone());
        }
    }
    for (k, v) in extra {
        out.insert(k.to_owned(), v);
    }
    Value::Object(out)
}
