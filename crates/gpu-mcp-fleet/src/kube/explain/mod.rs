//! `explain_pod_gpu_failure`: for one pod, what ended its containers, the GPUs it held (where the
//! node's agent knows), those GPUs' verdicts and the Xids reported during the pod's lifetime, and
//! a conclusion that says what the evidence shows and what it cannot know.
//!
//! It never guesses: a GPU fault is called likely only when a hardware Xid was reported during
//! the pod's run on a GPU the pod is known to have held; with the held GPUs unknown it says which
//! of the node's GPUs reported what, and that it cannot tell whether one was the pod's.

use std::fmt::Write as _;
use std::time::SystemTime;

use gpu_mcp_k8s::{GpuPod, quote_untrusted};
use gpu_mcp_model::output::Verdict;
use gpu_mcp_model::time::parse_rfc3339;
use gpu_mcp_model::xid::XidSeverity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::agent::AgentHealth;
use super::allocation::HeldDevice;
use super::clip;

/// Most Xid groups listed.
const MAX_XIDS: usize = 20;

/// Arguments of `explain_pod_gpu_failure`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExplainInput {
    /// The pod's namespace.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// The pod's name.
    #[schemars(length(min = 1, max = 253))]
    pub pod: String,
}

/// One group of the agent's `analyze_xid_errors` answer, as far as this tool reads it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct AgentXidGroup {
    #[serde(default)]
    pub gpu_index: Option<u32>,
    pub xid: u32,
    #[serde(default)]
    pub name: String,
    pub severity: XidSeverity,
    #[serde(default)]
    pub application_error: bool,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub count: u32,
    #[serde(default)]
    pub first_seen: Option<String>,
}

/// The part of the agent's `analyze_xid_errors` answer this tool reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct AgentXids {
    #[serde(default)]
    pub groups: Vec<AgentXidGroup>,
}

/// What the node's agent said, each part or why it is missing.
#[derive(Debug)]
pub(crate) struct Evidence {
    /// The devices the pod holds, per the kubelet through the agent.
    pub held: Result<Vec<HeldDevice>, String>,
    /// The node's health now.
    pub health: Result<AgentHealth, String>,
    /// Xids since the pod started.
    pub xids: Result<AgentXids, String>,
    /// Now, for the end of a pod that has not ended.
    pub now: SystemTime,
}

/// The conclusion, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Conclusion {
    /// A hardware Xid was reported during the pod's run on a GPU it held.
    GpuFaultLikely,
    /// Only Xids the application's own GPU work causes were reported on its GPUs.
    ApplicationError,
    /// No Xid on its GPUs during its run, and they are healthy now.
    NoGpuEvidence,
    /// The evidence cannot tell (GPUs held unknown, agent silent, GPU sick without an Xid).
    CannotTell,
    /// The pod was never bound to a node, so no GPU was involved.
    NeverScheduled,
}

/// How a GPU container ended (or is now).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct ContainerEnd {
    /// Container name.
    pub name: String,
    /// `running`, `waiting` or `terminated`.
    pub state: String,
    /// Why it waits or ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Exit code of the current termination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Restarts.
    pub restarts: i32,
    /// Reason and exit code of the previous run, when it restarted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The termination message the container wrote, quoted and bounded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Xids of one code on one GPU during the pod's lifetime.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct XidSeen {
    /// The GPU index, when the driver named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_index: Option<u32>,
    /// Whether the pod held that GPU: `true`, `false`, or absent when not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_held_it: Option<bool>,
    /// The Xid code.
    pub xid: u32,
    /// Its name.
    pub name: String,
    /// `info`, `warning` or `critical`.
    pub severity: XidSeverity,
    /// Whether this Xid is usually the application's doing.
    pub application_error: bool,
    /// Occurrences in the window.
    pub count: u32,
    /// First occurrence in the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    /// What to do about it.
    pub action: String,
}

/// The answer of `explain_pod_gpu_failure`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct Explanation {
    /// One sentence: the conclusion and its main evidence.
    pub headline: String,
    /// The conclusion in one word.
    pub conclusion: Conclusion,
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Its node, once scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Its phase.
    pub phase: String,
    /// The window searched for Xids: from the pod's start (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// How its GPU containers ended, or are.
    pub containers: Vec<ContainerEnd>,
    /// The devices it holds, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus_held: Option<Vec<HeldDevice>>,
    /// The node's GPUs that are not healthy now (index and verdict).
    pub sick_gpus_now: Vec<String>,
    /// Xids on the node's GPUs during the pod's lifetime (at most twenty groups).
    pub xids: Vec<XidSeen>,
    /// What this answer cannot know, and where to look.
    pub cannot_know: Vec<String>,
}

fn time_of(text: Option<&str>) -> Option<SystemTime> {
    text.and_then(parse_rfc3339)
}

fn containers(pod: &GpuPod) -> Vec<ContainerEnd> {
    pod.containers
        .iter()
        .map(|c| ContainerEnd {
            name: clip(&c.name, 64),
            state: if c.state.is_empty() {
                "unknown".into()
            } else {
                c.state.clone()
            },
            reason: c.reason.as_deref().map(|r| clip(r, 64)),
            exit_code: c.exit_code,
            restarts: c.restart_count,
            previous: c
                .last_termination
                .as_ref()
                .map(|(r, code)| format!("{} (exit code {code})", r.as_deref().unwrap_or("ended"))),
            message: c.message.as_deref().map(|m| clip(&quote_untrusted(m), 400)),
        })
        .collect()
}

/// Builds the explanation of `pod` from what the node's agent said.
pub(crate) fn explain(pod: &GpuPod, evidence: Evidence) -> Explanation {
    let started = pod.started.or(pod.created).map(|t| t.to_string());
    let ended = pod
        .containers
        .iter()
        .filter(|c| c.state == "terminated")
        .filter_map(|c| c.finished_at)
        .max()
        .filter(|_| pod.containers.iter().all(|c| c.state == "terminated"))
        .map(|t| t.to_string());
    let end = time_of(ended.as_deref()).unwrap_or(evidence.now);
    let held: Option<Vec<u32>> = evidence
        .held
        .as_ref()
        .ok()
        .map(|d| d.iter().filter_map(|d| d.gpu_index).collect());
    let mut xids: Vec<XidSeen> = match &evidence.xids {
        Ok(x) => x
            .groups
            .iter()
            .filter(|g| time_of(g.first_seen.as_deref()).is_none_or(|t| t <= end))
            .map(|g| XidSeen {
                gpu_index: g.gpu_index,
                pod_held_it: match (&held, g.gpu_index) {
                    (Some(h), Some(i)) => Some(h.contains(&i)),
                    _ => None,
                },
                xid: g.xid,
                name: clip(&g.name, 120),
                severity: g.severity,
                application_error: g.application_error,
                count: g.count,
                first_seen: g.first_seen.as_deref().map(|t| clip(t, 40)),
                action: clip(&g.action, 300),
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    xids.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.xid.cmp(&b.xid)));
    xids.truncate(MAX_XIDS);
    let sick_now: Vec<(u32, Verdict)> = match &evidence.health {
        Ok(h) => h
            .gpus
            .iter()
            .filter(|g| g.verdict > Verdict::Healthy)
            .map(|g| (g.index, g.verdict))
            .collect(),
        Err(_) => Vec::new(),
    };

    let mut cannot_know = vec![
        "The container logs and the pod's events are not read here: `kubectl logs --previous` \
and `kubectl describe pod` show what the program itself reported."
            .to_owned(),
        "Xids are what the node's kernel log still holds and what the agent recorded since it \
started; older ones are gone."
            .to_owned(),
    ];
    if let Err(reason) = &evidence.held {
        cannot_know.push(format!(
            "Which GPUs the pod held is not known: {reason}. (The kubelet lists a pod's devices \
only while it runs.)"
        ));
    }
    if let Err(reason) = &evidence.xids {
        cannot_know.push(format!("The Xids could not be read: {reason}."));
    }
    if let Err(reason) = &evidence.health {
        cannot_know.push(format!("The GPUs' verdicts could not be read: {reason}."));
    }

    let hardware = |x: &&XidSeen| !x.application_error && x.severity > XidSeverity::Info;
    let on_held = |x: &&XidSeen| x.pod_held_it == Some(true);
    let (conclusion, why) = if pod.node.is_none() {
        (
            Conclusion::NeverScheduled,
            "it was never bound to a node, so no GPU was allocated to it; the scheduler's reason \
is in its events"
                .to_owned(),
        )
    } else if let Some(x) = xids.iter().filter(hardware).find(on_held) {
        (
            Conclusion::GpuFaultLikely,
            format!(
                "GPU {} that it held reported Xid {} ({}) during its run",
                x.gpu_index.unwrap_or_default(),
                x.xid,
                x.name
            ),
        )
    } else if held.is_none() && evidence.xids.is_ok() && xids.iter().any(|x| hardware(&x)) {
        let x = xids.iter().find(|x| hardware(x)).map_or(0, |x| x.xid);
        (
            Conclusion::CannotTell,
            format!(
                "a GPU of its node reported Xid {x} during its run, but which GPUs it held is \
not known, so it cannot be said whether that GPU was one of them"
            ),
        )
    } else if evidence.xids.is_err() || evidence.health.is_err() {
        (
            Conclusion::CannotTell,
            "its node's agent did not give the Xids or the verdicts needed to tell".to_owned(),
        )
    } else if let Some((i, v)) = sick_now
        .iter()
        .find(|(i, _)| held.as_ref().is_none_or(|h| h.contains(i)))
    {
        (
            Conclusion::CannotTell,
            format!(
                "no Xid was reported during its run, but GPU {i}{} is {} now, which may or may \
not have affected it",
                if held.is_some() {
                    " that it held"
                } else {
                    " of its node"
                },
                v.as_str()
            ),
        )
    } else if xids
        .iter()
        .any(|x| x.application_error && x.pod_held_it != Some(false))
    {
        (
            Conclusion::ApplicationError,
            "only Xids that the application's own GPU work causes (not the hardware) were \
reported on its GPUs during its run"
                .to_owned(),
        )
    } else {
        (
            Conclusion::NoGpuEvidence,
            format!(
                "no Xid was reported on {} during its run and the agent finds {} healthy now",
                if held.is_some() {
                    "the GPUs it held"
                } else {
                    "its node's GPUs"
                },
                if held.is_some() { "them" } else { "every GPU" }
            ),
        )
    };
    let ends = containers(pod);
    let mut headline = format!("Pod {}/{} ({}): ", pod.namespace, pod.name, pod.phase);
    let _ = write!(headline, "{why}.");
    if let Some(c) = ends
        .iter()
        .find(|c| c.exit_code.is_some_and(|e| e != 0) || c.reason.is_some())
    {
        let _ = write!(
            headline,
            " Container {} is {}{}{}.",
            c.name,
            c.state,
            c.reason
                .as_deref()
                .map_or_else(String::new, |r| format!(" ({r})")),
            c.exit_code
                .map_or_else(String::new, |e| format!(", exit code {e}"))
        );
    }
    Explanation {
        headline,
        conclusion,
        namespace: pod.namespace.clone(),
        pod: pod.name.clone(),
        node: pod.node.clone(),
        phase: if pod.phase.is_empty() {
            "Unknown".into()
        } else {
            clip(&pod.phase, 16)
        },
        since: started,
        containers: ends,
        gpus_held: evidence.held.ok(),
        sick_gpus_now: sick_now
            .iter()
            .map(|(i, v)| format!("GPU {i}: {}", v.as_str()))
            .collect(),
        xids,
        cannot_know,
    }
}

/// The explanation in words, for the text block.
pub(crate) fn words(e: &Explanation) -> String {
    let mut out = format!("{}\n", e.headline);
    if let Some(held) = &e.gpus_held {
        let list: Vec<String> = held
            .iter()
            .map(|d| {
                format!(
                    "{}{} ({})",
                    d.gpu_index
                        .map_or_else(String::new, |i| format!("GPU {i} ")),
                    d.uuid,
                    d.verdict.map_or("verdict unknown", Verdict::as_str)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "GPUs held: {}.",
            if list.is_empty() {
                "none listed by the kubelet".to_owned()
            } else {
                list.join(", ")
            }
        );
    }
    for x in &e.xids {
        let _ = writeln!(
            out,
            "- Xid {} {} on GPU {}{}: {} times from {}; {}",
            x.xid,
            x.name,
            x.gpu_index
                .map_or_else(|| "?".to_owned(), |i| i.to_string()),
            match x.pod_held_it {
                Some(true) => " (held by the pod)",
                Some(false) => " (not the pod's)",
                None => "",
            },
            x.count,
            x.first_seen.as_deref().unwrap_or("?"),
            x.action
        );
    }
    out.push_str("Cannot know:\n");
    for c in &e.cannot_know {
        let _ = writeln!(out, "- {c}");
    }
    out
}

#[cfg(test)]
mod tests;
