//! Prompts (`prompts/list`, `prompts/get`) and argument completion (`completion/complete`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ListPage;
use super::tools::Content;
use crate::JsonObject;

/// A prompt template a server offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    /// Unique name.
    pub name: String,
    /// Display title (2025-06-18+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the prompt is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Arguments that fill the template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<PromptArgument>,
}

/// One argument of a prompt template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptArgument {
    /// Name, the key in `prompts/get` `arguments`.
    pub name: String,
    /// Display title (2025-06-18+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the argument means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether it must be given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
}

/// Result of `prompts/list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPromptsResult {
    /// One page of prompts.
    pub prompts: Vec<Prompt>,
    /// The cursor, cache hints and metadata of the page.
    #[serde(flatten)]
    pub page: ListPage,
}

/// Parameters of `prompts/get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetPromptRequestParams {
    /// Prompt name.
    pub name: String,
    /// Template arguments (strings only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<BTreeMap<String, String>>,
    /// Request metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

/// Who speaks a prompt message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user.
    User,
    /// The assistant.
    Assistant,
}

/// One message of a filled prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptMessage {
    /// Who speaks it.
    pub role: Role,
    /// What is said.
    pub content: Content,
}

/// Result of `prompts/get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetPromptResult {
    /// What the filled prompt does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The messages.
    pub messages: Vec<PromptMessage>,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

/// What a `completion/complete` request completes an argument of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CompletionReference {
    /// A prompt's argument.
    #[serde(rename = "ref/prompt")]
    Prompt {
        /// The prompt's name.
        name: String,
    },
    /// A variable of a resource template.
    #[serde(rename = "ref/resource")]
    Resource {
        /// The template (or URI).
        uri: String,
    },
}

/// The argument being completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteArgument {
    /// The argument's (or template variable's) name.
    pub name: String,
    /// What the user typed so far.
    pub value: String,
}

/// Context of a completion (2025-06-18+).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteContext {
    /// Arguments already chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<BTreeMap<String, String>>,
}

/// Parameters of `completion/complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompleteRequestParams {
    /// The prompt or resource template.
    #[serde(rename = "ref")]
    pub reference: CompletionReference,
    /// The argument being completed.
    pub argument: CompleteArgument,
    /// Arguments already chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<CompleteContext>,
    /// Request metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

impl CompleteRequestParams {
    /// The already chosen argument `name`, if any.
    pub fn context_argument(&self, name: &str) -> Option<&str> {
        self.context
            .as_ref()
            .and_then(|c| c.arguments.as_ref())
            .and_then(|a| a.get(name))
            .map(String::as_str)
    }
}

/// Most values one completion carries (the specification's limit).
pub const MAX_COMPLETION_VALUES: usize = 100;

/// The completion values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    /// At most [`MAX_COMPLETION_VALUES`] values.
    pub values: Vec<String>,
    /// How many values match in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Whether more match than are listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_more: Option<bool>,
}

impl Completion {
    /// The candidates that start with `prefix`, in their order, capped at
    /// [`MAX_COMPLETION_VALUES`] with `total` and `hasMore` saying what was left out.
    pub fn matching<I, S>(candidates: I, prefix: &str) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let all: Vec<String> = candidates
            .into_iter()
            .map(Into::into)
            .filter(|c| c.starts_with(prefix))
            .collect();
        let total = all.len();
        let values: Vec<String> = all.into_iter().take(MAX_COMPLETION_VALUES).collect();
        Self {
            has_more: Some(values.len() < total),
            total: Some(u64::try_from(total).unwrap_or(u64::MAX)),
            values,
        }
    }
}

/// Result of `completion/complete`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompleteResult {
    /// The values.
    pub completion: Completion,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<JsonObject>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn completion_params_read_the_specification_example() {
        let p: CompleteRequestParams = serde_json::from_value(json!({
            "ref": {"type": "ref/prompt", "name": "code_review"},
            "argument": {"name": "language", "value": "py"},
            "context": {"arguments": {"framework": "flask"}}
        }))
        .unwrap();
        assert_eq!(
            p.reference,
            CompletionReference::Prompt {
                name: "code_review".into()
            }
        );
        assert_eq!(p.context_argument("framework"), Some("flask"));
        let r: CompleteRequestParams = serde_json::from_value(json!({
            "ref": {"type": "ref/resource", "uri": "gpu://{node}/inventory"},
            "argument": {"name": "node", "value": ""}
        }))
        .unwrap();
        assert!(matches!(r.reference, CompletionReference::Resource { .. }));
        assert!(
            serde_json::from_value::<CompleteRequestParams>(json!({
                "ref": {"type": "ref/other"}, "argument": {"name": "a", "value": ""}
            }))
            .is_err()
        );
    }

    #[test]
    fn completion_caps_values_and_says_so() {
        let c = Completion::matching((0..150).map(|i| format!("n{i}")), "n");
        assert_eq!(c.values.len(), MAX_COMPLETION_VALUES);
        assert_eq!((c.total, c.has_more), (Some(150), Some(true)));
        let c = Completion::matching(["a1", "b2", "a3"], "a");
        assert_eq!(c.values, ["a1", "a3"]);
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"values": ["a1", "a3"], "total": 2, "hasMore": false})
        );
    }

    #[test]
    fn prompts_serialize_without_absent_members() {
        let p = Prompt {
            name: "p".into(),
            title: None,
            description: Some("d".into()),
            arguments: vec![PromptArgument {
                name: "a".into(),
                title: None,
                description: None,
                required: Some(true),
            }],
        };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"name": "p", "description": "d", "arguments": [{"name": "a", "required": true}]})
        );
        let m = PromptMessage {
            role: Role::User,
            content: Content::text("hi"),
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"role": "user", "content": {"type": "text", "text": "hi"}})
        );
    }
}
