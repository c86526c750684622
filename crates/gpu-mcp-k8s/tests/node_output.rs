//! The node transports' readers over any bytes an agent may send: the exec transport's stdout
//! reader and the HTTP transport's JSON and event-stream body reader never panic, find only the
//! response to the request's id, find a response line that stands alone, keep the exec reader's
//! limit and garbage snippet, and word every refusal without a control character. The fuzz
//! target `node_output` (`cargo xtask fuzz`) runs the same checks for longer
//! (`support/node_output.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/node_output.rs"]
mod node_output;

use node_output::{RESPONSE_LINE, check_output};
use proptest::prelude::*;

fn check(input: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(check_output(input));
}

/// 256 cases each, or `PROPTEST_CASES` for a longer hunt.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    config
}

/// Lines an agent may write around its response.
fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(RESPONSE_LINE.to_vec()),
        Just(b"{\"jsonrpc\":\"2.0\",\"id\":\"gpu-mcp-k8s-initialize\",\"result\":{}}".to_vec()),
        Just(b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"x\"}".to_vec()),
        Just(b"{\"jsonrpc\":\"2.0\",\"id\":6,\"result\":{}}".to_vec()),
        Just(b"data: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":1}".to_vec()),
        Just(b"event: message".to_vec()),
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 0..80),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_are_read_without_a_panic(input in proptest::collection::vec(any::<u8>(), 0..600)) {
        check(&input);
    }

    #[test]
    fn lines_around_a_response_are_read_as_agents_write_them(
        step in any::<u8>(),
        limit in any::<u8>(),
        lines in proptest::collection::vec(line(), 0..8),
        crlf in any::<bool>(),
    ) {
        let mut input = vec![step, limit];
        for l in lines {
            input.extend(l);
            input.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
        check(&input);
    }
}

#[test]
fn the_fuzz_seeds_pass() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/node_output");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        check(&std::fs::read(entry.unwrap().path()).unwrap());
        seen += 1;
    }
    assert!(seen > 0, "no seeds under {dir}");
}
