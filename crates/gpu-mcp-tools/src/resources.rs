//! The agent's resources: the `gpu://{node}/...` templates of the tools it offers, for this
//! node only, read by running the tool ([`gpu_mcp_model::resources`]).
//!
//! `resources/list` names this node's inventory, health and Xid resources and one inventory per
//! GPU of the current snapshot (at most [`MAX_GPU_RESOURCES`]). A URI naming another node, a GPU
//! the node does not have, or no GPU resource at all is not found; a tool that fails (the GPUs
//! cannot be read) makes the resource unavailable, with the tool's message.

use futures::FutureExt;
use futures::future::BoxFuture;
use gpu_mcp_model::resources::{
    GpuResource, MIME_JSON, ResourceKind, VAR_INDEX, VAR_NODE, resource_templates, shown,
    template_kind,
};
use gpu_mcp_protocol::mcp::{
    CompleteRequestParams, Completion, CompletionReference, ReadResourceResult, Resource,
    ResourceTemplate, TextResourceContents,
};
use gpu_mcp_service::{ResourceCatalog, ResourceError, ToolCatalog};
use tokio_util::sync::CancellationToken;

use crate::AgentCatalog;

/// Most per-GPU resources listed (a node has far fewer GPUs).
pub const MAX_GPU_RESOURCES: usize = 64;

/// How long the agent's resource list stays true: it changes only when the node's GPUs do.
pub const RESOURCES_TTL_MS: u64 = 5 * 60 * 1000;

impl AgentCatalog {
    fn offered_templates(&self) -> Vec<ResourceTemplate> {
        let tools = self.tools();
        resource_templates(tools.iter().map(|t| t.name.as_str()))
    }

    fn offers(&self, kind: ResourceKind) -> bool {
        self.offers_tool(kind.tool())
    }

    /// The GPU indexes of the current snapshot (none when the GPUs cannot be read).
    async fn gpu_indexes(&self) -> Option<Vec<u32>> {
        let snapshot = self.backend().snapshot().await.ok()?;
        Some(snapshot.gpus.iter().map(|g| g.index).collect())
    }

    async fn read_resource(&self, uri: &str) -> Result<ReadResourceResult, ResourceError> {
        let resource = GpuResource::parse(uri).map_err(ResourceError::NotFound)?;
        let node = self.node_name();
        if resource.node != node {
            return Err(ResourceError::NotFound(format!(
                "This agent serves node {node} only; {} names {}. Read gpu://{node}/... here, or ask the gateway.",
                shown(uri),
                shown(&resource.node)
            )));
        }
        if !self.offers(resource.kind) {
            return Err(ResourceError::NotFound(format!(
                "{} is read through {}, which this server does not offer.",
                shown(uri),
                resource.tool()
            )));
        }
        if let Some(index) = resource.index {
            let indexes = self.gpu_indexes().await.ok_or_else(|| {
                ResourceError::Unavailable("Cannot read the GPUs of this node.".into())
            })?;
            if !indexes.contains(&index) {
                return Err(ResourceError::NotFound(format!(
                    "{}: node {node} has no GPU {index} (it has {}).",
                    shown(uri),
                    describe(&indexes)
                )));
            }
        }
        let mut result = self
            .run(resource.tool(), resource.arguments())
            .await
            .map_err(|e| ResourceError::NotFound(e.to_string()))?;
        if result.failed() {
            let words: Vec<&str> = result.content.iter().filter_map(|c| c.as_text()).collect();
            return Err(ResourceError::Unavailable(words.join(" ")));
        }
        let text = result.take_structured_json().ok_or_else(|| {
            ResourceError::Unavailable(format!(
                "{} returned no structured result.",
                resource.tool()
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

    async fn list_resources(&self) -> Vec<Resource> {
        let node = self.node_name().to_owned();
        let mut listed: Vec<Resource> = ResourceKind::NODE
            .into_iter()
            .filter(|k| self.offers(*k))
            .map(|k| GpuResource::node(node.clone(), k).listing())
            .collect();
        if self.offers(ResourceKind::GpuInventory) {
            let indexes = self.gpu_indexes().await.unwrap_or_default();
            listed.extend(
                indexes
                    .into_iter()
                    .take(MAX_GPU_RESOURCES)
                    .map(|i| GpuResource::gpu(node.clone(), i).listing()),
            );
        }
        listed
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
            VAR_NODE => Completion::matching([self.node_name()], prefix),
            VAR_INDEX if kind.takes_index() => Completion::matching(
                self.gpu_indexes()
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .map(|i| i.to_string()),
                prefix,
            ),
            _ => Completion::default(),
        }
    }
}

/// "GPUs 0-7", "no GPUs", or the list when it has gaps.
fn describe(indexes: &[u32]) -> String {
    match indexes {
        [] => "no GPUs".to_owned(),
        [only] => format!("only GPU {only}"),
        [first, .., last]
            if usize::try_from(last - first).is_ok_and(|span| span + 1 == indexes.len()) =>
        {
            format!("GPUs {first}-{last}")
        }
        _ => format!(
            "GPUs {}",
            indexes
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// This node's GPU resources; `node` completes to this node's name and `index` from its GPUs.
impl ResourceCatalog for AgentCatalog {
    fn templates(&self) -> Vec<ResourceTemplate> {
        self.offered_templates()
    }

    fn resources(&self) -> BoxFuture<'_, Vec<Resource>> {
        self.list_resources().boxed()
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
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn gpu_indexes_are_described_briefly() {
        assert_eq!(describe(&[]), "no GPUs");
        assert_eq!(describe(&[2]), "only GPU 2");
        assert_eq!(describe(&[0, 1, 2, 3]), "GPUs 0-3");
        assert_eq!(describe(&[0, 2, 3]), "GPUs 0, 2, 3");
    }
}
