//! The NVSwitch fabric: whether the fabric manager has registered the GPU, and how well the
//! fabric runs.

use gpu_mcp_model::output::Verdict;
use gpu_mcp_model::{FabricState, GpuSnapshot, Reading};

use super::Assessment;

/// Rule `fabric`: on an NVSwitch system (Hopper and later report it) CUDA cannot start on a GPU
/// until the fabric manager has registered it; a failed registration or reduced fabric
/// bandwidth needs an operator.
pub fn fabric(g: &GpuSnapshot, a: &mut Assessment) {
    let f = match &g.topology.fabric {
        Reading::Value(f) => f,
        Reading::NotSupported => return,
        Reading::Error(e) => {
            a.not_checked.push(format!("fabric: {e}"));
            return;
        }
    };
    match f.state {
        FabricState::NotSupported => {}
        FabricState::NotStarted => a.find(
            "fabric",
            Verdict::Critical,
            "The fabric manager has not started registering this GPU with the NVSwitch fabric: CUDA programs cannot start on it (cudaErrorSystemNotReady) and its NVLink links stay untrained.",
            "fabric state not_started",
            "completed",
            "Start nvidia-fabricmanager (systemctl status nvidia-fabricmanager; its version must match the driver's) and read its log (/var/log/fabricmanager.log); ask again once the state is completed.",
        ),
        FabricState::InProgress => a.find(
            "fabric",
            Verdict::Degraded,
            "The fabric manager is still registering this GPU with the NVSwitch fabric: CUDA programs cannot start on it until the registration completes (normal for a minute or so after boot or a GPU reset).",
            "fabric state in_progress",
            "completed",
            "Ask again in a minute; if it stays in_progress, read the fabric manager log (/var/log/fabricmanager.log) and look for SXid errors in the kernel log.",
        ),
        FabricState::Completed if f.status != "success" => a.find(
            "fabric",
            Verdict::Critical,
            format!(
                "The registration of this GPU with the NVSwitch fabric failed ({}): CUDA programs cannot use it.",
                f.status
            ),
            format!("fabric state completed, status {}", f.status),
            "status success",
            "Read the fabric manager log (/var/log/fabricmanager.log), restart nvidia-fabricmanager; if it fails again, drain the node and reset the GPUs and NVSwitches or reboot.",
        ),
        FabricState::Completed => {
            if f.bandwidth_degraded == Some(true) {
                a.find(
                    "fabric",
                    Verdict::Degraded,
                    "The NVSwitch fabric reports reduced bandwidth for this GPU: multi-GPU communication is slower.",
                    "fabric health: degraded bandwidth",
                    "full bandwidth",
                    "Check the NVLink and NVSwitch state (nvidia-smi nvlink -s, the fabric manager log, SXid errors); drain and reboot the node at the next window; contact the vendor if it persists.",
                );
            }
        }
    }
}
