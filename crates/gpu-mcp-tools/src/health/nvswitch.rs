//! The node's NVSwitch fabric, from its SXid errors.

use gpu_mcp_model::GpuSnapshot;
use gpu_mcp_model::output::{Finding, GpuHealth, NvSwitchErrors, SxidGroup, Verdict};

use crate::nvswitch::{link_list, switch_name};

/// Non-fatal SXids of one code on one NVSwitch in the window from which they count as
/// repeating.
pub const REPEATED_NON_FATAL_SXIDS: u32 = 2;

/// Rule `nvswitch_sxid` (node level): a fatal SXid in the window makes the node's NVSwitch
/// fabric critical; the same non-fatal SXid repeating on one NVSwitch is a warning; a single
/// non-fatal one is no finding.
pub fn nvswitch_sxid(n: &NvSwitchErrors, since: &str) -> Vec<Finding> {
    n.groups.iter().filter_map(|g| finding(g, since)).collect()
}

/// Rule `nvswitch_sxid` in an answer about one GPU: a finding about an NVSwitch that one of
/// the GPU's NVLinks goes to joins the GPU's reasons and verdict; the others are returned, to
/// stand beside it as node findings, each saying whether the GPU's links go through that switch.
pub fn nvswitch_sxid_for_gpu(
    n: &NvSwitchErrors,
    since: &str,
    gpu: &GpuSnapshot,
    h: &mut GpuHealth,
) -> Vec<Finding> {
    let mut node = Vec::new();
    for g in &n.groups {
        let Some(mut f) = finding(g, since) else {
            continue;
        };
        match behind_switch(gpu, g) {
            Some(true) => {
                f.summary
                    .push_str(&format!(" GPU {}'s NVLinks go through it.", gpu.index));
                h.verdict = h.verdict.max(f.severity);
                h.reasons.push(f);
            }
            Some(false) => {
                f.summary.push_str(&format!(
                    " None of GPU {}'s NVLinks goes through it.",
                    gpu.index
                ));
                node.push(f);
            }
            None => {
                f.summary.push_str(&format!(
                    " Whether GPU {}'s NVLinks go through it is not known.",
                    gpu.index
                ));
                node.push(f);
            }
        }
    }
    h.reasons.sort_by_key(|f| std::cmp::Reverse(f.severity));
    node
}

/// Whether one of the GPU's NVLinks ends at the NVSwitch of `g`; `None` when that cannot be
/// told (the SXid line names no PCI address, the links cannot be read, or a link's far end is
/// unknown and none of the known ones is that switch).
fn behind_switch(gpu: &GpuSnapshot, g: &SxidGroup) -> Option<bool> {
    let pci = g.pci_bus_id.as_deref()?;
    let links = gpu.nvlink.value()?;
    let mut unknown = false;
    for l in links.iter().filter(|l| !l.disabled) {
        match l.remote.value().and_then(|r| r.pci_bus_id.as_deref()) {
            Some(p) if p == pci => return Some(true),
            Some(_) => {}
            None => unknown = true,
        }
    }
    (!unknown).then_some(false)
}

/// The finding of one SXid group, when it is one.
fn finding(g: &SxidGroup, since: &str) -> Option<Finding> {
    let links = link_list(g).map_or(String::new(), |l| format!(" on link {l}"));
    let when = g
        .last_seen
        .as_deref()
        .map_or(String::new(), |t| format!(", last at {t}"));
    let who = switch_name(g);
    if g.fatal {
        Some(Finding {
            check: "nvswitch_sxid".to_owned(),
            severity: Verdict::Critical,
            summary: format!(
                "{} SXid {} ({}) on NVSwitch {who}{links}: the node's NVSwitch fabric needs a reset, and the GPUs behind it lose NVLink traffic.",
                if g.always_fatal {
                    "Always-fatal"
                } else {
                    "Fatal"
                },
                g.sxid,
                g.name
            ),
            observed: format!("SXid {} ×{} fatal{when}", g.sxid, g.count),
            threshold: format!("any fatal SXid since {since}"),
            action: g.action.clone(),
        })
    } else if g.count >= REPEATED_NON_FATAL_SXIDS {
        Some(Finding {
            check: "nvswitch_sxid".to_owned(),
            severity: Verdict::Warning,
            summary: format!(
                "Non-fatal SXid {} ({}) repeated {} times on NVSwitch {who}{links}.",
                g.sxid, g.name, g.count
            ),
            observed: format!("SXid {} ×{} non-fatal{when}", g.sxid, g.count),
            threshold: format!(
                "{REPEATED_NON_FATAL_SXIDS} non-fatal SXids of one code on one NVSwitch since {since}"
            ),
            action: g.action.clone(),
        })
    } else {
        None
    }
}
