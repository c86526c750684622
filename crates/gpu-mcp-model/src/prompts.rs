//! The GPU prompts: templates that walk an assistant through the GPU tools in the order an SRE
//! would use them, for one node (the agent) or for the cluster (the gateway).
//!
//! The prompt names are the ones users of the upstream project know (`gpu-health-check`,
//! `diagnose-xid-errors`, `gpu-triage`), plus `gpu-drain-check` for the cordon/drain decision.
//! Every argument is optional except the gateway's `node` of `gpu-drain-check`; an empty string
//! reads as absent, since some clients send every argument.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use gpu_mcp_protocol::Content;
use gpu_mcp_protocol::mcp::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};

use crate::args::DEFAULT_HEALTH_XID_WINDOW;
use crate::definitions::{
    ANALYZE_XID_ERRORS, GET_GPU_HEALTH, GET_GPU_INVENTORY, GET_GPU_PROCESSES, LIST_GPU_NODES,
};
use crate::error::Error as PromptError;
use crate::time::{parse_rfc3339, parse_window};

/// `gpu-health-check`: health verdicts, then the evidence behind every GPU that is not healthy.
pub const GPU_HEALTH_CHECK: &str = "gpu-health-check";
/// `diagnose-xid-errors`: the Xid errors, what they mean and what to do.
pub const DIAGNOSE_XID_ERRORS: &str = "diagnose-xid-errors";
/// `gpu-triage`: a ranked list of the sick GPUs with a next step for each.
pub const GPU_TRIAGE: &str = "gpu-triage";
/// `gpu-drain-check`: whether a node (or one GPU) should be cordoned and drained.
pub const GPU_DRAIN_CHECK: &str = "gpu-drain-check";

/// The prompt argument naming a node (gateway only).
pub const ARG_NODE: &str = "node";
/// The prompt argument naming a GPU: its index or its UUID.
pub const ARG_GPU: &str = "gpu";
/// The prompt argument bounding the time looked at: a window (`30m`, `6h`, `7d`) or an RFC 3339
/// time.
pub const ARG_SINCE: &str = "since";

/// Which server a prompt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptScope {
    /// The agent: the GPUs of the node it runs on; no `node` argument.
    Node,
    /// The gateway: every node, or the one named by `node`.
    Fleet,
}

struct Spec {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    default_since: &'static str,
    node_required: bool,
    /// The tools the prompt walks through (on the gateway also [`LIST_GPU_NODES`]).
    tools: &'static [&'static str],
}

/// The tools every GPU prompt walks through.
const HEALTH_XID_INVENTORY: &[&str] = &[GET_GPU_HEALTH, ANALYZE_XID_ERRORS, GET_GPU_INVENTORY];

const SPECS: [Spec; 4] = [
    Spec {
        name: GPU_HEALTH_CHECK,
        title: "GPU health check",
        description: "Check GPU health: the verdict of every GPU, then the evidence (Xid errors, \
                      ECC, thermals, NVLink) behind each GPU that is not healthy.",
        default_since: DEFAULT_HEALTH_XID_WINDOW,
        node_required: false,
        tools: HEALTH_XID_INVENTORY,
    },
    Spec {
        name: DIAGNOSE_XID_ERRORS,
        title: "Diagnose Xid errors",
        description: "Explain the NVIDIA Xid errors in the kernel log: what each code means, \
                      which GPUs it hit, how often, and the recommended action.",
        default_since: DEFAULT_HEALTH_XID_WINDOW,
        node_required: false,
        tools: HEALTH_XID_INVENTORY,
    },
    Spec {
        name: GPU_TRIAGE,
        title: "GPU triage",
        description: "Triage an incident: rank the sick GPUs by severity and give one next step \
                      for each (watch, reset, drain, RMA).",
        default_since: "6h",
        node_required: false,
        tools: HEALTH_XID_INVENTORY,
    },
    Spec {
        name: GPU_DRAIN_CHECK,
        title: "GPU drain check",
        description: "Decide whether a node should be cordoned and drained because of its GPUs, \
                      with the evidence and what to tell the workloads' owners.",
        default_since: "7d",
        node_required: true,
        tools: &[
            GET_GPU_HEALTH,
            ANALYZE_XID_ERRORS,
            GET_GPU_INVENTORY,
            GET_GPU_PROCESSES,
        ],
    },
];

fn spec(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

fn argument(name: &str, title: &str, description: String, required: bool) -> PromptArgument {
    PromptArgument {
        name: name.into(),
        title: Some(title.into()),
        description: Some(description),
        required: Some(required),
    }
}

fn arguments(spec: &Spec, scope: PromptScope) -> Vec<PromptArgument> {
    let mut args = Vec::new();
    if scope == PromptScope::Fleet {
        let description = if spec.node_required {
            "Kubernetes node name of the GPU node (see list_gpu_nodes).".to_owned()
        } else {
            "Kubernetes node name; every node when absent (see list_gpu_nodes).".to_owned()
        };
        args.push(argument(ARG_NODE, "Node", description, spec.node_required));
    }
    args.push(argument(
        ARG_GPU,
        "GPU",
        "GPU index (as in nvidia-smi -i) or UUID (GPU-...); every GPU when absent.".into(),
        false,
    ));
    args.push(argument(
        ARG_SINCE,
        "Since",
        format!(
            "Time window looked at: 30m, 6h, 7d or an RFC 3339 time. Default {}.",
            spec.default_since
        ),
        false,
    ));
    args
}

/// The prompt definitions for `scope`, in a stable order.
pub fn gpu_prompts(scope: PromptScope) -> Vec<Prompt> {
    SPECS
        .iter()
        .map(|s| Prompt {
            name: s.name.into(),
            title: Some(s.title.into()),
            description: Some(s.description.into()),
            arguments: arguments(s, scope),
        })
        .collect()
}

/// A GPU chosen by a prompt argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuSelector {
    /// By NVML index.
    Index(u32),
    /// By UUID.
    Uuid(String),
}

impl GpuSelector {
    /// Reads `value`: a decimal index or a `GPU-` UUID.
    pub fn parse(value: &str) -> Result<Self, PromptError> {
        let value = value.trim();
        if let Ok(i) = value.parse::<u32>() {
            return Ok(Self::Index(i));
        }
        // `get`, not indexing: a client's value may have a multi-byte character at byte 4.
        let is_uuid = value.len() > 4
            && value
                .get(..4)
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case("GPU-"))
            && value[4..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == '-');
        if is_uuid {
            return Ok(Self::Uuid(value.to_owned()));
        }
        Err(PromptError::InvalidPromptArgument {
            argument: ARG_GPU.into(),
            reason: format!("{value:?} is neither a GPU index like 0 nor a UUID like GPU-5d3c…"),
        })
    }

    /// The tool arguments that select this GPU, as JSON members (`"gpu_index": 0`).
    fn members(&self) -> String {
        match self {
            Self::Index(i) => format!("\"gpu_index\": {i}"),
            Self::Uuid(u) => format!("\"gpu_uuid\": {}", json_string(u)),
        }
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// What the arguments of one `prompts/get` chose.
struct Chosen<'a> {
    node: Option<&'a str>,
    gpu: Option<GpuSelector>,
    since: &'a str,
}

impl Chosen<'_> {
    /// The tool arguments as a JSON object, with `since_key` for the window (`xid_since` or
    /// `since`) and `extra` members.
    fn call(&self, since_key: Option<&str>, extra: &[&str]) -> String {
        let mut members = Vec::new();
        if let Some(node) = self.node {
            members.push(format!("\"node\": {}", json_string(node)));
        }
        if let Some(gpu) = &self.gpu {
            members.push(gpu.members());
        }
        if let Some(key) = since_key {
            members.push(format!("\"{key}\": {}", json_string(self.since)));
        }
        members.extend(extra.iter().map(|s| (*s).to_owned()));
        format!("{{{}}}", members.join(", "))
    }

    fn subject(&self, scope: PromptScope) -> String {
        let gpus = match &self.gpu {
            Some(GpuSelector::Index(i)) => format!("GPU {i}"),
            Some(GpuSelector::Uuid(u)) => format!("GPU {u}"),
            None => "every GPU".to_owned(),
        };
        match (scope, self.node) {
            (PromptScope::Fleet, Some(node)) => format!("{gpus} on node {node}"),
            (PromptScope::Fleet, None) => format!("{gpus} on every node of the cluster"),
            (PromptScope::Node, _) => format!("{gpus} on this node"),
        }
    }
}

fn check_since(value: &str) -> Result<(), PromptError> {
    if parse_window(value).is_some() || parse_rfc3339(value).is_some() {
        Ok(())
    } else {
        Err(PromptError::InvalidPromptArgument {
            argument: ARG_SINCE.into(),
            reason: format!(
                "{value:?} is neither a window like 30m, 6h, 7d nor an RFC 3339 time like 2026-01-31T12:00:00Z"
            ),
        })
    }
}

/// Fills prompt `name` for `scope` with `arguments`.
///
/// The `node` value is used as given: the gateway checks it is a node name before calling this.
pub fn render_prompt(
    scope: PromptScope,
    name: &str,
    arguments: &BTreeMap<String, String>,
) -> Result<GetPromptResult, PromptError> {
    let spec = spec(name).ok_or_else(|| PromptError::UnknownPrompt(name.to_owned()))?;
    let allowed = arguments_of(scope);
    for key in arguments.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(PromptError::UnknownPromptArgument {
                prompt: name.into(),
                argument: key.clone(),
                expected: allowed.join(", "),
            });
        }
    }
    let given = |key: &str| {
        arguments
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let node = given(ARG_NODE);
    if spec.node_required && scope == PromptScope::Fleet && node.is_none() {
        return Err(PromptError::MissingPromptArgument {
            prompt: name.into(),
            argument: ARG_NODE.into(),
        });
    }
    let gpu = given(ARG_GPU).map(GpuSelector::parse).transpose()?;
    let since = given(ARG_SINCE).unwrap_or(spec.default_since);
    check_since(since)?;
    let chosen = Chosen { node, gpu, since };
    let text = match spec.name {
        GPU_HEALTH_CHECK => health_check(scope, &chosen),
        DIAGNOSE_XID_ERRORS => diagnose_xids(scope, &chosen),
        GPU_TRIAGE => triage(scope, &chosen),
        _ => drain_check(scope, &chosen),
    };
    Ok(GetPromptResult {
        description: Some(format!("{} for {}", spec.title, chosen.subject(scope))),
        messages: vec![PromptMessage {
            role: Role::User,
            content: Content::text(text),
        }],
        meta: None,
    })
}

/// The tools prompt `name` walks through in `scope` (a server lists a prompt only where it offers
/// every one of them); `None` for an unknown prompt.
pub fn prompt_tools(scope: PromptScope, name: &str) -> Option<Vec<&'static str>> {
    spec(name).map(|s| {
        let mut tools = s.tools.to_vec();
        if scope == PromptScope::Fleet {
            tools.insert(0, LIST_GPU_NODES);
        }
        tools
    })
}

/// The prompts of `scope` whose tools all pass `offered`, in a stable order.
pub fn offered_prompts(scope: PromptScope, offered: impl Fn(&str) -> bool) -> Vec<Prompt> {
    gpu_prompts(scope)
        .into_iter()
        .filter(|p| prompt_tools(scope, &p.name).is_some_and(|t| t.iter().all(|t| offered(t))))
        .collect()
}

/// The argument names `name` takes in `scope`; `None` for an unknown prompt (completion uses
/// this to complete only arguments that exist).
pub fn prompt_arguments(scope: PromptScope, name: &str) -> Option<Vec<&'static str>> {
    spec(name).map(|_| arguments_of(scope))
}

fn arguments_of(scope: PromptScope) -> Vec<&'static str> {
    match scope {
        PromptScope::Fleet => vec![ARG_NODE, ARG_GPU, ARG_SINCE],
        PromptScope::Node => vec![ARG_GPU, ARG_SINCE],
    }
}

/// The first step on the gateway: which nodes exist and answer.
fn nodes_step(scope: PromptScope, chosen: &Chosen<'_>, out: &mut String) -> usize {
    if scope == PromptScope::Node {
        return 1;
    }
    let what = if chosen.node.is_some() {
        "check that the node is listed and its agent is ready; if it is not, say so and stop"
    } else {
        "note how many nodes there are and which agents are not ready (they will be missing \
         from every answer)"
    };
    let _ = writeln!(out, "1. Call `{LIST_GPU_NODES}` with {{}} and {what}.");
    2
}

fn fan_out_note(scope: PromptScope, chosen: &Chosen<'_>, out: &mut String) {
    if scope == PromptScope::Fleet && chosen.node.is_none() {
        out.push_str(
            "\nWithout `node` each call asks every node: the answer lists every node with its \
             result or its error. A node that failed is not a healthy node; name it.\n",
        );
    }
}

fn health_check(scope: PromptScope, c: &Chosen<'_>) -> String {
    let mut out = format!("Check the health of {}.\n\n", c.subject(scope));
    let n = nodes_step(scope, c, &mut out);
    let _ = writeln!(
        out,
        "{n}. Call `{GET_GPU_HEALTH}` with {}. Read each GPU's status (healthy, degraded, \
         critical, unknown) and the findings behind it.",
        c.call(Some("xid_since"), &[])
    );
    let _ = writeln!(
        out,
        "{}. For every GPU that is not healthy, call `{ANALYZE_XID_ERRORS}` with the same node \
         and that GPU's `gpu_index`, and `\"since\": {}`, to see the Xid errors behind the \
         verdict.",
        n + 1,
        json_string(c.since)
    );
    let _ = writeln!(
        out,
        "{}. Only if a finding is about memory, temperature, power or NVLink, call \
         `{GET_GPU_INVENTORY}` for that GPU with the matching `sections` (e.g. \
         [\"ecc\", \"memory\"] or [\"thermal\", \"power\"] or [\"nvlink\"]).",
        n + 2
    );
    fan_out_note(scope, c, &mut out);
    out.push_str(
        "\nAnswer with one line per GPU that is not healthy (node, index, UUID, status, the \
         finding, the recommended action), then a one-line summary of how many GPUs are \
         healthy. Do not guess values the tools did not return.",
    );
    out
}

fn diagnose_xids(scope: PromptScope, c: &Chosen<'_>) -> String {
    let mut out = format!(
        "Diagnose the NVIDIA Xid errors of {} since {}.\n\n",
        c.subject(scope),
        c.since
    );
    let n = nodes_step(scope, c, &mut out);
    let _ = writeln!(
        out,
        "{n}. Call `{ANALYZE_XID_ERRORS}` with {}. Its groups count every event per code and \
         GPU; each code comes with its name, severity and recommended action from the Xid \
         catalog.",
        c.call(Some("since"), &[])
    );
    let _ = writeln!(
        out,
        "{}. If the kernel log or the event recorder was unavailable (see the sources in the \
         answer), say that the list may be incomplete.",
        n + 1
    );
    let _ = writeln!(
        out,
        "{}. For each GPU with a critical code (for example 48, 63, 64, 74, 79, 92, 94, 95, \
         119), call `{GET_GPU_HEALTH}` for that GPU to see whether the driver still reports it \
         healthy, and `{GET_GPU_INVENTORY}` with `\"sections\": [\"ecc\"]` for memory errors.",
        n + 2
    );
    fan_out_note(scope, c, &mut out);
    out.push_str(
        "\nExplain each code in one or two sentences for an SRE, say whether it points at the \
         hardware, the driver or the application, and end with the actions in order of urgency.",
    );
    out
}

fn triage(scope: PromptScope, c: &Chosen<'_>) -> String {
    let mut out = format!(
        "Triage a GPU incident for {} over the last {}.\n\n",
        c.subject(scope),
        c.since
    );
    let n = nodes_step(scope, c, &mut out);
    let _ = writeln!(
        out,
        "{n}. Call `{GET_GPU_HEALTH}` with {} to find the GPUs that are not healthy.",
        c.call(Some("xid_since"), &[])
    );
    let _ = writeln!(
        out,
        "{}. Call `{ANALYZE_XID_ERRORS}` with {} to see which errors repeat and which are new.",
        n + 1,
        c.call(Some("since"), &["\"limit\": 100"])
    );
    let _ = writeln!(
        out,
        "{}. For the worst GPUs only, call `{GET_GPU_INVENTORY}` for that GPU with \
         `\"sections\": [\"ecc\", \"thermal\", \"processes\"]` to see the memory errors, the \
         temperature and which workloads run on it.",
        n + 2
    );
    fan_out_note(scope, c, &mut out);
    out.push_str(
        "\nRank the GPUs from most to least urgent (critical, then degraded, then unknown). For \
         each give the evidence in one line and one next step: keep watching, reset the GPU, \
         cordon and drain the node, or replace the board (RMA).",
    );
    out
}

fn drain_check(scope: PromptScope, c: &Chosen<'_>) -> String {
    let mut out = format!(
        "Decide whether {} should be cordoned and drained, looking at the last {}.\n\n",
        match (scope, c.node) {
            (PromptScope::Fleet, Some(node)) => format!("node {node}"),
            _ => "this node".to_owned(),
        },
        c.since
    );
    let n = nodes_step(scope, c, &mut out);
    let _ = writeln!(
        out,
        "{n}. Call `{GET_GPU_HEALTH}` with {}.",
        c.call(Some("xid_since"), &[])
    );
    let _ = writeln!(
        out,
        "{}. Call `{ANALYZE_XID_ERRORS}` with {}.",
        n + 1,
        c.call(Some("since"), &[])
    );
    let _ = writeln!(
        out,
        "{}. Call `{GET_GPU_INVENTORY}` with {} to see the pending row remaps or retired pages.",
        n + 2,
        c.call(None, &["\"sections\": [\"ecc\"]"])
    );
    let _ = writeln!(
        out,
        "{}. Call `{GET_GPU_PROCESSES}` with {} to see the processes and the pods (namespace, \
         pod, container) that a drain would evict.",
        n + 3,
        c.call(None, &[])
    );
    out.push_str(
        "\nRecommend draining when a GPU is critical, when its recommended action is a reset or \
         a reboot that needs the node, or when uncorrectable memory errors keep growing; \
         otherwise recommend watching and say what would change the decision. Name the \
         workloads that a drain would evict.",
    );
    out
}

/// The `since` values offered by completion, shortest first.
pub const SINCE_SUGGESTIONS: [&str; 7] = ["15m", "30m", "1h", "6h", "24h", "7d", "30d"];

/// The values a GPU argument (`gpu`) can take on a node: every index, then every UUID the
/// snapshot could read.
pub fn gpu_candidates(snapshot: &crate::NodeSnapshot) -> Vec<String> {
    let indexes = snapshot.gpus.iter().map(|g| g.index.to_string());
    let uuids = snapshot.gpus.iter().filter_map(|g| g.uuid.value().cloned());
    indexes.chain(uuids).collect()
}

/// The values completion offers for argument `argument` of prompt `prompt` that start with
/// `prefix`, when the values need no lookup (`since`); `None` for an argument that needs one
/// (`gpu`, `node`) or does not exist.
pub fn static_completion(
    scope: PromptScope,
    prompt: &str,
    argument: &str,
    prefix: &str,
) -> Option<gpu_mcp_protocol::mcp::Completion> {
    let takes = prompt_arguments(scope, prompt)?;
    (argument == ARG_SINCE && takes.contains(&ARG_SINCE))
        .then(|| gpu_mcp_protocol::mcp::Completion::matching(SINCE_SUGGESTIONS, prefix))
}
