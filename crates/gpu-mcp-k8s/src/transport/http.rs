//! HTTP node transport: POST to the agent's Streamable HTTP endpoint over pooled keep-alive connections.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use gpu_mcp_protocol::envelope::envelope_version;
use gpu_mcp_protocol::http::{PROTOCOL_VERSION_HEADER, mirrored_headers};
use gpu_mcp_protocol::{Request, RequestId, Response, encode};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::{DEFAULT_PROTOCOL_VERSION, NodeTransport, check_response, is_response_to};
use crate::endpoint::AgentEndpoint;
use crate::error::{Error, NodeError, Result, truncate};

/// Port of the agent's HTTP endpoint when the pod does not name one.
pub const DEFAULT_AGENT_PORT: u16 = 8080;

/// Settings of [`HttpTransport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTransportConfig {
    /// Agent port when the pod has no container port named `mcp` or `http`.
    pub port: u16,
    /// Request path of the MCP endpoint.
    pub path: String,
    /// `MCP-Protocol-Version` header sent when the request carries no per-request version.
    pub protocol_version: String,
    /// Bearer token sent as `Authorization: Bearer ...`.
    pub bearer_token: Option<String>,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: usize,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per agent.
    pub pool_max_idle_per_host: usize,
}

impl Default for HttpTransportConfig {
    fn default() -> Self {
        HttpTransportConfig {
            port: DEFAULT_AGENT_PORT,
            path: "/mcp".to_owned(),
            protocol_version: DEFAULT_PROTOCOL_VERSION.to_owned(),
            bearer_token: None,
            max_response_bytes: 4 << 20,
            pool_idle_timeout: Duration::from_secs(30),
            pool_max_idle_per_host: 4,
        }
    }
}

/// Sends requests to `http://<podIP>:<port>/mcp` (or a static URL) with one shared pooled client.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: Client<HttpConnector, Full<Bytes>>,
    config: HttpTransportConfig,
    authorization: Option<HeaderValue>,
    protocol_version: HeaderValue,
}

impl HttpTransport {
    /// Build a transport; fails when the token or protocol version is not a valid header value.
    pub fn new(config: HttpTransportConfig) -> Result<HttpTransport> {
        let authorization = config
            .bearer_token
            .as_deref()
            .map(|token| {
                let mut value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                    Error::InvalidHttpConfig("the bearer token is not a valid header value".into())
                })?;
                value.set_sensitive(true);
                Ok::<_, Error>(value)
            })
            .transpose()?;
        let protocol_version = HeaderValue::try_from(config.protocol_version.as_str())
            .map_err(|_| Error::InvalidHttpConfig("invalid protocol version".into()))?;
        if !config.path.starts_with('/') {
            return Err(Error::InvalidHttpConfig(format!(
                "path {:?} must start with '/'",
                config.path
            )));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .build(connector);
        Ok(HttpTransport {
            client,
            config,
            authorization,
            protocol_version,
        })
    }

    /// The URL a request to `target` goes to.
    pub fn url_for(&self, target: &AgentEndpoint) -> Result<String, NodeError> {
        if let Some(url) = &target.url {
            return Ok(url.clone());
        }
        let ip = target.pod_ip.ok_or_else(|| NodeError::NoPodIp {
            node: target.node_name.clone(),
            pod: target.pod_name.clone(),
        })?;
        let addr = std::net::SocketAddr::new(ip, target.port.unwrap_or(self.config.port));
        Ok(format!("http://{addr}{}", self.config.path))
    }

    fn build_request(
        &self,
        url: &str,
        request: &Request,
    ) -> Result<http::Request<Full<Bytes>>, NodeError> {
        let mut builder = http::Request::post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream");
        // A request in the per-request (2026-07-28) form carries its version in `_meta`;
        // the headers must then mirror the body.
        let meta_version =
            envelope_version(request.params.as_ref()).and_then(|v| HeaderValue::try_from(v).ok());
        if let Some(version) = meta_version {
            builder = builder.header(PROTOCOL_VERSION_HEADER, version);
            for (name, value) in mirrored_headers(request) {
                if let Ok(value) = HeaderValue::try_from(value) {
                    builder = builder.header(name, value);
                }
            }
        } else {
            builder = builder.header(PROTOCOL_VERSION_HEADER, self.protocol_version.clone());
        }
        if let Some(auth) = &self.authorization {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        builder
            .body(Full::new(Bytes::from(encode(request))))
            .map_err(|e| NodeError::Connect {
                url: url.to_owned(),
                message: format!("invalid request URL: {e}"),
            })
    }

    async fn exchange(&self, url: &str, request: &Request) -> Result<Response, NodeError> {
        let id = &request.id;
        let http_request = self.build_request(url, request)?;
        let response = self.client.request(http_request).await.map_err(|e| {
            // A refused, reset or closed connection is the agent being unreachable; only an
            // answer that is not HTTP is a protocol error.
            if e.is_connect() || !is_parse_error(&e) {
                NodeError::Connect {
                    url: url.to_owned(),
                    message: error_chain(&e),
                }
            } else {
                NodeError::Protocol {
                    message: format!("HTTP exchange with {url} failed: {}", error_chain(&e)),
                }
            }
        })?;
        let limit = self.config.max_response_bytes;
        let status = response.status();
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(NodeError::ResponseTooLarge { limit });
        }
        let is_sse = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().starts_with("text/event-stream"));
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    NodeError::ResponseTooLarge { limit }
                } else if is_parse_error(&*e) {
                    NodeError::Protocol {
                        message: format!("reading the response body failed: {}", error_chain(&*e)),
                    }
                } else {
                    NodeError::Connect {
                        url: url.to_owned(),
                        message: format!(
                            "the connection broke while reading the answer: {}",
                            error_chain(&*e)
                        ),
                    }
                }
            })?
            .to_bytes();

        let parsed = response_from_body(&body, is_sse, id);
        if status.is_success() {
            return parsed;
        }
        // A JSON-RPC error sent with a 4xx status (the per-request revision's status map) is
        // still the agent's answer; anything else is an HTTP failure.
        match parsed {
            Ok(response) => Ok(response),
            Err(_) => Err(NodeError::HttpStatus {
                status: status.as_u16(),
                body: truncate(String::from_utf8_lossy(&body).trim()),
            }),
        }
    }
}

impl NodeTransport for HttpTransport {
    fn send<'a>(
        &'a self,
        target: &'a AgentEndpoint,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<Response, NodeError>> {
        Box::pin(async move {
            let url = self.url_for(target)?;
            self.exchange(&url, request).await
        })
    }
}

/// Reads an agent's HTTP response body (`event_stream`: a `text/event-stream` one, else JSON)
/// as the JSON-RPC response to the request with `id`: what [`HttpTransport`] makes of the bytes
/// an agent sent, whatever they are.
pub fn response_from_body(
    body: &[u8],
    event_stream: bool,
    id: &RequestId,
) -> Result<Response, NodeError> {
    if event_stream {
        return response_from_sse(body, id);
    }
    serde_json::from_slice::<Value>(body)
        .map_err(|e| NodeError::Protocol {
            message: format!(
                "response is not JSON ({e}): {}",
                truncate(&String::from_utf8_lossy(body))
            ),
        })
        .and_then(|v| check_response(v, id))
}

/// Find the JSON-RPC response with `id` among the events of an SSE body.
fn response_from_sse(body: &[u8], id: &RequestId) -> Result<Response, NodeError> {
    let text = String::from_utf8_lossy(body);
    let mut data = String::new();
    let mut events = 0usize;
    let mut check = |data: &mut String| -> Option<Response> {
        if data.is_empty() {
            return None;
        }
        events += 1;
        let found = serde_json::from_str::<Value>(data)
            .ok()
            .filter(|m| is_response_to(m, id))
            .and_then(|m| check_response(m, id).ok());
        data.clear();
        found
    };
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            if let Some(found) = check(&mut data) {
                return Ok(found);
            }
        } else if let Some(value) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    if let Some(found) = check(&mut data) {
        return Ok(found);
    }
    Err(NodeError::Protocol {
        message: format!(
            "event stream ended after {events} events without the response to request {id}"
        ),
    })
}

/// Format an error with its sources, `outer: inner: innermost`.
/// Whether a client error says the agent's bytes were not valid HTTP (rather than that the
/// connection failed).
fn is_parse_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            return h.is_parse() || h.is_parse_status() || h.is_parse_too_large();
        }
        source = e.source();
    }
    false
}

pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_extraction() {
        let id = RequestId::Number(3);
        let body = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
id: 2\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\r\ndata: \"id\":3,\"result\":{\"ok\":true}}\r\n\r\n";
        let v = response_from_sse(body, &id).unwrap();
        assert_eq!(v.result.unwrap()["ok"], true);
        let err = response_from_sse(b"data: {}\n\n", &id).unwrap_err();
        assert!(err.to_string().contains("1 events"), "{err}");
        // Last event without a trailing blank line still counts.
        let v =
            response_from_sse(b"data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":1}", &id).unwrap();
        assert_eq!(v.result.unwrap(), 1);
    }

    #[test]
    fn urls() {
        let t = HttpTransport::new(HttpTransportConfig::default()).unwrap();
        let mut ep = AgentEndpoint::from_url("n", "http://127.0.0.1:9/mcp");
        assert_eq!(t.url_for(&ep).unwrap(), "http://127.0.0.1:9/mcp");
        ep.url = None;
        ep.pod_name = "p".into();
        assert!(matches!(t.url_for(&ep), Err(NodeError::NoPodIp { .. })));
        ep.pod_ip = Some("127.0.1.5".parse().unwrap());
        assert_eq!(t.url_for(&ep).unwrap(), "http://127.0.1.5:8080/mcp");
        ep.port = Some(9000);
        ep.pod_ip = Some("::1".parse().unwrap());
        assert_eq!(t.url_for(&ep).unwrap(), "http://[::1]:9000/mcp");
    }

    #[test]
    fn rejects_bad_config() {
        let bad = HttpTransportConfig {
            bearer_token: Some("a\nb".into()),
            ..HttpTransportConfig::default()
        };
        assert!(HttpTransport::new(bad).is_err());
    }
}
