//! The tool reference (`docs/tools.md`), generated from the catalog: names, titles,
//! descriptions, schemas, example outputs from the mock fleet on a fixed clock, the gateway's own
//! tools and the arguments it adds (from the gateway's definitions, which the caller passes: this
//! crate does not link the gateway), the mock scenarios and the Xid catalog. `cargo xtask docs`
//! writes it; a test there fails when the committed file is stale.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gpu_mcp_backend::{MOCK_UPTIME, MockBackend, MockConfig, Scenario};
use gpu_mcp_model::xid::{catalog, lookup};
use gpu_mcp_model::{
    DESCRIBE_GPU_NODE, EXPLAIN_POD_GPU_FAILURE, GET_POD_GPU_ALLOCATION, LIST_GPU_NODES,
    gpu_tool_definitions,
};
use gpu_mcp_protocol::{CallToolResult, Content, JsonObject, Tool};
use serde_json::{Value, json};

use crate::{AgentCatalog, AgentCatalogConfig, Error, Result};

fn pretty(v: &Value) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::Definition(e.to_string()))
}

fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| match c {
            Content::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Example calls: (tool, arguments, scenario), on a fixed clock so the output is reproducible.
const EXAMPLES: &[(&str, &str, Scenario)] = &[
    (
        "get_gpu_inventory",
        r#"{"gpu_index": 0}"#,
        Scenario::Healthy,
    ),
    ("get_gpu_health", "{}", Scenario::XidEccFamily),
    (
        "analyze_xid_errors",
        r#"{"since": "1h"}"#,
        Scenario::XidEccFamily,
    ),
    ("get_gpu_processes", r#"{"limit": 4}"#, Scenario::MigEnabled),
    ("get_nvlink_topology", "{}", Scenario::NvlinkDegraded),
];

/// The JSON type a property schema admits, in words (`string`, `integer | string`).
fn type_of(p: &Value) -> String {
    match p.get("type") {
        Some(Value::Array(a)) => {
            return a
                .iter()
                .filter_map(Value::as_str)
                .filter(|s| *s != "null")
                .collect::<Vec<_>>()
                .join(" | ");
        }
        Some(Value::String(s)) => return s.clone(),
        _ => {}
    }
    if let Some(Value::Array(values)) = p.get("enum") {
        let mut types: Vec<&str> = values.iter().map(json_type).collect();
        types.dedup();
        return types.join(" | ");
    }
    if let Some(c) = p.get("const") {
        return json_type(c).to_owned();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = p.get(key) {
            let mut types: Vec<String> = branches.iter().map(type_of).collect();
            types.sort_unstable();
            types.dedup();
            return types.join(" | ");
        }
    }
    "any".to_owned()
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The argument table of `schema`, for the properties `keep` admits.
fn arguments_table(schema: &JsonObject, keep: impl Fn(&str) -> bool) -> String {
    let mut md = String::from("| Argument | Type | Description |\n|---|---|---|\n");
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (name, p) in props.iter().filter(|(n, _)| keep(n)) {
            let ty = type_of(p);
            let desc = p
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .replace('\n', " ");
            let _ = writeln!(md, "| `{name}` | {ty} | {desc} |");
        }
    }
    md
}

/// A gateway argument's description on each GPU tool (`extended`: the agent's and the gateway's
/// definition of each).
fn descriptions<'a>(name: &str, extended: &[(&'a Tool, &'a Tool)]) -> Vec<(&'a str, &'a str)> {
    extended
        .iter()
        .filter_map(|(_, g)| {
            let d = g
                .input_schema
                .get("properties")?
                .get(name)?
                .get("description")?;
            Some((g.name.as_str(), d.as_str()?))
        })
        .collect()
}

/// The sentences every description begins with: their common prefix, cut after its last full
/// sentence.
fn shared_sentences<'a>(texts: &[&'a str]) -> &'a str {
    let Some(first) = texts.first() else {
        return "";
    };
    let mut len = first.len();
    for t in &texts[1..] {
        len = first
            .char_indices()
            .zip(t.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, c), _)| i + c.len_utf8())
            .min(len);
    }
    if len == first.len() && texts.iter().all(|t| t.len() == len) {
        return first;
    }
    first[..len].rfind(". ").map_or("", |end| &first[..=end])
}

/// An argument whose description differs per tool: its name, the sentences every tool's begins
/// with, and each tool's description.
type Varying<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

/// The table of the arguments the gateway adds, with the words all GPU tools share; what an
/// argument says differently per tool follows in a table by tool.
fn gateway_arguments_table(
    schema: &JsonObject,
    keep: impl Fn(&str) -> bool,
    extended: &[(&Tool, &Tool)],
) -> String {
    let mut md = String::from("| Argument | Type | Description |\n|---|---|---|\n");
    let mut varying: Vec<Varying<'_>> = Vec::new();
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (name, p) in props.iter().filter(|(n, _)| keep(n)) {
            let per_tool = descriptions(name, extended);
            let texts: Vec<&str> = per_tool.iter().map(|(_, d)| *d).collect();
            let shared = shared_sentences(&texts);
            let mut desc = shared.trim().replace('\n', " ");
            if texts.iter().any(|t| t.len() != shared.len()) {
                desc.push_str(" The rest depends on the tool (below).");
                varying.push((name.as_str(), shared, per_tool));
            }
            let _ = writeln!(md, "| `{name}` | {} | {} |", type_of(p), desc.trim());
        }
    }
    if !varying.is_empty() {
        md.push_str("\nWhat the arguments above say for each tool:\n\n| Tool |");
        for (name, _, _) in &varying {
            let _ = write!(md, " `{name}` |");
        }
        md.push_str("\n|---|");
        md.push_str(&"---|".repeat(varying.len()));
        md.push('\n');
        for (tool, _) in extended {
            let _ = write!(md, "| `{}` |", tool.name);
            for (_, shared, per_tool) in &varying {
                let rest = per_tool
                    .iter()
                    .find(|(t, _)| *t == tool.name)
                    .map_or("", |(_, d)| d.get(shared.len()..).unwrap_or(""));
                let _ = write!(md, " {} |", rest.trim().replace('\n', " "));
            }
            md.push('\n');
        }
    }
    md
}

/// The schemas of a definition, folded.
fn schemas(md: &mut String, t: &Tool) -> Result<()> {
    let _ = write!(
        md,
        "<details><summary>inputSchema</summary>\n\n```json\n{}\n```\n\n</details>\n\n",
        pretty(&Value::Object(t.input_schema.clone()))?
    );
    if let Some(o) = &t.output_schema {
        let _ = write!(
            md,
            "<details><summary>outputSchema</summary>\n\n```json\n{}\n```\n\n</details>\n\n",
            pretty(&Value::Object(o.clone()))?
        );
    }
    Ok(())
}

/// The gateway's section: the arguments it adds to every GPU tool (from its definition of the
/// first one), then its own tools.
fn gateway_section(md: &mut String, agent: &[Tool], gateway: &[Tool]) -> Result<()> {
    md.push_str("\n## Gateway\n\n");
    md.push_str("The gateway (`gpu-mcp-gateway`) serves every tool above for any node of the cluster, with the arguments below, and adds its own tools.\n");
    md.push_str("With `node` a call goes to that node's agent, with `detail` and `min_verdict` as that agent's own arguments where its tool takes them, and the answer is the agent's under `result`, tagged with `node` and `pod`; without it the call asks every node and the answer is a bounded summary: totals first, then the nodes that need attention, then what was left out and how to get it.\n");
    let _ = writeln!(
        md,
        "`{LIST_GPU_NODES}` is served by every gateway and the Kubernetes-context tools (`{DESCRIBE_GPU_NODE}`, `{GET_POD_GPU_ALLOCATION}`, `{EXPLAIN_POD_GPU_FAILURE}`) by one started with `--cluster-context`; `--toolsets` can leave any tool out.\n"
    );
    let extended: Vec<(&Tool, &Tool)> = agent
        .iter()
        .filter_map(|a| gateway.iter().find(|g| g.name == a.name).map(|g| (a, g)))
        .collect();
    if let Some((a, g)) = extended.first() {
        let own = |name: &str| {
            a.input_schema
                .get("properties")
                .and_then(|p| p.get(name))
                .is_none()
        };
        md.push_str("### Arguments the gateway adds to every GPU tool\n\n");
        md.push_str(&gateway_arguments_table(&g.input_schema, own, &extended));
        md.push('\n');
    }
    for t in gateway
        .iter()
        .filter(|g| agent.iter().all(|a| a.name != g.name))
    {
        let _ = write!(
            md,
            "\n## {}\n\n**{}** (gateway only)\n\n{}\n\n",
            t.name,
            t.title.as_deref().unwrap_or(""),
            t.description
        );
        md.push_str("### Arguments\n\n");
        md.push_str(&arguments_table(&t.input_schema, |_| true));
        md.push('\n');
        schemas(md, t)?;
    }
    Ok(())
}

/// Generates `docs/tools.md`; `gateway` is the gateway's tool list (its own tools and the agent's
/// with the arguments it adds).
pub async fn tools_markdown(gateway: &[Tool]) -> Result<String> {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_268_800); // 2026-01-01T12:00:00Z
    let mut md = String::new();
    md.push_str("# GPU tools\n\n");
    md.push_str("<!-- Generated by `cargo xtask docs` from the agent's tool catalog; do not edit by hand. -->\n\n");
    md.push_str("The agent serves these tools on every GPU node.\n");
    md.push_str(
        "The gateway serves the same definitions with an extra optional `node` argument and the fleet arguments, and adds its own tools ([Gateway](#gateway)).\n",
    );
    md.push_str("Every tool is read-only (`readOnlyHint: true`, `destructiveHint: false`, `idempotentHint: true`, `openWorldHint: false`).\n");
    md.push_str("Each result carries `structuredContent` that matches the tool's `outputSchema`, and a text block for clients that ignore structured output.\n");
    md.push_str("Values are plain; a field the driver cannot read is left out and named once, per GPU (or per node), under `unavailable` with the reason (`not_supported` or the driver's error), so one unreadable field never fails the call.\n");
    md.push_str("How verdicts are reached is in [health-rules.md](health-rules.md).\n\n");
    let defs = gpu_tool_definitions();
    md.push_str("| Tool | Title | Served by |\n|---|---|---|\n");
    for t in &defs {
        let _ = writeln!(
            md,
            "| [`{}`](#{}) | {} | agent and gateway |",
            t.name,
            t.name,
            t.title.as_deref().unwrap_or("")
        );
    }
    for t in gateway
        .iter()
        .filter(|g| defs.iter().all(|a| a.name != g.name))
    {
        let _ = writeln!(
            md,
            "| [`{}`](#{}) | {} | gateway |",
            t.name,
            t.name,
            t.title.as_deref().unwrap_or("")
        );
    }
    for t in &defs {
        let _ = write!(md, "\n## {}\n\n", t.name);
        let _ = write!(
            md,
            "**{}**\n\n{}\n\n",
            t.title.as_deref().unwrap_or(""),
            t.description
        );
        md.push_str("### Arguments\n\n");
        md.push_str(&arguments_table(&t.input_schema, |_| true));
        md.push_str("\nUnknown arguments, wrong types, an out-of-range GPU and an unparsable time are tool errors (`isError: true`) that name the argument.\n\n");
        schemas(&mut md, t)?;
        if let Some((_, args, scenario)) = EXAMPLES.iter().find(|e| e.0 == t.name) {
            let backend = MockBackend::new(MockConfig {
                node_name: "gpu-node-1".to_owned(),
                gpus: 2,
                scenario: *scenario,
                now: Some(now),
                ..MockConfig::default()
            })
            .map_err(|e| Error::Definition(e.to_string()))?;
            let catalog = AgentCatalog::new(
                Arc::new(backend),
                AgentCatalogConfig {
                    node_name: "gpu-node-1".to_owned(),
                    kmsg_path: None,
                    boot_time: Some(now - MOCK_UPTIME),
                    now: Some(now),
                    ..AgentCatalogConfig::default()
                },
            );
            let arguments = match serde_json::from_str::<Value>(args)
                .map_err(|e| Error::Definition(e.to_string()))?
            {
                Value::Object(o) => Some(o),
                _ => None,
            };
            let result = catalog
                .run(&t.name, arguments)
                .await
                .map_err(|e| Error::Definition(e.to_string()))?;
            let _ = write!(
                md,
                "### Example\n\nOn the mock fleet (`--mock-gpus 2 --mock-scenario {scenario}`: {}), arguments `{args}`.\n\nText block:\n\n```text\n{}\n```\n\n<details><summary>structuredContent</summary>\n\n```json\n{}\n```\n\n</details>\n",
                scenario.description(),
                text_of(&result),
                pretty(
                    &result
                        .structured_value()
                        .map(|v| v.into_owned())
                        .unwrap_or(json!(null))
                )?
            );
        }
    }
    gateway_section(&mut md, &defs, gateway)?;
    md.push_str("\n## Mock scenarios\n\n");
    md.push_str("`gpu-mcp-agent --nvml-mode mock --mock-scenario <name>` applies a scenario to one GPU (index 0 by default).\n\n");
    md.push_str("| Scenario | What it reproduces |\n|---|---|\n");
    for s in Scenario::ALL {
        let _ = writeln!(md, "| `{s}` | {} |", s.description());
    }
    md.push_str("\n## Xid catalog\n\n");
    md.push_str("Generated from `crates/gpu-mcp-model/src/xid/catalog.tsv`, whose mnemonic, description and resolution buckets are NVIDIA's Xid catalog (<https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html>); category, severity and action are this project's operator policy.\n");
    md.push_str("A code missing here is reported with `known: false`, severity `warning`.\n\n");
    md.push_str(
        "| Xid | Mnemonic | Name | NVIDIA immediate / investigatory | Category | Severity | Action |\n|---|---|---|---|---|---|---|\n",
    );
    for code in catalog::known_codes() {
        let i = lookup(code);
        let app = if i.application_error {
            " (usually the application)"
        } else {
            ""
        };
        let dash = |s: &str| {
            if s.is_empty() {
                "-".to_owned()
            } else {
                format!("`{s}`")
            }
        };
        let _ = writeln!(
            md,
            "| {} | `{}` | {}{app} | {} / {} | {} | {} | {} |",
            i.code,
            i.mnemonic,
            i.name,
            dash(i.immediate_action),
            dash(i.investigatory_action),
            i.category,
            i.severity,
            i.action
        );
    }
    Ok(md)
}
