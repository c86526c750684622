//! Only the work a fan-out answer needs: the arguments a fan-out adds to the call it forwards,
//! so that each agent sends what the fleet answer uses (its verdict, counts and summary, and
//! only what needs attention) instead of its full answer; and the older agent that refuses
//! them, which is asked again without them (a call with `node` asks such an agent again the
//! same way, see `single`).
//!
//! The fleet answer is the same either way: under `detail: summary` and `problems` the gateway
//! reads a health answer's verdict, `counts`, `summary`, the GPUs and findings at or above
//! `min_verdict` and its node-level findings, and an Xid answer's `groups` (never its events),
//! which is what a `problems` health answer and a `summary` Xid answer hold.

use gpu_mcp_model::args::{HealthDetail, XidDetail};
use gpu_mcp_model::{ANALYZE_XID_ERRORS, GET_GPU_HEALTH};
use gpu_mcp_protocol::JsonObject;

use crate::aggregate::{FailureKind, NodeOutcome, result_text};
use crate::fleet_args::{Detail, FleetArgs};

/// The arguments added to a fan-out of `tool` under `args`; empty for `detail: full` and for
/// the tools that list everything they report.
pub(crate) fn narrowing(tool: &str, args: &FleetArgs) -> JsonObject {
    let mut added = JsonObject::new();
    if args.detail == Detail::Full {
        return added;
    }
    match tool {
        GET_GPU_HEALTH => {
            added.insert("detail".into(), HealthDetail::Problems.as_str().into());
            added.insert("min_verdict".into(), args.min_verdict.as_str().into());
        }
        ANALYZE_XID_ERRORS => {
            added.insert("detail".into(), XidDetail::Summary.as_str().into());
        }
        _ => {}
    }
    added
}

/// `arguments` with `added`'s members.
pub(crate) fn with_added(arguments: Option<&JsonObject>, added: &JsonObject) -> Option<JsonObject> {
    if added.is_empty() {
        return arguments.cloned();
    }
    let mut narrowed = arguments.cloned().unwrap_or_default();
    narrowed.extend(added.iter().map(|(k, v)| (k.clone(), v.clone())));
    Some(narrowed)
}

/// Whether `outcome` is an agent refusing one of the `added` arguments: a tool error or a
/// JSON-RPC error whose message names one of them, as an agent from before they existed answers
/// (its arguments parser refuses an unknown field by name). The client's own arguments were
/// checked with the same parser before anything was sent, so such a refusal is about them.
pub(crate) fn refuses_added(outcome: &NodeOutcome, added: &JsonObject) -> bool {
    refused_argument(outcome, added).is_some()
}

/// The first of the `added` arguments that `outcome` refuses by name (see [`refuses_added`]).
pub(crate) fn refused_argument<'a>(
    outcome: &NodeOutcome,
    added: &'a JsonObject,
) -> Option<&'a str> {
    let message = match &outcome.reply {
        Ok(reply) if reply.failed() => result_text(reply),
        Err(failure) if failure.kind == FailureKind::AgentError => failure.message.clone(),
        _ => return None,
    };
    added.keys().map(String::as_str).find(|name| {
        message.contains(&format!("`{name}`"))
            || message.contains(&format!("\"{name}\""))
            || message.contains(&format!("\\\"{name}\\\""))
            || message.contains(&format!("'{name}'"))
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gpu_mcp_model::args::{HealthArgs, XidArgs};
    use gpu_mcp_model::output::Verdict;
    use gpu_mcp_protocol::CallToolResult;
    use gpu_mcp_service::parse_arguments;
    use serde_json::{Value, json};

    use super::*;
    use crate::aggregate::NodeFailure;

    fn args(detail: Detail, min_verdict: Verdict) -> FleetArgs {
        FleetArgs {
            detail,
            min_verdict,
            ..FleetArgs::default()
        }
    }

    #[test]
    fn summary_and_problems_narrow_the_tools_that_can_and_full_adds_nothing() {
        let problems = args(Detail::Problems, Verdict::Critical);
        let health = narrowing(GET_GPU_HEALTH, &problems);
        assert_eq!(
            Value::Object(health.clone()),
            json!({"detail": "problems", "min_verdict": "critical"})
        );
        let summary = args(Detail::Summary, Verdict::Warning);
        assert_eq!(
            Value::Object(narrowing(ANALYZE_XID_ERRORS, &summary)),
            json!({"detail": "summary"})
        );
        for tool in [
            "get_gpu_inventory",
            "get_gpu_processes",
            "get_nvlink_topology",
        ] {
            assert!(narrowing(tool, &problems).is_empty(), "{tool}");
        }
        let full = args(Detail::Full, Verdict::Warning);
        for tool in [GET_GPU_HEALTH, ANALYZE_XID_ERRORS] {
            assert!(narrowing(tool, &full).is_empty(), "{tool}");
        }
        // What is added is what the agent's own argument types accept.
        let client = json!({"gpu_index": 1}).as_object().cloned();
        let sent = with_added(client.as_ref(), &health).unwrap();
        let parsed: HealthArgs = parse_arguments(Some(sent.clone())).unwrap();
        assert_eq!(parsed.detail, Some(HealthDetail::Problems));
        assert_eq!(parsed.min_verdict, Some(Verdict::Critical));
        assert_eq!(parsed.gpu_index, Some(1));
        let xid = with_added(None, &narrowing(ANALYZE_XID_ERRORS, &summary));
        let parsed: XidArgs = parse_arguments(xid).unwrap();
        assert_eq!(parsed.detail, Some(XidDetail::Summary));
        assert_eq!(with_added(client.as_ref(), &JsonObject::new()), client);
    }

    #[test]
    fn a_refusal_names_an_added_argument() {
        let added = narrowing(GET_GPU_HEALTH, &FleetArgs::default());
        let outcome = |reply| NodeOutcome {
            node: "n".into(),
            pod: None,
            duration: Duration::ZERO,
            reply,
        };
        // An agent from before `detail`, refusing it as a tool error or a JSON-RPC error.
        let old = CallToolResult::error(
            "Invalid arguments: unknown field `detail`, expected one of `gpu_index`, `gpu_uuid`, \
             `xid_since`",
        );
        assert!(refuses_added(&outcome(Ok(old)), &added));
        let rpc = NodeFailure::new(
            FailureKind::AgentError,
            "the agent answered with JSON-RPC error -32602: \"unknown field `min_verdict`\"",
        );
        assert!(refuses_added(&outcome(Err(rpc)), &added));
        // Other failures and answers are not refusals of the added arguments.
        let other = CallToolResult::error("Cannot read the GPUs: NVML is not loaded");
        assert!(!refuses_added(&outcome(Ok(other)), &added));
        let fine = CallToolResult::structured(json!({"verdict": "healthy"}), "ok");
        assert!(!refuses_added(&outcome(Ok(fine)), &added));
        let timeout = NodeFailure::new(FailureKind::Timeout, "`detail`");
        assert!(!refuses_added(&outcome(Err(timeout)), &added));
        let old = CallToolResult::error("unknown field `detail`");
        assert!(!refuses_added(&outcome(Ok(old)), &JsonObject::new()));
    }
}
