//! What the node transports make of an agent's bytes: the exec transport's reader of an exec'd
//! agent's standard output (`read_response`, the input handed out a few bytes at a time, under a
//! size limit the input chooses) and the HTTP transport's reader of a JSON or event-stream body
//! (`response_from_body`).
//!
//! It never panics; a response found is the one to the request's id; the exec reader says "too
//! large" only past its limit, finds a response line that stands alone within it and keeps a
//! bounded snippet of garbage; the HTTP reader accepts a JSON body exactly when it is the
//! JSON-RPC response to the request; no error message carries a control character.
//!
//! The checks are `crates/gpu-mcp-k8s/tests/support/node_output.rs`, which the crate's
//! property tests (`tests/node_output.rs`) run in CI.
#![no_main]

#[path = "../../crates/gpu-mcp-k8s/tests/support/node_output.rs"]
mod node_output;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(e) => panic!("a runtime: {e}"),
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(node_output::check_output(data));
});
