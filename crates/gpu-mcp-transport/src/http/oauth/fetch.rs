//! Reading the identity provider's JSON documents (authorization-server metadata, JWKS): one
//! GET each, https (plain http only to a loopback host), a size cap, no redirects followed.

use bytes::Bytes;
use http::{Uri, header::ACCEPT};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::error::Error;

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum FetchError {
    #[error("request failed: {0}")]
    Request(String),
    #[error("answered {0}")]
    Status(http::StatusCode),
    #[error("body unreadable or over {0} bytes")]
    Body(usize),
    #[error("not the expected JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Checks that `url` is an absolute https URL, or http to a loopback host; `what` names it in
/// the error.
pub(super) fn checked_url(what: &str, url: &str) -> Result<Uri, Error> {
    let bad = |why: &str| Error::OAuth(format!("{what} `{url}` {why}"));
    let uri: Uri = url.parse().map_err(|_| bad("is not a URL"))?;
    let host = uri.host().ok_or_else(|| bad("has no host"))?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback_host(host) => Ok(uri),
        Some("http") => Err(bad(
            "must use https (plain http is for loopback hosts only)",
        )),
        _ => Err(bad("must be an https URL")),
    }
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The HTTP client of the identity provider's documents.
#[derive(Debug, Clone)]
pub(super) struct Fetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    max_bytes: usize,
}

impl Fetcher {
    /// A client trusting the system's CA certificates; without any, only loopback http works
    /// (`https_needed` makes that an error).
    pub(super) fn new(max_bytes: usize, https_needed: bool) -> Result<Self, Error> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder =
            match HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()) {
                Ok(builder) => builder,
                Err(e) if https_needed => {
                    return Err(Error::OAuth(format!(
                        "no CA certificates to verify the identity provider with: {e}"
                    )));
                }
                Err(_) => {
                    let config = ClientConfig::builder_with_provider(provider)
                        .with_safe_default_protocol_versions()
                        .map_err(|e| Error::OAuth(e.to_string()))?
                        .with_root_certificates(RootCertStore::empty())
                        .with_no_client_auth();
                    HttpsConnectorBuilder::new().with_tls_config(config)
                }
            };
        let connector = builder.https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .build(connector);
        Ok(Self { client, max_bytes })
    }

    /// GETs `url` and reads its JSON body (status 200 only). The caller bounds the time.
    pub(super) async fn get_json<T: DeserializeOwned>(&self, url: &Uri) -> Result<T, FetchError> {
        let request = http::Request::get(url.clone())
            .header(ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| FetchError::Request(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| FetchError::Request(e.to_string()))?;
        if response.status() != http::StatusCode::OK {
            return Err(FetchError::Status(response.status()));
        }
        let body = Limited::new(response.into_body(), self.max_bytes)
            .collect()
            .await
            .map_err(|_| FetchError::Body(self.max_bytes))?
            .to_bytes();
        Ok(serde_json::from_slice(&body)?)
    }
}

/// Where the issuer's metadata may be, in the order tried: RFC 8414
/// (`/.well-known/oauth-authorization-server` before the issuer's path), then OpenID Connect
/// discovery (`/.well-known/openid-configuration` after the path, then before it).
pub(super) fn metadata_urls(issuer: &Uri) -> Vec<String> {
    let scheme = issuer.scheme_str().unwrap_or("https");
    let authority = issuer.authority().map_or("", |a| a.as_str());
    let path = issuer.path().trim_end_matches('/');
    let origin = format!("{scheme}://{authority}");
    let mut urls = vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}{path}/.well-known/openid-configuration"),
    ];
    if !path.is_empty() {
        urls.push(format!("{origin}/.well-known/openid-configuration{path}"));
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(checked_url("issuer", "https://idp.example.com/realms/a").is_ok());
        assert!(checked_url("issuer", "http://127.0.0.1:8080").is_ok());
        assert!(checked_url("issuer", "http://localhost:1/x").is_ok());
        assert!(checked_url("issuer", "http://[::1]:1/x").is_ok());
        for bad in [
            "http://idp.example.com",
            "ftp://idp.example.com",
            "idp.example.com",
            "/relative",
            "http://127.0.0.1.nip.io",
        ] {
            assert!(checked_url("issuer", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_locations() {
        let issuer: Uri = "https://idp.example.com/realms/gpu".parse().unwrap();
        assert_eq!(
            metadata_urls(&issuer),
            [
                "https://idp.example.com/.well-known/oauth-authorization-server/realms/gpu",
                "https://idp.example.com/realms/gpu/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/openid-configuration/realms/gpu",
            ]
        );
        let issuer: Uri = "https://idp.example.com/".parse().unwrap();
        assert_eq!(
            metadata_urls(&issuer),
            [
                "https://idp.example.com/.well-known/oauth-authorization-server",
                "https://idp.example.com/.well-known/openid-configuration",
            ]
        );
    }
}
