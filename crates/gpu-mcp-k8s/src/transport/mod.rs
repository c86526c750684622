//! Node transports: how one JSON-RPC request reaches one node's agent.

use futures::future::BoxFuture;
use gpu_mcp_protocol::{
    Message, ProtocolVersion, Request, RequestId, Response, message_from_value,
};
use serde_json::Value;

use crate::endpoint::AgentEndpoint;
use crate::error::NodeError;

pub mod exec;
pub mod http;

/// MCP protocol version announced to agents by default: the newest handshake revision.
pub const DEFAULT_PROTOCOL_VERSION: &str = ProtocolVersion::LATEST_HANDSHAKE.as_str();

/// Sends one MCP request to one node's agent and returns its JSON-RPC response.
///
/// The request and the response are the protocol crate's typed messages: a transport encodes
/// the request with its codec and reads the agent's answer into a [`Response`] carrying the
/// request's id.
/// A JSON-RPC error response from the agent is a successful send (`Ok`); `Err` means the
/// agent could not be reached or did not answer properly.
///
/// A transport sets no deadline: the [`crate::Router`] bounds every send with its node timeout
/// and drops the future when it passes, which must cancel the exchange.
pub trait NodeTransport: Send + Sync {
    /// Send `request` to `target` and read the agent's response to it.
    fn send<'a>(
        &'a self,
        target: &'a AgentEndpoint,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<Response, NodeError>>;
}

/// Whether `message` is a JSON-RPC response (result or error) carrying `id`.
pub(crate) fn is_response_to(message: &Value, id: &RequestId) -> bool {
    message.get("id").and_then(RequestId::from_value).as_ref() == Some(id)
        && message.get("method").is_none()
        && (message.get("result").is_some() || message.get("error").is_some())
}

/// Validate that `message` is the response to the request with `id`, and read it.
pub(crate) fn check_response(message: Value, id: &RequestId) -> Result<Response, NodeError> {
    if is_response_to(&message, id) {
        let found = match message_from_value(message) {
            Ok(Message::Response(response)) => return Ok(response),
            Ok(_) => "a message that is not a response".to_owned(),
            Err(reply) => reply
                .error
                .map_or_else(|| "an invalid response".to_owned(), |e| e.message),
        };
        return Err(NodeError::Protocol {
            message: format!("expected the JSON-RPC response to request {id}, got {found}"),
        });
    }
    let found = match message.get("id").and_then(RequestId::from_value) {
        Some(other) if &other != id => format!("a message with id {other} instead of {id}"),
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
        let id = RequestId::Number(7);
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
        let r = check_response(json!({"jsonrpc":"2.0","id":7,"result":{"a":1}}), &id).unwrap();
        assert_eq!(r, Response::success(id, json!({"a":1})));
    }
}
