//! Tools: definitions (`tools/list`), calls (`tools/call`) and their results.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::ListPage;
use crate::{EncodedObject, JsonObject};

/// Result of `tools/list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListToolsResult {
    /// One page of tools.
    pub tools: Vec<Tool>,
    /// The cursor, cache hints and metadata of the page.
    #[serde(flatten)]
    pub page: ListPage,
}

/// Parameters of `tools/call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallToolRequestParams {
    /// Tool name.
    pub name: String,
    /// Tool arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<JsonObject>,
    /// Request metadata (progress token, 2026-07-28 envelope).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

/// A tool definition as listed by `tools/list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// Unique name, `[A-Za-z0-9_.-]{1,128}`.
    pub name: String,
    /// Human-readable title (2025-06-18+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema (`type: object`) of the arguments.
    pub input_schema: JsonObject,
    /// JSON Schema (`type: object`) of `structuredContent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<JsonObject>,
    /// Behaviour hints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<ToolAnnotations>,
}

/// Untrusted behaviour hints of a tool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolAnnotations {
    /// Display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The tool does not modify its environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    /// The tool may perform destructive updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    /// Repeated calls with the same arguments have no additional effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    /// The tool interacts with an open world of external entities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

impl ToolAnnotations {
    /// The hints of a tool that only reads local state: read-only, not destructive, idempotent,
    /// closed world.
    pub fn read_only() -> Self {
        Self {
            title: None,
            read_only_hint: Some(true),
            destructive_hint: Some(false),
            idempotent_hint: Some(true),
            open_world_hint: Some(false),
        }
    }
}

/// A content block of a tool result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// A base64-encoded image.
    Image {
        /// Base64 data.
        data: String,
        /// MIME type, e.g. `image/png`.
        #[serde(rename = "mimeType")]
        mime_type: String,
        /// Audience and priority hints.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        annotations: Option<JsonObject>,
    },
    /// Base64-encoded audio (2025-03-26+).
    Audio {
        /// Base64 data.
        data: String,
        /// MIME type, e.g. `audio/wav`.
        #[serde(rename = "mimeType")]
        mime_type: String,
        /// Audience and priority hints.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        annotations: Option<JsonObject>,
    },
    /// A link to a resource (2025-06-18+); kept as sent.
    ResourceLink(JsonObject),
    /// An embedded resource; `resource` kept as sent.
    Resource {
        /// `{uri, mimeType?, text | blob}`.
        resource: JsonObject,
        /// Audience and priority hints.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        annotations: Option<JsonObject>,
    },
}

impl Content {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into() }
    }

    /// The text of a text block.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text { text } => Some(text),
            _ => None,
        }
    }
}

/// The result of `tools/call`.
///
/// The structured result is either a [`Value`] (`structured_content`) or, for large results,
/// JSON encoded once straight from the Rust type ([`CallToolResult::structured_encoded`]), which
/// the server writes to the wire without building a `Value` tree.
/// Read it with [`CallToolResult::structured_value`] to cover both.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallToolResult {
    /// Unstructured content (at least one text block).
    pub content: Vec<Content>,
    /// Structured result conforming to the tool's `outputSchema` (`None` when it was given
    /// already encoded; see [`CallToolResult::encoded_structured_content`]).
    #[serde(default)]
    pub structured_content: Option<Value>,
    /// `true` when the tool failed (execution error, bad arguments).
    #[serde(default)]
    pub is_error: Option<bool>,
    /// Structured result already encoded as JSON.
    #[serde(skip)]
    encoded_structured_content: Option<Box<RawValue>>,
}

impl Serialize for CallToolResult {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.serialize_with(serializer, None)
    }
}

impl PartialEq for CallToolResult {
    fn eq(&self, other: &Self) -> bool {
        self.content == other.content
            && self.is_error == other.is_error
            && self.structured_value() == other.structured_value()
    }
}

impl CallToolResult {
    /// A result from its parts, with a [`Value`] as structured content.
    pub fn new(
        content: Vec<Content>,
        structured_content: Option<Value>,
        is_error: Option<bool>,
    ) -> Self {
        Self {
            content,
            structured_content,
            is_error,
            encoded_structured_content: None,
        }
    }

    /// A successful result whose structured content is `structured` encoded once, straight from
    /// its type (no [`Value`] in between), plus a text block.
    /// A type that cannot be encoded as JSON (a map with non-string keys, a failing `Serialize`)
    /// yields an `isError` result saying so.
    pub fn structured_encoded<T: Serialize + ?Sized>(
        structured: &T,
        text: impl Into<String>,
    ) -> Self {
        match serde_json::value::to_raw_value(structured) {
            Ok(raw) => Self {
                content: vec![Content::text(text)],
                structured_content: None,
                is_error: None,
                encoded_structured_content: Some(raw),
            },
            Err(e) => Self::error(format!("The result could not be encoded as JSON: {e}")),
        }
    }

    /// The structured content when it was given already encoded.
    pub fn encoded_structured_content(&self) -> Option<&RawValue> {
        self.encoded_structured_content.as_deref()
    }

    /// The structured content as a [`Value`], however it was given (encoded content is parsed,
    /// so prefer [`CallToolResult::encoded_structured_content`] on hot paths).
    pub fn structured_value(&self) -> Option<Cow<'_, Value>> {
        if let Some(v) = &self.structured_content {
            return Some(Cow::Borrowed(v));
        }
        let raw = self.encoded_structured_content.as_ref()?;
        serde_json::from_str(raw.get()).ok().map(Cow::Owned)
    }

    /// Removes the structured content, returning its compact JSON text.
    pub fn take_structured_json(&mut self) -> Option<String> {
        if let Some(raw) = self.encoded_structured_content.take() {
            self.structured_content = None;
            return Some(String::from(Box::<str>::from(raw)));
        }
        self.structured_content.take().map(|v| v.to_string())
    }

    /// Encodes this result once, with `extra` members appended to the object (for example the
    /// 2026-07-28 `resultType` and `_meta`), for [`crate::Response::success_encoded`].
    /// Encoded structured content is copied as is, not parsed again.
    pub fn to_raw_value(&self, extra: Option<&JsonObject>) -> serde_json::Result<Box<RawValue>> {
        struct With<'a>(&'a CallToolResult, Option<&'a JsonObject>);
        impl Serialize for With<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize_with(s, self.1)
            }
        }
        serde_json::value::to_raw_value(&With(self, extra))
    }

    fn serialize_with<S: serde::Serializer>(
        &self,
        serializer: S,
        extra: Option<&JsonObject>,
    ) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = serializer.serialize_map(None)?;
        m.serialize_entry("content", &self.content)?;
        if let Some(raw) = &self.encoded_structured_content {
            m.serialize_entry("structuredContent", raw)?;
        } else if let Some(v) = &self.structured_content {
            m.serialize_entry("structuredContent", v)?;
        }
        if let Some(is_error) = self.is_error {
            m.serialize_entry("isError", &is_error)?;
        }
        for (k, v) in extra.into_iter().flatten() {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
    /// A successful result with structured content and a text block.
    pub fn structured(structured: Value, text: impl Into<String>) -> Self {
        Self {
            content: vec![Content::text(text)],
            structured_content: Some(structured),
            is_error: None,
            encoded_structured_content: None,
        }
    }
    /// A successful result whose text block is the compact JSON of `structured`, as the spec
    /// recommends for clients that do not read `structuredContent`.
    pub fn from_structured(structured: Value) -> Self {
        let text = structured.to_string();
        Self::structured(structured, text)
    }
    /// A successful result with only a text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: vec![Content::text(text)],
            structured_content: None,
            is_error: None,
            encoded_structured_content: None,
        }
    }
    /// A tool execution error with an actionable message.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            content: vec![Content::text(message)],
            structured_content: None,
            is_error: Some(true),
            encoded_structured_content: None,
        }
    }
    /// Whether this result reports a failure.
    pub fn failed(&self) -> bool {
        self.is_error == Some(true)
    }

    /// The wire form, moving the structured content and the text instead of copying them (what
    /// `serde_json::to_value(&result)` would do); the result is the same JSON.
    pub fn into_value(self) -> Value {
        let mut obj = JsonObject::new();
        let content = self
            .content
            .into_iter()
            .map(|c| match c {
                Content::Text { text } => {
                    let mut block = JsonObject::new();
                    block.insert("type".into(), Value::String("text".into()));
                    block.insert("text".into(), Value::String(text));
                    Value::Object(block)
                }
                other => serde_json::to_value(other).unwrap_or(Value::Null),
            })
            .collect();
        obj.insert("content".into(), Value::Array(content));
        if let Some(structured) = self.structured_content {
            obj.insert("structuredContent".into(), structured);
        } else if let Some(raw) = self.encoded_structured_content {
            let structured = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
            obj.insert("structuredContent".into(), structured);
        }
        if let Some(is_error) = self.is_error {
            obj.insert("isError".into(), Value::Bool(is_error));
        }
        Value::Object(obj)
    }
}

/// A `tools/call` result encoded once and shared by every response that carries it: the result,
/// and the bytes of its object as the revisions with structured content write it (2025-06-18
/// on), without the members a server adds per response (the 2026-07-28 `resultType` and
/// `_meta`, appended with [`crate::Response::success_shared`]).
/// Clones share both.
#[derive(Debug, Clone)]
pub struct SharedCallToolResult {
    result: Arc<CallToolResult>,
    encoded: EncodedObject,
}

impl SharedCallToolResult {
    /// Encodes `result` once; the `Err` gives it back when it cannot be encoded (which a
    /// result made of `Value`s and strings never is).
    #[allow(clippy::result_large_err)] // the result given back, on a path never taken
    pub fn new(result: CallToolResult) -> Result<Self, CallToolResult> {
        let Some(encoded) = result.to_raw_value(None).ok().and_then(EncodedObject::new) else {
            return Err(result);
        };
        Ok(Self {
            result: Arc::new(result),
            encoded,
        })
    }

    /// The result.
    pub fn result(&self) -> &CallToolResult {
        &self.result
    }

    /// The result's object as JSON, shared.
    pub fn encoded(&self) -> &EncodedObject {
        &self.encoded
    }

    /// The result, by value (a copy when it is shared with a clone).
    pub fn into_result(self) -> CallToolResult {
        Arc::unwrap_or_clone(self.result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_variants_use_spec_tags() {
        let c: Content = serde_json::from_value(
            json!({"type": "image", "data": "AAAA", "mimeType": "image/png"}),
        )
        .unwrap();
        assert!(matches!(c, Content::Image { .. }));
        let link = json!({"type": "resource_link", "uri": "file:///a", "name": "a"});
        let c: Content = serde_json::from_value(link.clone()).unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap(), link);
        assert_eq!(
            serde_json::to_value(Content::text("hi")).unwrap(),
            json!({"type": "text", "text": "hi"})
        );
    }

    #[test]
    fn from_structured_adds_json_text_block() {
        let r = CallToolResult::from_structured(json!({"a": 1}));
        assert_eq!(r.content[0].as_text(), Some(r#"{"a":1}"#));
        assert!(!r.failed());
        assert!(CallToolResult::error("x").failed());
    }

    #[test]
    fn into_value_matches_serde() {
        let results = [
            CallToolResult::from_structured(json!({"gpus": [{"uuid": "GPU-1", "temp": 41.5}]})),
            CallToolResult::error("bad"),
            CallToolResult::new(
                vec![
                    Content::text("a"),
                    Content::Image {
                        data: "AA==".into(),
                        mime_type: "image/png".into(),
                        annotations: None,
                    },
                ],
                None,
                Some(false),
            ),
            CallToolResult::structured_encoded(&json!({"gpus": [{"uuid": "GPU-1"}]}), "t"),
        ];
        for r in results {
            assert_eq!(serde_json::to_value(&r).unwrap(), r.clone().into_value());
        }
    }

    #[test]
    fn encoded_structured_content_reads_and_writes_like_a_value() {
        #[derive(Serialize)]
        struct Out {
            zeta: u32,
            alpha: &'static str,
        }
        let encoded = CallToolResult::structured_encoded(
            &Out {
                zeta: 1,
                alpha: "a\"b",
            },
            "text",
        );
        let plain = CallToolResult::structured(json!({"alpha": "a\"b", "zeta": 1}), "text");
        assert!(encoded.structured_content.is_none());
        assert_eq!(
            encoded.encoded_structured_content().map(RawValue::get),
            Some(r#"{"zeta":1,"alpha":"a\"b"}"#)
        );
        assert_eq!(encoded, plain);
        assert_eq!(
            serde_json::to_value(&encoded).unwrap(),
            serde_json::to_value(&plain).unwrap()
        );
        let mut extra = JsonObject::new();
        extra.insert("resultType".into(), json!("complete"));
        let raw = encoded.to_raw_value(Some(&extra)).unwrap();
        let back: Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(
            back,
            json!({"content": [{"type": "text", "text": "text"}], "structuredContent": {"alpha": "a\"b", "zeta": 1}, "resultType": "complete"})
        );
        let mut taken = encoded.clone();
        assert_eq!(
            taken.take_structured_json().as_deref(),
            Some(r#"{"zeta":1,"alpha":"a\"b"}"#)
        );
        assert!(taken.structured_value().is_none());
    }

    #[test]
    fn unencodable_structured_content_is_a_tool_error() {
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 1);
        let r = CallToolResult::structured_encoded(&bad, "t");
        assert!(r.failed());
        assert!(
            r.content[0]
                .as_text()
                .unwrap()
                .contains("could not be encoded")
        );
    }

    #[test]
    fn read_only_annotations() {
        let v = serde_json::to_value(ToolAnnotations::read_only()).unwrap();
        assert_eq!(
            v,
            json!({"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false})
        );
    }
}
