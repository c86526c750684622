//! Reuse of a tool's answer while the snapshot it was computed from is still the fresh one.
//!
//! Every answer of the agent's tools is a function of the GPU snapshot, the Xid evidence and the
//! arguments.
//! The backend reuses one snapshot for its maximum age (`--snapshot-max-age`) and names it by a
//! generation ([`gpu_mcp_backend::GpuBackend::fresh_generation`]); identical calls within that
//! generation get the same answer, so it is computed and encoded once and then cloned.
//! The cache holds the answers of one generation only (a new generation empties it) and is bounded
//! in entries and bytes; past either bound answers are computed as before, not evicted.
//! The JSON-RPC id is not part of an answer: the server core wraps each reuse in the caller's own
//! response.

use std::collections::HashMap;

use gpu_mcp_protocol::{CallToolResult, Content, JsonObject};
use parking_lot::Mutex;

/// Most answers kept for one generation.
const MAX_ENTRIES: usize = 64;
/// Most bytes (text and encoded structured content) kept for one generation.
const MAX_BYTES: usize = 4 << 20;

#[derive(Default)]
struct Generation {
    id: u64,
    answers: HashMap<String, CallToolResult>,
    bytes: usize,
}

/// Answers of the current snapshot generation, by tool and canonical arguments.
#[derive(Default)]
pub(crate) struct AnswerCache {
    current: Mutex<Generation>,
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.current.lock();
        f.debug_struct("AnswerCache")
            .field("generation", &g.id)
            .field("answers", &g.answers.len())
            .field("bytes", &g.bytes)
            .finish()
    }
}

/// The key of a call: the tool name and its arguments as compact JSON.
/// `serde_json`'s map keeps keys sorted, so the same arguments in any order give one key.
pub(crate) fn key(tool: &str, arguments: Option<&JsonObject>) -> String {
    let mut k = String::with_capacity(tool.len() + 16);
    k.push_str(tool);
    k.push('\n');
    if let Some(args) = arguments
        && !args.is_empty()
    {
        // A map of JSON values always encodes; an empty key part just misses the cache.
        k.push_str(&serde_json::to_string(args).unwrap_or_default());
    }
    k
}

fn size(result: &CallToolResult) -> usize {
    let text: usize = result
        .content
        .iter()
        .map(|c| match c {
            Content::Text { text } => text.len(),
            _ => 256,
        })
        .sum();
    text + result
        .encoded_structured_content()
        .map_or(256, |r| r.get().len())
}

impl AnswerCache {
    /// The answer of `key` computed from snapshot `generation`, if there is one.
    pub(crate) fn get(&self, generation: u64, key: &str) -> Option<CallToolResult> {
        let g = self.current.lock();
        if g.id != generation {
            return None;
        }
        g.answers.get(key).cloned()
    }

    /// Keeps `result` as the answer of `key` for snapshot `generation`, within the bounds.
    pub(crate) fn put(&self, generation: u64, key: String, result: &CallToolResult) {
        let bytes = size(result);
        let mut g = self.current.lock();
        if g.id != generation {
            *g = Generation {
                id: generation,
                ..Generation::default()
            };
        }
        if g.answers.len() >= MAX_ENTRIES || g.bytes + bytes > MAX_BYTES {
            return;
        }
        if g.answers.insert(key, result.clone()).is_none() {
            g.bytes += bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str) -> CallToolResult {
        CallToolResult::structured_encoded(&serde_json::json!({"t": text}), text)
    }

    #[test]
    fn arguments_in_any_order_share_a_key() {
        let a: JsonObject = serde_json::from_str(r#"{"gpu_index":1,"xid_since":"1h"}"#).unwrap();
        let b: JsonObject = serde_json::from_str(r#"{"xid_since":"1h","gpu_index":1}"#).unwrap();
        assert_eq!(key("t", Some(&a)), key("t", Some(&b)));
        assert_eq!(key("t", None), key("t", Some(&JsonObject::new())));
        assert_ne!(key("t", None), key("u", None));
        assert_ne!(key("t", None), key("t", Some(&a)));
    }

    #[test]
    fn an_answer_is_reused_only_within_its_generation() {
        let cache = AnswerCache::default();
        cache.put(1, key("t", None), &answer("one"));
        assert_eq!(cache.get(1, &key("t", None)), Some(answer("one")));
        assert_eq!(cache.get(2, &key("t", None)), None);
        cache.put(2, key("t", None), &answer("two"));
        assert_eq!(
            cache.get(1, &key("t", None)),
            None,
            "the old generation is gone"
        );
        assert_eq!(cache.get(2, &key("t", None)), Some(answer("two")));
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = AnswerCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            cache.put(1, format!("k{i}"), &answer("x"));
        }
        assert_eq!(cache.current.lock().answers.len(), MAX_ENTRIES);
        let big = "x".repeat(MAX_BYTES);
        let cache = AnswerCache::default();
        cache.put(1, "big".to_owned(), &answer(&big));
        assert_eq!(
            cache.get(1, "big"),
            None,
            "an answer over the byte bound is not kept"
        );
    }
}
