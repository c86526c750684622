//! Health rules: each a small function over one GPU's snapshot, documented in
//! `docs/health-rules.md`. Thresholds come from the device where NVML reports them.
//!
//! The rules are grouped by what they judge: `access` (whether the GPU answers and the driver's
//! state), `thermal` (heat and power), `memory` (ECC, row remapping, retired pages), `links`
//! (PCIe and NVLink), `fabric` (the NVSwitch fabric registration), `xid` (recent Xid errors) and,
//! for the node rather than one GPU, `nvswitch` (recent NVSwitch SXid errors).

mod access;
mod fabric;
mod links;
mod memory;
mod nvswitch;
mod reset;
mod thermal;
mod xid;

pub use access::{compute_mode, gpu_access, mig, persistence_mode, recovery_action, unverified};
pub use fabric::fabric;
pub use links::{nvlink, pcie_link, pcie_replays};
pub use memory::{ecc_mode, ecc_uncorrectable, retired_pages, row_remapping};
pub use nvswitch::{REPEATED_NON_FATAL_SXIDS, nvswitch_sxid, nvswitch_sxid_for_gpu};
pub use thermal::{clock_events, memory_temperature, power, temperature};
pub use xid::{recent_xid, xid_unattributed};

use std::collections::BTreeMap;

use gpu_mcp_model::output::{Finding, GpuHealth, Verdict, XidGroup};
use gpu_mcp_model::{GpuAccess, GpuSnapshot, Reading};

/// A short description of a GPU's processes by pid (name and owning pod), for the sentences
/// that name them; empty when nothing is known.
pub type ProcessLabels = BTreeMap<u32, String>;

/// What the rules found for one GPU.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    /// Reasons behind the verdict.
    pub reasons: Vec<Finding>,
    /// Context that does not change the verdict.
    pub notes: Vec<String>,
    /// Checks that could not run.
    pub not_checked: Vec<String>,
}

impl Assessment {
    fn find(
        &mut self,
        check: &str,
        severity: Verdict,
        summary: impl Into<String>,
        observed: impl Into<String>,
        threshold: impl Into<String>,
        action: impl Into<String>,
    ) {
        self.reasons.push(Finding {
            check: check.to_owned(),
            severity,
            summary: summary.into(),
            observed: observed.into(),
            threshold: threshold.into(),
            action: action.into(),
        });
    }

    /// The worst severity, `healthy` when nothing was found.
    pub fn verdict(&self) -> Verdict {
        self.reasons
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Verdict::Healthy)
    }

    /// The value of a reading, noting why a check was skipped otherwise.
    fn read<'a, T>(&mut self, r: &'a Reading<T>, what: &str) -> Option<&'a T> {
        match r {
            Reading::Value(v) => Some(v),
            Reading::NotSupported => {
                self.not_checked
                    .push(format!("{what}: not supported on this GPU"));
                None
            }
            Reading::Error(e) => {
                self.not_checked.push(format!("{what}: {e}"));
                None
            }
        }
    }
}

/// A per-GPU rule: adds findings, notes and skipped checks to the assessment.
pub type Rule = fn(&GpuSnapshot, &mut Assessment);

/// Every per-GPU rule, in the order they run.
pub const RULES: &[(&str, Rule)] = &[
    ("gpu_access", gpu_access),
    ("temperature", temperature),
    ("memory_temperature", memory_temperature),
    ("clock_events", clock_events),
    ("power", power),
    ("ecc_mode", ecc_mode),
    ("ecc_uncorrectable", ecc_uncorrectable),
    ("row_remapping", row_remapping),
    ("retired_pages", retired_pages),
    ("pcie_link", pcie_link),
    ("pcie_replays", pcie_replays),
    ("nvlink", nvlink),
    ("fabric", fabric),
    ("persistence_mode", persistence_mode),
    ("recovery_action", recovery_action),
    ("mig", mig),
    ("compute_mode", compute_mode),
];

/// Runs every rule on one GPU plus its recent Xid groups.
pub fn assess_gpu(g: &GpuSnapshot, xids: &[&XidGroup], since: &str) -> GpuHealth {
    assess_gpu_labelled(g, xids, since, &ProcessLabels::new())
}

/// Whether [`assess_gpu`]'s advice for this result names the GPU's processes, so that their
/// owners are worth looking up for [`assess_gpu_labelled`].
pub fn names_processes(g: &GpuSnapshot, h: &GpuHealth) -> bool {
    reset::lists_processes(g, &h.reasons, h.verdict)
}

/// [`assess_gpu`], naming each process in the advice with its label (name and pod).
pub fn assess_gpu_labelled(
    g: &GpuSnapshot,
    xids: &[&XidGroup],
    since: &str,
    labels: &ProcessLabels,
) -> GpuHealth {
    let mut a = Assessment::default();
    match g.access {
        // The handle was opened: every reading is worth judging, next to the GPU-wide state one
        // of them reported.
        GpuAccess::Ok
        | GpuAccess::ResetRequired
        | GpuAccess::InsufficientPower
        | GpuAccess::IrqIssue => {
            for (_, rule) in RULES {
                rule(g, &mut a);
            }
            unverified(g, &mut a);
        }
        // Nothing else is readable; every other check would only repeat the access failure.
        GpuAccess::Lost | GpuAccess::Unresponsive | GpuAccess::Error | GpuAccess::NoPermission => {
            gpu_access(g, &mut a);
        }
    }
    recent_xid(xids, since, &mut a);
    if let Some(note) = reset::reset_note(g, &a.reasons, a.verdict(), labels) {
        a.notes.push(note);
    }
    a.reasons.sort_by_key(|f| std::cmp::Reverse(f.severity));
    GpuHealth {
        index: g.index,
        uuid: g.uuid.value().cloned(),
        name: g.name.value().cloned(),
        pci_bus_id: g.pci_bus_id.value().cloned(),
        verdict: a.verdict(),
        reasons: a.reasons,
        notes: a.notes,
        not_checked: a.not_checked,
        mig_devices: Vec::new(),
    }
}
