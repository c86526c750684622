//! Per-revision shaping: what a revision does not define is removed before it goes out.
//!
//! `title` (tools, server info), `outputSchema` and `structuredContent` exist from 2025-06-18,
//! tool `annotations` from 2025-03-26.
//! A result that loses `structuredContent` gets its JSON as a text block after the words, so
//! the data still reaches the client.
//! `resource_link` content blocks exist from 2025-06-18; before, they become a sentence naming
//! the URI.

use gpu_mcp_protocol::{CallToolResult, Content, ProtocolVersion, Tool};

/// Tool definitions as `version` defines them.
pub(crate) fn shape_tools(tools: Vec<Tool>, version: ProtocolVersion) -> Vec<Tool> {
    tools.into_iter().map(|t| shape_tool(t, version)).collect()
}

/// Removes what `version` does not define from a tool definition.
fn shape_tool(mut tool: Tool, version: ProtocolVersion) -> Tool {
    if !version.supports_title() {
        tool.title = None;
    }
    if !version.supports_structured_content() {
        tool.output_schema = None;
    }
    if !version.supports_tool_annotations() {
        tool.annotations = None;
    }
    tool
}

/// Whether `version` takes every tool result as it is ([`shape_call_result`] changes nothing),
/// so that a result encoded once can go out in it byte for byte.
pub(crate) fn takes_results_unchanged(version: ProtocolVersion) -> bool {
    version.supports_structured_content()
}

/// Removes `structuredContent` for revisions before 2025-06-18, keeping its JSON in a text block
/// after the tool's words (the text blocks are words, not the data again).
pub(crate) fn shape_call_result(
    mut result: CallToolResult,
    version: ProtocolVersion,
) -> CallToolResult {
    if takes_results_unchanged(version) {
        return result;
    }
    // `resource_link` blocks exist from 2025-06-18; before, the link is said in words.
    for block in &mut result.content {
        if let Some(uri) = block.link_uri() {
            *block = Content::text(format!("More at the resource {uri} (resources/read)."));
        }
    }
    if let Some(structured) = result.take_structured_json()
        && !result
            .content
            .iter()
            .any(|c| c.as_text() == Some(structured.as_str()))
    {
        result.content.push(Content::text(structured));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str) -> Tool {
        Tool {
            name: name.into(),
            title: Some("T".into()),
            description: "d".into(),
            input_schema: json!({"type": "object"}).as_object().cloned().unwrap(),
            output_schema: Some(json!({"type": "object"}).as_object().cloned().unwrap()),
            annotations: Some(gpu_mcp_protocol::ToolAnnotations::read_only()),
        }
    }

    #[test]
    fn tools_are_shaped_per_version() {
        let t = shape_tool(tool("a"), ProtocolVersion::V2024_11_05);
        assert!(t.title.is_none() && t.output_schema.is_none() && t.annotations.is_none());
        let t = shape_tool(tool("a"), ProtocolVersion::V2025_03_26);
        assert!(t.title.is_none() && t.output_schema.is_none() && t.annotations.is_some());
        let t = shape_tool(tool("a"), ProtocolVersion::V2025_06_18);
        assert!(t.title.is_some() && t.output_schema.is_some() && t.annotations.is_some());
    }

    #[test]
    fn old_versions_get_structured_content_as_text() {
        let r = CallToolResult::new(vec![], Some(json!({"a": 1})), None);
        let shaped = shape_call_result(r.clone(), ProtocolVersion::V2025_03_26);
        assert!(shaped.structured_content.is_none());
        assert_eq!(shaped.content[0].as_text(), Some(r#"{"a":1}"#));
        let kept = shape_call_result(r.clone(), ProtocolVersion::V2025_11_25);
        assert_eq!(kept, r);
        let encoded = CallToolResult::structured_encoded(&json!({"a": 1}), "kept");
        let shaped = shape_call_result(encoded.clone(), ProtocolVersion::V2025_03_26);
        assert!(shaped.structured_value().is_none());
        assert_eq!(shaped.content.len(), 2, "the words, then the data");
        assert_eq!(shaped.content[1].as_text(), Some(r#"{"a":1}"#));
        let mut bare = CallToolResult::structured_encoded(&json!({"a": 1}), "x");
        bare.content.clear();
        let shaped = shape_call_result(bare, ProtocolVersion::V2024_11_05);
        assert_eq!(shaped.content[0].as_text(), Some(r#"{"a":1}"#));
        assert_eq!(
            shape_call_result(encoded.clone(), ProtocolVersion::V2025_06_18),
            encoded
        );
        let with_words = CallToolResult::structured(json!({"a": 1}), "GPU 3 is critical.");
        let shaped = shape_call_result(with_words, ProtocolVersion::V2024_11_05);
        assert_eq!(shaped.content.len(), 2);
        assert_eq!(shaped.content[0].as_text(), Some("GPU 3 is critical."));
        assert_eq!(shaped.content[1].as_text(), Some(r#"{"a":1}"#));
        let linked = CallToolResult::new(
            vec![
                Content::text("t"),
                Content::ResourceLink(
                    json!({"uri": "gpu://n/health", "name": "n"})
                        .as_object()
                        .cloned()
                        .unwrap(),
                ),
            ],
            None,
            None,
        );
        let old = shape_call_result(linked.clone(), ProtocolVersion::V2025_03_26);
        assert!(old.content[1].as_text().unwrap().contains("gpu://n/health"));
        assert_eq!(
            shape_call_result(linked.clone(), ProtocolVersion::V2025_06_18),
            linked
        );
        // A text block that already is the JSON is not repeated.
        let as_json = CallToolResult::from_structured(json!({"a": 1}));
        let shaped = shape_call_result(as_json, ProtocolVersion::V2024_11_05);
        assert_eq!(shaped.content.len(), 1);
    }
}
