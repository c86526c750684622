//! Calls with `node`: one agent's answer, tagged with the node, narrowed as the client asked where
//! that tool's agent can narrow it.
//!
//! With `node` there is no fleet answer to shape, so the gateway's `detail` and `min_verdict`
//! become the agent's own arguments: `get_gpu_health` takes `detail` (`summary`, `problems`,
//! `full`) and `min_verdict`; `analyze_xid_errors` takes `detail` (`summary` or `full`), and the
//! gateway's `problems`, which for an Xid fan-out shows a node's groups without its events, is
//! its `summary`. `full` adds nothing: it is every agent's default, so an agent from before
//! `detail` is not asked twice for it. An agent from before those arguments refuses them by name;
//! it is asked once more with the client's other arguments and the answer says it is not narrowed
//! (`not_narrowed`), as the fan-outs do for such agents (`narrow`).
//!
//! The other tools' agents answer in full only, so with `node` they accept `detail: full` and
//! refuse `summary`, `problems` and `min_verdict` instead of ignoring them: a full answer to a
//! call that asked for less would read as if it had been narrowed. `node_pattern`, `node_limit`
//! and `cursor` choose and page the nodes of a fan-out; with one node named there is nothing to
//! choose or page, and a call that carries them mixes a fan-out with a drill-down (a pattern the
//! node may not match, a fan-out's cursor), so they are refused too rather than ignored.

use gpu_mcp_k8s::{NodeError, NodeName, quote_untrusted};
use gpu_mcp_model::args::{HealthDetail, XidDetail};
use gpu_mcp_model::{ANALYZE_XID_ERRORS, GET_GPU_HEALTH};
use gpu_mcp_protocol::{CallToolResult, Content, JsonObject};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aggregate::{NodeOutcome, result_text};
use crate::catalog::{ClusterCatalog, check_agent_arguments, known_nodes_hint, outcome_of};
use crate::fleet_args::{Detail, FleetArgsInput};
use crate::narrow::{refused_argument, with_added};

/// The answer of a GPU tool called with `node`: the agent's structured result as it is, tagged with
/// the node and the pod that answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct NodeAnswer {
    /// The Kubernetes node that answered.
    pub node: String,
    /// The agent pod on that node.
    #[serde(default)]
    pub pod: Option<String>,
    /// Present when the agent could not narrow its answer as `detail` or `min_verdict` asked (an
    /// agent from before those arguments): why; `result` is then its full answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_narrowed: Option<String>,
    /// The agent's `structuredContent`, unchanged.
    pub result: Value,
}

/// The arguments a call of `tool` with `node` adds for the client's `detail` and `min_verdict`,
/// or the message refusing the gateway arguments that mean nothing with `node`.
pub(crate) fn node_arguments(tool: &str, input: &FleetArgsInput) -> Result<JsonObject, String> {
    for (name, given) in [
        ("node_pattern", input.node_pattern.is_some()),
        ("node_limit", input.node_limit.is_some()),
        ("cursor", input.cursor.is_some()),
    ] {
        if given {
            return Err(format!(
                "Invalid argument `{name}`: it chooses or pages the nodes of a call without \
                 `node`, and with `node` only that node is asked. Leave out `{name}`, or leave \
                 out `node` to ask the fleet."
            ));
        }
    }
    let mut added = JsonObject::new();
    match tool {
        GET_GPU_HEALTH => {
            // `min_verdict` alone asks for what it trims, as it does without `node`.
            let detail = match (input.detail, input.min_verdict) {
                (Some(Detail::Summary), _) => Some(HealthDetail::Summary),
                (Some(Detail::Problems), _) | (None, Some(_)) => Some(HealthDetail::Problems),
                (Some(Detail::Full), _) | (None, None) => None,
            };
            if let Some(detail) = detail {
                added.insert("detail".into(), detail.as_str().into());
            }
            if let (Some(HealthDetail::Problems), Some(min)) = (detail, input.min_verdict) {
                added.insert("min_verdict".into(), min.as_str().into());
            }
        }
        ANALYZE_XID_ERRORS => {
            refuse_min_verdict(tool, input)?;
            if matches!(input.detail, Some(Detail::Summary | Detail::Problems)) {
                added.insert("detail".into(), XidDetail::Summary.as_str().into());
            }
        }
        _ => {
            refuse_min_verdict(tool, input)?;
            if let Some(detail @ (Detail::Summary | Detail::Problems)) = input.detail {
                return Err(format!(
                    "Invalid argument `detail`: with `node`, {tool} gives that agent's complete \
                     answer only (`full`, the default). Leave out `node` for the fleet's `{}` \
                     answer, or narrow with {tool}'s own arguments.",
                    detail.as_str()
                ));
            }
        }
    }
    Ok(added)
}

fn refuse_min_verdict(tool: &str, input: &FleetArgsInput) -> Result<(), String> {
    match input.min_verdict {
        Some(min) => Err(format!(
            "Invalid argument `min_verdict`: with `node`, {tool}'s answer is not trimmed by \
             verdict (only get_gpu_health's is). Leave out `node` for the fleet's nodes at `{}` \
             or worse.",
            min.as_str()
        )),
        None => Ok(()),
    }
}

/// What `argument` (`detail` or `min_verdict`) does with `node` for `tool`, appended to the
/// argument's description in that tool's definition.
pub(crate) fn with_node_words(tool: &str, argument: &str) -> Option<&'static str> {
    Some(match (tool, argument) {
        (GET_GPU_HEALTH, "detail") => {
            "With `node`: that node's answer at this detail: `full` (default) every GPU; \
             `problems` the verdict and counts of every GPU, and only the GPUs and findings at or \
             above `min_verdict`; `summary` the verdict and counts only."
        }
        (GET_GPU_HEALTH, "min_verdict") => {
            "With `node`: the mildest verdict listed under `detail: problems` (default \
             `warning`); given without `detail` it means `problems`."
        }
        (ANALYZE_XID_ERRORS, "detail") => {
            "With `node`: `full` (default) the node's Xid groups and individual events; `summary` \
             or `problems` the groups and counts only."
        }
        (_, "detail") => {
            "With `node`: only `full` (the default), the agent's complete answer; `summary` and \
             `problems` are refused."
        }
        (_, "min_verdict") => "Refused with `node`.",
        _ => return None,
    })
}

impl ClusterCatalog {
    /// Routes one call to `node` with the client's `arguments` and the `added` ones; an agent
    /// that refuses an added argument is asked once more without them. The router judges the
    /// node (unknown, not ready, breaker, deadline); this only words its verdict.
    pub(crate) async fn call_one(
        &self,
        tool: &str,
        node: NodeName,
        arguments: Option<JsonObject>,
        added: JsonObject,
    ) -> CallToolResult {
        // So that a refusal naming an added argument is about it, and not about one of the
        // client's that the agent's message lists beside it (as the fan-outs do).
        if !added.is_empty()
            && let Some(mut refused) = check_agent_arguments(tool, arguments.as_ref())
        {
            refused
                .content
                .push(Content::text("Nothing was sent to any node."));
            return refused;
        }
        let request = self.request(tool, with_added(arguments.as_ref(), &added));
        let routed = self.router().route_to_node(&node, &request).await;
        let routed = match routed.outcome {
            Err(NodeError::NotFound {
                node,
                known,
                synced,
                ..
            }) => {
                return CallToolResult::error(format!(
                    "Unknown node \"{node}\": no GPU diagnostics agent runs there.{}",
                    known_nodes_hint(Some(&node), known, synced)
                ));
            }
            Err(NodeError::NotReady { node, pod }) => {
                return CallToolResult::error(format!(
                    "Node \"{node}\" is known but its agent pod {} is not ready; try again \
                     shortly or pick another node.{}",
                    if pod.is_empty() { "(static)" } else { &pod },
                    self.known_nodes_hint(None)
                ));
            }
            _ => routed,
        };
        let mut outcome = outcome_of(routed);
        let mut not_narrowed = None;
        if let Some(refused) = refused_argument(&outcome, &added) {
            let again = self.request(tool, arguments);
            let mut second = outcome_of(self.router().route_to_node(&node, &again).await);
            second.duration += outcome.duration;
            outcome = second;
            not_narrowed = Some(format!(
                "The agent on {node} could not narrow its answer as asked: it refused `{refused}`, \
                 as an agent from before that argument does, so `result` is its full answer."
            ));
        }
        self.record(tool, &outcome);
        single_node_result(outcome, not_narrowed)
    }
}

/// The answer of a call with `node`: the agent's result tagged with the node, keeping `isError`,
/// and saying when it is not narrowed as asked.
fn single_node_result(outcome: NodeOutcome, not_narrowed: Option<String>) -> CallToolResult {
    let pod = outcome
        .pod
        .as_deref()
        .map_or_else(String::new, |p| format!(" (pod {p})"));
    match outcome.reply {
        Ok(mut reply) => match reply.structured_content.take() {
            Some(result) => {
                let said = reply.failed().then(|| {
                    format!(
                        "node {}{pod}: {}",
                        outcome.node,
                        quote_untrusted(&result_text(&reply))
                    )
                });
                let answer = NodeAnswer {
                    node: outcome.node,
                    pod: outcome.pod,
                    not_narrowed: not_narrowed.clone(),
                    result,
                };
                let mut tagged = match serde_json::to_value(&answer) {
                    Ok(v) => CallToolResult::from_structured(v),
                    Err(e) => {
                        return CallToolResult::error(format!("cannot encode the answer: {e}"));
                    }
                };
                tagged.is_error = reply.is_error;
                if let Some(said) = said {
                    tagged.content.insert(0, Content::text(said));
                }
                if let Some(note) = not_narrowed {
                    tagged.content.insert(0, Content::text(note));
                }
                tagged
            }
            None if reply.failed() => CallToolResult::error(format!(
                "node {}{pod}: {}",
                outcome.node,
                quote_untrusted(&result_text(&reply))
            )),
            None => {
                reply
                    .content
                    .insert(0, Content::text(format!("node {}{pod}:", outcome.node)));
                if let Some(note) = not_narrowed {
                    reply.content.insert(0, Content::text(note));
                }
                reply
            }
        },
        Err(failure) => CallToolResult::error(format!(
            "node {}{pod}: {} ({})",
            outcome.node,
            failure.message,
            failure.kind.as_str()
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(v: Value) -> FleetArgsInput {
        serde_json::from_value(v).unwrap()
    }

    fn added(tool: &str, v: Value) -> Result<Value, String> {
        node_arguments(tool, &input(v)).map(Value::Object)
    }

    #[test]
    fn health_takes_the_clients_detail_and_min_verdict() {
        let h = GET_GPU_HEALTH;
        assert_eq!(added(h, json!({})), Ok(json!({})));
        assert_eq!(added(h, json!({"detail": "full"})), Ok(json!({})));
        assert_eq!(
            added(h, json!({"detail": "summary"})),
            Ok(json!({"detail": "summary"}))
        );
        assert_eq!(
            added(h, json!({"detail": "problems"})),
            Ok(json!({"detail": "problems"}))
        );
        assert_eq!(
            added(h, json!({"detail": "problems", "min_verdict": "critical"})),
            Ok(json!({"detail": "problems", "min_verdict": "critical"}))
        );
        // `min_verdict` alone means `problems`, as it does without `node`.
        assert_eq!(
            added(h, json!({"min_verdict": "degraded"})),
            Ok(json!({"detail": "problems", "min_verdict": "degraded"}))
        );
        // It trims nothing under `summary` or `full`, for the agent as for a fan-out.
        assert_eq!(
            added(h, json!({"detail": "summary", "min_verdict": "critical"})),
            Ok(json!({"detail": "summary"}))
        );
    }

    #[test]
    fn xids_take_detail_and_refuse_min_verdict() {
        let x = ANALYZE_XID_ERRORS;
        assert_eq!(added(x, json!({"detail": "full"})), Ok(json!({})));
        for detail in ["summary", "problems"] {
            assert_eq!(
                added(x, json!({"detail": detail})),
                Ok(json!({"detail": "summary"}))
            );
        }
        let refused = added(x, json!({"min_verdict": "critical"})).unwrap_err();
        assert!(
            refused.starts_with("Invalid argument `min_verdict`"),
            "{refused}"
        );
    }

    #[test]
    fn tools_that_answer_in_full_only_refuse_less() {
        for tool in [
            "get_gpu_inventory",
            "get_gpu_processes",
            "get_nvlink_topology",
        ] {
            assert_eq!(added(tool, json!({"detail": "full"})), Ok(json!({})));
            for bad in [
                json!({"detail": "summary"}),
                json!({"detail": "problems"}),
                json!({"min_verdict": "warning"}),
            ] {
                let refused = added(tool, bad.clone()).unwrap_err();
                assert!(refused.contains(tool), "{tool} {bad}: {refused}");
            }
            assert!(with_node_words(tool, "detail").is_some());
        }
    }

    #[test]
    fn node_pattern_limit_and_cursor_are_refused_with_node() {
        for (name, value) in [
            ("node_pattern", json!("gpu-*")),
            ("node_limit", json!(5)),
            ("cursor", json!("abc")),
        ] {
            for tool in [GET_GPU_HEALTH, ANALYZE_XID_ERRORS, "get_gpu_inventory"] {
                let refused = added(tool, json!({ name: value })).unwrap_err();
                assert!(
                    refused.starts_with(&format!("Invalid argument `{name}`")),
                    "{refused}"
                );
            }
        }
    }
}
