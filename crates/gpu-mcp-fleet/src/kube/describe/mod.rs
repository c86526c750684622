//! `describe_gpu_node`: what Kubernetes thinks of one GPU node (labels, taints, conditions,
//! cordon, GPU capacity and requests) next to what its agent says, and the `kubectl` commands
//! the verdict calls for.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use gpu_mcp_k8s::{GPU_RESOURCE, GpuPod, NodeFacts, NodeName, quote_untrusted};
use gpu_mcp_model::output::Verdict;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::agent::{AgentFinding, AgentHealth};
use super::clip;

/// Most `nvidia.com/*` labels shown.
const MAX_LABELS: usize = 64;
/// Most taints shown.
const MAX_TAINTS: usize = 32;
/// Most conditions shown.
const MAX_CONDITIONS: usize = 16;
/// Most non-healthy GPUs shown with their reasons.
const MAX_SICK_GPUS: usize = 16;
/// Most reasons shown per GPU, and node findings in all.
const MAX_REASONS: usize = 3;
/// Most bytes of an agent's sentence kept.
const SENTENCE_LIMIT: usize = 300;
/// Most bytes of the structured answer; beyond it labels, taints, conditions and sick GPUs are
/// left out (and counted in `omitted` / `sick_gpus_omitted`) until it fits.
const ANSWER_BUDGET: usize = 22 * 1024;

/// Arguments of `describe_gpu_node`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DescribeNodeInput {
    /// The Kubernetes node (see list_gpu_nodes, or a node a health answer named).
    #[schemars(length(min = 1, max = 253))]
    pub node: String,
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct TaintView {
    /// Taint key.
    pub key: String,
    /// Taint value, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// A node condition.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct ConditionView {
    /// Condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Whether this condition is a problem (`Ready` not `True`, or another condition `True`).
    pub problem: bool,
    /// Reason, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the node wrote, quoted and bounded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The node's GPU resources.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct GpuResources {
    /// `status.capacity`, GPU resources only (`nvidia.com/gpu`, `nvidia.com/mig-*`).
    pub capacity: BTreeMap<String, i64>,
    /// `status.allocatable`, GPU resources only.
    pub allocatable: BTreeMap<String, i64>,
    /// Requested by the pods that hold GPUs here (bound, not succeeded or failed).
    pub requested: BTreeMap<String, i64>,
    /// Allocatable minus requested, per resource.
    pub free: BTreeMap<String, i64>,
    /// Pods that hold GPUs here (list them with get_pod_gpu_allocation and `node`).
    pub pods_holding_gpus: usize,
}

/// One reason of a GPU's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct ReasonView {
    /// The rule that fired.
    pub check: String,
    /// Its severity.
    pub severity: Verdict,
    /// What is wrong.
    pub summary: String,
    /// What to do.
    pub action: String,
}

/// A GPU the agent does not find healthy.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct SickGpu {
    /// GPU index.
    pub index: u32,
    /// Its verdict.
    pub verdict: Verdict,
    /// GPU UUID, when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The worst reasons (at most three).
    pub reasons: Vec<ReasonView>,
}

/// What the node's agent says.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct AgentView {
    /// Whether the agent answered.
    pub answered: bool,
    /// The node's verdict, when the agent answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// GPUs per verdict, when the agent answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<BTreeMap<String, u32>>,
    /// The GPUs that are not healthy, worst first (at most sixteen).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sick_gpus: Vec<SickGpu>,
    /// Non-healthy GPUs beyond `sick_gpus`.
    #[serde(skip_serializing_if = "is_zero")]
    pub sick_gpus_omitted: usize,
    /// Findings of the node rather than one GPU (at most three).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub node_findings: Vec<ReasonView>,
    /// Why there is no verdict, when the agent did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A command for the operator to run (the gateway runs nothing).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct CommandView {
    /// Why and when to run it.
    pub purpose: String,
    /// The exact command.
    pub command: String,
}

/// The answer of `describe_gpu_node`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct NodeDescription {
    /// One sentence: GPUs allocatable and requested, cordon, taints, conditions, the verdict.
    pub headline: String,
    /// The node.
    pub node: String,
    /// Whether the node is cordoned (`spec.unschedulable`).
    pub cordoned: bool,
    /// GPU capacity, allocatable, requested and free.
    pub gpus: GpuResources,
    /// Taints (at most 32).
    pub taints: Vec<TaintView>,
    /// Conditions (at most 16).
    pub conditions: Vec<ConditionView>,
    /// The `nvidia.com/*` labels of GPU feature discovery (at most 64).
    pub gpu_labels: BTreeMap<String, String>,
    /// Labels, taints and conditions beyond those shown.
    #[serde(skip_serializing_if = "is_zero")]
    pub omitted: usize,
    /// What the node's agent says.
    pub agent: AgentView,
    /// The `kubectl` commands the verdict calls for; empty when it calls for none.
    pub commands: Vec<CommandView>,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn reason_view(f: &AgentFinding) -> ReasonView {
    ReasonView {
        check: clip(&f.check, 64),
        severity: f.severity,
        summary: clip(&f.summary, SENTENCE_LIMIT),
        action: clip(&f.action, SENTENCE_LIMIT),
    }
}

fn agent_view(health: Result<AgentHealth, String>) -> AgentView {
    match health {
        Ok(h) => {
            let mut sick: Vec<_> = h
                .gpus
                .iter()
                .filter(|g| g.verdict > Verdict::Healthy)
                .collect();
            sick.sort_by(|a, b| b.verdict.cmp(&a.verdict).then(a.index.cmp(&b.index)));
            let omitted = sick.len().saturating_sub(MAX_SICK_GPUS);
            let counts = BTreeMap::from([
                ("healthy".to_owned(), h.counts.healthy),
                ("warning".to_owned(), h.counts.warning),
                ("degraded".to_owned(), h.counts.degraded),
                ("critical".to_owned(), h.counts.critical),
            ]);
            AgentView {
                answered: true,
                verdict: Some(h.verdict),
                counts: Some(counts),
                sick_gpus: sick
                    .into_iter()
                    .take(MAX_SICK_GPUS)
                    .map(|g| SickGpu {
                        index: g.index,
                        verdict: g.verdict,
                        uuid: g.uuid.as_deref().map(|u| clip(u, 96)),
                        reasons: g
                            .reasons
                            .iter()
                            .take(MAX_REASONS)
                            .map(reason_view)
                            .collect(),
                    })
                    .collect(),
                sick_gpus_omitted: omitted,
                node_findings: h
                    .node_findings
                    .iter()
                    .take(MAX_REASONS)
                    .map(reason_view)
                    .collect(),
                error: None,
            }
        }
        Err(reason) => AgentView {
            answered: false,
            verdict: None,
            counts: None,
            sick_gpus: Vec::new(),
            sick_gpus_omitted: 0,
            node_findings: Vec::new(),
            error: Some(reason),
        },
    }
}

/// The commands the verdict calls for. The node name is a [`NodeName`] (lowercase letters,
/// digits, `-` and `.`), so it needs no shell quoting.
fn commands(node: &NodeName, cordoned: bool, verdict: Option<Verdict>) -> Vec<CommandView> {
    let cordon = CommandView {
        purpose: "Stop new pods from being scheduled here (running pods keep running).".into(),
        command: format!("kubectl cordon {node}"),
    };
    let drain = CommandView {
        purpose: "Evict the running pods so their work restarts elsewhere, before the GPU is \
reset, the node rebooted or the GPU replaced (it respects PodDisruptionBudgets; DaemonSet pods \
such as the GPU agent stay)."
            .into(),
        command: format!(
            "kubectl drain {node} --ignore-daemonsets --delete-emptydir-data --timeout=10m"
        ),
    };
    match verdict {
        Some(Verdict::Critical) if cordoned => vec![drain],
        Some(Verdict::Critical) => vec![cordon, drain],
        Some(Verdict::Degraded) if !cordoned => vec![cordon],
        Some(Verdict::Healthy) if cordoned => vec![CommandView {
            purpose: "The agent finds every GPU healthy: if the node was cordoned for a GPU \
problem that is now fixed, return it to service."
                .into(),
            command: format!("kubectl uncordon {node}"),
        }],
        _ => Vec::new(),
    }
}

fn is_problem(type_: &str, status: &str) -> bool {
    if type_ == "Ready" {
        status != "True"
    } else {
        status == "True"
    }
}

/// Builds the description of `node` from the cache's facts, its GPU pods and the agent's answer.
pub(crate) fn describe(
    node: &NodeName,
    facts: NodeFacts,
    pods: &[GpuPod],
    health: Result<AgentHealth, String>,
) -> NodeDescription {
    let mut requested: BTreeMap<String, i64> = BTreeMap::new();
    let holding: Vec<&GpuPod> = pods.iter().filter(|p| p.holds_gpus()).collect();
    for pod in &holding {
        for (resource, n) in &pod.gpus {
            *requested.entry(resource.clone()).or_default() += n;
        }
    }
    let free = facts
        .allocatable
        .iter()
        .map(|(r, n)| (r.clone(), n - requested.get(r).copied().unwrap_or(0)))
        .collect();
    let omitted = facts.gpu_labels.len().saturating_sub(MAX_LABELS)
        + facts.taints.len().saturating_sub(MAX_TAINTS)
        + facts.conditions.len().saturating_sub(MAX_CONDITIONS);
    let agent = agent_view(health);
    let description = NodeDescription {
        headline: String::new(),
        node: node.to_string(),
        cordoned: facts.unschedulable,
        gpus: GpuResources {
            capacity: facts.capacity,
            allocatable: facts.allocatable,
            requested,
            free,
            pods_holding_gpus: holding.len(),
        },
        taints: facts
            .taints
            .into_iter()
            .take(MAX_TAINTS)
            .map(|t| TaintView {
                key: clip(&t.key, 253),
                value: t.value.as_deref().map(|v| clip(v, 63)),
                effect: clip(&t.effect, 32),
            })
            .collect(),
        conditions: facts
            .conditions
            .into_iter()
            .take(MAX_CONDITIONS)
            .map(|c| ConditionView {
                problem: is_problem(&c.type_, &c.status),
                type_: clip(&c.type_, 64),
                status: clip(&c.status, 16),
                reason: c.reason.as_deref().map(|r| clip(r, 64)),
                message: c.message.as_deref().map(|m| clip(&quote_untrusted(m), 400)),
            })
            .collect(),
        gpu_labels: facts
            .gpu_labels
            .into_iter()
            .take(MAX_LABELS)
            .map(|(k, v)| (clip(&k, 253), clip(&v, 63)))
            .collect(),
        omitted,
        commands: commands(node, facts.unschedulable, agent.verdict),
        agent,
    };
    let mut description = fit(description);
    description.headline = headline(&description);
    description
}

fn size_of(d: &NodeDescription) -> usize {
    serde_json::to_vec(d).map_or(usize::MAX, |v| v.len())
}

/// Leaves out the last label, taint, condition or sick GPU, biggest section first, until the
/// answer fits [`ANSWER_BUDGET`] (with room for the headline).
fn fit(mut d: NodeDescription) -> NodeDescription {
    while size_of(&d) > ANSWER_BUDGET - 1024 {
        let sizes = [
            d.gpu_labels.len(),
            d.taints.len(),
            d.conditions.len(),
            d.agent.sick_gpus.len(),
        ];
        let Some((biggest, _)) = sizes
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .max_by_key(|(_, n)| **n)
        else {
            break;
        };
        match biggest {
            0 => {
                d.gpu_labels.pop_last();
            }
            1 => {
                d.taints.pop();
            }
            2 => {
                d.conditions.pop();
            }
            _ => {
                d.agent.sick_gpus.pop();
                d.agent.sick_gpus_omitted += 1;
                continue;
            }
        }
        d.omitted += 1;
    }
    d
}

/// At most five names, then how many more.
fn first_few(names: &[&str]) -> String {
    let mut out = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        let _ = write!(out, " and {} more", names.len() - 5);
    }
    out
}

fn headline(d: &NodeDescription) -> String {
    let gpus = |m: &BTreeMap<String, i64>| m.get(GPU_RESOURCE).copied().unwrap_or(0);
    let mut h = format!(
        "Node {}: {} of {} allocatable {GPU_RESOURCE} requested by {} pods",
        d.node,
        gpus(&d.gpus.requested),
        gpus(&d.gpus.allocatable),
        d.gpus.pods_holding_gpus
    );
    let mig: i64 = d
        .gpus
        .allocatable
        .iter()
        .filter(|(r, _)| r.as_str() != GPU_RESOURCE)
        .map(|(_, n)| n)
        .sum();
    if mig > 0 {
        let _ = write!(h, " (and {mig} MIG devices allocatable)");
    }
    h.push_str(if d.cordoned {
        "; cordoned"
    } else {
        "; schedulable"
    });
    let hard = d.taints.iter().filter(|t| t.effect != "PreferNoSchedule");
    let hard: Vec<&str> = hard.map(|t| t.key.as_str()).collect();
    if !hard.is_empty() {
        let _ = write!(h, "; tainted {}", first_few(&hard));
    }
    let problems: Vec<&str> = d
        .conditions
        .iter()
        .filter(|c| c.problem)
        .map(|c| c.type_.as_str())
        .collect();
    if !problems.is_empty() {
        let _ = write!(
            h,
            "; conditions needing attention: {}",
            first_few(&problems)
        );
    }
    match (&d.agent.verdict, &d.agent.error) {
        (Some(v), _) => {
            let _ = write!(h, "; agent verdict {}", v.as_str());
            if let Some(g) = d.agent.sick_gpus.first() {
                let why = g.reasons.first().map_or("", |r| r.summary.as_str());
                let _ = write!(h, " (GPU {}: {why})", g.index);
            }
        }
        (None, _) => h.push_str("; the agent gave no verdict"),
    }
    if !d.commands.is_empty() {
        h.push_str("; see `commands`");
    }
    h.push('.');
    h
}

/// The description in words, for the text block.
pub(crate) fn words(d: &NodeDescription) -> String {
    let mut out = format!("{}\n", d.headline);
    let list = |m: &BTreeMap<String, i64>| {
        m.iter()
            .map(|(r, n)| format!("{r}={n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "\nGPU resources: capacity [{}], allocatable [{}], requested [{}], free [{}].",
        list(&d.gpus.capacity),
        list(&d.gpus.allocatable),
        list(&d.gpus.requested),
        list(&d.gpus.free)
    );
    if d.taints.is_empty() {
        out.push_str("Taints: none.\n");
    } else {
        let taints: Vec<String> = d
            .taints
            .iter()
            .map(|t| match &t.value {
                Some(v) => format!("{}={v}:{}", t.key, t.effect),
                None => format!("{}:{}", t.key, t.effect),
            })
            .collect();
        let _ = writeln!(out, "Taints: {}.", taints.join(", "));
    }
    for c in d.conditions.iter().filter(|c| c.problem) {
        let _ = writeln!(
            out,
            "Condition {} is {}{}{}.",
            c.type_,
            c.status,
            c.reason
                .as_deref()
                .map_or_else(String::new, |r| format!(" ({r})")),
            c.message
                .as_deref()
                .map_or_else(String::new, |m| format!(": {m}"))
        );
    }
    match &d.agent.error {
        Some(e) => {
            let _ = writeln!(out, "Agent: no verdict: {e}");
        }
        None => {
            for g in &d.agent.sick_gpus {
                let _ = writeln!(out, "GPU {} is {}:", g.index, g.verdict.as_str());
                for r in &g.reasons {
                    let _ = writeln!(
                        out,
                        "  - {}: {}",
                        quote_untrusted(&r.summary),
                        quote_untrusted(&r.action)
                    );
                }
            }
            if d.agent.sick_gpus_omitted > 0 {
                let _ = writeln!(
                    out,
                    "{} more GPUs are not healthy (get_gpu_health with `node`).",
                    d.agent.sick_gpus_omitted
                );
            }
        }
    }
    if d.commands.is_empty() {
        out.push_str("No kubectl command is called for.\n");
    } else {
        out.push_str("\nCommands (the gateway runs nothing; an operator decides):\n");
        for c in &d.commands {
            let _ = writeln!(out, "  {}\n    {}", c.command, c.purpose);
        }
    }
    out
}

#[cfg(test)]
mod tests;
