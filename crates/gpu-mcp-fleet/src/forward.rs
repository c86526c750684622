//! Forwarding to agents: the JSON-RPC `tools/call` request the gateway sends, and the reading of
//! an agent's JSON-RPC response into a tool result or a per-node failure.

use gpu_mcp_protocol::{CallToolResult, JsonObject};
use serde_json::{Value, json};

use crate::aggregate::{FailureKind, NodeFailure};

/// The JSON-RPC request that runs `tool` on an agent. Agents answer a bare `tools/call` without
/// a prior `initialize`, so every forwarded call is self-contained.
pub fn tools_call_request(id: u64, tool: &str, arguments: Option<JsonObject>) -> Value {
    let mut params = json!({ "name": tool });
    if let (Some(arguments), Some(p)) = (arguments, params.as_object_mut()) {
        p.insert("arguments".into(), Value::Object(arguments));
    }
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params })
}

/// Reads an agent's JSON-RPC response: the tool result (which may itself be `isError`), or a
/// failure for a JSON-RPC error or an answer that is not a tool result.
pub fn parse_agent_response(response: Value) -> Result<CallToolResult, NodeFailure> {
    let Value::Object(mut response) = response else {
        return Err(NodeFailure::new(
            FailureKind::InvalidResponse,
            "the agent's answer is not a JSON object",
        ));
    };
    if let Some(error) = response.remove("error").filter(|e| !e.is_null()) {
        let code = error.get("code").and_then(Value::as_i64);
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        let code = code.map_or_else(|| "without a code".to_owned(), |c| c.to_string());
        return Err(NodeFailure::new(
            FailureKind::AgentError,
            format!("the agent answered with JSON-RPC error {code}: {message}"),
        ));
    }
    let Some(result) = response.remove("result") else {
        return Err(NodeFailure::new(
            FailureKind::InvalidResponse,
            "the agent's answer has neither `result` nor `error`",
        ));
    };
    serde_json::from_value(result).map_err(|e| {
        NodeFailure::new(
            FailureKind::InvalidResponse,
            format!("the agent's answer is not a tool result: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_a_bare_tools_call() {
        let args = json!({"include_processes": true}).as_object().cloned();
        assert_eq!(
            tools_call_request(7, "get_gpu_health", args),
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                   "params": {"name": "get_gpu_health", "arguments": {"include_processes": true}}})
        );
        assert_eq!(
            tools_call_request(1, "x", None)["params"],
            json!({"name": "x"})
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
