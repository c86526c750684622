//! Health rules: each a small function over one GPU's snapshot, documented in
//! `docs/health-rules.md`. Thresholds come from the device where NVML reports them.

use gpu_mcp_model::output::{Finding, GpuHealth, Verdict, XidGroup};
use gpu_mcp_model::{
    ClockEventReason, ComputeMode, GpuAccess, GpuSnapshot, Reading, RecoveryAction,
};

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

/// Rule `gpu_access`: the driver must be able to talk to the GPU.
pub fn gpu_access(g: &GpuSnapshot, a: &mut Assessment) {
    let detail = g.access_detail.clone().unwrap_or_default();
    match g.access {
        GpuAccess::Ok => {}
        GpuAccess::Lost => a.find(
            "gpu_access",
            Verdict::Critical,
            "The GPU is lost: the driver reports it has fallen off the bus.",
            detail,
            "the driver answers for the GPU",
            "Drain the node and reboot it; check the GPU's power and cooling; replace the board if it recurs.",
        ),
        GpuAccess::Unresponsive => a.find(
            "gpu_access",
            Verdict::Critical,
            "The driver does not answer for this GPU (hung driver or GPU).",
            detail,
            "the driver answers within the deadline",
            "Drain the node; look for Xid 119/120 (GSP) or 79 in the kernel log; a GPU reset or node reboot is usually needed.",
        ),
        GpuAccess::Error => a.find(
            "gpu_access",
            Verdict::Critical,
            "The GPU cannot be opened through the driver.",
            detail,
            "the GPU can be opened",
            "Check `nvidia-smi` on the node and the kernel log; reload the driver or reboot the node.",
        ),
    }
}

/// Rule `temperature`: against the device's own slowdown and shutdown thresholds.
pub fn temperature(g: &GpuSnapshot, a: &mut Assessment) {
    let Some(&t) = a.read(&g.temperature.gpu_c, "temperature") else {
        return;
    };
    let slowdown = g.temperature.slowdown_c.get();
    let shutdown = g.temperature.shutdown_c.get();
    let max_op = g.temperature.gpu_max_operating_c.get();
    if slowdown.is_none() && shutdown.is_none() && max_op.is_none() {
        a.not_checked
            .push("temperature: the device reports no thresholds".to_owned());
        return;
    }
    let cooling = "Check the node's cooling: fans, airflow, inlet temperature and blanking panels; drain the GPU if it keeps rising.";
    if let Some(sd) = shutdown
        && t + 2 >= sd
    {
        a.find(
            "temperature",
            Verdict::Critical,
            format!("GPU temperature {t} °C is within 2 °C of the shutdown threshold."),
            format!("{t} °C"),
            format!("shutdown {sd} °C − 2 °C (from the device)"),
            format!("Drain the GPU now to avoid a thermal shutdown. {cooling}"),
        );
    } else if let Some(sl) = slowdown
        && t >= sl
    {
        a.find(
            "temperature",
            Verdict::Degraded,
            format!("GPU temperature {t} °C is at or above the slowdown threshold: clocks are being reduced."),
            format!("{t} °C"),
            format!("slowdown {sl} °C (from the device)"),
            cooling,
        );
    } else if let Some(mo) = max_op
        && t > mo
    {
        a.find(
            "temperature",
            Verdict::Warning,
            format!("GPU temperature {t} °C is above the maximum operating temperature."),
            format!("{t} °C"),
            format!("max operating {mo} °C (from the device)"),
            cooling,
        );
    }
}

/// Rule `memory_temperature`: HBM temperature against the device's maximum.
pub fn memory_temperature(g: &GpuSnapshot, a: &mut Assessment) {
    let (Reading::Value(t), Reading::Value(max)) = (
        &g.temperature.memory_c,
        &g.temperature.memory_max_operating_c,
    ) else {
        return;
    };
    if t >= max {
        a.find(
            "memory_temperature",
            Verdict::Warning,
            format!("Memory temperature {t} °C is at or above its maximum operating temperature."),
            format!("{t} °C"),
            format!("memory max operating {max} °C (from the device)"),
            "Check the node's cooling; sustained memory overheating causes slowdown and memory errors.",
        );
    }
}

/// Rule `clock_events`: hardware slowdown, thermal slowdown and power brake.
pub fn clock_events(g: &GpuSnapshot, a: &mut Assessment) {
    let Some(reasons) = a.read(&g.clock_event_reasons, "clock_events") else {
        return;
    };
    let hw: Vec<ClockEventReason> = reasons
        .iter()
        .copied()
        .filter(|r| r.is_hardware_problem())
        .collect();
    let soft: Vec<&str> = reasons
        .iter()
        .filter(|r| !r.is_hardware_problem() && **r != ClockEventReason::GpuIdle)
        .map(|r| r.as_str())
        .collect();
    if !soft.is_empty() {
        a.notes.push(format!(
            "Clocks limited by {} (normal under load).",
            soft.join(", ")
        ));
    }
    if hw.is_empty() {
        return;
    }
    let names: Vec<&str> = hw.iter().map(|r| r.as_str()).collect();
    let action = if hw.contains(&ClockEventReason::HwPowerBrakeSlowdown) {
        "The power-brake signal is asserted by the system (power supply or chassis): check the node's power supplies and their redundancy, and the BMC event log."
    } else if hw.contains(&ClockEventReason::HwThermalSlowdown) {
        "The GPU is throttling for temperature: check fans, airflow and inlet temperature."
    } else {
        "Hardware slowdown (thermal or power brake): check the node's cooling and power supplies and the BMC event log."
    };
    let clocks = match (g.clocks.sm_mhz.get(), g.clocks.max_sm_mhz.get()) {
        (Some(c), Some(m)) => format!(" (SM clock {c} of {m} MHz)"),
        _ => String::new(),
    };
    a.find(
        "clock_events",
        Verdict::Degraded,
        format!(
            "Hardware is slowing the clocks down: {}{clocks}.",
            names.join(", ")
        ),
        names.join(", "),
        "no hardware slowdown reason active",
        action,
    );
}

/// Rule `power`: draw above the enforced limit, or a limit well below the board default.
pub fn power(g: &GpuSnapshot, a: &mut Assessment) {
    let limit = g
        .power
        .enforced_limit_w
        .get()
        .or_else(|| g.power.limit_w.get());
    if let (Some(draw), Some(limit)) = (g.power.draw_w.get(), limit)
        && draw > limit * 1.05
    {
        a.find(
            "power",
            Verdict::Warning,
            format!("Power draw {draw:.0} W is above the enforced limit."),
            format!("{draw:.0} W"),
            format!("enforced limit {limit:.0} W + 5% (from the device)"),
            "Check the power-limit configuration and the power-monitoring circuit; contact the vendor if it persists.",
        );
    }
    if let (Some(limit), Some(default)) = (limit, g.power.default_limit_w.get())
        && limit < default * 0.8
    {
        a.find(
            "power_limit",
            Verdict::Warning,
            format!("The power limit {limit:.0} W is well below the board default {default:.0} W: workloads run slower."),
            format!("{limit:.0} W"),
            format!("80% of the default limit {default:.0} W (from the device)"),
            "Reset the power limit (nvidia-smi -pl) unless the cap is intentional, or check the system's power capping.",
        );
    }
}

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
    let remaps = matches!(g.row_remapping, Reading::Value(_));
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

/// Rule `persistence_mode`: the driver should stay loaded between jobs.
pub fn persistence_mode(g: &GpuSnapshot, a: &mut Assessment) {
    if let Reading::Value(false) = g.persistence_mode {
        a.find(
            "persistence_mode",
            Verdict::Warning,
            "Persistence mode is off: the driver tears the GPU down between jobs, making start-up slow and monitoring calls expensive.",
            "off",
            "on",
            "Run nvidia-persistenced on the node (the GPU operator does this by default).",
        );
    }
}

/// Rule `recovery_action`: the driver's own recommendation.
pub fn recovery_action(g: &GpuSnapshot, a: &mut Assessment) {
    let Reading::Value(r) = g.recovery_action else {
        return;
    };
    let (severity, what, action) = match r {
        RecoveryAction::None => return,
        RecoveryAction::GpuReset => (
            Verdict::Critical,
            "gpu_reset",
            "Stop the GPU's workloads and reset it (nvidia-smi -r).",
        ),
        RecoveryAction::NodeReboot => (
            Verdict::Critical,
            "node_reboot",
            "Drain and reboot the node.",
        ),
        RecoveryAction::DrainAndReset => (
            Verdict::Critical,
            "drain_and_reset",
            "Drain the GPU, then reset it (nvidia-smi -r).",
        ),
        RecoveryAction::DrainP2p => (
            Verdict::Warning,
            "drain_p2p",
            "Drain peer-to-peer traffic to this GPU.",
        ),
    };
    a.find(
        "recovery_action",
        severity,
        format!("The driver recommends a recovery action: {what}."),
        what,
        "none",
        action,
    );
}

/// Rule `mig`: MIG mode change pending, and MIG context.
pub fn mig(g: &GpuSnapshot, a: &mut Assessment) {
    let (Reading::Value(cur), Reading::Value(pend)) = (&g.mig.enabled, &g.mig.pending_enabled)
    else {
        return;
    };
    if cur != pend {
        a.find(
            "mig_pending",
            Verdict::Warning,
            format!(
                "MIG mode changes to {} at the next GPU reset.",
                if *pend { "enabled" } else { "disabled" }
            ),
            format!("current {cur}, pending {pend}"),
            "no change pending",
            "Drain and reset the GPU to apply the MIG mode, or revert the change.",
        );
    }
    if *cur {
        let n = g.mig.instances.value().map_or(0, Vec::len);
        a.notes.push(format!(
            "MIG enabled with {n} instance(s); utilisation and row remapping are not readable for the whole GPU while instances exist."
        ));
    }
}

/// Rule `compute_mode`: a prohibited GPU accepts no work.
pub fn compute_mode(g: &GpuSnapshot, a: &mut Assessment) {
    if let Reading::Value(ComputeMode::Prohibited) = g.compute_mode {
        a.find(
            "compute_mode",
            Verdict::Warning,
            "Compute mode is Prohibited: no CUDA work can run on this GPU.",
            "prohibited",
            "default or exclusive_process",
            "Set the compute mode back (nvidia-smi -c 0) unless the GPU was fenced on purpose.",
        );
    }
}

/// Rule `recent_xid`: Xid events of this GPU in the window, one finding per code.
pub fn recent_xid(groups: &[&XidGroup], since: &str, a: &mut Assessment) {
    for grp in groups {
        let severity = Verdict::from(grp.severity);
        let when = grp
            .last_seen
            .as_deref()
            .map_or(String::new(), |t| format!(", last at {t}"));
        if severity == Verdict::Healthy {
            a.notes.push(format!(
                "Xid {} ({}) seen {} time(s){when}: informational.",
                grp.xid, grp.name, grp.count
            ));
            continue;
        }
        let summary = if grp.application_error {
            format!(
                "Xid {} ({}) seen {} time(s): usually a workload error, not a hardware fault.",
                grp.xid, grp.name, grp.count
            )
        } else if !grp.known {
            format!(
                "Xid {} (not in the catalog) seen {} time(s).",
                grp.xid, grp.count
            )
        } else {
            format!("Xid {} ({}) seen {} time(s).", grp.xid, grp.name, grp.count)
        };
        a.find(
            "recent_xid",
            severity,
            summary,
            format!("Xid {} ×{}{when}", grp.xid, grp.count),
            format!("{} Xid since {since}", grp.severity),
            grp.action.clone(),
        );
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
    ("persistence_mode", persistence_mode),
    ("recovery_action", recovery_action),
    ("mig", mig),
    ("compute_mode", compute_mode),
];

/// Runs every rule on one GPU plus its recent Xid groups.
pub fn assess_gpu(g: &GpuSnapshot, xids: &[&XidGroup], since: &str) -> GpuHealth {
    let mut a = Assessment::default();
    if g.access == GpuAccess::Ok {
        for (_, rule) in RULES {
            rule(g, &mut a);
        }
    } else {
        // Nothing else is readable; every other check would only repeat the access failure.
        gpu_access(g, &mut a);
    }
    recent_xid(xids, since, &mut a);
    if a.verdict() >= Verdict::Degraded
        && let Some(procs) = g.processes.value()
        && !procs.is_empty()
    {
        let list: Vec<String> = procs
            .iter()
            .take(16)
            .map(|p| match p.used_memory_bytes {
                Some(b) => format!("pid {} ({:.1} GiB)", p.pid, b as f64 / (1u64 << 30) as f64),
                None => format!("pid {}", p.pid),
            })
            .collect();
        a.notes.push(format!(
            "{} process(es) on this GPU must be stopped or drained before a reset: {}.",
            procs.len(),
            list.join(", ")
        ));
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
    }
}
