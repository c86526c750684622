//! This server as an OAuth protected resource: its RFC 9728 metadata document, where that is
//! served, and the `WWW-Authenticate` challenges that point clients to it.

use bytes::Bytes;
use http::{HeaderValue, Uri};
use serde_json::json;

use crate::error::Error;

/// The path prefix of the protected-resource metadata (RFC 9728 section 3).
pub(super) const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// What this server tells clients about itself as a protected resource.
#[derive(Debug)]
pub(super) struct Resource {
    /// The metadata document.
    pub(super) document: Bytes,
    /// Paths the document is served at.
    paths: Vec<String>,
    missing: HeaderValue,
    invalid: HeaderValue,
    insufficient: HeaderValue,
}

impl Resource {
    /// The resource `audience` (its URL), protected by `issuer`, asking for `scopes`, whose MCP
    /// endpoint is at `mcp_path`.
    pub(super) fn new(
        audience: &str,
        issuer: &str,
        scopes: &[String],
        mcp_path: &str,
    ) -> Result<Self, Error> {
        let uri: Uri = audience
            .parse()
            .ok()
            .filter(|u: &Uri| matches!(u.scheme_str(), Some("https" | "http")))
            .filter(|u| u.host().is_some() && u.query().is_none())
            .ok_or_else(|| {
                Error::OAuth(format!(
                    "audience `{audience}` must be the server's absolute http(s) URL"
                ))
            })?;
        if let Some(bad) = scopes.iter().find(|s| !is_scope_token(s)) {
            return Err(Error::OAuth(format!("`{bad}` is not a scope name")));
        }
        let resource_path = uri.path().trim_end_matches('/');
        let metadata_url = format!(
            "{}://{}{WELL_KNOWN}{resource_path}",
            uri.scheme_str().unwrap_or("https"),
            uri.authority().map_or("", |a| a.as_str()),
        );
        let mut document = json!({
            "resource": audience,
            "authorization_servers": [issuer],
            "bearer_methods_supported": ["header"],
        });
        if !scopes.is_empty() {
            document["scopes_supported"] = json!(scopes);
        }
        let mut paths = vec![WELL_KNOWN.to_owned()];
        for path in [mcp_path.trim_end_matches('/'), resource_path] {
            let path = format!("{WELL_KNOWN}{path}");
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
        let scope = scopes.join(" ");
        let base = format!(r#"Bearer resource_metadata="{metadata_url}""#);
        let with_scope = |s: String| {
            if scope.is_empty() {
                s
            } else {
                format!(r#"{s}, scope="{scope}""#)
            }
        };
        let header = |s: String| {
            HeaderValue::from_str(&s).map_err(|_| {
                Error::OAuth(format!("audience `{audience}` cannot be named in a header"))
            })
        };
        Ok(Self {
            document: Bytes::from(document.to_string()),
            paths,
            missing: header(with_scope(base.clone()))?,
            invalid: header(format!(r#"{base}, error="invalid_token""#))?,
            insufficient: header(with_scope(format!(r#"{base}, error="insufficient_scope""#)))?,
        })
    }

    /// Whether `path` is one the metadata is served at.
    pub(super) fn serves(&self, path: &str) -> bool {
        self.paths.iter().any(|p| p == path)
    }

    /// The challenge of a request without a token (RFC 6750: no error code).
    pub(super) fn missing(&self) -> HeaderValue {
        self.missing.clone()
    }

    /// The challenge of a request whose token is refused.
    pub(super) fn invalid(&self) -> HeaderValue {
        self.invalid.clone()
    }

    /// The challenge of a valid token without the required scopes.
    pub(super) fn insufficient(&self) -> HeaderValue {
        self.insufficient.clone()
    }
}

/// RFC 6749 `scope-token`: visible ASCII but `"` and `\`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_and_paths_follow_the_resource() {
        let r = Resource::new(
            "https://gpu.example.com/mcp",
            "https://idp.example.com",
            &["gpu.read".to_owned()],
            "/mcp",
        )
        .unwrap();
        assert!(r.serves("/.well-known/oauth-protected-resource"));
        assert!(r.serves("/.well-known/oauth-protected-resource/mcp"));
        assert!(!r.serves("/.well-known/oauth-protected-resource/other"));
        assert_eq!(
            r.invalid().to_str().unwrap(),
            r#"Bearer resource_metadata="https://gpu.example.com/.well-known/oauth-protected-resource/mcp", error="invalid_token""#
        );
        assert_eq!(
            r.missing().to_str().unwrap(),
            r#"Bearer resource_metadata="https://gpu.example.com/.well-known/oauth-protected-resource/mcp", scope="gpu.read""#
        );
        let doc: serde_json::Value = serde_json::from_slice(&r.document).unwrap();
        assert_eq!(doc["resource"], "https://gpu.example.com/mcp");
        assert_eq!(doc["scopes_supported"][0], "gpu.read");
    }

    #[test]
    fn bad_audiences_and_scopes_are_configuration_errors() {
        for bad in [
            "gpu.example.com/mcp",
            "/mcp",
            "ftp://x/mcp",
            "https://x/mcp?a=1",
        ] {
            assert!(
                Resource::new(bad, "https://i", &[], "/mcp").is_err(),
                "{bad}"
            );
        }
        for bad in ["", "a b", "a\"b"] {
            assert!(
                Resource::new("https://x/mcp", "https://i", &[bad.to_owned()], "/mcp").is_err(),
                "{bad}"
            );
        }
    }
}
