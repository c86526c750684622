//! Forwarding to agents: the typed `tools/call` request the gateway sends, and the reading of
//! an agent's JSON-RPC response (or the routing error in its place) into a tool result or a
//! per-node failure.
//!
//! The router carries messages as JSON ([`to_router`] is the one conversion); everything else
//! is the protocol crate's types.

use gpu_mcp_k8s::quote_untrusted;
use gpu_mcp_protocol::mcp::methods;
use gpu_mcp_protocol::{
    CallToolRequestParams, CallToolResult, JsonObject, Message, Request, RequestId, Response,
    message_from_value,
};
use serde_json::Value;

use gpu_mcp_k8s::NodeError;

use crate::aggregate::{FailureKind, NodeFailure};

/// The request that runs `tool` on an agent. Agents answer a bare `tools/call` without a prior
/// `initialize`, so every forwarded call is self-contained.
pub(crate) fn tools_call_request(id: u64, tool: &str, arguments: Option<JsonObject>) -> Request {
    let id =
        i64::try_from(id).map_or_else(|_| RequestId::String(id.to_string()), RequestId::Number);
    let params = CallToolRequestParams {
        name: tool.to_owned(),
        arguments,
        meta: None,
    };
    Request::new(id, methods::TOOLS_CALL, serde_json::to_value(params).ok())
}

/// The JSON form of a request that the router forwards.
pub(crate) fn to_router(request: &Request) -> Value {
    serde_json::to_value(request).unwrap_or(Value::Null)
}

/// Reads an agent's JSON-RPC response: the tool result (which may itself be `isError`), or a
/// failure for a JSON-RPC error or an answer that is not a tool result.
pub(crate) fn parse_agent_response(response: Value) -> Result<CallToolResult, NodeFailure> {
    if !response.is_object() {
        return Err(NodeFailure::new(
            FailureKind::InvalidResponse,
            "the agent's answer is not a JSON object",
        ));
    }
    match message_from_value(response) {
        Ok(Message::Response(response)) => agent_result(response),
        Ok(_) => Err(NodeFailure::new(
            FailureKind::InvalidResponse,
            "the agent's answer is not a JSON-RPC response",
        )),
        Err(reply) => Err(NodeFailure::new(
            FailureKind::InvalidResponse,
            format!(
                "the agent's answer is not a JSON-RPC response: {}",
                quote_untrusted(&reply.error.map(|e| e.message).unwrap_or_default())
            ),
        )),
    }
}

/// The tool result of a typed response.
fn agent_result(response: Response) -> Result<CallToolResult, NodeFailure> {
    if let Some(error) = response.error {
        return Err(NodeFailure::new(
            FailureKind::AgentError,
            format!(
                "the agent answered with JSON-RPC error {}: {}",
                error.code,
                quote_untrusted(&error.message)
            ),
        ));
    }
    let Some(result) = response.result else {
        return Err(NodeFailure::new(
            FailureKind::InvalidResponse,
            "the agent's answer has neither `result` nor `error`",
        ));
    };
    serde_json::from_value(result).map_err(|e| {
        NodeFailure::new(
            FailureKind::InvalidResponse,
            format!(
                "the agent's answer is not a tool result: {}",
                quote_untrusted(&e.to_string())
            ),
        )
    })
}

/// The per-node failure of a routing error.
pub(crate) fn failure_of(error: &NodeError) -> NodeFailure {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_is_a_bare_tools_call() {
        let args = json!({"include_processes": true}).as_object().cloned();
        assert_eq!(
            to_router(&tools_call_request(7, "get_gpu_health", args)),
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                   "params": {"name": "get_gpu_health", "arguments": {"include_processes": true}}})
        );
        assert_eq!(
            tools_call_request(1, "x", None).params,
            Some(json!({"name": "x"}))
        );
    }

    #[test]
    fn results_pass_through_including_tool_errors() {
        let ok = parse_agent_response(json!({"jsonrpc": "2.0", "id": 1, "result": {
            "content": [{"type": "text", "text": "{}"}], "structuredContent": {"gpus": []}}}))
        .unwrap();
        assert_eq!(ok.structured_content, Some(json!({"gpus": []})));
        assert!(!ok.failed());
        let err = parse_agent_response(json!({"jsonrpc": "2.0", "id": 1, "result": {
            "content": [{"type": "text", "text": "NVML unavailable"}], "isError": true}}))
        .unwrap();
        assert!(err.failed());
    }

    #[test]
    fn json_rpc_errors_become_agent_errors() {
        let f = parse_agent_response(json!({"jsonrpc": "2.0", "id": 1,
            "error": {"code": -32602, "message": "Unknown tool: x"}}))
        .unwrap_err();
        assert_eq!(f.kind, FailureKind::AgentError);
        assert!(f.message.contains("-32602"), "{}", f.message);
        assert!(f.message.contains("Unknown tool: x"), "{}", f.message);
    }

    #[test]
    fn garbage_is_an_invalid_response() {
        for v in [
            json!([1]),
            json!({"id": 1}),
            json!({"result": {"content": 5}}),
        ] {
            assert_eq!(
                parse_agent_response(v).unwrap_err().kind,
                FailureKind::InvalidResponse
            );
        }
    }
}
