//! The gateway's tool definitions, derived from the agent's: each GPU tool gains the optional
//! `node` argument and an output schema that admits the single-node and the fan-out answers;
//! `list_gpu_nodes` is added. Nothing here is a second, hand-kept list of tools.

use gpu_mcp_k8s::{MAX_NODE_NAME_LEN, NODE_NAME_PATTERN};
use gpu_mcp_model::portable::{strip_nonstandard_formats, strip_nullable};
use gpu_mcp_protocol::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use crate::fleet_args::FleetArgsInput;
use crate::listing::{LIST_GPU_NODES, ListGpuNodesInput, NodeList};
use crate::node_arg::NODE_ARGUMENT;
use crate::shape::FleetAnswer;
use crate::single::{NodeAnswer, with_node_words};

/// What the gateway appends to every GPU tool's description.
const NODE_DESCRIPTION_SUFFIX: &str = "\n\nCluster gateway: omit `node` to ask every node at once; on a \
cluster of any size the answer is a summary, not everything: the fleet totals (`summary`, nodes and \
GPUs by verdict, nodes that did not answer), then only the nodes that need attention, worst first, \
with their findings and actions (`problems`), then what was left out and how to get it (`omitted`, \
`next_cursor`). Start here on a large cluster. Narrow with `node_pattern` (for example \
`gpu-a100-*`) or `min_verdict`; `detail: \"full\"` pages through every node's complete answer \
(`node_limit` per page, `cursor` for the next). Then drill down: pass `node` (a name from \
`list_gpu_nodes` or the fleet answer) to get that node's answer under `result`, tagged with \
`node` and `pod`: complete by default, narrowed by `detail` where this tool can narrow it (see \
`detail`).";

/// The `node` property added to every GPU tool's input schema.
pub(crate) fn node_property_schema() -> Value {
    json!({
        "type": "string",
        "description": "Kubernetes node to query (see list_gpu_nodes). Omit to query every node \
    and get per-node results plus a summary.",
        "minLength": 1,
        "maxLength": MAX_NODE_NAME_LEN,
        "pattern": NODE_NAME_PATTERN,
    })
}

/// Generates an inlined, draft 2020-12 schema of `T` without `$schema`, as an object.
pub(crate) fn schema_of<T: JsonSchema>(serialize: bool) -> JsonObject {
    let mut settings = SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    if serialize {
        settings = settings.for_serialize();
    }
    let schema = settings.into_generator().into_root_schema_for::<T>();
    match schema.to_value() {
        Value::Object(o) => o,
        // A `true` schema (anything goes) has no object form; spell it out.
        _ => JsonObject::new(),
    }
}

/// Strips the root's `title` and `description`, as MCP tool schemas carry them on the tool.
pub(crate) fn strip_root_annotations(mut schema: JsonObject) -> JsonObject {
    schema.remove("title");
    schema.remove("description");
    schema
}

/// Puts `result` into the object schema at `schema.properties.result`.
fn set_result_schema(schema: &mut JsonObject, result: &Value) {
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        props.insert("result".into(), result.clone());
    }
}

/// The gateway's output schema for a GPU tool whose agent output schema is `agent_output`
/// (`None`: any object): either a [`NodeAnswer`] or a [`FanOutAnswer`], with the agent's schema
/// in place of each `result`.
pub(crate) fn gateway_output_schema(agent_output: Option<&JsonObject>) -> JsonObject {
    let result =
        agent_output.map_or_else(|| json!({"type": "object"}), |o| Value::Object(o.clone()));
    let mut single = strip_root_annotations(schema_of::<NodeAnswer>(true));
    set_result_schema(&mut single, &result);
    let mut fan_out = strip_root_annotations(schema_of::<FleetAnswer>(true));
    if let Some(Value::Object(items)) = fan_out
        .get_mut("properties")
        .and_then(|p| p.get_mut("nodes"))
        .and_then(|n| n.get_mut("items"))
    {
        set_result_schema(items, &result);
    }
    let mut root = json!({
        "type": "object",
        "anyOf": [Value::Object(single), Value::Object(fan_out)],
    });
    strip_nonstandard_formats(&mut root);
    match root {
        Value::Object(o) => o,
        _ => JsonObject::new(),
    }
}

/// The schema with [`gpu_mcp_model::portable`] applied (inputs also lose nullable types).
pub(crate) fn portable(schema: JsonObject, input: bool) -> JsonObject {
    let mut schema = Value::Object(schema);
    if input {
        strip_nullable(&mut schema);
    }
    strip_nonstandard_formats(&mut schema);
    match schema {
        Value::Object(o) => o,
        _ => JsonObject::new(),
    }
}

/// The input-schema properties of the gateway's own arguments of `tool`, each description saying
/// what the argument does with `node` for this tool.
fn fleet_argument_properties(tool: &str) -> JsonObject {
    let mut schema = Value::Object(schema_of::<FleetArgsInput>(false));
    strip_nullable(&mut schema);
    strip_nonstandard_formats(&mut schema);
    let mut props = match schema.get_mut("properties").map(Value::take) {
        Some(Value::Object(props)) => props,
        _ => JsonObject::new(),
    };
    for (name, property) in &mut props {
        if let (Some(words), Some(Value::String(description))) =
            (with_node_words(tool, name), property.get_mut("description"))
        {
            description.push(' ');
            description.push_str(words);
        }
    }
    props
}

/// One agent tool as the gateway serves it: the `node` property in its input schema, the
/// description extended, the output schema wrapped.
pub(crate) fn with_node_argument(mut tool: Tool) -> Tool {
    let properties = tool
        .input_schema
        .entry("properties")
        .or_insert_with(|| Value::Object(JsonObject::new()));
    if let Value::Object(props) = properties {
        props.insert(NODE_ARGUMENT.into(), node_property_schema());
        for (name, schema) in fleet_argument_properties(&tool.name) {
            // The gateway reads its own arguments and never forwards the client's as they are,
            // so its schema replaces an agent argument of the same name (`get_gpu_health`'s
            // `detail` and `min_verdict`, which a fan-out sets itself to narrow what agents send
            // and a call with `node` maps to the agent's values).
            props.insert(name, schema);
        }
    }
    // A `node` the agent declared required (it never should) must not make the argument mandatory.
    if let Some(Value::Array(required)) = tool.input_schema.get_mut("required") {
        required.retain(|r| r != NODE_ARGUMENT);
    }
    tool.description.push_str(NODE_DESCRIPTION_SUFFIX);
    tool.output_schema = Some(gateway_output_schema(tool.output_schema.as_ref()));
    tool
}

/// The definition of `list_gpu_nodes`.
pub(crate) fn list_gpu_nodes_tool() -> Tool {
    Tool {
        name: LIST_GPU_NODES.into(),
        title: Some("List GPU nodes".into()),
        description: "List the Kubernetes nodes that run a GPU diagnostics agent: node name (the \
value for the `node` argument of the GPU tools), agent pod name and IP, readiness, and for each \
agent that answers within the node timeout its GPU count, GPU models and health verdict. Nodes \
whose agent does not answer are listed with the reason."
            .into(),
        input_schema: {
            let mut schema = strip_root_annotations(schema_of::<ListGpuNodesInput>(false));
            // Some clients require `properties` even when there are none.
            schema
                .entry("properties")
                .or_insert_with(|| Value::Object(JsonObject::new()));
            portable(schema, true)
        },
        output_schema: Some(portable(
            strip_root_annotations(schema_of::<NodeList>(true)),
            false,
        )),
        annotations: Some(ToolAnnotations {
            title: Some("List GPU nodes".into()),
            read_only_hint: Some(true),
            destructive_hint: Some(false),
            idempotent_hint: Some(true),
            open_world_hint: Some(false),
        }),
    }
}

/// The gateway's definitions over `agent_tools` (what a gateway serving every toolset with the
/// cluster context lists), without a router: for generated references.
pub fn gateway_tool_definitions(agent_tools: Vec<Tool>) -> Vec<Tool> {
    let mut tools = gateway_tools(agent_tools);
    tools.extend(crate::kube::kube_tools());
    tools
}

/// The gateway's catalog: `list_gpu_nodes`, then every agent tool with the `node` argument.
pub(crate) fn gateway_tools(agent_tools: Vec<Tool>) -> Vec<Tool> {
    std::iter::once(list_gpu_nodes_tool())
        .chain(
            agent_tools
                .into_iter()
                .filter(|t| t.name != LIST_GPU_NODES)
                .map(with_node_argument),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{FailureKind, NodeFailure, NodeOutcome};
    use crate::fleet_args::{Detail, FleetArgs};
    use gpu_mcp_k8s::NodeName;
    use gpu_mcp_protocol::CallToolResult;
    use std::time::Duration;

    fn agent_tool() -> Tool {
        Tool {
            name: "get_gpu_health".into(),
            title: Some("GPU health".into()),
            description: "Health of every GPU.".into(),
            input_schema: json!({
                "type": "object",
                "properties": {"include_processes": {"type": "boolean", "default": false}},
                "additionalProperties": false
            })
            .as_object()
            .cloned()
            .unwrap(),
            output_schema: json!({
                "type": "object",
                "properties": {"gpus": {"type": "array", "items": {"type": "object",
                    "properties": {"verdict": {"type": "string"}}, "required": ["verdict"]}}},
                "required": ["gpus"]
            })
            .as_object()
            .cloned(),
            annotations: None,
        }
    }

    #[test]
    fn node_property_is_added_and_documented() {
        let tools = gateway_tools(vec![agent_tool()]);
        assert_eq!(tools.len(), 2);
        assert_eq!(tools[0].name, LIST_GPU_NODES);
        let t = &tools[1];
        assert_eq!(t.name, "get_gpu_health");
        let node = &t.input_schema["properties"]["node"];
        assert_eq!(node["type"], "string");
        assert_eq!(node["maxLength"], 253);
        assert!(
            node["description"]
                .as_str()
                .unwrap()
                .contains("list_gpu_nodes")
        );
        assert!(
            t.input_schema["properties"]
                .get("include_processes")
                .is_some()
        );
        assert_eq!(t.input_schema["additionalProperties"], false);
        assert!(t.input_schema.get("required").is_none());
        assert!(t.description.starts_with("Health of every GPU."));
        assert!(t.description.contains("`node`"));
    }

    #[test]
    fn node_schema_agrees_with_the_validator() {
        let validator = jsonschema::validator_for(&node_property_schema()).unwrap();
        let long = "a".repeat(254);
        let label = "a".repeat(63);
        for name in [
            "gpu-node-1",
            "a",
            "ip-10-0-1-5.ec2.internal",
            "",
            "Gpu",
            "../x",
            "a;b",
            "a\nb",
            "-a",
            "a-",
            "a..b",
            long.as_str(),
            label.as_str(),
        ] {
            assert_eq!(
                validator.is_valid(&json!(name)),
                NodeName::try_from(name).is_ok(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn output_schema_admits_both_answer_shapes() {
        let t = with_node_argument(agent_tool());
        let schema = Value::Object(t.output_schema.clone().unwrap());
        assert_eq!(schema["type"], "object");
        assert!(!schema.to_string().contains("$ref"));
        let validator = jsonschema::validator_for(&schema).unwrap();

        let result = json!({"gpus": [{"verdict": "healthy"}]});
        let single = serde_json::to_value(NodeAnswer {
            node: "n1".into(),
            pod: Some("p1".into()),
            not_narrowed: None,
            result: result.clone(),
        })
        .unwrap();
        assert!(validator.is_valid(&single), "{single}");
        let not_narrowed = serde_json::to_value(NodeAnswer {
            not_narrowed: Some("the agent refused `detail`".into()),
            ..serde_json::from_value(single.clone()).unwrap()
        })
        .unwrap();
        assert!(validator.is_valid(&not_narrowed), "{not_narrowed}");

        let built = crate::aggregate::FanOutAnswer::build(
            "get_gpu_health",
            vec![
                NodeOutcome {
                    node: "n1".into(),
                    pod: None,
                    duration: Duration::from_millis(1),
                    reply: Ok(CallToolResult::structured(result, "{}")),
                },
                NodeOutcome {
                    node: "n2".into(),
                    pod: None,
                    duration: Duration::from_millis(1),
                    reply: Err(NodeFailure::new(FailureKind::Timeout, "slow")),
                },
            ],
        );
        for detail in [Detail::Summary, Detail::Problems, Detail::Full] {
            let args = FleetArgs {
                detail,
                ..FleetArgs::default()
            };
            let answer = crate::shape::shape(
                "get_gpu_health",
                built.nodes.clone(),
                built.summary.clone(),
                &args,
            )
            .unwrap();
            let fan_out = serde_json::to_value(answer).unwrap();
            assert!(validator.is_valid(&fan_out), "{fan_out}");
        }
        let fan_out = json!({"headline": "x", "detail": "full", "summary": built.summary,
            "omitted": {"healthy_nodes": 0, "problem_nodes": 0, "failed_nodes": 0, "nodes": 0,
                        "how": ""},
            "nodes": [{"name": "n1", "pod": null, "ok": true, "result": {"gpus": [{}]},
                       "duration_ms": 1}]});
        assert!(
            !validator.is_valid(&fan_out),
            "the agent's schema applies under nodes[].result"
        );

        // The agent's schema is enforced inside the envelope.
        let wrong = json!({"node": "n1", "pod": null, "result": {"gpus": [{}]}});
        assert!(!validator.is_valid(&wrong));
        assert!(!validator.is_valid(&json!({"something": "else"})));
    }

    #[test]
    fn the_gateways_own_arguments_replace_the_agents_and_say_what_they_do_with_node() {
        let tools = gateway_tools(gpu_mcp_model::gpu_tool_definitions());
        let description = |tool: &str, name: &str| -> String {
            let t = tools.iter().find(|t| t.name == tool).unwrap();
            t.input_schema["properties"][name]["description"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        for tool in [
            "get_gpu_health",
            "analyze_xid_errors",
            "get_gpu_inventory",
            "get_gpu_processes",
            "get_nvlink_topology",
        ] {
            for name in ["detail", "min_verdict"] {
                let words = description(tool, name);
                assert!(words.contains("Without `node`"), "{tool} {name}: {words}");
                assert!(
                    words.contains("With `node`") || words.ends_with("Refused with `node`."),
                    "{tool} {name}: {words}"
                );
            }
            for name in ["node_pattern", "node_limit", "cursor"] {
                let words = description(tool, name);
                assert!(
                    words.starts_with("Without `node` only (refused with `node`)."),
                    "{tool} {name}: {words}"
                );
            }
        }
        assert!(description("get_gpu_health", "detail").contains("`problems` the verdict"));
        assert!(description("get_gpu_inventory", "detail").contains("are refused"));
        assert!(description("analyze_xid_errors", "min_verdict").ends_with("Refused with `node`."));
    }

    #[test]
    fn list_gpu_nodes_schemas_are_objects() {
        let t = list_gpu_nodes_tool();
        assert_eq!(t.input_schema["type"], "object");
        assert_eq!(t.input_schema["additionalProperties"], false);
        let props = t.input_schema["properties"].as_object().unwrap();
        let names: Vec<&str> = props.keys().map(String::as_str).collect();
        assert_eq!(names, ["node_pattern", "node_limit", "cursor"]);
        let text = serde_json::to_string(&t.input_schema).unwrap();
        assert!(!text.contains("null") && !text.contains("format"), "{text}");
        let out = t.output_schema.unwrap();
        assert_eq!(out["type"], "object");
        assert!(out.get("title").is_none());
        assert!(out["properties"].get("nodes").is_some());
        assert_eq!(t.annotations.unwrap().read_only_hint, Some(true));
    }

    #[test]
    fn a_tool_without_output_schema_gets_an_open_result() {
        let mut tool = agent_tool();
        tool.output_schema = None;
        let t = with_node_argument(tool);
        let validator =
            jsonschema::validator_for(&Value::Object(t.output_schema.unwrap())).unwrap();
        assert!(validator.is_valid(&json!({"node": "n", "pod": null, "result": {"x": 1}})));
    }
}
