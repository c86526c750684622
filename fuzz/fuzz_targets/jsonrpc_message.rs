//! The JSON-RPC/MCP decoder (`gpu_mcp_protocol::parse_message`) on arbitrary bytes: it never
//! panics, what it accepts encodes and decodes to itself, and what it refuses gets a clean
//! parse or invalid-request reply. The 2026-07-28 envelope reader and the header mirroring of
//! what decoded must not panic either.
#![no_main]

use gpu_mcp_fuzz::{assert_clean_refusal, assert_round_trip};
use gpu_mcp_protocol::envelope::envelope_version;
use gpu_mcp_protocol::http::{
    NAME_HEADER, decode_header_value, encode_header_value, mirrored_headers,
};
use gpu_mcp_protocol::{Message, parse_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_message(data) {
        Ok(message) => {
            assert_round_trip(&message);
            if let Message::Request(request) = &message {
                let _ = envelope_version(request.params.as_ref());
                for (header, value) in mirrored_headers(request) {
                    if header == NAME_HEADER {
                        assert!(value.is_ascii(), "an encoded Mcp-Name is ASCII: {value:?}");
                        assert!(decode_header_value(&value).is_some(), "{value:?} decodes");
                    }
                }
            }
        }
        Err(reply) => assert_clean_refusal(&reply),
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let encoded = encode_header_value(text);
        assert_eq!(decode_header_value(&encoded).as_deref(), Some(text));
    }
});
