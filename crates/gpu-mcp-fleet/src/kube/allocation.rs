//! `get_pod_gpu_allocation`: the pods that request GPUs, per node or cluster-wide, in bounded
//! pages, joined where the node's agent knows it with the GPUs each pod holds and their verdicts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use gpu_mcp_k8s::{GpuPod, NodeName, PodKey};
use gpu_mcp_model::output::Verdict;
use gpu_mcp_model::processes::GpuProcessesReport;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::clip;
use crate::fleet_args::{Cursor, node_limit};

/// Pods per page unless `limit` says otherwise.
pub(crate) const DEFAULT_POD_LIMIT: u32 = 50;
/// Most pods per page.
pub(crate) const MAX_POD_LIMIT: u32 = 200;
/// Bytes of pod entries one page carries at most (the rest goes to the next page).
const PAGE_BUDGET_BYTES: usize = 16 * 1024;
/// Most node notes one page carries.
const MAX_NODE_NOTES: usize = 10;
/// The cursor section of this tool.
const SECTION: char = 'a';

/// Arguments of `get_pod_gpu_allocation`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllocationInput {
    /// Only pods bound to this Kubernetes node.
    #[serde(default)]
    #[schemars(length(min = 1, max = 253))]
    pub node: Option<String>,
    /// Only pods in this namespace.
    #[serde(default)]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    /// Only the pod with this name (with `namespace` when names repeat across namespaces).
    #[serde(default)]
    #[schemars(length(min = 1, max = 253))]
    pub pod: Option<String>,
    /// Pods per page (1 to 200, default 50).
    #[serde(default)]
    #[schemars(range(min = 1, max = 200))]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    #[schemars(length(min = 1, max = 1024))]
    pub cursor: Option<String>,
}

/// The checked arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllocationArgs {
    pub node: Option<NodeName>,
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub limit: usize,
    pub after: Option<PodKey>,
}

fn dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

impl AllocationArgs {
    /// Checks the arguments; the error is the message for the client.
    pub(crate) fn check(input: AllocationInput) -> Result<Self, String> {
        let node = input
            .node
            .as_deref()
            .map(|n| NodeName::try_from(n).map_err(|e| format!("Invalid argument `node`: {e}.")))
            .transpose()?;
        if let Some(ns) = input.namespace.as_deref().filter(|ns| !dns_label(ns)) {
            return Err(format!(
                "Invalid argument `namespace`: {} is not a Kubernetes namespace name (lowercase \
letters, digits and '-', at most 63).",
                crate::node_arg::quote(ns)
            ));
        }
        // Pod names follow the same rule as node names (a DNS-1123 subdomain).
        if let Some(pod) = input
            .pod
            .as_deref()
            .filter(|p| NodeName::try_from(*p).is_err())
        {
            return Err(format!(
                "Invalid argument `pod`: {} is not a Kubernetes pod name.",
                crate::node_arg::quote(pod)
            ));
        }
        let limit = node_limit(input.limit, DEFAULT_POD_LIMIT, MAX_POD_LIMIT)
            .map_err(|e| e.replace("`node_limit`", "`limit`"))?;
        let after = input
            .cursor
            .as_deref()
            .map(|c| {
                let cursor = Cursor::decode(c, SECTION)?;
                cursor
                    .node
                    .split_once('/')
                    .map(|(ns, name)| (ns.to_owned(), name.to_owned()))
                    .ok_or_else(|| "Invalid argument `cursor`: start again without it.".to_owned())
            })
            .transpose()?;
        Ok(Self {
            node,
            namespace: input.namespace,
            pod: input.pod,
            limit,
            after,
        })
    }
}

/// One GPU (or MIG device) a pod's container holds, per the node's kubelet.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct HeldDevice {
    /// The device UUID (`GPU-...` or `MIG-...`).
    pub uuid: String,
    /// The GPU index on the node, when the agent read that GPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_index: Option<u32>,
    /// The GPU's verdict, when the agent read that GPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// The container that holds it.
    pub container: String,
    /// Whether other containers hold the same device (time-slicing, MPS).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
}

/// One pod that requests GPUs.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct PodAllocation {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// The node it is bound to, once scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    pub phase: String,
    /// Whether it holds its GPUs now (bound, not succeeded or failed).
    pub holds_gpus: bool,
    /// GPUs requested per resource (`nvidia.com/gpu`, `nvidia.com/mig-*`).
    pub requested: BTreeMap<String, i64>,
    /// A GPU container that is not running cleanly: waiting, terminated with an error, or
    /// restarted (one sentence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trouble: Option<String>,
    /// The devices the node's kubelet allocated to this pod, when its agent says.
    pub devices: Vec<HeldDevice>,
    /// Whether `devices` is known (the node's agent answered `get_gpu_processes`); when not,
    /// the node's entry in `device_notes` says why.
    pub devices_known: bool,
}

/// Why the devices of the pods on one node are not known.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct NodeNote {
    /// The node.
    pub node: String,
    /// Why.
    pub reason: String,
}

/// The answer of `get_pod_gpu_allocation`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct AllocationPage {
    /// One sentence: how many pods match, how many hold GPUs on this page, any on a GPU that
    /// is not healthy.
    pub headline: String,
    /// Pods the filter admits in all (every page).
    pub total: usize,
    /// This page, sorted by namespace and name.
    pub pods: Vec<PodAllocation>,
    /// Pods after this page.
    pub pods_omitted: usize,
    /// Nodes of this page whose devices are not known, and why (once per node).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_notes: Vec<NodeNote>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The first trouble of a pod's GPU containers, in one sentence.
fn trouble(pod: &GpuPod) -> Option<String> {
    if let Some(reason) = pod.reason.as_deref() {
        return Some(format!("pod {}: {}", pod.phase, clip(reason, 64)));
    }
    pod.containers.iter().find_map(|c| {
        let failed_exit = c.exit_code.is_some_and(|code| code != 0);
        let waiting = c.state == "waiting" && c.reason.is_some();
        if !(failed_exit || waiting || c.restart_count > 0) {
            return None;
        }
        let mut s = format!("container {}: {}", clip(&c.name, 64), c.state);
        if let Some(reason) = c.reason.as_deref() {
            let _ = write!(s, " ({})", clip(reason, 64));
        }
        if let Some(code) = c.exit_code {
            let _ = write!(s, ", exit code {code}");
        }
        if c.restart_count > 0 {
            let _ = write!(s, ", {} restarts", c.restart_count);
        }
        if let Some((reason, code)) = &c.last_termination {
            let _ = write!(
                s,
                ", last ended {} (exit code {code})",
                reason.as_deref().map_or("", |r| r)
            );
        }
        Some(s)
    })
}

/// The devices of `pod` in its node's report.
pub(crate) fn devices_of(pod: &GpuPod, report: &GpuProcessesReport) -> Vec<HeldDevice> {
    let mut out = Vec::new();
    for allocation in &report.allocations {
        for holder in allocation
            .holders
            .iter()
            .filter(|h| h.namespace == pod.namespace && h.pod == pod.name)
        {
            out.push(HeldDevice {
                uuid: clip(&allocation.device_uuid, 96),
                gpu_index: allocation.gpu_index,
                verdict: allocation.verdict,
                container: clip(&holder.container, 64),
                shared: allocation.holders.len() > 1,
            });
        }
    }
    out
}

/// Builds the page from the cache's page of pods, the total, and each node's process report.
pub(crate) fn build(
    pods: Vec<GpuPod>,
    remaining: usize,
    total: usize,
    reports: &BTreeMap<String, Result<GpuProcessesReport, String>>,
) -> AllocationPage {
    let mut page = AllocationPage {
        headline: String::new(),
        total,
        pods: Vec::new(),
        pods_omitted: 0,
        device_notes: Vec::new(),
        next_cursor: None,
    };
    let mut left = PAGE_BUDGET_BYTES;
    let mut last: Option<(String, String)> = None;
    for pod in &pods {
        let report = pod.node.as_ref().and_then(|n| reports.get(n));
        let entry = PodAllocation {
            namespace: pod.namespace.clone(),
            pod: pod.name.clone(),
            node: pod.node.clone(),
            phase: if pod.phase.is_empty() {
                "Unknown".into()
            } else {
                clip(&pod.phase, 16)
            },
            holds_gpus: pod.holds_gpus(),
            requested: pod.gpus.clone(),
            trouble: trouble(pod),
            devices: match report {
                Some(Ok(r)) => devices_of(pod, r),
                _ => Vec::new(),
            },
            devices_known: matches!(report, Some(Ok(_))),
        };
        let size = serde_json::to_vec(&entry).map_or(usize::MAX, |v| v.len());
        if !page.pods.is_empty() && size > left {
            break;
        }
        left = left.saturating_sub(size);
        last = Some((pod.namespace.clone(), pod.name.clone()));
        page.pods.push(entry);
    }
    page.pods_omitted = remaining - page.pods.len();
    if page.pods_omitted > 0 {
        page.next_cursor = last.map(|(ns, name)| {
            Cursor {
                section: SECTION,
                rank: 0,
                node: format!("{ns}/{name}"),
            }
            .encode()
        });
    }
    let mut noted: Vec<&str> = page.pods.iter().filter_map(|p| p.node.as_deref()).collect();
    noted.dedup();
    for node in noted {
        if let Some(Err(reason)) = reports.get(node)
            && page.device_notes.len() < MAX_NODE_NOTES
            && page.device_notes.iter().all(|n| n.node != node)
        {
            page.device_notes.push(NodeNote {
                node: node.to_owned(),
                reason: clip(reason, 300),
            });
        }
    }
    page.headline = headline(&page);
    page
}

fn headline(page: &AllocationPage) -> String {
    if page.total == 0 {
        return "No pod that requests GPUs matches.".to_owned();
    }
    let holding = page.pods.iter().filter(|p| p.holds_gpus).count();
    let sick: Vec<String> = page
        .pods
        .iter()
        .filter(|p| {
            p.devices
                .iter()
                .any(|d| d.verdict.is_some_and(|v| v > Verdict::Healthy))
        })
        .map(|p| format!("{}/{}", p.namespace, p.pod))
        .collect();
    let mut h = format!(
        "{} pods request GPUs; this page lists {} ({holding} holding GPUs now)",
        page.total,
        page.pods.len()
    );
    if sick.is_empty() {
        let known = page.pods.iter().filter(|p| p.devices_known).count();
        if known == page.pods.len() {
            h.push_str("; none is on a GPU that is not healthy");
        } else {
            let _ = write!(
                h,
                "; the devices of {} pods are not known (see `device_notes`)",
                page.pods.len() - known
            );
        }
    } else {
        let _ = write!(
            h,
            "; {} on a GPU that is not healthy: {}",
            sick.len(),
            sick.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    h.push('.');
    h
}

/// The page in words, for the text block.
pub(crate) fn words(page: &AllocationPage) -> String {
    let mut out = format!("{}\n", page.headline);
    for p in &page.pods {
        let gpus: Vec<String> = p
            .requested
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        let _ = write!(
            out,
            "- {}/{} on {}: {}, requests {}",
            p.namespace,
            p.pod,
            p.node.as_deref().unwrap_or("no node yet"),
            p.phase,
            gpus.join(", ")
        );
        if !p.devices.is_empty() {
            let devices: Vec<String> = p
                .devices
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
            let _ = write!(out, "; holds {}", devices.join(", "));
        }
        if let Some(t) = &p.trouble {
            let _ = write!(out, "; {t}");
        }
        out.push('\n');
    }
    for note in &page.device_notes {
        let _ = writeln!(out, "Devices on {} unknown: {}", note.node, note.reason);
    }
    if page.pods_omitted > 0 {
        let _ = writeln!(
            out,
            "{} more pods: pass `cursor` = `next_cursor` for the next page, or narrow with \
`node`, `namespace` or `pod`.",
            page.pods_omitted
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_mcp_k8s::{ContainerFacts, GPU_RESOURCE};
    use serde_json::json;

    fn pod(name: &str, node: &str) -> GpuPod {
        GpuPod {
            namespace: "ml-training".into(),
            name: name.into(),
            node: Some(node.into()),
            phase: "Running".into(),
            gpus: BTreeMap::from([(GPU_RESOURCE.into(), 1)]),
            containers: vec![ContainerFacts {
                name: "worker".into(),
                state: "running".into(),
                ..ContainerFacts::default()
            }],
            ..GpuPod::default()
        }
    }

    fn report(node: &str) -> GpuProcessesReport {
        serde_json::from_value(json!({"headline": "", "node": node, "process_count": 0,
            "processes_omitted": 0, "pods_by_namespace": {}, "attribution": [], "gpus": [],
            "allocations": [{"device_uuid": "GPU-1", "gpu_index": 1, "verdict": "critical",
                "holders": [{"namespace": "ml-training", "pod": "n1-job-1", "container": "worker"}]}]}))
        .unwrap()
    }

    #[test]
    fn devices_join_where_the_agent_knows_and_notes_say_why_not() {
        let reports = BTreeMap::from([
            ("n1".to_owned(), Ok(report("n1"))),
            ("n2".to_owned(), Err("no get_gpu_processes".to_owned())),
        ]);
        let page = build(
            vec![
                pod("n1-job-0", "n1"),
                pod("n1-job-1", "n1"),
                pod("n2-job-0", "n2"),
            ],
            3,
            3,
            &reports,
        );
        assert!(page.pods[0].devices_known && page.pods[0].devices.is_empty());
        assert_eq!(page.pods[1].devices[0].uuid, "GPU-1");
        assert_eq!(page.pods[1].devices[0].verdict, Some(Verdict::Critical));
        assert!(!page.pods[2].devices_known);
        assert_eq!(page.device_notes.len(), 1);
        assert!(
            page.headline
                .contains("1 on a GPU that is not healthy: ml-training/n1-job-1")
        );
        assert!(page.next_cursor.is_none());
        assert!(words(&page).contains("holds GPU 1 GPU-1 (critical)"));
    }

    #[test]
    fn arguments_are_checked_and_the_cursor_walks_on() {
        let bad = |v: serde_json::Value| {
            AllocationArgs::check(serde_json::from_value(v).unwrap()).unwrap_err()
        };
        assert!(bad(json!({"namespace": "Bad_NS"})).contains("namespace"));
        assert!(bad(json!({"pod": "a b"})).contains("pod"));
        assert!(bad(json!({"node": "-x"})).contains("node"));
        assert!(bad(json!({"limit": 0})).contains("`limit`"));
        assert!(bad(json!({"cursor": "zzz"})).contains("cursor"));
        let page = build(vec![pod("a", "n1")], 5, 5, &BTreeMap::new());
        assert_eq!(page.pods_omitted, 4);
        let cursor = page.next_cursor.unwrap();
        let args =
            AllocationArgs::check(serde_json::from_value(json!({"cursor": cursor})).unwrap())
                .unwrap();
        assert_eq!(args.after, Some(("ml-training".into(), "a".into())));
        assert_eq!(args.limit, DEFAULT_POD_LIMIT as usize);
    }

    #[test]
    fn trouble_is_said_in_one_sentence() {
        let mut p = pod("a", "n1");
        assert_eq!(trouble(&p), None);
        p.containers[0].state = "terminated".into();
        p.containers[0].reason = Some("Error".into());
        p.containers[0].exit_code = Some(139);
        p.containers[0].restart_count = 2;
        assert_eq!(
            trouble(&p).unwrap(),
            "container worker: terminated (Error), exit code 139, 2 restarts"
        );
    }
}
