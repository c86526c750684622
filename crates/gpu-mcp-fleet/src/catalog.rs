//! [`ClusterCatalog`]: the gateway's [`ToolCatalog`], routing GPU tools to one node or to all.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::FutureExt;
use futures::future::BoxFuture;
use gpu_mcp_k8s::{NodeDirectory, NodeError, NodeName, NodeResult, Router, quote_untrusted};
use gpu_mcp_model::GET_GPU_HEALTH;
use gpu_mcp_protocol::{CallToolResult, Content, JsonObject, Tool};
use gpu_mcp_service::{CallContext, CallError, ToolCatalog};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::aggregate::{
    FailureKind, FanOutAnswer, NodeAnswer, NodeEntry, NodeFailure, NodeOutcome, result_text,
};
use crate::definitions::gateway_tools;
use crate::error::Error;
use crate::forward::{parse_agent_response, to_router, tools_call_request};
use crate::listing::{KnownNode, LIST_GPU_NODES, NodeList};
use crate::metrics::ClusterMetrics;
use crate::node_arg::{closest_match, quote, take_node_argument};

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
        }
    }

    /// Records routed calls into `metrics`.
    pub fn with_metrics(mut self, metrics: ClusterMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn directory(&self) -> &Arc<dyn NodeDirectory> {
        self.router.directory()
    }

    fn request(&self, tool: &str, arguments: Option<JsonObject>) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        to_router(&tools_call_request(id, tool, arguments))
    }

    /// Turns a routed node result into an outcome, and records it.
    fn outcome(&self, tool: &str, result: NodeResult) -> NodeOutcome {
        let reply = match result.outcome {
            Ok(response) => parse_agent_response(response),
            Err(e) => Err(failure_of(&e)),
        };
        if let Some(m) = &self.metrics {
            let label = match &reply {
                Ok(r) if r.failed() => FailureKind::ToolError.as_str(),
                Ok(_) => "ok",
                Err(f) => f.kind.as_str(),
            };
            m.node_call(
                &result.node_name,
                tool,
                label,
                result.duration.as_secs_f64(),
            );
        }
        NodeOutcome {
            node: result.node_name,
            pod: result.pod_name,
            duration: result.duration,
            reply,
        }
    }

    /// The directory's node names, listed for an error message, with a closest-match hint.
    fn known_nodes_hint(&self, wanted: Option<&str>) -> String {
        let names = self.directory().nodes().into_iter().map(|n| n.node_name);
        known_nodes_hint(wanted, names.collect(), self.directory().is_synced())
    }

    /// Routes one call to `node`. The router judges the node (unknown, not ready, breaker,
    /// deadline); this only words its verdict.
    async fn call_one(
        &self,
        tool: &str,
        node: NodeName,
        arguments: Option<JsonObject>,
    ) -> CallToolResult {
        let request = self.request(tool, arguments);
        let routed = self.router.route_to_node(&node, &request).await;
        match routed.outcome {
            Err(NodeError::NotFound {
                node,
                known,
                synced,
                ..
            }) => CallToolResult::error(format!(
                "Unknown node \"{node}\": no GPU diagnostics agent runs there.{}",
                known_nodes_hint(Some(&node), known, synced)
            )),
            Err(NodeError::NotReady { node, pod }) => CallToolResult::error(format!(
                "Node \"{node}\" is known but its agent pod {} is not ready; try again shortly \
or pick another node.{}",
                if pod.is_empty() { "(static)" } else { &pod },
                self.known_nodes_hint(None)
            )),
            _ => single_node_result(self.outcome(tool, routed)),
        }
    }

    async fn fan_out(&self, tool: &str, arguments: Option<JsonObject>) -> CallToolResult {
        let request = self.request(tool, arguments);
        let routed = self.router.route_to_all(&request).await;
        if let Some(m) = &self.metrics {
            m.fan_out(routed.len());
        }
        if routed.is_empty() {
            return CallToolResult::error(format!(
                "No GPU nodes to ask.{}",
                self.known_nodes_hint(None)
            ));
        }
        let outcomes = routed.into_iter().map(|r| self.outcome(tool, r)).collect();
        let answer = FanOutAnswer::build(tool, outcomes);
        let failed = answer.all_failed();
        let mut result = structured_result(&answer);
        if failed {
            let mut message = format!(
                "All {} nodes failed to answer {tool}:",
                answer.summary.nodes_total
            );
            for n in &answer.nodes {
                if let Some(e) = &n.error {
                    let _ = write!(
                        message,
                        "\n- {}: {} ({})",
                        n.name,
                        e.message,
                        e.kind.as_str()
                    );
                }
            }
            result.content.insert(0, Content::text(message));
            result.is_error = Some(true);
        }
        result
    }

    async fn list_gpu_nodes(&self, arguments: Option<JsonObject>) -> CallToolResult {
        if let Some(unexpected) = arguments.as_ref().and_then(|a| a.keys().next()) {
            return CallToolResult::error(format!(
                "list_gpu_nodes takes no arguments; remove `{}`.",
                quote(unexpected).trim_matches('"')
            ));
        }
        let known: Vec<KnownNode> = self
            .directory()
            .nodes()
            .into_iter()
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
                let routed = self.router.route_to_all(&request).await;
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
        structured_result(&NodeList::build(known, &health))
    }
}

/// The known node names, for an error message: a closest match to `wanted` when one is
/// plausible, then the names (at most [`LISTED_NODES`]), or why there are none.
fn known_nodes_hint(wanted: Option<&str>, mut names: Vec<String>, synced: bool) -> String {
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

/// The per-node failure of a routing error.
fn failure_of(error: &NodeError) -> NodeFailure {
    let kind = match error {
        NodeError::NotReady { .. } | NodeError::NoPodIp { .. } => FailureKind::NotReady,
        NodeError::Timeout { .. } => FailureKind::Timeout,
        NodeError::Protocol { .. } | NodeError::ResponseTooLarge { .. } => {
            FailureKind::InvalidResponse
        }
        // The agent was reached and answered with an HTTP error.
        NodeError::HttpStatus { .. } => FailureKind::AgentError,
        _ => FailureKind::Unreachable,
    };
    NodeFailure::new(kind, error.to_string())
}

/// A successful result carrying `value` as `structuredContent` and as JSON text.
fn structured_result<T: Serialize>(value: &T) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(v) => CallToolResult::from_structured(v),
        Err(e) => CallToolResult::error(format!("cannot encode the answer: {e}")),
    }
}

/// The answer of a call with `node`: the agent's result tagged with the node, keeping `isError`.
fn single_node_result(outcome: NodeOutcome) -> CallToolResult {
    let pod = outcome
        .pod
        .as_deref()
        .map_or_else(String::new, |p| format!(" (pod {p})"));
    match outcome.reply {
        Ok(mut reply) => match reply.structured_content.take() {
            Some(result) => {
                let mut tagged = structured_result(&NodeAnswer {
                    node: outcome.node,
                    pod: outcome.pod,
                    result,
                });
                tagged.is_error = reply.is_error;
                if reply.failed() {
                    tagged.content.insert(0, Content::text(result_text(&reply)));
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

impl ToolCatalog for ClusterCatalog {
    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        arguments: Option<JsonObject>,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        async move {
            let started = Instant::now();
            let (mode, work) = if name == LIST_GPU_NODES {
                ("list", self.list_gpu_nodes(arguments).boxed())
            } else if self.agent_tools.contains(name) {
                let mut arguments = arguments;
                match take_node_argument(&mut arguments) {
                    Ok(Some(node)) => ("single", self.call_one(name, node, arguments).boxed()),
                    Ok(None) => ("fan_out", self.fan_out(name, arguments).boxed()),
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
mod tests {
    use super::*;
    use gpu_mcp_k8s::{AgentEndpoint, NodeTransport, RouterConfig};
    use parking_lot::Mutex;
    use prometheus_client::registry::Registry;
    use serde_json::json;
    use std::time::Duration;

    /// What a fake node does with a request.
    #[derive(Clone)]
    enum Behaviour {
        /// Answers with `gpus` verdicts.
        Gpus(Vec<&'static str>),
        /// Answers a tool error.
        ToolError(&'static str),
        /// Answers a JSON-RPC error.
        RpcError(i64, &'static str),
        /// Never answers.
        Hang,
        /// Connection refused.
        Refuse,
    }

    struct FakeDirectory(Vec<AgentEndpoint>);

    impl NodeDirectory for FakeDirectory {
        fn nodes(&self) -> Vec<AgentEndpoint> {
            self.0.clone()
        }
        fn node(&self, name: &str) -> Option<AgentEndpoint> {
            self.0.iter().find(|e| e.node_name == name).cloned()
        }
        fn is_synced(&self) -> bool {
            true
        }
    }

    #[derive(Default)]
    struct FakeTransport {
        behaviours: Vec<(String, Behaviour)>,
        seen: Mutex<Vec<(String, Value)>>,
    }

    impl NodeTransport for FakeTransport {
        fn send<'a>(
            &'a self,
            target: &'a AgentEndpoint,
            request: &'a Value,
        ) -> BoxFuture<'a, Result<Value, NodeError>> {
            async move {
                self.seen
                    .lock()
                    .push((target.node_name.clone(), request.clone()));
                let behaviour = self
                    .behaviours
                    .iter()
                    .find(|(n, _)| *n == target.node_name)
                    .map(|(_, b)| b.clone())
                    .unwrap_or(Behaviour::Refuse);
                let id = request["id"].clone();
                match behaviour {
                    Behaviour::Gpus(verdicts) => {
                        let gpus: Vec<Value> = verdicts
                            .iter()
                            .enumerate()
                            .map(|(i, v)| {
                                json!({"index": i, "name": "NVIDIA H100 80GB HBM3",
                                       "verdict": v, "node_seen": target.node_name})
                            })
                            .collect();
                        Ok(json!({"jsonrpc": "2.0", "id": id, "result": {
                            "content": [{"type": "text", "text": "gpus"}],
                            "structuredContent": {"gpus": gpus, "args": request["params"]["arguments"]}}}))
                    }
                    Behaviour::ToolError(m) => Ok(json!({"jsonrpc": "2.0", "id": id, "result": {
                        "content": [{"type": "text", "text": m}], "isError": true}})),
                    Behaviour::RpcError(code, m) => Ok(json!({"jsonrpc": "2.0", "id": id,
                        "error": {"code": code, "message": m}})),
                    Behaviour::Hang => futures::future::pending().await,
                    Behaviour::Refuse => Err(NodeError::Connect {
                        url: "http://127.0.0.1:1/mcp".into(),
                        message: "connection refused".into(),
                    }),
                }
            }
            .boxed()
        }
    }

    fn endpoint(name: &str, ready: bool) -> AgentEndpoint {
        let mut e = AgentEndpoint::from_url(name, format!("http://127.0.0.1:1/{name}"));
        e.pod_name = format!("agent-{name}");
        e.ready = ready;
        e
    }

    fn agent_tools() -> Vec<Tool> {
        ["get_gpu_inventory", "get_gpu_health", "analyze_xid_errors"]
            .iter()
            .map(|n| Tool {
                name: (*n).into(),
                title: None,
                description: format!("{n} of this node."),
                input_schema: json!({"type": "object", "properties": {
                    "include_processes": {"type": "boolean"}}})
                .as_object()
                .cloned()
                .unwrap(),
                output_schema: json!({"type": "object", "properties": {"gpus": {"type": "array"}},
                    "required": ["gpus"]})
                .as_object()
                .cloned(),
                annotations: None,
            })
            .collect()
    }

    struct Fixture {
        catalog: ClusterCatalog,
        transport: Arc<FakeTransport>,
        registry: Registry,
    }

    fn fixture(nodes: Vec<(&str, bool, Behaviour)>) -> Fixture {
        let directory = Arc::new(FakeDirectory(
            nodes.iter().map(|(n, r, _)| endpoint(n, *r)).collect(),
        ));
        let transport = Arc::new(FakeTransport {
            behaviours: nodes
                .into_iter()
                .map(|(n, _, b)| (n.to_owned(), b))
                .collect(),
            seen: Mutex::default(),
        });
        let router = Arc::new(Router::new(
            directory,
            transport.clone(),
            RouterConfig {
                concurrency: 4,
                node_timeout: Duration::from_secs(10),
                circuit_breaker: None,
            },
        ));
        let mut registry = Registry::default();
        let metrics = ClusterMetrics::register(&mut registry);
        Fixture {
            catalog: ClusterCatalog::new(router, agent_tools()).with_metrics(metrics),
            transport,
            registry,
        }
    }

    fn three_nodes() -> Fixture {
        fixture(vec![
            (
                "gpu-node-1",
                true,
                Behaviour::Gpus(vec!["healthy", "healthy"]),
            ),
            ("gpu-node-2", true, Behaviour::Gpus(vec!["critical"])),
            ("gpu-node-3", true, Behaviour::Refuse),
        ])
    }

    async fn call(f: &Fixture, tool: &str, args: Value) -> CallToolResult {
        f.catalog
            .call(tool, args.as_object().cloned(), CallContext::default())
            .await
            .unwrap()
    }

    fn text(r: &CallToolResult) -> String {
        result_text(r)
    }

    fn seen(f: &Fixture) -> Vec<(String, Value)> {
        f.transport.seen.lock().clone()
    }

    #[test]
    fn definitions_are_the_agent_tools_plus_list_gpu_nodes() {
        let f = three_nodes();
        let tools = f.catalog.tools();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "list_gpu_nodes",
                "get_gpu_inventory",
                "get_gpu_health",
                "analyze_xid_errors"
            ]
        );
        for t in &tools[1..] {
            assert_eq!(t.input_schema["properties"]["node"]["type"], "string");
        }
    }

    #[tokio::test]
    async fn unknown_tool_is_a_call_error() {
        let f = three_nodes();
        let err = f
            .catalog
            .call("get_gpu_temperature", None, CallContext::default())
            .await
            .unwrap_err();
        assert_eq!(err, CallError::UnknownTool("get_gpu_temperature".into()));
        assert!(seen(&f).is_empty());
    }

    #[tokio::test]
    async fn node_routes_to_that_node_only_and_tags_the_result() {
        let f = three_nodes();
        let r = call(
            &f,
            "get_gpu_health",
            json!({"node": "gpu-node-2", "include_processes": true}),
        )
        .await;
        assert!(!r.failed(), "{}", text(&r));
        let s = r.structured_content.clone().unwrap();
        assert_eq!(s["node"], "gpu-node-2");
        assert_eq!(s["pod"], "agent-gpu-node-2");
        assert_eq!(s["result"]["gpus"][0]["node_seen"], "gpu-node-2");
        assert_eq!(s["result"]["gpus"].as_array().unwrap().len(), 1);
        // `node` is the gateway's; the agent gets the rest.
        assert_eq!(s["result"]["args"], json!({"include_processes": true}));
        let seen = seen(&f);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, "gpu-node-2");
        assert_eq!(seen[0].1["method"], "tools/call");
        assert_eq!(seen[0].1["params"]["name"], "get_gpu_health");
        // The text block is the same JSON, for clients that ignore structured content.
        assert_eq!(serde_json::from_str::<Value>(&text(&r)).unwrap(), s);
        let schema = Value::Object(f.catalog.tools()[2].output_schema.clone().unwrap());
        assert!(jsonschema::is_valid(&schema, &s));
    }

    #[tokio::test]
    async fn bad_node_values_are_refused_before_routing() {
        let f = three_nodes();
        for bad in [
            json!(""),
            json!("a".repeat(300)),
            json!("GPU-Node-1"),
            json!("../gpu-node-1"),
            json!("gpu-node-1;reboot"),
            json!("gpu-node-1\nX-Injected: 1"),
            json!(42),
            json!(["gpu-node-1"]),
        ] {
            let r = call(&f, "get_gpu_inventory", json!({"node": bad})).await;
            assert!(r.failed(), "{bad}");
            let t = text(&r);
            assert!(t.contains("`node`"), "{t}");
            assert!(
                t.contains("Known nodes: gpu-node-1, gpu-node-2, gpu-node-3"),
                "{t}"
            );
            assert!(!t.contains("X-Injected: 1\n"), "{t}");
        }
        let r = call(&f, "get_gpu_inventory", json!({"node": "GPU-Node-1"})).await;
        assert!(
            text(&r).contains("Did you mean \"gpu-node-1\"?"),
            "{}",
            text(&r)
        );
        assert!(seen(&f).is_empty(), "nothing may be routed");
    }

    #[tokio::test]
    async fn unknown_and_not_ready_nodes_list_the_known_ones() {
        let f = fixture(vec![
            ("gpu-node-1", true, Behaviour::Gpus(vec!["healthy"])),
            ("gpu-node-2", false, Behaviour::Gpus(vec!["healthy"])),
        ]);
        let r = call(&f, "get_gpu_health", json!({"node": "gpu-node-7"})).await;
        assert!(r.failed());
        let t = text(&r);
        assert!(t.contains("Unknown node \"gpu-node-7\""), "{t}");
        assert!(t.contains("Known nodes: gpu-node-1, gpu-node-2."), "{t}");
        assert!(t.contains("Did you mean \"gpu-node-1\"?"), "{t}");
        let r = call(&f, "get_gpu_health", json!({"node": "gpu-node-2"})).await;
        assert!(r.failed());
        assert!(text(&r).contains("not ready"), "{}", text(&r));
        assert!(seen(&f).is_empty());
    }

    #[tokio::test]
    async fn agent_errors_keep_their_is_error_and_name_the_node() {
        let f = fixture(vec![
            (
                "a",
                true,
                Behaviour::ToolError("NVML unavailable: libnvidia-ml.so.1 missing"),
            ),
            (
                "b",
                true,
                Behaviour::RpcError(-32602, "unknown argument `x`"),
            ),
            ("c", true, Behaviour::Refuse),
        ]);
        let r = call(&f, "get_gpu_health", json!({"node": "a"})).await;
        assert!(r.failed());
        assert!(
            text(&r).starts_with("node a (pod agent-a): \"NVML unavailable"),
            "{}",
            text(&r)
        );
        let r = call(&f, "get_gpu_health", json!({"node": "b"})).await;
        assert!(r.failed());
        assert!(text(&r).contains("-32602"), "{}", text(&r));
        let r = call(&f, "get_gpu_health", json!({"node": "c"})).await;
        assert!(r.failed());
        assert!(text(&r).contains("connection refused"), "{}", text(&r));
    }

    #[tokio::test]
    async fn fan_out_partial_failure_is_a_success_naming_the_failed_node() {
        let f = three_nodes();
        let r = call(&f, "get_gpu_health", json!({})).await;
        assert!(!r.failed(), "{}", text(&r));
        let s = r.structured_content.clone().unwrap();
        let summary = &s["summary"];
        assert_eq!(summary["nodes_total"], 3);
        assert_eq!(summary["nodes_ok"], 2);
        assert_eq!(summary["nodes_failed"], 1);
        assert_eq!(summary["failed_nodes"], json!(["gpu-node-3"]));
        assert_eq!(
            summary["gpus_by_verdict"],
            json!({"critical": 1, "healthy": 2})
        );
        assert_eq!(s["nodes"][2]["error"]["kind"], "unreachable");
        assert_eq!(s["nodes"][0]["result"]["gpus"].as_array().unwrap().len(), 2);
        let schema = Value::Object(f.catalog.tools()[2].output_schema.clone().unwrap());
        assert!(jsonschema::is_valid(&schema, &s));

        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &f.registry).unwrap();
        assert!(
            out.contains(r#"gateway_node_calls_total{node="gpu-node-3",tool="get_gpu_health",outcome="unreachable"} 1"#),
            "{out}"
        );
        assert!(out.contains("gateway_fan_out_nodes_sum 3"), "{out}");
    }

    #[tokio::test]
    async fn fan_out_with_every_node_failing_is_an_error() {
        let f = fixture(vec![
            ("a", true, Behaviour::Refuse),
            ("b", false, Behaviour::Gpus(vec!["healthy"])),
        ]);
        let r = call(&f, "get_gpu_inventory", json!({})).await;
        assert!(r.failed());
        let t = text(&r);
        assert!(t.starts_with("All 2 nodes failed"), "{t}");
        assert!(t.contains("- b:") && t.contains("not_ready"), "{t}");
        let s = r.structured_content.unwrap();
        assert_eq!(s["summary"]["nodes_not_ready"], 1);
        assert_eq!(s["summary"]["failed_nodes"], json!(["a", "b"]));
    }

    #[tokio::test]
    async fn fan_out_without_nodes_is_an_error() {
        let f = fixture(vec![]);
        let r = call(&f, "get_gpu_health", json!({})).await;
        assert!(r.failed());
        assert!(text(&r).contains("No GPU nodes are known"), "{}", text(&r));
    }

    #[tokio::test(start_paused = true)]
    async fn list_gpu_nodes_reports_gpus_health_and_reasons() {
        let f = fixture(vec![
            (
                "gpu-node-1",
                true,
                Behaviour::Gpus(vec!["healthy", "warning"]),
            ),
            ("gpu-node-2", true, Behaviour::Hang),
            ("gpu-node-3", false, Behaviour::Gpus(vec!["healthy"])),
        ]);
        let r = call(&f, "list_gpu_nodes", json!({})).await;
        assert!(!r.failed(), "{}", text(&r));
        let s = r.structured_content.unwrap();
        assert_eq!(s["status"], "degraded");
        assert_eq!(s["node_count"], 3);
        let n = &s["nodes"];
        assert_eq!(n[0]["name"], "gpu-node-1");
        assert_eq!(n[0]["pod_name"], "agent-gpu-node-1");
        assert_eq!(n[0]["ready"], true);
        assert_eq!(n[0]["gpu_count"], 2);
        assert_eq!(n[0]["gpu_models"], json!(["NVIDIA H100 80GB HBM3"]));
        assert_eq!(n[0]["health"], "warning");
        assert_eq!(n[1]["error"]["kind"], "timeout");
        assert_eq!(n[2]["ready"], false);
        assert_eq!(n[2]["error"]["kind"], "not_ready");
        let schema = Value::Object(f.catalog.tools()[0].output_schema.clone().unwrap());
        assert!(jsonschema::is_valid(&schema, &s));

        let r = call(&f, "list_gpu_nodes", json!({"node": "gpu-node-1"})).await;
        assert!(r.failed());
        assert!(text(&r).contains("`node`"), "{}", text(&r));
    }

    #[tokio::test]
    async fn a_cancelled_call_stops_waiting() {
        let f = fixture(vec![("a", true, Behaviour::Hang)]);
        let ctx = CallContext::default();
        ctx.cancel.cancel();
        let r = f.catalog.call("get_gpu_health", None, ctx).await.unwrap();
        assert!(r.failed());
        assert!(text(&r).contains("cancelled"));
    }
}
