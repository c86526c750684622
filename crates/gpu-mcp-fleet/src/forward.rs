//! Forwarding to agents: the typed `tools/call` request the gateway sends, and the reading of
//! an agent's typed JSON-RPC response (or the routing error in its place) into a tool result or
//! a per-node failure.

use gpu_mcp_k8s::quote_untrusted;
use gpu_mcp_protocol::mcp::{CompleteResult, Completion, methods};
use gpu_mcp_protocol::{
    CallToolRequestParams, CallToolResult, JsonObject, Request, RequestId, Response,
};
use serde::de::DeserializeOwned;

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

/// Reads an agent's JSON-RPC response: the tool result (which may itself be `isError`), or a
/// failure for a JSON-RPC error or an answer that is not a tool result.
pub(crate) fn parse_agent_response(response: Response) -> Result<CallToolResult, NodeFailure> {
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
    let Some(result) = result_as::<CallToolResult>(&response) else {
        return Err(NodeFailure::new(
            FailureKind::InvalidResponse,
            "the agent's answer has neither `result` nor `error`",
        ));
    };
    result.map_err(|e| {
        NodeFailure::new(
            FailureKind::InvalidResponse,
            format!(
                "the agent's answer is not a tool result: {}",
                quote_untrusted(&e.to_string())
            ),
        )
    })
}

/// The completion in an agent's answer to `completion/complete`; none when it refused or
/// answered something else.
pub(crate) fn completion_of(response: &Response) -> Completion {
    match result_as::<CompleteResult>(response) {
        Some(Ok(result)) => result.completion,
        _ => Completion::default(),
    }
}

/// The success payload of `response` read as `T`, however the response holds it; `None` when
/// it has none.
fn result_as<T: DeserializeOwned>(response: &Response) -> Option<Result<T, serde_json::Error>> {
    if let Some(raw) = response.encoded_result() {
        return Some(serde_json::from_str(raw.get()));
    }
    response.result.as_ref().map(T::deserialize)
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
    use gpu_mcp_protocol::ErrorObject;
    use serde_json::{Value, json};

    fn success(result: Value) -> Response {
        Response::success(RequestId::Number(1), result)
    }

    #[test]
    fn request_is_a_bare_tools_call() {
        let args = json!({"include_processes": true}).as_object().cloned();
        assert_eq!(
            serde_json::to_value(tools_call_request(7, "get_gpu_health", args)).unwrap(),
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
        let ok = parse_agent_response(success(json!({
            "content": [{"type": "text", "text": "{}"}], "structuredContent": {"gpus": []}})))
        .unwrap();
        assert_eq!(ok.structured_content, Some(json!({"gpus": []})));
        assert!(!ok.failed());
        let err = parse_agent_response(success(json!({
            "content": [{"type": "text", "text": "NVML unavailable"}], "isError": true})))
        .unwrap();
        assert!(err.failed());
        // A result the agent encoded straight from its types reads the same.
        let raw = serde_json::value::to_raw_value(&json!({
            "content": [{"type": "text", "text": "{}"}], "structuredContent": {"gpus": [1]}}))
        .unwrap();
        let encoded = Response::success_encoded(RequestId::Number(1), raw);
        let ok = parse_agent_response(encoded).unwrap();
        assert_eq!(ok.structured_content, Some(json!({"gpus": [1]})));
    }

    #[test]
    fn json_rpc_errors_become_agent_errors() {
        let error = ErrorObject {
            code: -32602,
            message: "Unknown tool: x".into(),
            data: None,
        };
        let f =
            parse_agent_response(Response::error(Some(RequestId::Number(1)), error)).unwrap_err();
        assert_eq!(f.kind, FailureKind::AgentError);
        assert!(f.message.contains("-32602"), "{}", f.message);
        assert!(f.message.contains("Unknown tool: x"), "{}", f.message);
    }

    #[test]
    fn garbage_is_an_invalid_response() {
        let empty: Response = serde_json::from_value(json!({"jsonrpc": "2.0", "id": 1})).unwrap();
        for response in [empty, success(json!({"content": 5})), success(json!([1]))] {
            assert_eq!(
                parse_agent_response(response).unwrap_err().kind,
                FailureKind::InvalidResponse
            );
        }
    }

    #[test]
    fn completions_are_read_or_empty() {
        let c = completion_of(&success(json!({"completion": {"values": ["0", "1"]}})));
        assert_eq!(c.values, ["0", "1"]);
        assert_eq!(
            completion_of(&success(json!({"x": 1}))),
            Completion::default()
        );
    }
}
