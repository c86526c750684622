//! Reset and drain advice that can be followed: when a reason's action involves resetting the
//! GPU, say what blocks a reset on this GPU and when a reset cannot help.
//!
//! `nvidia-smi -r` (and NVML's reset) refuses while anything holds the GPU: processes with a
//! context on it, MIG instances, and NVML clients that keep it open (`nvidia-persistenced`,
//! DCGM's `nv-hostengine` and `dcgm-exporter`, monitoring agents). On NVSwitch systems the
//! GPU's NVLink peers and the fabric manager take part in the reset. A GPU that has fallen off
//! the bus (Xid 79, `GPU_IS_LOST`) does not answer a reset at all: only a reboot (or a power
//! cycle) brings it back.

use gpu_mcp_model::output::{Finding, Verdict};
use gpu_mcp_model::{GpuAccess, GpuSnapshot};

use super::ProcessLabels;

/// Whether the note for these reasons would list the GPU's processes (so naming their owners
/// is worth a look at the attribution sources).
pub(super) fn lists_processes(g: &GpuSnapshot, reasons: &[Finding], verdict: Verdict) -> bool {
    !off_the_bus(g, reasons)
        && g.processes.value().is_some_and(|p| !p.is_empty())
        && (reasons.iter().any(asks_for_reset) || verdict >= Verdict::Degraded)
}

/// Whether an action asks for a GPU reset.
fn asks_for_reset(f: &Finding) -> bool {
    let a = f.action.to_ascii_lowercase();
    ["reset the gpu", "reset it", "nvidia-smi -r", "then reset"]
        .iter()
        .any(|w| a.contains(w))
}

/// Whether the evidence says the GPU is off the bus, where a reset cannot help.
fn off_the_bus(g: &GpuSnapshot, reasons: &[Finding]) -> bool {
    g.access == GpuAccess::Lost
        || reasons
            .iter()
            .any(|f| f.check == "recent_xid" && f.summary.contains("Xid 79"))
}

/// The note that goes with a GPU's reasons: what must be off the GPU before the reset they ask
/// for, or why a reset will not help; `None` when no reason involves a reset and the GPU is
/// healthy enough to keep its work.
pub(super) fn reset_note(
    g: &GpuSnapshot,
    reasons: &[Finding],
    verdict: Verdict,
    labels: &ProcessLabels,
) -> Option<String> {
    if off_the_bus(g, reasons) {
        return Some(
            "A GPU reset cannot help: the GPU has fallen off the bus (Xid 79 or GPU_IS_LOST) and does not answer one. Drain the node and reboot it (a cold power cycle if the GPU is still missing); check the GPU's power, cooling and seating, and replace the board if it recurs."
                .to_owned(),
        );
    }
    let reset = reasons.iter().any(asks_for_reset);
    let procs = g.processes.value().filter(|p| !p.is_empty());
    if !(reset || verdict >= Verdict::Degraded && procs.is_some()) {
        return None;
    }
    let mut blockers = Vec::new();
    match g.processes.value() {
        Some(p) if !p.is_empty() => {
            let list: Vec<String> = p
                .iter()
                .take(16)
                .map(|p| {
                    let mut about = Vec::new();
                    if let Some(l) = labels.get(&p.pid) {
                        about.push(l.clone());
                    }
                    if let Some(b) = p.used_memory_bytes {
                        about.push(format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64));
                    }
                    if about.is_empty() {
                        format!("pid {}", p.pid)
                    } else {
                        format!("pid {} ({})", p.pid, about.join(", "))
                    }
                })
                .collect();
            blockers.push(format!(
                "stop or drain the {} process(es) on it ({})",
                p.len(),
                list.join(", ")
            ));
        }
        Some(_) => {}
        None => blockers
            .push("make sure no process uses it (nvidia-smi, or fuser -v /dev/nvidia*)".to_owned()),
    }
    if g.mig.enabled.get() == Some(true) {
        let n = g.mig.instances.value().map_or(0, Vec::len);
        blockers.push(format!(
            "stop the work on its {n} MIG instance(s) and destroy them (nvidia-smi mig -dci, then -dgi)"
        ));
    }
    blockers.push(
        "stop the NVML clients that keep it open: nvidia-persistenced, DCGM (nv-hostengine, dcgm-exporter) and other monitoring agents"
            .to_owned(),
    );
    if g.nvlink.value().is_some_and(|l| !l.is_empty()) {
        blockers.push(
            "on an NVSwitch system (HGX), also drain the jobs that span it and its NVLink peers, and keep nvidia-fabricmanager running so the links train again after the reset"
                .to_owned(),
        );
    }
    Some(format!(
        "Before resetting GPU {} (nvidia-smi -r -i {}): {}. If the reset fails, reboot the node.",
        g.index,
        g.index,
        blockers.join("; ")
    ))
}
