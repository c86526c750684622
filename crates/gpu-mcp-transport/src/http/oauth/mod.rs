//! OAuth 2.1 resource-server mode: the MCP endpoint accepts JWT access tokens of one issuer,
//! bound to this server as their audience (MCP authorization, revisions 2025-06-18 and later).
//!
//! - `token`: the rules a token must pass (asymmetric signature, `iss`, `aud`, `exp`/`nbf`,
//!   scopes).
//! - `keys`: the issuer's signing keys, from its JWKS, cached and refetched at most once per
//!   interval, one fetch at a time.
//! - `fetch`: the HTTP client of the identity provider (https, deadline, size cap).
//! - `resource`: the RFC 9728 metadata document and the `WWW-Authenticate` challenges.
//!
//! Tokens are never logged; refusals are logged at debug level by reason only.

mod fetch;
mod keys;
mod resource;
mod token;

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};

use super::handler::{HttpResponse, rpc_error, with_type};
use crate::error::Error;
use fetch::{Fetcher, checked_url};
use gpu_mcp_protocol::ErrorCode;
use keys::{CachePolicy, KeyCache, Lookup};
use resource::Resource;
use token::{Refusal, Rules};

/// Deadline of one read of the identity provider's keys (its metadata and JWKS together).
pub const DEFAULT_OAUTH_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest metadata or JWKS document read from the identity provider.
pub const DEFAULT_OAUTH_MAX_DOCUMENT_BYTES: usize = 256 << 10;

/// Fewest time between two reads of the keys (a token with an unknown `kid` waits for the
/// next one).
pub const DEFAULT_OAUTH_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// OAuth resource-server settings: which tokens the MCP endpoint accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthConfig {
    /// The authorization server's issuer identifier; a token's `iss` must equal it exactly, and
    /// its metadata is read from it. https, or http to a loopback host.
    pub issuer: String,
    /// This server's resource URL (`https://gpu-mcp.example.com/mcp`); a token's `aud` must
    /// contain it, and the metadata document names it as `resource`.
    pub audience: String,
    /// The issuer's JWKS; `None` reads `jwks_uri` from the issuer's metadata.
    pub jwks_url: Option<String>,
    /// Scopes a token must all carry (`scope` or `scp`); empty requires none.
    pub required_scopes: Vec<String>,
    /// Deadline of one read of the keys.
    pub fetch_timeout: Duration,
    /// Largest document read from the identity provider.
    pub max_document_bytes: usize,
    /// Fewest time between two reads of the keys.
    pub refresh_interval: Duration,
    /// Keys older than this are read again on next use (the old ones stay if that fails).
    pub max_key_age: Duration,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
}

impl OAuthConfig {
    /// Tokens of `issuer` for the resource `audience`, with the default limits.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: None,
            required_scopes: Vec::new(),
            fetch_timeout: DEFAULT_OAUTH_FETCH_TIMEOUT,
            max_document_bytes: DEFAULT_OAUTH_MAX_DOCUMENT_BYTES,
            refresh_interval: DEFAULT_OAUTH_REFRESH_INTERVAL,
            max_key_age: Duration::from_secs(15 * 60),
            leeway: Duration::from_secs(30),
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Denial {
    /// No bearer token: 401.
    Missing,
    /// A token that is not one of ours, or not valid now: 401 `invalid_token`.
    Invalid,
    /// A valid token without the required scopes: 403 `insufficient_scope`.
    Scope,
    /// The issuer's keys cannot be read: 503.
    Unavailable,
}

/// Judges the bearer tokens of the MCP endpoint.
#[derive(Debug)]
pub(crate) struct Verifier {
    rules: Rules,
    keys: KeyCache,
    resource: Resource,
}

impl Verifier {
    /// Checks the configuration and prepares the client of the identity provider; nothing is
    /// fetched until the first token arrives.
    pub(crate) fn new(config: &OAuthConfig, mcp_path: &str) -> Result<Self, Error> {
        let issuer_uri = checked_url("issuer", &config.issuer)?;
        let jwks_url = config
            .jwks_url
            .as_deref()
            .map(|u| checked_url("JWKS URL", u))
            .transpose()?;
        // The issuer's metadata is read only when no JWKS URL is given.
        let fetched = jwks_url.as_ref().unwrap_or(&issuer_uri);
        let https_needed = fetched.scheme_str() == Some("https");
        let fetcher = Fetcher::new(config.max_document_bytes, https_needed)?;
        let resource = Resource::new(
            &config.audience,
            &config.issuer,
            &config.required_scopes,
            mcp_path,
        )?;
        let policy = CachePolicy {
            timeout: config.fetch_timeout,
            min_interval: config.refresh_interval,
            max_age: config.max_key_age,
        };
        Ok(Self {
            rules: Rules {
                issuer: config.issuer.clone(),
                audience: config.audience.clone(),
                required_scopes: config.required_scopes.clone(),
                leeway: config.leeway,
            },
            keys: KeyCache::new(fetcher, config.issuer.clone(), issuer_uri, jwks_url, policy),
            resource,
        })
    }

    /// Judges the `Authorization` header of a request.
    pub(super) async fn check(&self, authorization: Option<&HeaderValue>) -> Result<(), Denial> {
        let token = bearer(authorization).ok_or(Denial::Missing)?;
        let header = token::header(token).ok_or_else(|| {
            tracing::debug!("access token refused: not a JWT with an accepted algorithm");
            Denial::Invalid
        })?;
        let key = match self.keys.key(header.kid.as_deref(), header.alg).await {
            Lookup::Found(key) => key,
            Lookup::Unknown => {
                tracing::debug!("access token refused: no signing key of the issuer fits it");
                return Err(Denial::Invalid);
            }
            Lookup::Unavailable => return Err(Denial::Unavailable),
        };
        self.rules
            .check(token, header.alg, &key.decoding)
            .map_err(|refusal| match refusal {
                Refusal::Invalid => Denial::Invalid,
                Refusal::MissingScope => Denial::Scope,
            })
    }

    /// The answer to a refused request.
    pub(super) fn refusal(&self, denial: Denial) -> HttpResponse {
        let (status, message, challenge) = match denial {
            Denial::Missing => (
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                Some(self.resource.missing()),
            ),
            Denial::Invalid => (
                StatusCode::UNAUTHORIZED,
                "Unauthorized: invalid token",
                Some(self.resource.invalid()),
            ),
            Denial::Scope => (
                StatusCode::FORBIDDEN,
                "Forbidden: insufficient scope",
                Some(self.resource.insufficient()),
            ),
            Denial::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable: cannot verify tokens now",
                None,
            ),
        };
        let mut r = rpc_error(status, None, ErrorCode::InvalidRequest, message);
        let h = r.headers_mut();
        match challenge {
            Some(challenge) => {
                h.insert(WWW_AUTHENTICATE, challenge);
            }
            None => {
                h.insert(RETRY_AFTER, HeaderValue::from_static("5"));
            }
        }
        r
    }

    /// The metadata document, when `path` is one of its paths.
    pub(super) fn metadata(&self, path: &str) -> Option<HttpResponse> {
        if !self.resource.serves(path) {
            return None;
        }
        let mut r = with_type(
            StatusCode::OK,
            "application/json",
            Bytes::clone(&self.resource.document),
        );
        // Public information, read by browser clients before they have a token.
        r.headers_mut()
            .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        Some(r)
    }

    /// Whether `path` is under the metadata's well-known prefix.
    pub(super) fn is_metadata_path(path: &str) -> bool {
        path.starts_with(resource::WELL_KNOWN)
    }
}

/// The token of `Authorization: Bearer <token>`, when it is one.
fn bearer(authorization: Option<&HeaderValue>) -> Option<&str> {
    let value = authorization?.to_str().ok()?;
    let (scheme, token) = value.split_at_checked(7)?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer ") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn any_authorization_header_is_judged_without_panicking(
            bytes in prop::collection::vec(any::<u8>(), 0..200),
            token in "[A-Za-z0-9_.=-]{0,120}",
        ) {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                let _ = bearer(Some(&value));
            }
            let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
            prop_assert_eq!(bearer(Some(&value)), (!token.is_empty()).then_some(token.as_str()));
            let _ = token::header(&token);
        }
    }
}
