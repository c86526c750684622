//! What the gateway does with the bytes of an agent's reply, through its protocol and model
//! parts: the HTTP node transport reads the body as JSON and then as a JSON-RPC message
//! (`message_from_value`); the fleet reads a response's result as a `CallToolResult`
//! (already-encoded or as a value), its structured content, and the model types it joins
//! (`GpuProcessesReport`, the `Verdict` words).
//!
//! This target stays at those layers, so it runs fast and its findings name them. What the
//! gateway's own crates do with the same bytes is fuzzed by `node_output` (the node transports'
//! readers in `gpu-mcp-k8s`: an exec'd agent's stdout, an HTTP JSON or event-stream body) and
//! `fleet_answer` (a fleet of agents answering anything, through those readers, the router and
//! `gpu-mcp-fleet`'s catalog: the fan-out aggregation and shaping, `list_gpu_nodes`, the answers
//! with `node`).
//!
//! It never panics; reading the bytes as JSON first and decoding the value agrees with decoding
//! the bytes at once; a tool result and a process report the gateway accepted re-encode to what
//! reads back the same.
#![no_main]

use gpu_mcp_fuzz::{json_of, same_json};
use gpu_mcp_model::output::Verdict;
use gpu_mcp_model::processes::GpuProcessesReport;
use gpu_mcp_protocol::{CallToolResult, Message, message_from_value, parse_message};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let direct = parse_message(data);
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        assert!(
            direct.is_err(),
            "bytes that are not JSON decoded as a message"
        );
        return;
    };
    let via_value = message_from_value(value);
    match (&direct, &via_value) {
        (Ok(a), Ok(b)) => assert!(same_json(&json_of(a), &json_of(b)), "{a:?} vs {b:?}"),
        (Err(a), Err(b)) => assert_eq!(
            a.error.as_ref().map(|e| e.code),
            b.error.as_ref().map(|e| e.code)
        ),
        _ => panic!("the two decoders disagree: {direct:?} vs {via_value:?}"),
    }
    let Ok(Message::Response(response)) = via_value else {
        return;
    };
    if let Some(error) = &response.error {
        let _ = (error.code, error.message.len());
        return;
    }
    let read = match response.encoded_result() {
        Some(raw) => serde_json::from_str::<CallToolResult>(raw.get()),
        None => match &response.result {
            Some(result) => serde_json::from_value::<CallToolResult>(result.clone()),
            None => return,
        },
    };
    let Ok(result) = read else { return };
    let _ = result.failed();
    let _: String = result.content.iter().filter_map(|c| c.as_text()).collect();

    // The result the gateway passes on re-encodes to one that reads back the same.
    let Ok(raw) = result.to_raw_value(None) else {
        panic!("an accepted tool result does not encode");
    };
    let Ok(back) = serde_json::from_str::<CallToolResult>(raw.get()) else {
        panic!("a re-encoded tool result does not decode: {}", raw.get());
    };
    assert!(
        same_json(&json_of(&back), &json_of(&result)),
        "{result:?} vs {back:?}"
    );

    let Some(structured) = result.structured_value() else {
        return;
    };
    if let Some(word) = structured.get("verdict") {
        let _ = serde_json::from_value::<Verdict>(word.clone());
    }
    if let Ok(report) = serde_json::from_value::<GpuProcessesReport>(structured.into_owned()) {
        let again = serde_json::from_value::<GpuProcessesReport>(json_of(&report));
        assert!(
            again
                .as_ref()
                .is_ok_and(|a| same_json(&json_of(a), &json_of(&report))),
            "a process report does not survive re-encoding: {report:?} vs {again:?}"
        );
    }
});
