//! Reuse of a tool's answer while the snapshot it was computed from is still the fresh one.
//!
//! Every answer of the agent's tools is a function of the GPU snapshot, the Xid evidence and the
//! arguments.
//! The backend reuses one snapshot for its maximum age (`--snapshot-max-age`) and names it by a
//! generation ([`gpu_mcp_backend::GpuBackend::fresh_generation`]); identical calls within that
//! generation get the same answer, so it is computed and encoded once and then shared: the cache
//! keeps each answer as a [`SharedCallToolResult`], whose bytes the server core copies straight
//! into each caller's response.
//! The cache holds the answers of one generation only (a new generation empties it) and is bounded
//! in entries and bytes; past either bound answers are computed as before, not evicted.
//! The JSON-RPC id is not part of an answer: the server core wraps each reuse in the caller's own
//! response.

use std::collections::HashMap;
use std::future::Future;

use gpu_mcp_protocol::{CallToolResult, Content, JsonObject, SharedCallToolResult};
use gpu_mcp_service::{CallError, ToolAnswer};
use parking_lot::Mutex;
use serde_json::Value;

/// Most answers kept for one generation.
const MAX_ENTRIES: usize = 64;
/// Most bytes (text, encoded structured content and the encoded answer) kept for one generation.
const MAX_BYTES: usize = 4 << 20;

#[derive(Default)]
struct Generation {
    id: u64,
    answers: HashMap<String, SharedCallToolResult>,
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

/// The key of a call: the tool name and its arguments in a canonical form, every object's
/// members sorted by name at every depth, so the same arguments in any order give one key
/// whatever order the JSON map keeps (it keeps insertion order when a dependency enables
/// `serde_json`'s `preserve_order`). Values keep their JSON spelling: `1` and `1.0`, or `null`
/// and an absent member, are different keys because the arguments parser tells them apart.
pub(crate) fn key(tool: &str, arguments: Option<&JsonObject>) -> String {
    let mut k = String::with_capacity(tool.len() + 16);
    k.push_str(tool);
    k.push('\n');
    if let Some(args) = arguments
        && !args.is_empty()
    {
        canonical_object(args, &mut k);
    }
    k
}

fn canonical_object(object: &JsonObject, out: &mut String) {
    let mut members: Vec<(&String, &Value)> = object.iter().collect();
    members.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (name, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        canonical_scalar(&Value::String(name.clone()), out);
        out.push(':');
        canonical(value, out);
    }
    out.push('}');
}

fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(o) => canonical_object(o, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        scalar => canonical_scalar(scalar, out),
    }
}

/// A string, number, boolean or null as compact JSON (which always encodes).
fn canonical_scalar(value: &Value, out: &mut String) {
    out.push_str(&value.to_string());
}

fn size(shared: &SharedCallToolResult) -> usize {
    let result = shared.result();
    shared.encoded().get().len() + parts_size(result)
}

fn parts_size(result: &CallToolResult) -> usize {
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
    /// The answer of tool `name` to `arguments`: while `fresh` names a snapshot generation, an
    /// identical earlier call's answer from that generation, else `compute`'s; a new answer is
    /// kept (encoded once, shared) only when the generation did not change while it was
    /// computed.
    pub(crate) async fn answer<F>(
        &self,
        fresh: impl Fn() -> Option<u64>,
        name: &str,
        arguments: Option<JsonObject>,
        compute: impl FnOnce(Option<JsonObject>) -> F,
    ) -> Result<ToolAnswer, CallError>
    where
        F: Future<Output = Result<CallToolResult, CallError>>,
    {
        let Some(generation) = fresh() else {
            return compute(arguments).await.map(ToolAnswer::Own);
        };
        let key = key(name, arguments.as_ref());
        if let Some(hit) = self.get(generation, &key) {
            return Ok(ToolAnswer::Shared(hit));
        }
        let result = compute(arguments).await?;
        if fresh() != Some(generation) {
            return Ok(ToolAnswer::Own(result));
        }
        Ok(match SharedCallToolResult::new(result) {
            Ok(shared) => {
                self.put(generation, key, &shared);
                ToolAnswer::Shared(shared)
            }
            Err(result) => ToolAnswer::Own(result),
        })
    }

    /// The answer of `key` computed from snapshot `generation`, if there is one.
    pub(crate) fn get(&self, generation: u64, key: &str) -> Option<SharedCallToolResult> {
        let g = self.current.lock();
        if g.id != generation {
            return None;
        }
        g.answers.get(key).cloned()
    }

    /// Keeps `result` as the answer of `key` for snapshot `generation`, within the bounds.
    pub(crate) fn put(&self, generation: u64, key: String, result: &SharedCallToolResult) {
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
    use gpu_mcp_protocol::EncodedObject;

    fn answer(text: &str) -> SharedCallToolResult {
        let result = CallToolResult::structured_encoded(&serde_json::json!({"t": text}), text);
        SharedCallToolResult::new(result).unwrap()
    }

    fn text(shared: Option<SharedCallToolResult>) -> Option<String> {
        shared.map(|s| s.result().content[0].as_text().unwrap().to_owned())
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
    fn the_key_sorts_members_at_every_depth_itself() {
        // Built member by member in both orders, so the key cannot rely on the map's own order.
        let mut a = JsonObject::new();
        a.insert(
            "z".into(),
            serde_json::json!({"b": [1, {"y": 2, "x": 1}], "a": null}),
        );
        a.insert("detail".into(), Value::from("problems"));
        let mut b = JsonObject::new();
        b.insert("detail".into(), Value::from("problems"));
        b.insert(
            "z".into(),
            serde_json::json!({"a": null, "b": [1, {"x": 1, "y": 2}]}),
        );
        assert_eq!(key("t", Some(&a)), key("t", Some(&b)));
        assert_eq!(
            key("t", Some(&a)),
            "t\n{\"detail\":\"problems\",\"z\":{\"a\":null,\"b\":[1,{\"x\":1,\"y\":2}]}}"
        );
        // Arrays keep their order; different spellings stay different.
        let list = |v: Value| v.as_object().cloned().unwrap();
        let one = list(serde_json::json!({"sections": ["ecc", "pcie"]}));
        let other = list(serde_json::json!({"sections": ["pcie", "ecc"]}));
        assert_ne!(key("t", Some(&one)), key("t", Some(&other)));
        let int = list(serde_json::json!({"gpu_index": 1}));
        let float = list(serde_json::json!({"gpu_index": 1.0}));
        assert_ne!(key("t", Some(&int)), key("t", Some(&float)));
        let null = list(serde_json::json!({"gpu_index": null}));
        assert_ne!(key("t", Some(&null)), key("t", None));
    }

    #[test]
    fn an_answer_is_reused_only_within_its_generation() {
        let cache = AnswerCache::default();
        let one = answer("one");
        cache.put(1, key("t", None), &one);
        let hit = cache.get(1, &key("t", None)).unwrap();
        assert!(
            EncodedObject::ptr_eq(hit.encoded(), one.encoded()),
            "a hit shares the bytes kept"
        );
        assert_eq!(text(cache.get(2, &key("t", None))), None);
        cache.put(2, key("t", None), &answer("two"));
        assert_eq!(
            text(cache.get(1, &key("t", None))),
            None,
            "the old generation is gone"
        );
        assert_eq!(text(cache.get(2, &key("t", None))), Some("two".into()));
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
            text(cache.get(1, "big")),
            None,
            "an answer over the byte bound is not kept"
        );
    }
}
