//! A tool's definition derived from Rust types: `inputSchema` and `outputSchema` generated with
//! schemars (JSON Schema draft 2020-12, subschemas inlined so there is no `$ref`, no `$schema`,
//! root `type: object`, the root's `title`/`description` removed because the tool carries its
//! own). The input schema follows the deserialize contract, the output schema the serialize
//! contract.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

use crate::JsonObject;
use crate::mcp::{Tool, ToolAnnotations};

fn object_schema<T: JsonSchema>(for_serialize: bool) -> Value {
    let mut settings = SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    if for_serialize {
        settings = settings.for_serialize();
    }
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    if let Some(root) = schema.as_object_mut() {
        root.remove("title");
        root.remove("description");
    }
    schema
}

/// A read-only tool's definition, with schemas generated from its argument type `I` and its
/// structured result type `O` (both must be structs, i.e. JSON objects).
///
/// Annotations are `readOnlyHint: true, destructiveHint: false, idempotentHint: true,
/// openWorldHint: false`; change them on the returned value for a tool that is not.
/// A type whose schema is not an object yields a definition that the server core's tool
/// validation rejects (its `try_tool_definition` fails at once).
pub fn tool_definition<I: JsonSchema, O: JsonSchema>(
    name: impl Into<String>,
    title: impl Into<String>,
    description: impl Into<String>,
) -> Tool {
    let name = name.into();
    let input = object_schema::<I>(false);
    let output = object_schema::<O>(true);
    Tool {
        name,
        title: Some(title.into()),
        description: description.into(),
        input_schema: into_object(input),
        output_schema: Some(into_object(output)),
        annotations: Some(ToolAnnotations::read_only()),
    }
}

/// A non-object schema is kept visible (under `not-an-object`) so validation reports it.
fn into_object(schema: Value) -> JsonObject {
    match schema {
        Value::Object(o) => o,
        other => {
            let mut o = JsonObject::new();
            o.insert("not-an-object".into(), other);
            o
        }
    }
}
