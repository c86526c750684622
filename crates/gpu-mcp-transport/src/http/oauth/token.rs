//! What a JWT access token must be: an asymmetric signature, our issuer and audience, inside
//! its validity window, and the required scopes.

use std::collections::HashSet;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

/// The signature algorithms accepted: RSA (PKCS#1 v1.5 and PSS) and ECDSA on P-256 and P-384.
/// `none` and the HMAC algorithms never are.
const ACCEPTED: [(&str, Algorithm); 8] = [
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
];

/// The accepted algorithm called `name` in a JWK or a JWT header.
pub(super) fn asymmetric(name: &str) -> Option<Algorithm> {
    ACCEPTED.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

/// The parts of a token's header that choose its key.
#[derive(Debug)]
pub(super) struct Header {
    pub(super) alg: Algorithm,
    pub(super) kid: Option<String>,
}

/// The header, when the token is a JWT signed with an accepted algorithm.
pub(super) fn header(token: &str) -> Option<Header> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    ACCEPTED
        .iter()
        .any(|(_, a)| *a == header.alg)
        .then_some(Header {
            alg: header.alg,
            kid: header.kid,
        })
}

/// The claims read beyond those `jsonwebtoken` checks.
#[derive(Debug, Deserialize)]
struct Claims {
    /// A single string (an array is refused).
    #[allow(dead_code)]
    iss: String,
    scope: Option<serde_json::Value>,
    scp: Option<serde_json::Value>,
}

/// Why a token with a valid signature is refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Bad signature, issuer, audience or time.
    Invalid,
    /// Valid, without every required scope.
    MissingScope,
}

/// The checks one server applies.
#[derive(Debug, Clone)]
pub(super) struct Rules {
    pub(super) issuer: String,
    pub(super) audience: String,
    pub(super) required_scopes: Vec<String>,
    pub(super) leeway: Duration,
}

impl Rules {
    /// Verifies `token`'s signature with `key` and its claims.
    pub(super) fn check(
        &self,
        token: &str,
        alg: Algorithm,
        key: &jsonwebtoken::DecodingKey,
    ) -> Result<(), Refusal> {
        let mut validation = Validation::new(alg);
        validation.leeway = self.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
            tracing::debug!(reason = ?e.kind(), "access token refused");
            Refusal::Invalid
        })?;
        let granted = scopes(&data.claims);
        if self
            .required_scopes
            .iter()
            .all(|s| granted.contains(s.as_str()))
        {
            Ok(())
        } else {
            tracing::debug!("access token refused: a required scope is missing");
            Err(Refusal::MissingScope)
        }
    }
}

/// The scopes granted: `scope` (space-separated, RFC 9068) and `scp` (an array, or a
/// space-separated string, as some providers write it).
fn scopes(claims: &Claims) -> HashSet<&str> {
    let mut granted = HashSet::new();
    for value in [&claims.scope, &claims.scp].into_iter().flatten() {
        match value {
            serde_json::Value::String(s) => granted.extend(s.split_ascii_whitespace()),
            serde_json::Value::Array(items) => {
                granted.extend(items.iter().filter_map(serde_json::Value::as_str));
            }
            _ => {}
        }
    }
    granted
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_come_from_scope_and_scp() {
        let claims: Claims = serde_json::from_value(json!({
            "iss": "i", "scope": "a  b", "scp": ["c", 1]
        }))
        .unwrap();
        let granted = scopes(&claims);
        assert_eq!(granted, HashSet::from(["a", "b", "c"]));
        let claims: Claims = serde_json::from_value(json!({"iss": "i", "scp": "d e"})).unwrap();
        assert_eq!(scopes(&claims), HashSet::from(["d", "e"]));
    }

    #[test]
    fn only_asymmetric_algorithms() {
        for ok in ["RS256", "PS512", "ES256", "ES384"] {
            assert!(asymmetric(ok).is_some(), "{ok}");
        }
        for bad in ["none", "HS256", "HS512", "EdDSA", "RSA-OAEP", "es256"] {
            assert!(asymmetric(bad).is_none(), "{bad}");
        }
        // {"alg":"none"} and {"alg":"HS256","typ":"JWT"}
        assert!(header("eyJhbGciOiJub25lIn0.e30.").is_none());
        assert!(header("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2ln").is_none());
        assert!(header("not a token").is_none());
    }
}
