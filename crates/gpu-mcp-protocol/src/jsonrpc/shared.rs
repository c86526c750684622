//! Results encoded once and shared by many responses: a JSON object kept as its bytes behind an
//! [`Arc`], with members encoded once appended when a response is written.
//!
//! A response built with [`crate::Response::success_shared`] is written by [`crate::encode`] into
//! one buffer sized up front, `{"jsonrpc":"2.0","id":<id>,"result":<object + members>}`, with
//! no [`serde_json::Value`] and no encoding of the result again: the object's bytes are copied
//! once, the members (for example the 2026-07-28 `resultType` and `_meta`) are spliced in before
//! its closing brace.

use std::sync::Arc;

use serde_json::value::RawValue;

use crate::JsonObject;

/// A JSON object already encoded as compact JSON, cheap to clone (clones share the bytes).
#[derive(Debug, Clone)]
pub struct EncodedObject(Arc<RawValue>);

impl EncodedObject {
    /// The object `raw` holds; `None` when `raw` is not an object.
    /// `raw` must be compact JSON (no newline), as [`serde_json::value::to_raw_value`] writes it,
    /// since stdio frames messages by line.
    pub fn new(raw: Box<RawValue>) -> Option<Self> {
        // Valid JSON that starts with `{` is an object (a string starts with `"`).
        raw.get().starts_with('{').then(|| Self(Arc::from(raw)))
    }

    /// The object's JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Whether `a` and `b` share their bytes.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

/// Members of a JSON object encoded once, to be appended to [`EncodedObject`]s; cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedMembers(Arc<str>);

impl EncodedMembers {
    /// The members of `members`, in the map's order, as `serde_json` writes them in an object.
    pub fn new(members: &JsonObject) -> Self {
        let mut text = String::new();
        for (k, v) in members {
            if !text.is_empty() {
                text.push(',');
            }
            // A string key and a `Value` always encode.
            text.push_str(&serde_json::Value::String(k.clone()).to_string());
            text.push(':');
            text.push_str(&v.to_string());
        }
        Self(Arc::from(text))
    }

    /// `"name":value` pairs separated by commas, without braces (empty for no members).
    pub fn get(&self) -> &str {
        &self.0
    }
}

/// An encoded object with members appended.
#[derive(Debug, Clone)]
pub(crate) struct Spliced {
    pub(crate) object: EncodedObject,
    pub(crate) members: Option<EncodedMembers>,
}

impl Spliced {
    /// Bytes of the JSON text.
    pub(crate) fn len(&self) -> usize {
        self.object.get().len() + self.members.as_ref().map_or(0, |m| m.get().len() + 1)
    }

    /// Appends the JSON text to `out`.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let object = self.object.get();
        match self.members.as_ref().map(EncodedMembers::get) {
            Some(members) if !members.is_empty() => {
                // `{...}`: everything but the closing brace, then `,members}` (or `members}` for
                // the empty object).
                let open = &object[..object.len() - 1];
                out.extend_from_slice(open.as_bytes());
                if open.trim_end() != "{" {
                    out.push(b',');
                }
                out.extend_from_slice(members.as_bytes());
                out.push(b'}');
            }
            _ => out.extend_from_slice(object.as_bytes()),
        }
    }

    /// The JSON text, as one value.
    pub(crate) fn to_raw(&self) -> Box<RawValue> {
        let mut out = Vec::with_capacity(self.len());
        self.write(&mut out);
        // Both parts are valid JSON text written by serde_json, so this is too.
        let text = String::from_utf8(out).unwrap_or_default();
        RawValue::from_string(text).unwrap_or_else(|_| Box::<RawValue>::default())
    }
}
