//! `get_gpu_processes`: the processes on the node's GPUs with their owners, and the devices the
//! kubelet allocated, built from one snapshot, one attribution and the GPUs' verdicts.

use std::collections::BTreeMap;
use std::time::SystemTime;

use gpu_mcp_model::args::{DEFAULT_HEALTH_XID_WINDOW, HealthArgs};
use gpu_mcp_model::output::Verdict;
use gpu_mcp_model::processes::{
    DEFAULT_PROCESS_LIMIT, GpuAllocation, GpuProcesses, GpuProcessesArgs, GpuProcessesReport,
    MAX_PROCESS_LIMIT, MigDeviceProcesses, ProcessEntry, SourceState,
};
use gpu_mcp_model::{AttributionSource, GpuSnapshot, NodeSnapshot, PodRef, ProcessOwner, Reading};
use gpu_mcp_protocol::CallToolResult;

use crate::catalog::AgentCatalog;
use crate::owners::{Attribution, Query, mig_uuid};

impl AgentCatalog {
    /// Builds the processes report (also used by the docs generator and tests).
    pub async fn processes_report(
        &self,
        args: GpuProcessesArgs,
    ) -> Result<GpuProcessesReport, CallToolResult> {
        let limit = limit(&args)?;
        let ev = self.gather(true).await;
        let Some(snap) = &ev.snapshot else {
            return Err(CallToolResult::error(format!(
                "Cannot read the GPUs: {}",
                ev.snapshot_error.clone().unwrap_or_default()
            )));
        };
        let sel = select(snap, &args)?;
        let since = self
            .parse_since("xid_since", Some(DEFAULT_HEALTH_XID_WINDOW))?
            .unwrap_or(SystemTime::UNIX_EPOCH);
        // Every GPU's verdict, for the allocations (the health call shares this evidence).
        let verdicts: BTreeMap<u32, Verdict> = self
            .judge(&ev, &HealthArgs::default(), since, false)
            .await
            .map(|h| h.gpus.iter().map(|g| (g.index, g.verdict)).collect())
            .unwrap_or_default();
        let queries = queries(&sel);
        let attribution = self
            .sources()
            .attribute(self.backend().as_ref(), Some(snap), &queries)
            .await;
        Ok(report(
            &self.config().node_name,
            snap,
            &sel,
            &args,
            limit,
            &attribution,
            &verdicts,
        ))
    }

    pub(crate) async fn processes(&self, args: GpuProcessesArgs) -> CallToolResult {
        match self.processes_report(args).await {
            Ok(r) => CallToolResult::structured_encoded(&r, text(&r)),
            Err(e) => e,
        }
    }
}

/// The GPUs and the MIG device a `get_gpu_processes` call is about.
pub(crate) struct Selection<'a> {
    /// The GPUs asked about.
    pub(crate) gpus: Vec<&'a GpuSnapshot>,
    /// The one MIG device asked about (`gpu_uuid: MIG-...`).
    pub(crate) mig: Option<String>,
}

/// Resolves the GPU filters; a MIG UUID selects its GPU and narrows to that MIG device.
pub(crate) fn select<'a>(
    snap: &'a NodeSnapshot,
    args: &GpuProcessesArgs,
) -> Result<Selection<'a>, CallToolResult> {
    let mig_parent = args.gpu_uuid.as_deref().map(str::trim).and_then(|u| {
        snap.gpus.iter().find_map(|g| {
            let m = g
                .mig
                .instances
                .value()?
                .iter()
                .find(|m| m.uuid.value().is_some_and(|x| x.eq_ignore_ascii_case(u)))?;
            Some((g, m.uuid.value().cloned()))
        })
    });
    if let Some((g, mig)) = mig_parent {
        if args.gpu_index.is_some_and(|i| i != g.index) {
            return Err(CallToolResult::error(format!(
                "Invalid argument `gpu_uuid`: that MIG device is on GPU {}, not on GPU {}.",
                g.index,
                args.gpu_index.unwrap_or_default()
            )));
        }
        return Ok(Selection { gpus: vec![g], mig });
    }
    let gpus = crate::catalog::select_gpus(&snap.gpus, args.gpu_index, args.gpu_uuid.as_deref())?;
    Ok(Selection { gpus, mig: None })
}

/// Checks `limit`.
pub(crate) fn limit(args: &GpuProcessesArgs) -> Result<u32, CallToolResult> {
    let limit = args.limit.unwrap_or(DEFAULT_PROCESS_LIMIT);
    if limit == 0 || limit > MAX_PROCESS_LIMIT {
        return Err(CallToolResult::error(format!(
            "Invalid argument `limit`: {limit} is out of range; use 1 to {MAX_PROCESS_LIMIT}."
        )));
    }
    Ok(limit)
}

/// The processes of the selected GPUs to attribute, in GPU order.
pub(crate) fn queries(sel: &Selection<'_>) -> Vec<Query> {
    sel.gpus
        .iter()
        .flat_map(|g| {
            g.processes.value().into_iter().flatten().map(|p| Query {
                pid: p.pid,
                gpu_index: Some(g.index),
                gpu_instance: p.gpu_instance,
                compute_instance: p.compute_instance,
            })
        })
        .collect()
}

/// Whether a container passes the `namespace` and `pod` filters.
fn admits(args: &GpuProcessesArgs, p: &PodRef) -> bool {
    args.namespace.as_deref().is_none_or(|n| p.namespace == n)
        && args.pod.as_deref().is_none_or(|n| p.pod == n)
}

fn filtered(args: &GpuProcessesArgs) -> bool {
    args.namespace.is_some() || args.pod.is_some()
}

/// Whether a process passes the filters: its pod, or one of its candidates, is admitted.
fn owner_admitted(args: &GpuProcessesArgs, o: &ProcessOwner) -> bool {
    !filtered(args) || o.pod.iter().chain(&o.candidates).any(|p| admits(args, p))
}

/// The MIG devices of `g` with their process counts (of `entries`) and holders.
pub(crate) fn mig_devices(
    g: &GpuSnapshot,
    entries: &[ProcessEntry],
    attribution: Option<&Attribution>,
) -> Vec<MigDeviceProcesses> {
    if g.mig.enabled.get() != Some(true) {
        return Vec::new();
    }
    g.mig
        .instances
        .value()
        .into_iter()
        .flatten()
        .map(|m| {
            let uuid = m.uuid.value().cloned();
            MigDeviceProcesses {
                index: m.index,
                process_count: entries
                    .iter()
                    .filter(|e| e.mig_uuid.is_some() && e.mig_uuid == uuid)
                    .count() as u64,
                holders: match (&uuid, attribution) {
                    (Some(u), Some(a)) => a.holders(u),
                    _ => Vec::new(),
                },
                uuid,
                gpu_instance_id: m.gpu_instance_id.get(),
                compute_instance_id: m.compute_instance_id.get(),
                profile: m.profile.clone(),
            }
        })
        .collect()
}

/// Builds the report from the selection, its attribution (of [`queries`], in order) and the
/// node's GPU verdicts by index.
pub(crate) fn report(
    node: &str,
    snap: &NodeSnapshot,
    sel: &Selection<'_>,
    args: &GpuProcessesArgs,
    limit: u32,
    attribution: &Attribution,
    verdicts: &BTreeMap<u32, Verdict>,
) -> GpuProcessesReport {
    // Every process of the selection with its owner, in GPU order.
    let mut owners = attribution.owners.iter().zip(&attribution.names);
    let mut per_gpu: Vec<(u32, Vec<ProcessEntry>)> = Vec::new();
    for g in &sel.gpus {
        let mut entries = Vec::new();
        for p in g.processes.value().into_iter().flatten() {
            let (owner, name) = owners
                .next()
                .map(|(o, n)| (o.clone(), n.clone()))
                .unwrap_or_default();
            let mig = mig_uuid(g, p.gpu_instance, p.compute_instance);
            if sel.mig.is_some() && mig != sel.mig {
                continue;
            }
            if !owner_admitted(args, &owner) {
                continue;
            }
            entries.push(ProcessEntry {
                pid: p.pid,
                name,
                kind: p.kind,
                used_memory_bytes: p.used_memory_bytes,
                mig_uuid: mig,
                owner,
            });
        }
        per_gpu.push((g.index, entries));
    }
    let process_count: u64 = per_gpu.iter().map(|(_, e)| e.len() as u64).sum();
    let mut pods_by_namespace: BTreeMap<String, u64> = BTreeMap::new();
    for e in per_gpu.iter().flat_map(|(_, e)| e) {
        if let Some(p) = &e.owner.pod {
            *pods_by_namespace.entry(p.namespace.clone()).or_default() += 1;
        }
    }
    // Keep the `limit` biggest by GPU memory across the selection (unknown memory last).
    let mut sizes: Vec<(u64, u32, usize)> = per_gpu
        .iter()
        .flat_map(|(gi, e)| {
            e.iter()
                .enumerate()
                .map(move |(k, p)| (p.used_memory_bytes.unwrap_or(0), *gi, k))
        })
        .collect();
    sizes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let keep: std::collections::BTreeSet<(u32, usize)> = sizes
        .iter()
        .take(limit as usize)
        .map(|(_, g, k)| (*g, *k))
        .collect();
    let mut gpus = Vec::with_capacity(sel.gpus.len());
    for (g, (index, entries)) in sel.gpus.iter().zip(per_gpu) {
        let mig_devices = mig_devices(g, &entries, Some(attribution))
            .into_iter()
            .filter(|m| sel.mig.is_none() || m.uuid == sel.mig)
            .collect();
        let mut listed: Vec<ProcessEntry> = entries
            .into_iter()
            .enumerate()
            .filter(|(k, _)| keep.contains(&(index, *k)))
            .map(|(_, e)| e)
            .collect();
        listed.sort_by(|a, b| {
            b.used_memory_bytes
                .unwrap_or(0)
                .cmp(&a.used_memory_bytes.unwrap_or(0))
                .then(a.pid.cmp(&b.pid))
        });
        gpus.push(GpuProcesses {
            index,
            uuid: g.uuid.value().cloned(),
            verdict: verdicts.get(&index).copied(),
            processes: listed,
            unavailable: match &g.processes {
                Reading::Value(_) => None,
                Reading::NotSupported => Some("not supported on this GPU".to_owned()),
                Reading::Error(e) => Some(e.clone()),
            },
            mig_devices,
        });
    }
    let listed: u64 = gpus.iter().map(|g| g.processes.len() as u64).sum();
    let allocations = allocations(snap, sel, args, attribution, verdicts);
    let mut report = GpuProcessesReport {
        headline: String::new(),
        node: node.to_owned(),
        process_count,
        processes_omitted: process_count - listed,
        pods_by_namespace,
        attribution: attribution.statuses.clone(),
        gpus,
        allocations,
    };
    report.headline = headline(&report, attribution);
    report
}

/// The allocated devices of the selection, with the GPU index and verdict where the device is
/// one of this node's GPUs or MIG devices.
fn allocations(
    snap: &NodeSnapshot,
    sel: &Selection<'_>,
    args: &GpuProcessesArgs,
    attribution: &Attribution,
    verdicts: &BTreeMap<u32, Verdict>,
) -> Vec<GpuAllocation> {
    let Some(all) = &attribution.allocations else {
        return Vec::new();
    };
    let narrowed = args.gpu_index.is_some() || args.gpu_uuid.is_some();
    let gpu_of = |id: &str| -> Option<u32> {
        snap.gpus.iter().find_map(|g| {
            let is_gpu = g.uuid.value().is_some_and(|u| u == id) || g.index.to_string() == id;
            let is_mig = g
                .mig
                .instances
                .value()
                .is_some_and(|m| m.iter().any(|m| m.uuid.value().is_some_and(|u| u == id)));
            (is_gpu || is_mig).then_some(g.index)
        })
    };
    all.iter()
        .filter_map(|(id, holders)| {
            let gpu_index = gpu_of(id);
            if narrowed {
                let wanted = match &sel.mig {
                    Some(m) => m == id,
                    None => gpu_index.is_some_and(|i| sel.gpus.iter().any(|g| g.index == i)),
                };
                if !wanted {
                    return None;
                }
            }
            let holders: Vec<PodRef> = holders
                .iter()
                .filter(|p| admits(args, p))
                .cloned()
                .collect();
            if holders.is_empty() {
                return None;
            }
            Some(GpuAllocation {
                device_uuid: id.to_owned(),
                gpu_index,
                verdict: gpu_index.and_then(|i| verdicts.get(&i).copied()),
                holders,
            })
        })
        .collect()
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One sentence: how many processes on how many GPUs, how many attributed to pods, and what
/// could not be read.
fn headline(r: &GpuProcessesReport, a: &Attribution) -> String {
    let attributed: u64 = r.pods_by_namespace.values().sum();
    let mut s = format!(
        "{} on {} of {}",
        plural(r.process_count, "process", "processes"),
        plural(r.gpus.len() as u64, "GPU", "GPUs"),
        r.node
    );
    if r.process_count > 0 {
        let ns: Vec<&str> = r.pods_by_namespace.keys().map(String::as_str).collect();
        if ns.is_empty() {
            s.push_str(", none attributed to a pod");
        } else {
            s.push_str(&format!(
                ", {attributed} attributed to pods in {} ({})",
                plural(ns.len() as u64, "namespace", "namespaces"),
                ns.join(", ")
            ));
        }
    }
    s.push_str(&format!(
        "; {} allocated to containers",
        plural(r.allocations.len() as u64, "device", "devices")
    ));
    let used: Vec<&str> = r
        .attribution
        .iter()
        .filter(|x| x.state == SourceState::Ok)
        .map(|x| x.source.as_str())
        .collect();
    if used.is_empty() {
        s.push_str("; no attribution source answered");
    } else {
        s.push_str(&format!("; sources: {}", used.join(", ")));
    }
    s.push('.');
    let unreadable: Vec<String> = r
        .gpus
        .iter()
        .filter(|g| g.unavailable.is_some())
        .map(|g| g.index.to_string())
        .collect();
    if !unreadable.is_empty() {
        s.push_str(&format!(
            " The process list of GPU {} could not be read.",
            unreadable.join(", ")
        ));
    }
    for p in a.problems() {
        s.push_str(&format!(" {p}."));
    }
    if r.processes_omitted > 0 {
        s.push_str(&format!(
            " {} left out by `limit`.",
            plural(r.processes_omitted, "process", "processes")
        ));
    }
    s
}

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

/// The report in words: the headline, then each GPU's processes and owners, its MIG devices,
/// and the allocations.
pub(crate) fn text(r: &GpuProcessesReport) -> String {
    let mut out = r.headline.clone();
    for g in &r.gpus {
        out.push_str(&format!("\nGPU {}", g.index));
        match (&g.uuid, g.verdict) {
            (Some(u), Some(v)) => out.push_str(&format!(" ({u}, {})", v.as_str())),
            (Some(u), None) => out.push_str(&format!(" ({u})")),
            (None, Some(v)) => out.push_str(&format!(" ({})", v.as_str())),
            (None, None) => {}
        }
        if let Some(why) = &g.unavailable {
            out.push_str(&format!(": processes unreadable ({why})"));
            continue;
        }
        if g.processes.is_empty() {
            out.push_str(": no processes listed");
        } else {
            out.push(':');
        }
        for p in &g.processes {
            out.push_str(&format!("\n  pid {}", p.pid));
            if let Some(n) = &p.name {
                out.push_str(&format!(" {n}"));
            }
            out.push_str(&format!(" ({}", p.kind.as_str()));
            if let Some(b) = p.used_memory_bytes {
                out.push_str(&format!(", {}", gib(b)));
            }
            out.push(')');
            if let Some(m) = &p.mig_uuid {
                out.push_str(&format!(" on {m}"));
            }
            match crate::owners::label(None, &p.owner) {
                Some(who) => out.push_str(&format!(": {who}")),
                None => out.push_str(": owner unknown"),
            }
        }
        for m in &g.mig_devices {
            out.push_str(&format!(
                "\n  MIG {} {}",
                m.index,
                m.profile.as_deref().unwrap_or("unknown profile")
            ));
            if let (Some(gi), Some(ci)) = (m.gpu_instance_id, m.compute_instance_id) {
                out.push_str(&format!(" (GI {gi}, CI {ci})"));
            }
            out.push_str(&format!(
                ": {}",
                plural(m.process_count, "process", "processes")
            ));
            if !m.holders.is_empty() {
                let h: Vec<String> = m.holders.iter().map(PodRef::path).collect();
                out.push_str(&format!(", held by {}", h.join(", ")));
            }
        }
    }
    if !r.allocations.is_empty() {
        out.push_str("\nAllocated:");
        for a in &r.allocations {
            let h: Vec<String> = a.holders.iter().map(PodRef::path).collect();
            out.push_str(&format!("\n  {}", a.device_uuid));
            match (a.gpu_index, a.verdict) {
                (Some(i), Some(v)) => out.push_str(&format!(" (GPU {i}, {})", v.as_str())),
                (Some(i), None) => out.push_str(&format!(" (GPU {i})")),
                _ => out.push_str(" (not a GPU read on this node)"),
            }
            out.push_str(&format!(" to {}", h.join(", ")));
        }
    }
    let mock = r
        .attribution
        .iter()
        .any(|s| s.source == AttributionSource::MockFleet && s.state == SourceState::Ok);
    if mock {
        out.push_str(
            "\nOwners are the mock fleet's own simulated pods; neither the kubelet nor the host's /proc was consulted.",
        );
        return out;
    }
    for s in r
        .attribution
        .iter()
        .filter(|s| s.state == SourceState::NotConfigured)
    {
        if let Some(d) = &s.detail {
            out.push_str(&format!(
                "\n{} not configured: {d}",
                crate::owners::source_words(s.source)
            ));
        }
    }
    out
}

/// The MIG devices of `g` with their process counts and the holders the attribution found.
pub(crate) fn mig_devices_of(
    g: &GpuSnapshot,
    attribution: Option<&Attribution>,
) -> Vec<MigDeviceProcesses> {
    let entries: Vec<ProcessEntry> = g
        .processes
        .value()
        .into_iter()
        .flatten()
        .map(|p| ProcessEntry {
            pid: p.pid,
            name: None,
            kind: p.kind,
            used_memory_bytes: p.used_memory_bytes,
            mig_uuid: mig_uuid(g, p.gpu_instance, p.compute_instance),
            owner: Default::default(),
        })
        .collect();
    mig_devices(g, &entries, attribution)
}
