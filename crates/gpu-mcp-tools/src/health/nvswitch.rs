//! The node's NVSwitch fabric, from its SXid errors.

use gpu_mcp_model::output::{Finding, NvSwitchErrors, Verdict};

use crate::nvswitch::{link_list, switch_name};

/// Non-fatal SXids of one code on one NVSwitch in the window from which they count as
/// repeating.
pub const REPEATED_NON_FATAL_SXIDS: u32 = 2;

/// Rule `nvswitch_sxid` (node level): a fatal SXid in the window makes the node's NVSwitch
/// fabric critical; the same non-fatal SXid repeating on one NVSwitch is a warning; a single
/// non-fatal one is no finding.
pub fn nvswitch_sxid(n: &NvSwitchErrors, since: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for g in &n.groups {
        let links = link_list(g).map_or(String::new(), |l| format!(" on link {l}"));
        let when = g
            .last_seen
            .as_deref()
            .map_or(String::new(), |t| format!(", last at {t}"));
        let who = switch_name(g);
        if g.fatal {
            out.push(Finding {
                check: "nvswitch_sxid".to_owned(),
                severity: Verdict::Critical,
                summary: format!(
                    "Fatal SXid {} ({}) on NVSwitch {who}{links}: the node's NVSwitch fabric needs a reset, and the GPUs behind it lose NVLink traffic.",
                    g.sxid, g.name
                ),
                observed: format!("SXid {} ×{} fatal{when}", g.sxid, g.count),
                threshold: format!("any fatal SXid since {since}"),
                action: g.action.clone(),
            });
        } else if g.count >= REPEATED_NON_FATAL_SXIDS {
            out.push(Finding {
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
            });
        }
    }
    out
}
