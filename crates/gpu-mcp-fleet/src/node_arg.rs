//! The `node` argument: extraction from tool arguments, validation as a Kubernetes node name
//! (DNS-1123 subdomain) and the closest-match suggestion for unknown names.

use gpu_mcp_protocol::JsonObject;
use serde_json::Value;

use crate::error::{Error, Result};

/// Name of the argument the gateway adds to every GPU tool.
pub const NODE_ARGUMENT: &str = "node";

/// Longest Kubernetes node name (DNS-1123 subdomain).
pub const MAX_NODE_NAME_LEN: usize = 253;

/// The DNS-1123 subdomain pattern, as written into the `node` property's JSON schema.
pub const NODE_NAME_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// How many characters of a refused name an error message quotes.
const QUOTE_LIMIT: usize = 64;

/// Quotes a client-supplied value for an error message: escaped (no raw newlines or control
/// characters) and cut to a readable length.
pub(crate) fn quote(value: &str) -> String {
    let mut cut: String = value.chars().take(QUOTE_LIMIT).collect();
    if cut.len() < value.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// Checks that `name` is a DNS-1123 subdomain: 1 to 253 characters, lowercase alphanumerics,
/// `-` and `.`, every dot-separated part non-empty and starting and ending with an alphanumeric
/// (the API server's rule for node names; unlike DNS labels, parts are not limited to 63).
///
/// This is stricter than needed to stop path traversal (`../`), shell metacharacters (`;`) and
/// header or log injection (newlines): none of those characters can pass.
pub fn validate_node_name(name: &str) -> Result<()> {
    let invalid = |reason: String| {
        Err(Error::InvalidNodeName {
            given: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("it is empty".into());
    }
    if name.len() > MAX_NODE_NAME_LEN {
        return invalid(format!(
            "it is {} bytes long, the limit is {MAX_NODE_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return invalid(format!(
            "{} contains {bad:?}; only lowercase letters, digits, '-' and '.' are allowed",
            quote(name)
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return invalid(format!("{} has an empty part between dots", quote(name)));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return invalid(format!(
                "{} has a part that starts or ends with '-'",
                quote(name)
            ));
        }
    }
    Ok(())
}

/// Removes the `node` argument from `arguments` and validates it.
///
/// `Ok(None)` when it is absent or `null` (fan-out); `Ok(Some(name))` for a valid name; an error
/// for anything else. The remaining arguments are what the agent receives.
pub fn take_node_argument(arguments: &mut Option<JsonObject>) -> Result<Option<String>> {
    let Some(value) = arguments.as_mut().and_then(|a| a.remove(NODE_ARGUMENT)) else {
        return Ok(None);
    };
    match value {
        Value::Null => Ok(None),
        Value::String(name) => {
            validate_node_name(&name)?;
            Ok(Some(name))
        }
        other => Err(Error::NodeNotString {
            found: json_type(&other),
        }),
    }
}

/// The JSON type name of a value, for messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The known name most similar to `name`, if any is plausibly what was meant.
///
/// Similarity is the edit distance between lowercased names; a candidate qualifies when the
/// distance is at most a third of the longer name (at least 2), or when one name contains the
/// other. Ties go to the alphabetically first candidate, so the answer is stable.
pub fn closest_match<'a, I>(name: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let wanted = name.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let lower = candidate.to_ascii_lowercase();
        let distance = edit_distance(&wanted, &lower);
        let longest = wanted.chars().count().max(lower.chars().count());
        let contains = !wanted.is_empty() && (lower.contains(&wanted) || wanted.contains(&lower));
        if distance > (longest / 3).max(2) && !contains {
            continue;
        }
        let better = match best {
            None => true,
            Some((d, c)) => distance < d || (distance == d && candidate < c),
        };
        if better {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Option<JsonObject> {
        v.as_object().cloned()
    }

    #[test]
    fn accepts_dns1123_subdomains() {
        for ok in [
            "gpu-node-1",
            "a",
            "0",
            "ip-10-0-1-5.ec2.internal",
            &"a".repeat(63),
            &format!(
                "{}.{}.{}.{}",
                "a".repeat(63),
                "b".repeat(63),
                "c".repeat(63),
                "d".repeat(61)
            ),
        ] {
            assert_eq!(validate_node_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_bad_names_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("Gpu-Node", "'G'"),
            ("../etc/passwd", "'/'"),
            ("node;rm -rf /", "';'"),
            ("node\nInjected: 1", "'\\n'"),
            ("node with space", "' '"),
            ("-node", "starts or ends"),
            ("node-", "starts or ends"),
            ("a..b", "empty part"),
            (".a", "empty part"),
            ("nöde", "'ö'"),
        ];
        for (name, needle) in cases {
            let err = validate_node_name(name).unwrap_err().to_string();
            assert!(err.contains(needle), "{name:?}: {err}");
            assert!(!err.contains('\n'), "raw newline echoed: {err}");
        }
        let long = "a".repeat(254);
        assert!(
            validate_node_name(&long)
                .unwrap_err()
                .to_string()
                .contains("254 bytes")
        );
    }

    /// The gateway refuses a `node` before routing with its own, more detailed messages; the
    /// Kubernetes layer validates again before any request leaves. Both must follow the API
    /// server's rule for node names (a DNS-1123 subdomain, with no per-label length limit), so a
    /// name one accepts is never refused by the other.
    #[test]
    fn agrees_with_the_kubernetes_layer() {
        let long_label = "a".repeat(64);
        let too_long = "a".repeat(254);
        for name in [
            "gpu-node-1",
            "ip-10-0-1-5.ec2.internal",
            long_label.as_str(),
            too_long.as_str(),
            "",
            "Gpu",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a.",
            "../x",
            "a;b",
            "a\nb",
            "nöde",
            "a_b",
        ] {
            assert_eq!(
                validate_node_name(name).is_ok(),
                gpu_mcp_k8s::validate_node_name(name).is_ok(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn take_node_argument_removes_and_validates() {
        let mut a = args(json!({"node": "gpu-node-1", "include_processes": true}));
        assert_eq!(take_node_argument(&mut a), Ok(Some("gpu-node-1".into())));
        assert_eq!(a, args(json!({"include_processes": true})));

        let mut none = None;
        assert_eq!(take_node_argument(&mut none), Ok(None));
        let mut null = args(json!({"node": null}));
        assert_eq!(take_node_argument(&mut null), Ok(None));
        assert_eq!(null, args(json!({})));

        let mut number = args(json!({"node": 5}));
        assert_eq!(
            take_node_argument(&mut number),
            Err(Error::NodeNotString { found: "a number" })
        );
        let mut bad = args(json!({"node": "../x"}));
        assert!(matches!(
            take_node_argument(&mut bad),
            Err(Error::InvalidNodeName { .. })
        ));
    }

    #[test]
    fn quote_escapes_and_truncates() {
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
        let q = quote(&"x".repeat(500));
        assert!(q.len() < 80, "{q}");
        assert!(q.contains('…'));
    }

    #[test]
    fn closest_match_suggests_near_names() {
        let known = ["gpu-node-1", "gpu-node-2", "gpu-node-10", "cpu-worker"];
        assert_eq!(closest_match("gpu-node-3", known), Some("gpu-node-1"));
        assert_eq!(closest_match("GPU-Node-2", known), Some("gpu-node-2"));
        assert_eq!(closest_match("gpu-nod-10", known), Some("gpu-node-10"));
        assert_eq!(closest_match("node-10", known), Some("gpu-node-10"));
        assert_eq!(closest_match("cpu-workr", known), Some("cpu-worker"));
        assert_eq!(closest_match("database-primary", known), None);
        assert_eq!(closest_match("x", Vec::<&str>::new()), None);
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("gpu-node-1", "gpu-node-1"), 0);
    }
}
