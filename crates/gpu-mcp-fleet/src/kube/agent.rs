//! What the Kubernetes-context tools ask the agents: a node's health summary (`get_gpu_health`)
//! and, where the agent serves it, which container holds which GPU (`get_gpu_processes`).
//!
//! Agents differ (versions, enabled tools), so `get_gpu_processes` is sent only to an agent whose
//! `tools/list` names it; what each agent pod lists is remembered for a while.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gpu_mcp_k8s::{NodeName, Router, quote_untrusted};
use gpu_mcp_model::GET_GPU_HEALTH;
use gpu_mcp_model::output::Verdict;
use gpu_mcp_model::processes::GpuProcessesReport;
use gpu_mcp_protocol::mcp::methods;
use gpu_mcp_protocol::{JsonObject, Request, RequestId, Response};
use parking_lot::Mutex;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use crate::aggregate::result_text;
use crate::forward::{failure_of, parse_agent_response, tools_call_request};

use gpu_mcp_model::GET_GPU_PROCESSES;
/// How long what an agent pod lists in `tools/list` is trusted before it is asked again.
const TOOLS_TTL: Duration = Duration::from_secs(300);
/// Most agent pods whose tool list is remembered.
const TOOLS_REMEMBERED: usize = 10_000;

/// One finding of the agent's health answer, as far as the gateway shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct AgentFinding {
    /// The rule that fired.
    #[serde(default)]
    pub check: String,
    /// How serious it is.
    pub severity: Verdict,
    /// What is wrong.
    #[serde(default)]
    pub summary: String,
    /// What to do.
    #[serde(default)]
    pub action: String,
}

/// One GPU of the agent's health answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct AgentGpu {
    /// GPU index.
    pub index: u32,
    /// Its verdict.
    pub verdict: Verdict,
    /// GPU UUID.
    #[serde(default)]
    pub uuid: Option<String>,
    /// Reasons, worst first.
    #[serde(default)]
    pub reasons: Vec<AgentFinding>,
}

/// GPUs per verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct AgentCounts {
    #[serde(default)]
    pub healthy: u32,
    #[serde(default)]
    pub warning: u32,
    #[serde(default)]
    pub degraded: u32,
    #[serde(default)]
    pub critical: u32,
}

/// The part of the agent's `get_gpu_health` answer the gateway shows next to Kubernetes' view.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct AgentHealth {
    /// The node's verdict.
    pub verdict: Verdict,
    /// GPUs per verdict.
    #[serde(default)]
    pub counts: AgentCounts,
    /// Findings of the node rather than one GPU.
    #[serde(default)]
    pub node_findings: Vec<AgentFinding>,
    /// Per-GPU health.
    #[serde(default)]
    pub gpus: Vec<AgentGpu>,
}

#[derive(Debug, Clone)]
struct Listed {
    pod: Option<String>,
    at: Instant,
    /// `Ok(serves get_gpu_processes)`, or why the list could not be read.
    serves: Result<bool, String>,
}

/// Asks agents what the Kubernetes-context tools need, through the router.
pub(crate) struct AgentLink {
    router: Arc<Router>,
    next_id: AtomicU64,
    listed: Mutex<HashMap<String, Listed>>,
}

impl std::fmt::Debug for AgentLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentLink").finish_non_exhaustive()
    }
}

impl AgentLink {
    pub(crate) fn new(router: Arc<Router>) -> Self {
        Self {
            router,
            next_id: AtomicU64::new(1),
            listed: Mutex::new(HashMap::new()),
        }
    }

    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The agent's health summary of `node`, or why there is none (in words).
    pub(crate) async fn health(&self, node: &NodeName) -> Result<AgentHealth, String> {
        self.structured(node, GET_GPU_HEALTH, None).await
    }

    /// The agent's structured answer to `tool` on `node`, read as `T`, or why there is none.
    pub(crate) async fn structured<T: DeserializeOwned>(
        &self,
        node: &NodeName,
        tool: &str,
        arguments: Option<JsonObject>,
    ) -> Result<T, String> {
        let request = tools_call_request(self.id(), tool, arguments);
        let routed = self.router.route_to_node(node, &request).await;
        let reply = match routed.outcome {
            Ok(response) => parse_agent_response(response).map_err(|f| f.message)?,
            Err(e) => return Err(failure_of(&e).message),
        };
        if reply.failed() {
            return Err(format!(
                "the agent answered {tool} with an error: {}",
                quote_untrusted(&result_text(&reply))
            ));
        }
        let value = reply
            .structured_value()
            .map(std::borrow::Cow::into_owned)
            .ok_or_else(|| format!("the agent's {tool} answer has no structured content"))?;
        serde_json::from_value(value).map_err(|e| {
            format!(
                "the agent's {tool} answer is not what it should be: {}",
                quote_untrusted(&e.to_string())
            )
        })
    }

    /// Each of `nodes`' `get_gpu_processes` report with `arguments`, or why there is none.
    pub(crate) async fn processes(
        &self,
        nodes: &[String],
        arguments: &JsonObject,
    ) -> BTreeMap<String, Result<GpuProcessesReport, String>> {
        let serving = self.serving_processes(nodes).await;
        let mut out: BTreeMap<String, Result<GpuProcessesReport, String>> = BTreeMap::new();
        let mut ask = Vec::new();
        for (node, serves) in serving {
            match serves {
                Ok(true) => ask.push(node),
                Ok(false) => {
                    out.insert(
                        node,
                        Err(format!(
                            "the agent on this node does not serve {GET_GPU_PROCESSES} (an older \
agent, or the tool is not enabled there), so the GPUs each pod holds are not known"
                        )),
                    );
                }
                Err(reason) => {
                    out.insert(node, Err(reason));
                }
            }
        }
        if ask.is_empty() {
            return out;
        }
        let request = tools_call_request(self.id(), GET_GPU_PROCESSES, Some(arguments.clone()));
        let routed = self
            .router
            .route_to_matching(&request, |n| ask.iter().any(|a| a == n))
            .await;
        for result in routed {
            let report = match result.outcome {
                Ok(response) => read_processes(response),
                Err(e) => Err(format!(
                    "the agent did not answer {GET_GPU_PROCESSES}: {}",
                    failure_of(&e).message
                )),
            };
            out.insert(result.node_name, report);
        }
        for node in ask {
            out.entry(node)
                .or_insert_with(|| Err("the node's agent disappeared during the call".into()));
        }
        out
    }

    /// Whether each of `nodes`' agents lists `get_gpu_processes`, asking `tools/list` of those
    /// whose answer is not remembered (new agent pod, or older than the time to live).
    async fn serving_processes(&self, nodes: &[String]) -> BTreeMap<String, Result<bool, String>> {
        let directory = self.router.directory();
        let mut out = BTreeMap::new();
        let mut stale = Vec::new();
        {
            let listed = self.listed.lock();
            for node in nodes {
                let Some(endpoint) = directory.node(node) else {
                    out.insert(
                        node.clone(),
                        Err("no GPU diagnostics agent runs on this node".to_owned()),
                    );
                    continue;
                };
                let pod = endpoint.pod().map(str::to_owned);
                match listed.get(node) {
                    Some(l) if l.pod == pod && l.at.elapsed() < TOOLS_TTL => {
                        out.insert(node.clone(), l.serves.clone());
                    }
                    _ => stale.push(node.clone()),
                }
            }
        }
        if stale.is_empty() {
            return out;
        }
        let request = Request::new(
            RequestId::Number(i64::try_from(self.id()).unwrap_or(i64::MAX)),
            methods::TOOLS_LIST,
            None,
        );
        let routed = self
            .router
            .route_to_matching(&request, |n| stale.iter().any(|s| s == n))
            .await;
        let mut listed = self.listed.lock();
        if listed.len() > TOOLS_REMEMBERED {
            listed.clear();
        }
        for result in routed {
            let serves = match result.outcome {
                Ok(response) => lists_tool(&response, GET_GPU_PROCESSES),
                Err(e) => Err(format!(
                    "the agent did not answer tools/list: {}",
                    failure_of(&e).message
                )),
            };
            // A failure is not remembered: the next call asks again.
            if serves.is_ok() {
                listed.insert(
                    result.node_name.clone(),
                    Listed {
                        pod: result.pod_name.clone(),
                        at: Instant::now(),
                        serves: serves.clone(),
                    },
                );
            }
            out.insert(result.node_name, serves);
        }
        out
    }
}

/// Whether a `tools/list` response names `tool`.
fn lists_tool(response: &Response, tool: &str) -> Result<bool, String> {
    if let Some(error) = &response.error {
        return Err(format!(
            "the agent refused tools/list: {}",
            quote_untrusted(&error.message)
        ));
    }
    let result = response.result_value();
    let tools = result
        .as_deref()
        .and_then(|r| r.get("tools"))
        .and_then(Value::as_array)
        .ok_or("the agent's tools/list answer has no tool list")?;
    Ok(tools
        .iter()
        .any(|t| t.get("name").and_then(Value::as_str) == Some(tool)))
}

fn read_processes(response: Response) -> Result<GpuProcessesReport, String> {
    let reply = parse_agent_response(response).map_err(|f| f.message)?;
    if reply.failed() {
        return Err(format!(
            "the agent answered {GET_GPU_PROCESSES} with an error: {}",
            quote_untrusted(&result_text(&reply))
        ));
    }
    let value = reply
        .structured_value()
        .map(std::borrow::Cow::into_owned)
        .ok_or("the agent's answer has no structured content")?;
    serde_json::from_value(value).map_err(|e| {
        format!(
            "the agent's {GET_GPU_PROCESSES} answer is not a process report: {}",
            quote_untrusted(&e.to_string())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(value: Value) -> Response {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_tool_list_names_the_tool_or_says_why_not() {
        let list = response(json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [
            {"name": "get_gpu_health"}, {"name": "get_gpu_processes"}]}}));
        assert_eq!(lists_tool(&list, GET_GPU_PROCESSES), Ok(true));
        assert_eq!(lists_tool(&list, "other"), Ok(false));
        let refused = response(json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32601,
            "message": "Method not found\nIgnore this"}}));
        let reason = lists_tool(&refused, GET_GPU_PROCESSES).unwrap_err();
        assert!(reason.contains("\\nIgnore"), "{reason}");
        let empty = response(json!({"jsonrpc": "2.0", "id": 1, "result": {}}));
        assert!(lists_tool(&empty, GET_GPU_PROCESSES).is_err());
    }

    #[test]
    fn a_health_answer_reads_into_the_summary() {
        let health: AgentHealth = serde_json::from_value(json!({
            "verdict": "critical", "summary": "x", "node": "n", "backend": "mock",
            "counts": {"healthy": 7, "warning": 0, "degraded": 0, "critical": 1},
            "gpus": [{"index": 3, "verdict": "critical", "uuid": "GPU-3", "reasons": [
                {"check": "xid", "severity": "critical", "summary": "Xid 79", "observed": "",
                 "threshold": "", "action": "Drain"}], "notes": [], "not_checked": []}]}))
        .unwrap();
        assert_eq!(health.verdict, Verdict::Critical);
        assert_eq!(health.counts.critical, 1);
        assert_eq!(health.gpus[0].reasons[0].action, "Drain");
    }
}
