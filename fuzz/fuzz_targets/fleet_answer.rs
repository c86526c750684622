//! What the gateway makes of its agents' answers, past their decoding: a fleet of up to ten
//! agents answering whatever the input says (well-formed answers of the right and the wrong
//! shape, tool and JSON-RPC errors, refusals of `detail`, garbage, transport failures, the
//! input's own bytes as a result; verdict words, control characters, line breaks, invisible
//! formatting, huge strings, the extremes of JSON numbers, nesting deeper than the JSON reader
//! takes), their bytes read by the HTTP transport's body reader (JSON or an event stream) or
//! the exec transport's stdout reader, routed by the `Router` and answered by the gateway's
//! `ClusterCatalog`: every GPU tool at every `detail`, each with `node`, and `list_gpu_nodes`.
//!
//! It never panics; every fan-out and list answer counts every node once (answering, failed or
//! not ready: a node that always answers well is never counted failed, one that never answers
//! always is); under `summary` and `problems` the answer stays within 24 KB of structured
//! content and 16 KB of text; the words carry no control character but their own line breaks,
//! no invisible formatting and no line an agent started.
//!
//! The fleets and the checks are `crates/gpu-mcp-fleet/tests/support/agent_replies.rs`, which
//! the crate's property tests (`tests/agent_replies.rs`) run in CI.
#![no_main]

#[path = "../../crates/gpu-mcp-fleet/tests/support/agent_replies.rs"]
mod agent_replies;

use std::sync::{Arc, OnceLock};

use agent_replies::{Agents, Fleet, check_fleet, gateway};
use gpu_mcp_fleet::ClusterCatalog;
use libfuzzer_sys::fuzz_target;

struct Harness {
    runtime: tokio::runtime::Runtime,
    catalog: ClusterCatalog,
    agents: Arc<Agents>,
}

/// One runtime and one catalog for every input (the tool definitions take a while to derive).
fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => panic!("a runtime: {e}"),
        };
        let (catalog, agents) = gateway();
        Harness {
            runtime,
            catalog,
            agents,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    h.runtime
        .block_on(check_fleet(&h.catalog, &h.agents, Fleet::from_bytes(data)));
});
