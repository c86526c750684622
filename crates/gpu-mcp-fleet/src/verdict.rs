//! A node's verdict read out of its agent's structured answer: the one reader, for the fan-out
//! answers (`shape`) and for `list_gpu_nodes` (`listing`), which only word it.

use gpu_mcp_model::output::Verdict;
use serde_json::Value;

use crate::aggregate::{gpu_entries, gpu_verdict, top_level_verdict};

/// A node's verdict: its own top-level `verdict`, else the worst of its GPUs' verdicts; `None`
/// when the answer has neither.
pub(crate) fn node_verdict(result: &Value) -> Option<Verdict> {
    top_level_verdict(result)
        .and_then(parse_verdict)
        .or_else(|| {
            gpu_entries(result)
                .iter()
                .filter_map(|g| gpu_verdict(g).as_deref().and_then(parse_verdict))
                .max_by_key(|v| rank(*v))
        })
}

/// The rank of a verdict for "worst first".
pub(crate) fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Healthy => 0,
        Verdict::Warning => 1,
        Verdict::Degraded => 2,
        Verdict::Critical => 3,
    }
}

/// A verdict word as the model writes it; `None` for any other word.
pub(crate) fn parse_verdict(s: &str) -> Option<Verdict> {
    serde_json::from_value(Value::String(s.to_owned())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn own_verdict_first_else_the_worst_gpu() {
        let own = json!({"verdict": "warning", "gpus": [{"verdict": "critical"}]});
        assert_eq!(node_verdict(&own), Some(Verdict::Warning));
        let gpus = json!({"gpus": [{"verdict": "healthy"}, {"verdict": "degraded"},
                                   {"verdict": "warning"}, {"health": "nonsense"}]});
        assert_eq!(node_verdict(&gpus), Some(Verdict::Degraded));
        assert_eq!(node_verdict(&json!({"gpus": []})), None);
        assert_eq!(node_verdict(&json!({"verdict": "fine"})), None);
    }
}
