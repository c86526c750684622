#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The GPU prompts through the model's public API: definitions per scope, the tool calls the
//! filled prompts steer to, argument errors, and the completion values that need no lookup.

use std::collections::BTreeMap;

use gpu_mcp_model::prompts::*;
use gpu_mcp_model::{Error, GET_GPU_HEALTH};
use gpu_mcp_protocol::mcp::GetPromptResult;

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn text(r: &GetPromptResult) -> &str {
    r.messages[0].content.as_text().unwrap_or_default()
}

#[test]
fn the_agent_prompts_take_no_node() {
    for p in gpu_prompts(PromptScope::Node) {
        assert!(p.arguments.iter().all(|a| a.name != ARG_NODE), "{}", p.name);
    }
    let fleet = gpu_prompts(PromptScope::Fleet);
    assert!(fleet.iter().all(|p| p.arguments[0].name == ARG_NODE));
    let names: Vec<_> = fleet.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            GPU_HEALTH_CHECK,
            DIAGNOSE_XID_ERRORS,
            GPU_TRIAGE,
            GPU_DRAIN_CHECK
        ]
    );
    let err = render_prompt(PromptScope::Node, GPU_TRIAGE, &args(&[("node", "n1")]));
    assert!(matches!(err, Err(Error::UnknownPromptArgument { .. })));
}

#[test]
fn arguments_steer_the_tool_calls() {
    let r = render_prompt(
        PromptScope::Fleet,
        GPU_HEALTH_CHECK,
        &args(&[("node", "gpu-node-5"), ("gpu", "3"), ("since", "2h")]),
    )
    .unwrap();
    let t = text(&r);
    assert!(t.contains("list_gpu_nodes"), "{t}");
    assert!(
        t.contains(r#"{"node": "gpu-node-5", "gpu_index": 3, "xid_since": "2h"}"#),
        "{t}"
    );
    let list = t.find("list_gpu_nodes").unwrap_or(usize::MAX);
    let health = t.find(GET_GPU_HEALTH).unwrap_or(0);
    assert!(list < health, "nodes are listed before health is asked");

    let r = render_prompt(
        PromptScope::Node,
        DIAGNOSE_XID_ERRORS,
        &args(&[
            ("gpu", "GPU-5d3c1a2b-0000-1111-2222-333344445555"),
            ("since", ""),
        ]),
    )
    .unwrap();
    let t = text(&r);
    assert!(
        !t.contains("list_gpu_nodes") && !t.contains("\"node\""),
        "{t}"
    );
    assert!(
        t.contains(r#""gpu_uuid": "GPU-5d3c1a2b-0000-1111-2222-333344445555", "since": "24h""#),
        "{t}"
    );
}

#[test]
fn bad_arguments_are_named() {
    let e = render_prompt(PromptScope::Node, GPU_TRIAGE, &args(&[("gpu", "first")]));
    assert!(e.unwrap_err().to_string().contains("`gpu`"));
    let e = render_prompt(
        PromptScope::Node,
        GPU_TRIAGE,
        &args(&[("since", "yesterday")]),
    );
    assert!(e.unwrap_err().to_string().contains("`since`"));
    let e = render_prompt(PromptScope::Fleet, GPU_DRAIN_CHECK, &args(&[]));
    assert!(matches!(e, Err(Error::MissingPromptArgument { .. })));
    assert!(render_prompt(PromptScope::Node, GPU_DRAIN_CHECK, &args(&[])).is_ok());
    let e = render_prompt(PromptScope::Node, "nope", &args(&[]));
    assert!(matches!(e, Err(Error::UnknownPrompt(n)) if n == "nope"));
}

#[test]
fn a_gpu_value_with_a_multi_byte_character_at_byte_four_is_refused_not_a_panic() {
    // Found by the `tool_arguments` fuzz target: the UUID check sliced the value at byte 4.
    for value in ["gpu\u{4d7}sde-1", "GPU\u{e9}", "\u{1f600}-0"] {
        let e = render_prompt(PromptScope::Node, GPU_TRIAGE, &args(&[("gpu", value)]));
        assert!(e.unwrap_err().to_string().contains("`gpu`"), "{value:?}");
    }
    assert!(GpuSelector::parse("GPU-\u{e9}").is_err());
}

#[test]
fn since_completes_without_a_lookup_and_every_suggestion_is_valid() {
    for s in SINCE_SUGGESTIONS {
        let given = args(&[("since", s)]);
        assert!(
            render_prompt(PromptScope::Node, GPU_TRIAGE, &given).is_ok(),
            "{s}"
        );
    }
    let c = static_completion(PromptScope::Node, GPU_TRIAGE, ARG_SINCE, "3").unwrap();
    assert_eq!(c.values, ["30m", "30d"]);
    assert!(static_completion(PromptScope::Node, GPU_TRIAGE, ARG_GPU, "").is_none());
    assert!(static_completion(PromptScope::Node, "nope", ARG_SINCE, "").is_none());
}

#[test]
fn every_prompt_renders_in_both_scopes() {
    for scope in [PromptScope::Node, PromptScope::Fleet] {
        for p in gpu_prompts(scope) {
            let given = if scope == PromptScope::Fleet {
                args(&[("node", "n1")])
            } else {
                args(&[])
            };
            let r = render_prompt(scope, &p.name, &given).unwrap();
            assert!(text(&r).contains(GET_GPU_HEALTH), "{}", p.name);
            assert_eq!(
                prompt_arguments(scope, &p.name).map(|a| a.len()),
                Some(p.arguments.len())
            );
        }
    }
}

#[test]
fn each_prompt_names_exactly_the_tools_it_declares() {
    let known: Vec<String> = gpu_mcp_model::gpu_tool_definitions()
        .into_iter()
        .map(|t| t.name)
        .chain([gpu_mcp_model::LIST_GPU_NODES.to_owned()])
        .collect();
    for scope in [PromptScope::Node, PromptScope::Fleet] {
        for p in gpu_prompts(scope) {
            let mut given = vec![];
            if scope == PromptScope::Fleet && p.name == GPU_DRAIN_CHECK {
                given.push(("node", "gpu-node-1"));
            }
            let filled = render_prompt(scope, &p.name, &args(&given)).unwrap();
            let declared = prompt_tools(scope, &p.name).unwrap();
            for tool in &known {
                assert_eq!(
                    text(&filled).contains(&format!("`{tool}`")),
                    declared.contains(&tool.as_str()),
                    "{scope:?} {}: {tool}",
                    p.name
                );
            }
        }
    }
    assert!(prompt_tools(PromptScope::Node, "nope").is_none());
}

#[test]
fn a_prompt_is_offered_only_with_all_its_tools() {
    let all = offered_prompts(PromptScope::Fleet, |_| true);
    assert_eq!(all.len(), 4);
    let no_cluster = offered_prompts(PromptScope::Fleet, |t| t != gpu_mcp_model::LIST_GPU_NODES);
    assert!(no_cluster.is_empty());
    let agent = offered_prompts(PromptScope::Node, |t| t != gpu_mcp_model::LIST_GPU_NODES);
    assert_eq!(agent.len(), 4);
    let no_health = offered_prompts(PromptScope::Node, |t| t != GET_GPU_HEALTH);
    assert!(no_health.is_empty());
}
