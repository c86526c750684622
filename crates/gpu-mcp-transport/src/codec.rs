//! The replies the transports write themselves, for limits the server core never sees (an
//! over-long line, a body too large, a refused `Origin`): thin adapters over
//! [`gpu_mcp_protocol`]'s codec. Decoding is the server core's
//! ([`gpu_mcp_service::Incoming`]).

use gpu_mcp_protocol::{ErrorCode, ErrorObject, RequestId, Response};

/// Encodes a response as one line of JSON (no embedded newline, no trailing newline).
pub(crate) fn encode_response(response: &Response) -> Vec<u8> {
    gpu_mcp_protocol::encode(response)
}

/// A JSON-RPC error reply with a standard code.
pub(crate) fn error_response(
    id: Option<RequestId>,
    code: ErrorCode,
    message: impl Into<String>,
) -> Response {
    Response::error(id, ErrorObject::new(code, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_mcp_protocol::Message;
    use gpu_mcp_service::Incoming;
    use serde_json::Value;

    fn err_code(bytes: &[u8]) -> (i64, Option<RequestId>) {
        let r = Incoming::from_line(bytes).unwrap_err();
        let v: Value = serde_json::from_slice(r.body().unwrap()).unwrap();
        (
            v["error"]["code"].as_i64().unwrap(),
            RequestId::from_value(&v["id"]),
        )
    }

    #[test]
    fn the_cases_the_transports_rely_on() {
        assert_eq!(err_code(b"{not json").0, -32700);
        assert_eq!(
            err_code(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}").0,
            -32700
        );
        let bomb = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(err_code(bomb.as_bytes()).0, -32700);
        assert_eq!(err_code(b"[]"), (-32600, None));
        assert_eq!(
            err_code(br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#).0,
            -32600
        );
        assert!(matches!(
            Incoming::from_line(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                .map(|i| i.message().clone()),
            Ok(Message::Notification(_))
        ));
    }

    #[test]
    fn encoded_responses_are_single_lines() {
        let r = Response::success(RequestId::Number(1), serde_json::json!({"t": "a\nb"}));
        let bytes = encode_response(&r);
        assert!(!bytes.contains(&b'\n'));
        let back: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back["result"]["t"], "a\nb");
    }
}
