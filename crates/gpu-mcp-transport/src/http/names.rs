//! The MCP header names as [`HeaderName`]s, made at compile time: a [`HeaderMap`] lookup by a
//! string parses and checks the name on every call.

use gpu_mcp_protocol::http::{
    METHOD_HEADER, NAME_HEADER, PROTOCOL_VERSION_HEADER, SESSION_ID_HEADER,
};
use http::{HeaderMap, HeaderName, HeaderValue};

/// `Mcp-Session-Id`.
pub(super) static SESSION_ID: HeaderName = HeaderName::from_static(SESSION_ID_HEADER);
/// `MCP-Protocol-Version`.
static PROTOCOL_VERSION: HeaderName = HeaderName::from_static(PROTOCOL_VERSION_HEADER);
/// `Mcp-Method`.
static METHOD: HeaderName = HeaderName::from_static(METHOD_HEADER);
/// `Mcp-Name`.
static NAME: HeaderName = HeaderName::from_static(NAME_HEADER);

/// The value of the header named `name` (lower case), through its prepared name where it is
/// one of the MCP headers.
pub(super) fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a HeaderValue> {
    let prepared = match name {
        PROTOCOL_VERSION_HEADER => &PROTOCOL_VERSION,
        METHOD_HEADER => &METHOD,
        NAME_HEADER => &NAME,
        SESSION_ID_HEADER => &SESSION_ID,
        other => return headers.get(other),
    };
    headers.get(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_names_find_what_string_names_find() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "MCP-Protocol-Version",
            HeaderValue::from_static("2025-11-25"),
        );
        headers.insert("mcp-name", HeaderValue::from_static("get_gpu_health"));
        headers.insert("x-other", HeaderValue::from_static("1"));
        for name in [
            PROTOCOL_VERSION_HEADER,
            METHOD_HEADER,
            NAME_HEADER,
            SESSION_ID_HEADER,
            "x-other",
            "x-absent",
        ] {
            assert_eq!(get(&headers, name), headers.get(name), "{name}");
        }
        assert_eq!(
            get(&headers, PROTOCOL_VERSION_HEADER),
            Some(&HeaderValue::from_static("2025-11-25"))
        );
    }
}
