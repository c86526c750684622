//! The part both transports share: hand one decoded message to a session, bound its time and
//! count it in the metrics.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use gpu_mcp_protocol::{ErrorCode, Message, Response};
use gpu_mcp_service::{McpServer, RequestContext, Session};
use serde_json::Value;

use crate::codec::error_response;
use crate::metrics::{Metrics, Outcome};

/// Shared per-transport dispatch state; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Dispatcher {
    server: McpServer,
    metrics: Option<Metrics>,
    /// Names reported as the `tool` label; other (client-chosen) names are `other`.
    tool_names: Arc<HashSet<String>>,
    request_timeout: Option<Duration>,
}

impl Dispatcher {
    pub(crate) fn new(
        server: McpServer,
        metrics: Option<Metrics>,
        request_timeout: Option<Duration>,
    ) -> Self {
        let tool_names = server
            .catalog()
            .tools()
            .into_iter()
            .map(|t| t.name)
            .collect();
        Self {
            server,
            metrics,
            tool_names: Arc::new(tool_names),
            request_timeout,
        }
    }

    pub(crate) fn server(&self) -> &McpServer {
        &self.server
    }

    /// Handles one message. Requests always get a reply (an error reply on timeout).
    pub(crate) async fn dispatch(
        &self,
        session: &Session,
        message: Message,
        ctx: RequestContext,
    ) -> Option<Response> {
        let Message::Request(request) = message else {
            return session.handle(message, ctx).await;
        };
        let method = request.method.clone();
        let tool = if method == "tools/call" {
            let name = request
                .params
                .as_ref()
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if self.tool_names.contains(name) {
                name
            } else {
                "other"
            }
            .to_owned()
        } else {
            String::new()
        };
        let id = request.id.clone();
        let guard = self.metrics.as_ref().map(Metrics::request_started);
        let handled = AssertUnwindSafe(session.handle(Message::Request(request), ctx))
            .catch_unwind()
            .map(|r| match r {
                Ok(response) => response,
                Err(_) => Some(error_response(
                    Some(id.clone()),
                    ErrorCode::InternalError,
                    "internal error while handling the request",
                )),
            });
        let (response, outcome) = match self.request_timeout {
            Some(limit) => match tokio::time::timeout(limit, handled).await {
                Ok(r) => (r, None),
                Err(_) => (
                    Some(error_response(
                        Some(id),
                        ErrorCode::InternalError,
                        format!("request timed out after {} s", limit.as_secs_f64()),
                    )),
                    Some(Outcome::Timeout),
                ),
            },
            None => (handled.await, None),
        };
        if let Some(guard) = guard {
            let outcome = outcome.unwrap_or_else(|| classify(response.as_ref()));
            guard.finish(&method, &tool, outcome);
        }
        response
    }
}

fn classify(response: Option<&Response>) -> Outcome {
    match response {
        Some(r) if r.error.is_some() => Outcome::Error,
        Some(r)
            if r.result
                .as_ref()
                .and_then(|v| v.get("isError"))
                .and_then(Value::as_bool)
                == Some(true) =>
        {
            Outcome::ToolError
        }
        _ => Outcome::Ok,
    }
}
