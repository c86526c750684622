//! Routing and the MCP endpoint's request handling.

use bytes::Bytes;
use gpu_mcp_protocol::{ErrorCode, ErrorObject, Message, ProtocolVersion, RequestId, Response};
use gpu_mcp_service::{HttpHeaders, RequestContext, Session, TransportKind};
use http::header::{
    ACCEPT, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ALLOW,
    AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, VARY,
    WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::security::{self, ReplyFormat};
use super::sessions::SessionTable;
use super::{HttpConfig, SessionMode};
use crate::codec::{encode_response, error_response, http_status_for_error, parse_message};
use crate::dispatch::Dispatcher;
use crate::health::Health;
use crate::metrics::{Metrics, OPENMETRICS_CONTENT_TYPE};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

type HttpResponse = http::Response<Full<Bytes>>;

/// State shared by every connection of one server.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: HttpConfig,
    dispatcher: Dispatcher,
    sessions: SessionTable,
    health: Health,
    metrics: Metrics,
    version_body: Bytes,
}

impl Shared {
    pub(crate) fn new(
        config: HttpConfig,
        dispatcher: Dispatcher,
        sessions: SessionTable,
        health: Health,
        metrics: Metrics,
    ) -> Self {
        let info = dispatcher.server().info();
        let mut version = json!({"name": info.name, "version": info.version});
        if let Some(sha) = &config.git_sha {
            version["gitSha"] = json!(sha);
        }
        Self {
            version_body: Bytes::from(version.to_string()),
            config,
            dispatcher,
            sessions,
            health,
            metrics,
        }
    }
}

/// Answers one HTTP request; never fails (every problem is an HTTP status).
pub(crate) async fn handle(shared: &Shared, req: http::Request<Incoming>) -> HttpResponse {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = route(shared, req).await;
    let status = response.status().as_u16();
    shared.metrics.http_response(status);
    tracing::debug!(%method, %path, status, "http request");
    response
}

async fn route(shared: &Shared, req: http::Request<Incoming>) -> HttpResponse {
    let path = req.uri().path();
    if path == shared.config.mcp_path {
        return mcp(shared, req).await;
    }
    let method = req.method();
    let readable = method == Method::GET || method == Method::HEAD;
    match path {
        _ if !readable && matches!(path, "/healthz" | "/readyz" | "/version" | "/metrics") => {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        }
        "/healthz" => plain(StatusCode::OK, "ok\n"),
        "/readyz" if shared.health.is_ready() => plain(StatusCode::OK, "ready\n"),
        "/readyz" => plain(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/version" => with_type(
            StatusCode::OK,
            "application/json",
            shared.version_body.clone(),
        ),
        "/metrics" => with_type(
            StatusCode::OK,
            OPENMETRICS_CONTENT_TYPE,
            Bytes::from(shared.metrics.encode()),
        ),
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn mcp(shared: &Shared, req: http::Request<Incoming>) -> HttpResponse {
    let config = &shared.config;
    let headers = req.headers();
    if !security::host_allowed(headers.get(HOST), &config.allowed_hosts) {
        return rpc_error(
            StatusCode::FORBIDDEN,
            None,
            ErrorCode::InvalidRequest,
            "Forbidden: Host not allowed",
        );
    }
    if !security::origin_allowed(headers.get(ORIGIN), &config.allowed_origins) {
        return rpc_error(
            StatusCode::FORBIDDEN,
            None,
            ErrorCode::InvalidRequest,
            "Forbidden: Origin not allowed",
        );
    }
    // Browser clients on an allowed origin: answer preflights and label every reply for CORS.
    let Some(origin) = headers.get(ORIGIN).cloned() else {
        return authorized(shared, req).await;
    };
    if req.method() == Method::OPTIONS {
        let mut r = with_type(
            StatusCode::NO_CONTENT,
            "text/plain; charset=utf-8",
            Bytes::new(),
        );
        let h = r.headers_mut();
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, DELETE"),
        );
        h.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_REQUEST_HEADERS),
        );
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        cors(&mut r, origin);
        return r;
    }
    let mut r = authorized(shared, req).await;
    cors(&mut r, origin);
    r
}

const CORS_REQUEST_HEADERS: &str = "authorization, content-type, accept, last-event-id, mcp-session-id, mcp-protocol-version, mcp-method, mcp-name";

fn cors(response: &mut HttpResponse, origin: HeaderValue) {
    let h = response.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("mcp-session-id, www-authenticate"),
    );
    h.append(VARY, HeaderValue::from_static("origin"));
}

/// The MCP endpoint once `Host` and `Origin` passed: the bearer token, then the method.
async fn authorized(shared: &Shared, req: http::Request<Incoming>) -> HttpResponse {
    let config = &shared.config;
    let headers = req.headers();
    if let Some(token) = &config.bearer_token
        && !security::bearer_ok(headers.get(AUTHORIZATION), token)
    {
        let mut r = rpc_error(
            StatusCode::UNAUTHORIZED,
            None,
            ErrorCode::InvalidRequest,
            "Unauthorized: send `Authorization: Bearer <token>`",
        );
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="mcp""#),
        );
        return r;
    }
    match *req.method() {
        Method::POST => post(shared, req).await,
        Method::DELETE => delete(shared, req.headers()),
        _ => {
            let mut r = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "this endpoint takes POST (one JSON-RPC message) and DELETE (end a session); it offers no server-initiated stream\n",
            );
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST, DELETE"));
            r
        }
    }
}

fn delete(shared: &Shared, headers: &HeaderMap) -> HttpResponse {
    if shared.config.sessions == SessionMode::Disabled {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "sessions are disabled\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            None,
            ErrorCode::InvalidRequest,
            "Bad Request: Mcp-Session-Id header required",
        );
    };
    if let Some(session) = shared.sessions.remove(id) {
        session.cancel_in_flight();
        with_type(StatusCode::OK, "text/plain; charset=utf-8", Bytes::new())
    } else {
        rpc_error(
            StatusCode::NOT_FOUND,
            None,
            ErrorCode::InvalidRequest,
            "Session not found",
        )
    }
}

async fn post(shared: &Shared, req: http::Request<Incoming>) -> HttpResponse {
    let config = &shared.config;
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    if !security::is_json_content_type(headers.get(CONTENT_TYPE)) {
        return rpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            ErrorCode::InvalidRequest,
            "Unsupported Media Type: Content-Type must be application/json",
        );
    }
    let Some(format) = security::negotiate(headers.get(ACCEPT)) else {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            None,
            ErrorCode::InvalidRequest,
            "Not Acceptable: Accept must allow application/json and text/event-stream",
        );
    };
    let too_large = || {
        rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            ErrorCode::InvalidRequest,
            format!(
                "Payload Too Large: the body limit is {} bytes",
                config.max_body_bytes
            ),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > config.max_body_bytes as u64) {
        return too_large();
    }
    let collected = tokio::time::timeout(
        config.request_timeout,
        Limited::new(body, config.max_body_bytes).collect(),
    )
    .await;
    let bytes = match collected {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "reading a request body failed");
            return rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                ErrorCode::InvalidRequest,
                "Bad Request: the body could not be read",
            );
        }
        Err(_) => {
            return rpc_error(
                StatusCode::REQUEST_TIMEOUT,
                None,
                ErrorCode::InvalidRequest,
                "Request Timeout: the body was not received in time",
            );
        }
    };
    let message = match parse_message(&bytes) {
        Ok(m) => m,
        Err(reply) => return json_reply(StatusCode::BAD_REQUEST, &reply),
    };
    let request_id = match &message {
        Message::Request(r) => Some(r.id.clone()),
        _ => None,
    };

    let header_version = match headers.get(VERSION_HEADER) {
        None => None,
        Some(v) => match v.to_str().ok().and_then(ProtocolVersion::parse) {
            Some(v) => Some(v),
            None => return unsupported_version_header(request_id, v),
        },
    };
    let modern = header_version == Some(ProtocolVersion::V2026_07_28)
        || envelope_version(&message).is_some();

    // Session resolution.
    let is_initialize = matches!(&message, Message::Request(r) if r.method == "initialize");
    let session_header = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
    let (session, issue_id): (Session, bool) = match (config.sessions, session_header) {
        (SessionMode::Disabled, _) => (shared.dispatcher.server().session(), false),
        (_, Some(id)) if !modern => match shared.sessions.get(id) {
            Some(s) => (s, false),
            None if is_initialize => (shared.dispatcher.server().session(), true),
            None => {
                return rpc_error(
                    StatusCode::NOT_FOUND,
                    request_id,
                    ErrorCode::InvalidRequest,
                    "Session not found: it ended or expired; send initialize again",
                );
            }
        },
        (_, _) if is_initialize => (shared.dispatcher.server().session(), true),
        (SessionMode::Required, None) if !modern && !is_discover(&message) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                request_id,
                ErrorCode::InvalidRequest,
                "Bad Request: Mcp-Session-Id header required (send initialize first)",
            );
        }
        (_, _) => (shared.dispatcher.server().session(), false),
    };

    let ctx = RequestContext {
        transport: TransportKind::Http,
        http: Some(HttpHeaders {
            protocol_version: headers
                .get(VERSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            method: headers
                .get(METHOD_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            name: headers
                .get(NAME_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }),
    };
    let Some(reply) = shared.dispatcher.dispatch(&session, message, ctx).await else {
        return with_type(
            StatusCode::ACCEPTED,
            "text/plain; charset=utf-8",
            Bytes::new(),
        );
    };

    let mut status = StatusCode::OK;
    if modern && let Some(err) = &reply.error {
        status = StatusCode::from_u16(http_status_for_error(err.code)).unwrap_or(StatusCode::OK);
    }
    let session_id = if issue_id && !reply.is_error() {
        shared.sessions.insert(session)
    } else {
        None
    };
    let mut response = match format {
        ReplyFormat::Json => json_reply(status, &reply),
        ReplyFormat::EventStream => {
            let mut event = Vec::with_capacity(64);
            event.extend_from_slice(b"event: message\ndata: ");
            event.extend_from_slice(&encode_response(&reply));
            event.extend_from_slice(b"\n\n");
            let mut r = with_type(status, "text/event-stream", Bytes::from(event));
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
    };
    if let Some(id) = session_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(SESSION_HEADER, id);
    }
    response
}

fn is_discover(message: &Message) -> bool {
    matches!(message, Message::Request(r) if r.method == "server/discover")
}

/// The 2026-07-28 envelope's protocol version in `params._meta`, if present.
fn envelope_version(message: &Message) -> Option<&str> {
    let params = match message {
        Message::Request(r) => r.params.as_ref(),
        Message::Notification(n) => n.params.as_ref(),
        Message::Response(_) => None,
    }?;
    params.get("_meta")?.get(META_VERSION)?.as_str()
}

fn unsupported_version_header(id: Option<RequestId>, value: &HeaderValue) -> HttpResponse {
    let requested = String::from_utf8_lossy(value.as_bytes()).into_owned();
    let supported: Vec<&str> = ProtocolVersion::ALL.iter().map(|v| v.as_str()).collect();
    let error = ErrorObject::new(
        ErrorCode::InvalidRequest,
        format!(
            "Bad Request: unsupported MCP-Protocol-Version `{requested}` (supported: {})",
            supported.join(", ")
        ),
    )
    .with_data(json!({"supported": supported, "requested": Value::String(requested)}));
    json_reply(StatusCode::BAD_REQUEST, &Response::error(id, error))
}

fn rpc_error(
    status: StatusCode,
    id: Option<RequestId>,
    code: ErrorCode,
    message: impl Into<String>,
) -> HttpResponse {
    json_reply(status, &error_response(id, code, message))
}

fn json_reply(status: StatusCode, response: &Response) -> HttpResponse {
    with_type(
        status,
        "application/json",
        Bytes::from(encode_response(response)),
    )
}

fn plain(status: StatusCode, text: &'static str) -> HttpResponse {
    with_type(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(text.as_bytes()),
    )
}

fn with_type(status: StatusCode, content_type: &'static str, body: Bytes) -> HttpResponse {
    let mut r = http::Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
