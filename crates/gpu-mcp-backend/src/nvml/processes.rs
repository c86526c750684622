//! The processes with a compute or graphics context on a GPU, and the clients of its
//! Multi-Process Service.

use gpu_mcp_model::{GpuAccess, GpuProcess, ProcessKind, Reading};
use nvml_wrapper::Device;
use nvml_wrapper::error::NvmlError;

use super::convert::reading;

pub(super) fn read_processes(dev: &Device<'_>, l: &mut GpuAccess) -> Reading<Vec<GpuProcess>> {
    reading(processes(dev), l)
}

/// Compute, graphics and MPS client processes of a device (a process with several contexts
/// appears once per kind). A device or driver without graphics or MPS queries lists none.
fn processes(dev: &Device<'_>) -> Result<Vec<GpuProcess>, NvmlError> {
    let conv = |p: nvml_wrapper::struct_wrappers::device::ProcessInfo, kind| GpuProcess {
        pid: p.pid,
        kind,
        used_memory_bytes: match p.used_gpu_memory {
            nvml_wrapper::enums::device::UsedGpuMemory::Used(b) => Some(b),
            nvml_wrapper::enums::device::UsedGpuMemory::Unavailable => None,
        },
        gpu_instance: p.gpu_instance_id,
        compute_instance: p.compute_instance_id,
    };
    let mut out: Vec<GpuProcess> = dev
        .running_compute_processes()?
        .into_iter()
        .map(|p| conv(p, ProcessKind::Compute))
        .collect();
    match dev.running_graphics_processes() {
        Ok(g) => out.extend(g.into_iter().map(|p| conv(p, ProcessKind::Graphics))),
        Err(NvmlError::NotSupported) => {}
        Err(e) => return Err(e),
    }
    match dev.mps_running_compute_processes() {
        Ok(m) => out.extend(m.into_iter().map(|p| conv(p, ProcessKind::Mps))),
        Err(NvmlError::NotSupported | NvmlError::FailedToLoadSymbol(_)) => {}
        Err(e) => return Err(e),
    }
    Ok(out)
}
