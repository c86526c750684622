//! The arguments the gateway itself answers for (`detail`, `min_verdict`, `node_pattern`,
//! `node_limit`, `cursor`): taken out of the call before it is forwarded, so the agents never see
//! the client's values, and checked once here. A fan-out answers them itself (and adds its own
//! `detail` and `min_verdict` where they narrow what an agent sends, see `narrow`); a call with
//! `node` turns `detail` and `min_verdict` into that agent's own arguments (see `single`).

use std::cmp::Reverse;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gpu_mcp_model::output::Verdict;
use gpu_mcp_protocol::JsonObject;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// The most nodes one page details.
pub(crate) const MAX_NODE_LIMIT: u32 = 500;
/// Nodes detailed per page by default.
pub(crate) const DEFAULT_NODE_LIMIT: u32 = 20;
/// The longest `node_pattern` accepted (a node name is at most 253 characters).
const MAX_PATTERN_LEN: usize = 253;

/// How much a fan-out answer details.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Detail {
    /// Totals only: nodes and GPUs by verdict, failed nodes, top Xids.
    Summary,
    /// The totals, then every node that needs attention (worst first) with its findings.
    #[default]
    Problems,
    /// The totals, then every node's full answer, a page at a time.
    Full,
}

impl Detail {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Summary => "summary",
            Self::Problems => "problems",
            Self::Full => "full",
        }
    }
}

/// The gateway's own arguments of every GPU tool, as the client sends them.
///
/// The descriptions of `detail` and `min_verdict` say what they do without `node`; each tool's
/// definition adds what they do with `node` for that tool (`single::with_node_words`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub(crate) struct FleetArgsInput {
    /// How much the answer details. Without `node`: `problems` (default) the fleet summary, then
    /// only the nodes that need attention, worst first, each with its findings and actions;
    /// `summary` the totals only; `full` every node's complete answer, a page of `node_limit`
    /// nodes at a time.
    #[serde(default)]
    pub detail: Option<Detail>,
    /// Without `node`: the mildest verdict detailed under `problems` (default `warning`);
    /// `degraded` or `critical` leave out milder findings.
    #[serde(default)]
    pub min_verdict: Option<Verdict>,
    /// Without `node` only (refused with `node`). Ask only the nodes whose name matches this
    /// pattern (`*` any characters, `?` one character), for example `gpu-a100-*`.
    #[serde(default)]
    #[schemars(length(min = 1, max = 253))]
    pub node_pattern: Option<String>,
    /// Without `node` only (refused with `node`). The most nodes one answer details (default 20,
    /// at most 500); the answer also stops early to stay small, and says so.
    #[serde(default)]
    #[schemars(range(min = 1, max = 500))]
    pub node_limit: Option<u32>,
    /// Without `node` only (refused with `node`). The `next_cursor` of a previous answer, to get
    /// the next page (pass the same other arguments).
    #[serde(default)]
    #[schemars(length(min = 1, max = 1024))]
    pub cursor: Option<String>,
}

/// The names of [`FleetArgsInput`]'s properties.
pub(crate) const FLEET_ARGUMENTS: [&str; 5] = [
    "detail",
    "min_verdict",
    "node_pattern",
    "node_limit",
    "cursor",
];

/// The checked arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FleetArgs {
    pub detail: Detail,
    pub min_verdict: Verdict,
    pub node_pattern: Option<NodePattern>,
    pub node_limit: usize,
    pub cursor: Option<String>,
}

impl Default for FleetArgs {
    fn default() -> Self {
        Self {
            detail: Detail::Problems,
            min_verdict: Verdict::Warning,
            node_pattern: None,
            node_limit: DEFAULT_NODE_LIMIT as usize,
            cursor: None,
        }
    }
}

/// Removes the gateway's own arguments from `arguments` and reads them (their types and values);
/// the error is the message for the client. What they mean depends on `node`: see
/// [`FleetArgsInput::for_fan_out`] and `single::node_arguments`.
pub(crate) fn take_fleet_input(
    arguments: &mut Option<JsonObject>,
) -> Result<FleetArgsInput, String> {
    let mut own = serde_json::Map::new();
    if let Some(args) = arguments.as_mut() {
        for name in FLEET_ARGUMENTS {
            if let Some(v) = args.remove(name).filter(|v| !v.is_null()) {
                own.insert(name.to_owned(), v);
            }
        }
    }
    serde_json::from_value(Value::Object(own)).map_err(|e| format!("Invalid argument: {e}."))
}

impl FleetArgsInput {
    /// The arguments of a fan-out, checked, with their defaults.
    pub(crate) fn for_fan_out(self) -> Result<FleetArgs, String> {
        let node_limit = node_limit(self.node_limit, DEFAULT_NODE_LIMIT, MAX_NODE_LIMIT)?;
        let node_pattern = self
            .node_pattern
            .map(|p| NodePattern::new(&p))
            .transpose()?;
        if self
            .cursor
            .as_ref()
            .is_some_and(|c| c.is_empty() || c.len() > 1024)
        {
            return Err(
                "Invalid argument `cursor`: pass the `next_cursor` of a previous answer.".into(),
            );
        }
        Ok(FleetArgs {
            detail: self.detail.unwrap_or_default(),
            min_verdict: self.min_verdict.unwrap_or(Verdict::Warning),
            node_pattern,
            node_limit,
            cursor: self.cursor,
        })
    }
}

/// A `node_limit` argument checked against `1..=max` (`default` when absent).
pub(crate) fn node_limit(given: Option<u32>, default: u32, max: u32) -> Result<usize, String> {
    let limit = given.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit as usize)
    } else {
        Err(format!(
            "Invalid argument `node_limit`: {limit} is outside 1-{max}."
        ))
    }
}

/// A node-name pattern: `*` matches any run of characters, `?` exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodePattern(Vec<char>);

impl NodePattern {
    pub(crate) fn new(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() || pattern.len() > MAX_PATTERN_LEN {
            return Err(format!(
                "Invalid argument `node_pattern`: give 1-{MAX_PATTERN_LEN} characters."
            ));
        }
        if let Some(bad) = pattern
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*' | '?')))
        {
            return Err(format!(
                "Invalid argument `node_pattern`: {bad:?} cannot occur in a node name; use \
                 lowercase letters, digits, '-', '.', and the wildcards '*' and '?'."
            ));
        }
        Ok(Self(pattern.to_ascii_lowercase().chars().collect()))
    }

    /// Whether `name` matches (node names are lowercase).
    pub(crate) fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        // Iterative wildcard match: linear in practice, no recursion on client input.
        let (p, n) = (&self.0, &name);
        let (mut pi, mut ni) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while ni < n.len() {
            // A `*` is a wildcard even where the name has a `*` at that place.
            if pi < p.len() && p[pi] == '*' {
                star = Some((pi, ni));
                pi += 1;
            } else if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
                pi += 1;
                ni += 1;
            } else if let Some((sp, sn)) = star {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|c| *c == '*')
    }

    /// The pattern as given (lowercased).
    pub(crate) fn as_string(&self) -> String {
        self.0.iter().collect()
    }
}

/// A page position: the last (rank, node) of the previous page, in the section's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub section: char,
    pub rank: u8,
    pub node: String,
}

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}|{}", self.section, self.rank, self.node))
    }

    pub(crate) fn decode(text: &str, section: char) -> Result<Self, String> {
        let bad = || {
            "Invalid argument `cursor`: it is not a `next_cursor` of this tool's answer with this \
             `detail`; start again without `cursor`."
                .to_owned()
        };
        let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let mut parts = raw.splitn(3, '|');
        let (Some(s), Some(r), Some(node)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let cursor = Self {
            section: s.chars().next().ok_or_else(bad)?,
            rank: r.parse().map_err(|_| bad())?,
            node: node.to_owned(),
        };
        if cursor.section != section || s.len() != 1 {
            return Err(bad());
        }
        Ok(cursor)
    }

    /// Whether an item at (rank, node) in worst-first order comes after this cursor.
    pub(crate) fn before_worst_first(&self, rank: u8, node: &str) -> bool {
        (Reverse(self.rank), self.node.as_str()) < (Reverse(rank), node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn take(v: Value) -> (Result<FleetArgs, String>, Option<JsonObject>) {
        let mut args = v.as_object().cloned();
        let r = take_fleet_input(&mut args).and_then(FleetArgsInput::for_fan_out);
        (r, args)
    }

    #[test]
    fn defaults_and_the_rest_left_for_the_agent() {
        let (r, rest) = take(json!({"gpu_index": 2, "detail": null}));
        assert_eq!(r.unwrap(), FleetArgs::default());
        assert_eq!(rest.unwrap(), *json!({"gpu_index": 2}).as_object().unwrap());
    }

    #[test]
    fn every_argument_is_checked() {
        let (r, rest) = take(json!({"detail": "full", "min_verdict": "critical",
            "node_pattern": "GPU-a-*", "node_limit": 7, "cursor": "abc", "since": "1h"}));
        let r = r.unwrap();
        assert_eq!(r.detail, Detail::Full);
        assert_eq!(r.min_verdict, Verdict::Critical);
        assert_eq!(r.node_limit, 7);
        assert_eq!(r.cursor.as_deref(), Some("abc"));
        assert!(r.node_pattern.unwrap().matches("gpu-a-17"));
        assert_eq!(rest.unwrap().len(), 1);
        for bad in [
            json!({"detail": "everything"}),
            json!({"min_verdict": "ok"}),
            json!({"node_limit": 0}),
            json!({"node_limit": 501}),
            json!({"node_limit": "5"}),
            json!({"node_pattern": "a b"}),
            json!({"node_pattern": ""}),
            json!({"cursor": ""}),
        ] {
            assert!(take(bad.clone()).0.is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_other_sections_and_junk() {
        let c = Cursor {
            section: 'p',
            rank: 3,
            node: "gpu-7".into(),
        };
        assert_eq!(Cursor::decode(&c.encode(), 'p').unwrap(), c);
        assert!(Cursor::decode(&c.encode(), 'f').is_err());
        for junk in ["", "!!", "cA", "p|x|n"] {
            assert!(Cursor::decode(junk, 'p').is_err(), "{junk}");
        }
        assert!(c.before_worst_first(3, "gpu-8"));
        assert!(c.before_worst_first(2, "gpu-1"));
        assert!(!c.before_worst_first(3, "gpu-7"));
        assert!(!c.before_worst_first(3, "gpu-6"));
    }

    #[test]
    fn wildcards_match_like_a_shell() {
        let p = |s: &str| NodePattern::new(s).unwrap();
        assert!(p("*").matches("anything"));
        assert!(p("gpu-?").matches("gpu-1"));
        assert!(!p("gpu-?").matches("gpu-10"));
        assert!(p("*-a100-*").matches("rack3-a100-07"));
        assert!(!p("*-a100-*").matches("rack3-h100-07"));
        assert!(p("node-1*").matches("node-1"));
        assert!(!p("node-1").matches("node-10"));
        assert!(p("a*b*c").matches("aXXbYYc"));
        assert!(!p("a*b*c").matches("aXXbYY"));
        // A star facing a literal `*` in the name still matches any run.
        assert!(p("?*").matches("x*y"));
        assert!(p("a*").matches("a*b"));
        let long = "*".repeat(200);
        assert!(p(&long).matches(&"x".repeat(253)));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A plain recursive shell-glob match, to check the iterative one against.
    fn reference(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| reference(rest, &n[i..])),
            Some((c, rest)) => n
                .split_first()
                .is_some_and(|(m, tail)| (*c == '?' || c == m) && reference(rest, tail)),
        }
    }

    /// 256 cases, or `PROPTEST_CASES` for a longer hunt.
    fn config() -> ProptestConfig {
        let mut config = ProptestConfig::default();
        if std::env::var_os("PROPTEST_CASES").is_none() {
            config.cases = 256;
        }
        config
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn cursors_round_trip(
            section in prop::sample::select(vec!['p', 'f', 'l']),
            rank in any::<u8>(),
            node in any::<String>(),
        ) {
            let cursor = Cursor { section, rank, node };
            prop_assert_eq!(Cursor::decode(&cursor.encode(), section), Ok(cursor.clone()));
            for other in ['p', 'f', 'l'].into_iter().filter(|s| *s != section) {
                prop_assert!(Cursor::decode(&cursor.encode(), other).is_err());
            }
        }

        #[test]
        fn any_cursor_text_is_decoded_or_refused_without_panicking(
            text in prop_oneof![
                any::<String>(),
                prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
                (any::<String>(), any::<String>(), any::<String>())
                    .prop_map(|(a, b, c)| URL_SAFE_NO_PAD.encode(format!("{a}|{b}|{c}"))),
            ],
            section in prop::sample::select(vec!['p', 'f', 'l']),
        ) {
            if let Ok(cursor) = Cursor::decode(&text, section) {
                prop_assert_eq!(cursor.section, section);
            }
        }

        #[test]
        fn any_pattern_is_checked_without_panicking(pattern in any::<String>()) {
            let valid = !pattern.is_empty()
                && pattern.len() <= MAX_PATTERN_LEN
                && pattern
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*' | '?'));
            prop_assert_eq!(NodePattern::new(&pattern).is_ok(), valid);
        }

        #[test]
        fn the_glob_matches_like_the_reference(
            pattern in "[ab*?]{1,10}",
            name in prop_oneof!["[ab]{0,12}", any::<String>()],
        ) {
            let glob = NodePattern::new(&pattern).unwrap();
            let p: Vec<char> = pattern.chars().collect();
            let n: Vec<char> = name.chars().collect();
            prop_assert_eq!(glob.matches(&name), reference(&p, &n), "{} ~ {}", pattern, name);
        }

        #[test]
        fn a_name_matches_itself_and_any_star_pattern(name in "[a-z0-9][a-z0-9.-]{0,60}") {
            prop_assert!(NodePattern::new(&name).unwrap().matches(&name));
            let starred: String = name.chars().flat_map(|c| ['*', c]).collect();
            prop_assert!(NodePattern::new(&starred).unwrap().matches(&name));
            prop_assert!(NodePattern::new("*").unwrap().matches(&name));
        }

        #[test]
        fn any_arguments_are_taken_without_panicking(
            members in prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(FLEET_ARGUMENTS.to_vec()).prop_map(str::to_owned),
                        "[a-z_]{1,10}",
                    ],
                    prop_oneof![
                        Just(Value::Null),
                        any::<i64>().prop_map(Value::from),
                        any::<String>().prop_map(Value::from),
                        prop::sample::select(vec!["full", "summary", "problems", "critical", "gpu-*"])
                            .prop_map(Value::from),
                    ],
                ),
                0..8,
            ),
        ) {
            let mut arguments = Some(members.into_iter().collect::<JsonObject>());
            let _ = take_fleet_input(&mut arguments).and_then(FleetArgsInput::for_fan_out);
            let left = arguments.unwrap();
            prop_assert!(FLEET_ARGUMENTS.iter().all(|name| !left.contains_key(*name)));
        }
    }
}
