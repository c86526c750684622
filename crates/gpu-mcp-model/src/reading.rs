//! One field read from the driver: [`Reading`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One field read from the driver: a value, "not supported on this GPU", or the error the driver
/// returned for this field alone.
///
/// Serialised as `{"value": ...}`, the string `"not_supported"`, or `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading<T> {
    /// The value read.
    Value(T),
    /// The GPU or driver does not support this field.
    NotSupported,
    /// Reading this field failed.
    Error(String),
}

impl<T> Reading<T> {
    /// The value, if one was read.
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Value(v) => Some(v),
            _ => None,
        }
    }

    /// The value by copy, if one was read.
    pub fn get(&self) -> Option<T>
    where
        T: Copy,
    {
        self.value().copied()
    }

    /// Maps the value, keeping "not supported" and errors.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Reading<U> {
        match self {
            Self::Value(v) => Reading::Value(f(v)),
            Self::NotSupported => Reading::NotSupported,
            Self::Error(e) => Reading::Error(e),
        }
    }

    /// A reading by reference.
    pub fn as_ref(&self) -> Reading<&T> {
        match self {
            Self::Value(v) => Reading::Value(v),
            Self::NotSupported => Reading::NotSupported,
            Self::Error(e) => Reading::Error(e.clone()),
        }
    }
}

/// A compact schema (the field's own description says what the value is): tools list these
/// schemas for every field, so each repetition is kept small.
impl<T: JsonSchema> JsonSchema for Reading<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Reading_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let value = generator.subschema_for::<T>();
        schemars::json_schema!({
            "anyOf": [
                {"type": "object", "properties": {"value": value}, "required": ["value"]},
                {"const": "not_supported"},
                {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
            ]
        })
    }
}

/// "Not supported": what an older snapshot without the field means.
impl<T> Default for Reading<T> {
    fn default() -> Self {
        Self::NotSupported
    }
}

impl<T> From<Option<T>> for Reading<T> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::NotSupported, Self::Value)
    }
}
