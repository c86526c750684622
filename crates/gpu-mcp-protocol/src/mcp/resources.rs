//! Resources: concrete resources (`resources/list`), resource templates
//! (`resources/templates/list`), reading one (`resources/read`), and the `resource_link` content
//! block a tool result points at one with.

use serde::{Deserialize, Serialize};

use super::tools::Content;
use super::{CacheScope, ListPage};
use crate::JsonObject;

/// A concrete resource a server offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// The resource's URI.
    pub uri: String,
    /// Machine name.
    pub name: String,
    /// Display title (2025-06-18+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the resource holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// MIME type of its contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// A family of resources named by an RFC 6570 URI template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceTemplate {
    /// The URI template, e.g. `gpu://{node}/inventory`.
    pub uri_template: String,
    /// Machine name.
    pub name: String,
    /// Display title (2025-06-18+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the resources hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// MIME type of their contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// Result of `resources/list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResourcesResult {
    /// One page of resources.
    pub resources: Vec<Resource>,
    /// The cursor, cache hints and metadata of the page.
    #[serde(flatten)]
    pub page: ListPage,
}

/// Result of `resources/templates/list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResourceTemplatesResult {
    /// One page of templates.
    pub resource_templates: Vec<ResourceTemplate>,
    /// The cursor, cache hints and metadata of the page.
    #[serde(flatten)]
    pub page: ListPage,
}

/// Parameters of `resources/read`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadResourceRequestParams {
    /// The URI to read.
    pub uri: String,
    /// Request metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

/// The text contents of one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextResourceContents {
    /// The URI read.
    pub uri: String,
    /// MIME type of `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// The contents.
    pub text: String,
}

/// Result of `resources/read`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadResourceResult {
    /// The contents (one entry per resource read).
    pub contents: Vec<TextResourceContents>,
    /// How long the contents stay fresh, in milliseconds (2026-07-28, required there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// Who may cache the contents (2026-07-28, required there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_scope: Option<CacheScope>,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

impl Content {
    /// A `resource_link` block (2025-06-18+) pointing at `resource`.
    pub fn resource_link(resource: &Resource) -> Self {
        let mut link = match serde_json::to_value(resource) {
            Ok(serde_json::Value::Object(o)) => o,
            _ => JsonObject::new(),
        };
        link.remove("type");
        Self::ResourceLink(link)
    }

    /// The URI of a `resource_link` block.
    pub fn link_uri(&self) -> Option<&str> {
        match self {
            Self::ResourceLink(link) => link.get("uri").and_then(|u| u.as_str()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resource() -> Resource {
        Resource {
            uri: "gpu://gpu-node-1/inventory".into(),
            name: "gpu-node-1 inventory".into(),
            title: None,
            description: Some("d".into()),
            mime_type: Some("application/json".into()),
        }
    }

    #[test]
    fn a_resource_link_is_the_resource_with_its_type() {
        let link = Content::resource_link(&resource());
        assert_eq!(
            serde_json::to_value(&link).unwrap(),
            json!({"type": "resource_link", "uri": "gpu://gpu-node-1/inventory",
                   "name": "gpu-node-1 inventory", "description": "d",
                   "mimeType": "application/json"})
        );
        assert_eq!(link.link_uri(), Some("gpu://gpu-node-1/inventory"));
        assert_eq!(Content::text("x").link_uri(), None);
    }

    #[test]
    fn results_use_the_specification_names() {
        let t = ListResourceTemplatesResult {
            resource_templates: vec![ResourceTemplate {
                uri_template: "gpu://{node}/health".into(),
                name: "health".into(),
                title: None,
                description: None,
                mime_type: None,
            }],
            page: ListPage {
                ttl_ms: Some(1),
                cache_scope: Some(CacheScope::Public),
                ..ListPage::default()
            },
        };
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            json!({"resourceTemplates": [{"uriTemplate": "gpu://{node}/health", "name": "health"}],
                   "ttlMs": 1, "cacheScope": "public"})
        );
        let r: ReadResourceResult = serde_json::from_value(json!({
            "contents": [{"uri": "gpu://a/health", "mimeType": "application/json", "text": "{}"}]
        }))
        .unwrap();
        assert_eq!(r.contents[0].text, "{}");
        let p: ReadResourceRequestParams =
            serde_json::from_value(json!({"uri": "gpu://a/xids"})).unwrap();
        assert_eq!(p.uri, "gpu://a/xids");
    }
}
