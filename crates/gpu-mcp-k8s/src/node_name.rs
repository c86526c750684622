//! [`NodeName`]: a Kubernetes node name, checked once against the API server's rule.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, truncate};

/// Longest Kubernetes node name (DNS-1123 subdomain).
pub const MAX_NODE_NAME_LEN: usize = 253;

/// The DNS-1123 subdomain pattern, as written into a JSON schema.
pub const NODE_NAME_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// A valid Kubernetes node name: a DNS-1123 subdomain of 1 to 253 characters, lowercase
/// alphanumerics, `-` and `.`, every dot-separated part non-empty and starting and ending with an
/// alphanumeric (the API server's rule; unlike DNS labels, parts are not limited to 63).
///
/// The rule is stricter than needed to stop path traversal (`../`), shell metacharacters (`;`)
/// and header or log injection (newlines): none of those characters can pass. A `NodeName` can
/// only be built through [`TryFrom`] or [`FromStr`], so holding one means the check is done.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct NodeName(String);

impl NodeName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Why `name` is not a DNS-1123 subdomain, worded without repeating the name.
fn problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".to_owned());
    }
    if name.len() > MAX_NODE_NAME_LEN {
        return Some(format!(
            "it is {} bytes long, the limit is {MAX_NODE_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Some(format!(
            "it contains {bad:?}; only lowercase letters, digits, '-' and '.' are allowed"
        ));
    }
    for part in name.split('.') {
        if part.is_empty() {
            return Some("it has an empty part between dots".to_owned());
        }
        if part.starts_with('-') || part.ends_with('-') {
            return Some("it has a part that starts or ends with '-'".to_owned());
        }
    }
    None
}

impl TryFrom<String> for NodeName {
    type Error = Error;

    fn try_from(name: String) -> Result<Self, Error> {
        match problem(&name) {
            None => Ok(NodeName(name)),
            Some(reason) => Err(Error::InvalidNodeName {
                name: truncate(&name),
                reason,
            }),
        }
    }
}

impl TryFrom<&str> for NodeName {
    type Error = Error;

    fn try_from(name: &str) -> Result<Self, Error> {
        match problem(name) {
            None => Ok(NodeName(name.to_owned())),
            Some(reason) => Err(Error::InvalidNodeName {
                name: truncate(name),
                reason,
            }),
        }
    }
}

impl FromStr for NodeName {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        NodeName::try_from(name)
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for NodeName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for NodeName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for NodeName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for NodeName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<NodeName> for String {
    fn from(name: NodeName) -> String {
        name.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str) -> bool {
        NodeName::try_from(name).is_ok()
    }

    fn reason(name: &str) -> String {
        NodeName::try_from(name).unwrap_err().to_string()
    }

    #[test]
    fn accepts_dns1123_subdomains() {
        for name in [
            "a",
            "0",
            "0abc",
            "a.b.c",
            "node-1",
            "gpu-node-1",
            "gpu-node-1.example.com",
            "ip-10-0-1-5.ec2.internal",
            &"a".repeat(63),
            &"a".repeat(253),
            &format!(
                "{}.{}.{}.{}",
                "a".repeat(63),
                "b".repeat(63),
                "c".repeat(63),
                "d".repeat(61)
            ),
        ] {
            assert!(ok(name), "{name}");
        }
        let name = NodeName::try_from("gpu-node-1").unwrap();
        assert_eq!(name.as_str(), "gpu-node-1");
        assert_eq!(name, "gpu-node-1");
        assert_eq!(name.to_string(), "gpu-node-1");
        assert_eq!("gpu-node-1".parse::<NodeName>().unwrap(), name);
        assert_eq!(
            NodeName::try_from(String::from("gpu-node-1")).unwrap(),
            name
        );
        assert_eq!(serde_json::to_value(&name).unwrap(), "gpu-node-1");
    }

    #[test]
    fn refuses_bad_names_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("Node", "'N'"),
            ("Gpu-Node", "'G'"),
            ("../etc/passwd", "'/'"),
            ("../etc", "'/'"),
            ("node;rm -rf /", "';'"),
            ("node\nInjected: 1", "'\\n'"),
            ("node with space", "' '"),
            ("a b", "' '"),
            ("a_b", "'_'"),
            ("-a", "starts or ends"),
            ("-node", "starts or ends"),
            ("a-", "starts or ends"),
            ("node-", "starts or ends"),
            ("a..b", "empty part"),
            (".a", "empty part"),
            ("a.", "empty part"),
            ("nöde", "'ö'"),
        ];
        for (name, needle) in cases {
            let err = NodeName::try_from(name).unwrap_err();
            assert!(matches!(err, Error::InvalidNodeName { .. }), "{name:?}");
            let text = err.to_string();
            assert!(text.contains(needle), "{name:?}: {text}");
            assert!(!text.contains('\n'), "raw newline echoed: {text}");
        }
        let long = reason(&"a".repeat(254));
        assert!(long.contains("254 bytes"), "{long}");
        assert!(long.contains("253"), "{long}");
    }

    /// The API server's rule for node names: a DNS-1123 subdomain with no per-label length
    /// limit, so a 64-character part is fine and 254 characters are not.
    #[test]
    fn follows_the_api_server_rule() {
        let long_label = "a".repeat(64);
        let too_long = "a".repeat(254);
        for (name, valid) in [
            ("gpu-node-1", true),
            ("ip-10-0-1-5.ec2.internal", true),
            (long_label.as_str(), true),
            (too_long.as_str(), false),
            ("", false),
            ("Gpu", false),
            ("-a", false),
            ("a-", false),
            ("a..b", false),
            (".a", false),
            ("a.", false),
            ("../x", false),
            ("a;b", false),
            ("a\nb", false),
            ("nöde", false),
            ("a_b", false),
        ] {
            assert_eq!(ok(name), valid, "{name:?}");
        }
    }
}
