//! The identity provider's signing keys: reading a JWKS, choosing the key of a token, and the
//! cache that refetches them (one fetch at a time, at most once per interval).

use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::time::Instant;

use super::fetch::{FetchError, Fetcher, checked_url, metadata_urls};

/// One public signing key of the JWKS.
#[derive(Clone)]
pub(super) struct Key {
    kid: Option<String>,
    kind: Kind,
    alg: Option<Algorithm>,
    pub(super) decoding: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rsa,
    P256,
    P384,
}

/// A JWK as published; only what a public signing key needs.
#[derive(Debug, Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawJwks {
    keys: Vec<serde_json::Value>,
}

impl Key {
    /// The key of `jwk`, or `None` for anything but an RSA or P-256/P-384 public signing key
    /// (symmetric `oct` keys, encryption keys and unknown kinds are skipped).
    fn from_jwk(jwk: serde_json::Value) -> Option<Self> {
        let jwk: RawJwk = serde_json::from_value(jwk).ok()?;
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            return None;
        }
        let alg = match jwk.alg.as_deref() {
            None => None,
            Some(name) => Some(super::token::asymmetric(name)?),
        };
        let (kind, decoding) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("RSA", _) => (
                Kind::Rsa,
                DecodingKey::from_rsa_components(jwk.n.as_deref()?, jwk.e.as_deref()?).ok()?,
            ),
            ("EC", Some(crv @ ("P-256" | "P-384"))) => (
                if crv == "P-256" {
                    Kind::P256
                } else {
                    Kind::P384
                },
                DecodingKey::from_ec_components(jwk.x.as_deref()?, jwk.y.as_deref()?).ok()?,
            ),
            _ => return None,
        };
        Some(Self {
            kid: jwk.kid,
            kind,
            alg,
            decoding,
        })
    }

    /// Whether this key may verify a signature made with `alg`.
    fn fits(&self, alg: Algorithm) -> bool {
        let kind_fits = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => self.kind == Kind::Rsa,
            Algorithm::ES256 => self.kind == Kind::P256,
            Algorithm::ES384 => self.kind == Kind::P384,
            _ => false,
        };
        kind_fits && self.alg.is_none_or(|a| a == alg)
    }
}

/// The keys of one JWKS document.
pub(super) fn parse_jwks(raw: RawJwks) -> Vec<Key> {
    raw.keys.into_iter().filter_map(Key::from_jwk).collect()
}

/// The key for a token's `kid` and `alg`: the key with that id, or, for a token without a
/// `kid`, the one key that fits `alg` when there is exactly one.
fn choose(keys: &[Key], kid: Option<&str>, alg: Algorithm) -> Option<Key> {
    match kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid) && k.fits(alg))
            .cloned(),
        None => {
            let mut fitting = keys.iter().filter(|k| k.fits(alg));
            match (fitting.next(), fitting.next()) {
                (Some(key), None) => Some(key.clone()),
                _ => None,
            }
        }
    }
}

/// What the cache answers for a token.
#[derive(Debug)]
pub(super) enum Lookup {
    /// The key to verify it with.
    Found(Key),
    /// The keys are known and none fits.
    Unknown,
    /// No keys could be read from the identity provider.
    Unavailable,
}

/// How the cache behaves.
#[derive(Debug, Clone)]
pub(super) struct CachePolicy {
    /// Deadline of one refresh (discovery and JWKS together).
    pub(super) timeout: Duration,
    /// Fewest time between two fetch attempts.
    pub(super) min_interval: Duration,
    /// Keys older than this are refetched on the next use (kept if that fails).
    pub(super) max_age: Duration,
}

#[derive(Debug, Default)]
struct State {
    keys: Option<Arc<Vec<Key>>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
    /// Counts the refreshes that ended, so a caller that waited for one sees it happened.
    refreshes: u64,
    jwks_url: Option<Uri>,
}

/// The cached signing keys of the issuer.
#[derive(Debug)]
pub(super) struct KeyCache {
    fetcher: Fetcher,
    issuer: String,
    issuer_uri: Uri,
    policy: CachePolicy,
    state: Mutex<State>,
    /// Held by the one refresh running.
    refresh: tokio::sync::Mutex<()>,
}

impl KeyCache {
    pub(super) fn new(
        fetcher: Fetcher,
        issuer: String,
        issuer_uri: Uri,
        jwks_url: Option<Uri>,
        policy: CachePolicy,
    ) -> Self {
        Self {
            fetcher,
            issuer,
            issuer_uri,
            policy,
            state: Mutex::new(State {
                jwks_url,
                ..State::default()
            }),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// The key for a token, refreshing the keys when they are missing, stale or lack the
    /// token's key, unless a fetch was attempted within the minimum interval (then the keys at
    /// hand answer, without waiting).
    pub(super) async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        let seen = {
            let state = self.state.lock();
            let fresh = state
                .fetched_at
                .is_some_and(|t| t.elapsed() < self.policy.max_age);
            let tried_lately = state
                .attempted_at
                .is_some_and(|t| t.elapsed() < self.policy.min_interval);
            match (&state.keys, tried_lately) {
                (Some(keys), _) if fresh || tried_lately => {
                    if let Some(key) = choose(keys, kid, alg) {
                        return Lookup::Found(key);
                    }
                    if tried_lately {
                        return Lookup::Unknown;
                    }
                }
                (None, true) => return Lookup::Unavailable,
                _ => {}
            }
            state.refreshes
        };
        let _one = self.refresh.lock().await;
        let may_fetch = {
            let state = self.state.lock();
            state.refreshes == seen
                && state
                    .attempted_at
                    .is_none_or(|t| t.elapsed() >= self.policy.min_interval)
        };
        if may_fetch {
            self.refresh_now().await;
        }
        let state = self.state.lock();
        match &state.keys {
            None => Lookup::Unavailable,
            Some(keys) => choose(keys, kid, alg).map_or(Lookup::Unknown, Lookup::Found),
        }
    }

    /// One refresh within the deadline; on failure the old keys stay.
    async fn refresh_now(&self) {
        let jwks_url = self.state.lock().jwks_url.clone();
        let fetched = tokio::time::timeout(self.policy.timeout, self.fetch(jwks_url)).await;
        let mut state = self.state.lock();
        state.attempted_at = Some(Instant::now());
        state.refreshes += 1;
        match fetched {
            Ok(Ok((url, keys))) => {
                tracing::debug!(
                    keys = keys.len(),
                    "read the identity provider's signing keys"
                );
                state.jwks_url = Some(url);
                state.keys = Some(Arc::new(keys));
                state.fetched_at = Some(Instant::now());
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the identity provider's signing keys");
            }
            Err(_) => tracing::warn!(
                timeout = ?self.policy.timeout,
                "reading the identity provider's signing keys timed out"
            ),
        }
    }

    async fn fetch(&self, jwks_url: Option<Uri>) -> Result<(Uri, Vec<Key>), String> {
        let url = match jwks_url {
            Some(url) => url,
            None => self.discover().await?,
        };
        let raw: RawJwks = self
            .fetcher
            .get_json(&url)
            .await
            .map_err(|e| format!("JWKS {url}: {e}"))?;
        Ok((url, parse_jwks(raw)))
    }

    /// The `jwks_uri` of the issuer's metadata (whose `issuer` must be ours).
    async fn discover(&self) -> Result<Uri, String> {
        #[derive(Deserialize)]
        struct Metadata {
            issuer: String,
            jwks_uri: Option<String>,
        }
        let mut errors = Vec::new();
        for url in metadata_urls(&self.issuer_uri) {
            let Ok(uri) = url.parse::<Uri>() else {
                continue;
            };
            match self.fetcher.get_json::<Metadata>(&uri).await {
                Ok(meta) if meta.issuer != self.issuer => {
                    errors.push(format!("{url}: names another issuer"));
                }
                Ok(meta) => {
                    let jwks = meta.jwks_uri.ok_or_else(|| format!("{url}: no jwks_uri"))?;
                    return checked_url("jwks_uri", &jwks).map_err(|e| e.to_string());
                }
                Err(FetchError::Status(status)) => errors.push(format!("{url}: {status}")),
                Err(e) => errors.push(format!("{url}: {e}")),
            }
        }
        Err(format!(
            "no authorization-server metadata: {}",
            errors.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwks(keys: serde_json::Value) -> Vec<Key> {
        parse_jwks(serde_json::from_value(json!({ "keys": keys })).unwrap())
    }

    // A P-256 point (the generator), so the components decode.
    const X: &str = "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY";
    const Y: &str = "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";

    #[test]
    fn only_public_signing_keys_are_kept() {
        let keys = jwks(json!([
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "enc", "use": "enc", "crv": "P-256", "x": X, "y": Y},
            {"kty": "EC", "kid": "ed", "crv": "Ed25519", "x": X},
            {"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "hs", "alg": "HS256", "crv": "P-256", "x": X, "y": Y},
            {"kty": "EC", "kid": "ok", "use": "sig", "crv": "P-256", "x": X, "y": Y},
            "not a key",
        ]));
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, [Some("ok")]);
    }

    #[test]
    fn a_key_is_chosen_by_kid_and_algorithm() {
        let keys = jwks(json!([
            {"kty": "EC", "kid": "a", "crv": "P-256", "x": X, "y": Y},
            {"kty": "EC", "kid": "b", "alg": "ES256", "crv": "P-256", "x": X, "y": Y},
        ]));
        assert!(choose(&keys, Some("a"), Algorithm::ES256).is_some());
        assert!(choose(&keys, Some("a"), Algorithm::RS256).is_none());
        assert!(choose(&keys, Some("a"), Algorithm::ES384).is_none());
        assert!(choose(&keys, Some("c"), Algorithm::ES256).is_none());
        assert!(
            choose(&keys, None, Algorithm::ES256).is_none(),
            "two keys fit: a kid is needed"
        );
        assert!(choose(&keys[..1], None, Algorithm::ES256).is_some());
    }
}
