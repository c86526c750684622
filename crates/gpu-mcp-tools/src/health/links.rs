//! Interconnects: the PCIe link and its replays, NVLink links and their errors.

use gpu_mcp_model::output::Verdict;
use gpu_mcp_model::{GpuSnapshot, NvLink, Reading};

use super::Assessment;

/// Rule `pcie_link`: the link should run at the width and generation it is capable of.
pub fn pcie_link(g: &GpuSnapshot, a: &mut Assessment) {
    let p = &g.pcie;
    let (Some(cw), Some(mw)) = (p.current_width.get(), p.max_width.get()) else {
        a.not_checked
            .push("pcie_link: link width not readable".to_owned());
        return;
    };
    let busy = is_busy(g);
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
        } else if busy.is_none() && is_idle_pstate(g) {
            a.notes.push(format!(
                "PCIe link at Gen{cg} of Gen{mg} in an idle performance state ({}; utilisation is not readable, as in MIG mode): normal power saving.",
                g.performance_state.value().map_or("?", String::as_str)
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

/// Whether the GPU is busy (utilisation ≥ 10 %); `None` when utilisation is not readable.
fn is_busy(g: &GpuSnapshot) -> Option<bool> {
    g.utilization.get().map(|u| u.gpu_percent >= 10)
}

/// A performance state of P8 or deeper: the GPU is idle and may downshift its link.
fn is_idle_pstate(g: &GpuSnapshot) -> bool {
    g.performance_state
        .value()
        .and_then(|p| p.strip_prefix('P'))
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| (8..=15).contains(&n))
}

/// Rule `pcie_replays`: link-level retransmissions, judged by their increase since the
/// backend's previous reading; the total since the driver loaded is context.
pub fn pcie_replays(g: &GpuSnapshot, a: &mut Assessment) {
    let Reading::Value(total) = g.pcie.replay_counter else {
        return;
    };
    let new = g.since_previous.as_ref().and_then(|c| c.pcie_replays);
    match new {
        Some(n) if n > 0 => {
            let minutes = g
                .since_previous
                .as_ref()
                .map_or(1.0, |c| (c.interval_ms as f64 / 60_000.0).max(1.0 / 60.0));
            let rate = n as f64 / minutes;
            let severity = if rate >= PCIE_REPLAYS_PER_MINUTE {
                Verdict::Degraded
            } else {
                Verdict::Warning
            };
            a.find(
                "pcie_replays",
                severity,
                format!(
                    "{n} PCIe replays since the previous reading ({total} since the driver loaded): the link is retransmitting now."
                ),
                format!("{n} new ({rate:.1}/min), {total} total"),
                format!("0 new; degraded at {PCIE_REPLAYS_PER_MINUTE}/min"),
                "Check the slot, riser and cables; reseat the GPU at the next drain; contact the vendor if the counter keeps rising.",
            );
        }
        Some(_) => {
            if total > 0 {
                a.notes.push(format!(
                    "{total} PCIe replays since the driver loaded, none since the previous reading."
                ));
            }
        }
        None => {
            if total > 0 {
                a.notes.push(format!(
                    "{total} PCIe replays since the driver loaded; whether they are still happening shows at the next reading."
                ));
            }
        }
    }
}

/// New PCIe replays per minute at which the link counts as degraded (our choice, in line with
/// DCGM's PCIe replay-rate watch).
const PCIE_REPLAYS_PER_MINUTE: f64 = 8.0;

/// Rule `nvlink`: wired links down (disabled ones are not judged), all links down, and link
/// errors judged by their increase since the previous reading.
pub fn nvlink(g: &GpuSnapshot, a: &mut Assessment) {
    let links = match &g.nvlink {
        Reading::Value(l) => l,
        Reading::NotSupported => return,
        Reading::Error(e) => {
            a.not_checked.push(format!("nvlink: {e}"));
            return;
        }
    };
    let judged: Vec<&NvLink> = links.iter().filter(|l| !l.disabled).collect();
    let disabled: Vec<String> = links
        .iter()
        .filter(|l| l.disabled)
        .map(|l| l.link.to_string())
        .collect();
    if !disabled.is_empty() {
        a.notes.push(format!(
            "NVLink link(s) {} are disabled on purpose (not counted among the enabled links).",
            disabled.join(", ")
        ));
    }
    let down: Vec<String> = judged
        .iter()
        .filter(|l| !l.active)
        .map(|l| l.link.to_string())
        .collect();
    if !judged.is_empty() && down.len() == judged.len() {
        a.find(
            "nvlink_down",
            Verdict::Degraded,
            format!(
                "All {} NVLink links are down: no GPU-to-GPU NVLink traffic is possible (on NVSwitch systems CUDA cannot start until the fabric manager has trained the links).",
                judged.len()
            ),
            format!("{} of {} links down", down.len(), judged.len()),
            "links up",
            "Check that nvidia-fabricmanager is running and its log (NVSwitch systems), then the NVLink bridge or baseboard; reset the GPUs or reboot the node if the links do not train.",
        );
    } else if !down.is_empty() {
        a.find(
            "nvlink_down",
            Verdict::Degraded,
            format!(
                "NVLink link(s) {} are down while others are up: GPU-to-GPU bandwidth is reduced.",
                down.join(", ")
            ),
            format!("{} of {} links down", down.len(), judged.len()),
            "all links up",
            "Drain the node and reset the GPUs; check the NVLink bridge or baseboard and the fabric manager; contact the vendor if the link stays down.",
        );
    }
    let unreadable = judged
        .iter()
        .filter(|l| {
            l.replay_errors.value().is_none()
                && l.recovery_errors.value().is_none()
                && l.crc_flit_errors.value().is_none()
                && l.crc_data_errors.value().is_none()
        })
        .count();
    if unreadable > 0 {
        a.not_checked.push(format!(
            "nvlink_errors: the driver does not report NVLink error counters for {unreadable} link(s) (not supported by this GPU or driver, as on Blackwell); check them with nvidia-smi nvlink -e or DCGM"
        ));
    }
    let changes = g.since_previous.as_ref();
    let mut lifetime = Vec::new();
    for l in &judged {
        let n = |r: &Reading<u64>| r.get().unwrap_or(0);
        let (replay, recovery, crc) = (
            n(&l.replay_errors),
            n(&l.recovery_errors),
            n(&l.crc_flit_errors) + n(&l.crc_data_errors),
        );
        let new = changes.and_then(|c| c.nvlink.iter().find(|x| x.link == l.link));
        let (nr, nrec, ncrc) = new.map_or((0, 0, 0), |x| {
            (
                x.replay.unwrap_or(0),
                x.recovery.unwrap_or(0),
                x.crc.unwrap_or(0),
            )
        });
        if nr == 0 && nrec == 0 && ncrc == 0 {
            if replay + recovery + crc > 0 {
                lifetime.push(format!(
                    "link {}: {crc} CRC, {replay} replay, {recovery} recovery",
                    l.link
                ));
            }
            continue;
        }
        let severity = if nrec > 0 || ncrc >= 100 || nr >= 100 {
            Verdict::Degraded
        } else {
            Verdict::Warning
        };
        a.find(
            "nvlink_errors",
            severity,
            format!(
                "NVLink link {} is erroring now: new errors since the previous reading.",
                l.link
            ),
            format!(
                "link {}: {ncrc} CRC, {nr} replay, {nrec} recovery new ({crc} CRC, {replay} replay, {recovery} recovery since the driver loaded)",
                l.link
            ),
            "0 new recovery errors, fewer than 100 new CRC and 100 new replay errors",
            "Drain the node, reset the GPUs and check the NVLink connection (bridge, baseboard, NVSwitch trays); contact the vendor if it persists.",
        );
    }
    if !lifetime.is_empty() {
        let when = if changes.is_some() {
            "none since the previous reading"
        } else {
            "whether they are still rising shows at the next reading"
        };
        a.notes.push(format!(
            "NVLink errors since the driver loaded ({when}): {}.",
            lifetime.join("; ")
        ));
    }
}
