//! Bytes ⇄ JSON-RPC messages for the transports.
//!
//! Kept small and local so it can be replaced by the protocol crate's own decoder without touching
//! the transports: both functions have the shapes `gpu_mcp_protocol` is expected to offer.

use gpu_mcp_protocol::{
    ErrorCode, ErrorObject, Message, Notification, Request, RequestId, Response,
};
use serde_json::Value;

/// Decodes one JSON-RPC message.
///
/// The error is the ready reply: `-32700` for bytes that are not JSON (including invalid UTF-8 and
/// nesting deeper than serde_json's recursion limit), `-32600` for JSON that is not a JSON-RPC 2.0
/// message, carrying the request id when it could be read.
pub(crate) fn parse_message(bytes: &[u8]) -> Result<Message, Box<Response>> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        Box::new(Response::error(
            None,
            ErrorObject::new(ErrorCode::ParseError, format!("Parse error: {e}")),
        ))
    })?;
    let Value::Object(mut obj) = value else {
        let what = if value.is_array() {
            "batches are not supported; send one JSON-RPC message"
        } else {
            "a JSON-RPC message must be a JSON object"
        };
        return Err(invalid(None, what));
    };
    let id_value = obj.remove("id");
    let id = match &id_value {
        None | Some(Value::Null) => None,
        Some(v) => match read_id(v) {
            Some(id) => Some(id),
            None => return Err(invalid(None, "`id` must be a string or an integer")),
        },
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(id, "`jsonrpc` must be \"2.0\""));
    }
    let params = obj.remove("params");
    if let Some(p) = &params
        && !(p.is_object() || p.is_array())
    {
        return Err(invalid(id, "`params` must be an object"));
    }
    match obj.remove("method") {
        Some(Value::String(method)) => match (id_value, id) {
            (None, _) => Ok(Message::Notification(Notification {
                jsonrpc: "2.0".into(),
                method,
                params,
            })),
            (Some(_), Some(id)) => Ok(Message::Request(Request {
                jsonrpc: "2.0".into(),
                id,
                method,
                params,
            })),
            (Some(_), None) => Err(invalid(None, "`id` must not be null")),
        },
        Some(_) => Err(invalid(id, "`method` must be a string")),
        None => {
            let result = obj.remove("result");
            let error = obj.remove("error");
            match (result, error) {
                (Some(result), None) => Ok(Message::Response(Response {
                    jsonrpc: "2.0".into(),
                    id,
                    result: Some(result),
                    error: None,
                })),
                (None, Some(error)) => match serde_json::from_value::<ErrorObject>(error) {
                    Ok(error) => Ok(Message::Response(Response::error(id, error))),
                    Err(_) => Err(invalid(id, "`error` is not a JSON-RPC error object")),
                },
                _ => Err(invalid(
                    id,
                    "not a request, notification or response (missing `method`)",
                )),
            }
        }
    }
}

fn read_id(v: &Value) -> Option<RequestId> {
    match v {
        Value::String(s) => Some(RequestId::String(s.clone())),
        Value::Number(n) => n.as_i64().map(RequestId::Number),
        _ => None,
    }
}

fn invalid(id: Option<RequestId>, why: &str) -> Box<Response> {
    Box::new(Response::error(
        id,
        ErrorObject::new(ErrorCode::InvalidRequest, format!("Invalid request: {why}")),
    ))
}

/// Encodes a response as one line of JSON (no embedded newline, no trailing newline).
pub(crate) fn encode_response(response: &Response) -> Vec<u8> {
    match serde_json::to_vec(response) {
        Ok(bytes) => bytes,
        // Serializing a `Value` tree cannot fail; keep a valid reply anyway.
        Err(e) => format!(
            r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":-32603,"message":"cannot encode response: {}"}}}}"#,
            e.to_string().replace(['"', '\\'], "'")
        )
        .into_bytes(),
    }
}

/// The HTTP status a 2026-07-28 request gets for a JSON-RPC error code.
pub(crate) fn http_status_for_error(code: i64) -> u16 {
    match code {
        -32700 | -32600 | -32602 | -32020 | -32021 | -32022 => 400,
        -32601 => 404,
        _ => 200,
    }
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

    fn err_code(bytes: &[u8]) -> (i64, Option<RequestId>) {
        let r = parse_message(bytes).unwrap_err();
        (r.error.unwrap().code, r.id)
    }

    #[test]
    fn parses_request_notification_and_response() {
        let m = parse_message(br#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#).unwrap();
        assert!(matches!(
            m,
            Message::Request(Request {
                id: RequestId::Number(7),
                ..
            })
        ));
        let m = parse_message(br#"{"jsonrpc":"2.0","id":"a","method":"x","params":{}}"#).unwrap();
        assert!(matches!(
            m,
            Message::Request(Request {
                id: RequestId::String(_),
                ..
            })
        ));
        let m =
            parse_message(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(m, Message::Notification(_)));
        let m = parse_message(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).unwrap();
        assert!(matches!(m, Message::Response(_)));
        let m =
            parse_message(br#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}"#).unwrap();
        assert!(matches!(m, Message::Response(_)));
    }

    #[test]
    fn malformed_json_and_invalid_utf8_are_parse_errors() {
        assert_eq!(err_code(b"{not json").0, -32700);
        assert_eq!(
            err_code(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\"}").0,
            -32700
        );
        let bomb = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(err_code(bomb.as_bytes()).0, -32700);
    }

    #[test]
    fn non_jsonrpc_is_invalid_request_with_id_when_readable() {
        assert_eq!(err_code(b"42"), (-32600, None));
        assert_eq!(err_code(b"[]"), (-32600, None));
        assert_eq!(
            err_code(br#"{"id":3,"method":"ping"}"#),
            (-32600, Some(RequestId::Number(3)))
        );
        assert_eq!(
            err_code(br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#),
            (-32600, None)
        );
        assert_eq!(
            err_code(br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#),
            (-32600, None)
        );
        assert_eq!(
            err_code(br#"{"jsonrpc":"2.0","id":1,"method":5}"#).0,
            -32600
        );
        assert_eq!(err_code(br#"{"jsonrpc":"2.0","id":1}"#).0, -32600);
        assert_eq!(
            err_code(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#).0,
            -32600
        );
    }

    #[test]
    fn encoded_responses_are_single_lines() {
        let r = Response::success(RequestId::Number(1), serde_json::json!({"t": "a\nb"}));
        let bytes = encode_response(&r);
        assert!(!bytes.contains(&b'\n'));
        let back: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back["result"]["t"], "a\nb");
    }

    #[test]
    fn status_map_follows_the_2026_revision() {
        assert_eq!(http_status_for_error(-32700), 400);
        assert_eq!(http_status_for_error(-32022), 400);
        assert_eq!(http_status_for_error(-32601), 404);
        assert_eq!(http_status_for_error(-32603), 200);
    }
}
