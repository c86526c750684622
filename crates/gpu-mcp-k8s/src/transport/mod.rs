//! Node transports: how one JSON-RPC request reaches one node's agent.

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::endpoint::AgentEndpoint;
use crate::error::NodeError;

pub mod exec;
pub mod http;

/// MCP protocol version announced to agents by default.
pub const DEFAULT_PROTOCOL_VERSION: &str = "2025-11-25";

/// Sends one MCP request to one node's agent and returns its JSON-RPC response.
///
/// A JSON-RPC error response from the agent is a successful send (`Ok`); `Err` means the
/// agent could not be reached or did not answer properly.
pub trait NodeTransport: Send + Sync {
    /// Send `request` (one JSON-RPC request object) to `target`, giving up after `deadline`.
    fn send<'a>(
        &'a self,
        target: &'a AgentEndpoint,
        request: &'a Value,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Value, NodeError>>;
}

/// The `id` of a JSON-RPC request, if it has a usable one.
pub(crate) fn request_id(request: &Value) -> Result<&Value, NodeError> {
    match request.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => Ok(id),
        _ => Err(NodeError::Protocol {
            message: "the request to forward has no string or number id".to_owned(),
        }),
    }
}

/// Whether `message` is a JSON-RPC response (result or error) carrying `id`.
pub(crate) fn is_response_to(message: &Value, id: &Value) -> bool {
    message.get("id") == Some(id)
        && message.get("method").is_none()
        && (message.get("result").is_some() || message.get("error").is_some())
}

/// Validate that `message` is the response to the request with `id`.
pub(crate) fn check_response(message: Value, id: &Value) -> Result<Value, NodeError> {
    if is_response_to(&message, id) {
        return Ok(message);
    }
    let found = match message.get("id") {
        Some(other) if other != id => format!("a message with id {other} instead of {id}"),
        _ if !message.is_object() => "a JSON value that is not an object".to_owned(),
        _ => "a JSON object that is not a JSON-RPC response".to_owned(),
    };
    Err(NodeError::Protocol {
        message: format!("expected the JSON-RPC response to request {id}, got {found}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn response_matching() {
        let id = json!(7);
        assert!(check_response(json!({"jsonrpc":"2.0","id":7,"result":{}}), &id).is_ok());
        assert!(
            check_response(
                json!({"jsonrpc":"2.0","id":7,"error":{"code":-1,"message":"x"}}),
                &id
            )
            .is_ok()
        );
        let err = check_response(json!({"jsonrpc":"2.0","id":8,"result":{}}), &id).unwrap_err();
        assert!(err.to_string().contains("id 8 instead of 7"), "{err}");
        assert!(check_response(json!([1, 2]), &id).is_err());
        assert!(check_response(json!({"jsonrpc":"2.0","id":7,"method":"x"}), &id).is_err());
        assert!(request_id(&json!({"method":"x"})).is_err());
        assert!(request_id(&json!({"id":"a"})).is_ok());
    }
}
