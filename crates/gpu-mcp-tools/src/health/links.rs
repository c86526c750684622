//! Interconnects: the PCIe link and its replays, NVLink links and their errors.

use gpu_mcp_model::output::Verdict;
use gpu_mcp_model::{GpuSnapshot, Reading};

use super::Assessment;

/// Rule `pcie_link`: the link should run at the width and generation it is capable of.
pub fn pcie_link(g: &GpuSnapshot, a: &mut Assessment) {
    let p = &g.pcie;
    let (Some(cw), Some(mw)) = (p.current_width.get(), p.max_width.get()) else {
        a.not_checked
            .push("pcie_link: link width not readable".to_owned());
        return;
    };
    let busy = g.utilization.get().map(|u| u.gpu_percent >= 10);
    if cw < mw {
        a.find(
            "pcie_link_width",
            Verdict::Degraded,
            format!("The PCIe link runs at x{cw} of x{mw}: host transfers are slower."),
            format!("x{cw}"),
            format!("x{mw} (maximum of the GPU and slot)"),
            "Reseat the GPU or riser at the next maintenance; check the slot and riser cables.",
        );
    }
    if let (Some(cg), Some(mg)) = (p.current_generation.get(), p.max_generation.get())
        && cg < mg
    {
        if busy == Some(false) {
            a.notes.push(format!(
                "PCIe link at Gen{cg} of Gen{mg} while idle (normal power saving)."
            ));
        } else {
            a.find(
                "pcie_link_generation",
                Verdict::Degraded,
                format!("The PCIe link runs at Gen{cg} of Gen{mg} under load."),
                format!("Gen{cg}"),
                format!("Gen{mg} (maximum of the GPU and slot)"),
                "Check the BIOS PCIe settings, the riser and the slot; reseat the GPU at the next maintenance.",
            );
        }
    }
}

/// Rule `pcie_replays`: link-level retransmissions since the driver loaded.
pub fn pcie_replays(g: &GpuSnapshot, a: &mut Assessment) {
    let Reading::Value(n) = g.pcie.replay_counter else {
        return;
    };
    if n >= 100 {
        a.find(
            "pcie_replays",
            Verdict::Warning,
            format!("{n} PCIe replays since the driver loaded: the link has signal-integrity errors."),
            n.to_string(),
            "100 since the driver loaded",
            "Watch whether the counter keeps rising; reseat the GPU or riser and check the slot if it does.",
        );
    }
}

/// Rule `nvlink`: links down, recovery, replay and CRC errors.
pub fn nvlink(g: &GpuSnapshot, a: &mut Assessment) {
    let links = match &g.nvlink {
        Reading::Value(l) => l,
        Reading::NotSupported => return,
        Reading::Error(e) => {
            a.not_checked.push(format!("nvlink: {e}"));
            return;
        }
    };
    let any_active = links.iter().any(|l| l.active);
    let down: Vec<String> = links
        .iter()
        .filter(|l| !l.active)
        .map(|l| l.link.to_string())
        .collect();
    if any_active && !down.is_empty() {
        a.find(
            "nvlink_down",
            Verdict::Degraded,
            format!(
                "NVLink link(s) {} are down while others are up: GPU-to-GPU bandwidth is reduced.",
                down.join(", ")
            ),
            format!("{} of {} links down", down.len(), links.len()),
            "all links up",
            "Drain the node and reset the GPUs; check the NVLink bridge or baseboard and the fabric manager; contact the vendor if the link stays down.",
        );
    }
    for l in links {
        let n = |r: &Reading<u64>| r.get().unwrap_or(0);
        let (replay, recovery, crc) = (
            n(&l.replay_errors),
            n(&l.recovery_errors),
            n(&l.crc_flit_errors) + n(&l.crc_data_errors),
        );
        if replay == 0 && recovery == 0 && crc == 0 {
            continue;
        }
        let severity = if recovery > 0 || crc >= 100 || replay >= 100 {
            Verdict::Degraded
        } else {
            Verdict::Warning
        };
        a.find(
            "nvlink_errors",
            severity,
            format!("NVLink link {} has errors since the driver loaded.", l.link),
            format!(
                "link {}: {crc} CRC, {replay} replay, {recovery} recovery errors",
                l.link
            ),
            "0 recovery, fewer than 100 CRC and 100 replay errors",
            "Compare two readings to see whether the counters are rising; if they are, drain the node, reset the GPUs and check the NVLink connection; contact the vendor if it persists.",
        );
    }
}
