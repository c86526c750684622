//! OAuth resource-server mode against a stand-in identity provider on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::idp::{Idp, hs256, now, unsigned};
use common::{Http, Reply, TestCatalog, call, server};
use gpu_mcp_transport::{Health, HttpConfig, HttpServer, Metrics, OAuthConfig};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const AUDIENCE: &str = "https://gpu-mcp.example.com/mcp";
const METADATA: &str = "https://gpu-mcp.example.com/.well-known/oauth-protected-resource/mcp";

struct Setup {
    http: Http,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn start(oauth: OAuthConfig, bearer_token: Option<&str>) -> Setup {
    let config = HttpConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        oauth: Some(oauth),
        bearer_token: bearer_token.map(str::to_owned),
        rate_limit: None,
        ..HttpConfig::default()
    };
    let srv = HttpServer::bind(
        config,
        server(Arc::new(TestCatalog::default())),
        Health::new(true),
        Metrics::new(),
    )
    .await
    .unwrap();
    let http = Http::new(srv.local_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(srv.serve(shutdown.clone()));
    Setup {
        http,
        _shutdown: shutdown.drop_guard(),
    }
}

fn oauth(idp: &Idp) -> OAuthConfig {
    OAuthConfig {
        required_scopes: vec!["gpu.read".into()],
        ..OAuthConfig::new(idp.issuer(), AUDIENCE)
    }
}

fn claims(idp: &Idp) -> Value {
    json!({
        "iss": idp.issuer(), "aud": [AUDIENCE, "other"], "sub": "sre",
        "exp": now() + 600, "iat": now(), "scope": "openid gpu.read",
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

async fn echo(http: &Http, token: Option<&str>) -> Reply {
    let body = serde_json::to_vec(&call(1, "echo", json!({"x": 1}))).unwrap();
    let mut req = http.post().header("accept", "application/json");
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    http.send(req, body).await
}

fn assert_invalid(r: &Reply, why: &str) {
    assert_eq!(r.status, 401, "{why}: {:?}", r.body);
    assert_eq!(
        r.header("www-authenticate"),
        Some(format!(r#"Bearer resource_metadata="{METADATA}", error="invalid_token""#).as_str()),
        "{why}"
    );
}

#[tokio::test]
async fn a_valid_token_is_accepted_and_bad_ones_are_refused() {
    let idp = Idp::start().await;
    let s = start(oauth(&idp), None).await;
    let token = idp.key.sign(&claims(&idp));
    let r = echo(&s.http, Some(&token)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["result"]["structuredContent"]["x"], 1);
    // `scp` as an array grants scopes too, and `aud` may be a single string.
    let scp = json!({"iss": idp.issuer(), "aud": AUDIENCE, "exp": now() + 60, "scp": ["gpu.read"]});
    assert_eq!(echo(&s.http, Some(&idp.key.sign(&scp))).await.status, 200);

    let base = claims(&idp);
    let cases = [
        (
            "wrong issuer",
            with(base.clone(), "iss", json!("http://127.0.0.1:1")),
        ),
        (
            "issuer array",
            with(base.clone(), "iss", json!([idp.issuer()])),
        ),
        (
            "wrong audience",
            with(base.clone(), "aud", json!("https://other.example.com/mcp")),
        ),
        ("no audience", {
            let mut c = base.clone();
            c.as_object_mut().unwrap().remove("aud");
            c
        }),
        ("expired", with(base.clone(), "exp", json!(now() - 3600))),
        ("no expiry", {
            let mut c = base.clone();
            c.as_object_mut().unwrap().remove("exp");
            c
        }),
        (
            "not yet valid",
            with(base.clone(), "nbf", json!(now() + 3600)),
        ),
    ];
    for (why, claims) in cases {
        assert_invalid(&echo(&s.http, Some(&idp.key.sign(&claims))).await, why);
    }
    assert_invalid(
        &echo(&s.http, Some(&unsigned("key-1", &base))).await,
        "alg none",
    );
    // The JWKS also holds an `oct` key named key-1 with this secret: it is never used.
    assert_invalid(
        &echo(&s.http, Some(&hs256("key-1", b"secret", &base))).await,
        "HS256",
    );
    let mut tampered = idp.key.sign(&base);
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    assert_invalid(&echo(&s.http, Some(&tampered)).await, "bad signature");
    assert_invalid(&echo(&s.http, Some("not-a-jwt")).await, "garbage");
}

#[tokio::test]
async fn missing_token_and_missing_scope() {
    let idp = Idp::start().await;
    let s = start(oauth(&idp), None).await;
    let r = echo(&s.http, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(format!(r#"Bearer resource_metadata="{METADATA}", scope="gpu.read""#).as_str())
    );
    let token = idp.key.sign(&with(claims(&idp), "scope", json!("openid")));
    let r = echo(&s.http, Some(&token)).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            format!(
                r#"Bearer resource_metadata="{METADATA}", error="insufficient_scope", scope="gpu.read""#
            )
            .as_str()
        )
    );
    assert!(
        !String::from_utf8_lossy(&r.body).contains(&token),
        "the token is never echoed"
    );
}

#[tokio::test]
async fn protected_resource_metadata() {
    let idp = Idp::start().await;
    let s = start(oauth(&idp), None).await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let r = s.http.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.json(),
            json!({
                "resource": AUDIENCE,
                "authorization_servers": [idp.issuer()],
                "scopes_supported": ["gpu.read"],
                "bearer_methods_supported": ["header"],
            }),
            "{path}"
        );
    }
    assert_eq!(
        s.http
            .get("/.well-known/oauth-protected-resource/x")
            .await
            .status,
        404
    );
    let post = http::Request::post(format!(
        "http://{}/.well-known/oauth-protected-resource",
        s.http.addr
    ));
    assert_eq!(s.http.send(post, "").await.status, 405);
}

#[tokio::test]
async fn unknown_kids_refetch_the_keys_at_most_once_per_interval() {
    let idp = Idp::start().await;
    let s = start(oauth(&idp), None).await;
    let good = idp.key.sign(&claims(&idp));
    assert_eq!(echo(&s.http, Some(&good)).await.status, 200);
    assert_eq!(idp.fetches(), 1);
    for i in 0..5 {
        let token = idp.key.sign_as(&format!("random-{i}"), &claims(&idp));
        assert_invalid(&echo(&s.http, Some(&token)).await, "unknown kid");
    }
    assert_eq!(
        idp.fetches(),
        1,
        "within the interval the keys are not read again"
    );
    assert_eq!(echo(&s.http, Some(&good)).await.status, 200);

    // With no interval, each unknown kid reads them once more.
    let idp = Idp::start().await;
    let s = start(
        OAuthConfig {
            refresh_interval: Duration::ZERO,
            ..oauth(&idp)
        },
        None,
    )
    .await;
    let token = idp.key.sign_as("random", &claims(&idp));
    assert_invalid(&echo(&s.http, Some(&token)).await, "unknown kid");
    assert_invalid(&echo(&s.http, Some(&token)).await, "unknown kid");
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test]
async fn an_explicit_jwks_url_skips_discovery() {
    let idp = Idp::start().await;
    let s = start(
        OAuthConfig {
            // The issuer's metadata would be read from here: nothing listens.
            issuer: "http://127.0.0.1:1".into(),
            jwks_url: Some(format!("{}/jwks", idp.issuer())),
            ..oauth(&idp)
        },
        None,
    )
    .await;
    let token = idp
        .key
        .sign(&with(claims(&idp), "iss", json!("http://127.0.0.1:1")));
    assert_eq!(echo(&s.http, Some(&token)).await.status, 200);
}

#[tokio::test]
async fn an_unreachable_or_silent_provider_gets_a_clean_503() {
    // Nothing listens on the issuer's port.
    let idp = Idp::start().await;
    let token = idp.key.sign(&claims(&idp));
    let s = start(OAuthConfig::new("http://127.0.0.1:1", AUDIENCE), None).await;
    let r = echo(&s.http, Some(&token)).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.header("retry-after"), Some("5"));

    // A provider that accepts and never answers: the fetch deadline ends the wait.
    idp.silent.store(true, std::sync::atomic::Ordering::SeqCst);
    let s = start(
        OAuthConfig {
            fetch_timeout: Duration::from_millis(300),
            ..oauth(&idp)
        },
        None,
    )
    .await;
    let r = tokio::time::timeout(Duration::from_secs(30), echo(&s.http, Some(&token)))
        .await
        .expect("the fetch deadline ends the request");
    assert_eq!(r.status, 503);
    // No token at all is still a 401: nothing is fetched for it.
    assert_eq!(echo(&s.http, None).await.status, 401);
}

#[tokio::test]
async fn the_static_token_and_oauth_are_both_accepted() {
    let idp = Idp::start().await;
    let s = start(oauth(&idp), Some("s3cret")).await;
    assert_eq!(echo(&s.http, Some("s3cret")).await.status, 200);
    assert_eq!(
        echo(&s.http, Some(&idp.key.sign(&claims(&idp))))
            .await
            .status,
        200
    );
    assert_invalid(&echo(&s.http, Some("wrong")).await, "neither");
}

#[tokio::test]
async fn unusable_settings_are_refused_at_bind() {
    for (issuer, audience, jwks) in [
        ("http://idp.example.com", AUDIENCE, None),
        ("https://idp.example.com", "gpu-mcp", None),
        (
            "https://idp.example.com",
            AUDIENCE,
            Some("http://idp.example.com/jwks"),
        ),
    ] {
        let config = HttpConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            oauth: Some(OAuthConfig {
                jwks_url: jwks.map(str::to_owned),
                ..OAuthConfig::new(issuer, audience)
            }),
            ..HttpConfig::default()
        };
        let bound = HttpServer::bind(
            config,
            server(Arc::new(TestCatalog::default())),
            Health::new(true),
            Metrics::new(),
        )
        .await;
        assert!(
            matches!(bound, Err(gpu_mcp_transport::Error::OAuth(_))),
            "{issuer} {audience} {jwks:?}"
        );
    }
}

fn fixture(name: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/oauth");
    std::fs::read_to_string(format!("{dir}/{name}"))
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn rsa_pss_and_p384_signatures_verify() {
    let jwks: Value = serde_json::from_str(&fixture("jwks.json")).unwrap();
    let idp = Idp::start_with(jwks["keys"].as_array().unwrap().clone()).await;
    let s = start(
        OAuthConfig {
            jwks_url: Some(format!("{}/jwks", idp.issuer())),
            required_scopes: vec!["gpu.read".into()],
            ..OAuthConfig::new(
                "https://idp.example.test",
                "https://gpu-mcp.example.test/mcp",
            )
        },
        None,
    )
    .await;
    for name in [
        "token.jwt",
        "token-rs256.jwt",
        "token-ps256.jwt",
        "token-es384.jwt",
    ] {
        let r = echo(&s.http, Some(&fixture(name))).await;
        assert_eq!(r.status, 200, "{name}: {:?}", r.body);
    }
    // The RS256 token's signature under an ES256 header (algorithm confusion) is refused.
    let rs = fixture("token-rs256.jwt");
    let (_, rest) = rs.split_once('.').unwrap();
    let confused = format!("eyJhbGciOiJFUzI1NiIsImtpZCI6InJzYS0xIn0.{rest}");
    assert_eq!(echo(&s.http, Some(&confused)).await.status, 401);
}

#[tokio::test]
async fn stale_keys_are_read_again_and_kept_when_that_fails() {
    let idp = Idp::start().await;
    let s = start(
        OAuthConfig {
            max_key_age: Duration::ZERO,
            refresh_interval: Duration::ZERO,
            fetch_timeout: Duration::from_millis(300),
            ..oauth(&idp)
        },
        None,
    )
    .await;
    let token = idp.key.sign(&claims(&idp));
    assert_eq!(echo(&s.http, Some(&token)).await.status, 200);
    assert_eq!(echo(&s.http, Some(&token)).await.status, 200);
    assert_eq!(idp.fetches(), 2, "stale keys are read again on use");
    idp.silent.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = tokio::time::timeout(Duration::from_secs(30), echo(&s.http, Some(&token)))
        .await
        .expect("the fetch deadline ends the wait");
    assert_eq!(r.status, 200, "the old keys stay when a read fails");
}
