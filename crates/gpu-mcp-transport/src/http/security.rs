//! Request checks of the MCP endpoint: `Origin`, `Host`, bearer token, `Accept`, `Content-Type`.

use http::HeaderValue;
use subtle::ConstantTimeEq;

/// Whether an `Origin` header value may call the endpoint.
///
/// No `Origin` (a non-browser client) is always allowed. With an empty allow-list, browser
/// origins on the local machine are allowed: `http(s)://localhost`, `127.0.0.1` or `[::1]`, any
/// port. A non-empty list replaces that rule: an origin must equal an entry (scheme, host and
/// port, case-insensitive, trailing `/` ignored), and the entry `*` allows every origin.
pub(crate) fn origin_allowed(origin: Option<&HeaderValue>, allowed: &[String]) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if allowed.is_empty() {
        return is_local_origin(&origin);
    }
    allowed
        .iter()
        .any(|a| a == "*" || a.trim().trim_end_matches('/').eq_ignore_ascii_case(&origin))
}

fn is_local_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let (host, port) = split_host_port(rest);
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Splits `host[:port]`, keeping IPv6 brackets on the host.
fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        return match s.find(']') {
            Some(end) => {
                let (host, rest) = s.split_at(end + 1);
                (host, rest.strip_prefix(':'))
            }
            None => (s, None),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    }
}

/// Whether the request's host (`Host`, or the HTTP/2 authority) names one of the allowed hosts,
/// port ignored.
///
/// An empty list on a loopback listener allows the loopback names only (`localhost`,
/// `127.x.x.x`, `[::1]`) and a missing host, which defeats DNS rebinding from a browser; an empty
/// list on any other listener allows any host.
pub(crate) fn host_allowed(host: Option<&str>, allowed: &[String], loopback: bool) -> bool {
    if allowed.is_empty() && !loopback {
        return true;
    }
    let Some(host) = host else {
        return allowed.is_empty();
    };
    let (name, _) = split_host_port(host.trim());
    if allowed.is_empty() {
        return name.eq_ignore_ascii_case("localhost")
            || name == "[::1]"
            || name
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback());
    }
    allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// Whether `Authorization` carries `Bearer <expected>`, compared in constant time.
pub(crate) fn bearer_ok(authorization: Option<&HeaderValue>, expected: &str) -> bool {
    let Some(value) = authorization else {
        return false;
    };
    let value = value.as_bytes();
    let Some((scheme, token)) = value.split_at_checked(7) else {
        return false;
    };
    scheme.eq_ignore_ascii_case(b"bearer ")
        && bool::from(token.trim_ascii().ct_eq(expected.as_bytes()))
}

/// Whether the `Content-Type` is `application/json` (parameters such as `charset` allowed).
pub(crate) fn is_json_content_type(value: Option<&HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.as_bytes().split(|&b| b == b';').next())
        .is_some_and(|m| m.trim_ascii().eq_ignore_ascii_case(b"application/json"))
}

/// How a POSTed request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyFormat {
    /// `application/json`, one response.
    Json,
    /// `text/event-stream`, one `message` event carrying the response.
    EventStream,
}

/// Picks the reply format from `Accept`; `None` when it accepts neither format (406).
///
/// A missing or unreadable header, or `*/*`, gets JSON. The event stream is chosen when the client
/// accepts it with a higher weight than JSON (including when it does not accept JSON at all).
pub(crate) fn negotiate(accept: Option<&HeaderValue>) -> Option<ReplyFormat> {
    let Some(accept) = accept.and_then(|a| a.to_str().ok()) else {
        return Some(ReplyFormat::Json);
    };
    if accept.trim().is_empty() {
        return Some(ReplyFormat::Json);
    }
    let (json, sse) = weights(accept);
    // The most specific matching range decides a format's weight.
    let weight = |w: [Option<f32>; 3]| w.into_iter().flatten().next().unwrap_or(0.0);
    let (json, sse) = (weight(json), weight(sse));
    if json <= 0.0 && sse <= 0.0 {
        None
    } else if sse > json {
        Some(ReplyFormat::EventStream)
    } else {
        Some(ReplyFormat::Json)
    }
}

/// Whether `Accept` names the event stream itself (`text/event-stream` or `text/*`, with a
/// weight above 0), so a request may be answered with a stream of several events (its
/// notifications, then its response). `*/*` alone does not count: a client that never named
/// the format is not sent one it may not expect.
pub(crate) fn names_event_stream(accept: Option<&HeaderValue>) -> bool {
    let Some(accept) = accept.and_then(|a| a.to_str().ok()) else {
        return false;
    };
    let (_, sse) = weights(accept);
    sse[..2].iter().flatten().next().is_some_and(|q| *q > 0.0)
}

/// The (exact, `type/*`, `*/*`) weights `accept` gives JSON and the event stream.
fn weights(accept: &str) -> ([Option<f32>; 3], [Option<f32>; 3]) {
    // (exact, type/*, */*) weights for each format
    let mut json = [None::<f32>; 3];
    let mut sse = [None::<f32>; 3];
    // Split as bytes: `str::split` on a char sets up a searcher per call (about 1,200
    // instructions for one `Accept` of an SDK client).
    for range in accept.as_bytes().split(|&b| b == b',') {
        let mut parts = range.split(|&b| b == b';');
        let media = parts.next().unwrap_or_default().trim_ascii();
        let q = parts
            .filter_map(|p| p.trim_ascii().strip_prefix(b"q="))
            .find_map(|q| {
                let q = std::str::from_utf8(q.trim_ascii()).ok()?;
                q.parse::<f32>().ok().filter(|q| q.is_finite())
            })
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        let slot = |w: &mut [Option<f32>; 3], i: usize| {
            w[i] = Some(w[i].map_or(q, |old| old.max(q)));
        };
        // Compared without case in place: no lower-case copy of each range per request.
        let is = |name: &str| media.eq_ignore_ascii_case(name.as_bytes());
        if is("application/json") {
            slot(&mut json, 0);
        } else if is("application/*") {
            slot(&mut json, 1);
        } else if is("text/event-stream") {
            slot(&mut sse, 0);
        } else if is("text/*") {
            slot(&mut sse, 1);
        } else if media == b"*/*" {
            slot(&mut json, 2);
            slot(&mut sse, 2);
        }
    }
    (json, sse)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn default_origin_rule_allows_only_local_origins() {
        let none: &[String] = &[];
        assert!(origin_allowed(None, none));
        for ok in [
            "http://localhost",
            "http://localhost:6274",
            "https://127.0.0.1:8080",
            "http://[::1]:3000",
            "HTTP://LOCALHOST/",
        ] {
            assert!(origin_allowed(Some(&hv(ok)), none), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "http://localhost.evil.example",
            "null",
            "http://127.0.0.1.nip.io",
            "file://localhost",
            "http://localhost:abc",
        ] {
            assert!(!origin_allowed(Some(&hv(bad)), none), "{bad}");
        }
    }

    #[test]
    fn configured_origins_replace_the_default() {
        let list = vec!["https://inspector.example.com".to_owned()];
        assert!(origin_allowed(
            Some(&hv("https://Inspector.example.com")),
            &list
        ));
        assert!(!origin_allowed(Some(&hv("http://localhost")), &list));
        assert!(origin_allowed(
            Some(&hv("http://anything")),
            &["*".to_owned()]
        ));
    }

    #[test]
    fn host_list() {
        let list = vec!["localhost".to_owned(), "[::1]".to_owned()];
        for loopback in [true, false] {
            assert!(host_allowed(Some("localhost:8080"), &list, loopback));
            assert!(host_allowed(Some("[::1]:80"), &list, loopback));
            assert!(!host_allowed(Some("evil.example"), &list, loopback));
            assert!(!host_allowed(None, &list, loopback));
        }
        assert!(host_allowed(None, &[], false));
        assert!(host_allowed(Some("evil.example"), &[], false));
    }

    #[test]
    fn loopback_listeners_allow_loopback_hosts_only_by_default() {
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1:1",
            "127.3.2.1",
            "[::1]:9",
        ] {
            assert!(host_allowed(Some(ok), &[], true), "{ok}");
        }
        assert!(host_allowed(None, &[], true));
        for bad in [
            "evil.example",
            "localhost.evil.example",
            "10.0.0.1",
            "127.0.0.1.nip.io",
        ] {
            assert!(!host_allowed(Some(bad), &[], true), "{bad}");
        }
    }

    #[test]
    fn bearer_tokens() {
        assert!(bearer_ok(Some(&hv("Bearer s3cret")), "s3cret"));
        assert!(bearer_ok(Some(&hv("bearer s3cret")), "s3cret"));
        assert!(!bearer_ok(Some(&hv("Bearer s3cre")), "s3cret"));
        assert!(!bearer_ok(Some(&hv("Basic s3cret")), "s3cret"));
        assert!(!bearer_ok(Some(&hv("Bear")), "s3cret"));
        assert!(!bearer_ok(None, "s3cret"));
    }

    #[test]
    fn content_types() {
        assert!(is_json_content_type(Some(&hv("application/json"))));
        assert!(is_json_content_type(Some(&hv(
            "Application/JSON; charset=utf-8"
        ))));
        assert!(!is_json_content_type(Some(&hv("text/plain"))));
        assert!(!is_json_content_type(None));
    }

    #[test]
    fn accept_negotiation() {
        use ReplyFormat::*;
        assert_eq!(negotiate(None), Some(Json));
        assert_eq!(negotiate(Some(&hv("*/*"))), Some(Json));
        assert_eq!(
            negotiate(Some(&hv("application/json, text/event-stream"))),
            Some(Json)
        );
        assert_eq!(negotiate(Some(&hv("text/event-stream"))), Some(EventStream));
        assert_eq!(
            negotiate(Some(&hv("application/json;q=0.5, text/event-stream"))),
            Some(EventStream)
        );
        assert_eq!(negotiate(Some(&hv("application/json"))), Some(Json));
        assert_eq!(negotiate(Some(&hv("text/html"))), None);
        assert_eq!(
            negotiate(Some(&hv("application/json;q=0, text/html"))),
            None
        );
        assert_eq!(
            negotiate(Some(&hv("text/*, application/xml"))),
            Some(EventStream)
        );
    }

    #[test]
    fn only_a_named_event_stream_may_be_streamed() {
        assert!(names_event_stream(Some(&hv(
            "application/json, text/event-stream"
        ))));
        assert!(names_event_stream(Some(&hv("text/*"))));
        assert!(!names_event_stream(None));
        assert!(!names_event_stream(Some(&hv("application/json"))));
        assert!(!names_event_stream(Some(&hv("*/*"))));
        assert!(!names_event_stream(Some(&hv(
            "application/json, text/event-stream;q=0"
        ))));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Any header value a client can send (visible ASCII, blanks, obs-text bytes).
    fn header_value() -> impl Strategy<Value = HeaderValue> {
        prop_oneof![
            prop::collection::vec(prop_oneof![0x20u8..0x7f, Just(b'\t'), 0x80u8..=0xff], 0..64),
            prop::collection::vec(
                prop::sample::select(vec![
                    "application/json",
                    "text/event-stream",
                    "*/*",
                    "text/*",
                    "application/*",
                    ";q=",
                    "0",
                    "1",
                    "0.5",
                    "NaN",
                    "inf",
                    "-1",
                    ",",
                    ";",
                    " ",
                    "Bearer ",
                    "bearer ",
                    "http://",
                    "https://",
                    "localhost",
                    "127.0.0.1",
                    "[::1]",
                    ":",
                    "/",
                    "]",
                    "[",
                ])
                .prop_map(|s| s.as_bytes().to_vec()),
                0..12,
            )
            .prop_map(|parts| parts.concat()),
        ]
        .prop_map(|bytes| HeaderValue::from_bytes(&bytes).unwrap_or(HeaderValue::from_static("")))
    }

    fn q() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "0", "0.0", "0.1", "0.5", "1", "1.0", "2", "-1", "NaN", "inf", "x",
        ])
    }

    /// The weight a `q=` value gives: unreadable or non-finite counts as absent (1), the rest is
    /// clamped to 0-1.
    fn weight(q: &str) -> f32 {
        q.parse::<f32>()
            .ok()
            .filter(|q| q.is_finite())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0)
    }

    #[test]
    fn a_weight_that_is_not_a_number_counts_as_absent() {
        // `q=NaN` once made the event stream lose to a JSON range the client refused.
        let accept = HeaderValue::from_static("application/json;q=0, text/event-stream;q=NaN");
        assert_eq!(negotiate(Some(&accept)), Some(ReplyFormat::EventStream));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn any_header_value_is_judged_without_panicking(
            value in header_value(),
            allowed in prop::collection::vec("[a-z:/.*0-9]{0,20}", 0..3),
            loopback in any::<bool>(),
        ) {
            let _ = origin_allowed(Some(&value), &allowed);
            let _ = origin_allowed(Some(&value), &[]);
            let _ = host_allowed(value.to_str().ok(), &allowed, loopback);
            let _ = bearer_ok(Some(&value), "s3cret");
            let _ = is_json_content_type(Some(&value));
            let _ = negotiate(Some(&value));
        }

        #[test]
        fn the_format_with_the_higher_weight_is_chosen(json_q in q(), sse_q in q(), sse_first in any::<bool>()) {
            let json = format!("application/json;q={json_q}");
            let sse = format!("text/event-stream;q={sse_q}");
            let accept = if sse_first { format!("{sse}, {json}") } else { format!("{json}, {sse}") };
            let (jw, sw) = (weight(json_q), weight(sse_q));
            let expected = if jw <= 0.0 && sw <= 0.0 {
                None
            } else if sw > jw {
                Some(ReplyFormat::EventStream)
            } else {
                Some(ReplyFormat::Json)
            };
            prop_assert_eq!(negotiate(Some(&HeaderValue::from_str(&accept).unwrap())), expected, "{}", accept);
        }

        #[test]
        fn only_the_expected_token_passes(token in "[!-~]{1,40}", expected in "[!-~]{1,40}", pad in "[ \t]{0,3}") {
            let value = HeaderValue::from_str(&format!("Bearer {pad}{token}{pad}")).unwrap();
            prop_assert_eq!(bearer_ok(Some(&value), &expected), token == expected);
            prop_assert!(bearer_ok(Some(&value), &token));
        }

        #[test]
        fn loopback_hosts_pass_and_others_do_not_on_a_loopback_listener(
            b in any::<u8>(), c in any::<u8>(), d in any::<u8>(),
            port in prop::option::of(any::<u16>()),
            other in "[a-z]{1,12}\\.(example|com|internal)",
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let (ip, name, foreign) = (
                format!("127.{b}.{c}.{d}{port}"),
                format!("localhost{port}"),
                format!("{other}{port}"),
            );
            prop_assert!(host_allowed(Some(&ip), &[], true), "{}", ip);
            prop_assert!(host_allowed(Some(&name), &[], true), "{}", name);
            prop_assert!(!host_allowed(Some(&foreign), &[], true), "{}", foreign);
        }
    }
}
