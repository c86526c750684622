//! [`ClusterCatalog`]: the gateway's [`ToolCatalog`], routing GPU tools to one node or to all.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::FutureExt;
use futures::future::BoxFuture;
use gpu_mcp_k8s::{ClusterCache, NodeDirectory, NodeResult, Router};
use gpu_mcp_model::args::{HealthArgs, InventoryArgs, XidArgs};
use gpu_mcp_model::toolsets::Toolsets;
use gpu_mcp_model::topology::TopologyArgs;
use gpu_mcp_model::{
    ANALYZE_XID_ERRORS, GET_GPU_HEALTH, GET_GPU_INVENTORY, GET_GPU_PROCESSES, GET_NVLINK_TOPOLOGY,
};
use gpu_mcp_protocol::{CallToolResult, Content, JsonObject, Request, Tool};
use gpu_mcp_service::{
    CallContext, CallError, PromptCatalog, ResourceCatalog, ToolCatalog, parse_arguments,
};
use tokio::time::Instant;

use crate::aggregate::{FailureKind, FanOutAnswer, NodeEntry, NodeOutcome};
use crate::definitions::gateway_tools;
use crate::error::Error;
use crate::fleet_args::{FleetArgs, take_fleet_input};
use crate::forward::{failure_of, parse_agent_response, tools_call_request};
use crate::kube::{KubeTools, kube_tools};
use crate::listing::{KnownNode, LIST_GPU_NODES, ListArgs, NodeList};
use crate::metrics::ClusterMetrics;
use crate::narrow::{narrowing, refuses_added, with_added};
use crate::node_arg::{closest_match, quote, take_node_argument};
use crate::progress::route_reporting;
use crate::shape::{shape, words};
use crate::single::node_arguments;

/// How many node names an error message lists before it says "and N more".
const LISTED_NODES: usize = 20;

/// The gateway's tool catalog over a [`Router`].
///
/// Its definitions are [`gateway_tools`] of the agent's definitions: `list_gpu_nodes` plus every
/// agent tool with the optional `node` argument.
pub struct ClusterCatalog {
    router: Arc<Router>,
    tools: Vec<Tool>,
    agent_tools: HashSet<String>,
    metrics: Option<ClusterMetrics>,
    next_id: AtomicU64,
    kube: Option<KubeTools>,
    toolsets: Toolsets,
}

impl std::fmt::Debug for ClusterCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCatalog")
            .field("router", &self.router)
            .field("tools", &self.agent_tools)
            .finish_non_exhaustive()
    }
}

impl ClusterCatalog {
    /// A catalog serving `agent_tools` (the agent's definitions, e.g.
    /// `gpu_mcp_model::gpu_tool_definitions()`) through `router`.
    pub fn new(router: Arc<Router>, agent_tools: Vec<Tool>) -> Self {
        let names = agent_tools
            .iter()
            .map(|t| t.name.clone())
            .filter(|n| n != LIST_GPU_NODES)
            .collect();
        Self {
            router,
            tools: gateway_tools(agent_tools),
            agent_tools: names,
            metrics: None,
            next_id: AtomicU64::new(1),
            kube: None,
            toolsets: Toolsets::all(),
        }
    }

    /// Adds the Kubernetes-context tools (`describe_gpu_node`, `get_pod_gpu_allocation`),
    /// which read `cache` and ask the agents through this catalog's router.
    pub fn with_cluster_context(mut self, cache: Arc<ClusterCache>) -> Self {
        if self.kube.is_none() {
            let toolsets = &self.toolsets;
            self.tools.extend(
                kube_tools()
                    .into_iter()
                    .filter(|t| toolsets.enables(&t.name)),
            );
        }
        self.kube = Some(KubeTools::new(cache, Arc::clone(&self.router)));
        self
    }

    /// Serves only the tools of `toolsets` (`list_gpu_nodes` is `cluster`'s): the others are
    /// unknown tools, and the prompts and resources that need them are not offered.
    /// The order of `with_toolsets` and `with_cluster_context` does not matter.
    pub fn with_toolsets(mut self, toolsets: &Toolsets) -> Self {
        self.tools.retain(|t| toolsets.enables(&t.name));
        self.agent_tools.retain(|n| toolsets.enables(n));
        self.toolsets = toolsets.clone();
        self
    }

    /// Whether the gateway serves the tool `name`.
    pub(crate) fn serves(&self, name: &str) -> bool {
        self.tools.iter().any(|t| t.name == name)
    }

    /// Records routed calls into `metrics`.
    pub fn with_metrics(mut self, metrics: ClusterMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub(crate) fn router(&self) -> &Arc<Router> {
        &self.router
    }

    fn directory(&self) -> &Arc<dyn NodeDirectory> {
        self.router.directory()
    }

    /// Whether the gateway offers the agent tool `name`.
    pub(crate) fn offers_tool(&self, name: &str) -> bool {
        self.agent_tools.contains(name)
    }

    /// The agent tools the gateway offers.
    pub(crate) fn offered_tools(&self) -> Vec<String> {
        self.agent_tools.iter().cloned().collect()
    }

    pub(crate) fn request(&self, tool: &str, arguments: Option<JsonObject>) -> Request {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        tools_call_request(id, tool, arguments)
    }

    /// Turns a routed node result into an outcome, and records it.
    pub(crate) fn outcome(&self, tool: &str, result: NodeResult) -> NodeOutcome {
        let outcome = outcome_of(result);
        self.record(tool, &outcome);
        outcome
    }

    /// Records one node's outcome into the metrics.
    pub(crate) fn record(&self, tool: &str, outcome: &NodeOutcome) {
        if let Some(m) = &self.metrics {
            let label = match &outcome.reply {
                Ok(r) if r.failed() => FailureKind::ToolError.as_str(),
                Ok(_) => "ok",
                Err(f) => f.kind.as_str(),
            };
            m.node_call(&outcome.node, tool, label, outcome.duration.as_secs_f64());
        }
    }

    /// Asks the nodes that refused the `added` arguments (agents from before them) once more
    /// with `plain`, the call as the client made it, and puts their answers in place of the
    /// refusals; a node that cannot be asked again keeps its refusal.
    async fn ask_refusing_nodes_again(
        &self,
        outcomes: &mut [NodeOutcome],
        added: &JsonObject,
        plain: Option<JsonObject>,
        tool: &str,
    ) {
        let refused: HashSet<&str> = outcomes
            .iter()
            .filter(|o| refuses_added(o, added))
            .map(|o| o.node.as_str())
            .collect();
        if refused.is_empty() {
            return;
        }
        let request = self.request(tool, plain);
        let wanted = |n: &str| refused.contains(n);
        let again = self.router.route_to_matching(&request, wanted).await;
        let mut again: HashMap<String, NodeOutcome> = again
            .into_iter()
            .map(|r| (r.node_name.clone(), outcome_of(r)))
            .collect();
        for o in outcomes.iter_mut() {
            if let Some(mut second) = again.remove(&o.node) {
                second.duration += o.duration;
                *o = second;
            }
        }
    }

    /// The directory's node names, listed for an error message, with a closest-match hint.
    pub(crate) fn known_nodes_hint(&self, wanted: Option<&str>) -> String {
        let names = self.directory().nodes().into_iter().map(|n| n.node_name);
        known_nodes_hint(wanted, names.collect(), self.directory().is_synced())
    }

    async fn fan_out(
        &self,
        tool: &str,
        arguments: Option<JsonObject>,
        args: FleetArgs,
        ctx: &CallContext,
    ) -> CallToolResult {
        if let Some(mut refused) = check_agent_arguments(tool, arguments.as_ref()) {
            refused
                .content
                .push(Content::text("Nothing was sent to any node."));
            return refused;
        }
        // Each agent is asked for what this answer uses, not its full answer.
        let added = narrowing(tool, &args);
        let request = self.request(tool, with_added(arguments.as_ref(), &added));
        let wanted = |n: &str| args.node_pattern.as_ref().is_none_or(|p| p.matches(n));
        let routed = route_reporting(&self.router, &request, wanted, ctx.progress.as_ref()).await;
        if let Some(m) = &self.metrics {
            m.fan_out(routed.len());
        }
        if routed.is_empty() {
            let filter = args.node_pattern.as_ref().map_or_else(String::new, |p| {
                format!(" No node matches `node_pattern` {}.", quote(&p.as_string()))
            });
            return CallToolResult::error(format!(
                "No GPU nodes to ask.{filter}{}",
                self.known_nodes_hint(None)
            ));
        }
        let mut outcomes: Vec<NodeOutcome> = routed.into_iter().map(outcome_of).collect();
        if !added.is_empty() {
            self.ask_refusing_nodes_again(&mut outcomes, &added, arguments, tool)
                .await;
        }
        for o in &outcomes {
            self.record(tool, o);
        }
        let fan_out = FanOutAnswer::build(tool, outcomes);
        let all_failed = fan_out.all_failed();
        let shared = shared_refusal(&fan_out.nodes);
        let FanOutAnswer { nodes, summary } = fan_out;
        let answer = match shape(tool, nodes, summary, &args) {
            Ok(answer) => answer,
            Err(message) => return CallToolResult::error(message),
        };
        let text = words(tool, &answer);
        let mut result = match serde_json::to_value(&answer) {
            Ok(v) => CallToolResult::structured(v, text),
            Err(e) => return CallToolResult::error(format!("cannot encode the answer: {e}")),
        };
        // Each detailed node's full answer, to read without another fleet-wide call.
        let links = self.problem_links(tool, answer.problems.iter().map(|p| p.node.as_str()));
        result.content.extend(links);
        if all_failed {
            result.is_error = Some(true);
            // One refusal every node gave alike (a GPU index none has) is said once.
            if let (Some(message), Some(first)) = (shared, result.content.first_mut()) {
                *first = Content::text(format!(
                    "All {} nodes refused {tool} with the same answer: {message}",
                    answer.summary.nodes_total
                ));
            }
        }
        result
    }

    async fn list_gpu_nodes(&self, arguments: Option<JsonObject>) -> CallToolResult {
        let args = match ListArgs::parse(arguments) {
            Ok(args) => args,
            Err(message) => return CallToolResult::error(message),
        };
        let wanted = |name: &str| args.node_pattern.as_ref().is_none_or(|p| p.matches(name));
        let known: Vec<KnownNode> = self
            .directory()
            .nodes()
            .into_iter()
            .filter(|e| wanted(&e.node_name))
            .map(|e| KnownNode {
                pod_name: e.pod().map(str::to_owned),
                pod_ip: e.pod_ip.map(|ip| ip.to_string()),
                name: e.node_name,
                ready: e.ready,
            })
            .collect();
        let health: Vec<NodeEntry> =
            if self.agent_tools.contains(GET_GPU_HEALTH) && !known.is_empty() {
                let request = self.request(GET_GPU_HEALTH, None);
                let routed = self.router.route_to_matching(&request, wanted).await;
                if let Some(m) = &self.metrics {
                    m.fan_out(routed.len());
                }
                routed
                    .into_iter()
                    .map(|r| NodeEntry::from_outcome(self.outcome(GET_GPU_HEALTH, r)))
                    .collect()
            } else {
                Vec::new()
            };
        let list = NodeList::build(known, &health).page(&args);
        let text = list.words();
        match serde_json::to_value(&list) {
            Ok(v) => CallToolResult::structured(v, text),
            Err(e) => CallToolResult::error(format!("cannot encode the answer: {e}")),
        }
    }
}

/// A routed node result as an outcome: the agent's tool result, or why there is none.
pub(crate) fn outcome_of(result: NodeResult) -> NodeOutcome {
    NodeOutcome {
        reply: match result.outcome {
            Ok(response) => parse_agent_response(response),
            Err(e) => Err(failure_of(&e)),
        },
        node: result.node_name,
        pod: result.pod_name,
        duration: result.duration,
    }
}

/// The known node names, for an error message: a closest match to `wanted` when one is
/// plausible, then the names (at most [`LISTED_NODES`]), or why there are none.
pub(crate) fn known_nodes_hint(
    wanted: Option<&str>,
    mut names: Vec<String>,
    synced: bool,
) -> String {
    names.sort_unstable();
    let mut hint = String::new();
    if let Some(best) = wanted.and_then(|w| closest_match(w, names.iter().map(String::as_str))) {
        let _ = write!(hint, " Did you mean \"{best}\"?");
    }
    if names.is_empty() {
        hint.push_str(" No GPU nodes are known");
        if !synced {
            hint.push_str(" yet (node discovery has not finished)");
        }
        hint.push('.');
    } else {
        let shown = names.len().min(LISTED_NODES);
        let _ = write!(hint, " Known nodes: {}", names[..shown].join(", "));
        if names.len() > shown {
            let _ = write!(
                hint,
                " and {} more (see list_gpu_nodes)",
                names.len() - shown
            );
        }
        hint.push('.');
    }
    hint
}

/// The message every node failed with, when there are several nodes and all failed alike.
fn shared_refusal(nodes: &[NodeEntry]) -> Option<String> {
    let first = nodes.first()?.error.as_ref()?.message.clone();
    let alike = nodes.len() > 1
        && nodes
            .iter()
            .all(|n| n.error.as_ref().is_some_and(|e| e.message == first));
    alike.then_some(first)
}

/// The agent's own refusal of `arguments` for `tool`, when they are invalid on every node (a bad
/// type, an unknown field): the agent's argument types and parser, run once here instead of once
/// per node. Checks that depend on the node (a GPU index that exists there) stay the agent's.
pub(crate) fn check_agent_arguments(
    tool: &str,
    arguments: Option<&JsonObject>,
) -> Option<CallToolResult> {
    let arguments = arguments.cloned();
    match tool {
        GET_GPU_INVENTORY => parse_arguments::<InventoryArgs>(arguments).err(),
        GET_GPU_HEALTH => parse_arguments::<HealthArgs>(arguments).err(),
        ANALYZE_XID_ERRORS => parse_arguments::<XidArgs>(arguments).err(),
        GET_GPU_PROCESSES => {
            parse_arguments::<gpu_mcp_model::processes::GpuProcessesArgs>(arguments).err()
        }
        GET_NVLINK_TOPOLOGY => parse_arguments::<TopologyArgs>(arguments).err(),
        _ => None,
    }
}

impl ToolCatalog for ClusterCatalog {
    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    fn prompt_catalog(&self) -> Option<&dyn PromptCatalog> {
        Some(self)
    }

    fn resource_catalog(&self) -> Option<&dyn ResourceCatalog> {
        Some(self)
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        arguments: Option<JsonObject>,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        async move {
            if !self.serves(name) {
                return Err(CallError::UnknownTool(name.to_owned()));
            }
            let started = Instant::now();
            let (mode, work) = if name == LIST_GPU_NODES {
                ("list", self.list_gpu_nodes(arguments).boxed())
            } else if let Some(kube) = self.kube.as_ref().filter(|_| KubeTools::serves(name)) {
                ("cluster", kube.call(name, arguments).boxed())
            } else if self.agent_tools.contains(name) {
                let mut arguments = arguments;
                let fleet = match take_fleet_input(&mut arguments) {
                    Ok(fleet) => fleet,
                    Err(message) => return Ok(nothing_sent(&message)),
                };
                match take_node_argument(&mut arguments) {
                    Ok(Some(node)) => match node_arguments(name, &fleet) {
                        Ok(added) => (
                            "single",
                            self.call_one(name, node, arguments, added).boxed(),
                        ),
                        Err(message) => return Ok(nothing_sent(&message)),
                    },
                    Ok(None) => match fleet.for_fan_out() {
                        Ok(fleet) => (
                            "fan_out",
                            self.fan_out(name, arguments, fleet, &ctx).boxed(),
                        ),
                        Err(message) => return Ok(nothing_sent(&message)),
                    },
                    Err(e) => return Ok(self.refuse_node_argument(&e)),
                }
            } else {
                return Err(CallError::UnknownTool(name.to_owned()));
            };
            let result = tokio::select! {
                result = work => result,
                () = ctx.cancel.cancelled() => CallToolResult::error("The request was cancelled."),
            };
            if let Some(m) = &self.metrics {
                m.tool_call(name, mode, started.elapsed().as_secs_f64());
            }
            Ok(result)
        }
        .boxed()
    }
}

/// The tool error for gateway arguments refused before anything was sent.
fn nothing_sent(message: &str) -> CallToolResult {
    CallToolResult::error(format!("{message} Nothing was sent to any node."))
}

impl ClusterCatalog {
    /// The tool error for a refused `node` argument: the reason, the known nodes and the
    /// closest match to what was given.
    fn refuse_node_argument(&self, error: &Error) -> CallToolResult {
        let wanted = match error {
            Error::InvalidNodeName { given, .. } => Some(given.as_str()),
            _ => None,
        };
        CallToolResult::error(format!(
            "{error}. Nothing was sent to any node.{}",
            self.known_nodes_hint(wanted)
        ))
    }
}

#[cfg(test)]
mod tests;
