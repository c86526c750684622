//! The `node` argument: extraction from tool arguments (checked as a [`NodeName`], the one
//! rule for node names) and the closest-match suggestion for unknown names.

use gpu_mcp_k8s::NodeName;
use gpu_mcp_protocol::JsonObject;
use serde_json::Value;

use crate::error::{Error, Result};

/// Name of the argument the gateway adds to every GPU tool.
pub(crate) const NODE_ARGUMENT: &str = "node";

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

/// Removes the `node` argument from `arguments` and checks it as a [`NodeName`].
///
/// `Ok(None)` when it is absent or `null` (fan-out); `Ok(Some(name))` for a valid name; an error
/// for anything else. The remaining arguments are what the agent receives.
pub(crate) fn take_node_argument(arguments: &mut Option<JsonObject>) -> Result<Option<NodeName>> {
    let Some(value) = arguments.as_mut().and_then(|a| a.remove(NODE_ARGUMENT)) else {
        return Ok(None);
    };
    match value {
        Value::Null => Ok(None),
        Value::String(name) => match NodeName::try_from(name.as_str()) {
            Ok(node) => Ok(Some(node)),
            Err(gpu_mcp_k8s::Error::InvalidNodeName { reason, .. }) => {
                Err(Error::InvalidNodeName {
                    given: name,
                    reason,
                })
            }
            Err(other) => Err(Error::InvalidNodeName {
                given: name,
                reason: other.to_string(),
            }),
        },
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
pub(crate) fn closest_match<'a, I>(name: &str, candidates: I) -> Option<&'a str>
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

    /// The wording a client sees: what is wrong, never a raw newline of the given value.
    #[test]
    fn refused_names_say_why() {
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
            let mut a = args(json!({ "node": name }));
            let err = take_node_argument(&mut a).unwrap_err().to_string();
            assert!(err.contains(needle), "{name:?}: {err}");
            assert!(err.contains("`node`"), "{name:?}: {err}");
            assert!(!err.contains('\n'), "raw newline echoed: {err}");
        }
        let mut long = args(json!({ "node": "a".repeat(254) }));
        let err = take_node_argument(&mut long).unwrap_err().to_string();
        assert!(err.contains("254 bytes"), "{err}");
    }

    #[test]
    fn take_node_argument_removes_and_validates() {
        let mut a = args(json!({"node": "gpu-node-1", "include_processes": true}));
        assert_eq!(
            take_node_argument(&mut a),
            Ok(Some(NodeName::try_from("gpu-node-1").unwrap()))
        );
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
