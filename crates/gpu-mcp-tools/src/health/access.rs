//! Access and driver state: whether the GPU answers, persistence, the driver's recovery action,
//! MIG and compute mode.

use gpu_mcp_model::output::Verdict;
use gpu_mcp_model::{ComputeMode, GpuAccess, GpuSnapshot, Reading, RecoveryAction};

use super::Assessment;

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
        GpuAccess::ResetRequired => a.find(
            "gpu_access",
            Verdict::Critical,
            "The driver says this GPU must be reset before it can be used again.",
            detail,
            "the GPU answers without asking for a reset",
            "Drain the GPU's workloads, then reset it (nvidia-smi -r -i <index>); a reset needs every process, MIG instance and NVML client (nvidia-persistenced, DCGM) off the GPU; reboot the node if the reset fails.",
        ),
        GpuAccess::InsufficientPower => a.find(
            "gpu_access",
            Verdict::Critical,
            "The driver says this GPU's external power cables are not properly attached.",
            detail,
            "the GPU is fully powered",
            "Drain the node and check the GPU's auxiliary power cables and the power supplies.",
        ),
        GpuAccess::IrqIssue => a.find(
            "gpu_access",
            Verdict::Critical,
            "The driver detected an interrupt issue with this GPU.",
            detail,
            "the GPU's interrupts are delivered",
            "Drain the node; check the kernel log for PCIe and interrupt errors; reboot the node, and check the slot or riser if it recurs.",
        ),
        GpuAccess::NoPermission => a.find(
            "gpu_access",
            Verdict::Warning,
            "The agent cannot read this GPU: permission denied. This is a deployment problem, not a GPU fault; the GPU's own health is unknown.",
            detail,
            "the agent can open the GPU",
            "Check that the agent's pod gets the GPU's device node (/dev/nvidiaN): the device plugin's allocation, the runtime class (nvidia), and NVIDIA_VISIBLE_DEVICES.",
        ),
    }
}

/// Rule `gpu_access`, floor: a GPU whose driver answered none of the basic queries is never
/// healthy, since nothing about it could be verified.
pub fn unverified(g: &GpuSnapshot, a: &mut Assessment) {
    if g.access != GpuAccess::Ok {
        return;
    }
    let basics = [
        state(&g.name),
        state(&g.uuid),
        state(&g.memory),
        state(&g.temperature.gpu_c),
        state(&g.power.draw_w),
        state(&g.utilization),
        state(&g.performance_state),
        state(&g.clock_event_reasons),
    ];
    if basics.contains(&Some(true)) {
        return;
    }
    let Some(error) = first_error(g) else {
        return;
    };
    a.find(
        "gpu_access",
        Verdict::Warning,
        "Could not verify this GPU: the driver answered none of the basic queries (name, UUID, memory, temperature, power, utilisation, clocks).",
        error,
        "the driver answers for the GPU",
        "Run `nvidia-smi -q -i <index>` on the node and check the kernel log for Xid errors; reload the driver or reboot the node if the GPU stays unreadable.",
    );
}

/// `Some(true)` for a value, `Some(false)` for an error, `None` when not supported.
fn state<T>(r: &Reading<T>) -> Option<bool> {
    match r {
        Reading::Value(_) => Some(true),
        Reading::Error(_) => Some(false),
        Reading::NotSupported => None,
    }
}

/// The first basic query's error, as the observed value.
fn first_error(g: &GpuSnapshot) -> Option<String> {
    fn error<T>(r: &Reading<T>) -> Option<&str> {
        match r {
            Reading::Error(e) => Some(e),
            _ => None,
        }
    }
    [
        error(&g.name),
        error(&g.uuid),
        error(&g.temperature.gpu_c),
        error(&g.power.draw_w),
        error(&g.memory),
    ]
    .into_iter()
    .flatten()
    .next()
    .map(str::to_owned)
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
    let unknown;
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
        RecoveryAction::RecoverImexDomain => (
            Verdict::Degraded,
            "recover_imex_domain",
            "Recover the GPU's IMEX domain: restart the IMEX daemon on the domain's nodes and check the fabric manager; drain multi-node jobs first.",
        ),
        RecoveryAction::BusReset => (
            Verdict::Critical,
            "bus_reset",
            "Drain the GPU, then reset its PCIe bus (a GPU reset is not enough); reboot the node if that is not possible.",
        ),
        RecoveryAction::SystemReboot => (
            Verdict::Critical,
            "system_reboot",
            "Drain the node and power-cycle it (a cold reboot, not only the OS).",
        ),
        RecoveryAction::Unknown(v) => {
            unknown = format!("unknown ({v})");
            (
                Verdict::Warning,
                unknown.as_str(),
                "The driver recommends a recovery action this agent does not know: read it with `nvidia-smi -q` and check NVIDIA's documentation for the driver version.",
            )
        }
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
        let list = g.mig.instances.value().map(|v| {
            v.iter()
                .map(|m| {
                    let profile = m.profile.as_deref().unwrap_or("unknown profile");
                    match (m.gpu_instance_id.get(), m.compute_instance_id.get()) {
                        (Some(gi), Some(ci)) => format!("{profile} (GI {gi}, CI {ci})"),
                        _ => profile.to_owned(),
                    }
                })
                .collect::<Vec<_>>()
        });
        let (n, which) = match &list {
            Some(l) if !l.is_empty() => (l.len(), format!(": {}", l.join(", "))),
            Some(l) => (l.len(), String::new()),
            None => (0, " (the instances could not be listed)".to_owned()),
        };
        a.notes.push(format!(
            "MIG enabled with {n} instance(s){which}; utilisation and row remapping are not readable for the whole GPU while instances exist."
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
