//! The Kubernetes-context tools: `describe_gpu_node` and `get_pod_gpu_allocation`, read from the
//! watch-backed [`ClusterCache`] (nothing is listed per call) and joined with what the agents
//! say through the router.

mod agent;
mod allocation;
mod describe;
mod explain;

use std::collections::BTreeSet;
use std::sync::Arc;

use gpu_mcp_k8s::{CacheState, ClusterCache, NodeName, PodFilter, Router, quote_untrusted};
use gpu_mcp_protocol::{CallToolResult, JsonObject, Tool, ToolAnnotations};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::definitions::{portable, schema_of, strip_root_annotations};
use crate::node_arg::closest_match;
use allocation::{AllocationArgs, AllocationInput, AllocationPage};
use describe::{DescribeNodeInput, NodeDescription};
use explain::{AgentXids, Evidence, ExplainInput, Explanation};
use gpu_mcp_model::ANALYZE_XID_ERRORS;

pub(crate) use gpu_mcp_model::{
    DESCRIBE_GPU_NODE, EXPLAIN_POD_GPU_FAILURE, GET_POD_GPU_ALLOCATION,
};

/// Most bytes of a text block; a longer one is cut and says so (the structured content is
/// complete).
const TEXT_LIMIT: usize = 15 * 1024;

/// `text` with control characters made spaces, cut to at most `max` bytes on a character
/// boundary (`…` marks the cut), so its JSON form is at most about twice `max`.
pub(crate) fn clip(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.len() <= max {
        return clean;
    }
    let mut end = max;
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &clean[..end])
}

/// A text block within [`TEXT_LIMIT`].
pub(crate) fn bound_text(text: String) -> String {
    if text.len() <= TEXT_LIMIT {
        return text;
    }
    let mut end = TEXT_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n… (the rest of this text was cut; the structured content has all of it)",
        &text[..end]
    )
}

/// The Kubernetes-context tools over a cluster cache and the router.
pub(crate) struct KubeTools {
    cache: Arc<ClusterCache>,
    agents: agent::AgentLink,
}

impl std::fmt::Debug for KubeTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeTools")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

fn tool(name: &str, title: &str, description: &str, input: JsonObject, output: JsonObject) -> Tool {
    Tool {
        name: name.into(),
        title: Some(title.into()),
        description: description.into(),
        input_schema: portable(input, true),
        output_schema: Some(portable(output, false)),
        annotations: Some(ToolAnnotations {
            title: Some(title.into()),
            read_only_hint: Some(true),
            destructive_hint: Some(false),
            idempotent_hint: Some(true),
            open_world_hint: Some(false),
        }),
    }
}

/// The definitions of the Kubernetes-context tools.
pub(crate) fn kube_tools() -> Vec<Tool> {
    vec![
        tool(
            DESCRIBE_GPU_NODE,
            "Describe a GPU node",
            "What Kubernetes thinks of one GPU node next to what its GPU agent says: the \
`nvidia.com/*` labels of GPU feature discovery, taints, conditions, whether it is cordoned, \
`nvidia.com/gpu` (and MIG) capacity, allocatable, requested by the pods holding GPUs there and \
free, the agent's verdict with the non-healthy GPUs and their reasons, and the exact `kubectl \
cordon` / `kubectl drain` commands when the verdict calls for them (the gateway runs nothing). \
Use it after get_gpu_health names a sick node, to answer \"can I drain it?\" and \"does the \
scheduler still send work here?\". For the pods on the node and the GPUs each holds, call \
get_pod_gpu_allocation with `node`.",
            strip_root_annotations(schema_of::<DescribeNodeInput>(false)),
            strip_root_annotations(schema_of::<NodeDescription>(true)),
        ),
        tool(
            GET_POD_GPU_ALLOCATION,
            "Pods and their GPUs",
            "The pods that request GPUs (`nvidia.com/gpu` or `nvidia.com/mig-*`), with their GPU \
counts, phase, any container trouble (waiting, failed exit, restarts), and, where the node's \
agent knows, the GPU UUIDs each pod holds with that GPU's index and verdict. From a failed pod: \
pass `pod` (and `namespace`) to get its node and GPUs, then describe_gpu_node and \
analyze_xid_errors with that `node`. With `node`: everything on one node. With neither: \
cluster-wide, sorted by namespace and name, in pages of `limit` (default 50); pass `next_cursor` \
as `cursor` for the next page. `total` always counts every matching pod.",
            strip_root_annotations(schema_of::<AllocationInput>(false)),
            strip_root_annotations(schema_of::<AllocationPage>(true)),
        ),
        tool(
            EXPLAIN_POD_GPU_FAILURE,
            "Was it the GPU?",
            "Whether a pod's failure points to its GPU, from evidence only: how its GPU \
containers ended (reason, exit code, restarts, termination message), the GPUs it holds where the \
node's agent knows, the node's GPUs that are not healthy now, and the Xids the node's agent \
reports since the pod started (those after it ended are left out), each marked as on a GPU the \
pod held or not. `conclusion` is `gpu_fault_likely` only when a hardware Xid hit a GPU the pod is \
known to have held during its run; `application_error` when only application-caused Xids (13, \
31, 43, ...) did; `no_gpu_evidence`, `cannot_tell` (with why) or `never_scheduled` otherwise. \
`cannot_know` lists what the answer cannot see (container logs, events, Xids older than the \
kernel log, GPUs of a pod that no longer runs). Use it when someone asks \"pod X failed, was it \
the GPU?\"; follow with describe_gpu_node for the node's drain command.",
            strip_root_annotations(schema_of::<ExplainInput>(false)),
            strip_root_annotations(schema_of::<Explanation>(true)),
        ),
    ]
}

/// Parses the arguments of `tool` into `T`, or the message for the client.
fn parse<T: DeserializeOwned>(tool: &str, arguments: Option<JsonObject>) -> Result<T, String> {
    serde_json::from_value(Value::Object(arguments.unwrap_or_default()))
        .map_err(|e| format!("Invalid argument of {tool}: {e}."))
}

/// The result carrying `value` and its words.
fn answer<T: Serialize>(value: &T, text: String) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(v) => CallToolResult::structured(v, bound_text(text)),
        Err(e) => CallToolResult::error(format!("cannot encode the answer: {e}")),
    }
}

/// Why a cache cannot answer yet, when it cannot.
fn not_synced(what: &str, state: &CacheState) -> Option<String> {
    if state.synced {
        return None;
    }
    let mut message = format!(
        "The gateway's {what} cache has not synced with the Kubernetes API yet, so it cannot \
answer without guessing; try again in a few seconds."
    );
    if let Some(error) = &state.last_error {
        message.push_str(&format!(
            " The last watch attempt failed: {}. If it says forbidden, the gateway's service \
account lacks the cluster-wide read access these tools need (the chart grants it with \
gateway.clusterContext.enabled).",
            quote_untrusted(error)
        ));
    }
    Some(message)
}

impl KubeTools {
    pub(crate) fn new(cache: Arc<ClusterCache>, router: Arc<Router>) -> Self {
        Self {
            cache,
            agents: agent::AgentLink::new(router),
        }
    }

    /// Whether `name` is one of these tools.
    pub(crate) fn serves(name: &str) -> bool {
        matches!(
            name,
            DESCRIBE_GPU_NODE | GET_POD_GPU_ALLOCATION | EXPLAIN_POD_GPU_FAILURE
        )
    }

    /// Runs `name`.
    pub(crate) async fn call(&self, name: &str, arguments: Option<JsonObject>) -> CallToolResult {
        let result = match name {
            DESCRIBE_GPU_NODE => self.describe_gpu_node(arguments).await,
            EXPLAIN_POD_GPU_FAILURE => self.explain_pod_gpu_failure(arguments).await,
            _ => self.get_pod_gpu_allocation(arguments).await,
        };
        result.unwrap_or_else(CallToolResult::error)
    }

    async fn describe_gpu_node(
        &self,
        arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, String> {
        let input: DescribeNodeInput = parse(DESCRIBE_GPU_NODE, arguments)?;
        let node = NodeName::try_from(input.node.as_str()).map_err(|e| {
            format!("Invalid argument `node`: {e}. Nothing was asked of Kubernetes or any agent.")
        })?;
        if let Some(message) = not_synced("node", &self.cache.nodes_state()) {
            return Err(message);
        }
        let Some(facts) = self.cache.node(node.as_str()) else {
            let names = self.cache.node_names();
            let hint = closest_match(node.as_str(), names.iter().map(String::as_str))
                .map_or_else(String::new, |b| format!(" Did you mean \"{b}\"?"));
            return Err(format!(
                "Kubernetes has no node \"{node}\".{hint} list_gpu_nodes names the nodes that \
run a GPU agent."
            ));
        };
        let pods_state = self.cache.pods_state();
        if let Some(message) = not_synced("GPU pod", &pods_state) {
            return Err(message);
        }
        let pods = self.cache.pods_on(node.as_str());
        let health = self.agents.health(&node).await;
        let description = describe::describe(&node, facts, &pods, health);
        let text = describe::words(&description);
        Ok(answer(&description, text))
    }

    async fn get_pod_gpu_allocation(
        &self,
        arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, String> {
        let input: AllocationInput = parse(GET_POD_GPU_ALLOCATION, arguments)?;
        let args = AllocationArgs::check(input)?;
        if let Some(message) = not_synced("GPU pod", &self.cache.pods_state()) {
            return Err(message);
        }
        let filter = PodFilter {
            node: args.node.as_ref().map(ToString::to_string),
            namespace: args.namespace.clone(),
            name: args.pod.clone(),
        };
        let page = self
            .cache
            .pod_page(&filter, args.after.as_ref(), args.limit);
        let nodes: BTreeSet<String> = page.pods.iter().filter_map(|p| p.node.clone()).collect();
        let nodes: Vec<String> = nodes.into_iter().collect();
        let mut ask = JsonObject::new();
        // Processes are not what this answer shows; the allocations come whatever the limit.
        ask.insert("limit".into(), json!(1));
        if let Some(ns) = &args.namespace {
            ask.insert("namespace".into(), json!(ns));
        }
        if let Some(pod) = &args.pod {
            ask.insert("pod".into(), json!(pod));
        }
        let reports = if nodes.is_empty() {
            Default::default()
        } else {
            self.agents.processes(&nodes, &ask).await
        };
        let mut result = allocation::build(page.pods, page.remaining, page.total, &reports);
        if result.total == 0 && args.pod.is_some() {
            result.headline = format!(
                "No pod named {} that requests GPUs is known{}: it may not request \
`nvidia.com/gpu` or `nvidia.com/mig-*`, or it no longer exists.",
                crate::node_arg::quote(args.pod.as_deref().unwrap_or_default()),
                args.namespace
                    .as_deref()
                    .map_or_else(String::new, |ns| format!(" in namespace {ns}"))
            );
        }
        let text = allocation::words(&result);
        Ok(answer(&result, text))
    }

    async fn explain_pod_gpu_failure(
        &self,
        arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, String> {
        let input: ExplainInput = parse(EXPLAIN_POD_GPU_FAILURE, arguments)?;
        // The same name rules as get_pod_gpu_allocation's `namespace` and `pod`.
        AllocationArgs::check(AllocationInput {
            namespace: Some(input.namespace.clone()),
            pod: Some(input.pod.clone()),
            ..AllocationInput::default()
        })?;
        if let Some(message) = not_synced("GPU pod", &self.cache.pods_state()) {
            return Err(message);
        }
        let Some(pod) = self.cache.pod(&input.namespace, &input.pod) else {
            return Err(format!(
                "No pod {}/{} that requests GPUs is known: it may request no `nvidia.com/gpu` \
or `nvidia.com/mig-*`, or it no longer exists (the gateway sees only pods that exist; a deleted \
pod's history is in the cluster's events and logs, not here).",
                input.namespace, input.pod
            ));
        };
        let evidence = match pod.node.as_deref().map(NodeName::try_from) {
            Some(Ok(node)) => {
                let mut since = JsonObject::new();
                if let Some(t) = pod.started.or(pod.created) {
                    since.insert("since".into(), json!(t.to_string()));
                }
                since.insert("limit".into(), json!(1));
                let mut ask = JsonObject::new();
                ask.insert("namespace".into(), json!(pod.namespace));
                ask.insert("pod".into(), json!(pod.name));
                ask.insert("limit".into(), json!(1));
                let nodes = [node.to_string()];
                let (health, xids, mut reports) = futures::join!(
                    self.agents.health(&node),
                    self.agents
                        .structured::<AgentXids>(&node, ANALYZE_XID_ERRORS, Some(since)),
                    self.agents.processes(&nodes, &ask),
                );
                let held = match reports.remove(node.as_str()) {
                    Some(Ok(report)) => Ok(allocation::devices_of(&pod, &report)),
                    Some(Err(reason)) => Err(reason),
                    None => Err("its node's agent was not asked".to_owned()),
                };
                Evidence {
                    held,
                    health,
                    xids,
                    now: std::time::SystemTime::now(),
                }
            }
            _ => {
                let none = "the pod has no node".to_owned();
                Evidence {
                    held: Err(none.clone()),
                    health: Err(none.clone()),
                    xids: Err(none),
                    now: std::time::SystemTime::now(),
                }
            }
        };
        let explanation = explain::explain(&pod, evidence);
        let text = explain::words(&explanation);
        Ok(answer(&explanation, text))
    }
}
