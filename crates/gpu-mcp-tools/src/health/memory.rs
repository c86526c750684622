//! Memory health: ECC mode and uncorrectable errors, row remapping, retired pages.

use gpu_mcp_model::output::Verdict;
use gpu_mcp_model::{GpuSnapshot, Reading};

use super::Assessment;

/// Rule `ecc_mode`: ECC should be on, and no mode change pending.
pub fn ecc_mode(g: &GpuSnapshot, a: &mut Assessment) {
    let Reading::Value(enabled) = &g.ecc.enabled else {
        return;
    };
    if !enabled {
        a.find(
            "ecc_mode",
            Verdict::Warning,
            "ECC is disabled: memory errors go undetected.",
            "disabled",
            "enabled",
            "Enable ECC (nvidia-smi -e 1) and reset the GPU, unless disabled on purpose.",
        );
    }
    if let Reading::Value(pending) = &g.ecc.pending_enabled
        && pending != enabled
    {
        a.notes.push(format!(
            "ECC mode changes to {} at the next GPU reset or reboot.",
            if *pending { "enabled" } else { "disabled" }
        ));
    }
}

/// Rule `ecc_uncorrectable`: uncorrectable errors since the driver loaded.
pub fn ecc_uncorrectable(g: &GpuSnapshot, a: &mut Assessment) {
    let Some(vol) = a.read(&g.ecc.volatile, "ecc_uncorrectable").copied() else {
        return;
    };
    if let Reading::Value(agg) = &g.ecc.aggregate
        && agg.uncorrected > 0
        && vol.uncorrected == 0
    {
        a.notes.push(format!(
            "{} uncorrectable ECC error(s) over the board's lifetime, none since the driver loaded.",
            agg.uncorrected
        ));
    }
    if vol.uncorrected == 0 {
        return;
    }
    // Ampere and later contain the error and remap the row at the next reset; older GPUs retire
    // the page at the next driver reload and an uncorrectable error takes the GPU down.
    // Row remapping cannot be read while MIG instances exist, but a GPU with MIG is an Ampere
    // or later one, which remaps.
    let remaps = matches!(g.row_remapping, Reading::Value(_))
        || g.mig.enabled.get() == Some(true)
        || remapping_architecture(g);
    let (severity, action) = if remaps {
        (
            Verdict::Degraded,
            "Restart the affected workload; drain and reset the GPU at the next opportunity so the row remap takes effect. Replace the board if errors recur.",
        )
    } else {
        (
            Verdict::Critical,
            "Drain the GPU and reload the driver or reset it so the page is retired; replace the board if errors recur.",
        )
    };
    a.find(
        "ecc_uncorrectable",
        severity,
        format!(
            "{} uncorrectable ECC error(s) since the driver loaded.",
            vol.uncorrected
        ),
        format!("{} volatile uncorrected", vol.uncorrected),
        "0",
        action,
    );
}

/// Rule `row_remapping`: failure (RMA), pending remap, remap capacity.
pub fn row_remapping(g: &GpuSnapshot, a: &mut Assessment) {
    let rr = match &g.row_remapping {
        Reading::Value(rr) => *rr,
        Reading::NotSupported => return,
        Reading::Error(e) => {
            a.not_checked.push(format!("row_remapping: {e}"));
            return;
        }
    };
    if rr.failed {
        a.find(
            "row_remap_failure",
            Verdict::Critical,
            "A row remap failed: the memory has no spare rows left where it needs them (the RMA criterion).",
            format!("failed, {} uncorrectable remaps", rr.uncorrectable),
            "no failure",
            "Drain the GPU, run the field diagnostic (dcgmi diag -r 3 or NVIDIA fieldiag) and replace the board.",
        );
    }
    if rr.pending {
        a.find(
            "row_remap_pending",
            Verdict::Warning,
            "A row remap is pending: it takes effect at the next GPU reset.",
            "pending",
            "no remap pending",
            "Drain the GPU and reset it (nvidia-smi -r) at the next opportunity; until then error containment protects running work.",
        );
    }
    if rr.uncorrectable >= 512 {
        a.find(
            "row_remap_capacity",
            Verdict::Warning,
            format!(
                "{} rows remapped for uncorrectable errors.",
                rr.uncorrectable
            ),
            rr.uncorrectable.to_string(),
            "512",
            "Plan a board replacement: the remap capacity is exhausted.",
        );
    }
}

/// Rule `retired_pages`: dynamic page retirement (pre-Ampere GPUs).
pub fn retired_pages(g: &GpuSnapshot, a: &mut Assessment) {
    let rp = match &g.retired_pages {
        Reading::Value(rp) => *rp,
        Reading::NotSupported => return,
        Reading::Error(e) => {
            a.not_checked.push(format!("retired_pages: {e}"));
            return;
        }
    };
    let total = rp.single_bit_ecc + rp.double_bit_ecc;
    if total >= 63 {
        a.find(
            "retired_pages",
            Verdict::Critical,
            format!("{total} memory pages retired: the retirement limit is reached."),
            format!(
                "{} single-bit + {} double-bit",
                rp.single_bit_ecc, rp.double_bit_ecc
            ),
            "63",
            "Drain the GPU and replace the board.",
        );
    }
    if rp.pending {
        a.find(
            "retired_pages_pending",
            Verdict::Warning,
            "A page retirement is pending: it takes effect when the driver reloads.",
            "pending",
            "no retirement pending",
            "Drain the GPU and reload the driver (or reboot the node) at the next opportunity.",
        );
    }
}

/// Architectures with row remapping and error containment (Ampere and later).
fn remapping_architecture(g: &GpuSnapshot) -> bool {
    g.architecture.value().is_some_and(|a| {
        let a = a.to_ascii_lowercase();
        ["ampere", "hopper", "ada", "blackwell", "rubin"]
            .iter()
            .any(|n| a.contains(n))
    })
}
