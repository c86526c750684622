//! Routing and the MCP endpoint's request handling.

use bytes::Bytes;
use gpu_mcp_protocol::http::{
    METHOD_HEADER, NAME_HEADER, PROTOCOL_VERSION_HEADER, SESSION_ID_HEADER,
};
use gpu_mcp_protocol::{ErrorCode, RequestId, Response};
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ALLOW, AUTHORIZATION, CACHE_CONTROL,
    CONTENT_TYPE, HOST, ORIGIN, RETRY_AFTER, VARY, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use hyper::body::Body as _;
use hyper::body::Incoming;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::Conn;
use super::body::{BudgetedBody, ReplyBody};
use super::listen;
use super::names;
use super::oauth::Verifier;
use super::post::post;
use super::rate::{self, RateLimiter};
use super::security;
use super::sessions::SessionTable;
use super::{HttpConfig, SessionMode};
use crate::budget::{Budget, Held};
use crate::codec::{encode_response, error_response};
use crate::dispatch::Dispatcher;
use crate::health::Health;
use crate::metrics::{Metrics, OPENMETRICS_CONTENT_TYPE};

pub(crate) type HttpResponse = http::Response<ReplyBody>;

/// State shared by every connection of one server.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: HttpConfig,
    pub(super) dispatcher: Dispatcher,
    pub(super) sessions: SessionTable,
    pub(super) health: Health,
    pub(super) budget: Budget,
    /// Cancelled when shutdown starts: the standalone event streams (`GET`) end then, since
    /// they carry only notifications and would otherwise hold their connections open.
    pub(super) streams_closing: CancellationToken,
    oauth: Option<Verifier>,
    limiter: RateLimiter,
    metrics: Metrics,
    version_body: Bytes,
    cors_request_headers: HeaderValue,
    cors_expose_headers: HeaderValue,
}

impl Shared {
    pub(crate) fn new(
        config: HttpConfig,
        oauth: Option<Verifier>,
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
        let request_headers = [
            "authorization",
            "content-type",
            "accept",
            "last-event-id",
            SESSION_ID_HEADER,
            PROTOCOL_VERSION_HEADER,
            METHOD_HEADER,
            NAME_HEADER,
        ]
        .join(", ");
        let expose_headers = format!("{SESSION_ID_HEADER}, www-authenticate");
        Self {
            budget: Budget::new(config.max_buffered_bytes),
            streams_closing: CancellationToken::new(),
            limiter: RateLimiter::new(config.rate_limit),
            oauth,
            version_body: Bytes::from(version.to_string()),
            cors_request_headers: HeaderValue::from_str(&request_headers)
                .unwrap_or(HeaderValue::from_static("*")),
            cors_expose_headers: HeaderValue::from_str(&expose_headers)
                .unwrap_or(HeaderValue::from_static("*")),
            config,
            dispatcher,
            sessions,
            health,
            metrics,
        }
    }

    /// Labels a response for caches and content sniffing, and takes its bytes from the budget
    /// until it is written; over budget, a short 503 goes out instead. `guard` lives as long as
    /// the body. An event stream takes each event's bytes as it is produced
    /// (see `post::stream`).
    pub(super) fn budgeted<G>(
        &self,
        response: HttpResponse,
        guard: G,
    ) -> http::Response<BudgetedBody<G>> {
        let size = usize::try_from(response.body().size_hint().lower()).unwrap_or(usize::MAX);
        let (mut response, held) = match self.budget.try_take(size) {
            Some(held) => (response, held),
            None => {
                tracing::warn!(size, "response refused: the buffered-bytes budget is spent");
                (
                    busy("Service Unavailable: the server is busy; retry later"),
                    Held::none(),
                )
            }
        };
        let h = response.headers_mut();
        h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if !h.contains_key(CACHE_CONTROL) {
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        response.map(|body| BudgetedBody::new(body, held, guard))
    }
}

/// 503 with `Retry-After: 1`: a limit was reached, the same request may succeed later.
pub(super) fn busy(message: &'static str) -> HttpResponse {
    let mut r = rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        ErrorCode::InvalidRequest,
        message,
    );
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Answers one HTTP request; never fails (every problem is an HTTP status).
///
/// Everything before the token check is decided synchronously ([`admit`]), so the only futures
/// this one nests are the token check's and the method's: each nesting level of an `async fn`
/// would copy the whole request future once more per request.
pub(crate) async fn handle(
    shared: &Shared,
    conn: Conn,
    req: http::Request<Incoming>,
) -> HttpResponse {
    // Copied only when the event is recorded: two allocations a request otherwise.
    let logged = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| (req.method().clone(), req.uri().path().to_owned()));
    let response = match admit(shared, conn, &req) {
        Admitted::Answered(response) => response,
        Admitted::Mcp { origin } => {
            let refused = match over_rate_limit(shared, conn, req.method()) {
                Some(refused) => Err(refused),
                None => authenticate(shared, req.headers()).await,
            };
            let mut r = match refused {
                Err(refused) => refused,
                Ok(()) => match *req.method() {
                    Method::POST => post(shared, conn, req).await,
                    Method::DELETE => delete(shared, req.headers()),
                    Method::GET => listen::get(shared, req.headers()),
                    _ => listen::not_allowed(shared),
                },
            };
            if let Some(origin) = origin {
                cors(shared, &mut r, origin);
            }
            r
        }
    };
    let status = response.status().as_u16();
    shared.metrics.http_response(status);
    if let Some((method, path)) = logged {
        tracing::debug!(%method, %path, status, "http request");
    }
    response
}

/// What [`admit`] decided.
enum Admitted {
    /// The request is answered: another path, a refusal, a CORS preflight.
    Answered(HttpResponse),
    /// An MCP request that passed `Host` and `Origin`; the rate limit and the token are next.
    /// `origin`: a browser's allowed origin, which the reply is labelled for (CORS).
    Mcp { origin: Option<HeaderValue> },
}

/// Routing, then for the MCP endpoint `Host` and `Origin` (answering a browser's preflight).
fn admit(shared: &Shared, conn: Conn, req: &http::Request<Incoming>) -> Admitted {
    let path = req.uri().path();
    if path != shared.config.mcp_path {
        return Admitted::Answered(other_path(shared, req.method(), path));
    }
    if conn.probes_only {
        return Admitted::Answered(busy(
            "Service Unavailable: every connection slot is in use; retry later",
        ));
    }
    let config = &shared.config;
    let headers = req.headers();
    // HTTP/2 carries the host in `:authority` rather than in a `Host` header.
    let host = match headers.get(HOST) {
        Some(value) => Some(value.to_str().unwrap_or("\u{fffd}")),
        None => req.uri().authority().map(http::uri::Authority::as_str),
    };
    if !security::host_allowed(
        host,
        &config.allowed_hosts,
        config.listen.ip().is_loopback(),
    ) {
        return Admitted::Answered(rpc_error(
            StatusCode::FORBIDDEN,
            None,
            ErrorCode::InvalidRequest,
            "Forbidden: Host not allowed",
        ));
    }
    if !security::origin_allowed(headers.get(ORIGIN), &config.allowed_origins) {
        return Admitted::Answered(rpc_error(
            StatusCode::FORBIDDEN,
            None,
            ErrorCode::InvalidRequest,
            "Forbidden: Origin not allowed",
        ));
    }
    // Browser clients on an allowed origin: answer preflights and label every reply for CORS.
    let origin = headers.get(ORIGIN).cloned();
    if let Some(origin) = &origin
        && req.method() == Method::OPTIONS
    {
        let mut r = with_type(
            StatusCode::NO_CONTENT,
            "text/plain; charset=utf-8",
            Bytes::new(),
        );
        let h = r.headers_mut();
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(listen::allowed_methods(shared)),
        );
        h.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            shared.cors_request_headers.clone(),
        );
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        cors(shared, &mut r, origin.clone());
        return Admitted::Answered(r);
    }
    Admitted::Mcp { origin }
}

/// The 429 for a POST over the client's rate limit, which comes before the token, so guessing
/// tokens is limited too.
fn over_rate_limit(shared: &Shared, conn: Conn, method: &Method) -> Option<HttpResponse> {
    if method != Method::POST {
        return None;
    }
    let wait = shared.limiter.admit(conn.peer.ip()).err()?;
    shared.metrics.rate_limited();
    tracing::debug!(peer = %conn.peer, ?wait, "request refused: over the client's rate limit");
    let mut r = rpc_error(
        StatusCode::TOO_MANY_REQUESTS,
        None,
        ErrorCode::InvalidRequest,
        "Too Many Requests: this client is over its request rate; retry after the time in Retry-After",
    );
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(rate::retry_after_secs(wait)));
    Some(r)
}

/// Every path but the MCP endpoint: OAuth metadata, probes, version, metrics.
fn other_path(shared: &Shared, method: &Method, path: &str) -> HttpResponse {
    let readable = method == Method::GET || method == Method::HEAD;
    let metadata = shared
        .oauth
        .as_ref()
        .filter(|_| Verifier::is_metadata_path(path))
        .and_then(|oauth| oauth.metadata(path));
    let is_metadata = metadata.is_some();
    if let Some(metadata) = metadata
        && readable
    {
        return metadata;
    }
    match path {
        _ if !readable
            && (is_metadata
                || matches!(path, "/healthz" | "/readyz" | "/version" | "/metrics")) =>
        {
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

fn cors(shared: &Shared, response: &mut HttpResponse, origin: HeaderValue) {
    let h = response.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        shared.cors_expose_headers.clone(),
    );
    h.append(VARY, HeaderValue::from_static("origin"));
}

/// The token rule: with neither a static token nor OAuth configured every request passes; the
/// static token passes when it matches; otherwise OAuth, when configured, judges the token.
async fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<(), HttpResponse> {
    let authorization = headers.get(AUTHORIZATION);
    let static_token = shared
        .config
        .bearer_token
        .as_deref()
        .map(|token| security::bearer_ok(authorization, token));
    match (&shared.oauth, static_token) {
        (_, Some(true)) | (None, None) => Ok(()),
        (Some(oauth), _) => match oauth.check(authorization).await {
            Ok(()) => Ok(()),
            Err(denial) => {
                tracing::debug!(?denial, "request refused: access token");
                Err(oauth.refusal(denial))
            }
        },
        (None, Some(false)) => {
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
            Err(r)
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
    let id = match session_id(headers) {
        Ok(Some(id)) => id,
        Ok(None) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                ErrorCode::InvalidRequest,
                "Bad Request: Mcp-Session-Id header required",
            );
        }
        Err(bad) => return bad.reply(),
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

/// The `Mcp-Session-Id` header: `None` when absent, 400 when it is not visible ASCII (the only
/// characters an id this server issues contains).
pub(super) fn session_id(headers: &HeaderMap) -> Result<Option<&str>, BadSessionId> {
    let Some(value) = headers.get(&names::SESSION_ID) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(id)),
        _ => Err(BadSessionId),
    }
}

/// An `Mcp-Session-Id` that no session of this server can have.
#[derive(Debug, Clone, Copy)]
pub(super) struct BadSessionId;

impl BadSessionId {
    /// The 400 it is answered with.
    pub(super) fn reply(self) -> HttpResponse {
        rpc_error(
            StatusCode::BAD_REQUEST,
            None,
            ErrorCode::InvalidRequest,
            "Bad Request: Mcp-Session-Id must be visible ASCII",
        )
    }
}

pub(super) fn rpc_error(
    status: StatusCode,
    id: Option<RequestId>,
    code: ErrorCode,
    message: impl Into<String>,
) -> HttpResponse {
    json_reply(status, &error_response(id, code, message))
}

pub(super) fn json_reply(status: StatusCode, response: &Response) -> HttpResponse {
    with_type(
        status,
        "application/json",
        Bytes::from(encode_response(response)),
    )
}

pub(super) fn plain(status: StatusCode, text: &'static str) -> HttpResponse {
    with_type(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(text.as_bytes()),
    )
}

pub(super) fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> HttpResponse {
    let mut r = http::Response::new(ReplyBody::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
