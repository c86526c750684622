//! Flag groups both binaries flatten into their CLI, each converting into a library config.
//!
//! The environment variable of each flag comes from [`crate::command`], so the groups name none.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use gpu_mcp_transport::{HttpConfig, OAuthConfig, RateLimit, SessionMode, StdioConfig, TlsConfig};

use crate::duration::parse_duration;
use crate::error::{Error, Result};
use crate::secret::{read_file, read_secret};

/// How MCP clients connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// Newline-delimited JSON-RPC on stdin and stdout (an MCP client starts the process).
    Stdio,
    /// Streamable HTTP on `/mcp`, with `/healthz`, `/readyz`, `/metrics` and `/version`.
    Http,
}

/// Where the HTTP listener binds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ListenFlags {
    /// Address of the HTTP listener; use 0.0.0.0:PORT in a pod [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Port of the HTTP listener (replaces the port of --listen).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
}

impl ListenFlags {
    /// `--listen` (or `default`), with its port replaced by `--port`.
    pub fn addr(&self, default: SocketAddr) -> SocketAddr {
        let mut addr = self.listen.unwrap_or(default);
        if let Some(port) = self.port {
            addr.set_port(port);
        }
        addr
    }
}

/// The HTTP listener: address, browser and host checks, TLS and the body limit.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "HTTP")]
pub struct HttpFlags {
    /// Where the listener binds.
    #[command(flatten)]
    pub listen: ListenFlags,
    /// Browser origins allowed on /mcp, comma-separated (`*` for any) [default: localhost only].
    #[arg(long, value_delimiter = ',', value_name = "ORIGINS")]
    pub allowed_origins: Vec<String>,
    /// Host names the Host header of /mcp requests may carry, comma-separated [default: any].
    #[arg(long, value_delimiter = ',', value_name = "HOSTS")]
    pub allowed_hosts: Vec<String>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Largest accepted HTTP request body.
    #[arg(long, default_value_t = gpu_mcp_transport::DEFAULT_MAX_BODY_BYTES, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Requests one client (peer address; an IPv6 /64) may POST to /mcp at once before it gets
    /// 429 (the size of its token bucket).
    #[arg(long, default_value_t = gpu_mcp_transport::DEFAULT_RATE_LIMIT_BURST, value_name = "REQUESTS")]
    pub rate_limit_burst: u32,
    /// Requests per second one client earns back after its burst; 0 turns the per-client rate
    /// limit off.
    #[arg(long, default_value_t = gpu_mcp_transport::DEFAULT_RATE_LIMIT_PER_SECOND, value_name = "PER_SECOND", value_parser = parse_rate)]
    pub rate_limit_rps: f64,
}

/// A rate: a finite number of requests per second, 0 or more.
fn parse_rate(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err(format!(
            "`{s}` is not a rate: expected requests per second, 0 or more (0 turns the limit off)"
        )),
    }
}

impl HttpFlags {
    /// Writes these flags into `http`, reading the TLS files; `default_listen` applies when
    /// `--listen` is not given.
    pub fn apply(&self, http: &mut HttpConfig, default_listen: SocketAddr) -> Result<()> {
        http.listen = self.listen.addr(default_listen);
        http.allowed_origins = non_empty(&self.allowed_origins);
        http.allowed_hosts = non_empty(&self.allowed_hosts);
        http.max_body_bytes = self.max_body_bytes;
        http.rate_limit = (self.rate_limit_rps > 0.0).then_some(RateLimit {
            burst: self.rate_limit_burst.max(1),
            per_second: self.rate_limit_rps,
        });
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            http.tls = Some(TlsConfig::Pem {
                cert_chain: read_file("TLS certificate", cert)?,
                private_key: read_file("TLS key", key)?,
            });
        }
        Ok(())
    }
}

fn non_empty(items: &[String]) -> Vec<String> {
    items
        .iter()
        .filter(|s| !s.trim().is_empty())
        .cloned()
        .collect()
}

/// The bearer token clients must send on /mcp: a static token, OAuth access tokens of an
/// identity provider, or either.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Authentication")]
pub struct AuthFlags {
    /// File holding the bearer token required on /mcp.
    #[arg(long, value_name = "FILE", conflicts_with = "auth_token")]
    pub auth_token_file: Option<PathBuf>,
    /// Bearer token required on /mcp (prefer --auth-token-file: arguments are visible to other
    /// users of the machine).
    #[arg(long, hide_env_values = true, value_name = "TOKEN")]
    pub auth_token: Option<String>,
    /// Accept OAuth 2.1 access tokens (JWTs) of this issuer on /mcp; its signing keys come from
    /// its metadata's jwks_uri (or --oauth-jwks-url). With --auth-token too, either is accepted.
    #[arg(long, value_name = "URL", requires = "oauth_audience")]
    pub oauth_issuer: Option<String>,
    /// This server's resource URL as clients reach it (https://gpu-mcp.example.com/mcp): a
    /// token's `aud` must contain it.
    #[arg(long, value_name = "URL", requires = "oauth_issuer")]
    pub oauth_audience: Option<String>,
    /// The issuer's JWKS, when it publishes no metadata [default: jwks_uri of the issuer's
    /// metadata].
    #[arg(long, value_name = "URL", requires = "oauth_issuer")]
    pub oauth_jwks_url: Option<String>,
    /// Scopes an access token must all carry, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "SCOPES",
        requires = "oauth_issuer"
    )]
    pub oauth_required_scopes: Vec<String>,
}

impl AuthFlags {
    /// The token, read from `--auth-token-file` or taken from `--auth-token`, trimmed; `None`
    /// when neither is given; an error when it is empty or unreadable.
    pub fn token(&self) -> Result<Option<String>> {
        match (&self.auth_token_file, &self.auth_token) {
            (Some(file), _) => read_secret("auth token file", file).map(Some),
            (None, Some(token)) if token.trim().is_empty() => Err(Error::EmptySecret {
                what: "--auth-token".to_owned(),
            }),
            (None, Some(token)) => Ok(Some(token.trim().to_owned())),
            (None, None) => Ok(None),
        }
    }

    /// The OAuth settings, when `--oauth-issuer` is given.
    pub fn oauth(&self) -> Option<OAuthConfig> {
        let (issuer, audience) = (self.oauth_issuer.as_ref()?, self.oauth_audience.as_ref()?);
        Some(OAuthConfig {
            jwks_url: self
                .oauth_jwks_url
                .as_ref()
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty()),
            required_scopes: non_empty(&self.oauth_required_scopes)
                .into_iter()
                .map(|s| s.trim().to_owned())
                .collect(),
            ..OAuthConfig::new(issuer.trim(), audience.trim())
        })
    }
}

/// `Mcp-Session-Id` handling over HTTP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Sessions {
    /// Issue an id on `initialize`; requests without one are served on their own.
    #[default]
    Optional,
    /// Issue an id on `initialize` and refuse other requests without one.
    Required,
    /// Never issue ids; every request is served on its own.
    Disabled,
}

impl From<Sessions> for SessionMode {
    fn from(sessions: Sessions) -> SessionMode {
        match sessions {
            Sessions::Optional => SessionMode::Optional,
            Sessions::Required => SessionMode::Required,
            Sessions::Disabled => SessionMode::Disabled,
        }
    }
}

/// Sessions and the MCP lifecycle.
#[derive(Debug, Clone, Copy, Args)]
#[command(next_help_heading = "Sessions")]
pub struct SessionFlags {
    /// Mcp-Session-Id handling over HTTP.
    #[arg(long, value_enum, default_value_t = Sessions::Optional)]
    pub http_sessions: Sessions,
    /// Refuse requests sent before `initialize` (by default one-shot calls are served).
    #[arg(long)]
    pub strict_lifecycle: bool,
}

/// Bounds on one request and on shutdown.
#[derive(Debug, Clone, Copy, Args)]
#[command(next_help_heading = "Limits")]
pub struct TimeoutFlags {
    /// Upper bound on handling one MCP request, on stdio and HTTP (e.g. 30s, 2m) [default: 60s;
    /// the gateway: twice --node-timeout plus 10s, at least 60s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub request_timeout: Option<Duration>,
    /// On SIGTERM, how long in-flight requests may still run [default: the longest deadline of
    /// one request (body read plus --request-timeout) plus 1s, so every call finishes or gets its
    /// timeout error].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub shutdown_grace: Option<Duration>,
    /// On SIGTERM, how long /readyz answers 503 while requests are still accepted, so load
    /// balancers stop sending first (HTTP only).
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = parse_duration)]
    pub drain_delay: Duration,
}

impl TimeoutFlags {
    /// `--request-timeout`, or `default`.
    pub fn request_timeout_or(&self, default: Duration) -> Duration {
        self.request_timeout.unwrap_or(default)
    }
}

/// The serving flags both binaries share: HTTP listener, authentication, sessions and
/// lifecycle, the request bound and logging.
#[derive(Debug, Clone, Args)]
pub struct ServeFlags {
    /// Where and how the HTTP listener serves.
    #[command(flatten)]
    pub http: HttpFlags,
    /// The bearer token clients must send.
    #[command(flatten)]
    pub auth: AuthFlags,
    /// Sessions and the lifecycle rule.
    #[command(flatten)]
    pub sessions: SessionFlags,
    /// The bound on one request.
    #[command(flatten)]
    pub timeouts: TimeoutFlags,
    /// Logging.
    #[command(flatten)]
    pub log: LogFlags,
}

impl ServeFlags {
    /// Writes these flags into both transports' configs: the listener (`default_listen` when
    /// `--listen` is not given), sessions, `bearer_token` and the OAuth settings, one request bound for stdio and HTTP
    /// alike (`--request-timeout`, or `default_request_timeout`) and the shutdown grace (by
    /// default it follows that bound).
    pub fn apply(
        &self,
        http: &mut HttpConfig,
        stdio: &mut StdioConfig,
        default_listen: SocketAddr,
        default_request_timeout: Duration,
        bearer_token: Option<String>,
    ) -> Result<()> {
        let request_timeout = self.timeouts.request_timeout_or(default_request_timeout);
        stdio.request_timeout = Some(request_timeout);
        self.http.apply(http, default_listen)?;
        http.sessions = self.sessions.http_sessions.into();
        http.request_timeout = request_timeout;
        http.shutdown_grace = self.timeouts.shutdown_grace;
        http.drain_delay = self.timeouts.drain_delay;
        stdio.shutdown_grace = self
            .timeouts
            .shutdown_grace
            .unwrap_or(request_timeout + Duration::from_secs(1));
        http.bearer_token = bearer_token;
        http.oauth = self.auth.oauth();
        Ok(())
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured only when stderr is a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging, always on stderr.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogFlags {
    /// Log line format (always on stderr).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter: a level (error, warn, info, debug, trace), or `target=level` directives
    /// separated by commas, with an optional default level (`gpu_mcp_fleet=debug,info`).
    #[arg(long, default_value = "info", value_name = "FILTER")]
    pub log_level: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Demo {
        #[command(flatten)]
        serve: ServeFlags,
    }

    fn demo(args: &[&str]) -> Result<Demo, clap::Error> {
        let mut argv = vec!["demo"];
        argv.extend_from_slice(args);
        crate::parse_from(crate::AGENT_ENV_PREFIX, argv)
    }

    #[test]
    fn groups_convert_into_the_library_configs() {
        let d = demo(&[
            "--port",
            "9000",
            "--allowed-origins",
            "https://a.example,,",
            "--max-body-bytes",
            "1024",
            "--rate-limit-burst",
            "20",
            "--rate-limit-rps",
            "0.5",
            "--http-sessions",
            "required",
            "--strict-lifecycle",
            "--request-timeout",
            "5s",
            "--auth-token",
            " t0k ",
            "--log-format",
            "json",
        ])
        .unwrap();
        let mut http = HttpConfig::default();
        d.serve
            .http
            .apply(&mut http, SocketAddr::from(([0, 0, 0, 0], 8080)))
            .unwrap();
        assert_eq!(http.listen, SocketAddr::from(([0, 0, 0, 0], 9000)));
        assert_eq!(http.allowed_origins, ["https://a.example"]);
        assert_eq!(http.max_body_bytes, 1024);
        assert_eq!(
            http.rate_limit,
            Some(RateLimit {
                burst: 20,
                per_second: 0.5
            })
        );
        assert_eq!(
            SessionMode::from(d.serve.sessions.http_sessions),
            SessionMode::Required
        );
        assert!(d.serve.sessions.strict_lifecycle);
        assert_eq!(
            d.serve.timeouts.request_timeout_or(Duration::from_secs(60)),
            Duration::from_secs(5)
        );
        assert_eq!(d.serve.auth.token().unwrap().as_deref(), Some("t0k"));
        assert_eq!(d.serve.log.log_format, LogFormat::Json);
        let mut stdio = StdioConfig::default();
        d.serve
            .apply(
                &mut http,
                &mut stdio,
                SocketAddr::from(([127, 0, 0, 1], 8080)),
                Duration::from_secs(60),
                None,
            )
            .unwrap();
        assert_eq!(stdio.shutdown_grace, Duration::from_secs(6));
        assert_eq!(
            http.effective_shutdown_grace(),
            http.body_read_timeout + Duration::from_secs(6)
        );
        let d = demo(&["--shutdown-grace", "2m"]).unwrap();
        d.serve
            .apply(
                &mut http,
                &mut stdio,
                SocketAddr::from(([127, 0, 0, 1], 8080)),
                Duration::from_secs(60),
                None,
            )
            .unwrap();
        assert_eq!(http.effective_shutdown_grace(), Duration::from_secs(120));
        assert_eq!(stdio.shutdown_grace, Duration::from_secs(120));

        let d = demo(&[]).unwrap();
        assert_eq!(d.serve.auth.token().unwrap(), None);
        assert_eq!(
            d.serve.http.max_body_bytes,
            gpu_mcp_transport::DEFAULT_MAX_BODY_BYTES
        );
        assert_eq!(
            d.serve.timeouts.request_timeout_or(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
        assert!(
            demo(&["--auth-token", " "])
                .unwrap()
                .serve
                .auth
                .token()
                .is_err()
        );
        let mut http = HttpConfig::default();
        d.serve
            .http
            .apply(&mut http, SocketAddr::from(([127, 0, 0, 1], 8080)))
            .unwrap();
        assert_eq!(http.rate_limit, Some(RateLimit::default()), "on by default");
        let off = demo(&["--rate-limit-rps", "0"]).unwrap();
        off.serve
            .http
            .apply(&mut http, SocketAddr::from(([127, 0, 0, 1], 8080)))
            .unwrap();
        assert_eq!(http.rate_limit, None, "0 turns it off");
        for bad in ["-1", "inf", "NaN", "fast"] {
            assert!(
                demo(&["--rate-limit-rps", bad]).is_err(),
                "{bad} is not a rate"
            );
        }
        assert!(demo(&["--tls-cert", "c.pem"]).is_err());
        assert!(demo(&["--http-sessions", "sometimes"]).is_err());
        assert!(
            demo(&["--auth-token", "a", "--auth-token-file", "/f"]).is_err(),
            "the two token sources conflict"
        );
    }

    #[test]
    fn oauth_flags_make_the_oauth_settings() {
        let d = demo(&[
            "--oauth-issuer",
            "https://idp.example.com/realms/gpu",
            "--oauth-audience",
            "https://gpu.example.com/mcp",
            "--oauth-required-scopes",
            "gpu.read, gpu.admin,,",
        ])
        .unwrap();
        let oauth = d.serve.auth.oauth().unwrap();
        assert_eq!(oauth.issuer, "https://idp.example.com/realms/gpu");
        assert_eq!(oauth.audience, "https://gpu.example.com/mcp");
        assert_eq!(oauth.jwks_url, None);
        assert_eq!(oauth.required_scopes, ["gpu.read", "gpu.admin"]);
        let mut http = HttpConfig::default();
        d.serve
            .apply(
                &mut http,
                &mut StdioConfig::default(),
                SocketAddr::from(([127, 0, 0, 1], 8080)),
                Duration::from_secs(60),
                None,
            )
            .unwrap();
        assert_eq!(http.oauth, Some(oauth));
        assert_eq!(demo(&[]).unwrap().serve.auth.oauth(), None);
        assert!(
            demo(&["--oauth-issuer", "https://idp.example.com"]).is_err(),
            "the audience is required"
        );
        assert!(demo(&["--oauth-jwks-url", "https://idp.example.com/jwks"]).is_err());
    }

    #[test]
    fn port_replaces_the_listen_port() {
        let flags = ListenFlags {
            listen: Some(SocketAddr::from(([127, 0, 0, 2], 1))),
            port: Some(9090),
        };
        assert_eq!(
            flags.addr(SocketAddr::from(([127, 0, 0, 1], 8080))),
            SocketAddr::from(([127, 0, 0, 2], 9090))
        );
        assert_eq!(
            ListenFlags::default().addr(SocketAddr::from(([127, 0, 0, 1], 8080))),
            SocketAddr::from(([127, 0, 0, 1], 8080))
        );
    }
}
