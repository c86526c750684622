//! The gateway's resources: the same `gpu://{node}/...` templates as the agent's (for the tools
//! the gateway offers), every known node's node-wide resources listed, and each read routed to
//! the named node's agent as the tool call that holds it ([`GpuResource::tool`]), so a read
//! needs nothing of the agent but its tools.
//!
//! The node in a URI passes the node-name rule ([`NodeName`]) before anything is routed; a node
//! the router does not know, a GPU the node does not have, or a URI that is no GPU resource is
//! not found (`-32002`); a node that does not answer, or whose tool fails, makes the resource
//! unavailable (`-32603`), with the router's or the agent's words quoted.
//! Fan-out answers link to the resources of the nodes they detail ([`problem_links`]).

use futures::FutureExt;
use futures::future::BoxFuture;
use gpu_mcp_k8s::{NodeError, NodeName, quote_untrusted};
use gpu_mcp_model::resources::{
    GpuResource, MIME_JSON, ResourceKind, VAR_INDEX, VAR_NODE, resource_templates, shown,
    template_kind,
};
use gpu_mcp_protocol::Content;
use gpu_mcp_protocol::Request;
use gpu_mcp_protocol::mcp::{
    CompleteArgument, CompleteRequestParams, Completion, CompletionReference, ReadResourceResult,
    Resource, ResourceTemplate, TextResourceContents, methods,
};
use gpu_mcp_service::{ResourceCatalog, ResourceError};
use tokio_util::sync::CancellationToken;

use crate::ClusterCatalog;
use crate::aggregate::result_text;
use crate::forward::completion_of;

/// How long the gateway's resource list stays true: nodes come and go.
pub(crate) const RESOURCES_TTL_MS: u64 = 30 * 1000;

/// Most `resource_link` blocks one fan-out answer carries (one per detailed node, worst first).
pub(crate) const MAX_LINKS: usize = 10;

impl ClusterCatalog {
    fn offers(&self, kind: ResourceKind) -> bool {
        self.offers_tool(kind.tool())
    }

    async fn read_resource(&self, uri: &str) -> Result<ReadResourceResult, ResourceError> {
        let resource = GpuResource::parse(uri).map_err(ResourceError::NotFound)?;
        let node = NodeName::try_from(resource.node.as_str()).map_err(|e| {
            ResourceError::NotFound(format!("{} names no valid node: {e}.", shown(uri)))
        })?;
        if !self.offers(resource.kind) {
            return Err(ResourceError::NotFound(format!(
                "{} is read through {}, which this server does not offer.",
                shown(uri),
                resource.tool()
            )));
        }
        let tool = resource.tool();
        let request = self.request(tool, resource.arguments());
        let routed = self.router().route_to_node(&node, &request).await;
        if let Err(NodeError::NotFound {
            node,
            known,
            synced,
            ..
        }) = &routed.outcome
        {
            return Err(ResourceError::NotFound(format!(
                "Unknown node \"{node}\": no GPU diagnostics agent runs there.{}",
                crate::catalog::known_nodes_hint(Some(node), known.clone(), *synced)
            )));
        }
        let outcome = self.outcome(tool, routed);
        let mut reply = outcome.reply.map_err(|f| {
            ResourceError::Unavailable(format!(
                "node {}: {} ({})",
                outcome.node,
                f.message,
                f.kind.as_str()
            ))
        })?;
        if reply.failed() {
            let words = quote_untrusted(&result_text(&reply));
            // The agent's refusal of a GPU index it does not have: that GPU's resource does not
            // exist.
            let message = format!("node {}: {words}", outcome.node);
            return Err(
                if resource.index.is_some() && words.contains("`gpu_index`") {
                    ResourceError::NotFound(message)
                } else {
                    ResourceError::Unavailable(message)
                },
            );
        }
        let text = reply.take_structured_json().ok_or_else(|| {
            ResourceError::Unavailable(format!(
                "node {}: {tool} returned no structured result.",
                outcome.node
            ))
        })?;
        Ok(ReadResourceResult {
            contents: vec![TextResourceContents {
                uri: uri.to_owned(),
                mime_type: Some(MIME_JSON.to_owned()),
                text,
            }],
            ttl_ms: None,
            cache_scope: None,
            meta: None,
        })
    }

    fn list_resources(&self) -> Vec<Resource> {
        let mut nodes: Vec<String> = self
            .router()
            .directory()
            .nodes()
            .into_iter()
            .map(|n| n.node_name)
            .collect();
        nodes.sort_unstable();
        let kinds: Vec<ResourceKind> = ResourceKind::NODE
            .into_iter()
            .filter(|k| self.offers(*k))
            .collect();
        nodes
            .into_iter()
            .flat_map(|n| {
                kinds
                    .iter()
                    .map(move |k| GpuResource::node(n.clone(), *k).listing())
            })
            .collect()
    }

    async fn complete_variable(&self, request: &CompleteRequestParams) -> Completion {
        let CompletionReference::Resource { uri } = &request.reference else {
            return Completion::default();
        };
        let Some(kind) = template_kind(uri) else {
            return Completion::default();
        };
        let prefix = request.argument.value.as_str();
        match request.argument.name.as_str() {
            VAR_NODE => Completion::matching(
                self.router()
                    .directory()
                    .nodes()
                    .into_iter()
                    .map(|n| n.node_name),
                prefix,
            ),
            VAR_INDEX if kind.takes_index() => match request.context_argument(VAR_NODE) {
                Some(node) => self.index_of(node, uri, prefix).await,
                None => Completion::default(),
            },
            _ => Completion::default(),
        }
    }

    /// Asks the agent on `node` to complete `index` of the same template (the agent completes
    /// it from its GPUs); no values when the node is unknown or does not answer.
    async fn index_of(&self, node: &str, template: &str, prefix: &str) -> Completion {
        let Ok(node) = NodeName::try_from(node) else {
            return Completion::default();
        };
        let params = CompleteRequestParams {
            reference: CompletionReference::Resource {
                uri: template.to_owned(),
            },
            argument: CompleteArgument {
                name: VAR_INDEX.to_owned(),
                value: prefix.to_owned(),
            },
            context: None,
            meta: None,
        };
        let Ok(params) = serde_json::to_value(params) else {
            return Completion::default();
        };
        let request = Request::new(1, methods::COMPLETION_COMPLETE, Some(params));
        let answer = self.router().route_to_node(&node, &request).await;
        answer
            .outcome
            .map_or_else(|_| Completion::default(), |r| completion_of(&r))
    }

    /// `resource_link` blocks to the `tool` resource of the first [`MAX_LINKS`] of `nodes`
    /// (the nodes an answer details, worst first), where the gateway offers that resource.
    pub(crate) fn problem_links<'a>(
        &self,
        tool: &str,
        nodes: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Content> {
        let Some(kind) = ResourceKind::of_tool(tool).filter(|k| self.offers(*k)) else {
            return Vec::new();
        };
        nodes
            .into_iter()
            .take(MAX_LINKS)
            .map(|n| Content::resource_link(&GpuResource::node(n, kind).listing()))
            .collect()
    }
}

/// Every known node's resources, announced as changed when the set of nodes changes; `node`
/// completes from discovery and `index` from the chosen
/// node's agent.
impl ResourceCatalog for ClusterCatalog {
    fn templates(&self) -> Vec<ResourceTemplate> {
        let tools = self.offered_tools();
        resource_templates(tools.iter().map(String::as_str))
    }

    fn resources(&self) -> BoxFuture<'_, Vec<Resource>> {
        let listed = self.list_resources();
        async move { listed }.boxed()
    }

    fn resources_ttl_ms(&self) -> u64 {
        RESOURCES_TTL_MS
    }

    fn read<'a>(
        &'a self,
        uri: &'a str,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<ReadResourceResult, ResourceError>> {
        async move {
            tokio::select! {
                r = self.read_resource(uri) => r,
                () = cancel.cancelled() => Err(ResourceError::Unavailable("The read was cancelled.".into())),
            }
        }
        .boxed()
    }

    fn complete<'a>(&'a self, request: &'a CompleteRequestParams) -> BoxFuture<'a, Completion> {
        self.complete_variable(request).boxed()
    }

    /// The list is the nodes' resources, so it changes when discovery gains or loses a node;
    /// static agents never change.
    fn list_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.router().directory().node_set_changes()
    }
}
