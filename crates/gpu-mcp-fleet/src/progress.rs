//! Progress of a fan-out: one `notifications/progress` per node as it answers (done / total,
//! naming the node and how it ended), when the client asked for progress.
//!
//! Cancelling the request drops the fan-out's future, which stops the node calls still
//! outstanding.

use gpu_mcp_k8s::{NodeResult, Router};
use gpu_mcp_protocol::Request;
use gpu_mcp_service::Progress;

use crate::forward::failure_of;

/// Routes `request` to every node `wanted` admits, reporting each answer to `progress` as it comes in.
pub(crate) async fn route_reporting(
    router: &Router,
    request: &Request,
    wanted: impl Fn(&str) -> bool,
    progress: Option<&Progress>,
) -> Vec<NodeResult> {
    let mut answered = 0_u64;
    router
        .route_to_all_with(request, wanted, |result, total| {
            answered += 1;
            if let Some(p) = progress {
                p.report(answered, total as u64, &progress_message(result));
            }
        })
        .await
}

/// What a progress report says about the node that just answered.
fn progress_message(result: &NodeResult) -> String {
    match &result.outcome {
        Ok(_) => format!("{} answered", result.node_name),
        Err(e) => format!(
            "{} did not answer: {}",
            result.node_name,
            failure_of(e).kind.as_str()
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use futures::FutureExt;
    use futures::future::BoxFuture;
    use gpu_mcp_k8s::{AgentEndpoint, NodeError, NodeTransport, RouterConfig, StaticDirectory};
    use gpu_mcp_protocol::{Response, Tool};
    use gpu_mcp_service::{CallContext, ToolCatalog};
    use serde_json::{Value, json};
    use tokio::sync::mpsc;

    use super::*;
    use crate::ClusterCatalog;

    /// Nodes whose name starts with `ok` answer with no GPUs; the others refuse the connection.
    struct Answers;

    impl NodeTransport for Answers {
        fn send<'a>(
            &'a self,
            target: &'a AgentEndpoint,
            request: &'a Request,
        ) -> BoxFuture<'a, Result<Response, NodeError>> {
            async move {
                let id = request.id.clone();
                if target.node_name.starts_with("ok") {
                    Ok(Response::success(
                        id,
                        json!({
                        "content": [{"type": "text", "text": "{}"}],
                        "structuredContent": {"gpus": []}}),
                    ))
                } else {
                    Err(NodeError::Connect {
                        url: "http://127.0.0.1:1/mcp".into(),
                        message: "connection refused".into(),
                    })
                }
            }
            .boxed()
        }
    }

    fn router(nodes: &[&str]) -> Arc<Router> {
        let pairs = nodes
            .iter()
            .map(|n| (*n, format!("http://127.0.0.1:1/{n}")));
        let directory = StaticDirectory::new(pairs).expect("valid names and URLs");
        Arc::new(Router::new(
            Arc::new(directory),
            Arc::new(Answers),
            RouterConfig {
                concurrency: 2,
                node_timeout: Duration::from_secs(10),
                circuit_breaker: None,
            },
        ))
    }

    fn health_tool() -> Tool {
        Tool {
            name: "get_gpu_health".into(),
            title: None,
            description: "Health of this node.".into(),
            input_schema: json!({"type": "object"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            output_schema: None,
            annotations: None,
        }
    }

    fn reports(rx: &mut mpsc::Receiver<Vec<u8>>) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(bytes) = rx.try_recv() {
            out.push(serde_json::from_slice(&bytes).expect("a notification is JSON"));
        }
        out
    }

    #[tokio::test]
    async fn a_fan_out_reports_each_node_as_it_answers() {
        let catalog = ClusterCatalog::new(router(&["ok-1", "down-2", "ok-3"]), vec![health_tool()]);
        let (tx, mut rx) = mpsc::channel(16);
        let ctx = CallContext {
            progress: Some(Progress::new(json!("fan"), tx)),
            ..CallContext::default()
        };
        let result = catalog
            .call("get_gpu_health", None, ctx)
            .await
            .expect("a known tool");
        assert!(!result.failed());
        let reports = reports(&mut rx);
        assert_eq!(reports.len(), 3, "{reports:?}");
        for (i, r) in reports.iter().enumerate() {
            assert_eq!(r["method"], "notifications/progress");
            assert_eq!(r["params"]["progressToken"], "fan");
            assert_eq!(r["params"]["progress"], i + 1);
            assert_eq!(r["params"]["total"], 3);
        }
        let mut messages: Vec<&str> = reports
            .iter()
            .filter_map(|r| r["params"]["message"].as_str())
            .collect();
        messages.sort_unstable();
        assert_eq!(
            messages,
            [
                "down-2 did not answer: unreachable",
                "ok-1 answered",
                "ok-3 answered"
            ]
        );
    }

    #[tokio::test]
    async fn without_progress_nothing_is_reported_and_all_nodes_are_asked() {
        let routed = route_reporting(
            &router(&["ok-1", "ok-2"]),
            &Request::new(1, "tools/list", None),
            |_| true,
            None,
        )
        .await;
        assert_eq!(routed.len(), 2);
        assert!(routed.iter().all(|r| r.outcome.is_ok()));
    }
}
