//! MCP protocol revisions and negotiation.
//!
//! # Policy
//!
//! - The handshake revisions 2024-11-05, 2025-03-26, 2025-06-18 and 2025-11-25 are negotiated
//!   through `initialize`: a requested revision we speak is answered with itself; anything else
//!   (an unknown string, a future revision, or 2026-07-28, which has no handshake but which some
//!   clients still send in `initialize`) is answered with [`ProtocolVersion::LATEST_HANDSHAKE`],
//!   never refused, so the client decides whether it can continue.
//! - 2026-07-28 is stateless: each request names its revision in the `params._meta` envelope
//!   (see [`crate::envelope`]).
//! - What a revision may carry is answered by the `supports_*` methods, so the server core can
//!   strip fields an older client does not know.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::mcp::methods;

/// A protocol revision this server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    /// 2024-11-05
    V2024_11_05,
    /// 2025-03-26
    V2025_03_26,
    /// 2025-06-18
    V2025_06_18,
    /// 2025-11-25 (latest revision with the `initialize` handshake)
    V2025_11_25,
    /// 2026-07-28 (stateless per-request `_meta` envelope, `server/discover`)
    V2026_07_28,
}

impl ProtocolVersion {
    /// Every supported revision, oldest first.
    pub const ALL: [ProtocolVersion; 5] = [
        Self::V2024_11_05,
        Self::V2025_03_26,
        Self::V2025_06_18,
        Self::V2025_11_25,
        Self::V2026_07_28,
    ];
    /// The newest revision negotiated through `initialize`.
    pub const LATEST_HANDSHAKE: ProtocolVersion = Self::V2025_11_25;
    /// The newest revision.
    pub const LATEST: ProtocolVersion = Self::V2026_07_28;

    /// The wire string, e.g. `"2025-11-25"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V2024_11_05 => "2024-11-05",
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
            Self::V2026_07_28 => "2026-07-28",
        }
    }

    /// Parses a wire string; `None` for a revision this server does not speak.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Every supported wire string, newest first (the order of `server/discover`'s
    /// `supportedVersions` and of `-32022`'s `data.supported`).
    pub fn supported_strs() -> [&'static str; 5] {
        let mut out = Self::ALL.map(Self::as_str);
        out.reverse();
        out
    }

    /// The answer to `initialize {protocolVersion: requested}`: `requested` itself when it is a
    /// handshake revision we speak, otherwise [`Self::LATEST_HANDSHAKE`].
    pub fn negotiate(requested: &str) -> Self {
        match Self::parse(requested) {
            Some(v) if v.uses_handshake() => v,
            _ => Self::LATEST_HANDSHAKE,
        }
    }

    /// Whether this revision uses the `initialize` handshake (everything before 2026-07-28).
    pub fn uses_handshake(self) -> bool {
        self < Self::V2026_07_28
    }

    /// Whether requests over HTTP carry the standard headers `Mcp-Method` and `Mcp-Name`, which
    /// a server must check against the body (2026-07-28+).
    pub fn uses_standard_headers(self) -> bool {
        self >= Self::V2026_07_28
    }

    /// Whether list results (`tools/list`) carry the cache hints `ttlMs` and `cacheScope`
    /// (2026-07-28+).
    pub fn supports_cache_hints(self) -> bool {
        self >= Self::V2026_07_28
    }

    /// Whether tools and server info may carry `title` (2025-06-18+).
    pub fn supports_title(self) -> bool {
        self >= Self::V2025_06_18
    }

    /// Whether tools may carry `outputSchema` and results `structuredContent` (2025-06-18+).
    pub fn supports_structured_content(self) -> bool {
        self >= Self::V2025_06_18
    }

    /// Whether this revision has the request `method`: 2026-07-28 removed `initialize`, `ping`
    /// and `logging/setLevel` (a client opts in to log messages per request instead).
    pub fn has_method(self, method: &str) -> bool {
        self.uses_handshake()
            || !matches!(
                method,
                methods::INITIALIZE | methods::PING | methods::LOGGING_SET_LEVEL
            )
    }

    /// Whether a request may opt in to log messages in its own `_meta`
    /// ([`crate::envelope::META_LOG_LEVEL`]) instead of `logging/setLevel` (2026-07-28+).
    pub fn supports_request_log_level(self) -> bool {
        self >= Self::V2026_07_28
    }

    /// Whether a resource that does not exist is `-32602` (invalid params, SEP-2164) rather
    /// than the older `-32002` (2026-07-28+); both carry `data: {uri}`.
    pub fn resource_not_found_is_invalid_params(self) -> bool {
        self >= Self::V2026_07_28
    }

    /// Whether tools may carry `annotations` (2025-03-26+).
    pub fn supports_tool_annotations(self) -> bool {
        self >= Self::V2025_03_26
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProtocolVersion {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| crate::Error::UnsupportedVersion(s.to_owned()))
    }
}

impl Serialize for ProtocolVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProtocolVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format_args!("unsupported protocol version {s:?}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_2026_07_28_drops_the_handshake_methods() {
        for m in [
            methods::INITIALIZE,
            methods::PING,
            methods::LOGGING_SET_LEVEL,
        ] {
            assert!(!ProtocolVersion::V2026_07_28.has_method(m), "{m}");
            assert!(ProtocolVersion::V2025_11_25.has_method(m), "{m}");
        }
        assert!(ProtocolVersion::V2026_07_28.has_method(methods::TOOLS_CALL));
        assert!(ProtocolVersion::V2026_07_28.supports_request_log_level());
        assert!(!ProtocolVersion::V2025_11_25.supports_request_log_level());
    }

    #[test]
    fn wire_strings_round_trip() {
        for v in ProtocolVersion::ALL {
            assert_eq!(ProtocolVersion::parse(v.as_str()), Some(v));
            assert_eq!(v.as_str().parse::<ProtocolVersion>().unwrap(), v);
            assert_eq!(v.to_string(), v.as_str());
        }
        assert!("2099-01-01".parse::<ProtocolVersion>().is_err());
    }

    #[test]
    fn negotiation_answers_known_handshake_versions_with_themselves() {
        for v in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
            assert_eq!(ProtocolVersion::negotiate(v).as_str(), v);
        }
    }

    #[test]
    fn negotiation_answers_unknown_or_newer_with_latest_handshake() {
        for v in ["2026-07-28", "2099-12-31", "", "garbage", "2024-01-01"] {
            assert_eq!(
                ProtocolVersion::negotiate(v),
                ProtocolVersion::V2025_11_25,
                "{v}"
            );
        }
    }

    #[test]
    fn feature_gates_follow_the_revisions() {
        use ProtocolVersion::*;
        assert!(!V2024_11_05.supports_tool_annotations());
        assert!(V2025_03_26.supports_tool_annotations());
        assert!(!V2025_03_26.supports_structured_content());
        assert!(!V2025_03_26.supports_title());
        assert!(V2025_06_18.supports_structured_content());
        assert!(V2025_06_18.supports_title());
        assert!(V2025_11_25.uses_handshake());
        assert!(!V2026_07_28.uses_handshake());
    }

    #[test]
    fn supported_list_is_newest_first() {
        assert_eq!(
            ProtocolVersion::supported_strs(),
            [
                "2026-07-28",
                "2025-11-25",
                "2025-06-18",
                "2025-03-26",
                "2024-11-05"
            ]
        );
    }

    #[test]
    fn serde_uses_wire_strings() {
        let v: ProtocolVersion = serde_json::from_str("\"2025-06-18\"").unwrap();
        assert_eq!(v, ProtocolVersion::V2025_06_18);
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"2025-06-18\"");
        assert!(serde_json::from_str::<ProtocolVersion>("\"1999-01-01\"").is_err());
    }
}
