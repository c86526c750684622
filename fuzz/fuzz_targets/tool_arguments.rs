//! Each GPU tool's argument parsing, as the server core does it (`parse_arguments` into the
//! `gpu-mcp-model` argument types), on arbitrary JSON; the time values the arguments carry
//! (`since`, `xid_since`) through the model's parser; the prompts' arguments through
//! `render_prompt` and completion.
//!
//! It never panics; a refusal is an `isError` tool result whose text names the problem; an
//! accepted object has only the properties the tool's generated `inputSchema` lists (the types
//! deny unknown fields, so schema and parser cannot drift); a window counts back from now.
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use gpu_mcp_model::args::{HealthArgs, InventoryArgs, XidArgs};
use gpu_mcp_model::processes::GpuProcessesArgs;
use gpu_mcp_model::prompts::{PromptScope, gpu_prompts, render_prompt, static_completion};
use gpu_mcp_model::time::{parse_since, parse_window};
use gpu_mcp_model::topology::TopologyArgs;
use gpu_mcp_model::{
    ANALYZE_XID_ERRORS, GET_GPU_HEALTH, GET_GPU_INVENTORY, GET_GPU_PROCESSES, GET_NVLINK_TOPOLOGY,
    gpu_tool_definitions,
};
use gpu_mcp_protocol::{CallToolRequestParams, JsonObject};
use gpu_mcp_service::parse_arguments;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Each tool's input-schema property names.
static PROPERTIES: LazyLock<BTreeMap<String, Vec<String>>> = LazyLock::new(|| {
    gpu_tool_definitions()
        .into_iter()
        .map(|tool| {
            let names = tool
                .input_schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            (tool.name, names)
        })
        .collect()
});

/// Parses `arguments` for `tool` as `T`; checks the refusal or the accepted keys.
fn parse<T: DeserializeOwned>(tool: &str, arguments: &JsonObject) -> Option<T> {
    match parse_arguments::<T>(Some(arguments.clone())) {
        Ok(parsed) => {
            let known = PROPERTIES.get(tool).map(Vec::as_slice).unwrap_or_default();
            for key in arguments.keys() {
                assert!(
                    known.contains(key),
                    "{tool} accepted `{key}`, which its inputSchema does not list"
                );
            }
            Some(parsed)
        }
        Err(refusal) => {
            assert!(refusal.failed(), "a refusal is an isError result");
            let text: String = refusal.content.iter().filter_map(|c| c.as_text()).collect();
            assert!(
                text.starts_with("Invalid argument"),
                "refusal text {text:?}"
            );
            None
        }
    }
}

fn check_since(since: Option<&str>) {
    let Some(since) = since else { return };
    let now = UNIX_EPOCH + Duration::from_secs(1 << 32);
    let parsed = parse_since(since, now);
    if let Some(window) = parse_window(since) {
        assert_eq!(
            parsed.ok(),
            now.checked_sub(window),
            "{since:?} counts back from now"
        );
    }
}

fn check_prompts(arguments: &JsonObject) {
    let strings: BTreeMap<String, String> = arguments
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect();
    for scope in [PromptScope::Node, PromptScope::Fleet] {
        for prompt in gpu_prompts(scope) {
            let _ = render_prompt(scope, &prompt.name, &strings);
            for (argument, prefix) in &strings {
                let _ = static_completion(scope, &prompt.name, argument, prefix);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // A `tools/call` params object gives its own tool and arguments; any other object is the
    // arguments of every tool.
    let arguments = match serde_json::from_value::<CallToolRequestParams>(value.clone()) {
        Ok(CallToolRequestParams {
            arguments: Some(arguments),
            ..
        }) => arguments,
        _ => match value {
            Value::Object(arguments) => arguments,
            _ => return,
        },
    };
    let _ = parse::<InventoryArgs>(GET_GPU_INVENTORY, &arguments);
    if let Some(args) = parse::<HealthArgs>(GET_GPU_HEALTH, &arguments) {
        check_since(args.xid_since.as_deref());
    }
    if let Some(args) = parse::<XidArgs>(ANALYZE_XID_ERRORS, &arguments) {
        check_since(args.since.as_deref());
    }
    let _ = parse::<GpuProcessesArgs>(GET_GPU_PROCESSES, &arguments);
    let _ = parse::<TopologyArgs>(GET_NVLINK_TOPOLOGY, &arguments);
    for value in arguments.values() {
        check_since(value.as_str());
    }
    check_prompts(&arguments);
});
