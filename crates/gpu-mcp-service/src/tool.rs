//! Building and checking tool definitions, and reading tool arguments.
//!
//! - [`tool_definition`] (from `gpu_mcp_protocol`, re-exported here) derives `inputSchema` and
//!   `outputSchema` from Rust types with schemars; [`try_tool_definition`] also validates it.
//! - [`parse_arguments`] reads `tools/call` arguments into a type; a failure is an `isError`
//!   result naming the argument, which lets a model correct itself (the 2025-11-25 guidance for
//!   input validation). Argument types should use `#[serde(deny_unknown_fields)]` so an unexpected
//!   argument is reported rather than ignored.
//! - [`validate_tool`] / [`validate_tools`] check what MCP requires of a definition.

pub use gpu_mcp_protocol::tool_definition;
use gpu_mcp_protocol::{CallToolResult, JsonObject, Tool};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};

/// Longest tool name MCP allows.
pub const MAX_TOOL_NAME_LEN: usize = 128;

/// Like [`tool_definition`], but fails when a generated schema is not an object schema or the
/// name is not a valid tool name.
pub fn try_tool_definition<I: JsonSchema, O: JsonSchema>(
    name: impl Into<String>,
    title: impl Into<String>,
    description: impl Into<String>,
) -> Result<Tool> {
    let tool = tool_definition::<I, O>(name, title, description);
    validate_tool(&tool)?;
    Ok(tool)
}

/// Reads `tools/call` arguments (absent arguments read as `{}`) into `T`.
///
/// The error is an `isError: true` result whose text names the offending argument: its path for a
/// wrong type or value (`Invalid argument `gpu.index`: invalid type: ...`), and serde's own
/// wording, which names the field, for a missing or unknown field.
pub fn parse_arguments<T: DeserializeOwned>(
    arguments: Option<JsonObject>,
) -> std::result::Result<T, CallToolResult> {
    let value = Value::Object(arguments.unwrap_or_default());
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if path == "." || path.is_empty() {
            format!("Invalid arguments: {inner}")
        } else {
            format!("Invalid argument `{path}`: {inner}")
        };
        CallToolResult::error(message)
    })
}

/// Whether `name` is a valid tool name: 1 to 128 characters from `A-Z a-z 0-9 _ . -`.
pub fn is_valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOOL_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn is_object_schema(schema: &JsonObject) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object")
}

/// Checks one definition: a valid name, an object `inputSchema`, an object `outputSchema` if any.
pub fn validate_tool(tool: &Tool) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidTool {
        name: tool.name.clone(),
        reason: reason.to_owned(),
    };
    if !is_valid_tool_name(&tool.name) {
        return Err(invalid(
            "name must be 1 to 128 characters from A-Z, a-z, 0-9, `_`, `.` and `-`",
        ));
    }
    if !is_object_schema(&tool.input_schema) {
        return Err(invalid("inputSchema must have `type: \"object\"`"));
    }
    if let Some(output) = &tool.output_schema
        && !is_object_schema(output)
    {
        return Err(invalid("outputSchema must have `type: \"object\"`"));
    }
    Ok(())
}

/// Checks every definition and that names are unique.
pub fn validate_tools(tools: &[Tool]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(tools.len());
    for tool in tools {
        validate_tool(tool)?;
        if !seen.insert(tool.name.as_str()) {
            return Err(Error::DuplicateTool(tool.name.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    /// Which GPU.
    #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Input {
        /// GPU index.
        index: Option<u32>,
        #[serde(default)]
        verbose: bool,
        filter: Option<Filter>,
    }

    #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Filter {
        min_temp: u32,
    }

    /// The output.
    #[derive(Debug, Serialize, JsonSchema)]
    struct Output {
        gpus: Vec<Gpu>,
    }

    #[derive(Debug, Serialize, JsonSchema)]
    struct Gpu {
        uuid: String,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Required {
        node: String,
    }

    fn contains_key(v: &Value, key: &str) -> bool {
        match v {
            Value::Object(o) => o.contains_key(key) || o.values().any(|v| contains_key(v, key)),
            Value::Array(a) => a.iter().any(|v| contains_key(v, key)),
            _ => false,
        }
    }

    #[test]
    fn definition_has_inline_object_schemas_and_read_only_hints() {
        let tool = tool_definition::<Input, Output>("get_gpu", "Get GPU", "Reads one GPU.");
        validate_tool(&tool).unwrap();
        assert_eq!(tool.input_schema["type"], "object");
        assert!(!tool.input_schema.contains_key("title"));
        assert!(!tool.input_schema.contains_key("description"));
        assert!(!tool.input_schema.contains_key("$schema"));
        assert_eq!(tool.input_schema["additionalProperties"], false);
        assert_eq!(
            tool.input_schema["properties"]["index"]["description"],
            "GPU index."
        );
        let input = Value::Object(tool.input_schema.clone());
        let output = Value::Object(tool.output_schema.clone().unwrap());
        for schema in [&input, &output] {
            assert!(!contains_key(schema, "$ref"), "{schema}");
            assert!(!contains_key(schema, "$defs"), "{schema}");
        }
        assert_eq!(
            output["properties"]["gpus"]["items"]["properties"]["uuid"]["type"],
            "string"
        );
        assert_eq!(
            serde_json::to_value(tool.annotations.unwrap()).unwrap(),
            json!({"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false})
        );
        assert_eq!(tool.title.as_deref(), Some("Get GPU"));
    }

    #[test]
    fn non_object_types_are_rejected() {
        let tool = tool_definition::<Vec<u32>, Output>("x", "X", "x");
        assert!(validate_tool(&tool).is_err());
        assert!(try_tool_definition::<Input, String>("x", "X", "x").is_err());
        assert!(try_tool_definition::<Input, Output>("bad name", "X", "x").is_err());
        assert!(try_tool_definition::<Input, Output>("ok.name-1_2", "X", "x").is_ok());
    }

    #[test]
    fn tool_names() {
        assert!(is_valid_tool_name("get_gpu_health"));
        assert!(is_valid_tool_name("a.b-c_D9"));
        assert!(is_valid_tool_name(&"a".repeat(128)));
        assert!(!is_valid_tool_name(&"a".repeat(129)));
        assert!(!is_valid_tool_name(""));
        assert!(!is_valid_tool_name("has space"));
        assert!(!is_valid_tool_name("slash/name"));
        assert!(!is_valid_tool_name("ünïcode"));
    }

    #[test]
    fn duplicates_are_rejected() {
        let t = tool_definition::<Input, Output>("a", "A", "a");
        assert!(validate_tools(std::slice::from_ref(&t)).is_ok());
        assert!(matches!(
            validate_tools(&[t.clone(), t]),
            Err(Error::DuplicateTool(n)) if n == "a"
        ));
    }

    fn error_text(r: CallToolResult) -> String {
        assert!(r.failed());
        r.content[0].as_text().unwrap().to_owned()
    }

    #[test]
    fn arguments_parse_and_default() {
        let args = json!({"index": 2, "verbose": true}).as_object().cloned();
        let input: Input = parse_arguments(args).unwrap();
        assert_eq!(input.index, Some(2));
        let input: Input = parse_arguments(None).unwrap();
        assert_eq!(
            input,
            Input {
                index: None,
                verbose: false,
                filter: None
            }
        );
    }

    #[test]
    fn wrong_type_names_the_argument() {
        let args = json!({"index": "zero"}).as_object().cloned();
        let text = error_text(parse_arguments::<Input>(args).unwrap_err());
        assert!(text.contains("`index`"), "{text}");
        assert!(text.contains("invalid type"), "{text}");
        let args = json!({"filter": {"min_temp": -1}}).as_object().cloned();
        let text = error_text(parse_arguments::<Input>(args).unwrap_err());
        assert!(text.contains("`filter.min_temp`"), "{text}");
    }

    #[test]
    fn unknown_argument_is_named() {
        let args = json!({"index": 1, "colour": "red"}).as_object().cloned();
        let text = error_text(parse_arguments::<Input>(args).unwrap_err());
        assert!(text.contains("colour"), "{text}");
        assert!(text.contains("unknown field"), "{text}");
    }

    #[test]
    fn missing_argument_is_named() {
        let ok: Required = parse_arguments(json!({"node": "n1"}).as_object().cloned()).unwrap();
        assert_eq!(ok.node, "n1");
        let text = error_text(parse_arguments::<Required>(None).unwrap_err());
        assert!(text.contains("`node`"), "{text}");
        assert!(text.contains("missing field"), "{text}");
    }
}
