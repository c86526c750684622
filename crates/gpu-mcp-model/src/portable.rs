//! Makes generated schemas portable across MCP clients.
//!
//! schemars describes `Option<T>` as `type: [T, "null"]` (or an `anyOf` with a `null` branch) and
//! adds `format` values such as `uint32` or `double` that are not JSON Schema formats.
//! Gemini-style clients reject nullable type arrays in input schemas, and Ajv-based clients print a
//! warning for every unknown format.
//! Input schemas lose the `null` alternative (an optional argument is simply left out); every schema
//! loses the non-standard formats, keeping `minimum`/`maximum`, so output schemas stay exact.

use serde_json::Value;

/// The `format` values JSON Schema 2020-12 defines; every other one is removed.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// True when `format` is one JSON Schema 2020-12 defines.
pub fn is_standard_format(format: &str) -> bool {
    STANDARD_FORMATS.contains(&format)
}

/// Removes non-standard `format` values everywhere in `schema`.
pub fn strip_nonstandard_formats(schema: &mut Value) {
    match schema {
        Value::Object(o) => {
            if o.get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !is_standard_format(f))
            {
                o.remove("format");
            }
            for (_, v) in o.iter_mut() {
                strip_nonstandard_formats(v);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nonstandard_formats),
        _ => {}
    }
}

/// Removes the `null` alternative of every nullable schema in `schema`: `type: [T, "null"]` becomes
/// `type: T`, and an `anyOf` with a `{"type": "null"}` branch loses that branch (a single
/// remaining branch is merged into its parent).
pub fn strip_nullable(schema: &mut Value) {
    let Value::Object(o) = schema else {
        if let Value::Array(a) = schema {
            a.iter_mut().for_each(strip_nullable);
        }
        return;
    };
    if let Some(Value::Array(types)) = o.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            o.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(branches)) = o.get_mut("anyOf")
        && branches.iter().any(is_null_schema)
    {
        branches.retain(|b| !is_null_schema(b));
        if branches.len() == 1 {
            let only = branches.remove(0);
            o.remove("anyOf");
            if let Value::Object(inner) = only {
                for (k, v) in inner {
                    o.entry(k).or_insert(v);
                }
            }
        }
    }
    if o.get("default").is_some_and(Value::is_null) {
        o.remove("default");
    }
    for (_, v) in o.iter_mut() {
        strip_nullable(v);
    }
}

fn is_null_schema(v: &Value) -> bool {
    v.get("type").is_some_and(|t| t == "null")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nullable_types_and_branches_become_plain() {
        let mut s = json!({"properties": {
            "a": {"type": ["integer", "null"], "format": "uint32", "minimum": 0},
            "b": {"anyOf": [{"enum": ["x"]}, {"type": "null"}], "description": "d"},
            "c": {"type": "string", "format": "date-time"}
        }});
        strip_nullable(&mut s);
        strip_nonstandard_formats(&mut s);
        assert_eq!(
            s,
            json!({"properties": {
                "a": {"type": "integer", "minimum": 0},
                "b": {"enum": ["x"], "description": "d"},
                "c": {"type": "string", "format": "date-time"}
            }})
        );
    }
}
