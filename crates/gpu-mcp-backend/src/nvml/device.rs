//! One GPU's blocking read: open the device, read every field group, keep the worst GPU-wide state any
//! call reported (lost, reset required, insufficient power, interrupt issue).

use std::path::Path;

use gpu_mcp_model::{GpuAccess, GpuSnapshot, RecoveryAction};
use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

use super::clocks::{
    read_clock_event_reasons, read_clocks, read_performance_state, read_utilization,
};
use super::convert::{gpu_state, reading};
use super::fields::{Field, FieldValues};
use super::identity::{read_identity, read_modes};
use super::memory::read_memory;
use super::mig::read_mig;
use super::nvlink::read_nvlink;
use super::pcie::read_pcie;
use super::processes::read_processes;
use super::thermal::{read_power, read_temperature};
use super::topology::read_topology;

/// Every field of GPU `index` (its paths to the other GPUs excepted, see `topology`); a field
/// the driver refuses is data, never a failure. `sysfs` is where the PCI devices' NUMA nodes
/// are read when NVML does not say.
pub(super) fn read_gpu_blocking(nvml: &Nvml, index: u32, sysfs: &Path) -> GpuSnapshot {
    let dev = match nvml.device_by_index(index) {
        Ok(d) => d,
        Err(e) => {
            if let Some((state, why)) = gpu_state(&e) {
                return GpuSnapshot::unreadable(index, state, why);
            }
            if matches!(e, NvmlError::NoPermission) {
                return GpuSnapshot::unreadable(
                    index,
                    GpuAccess::NoPermission,
                    "permission denied opening the GPU (NVML_ERROR_NO_PERMISSION)",
                );
            }
            return GpuSnapshot::unreadable(
                index,
                GpuAccess::Error,
                &format!("cannot open the GPU: {e}"),
            );
        }
    };
    let mut worst = GpuAccess::Ok;
    let l = &mut worst;
    let fields = FieldValues::read(&dev);
    let id = read_identity(&dev, l);
    let mem = read_memory(&dev, &fields, l);
    let (persistence_mode, compute_mode) = read_modes(&dev, l);
    let topology = read_topology(&dev, id.pci_bus_id.value().map(String::as_str), sysfs, l);
    let recovery_action = fields
        .get(Field::RecoveryAction)
        .map(RecoveryAction::from_nvml);
    let mut g = GpuSnapshot {
        index,
        access: GpuAccess::Ok,
        access_detail: None,
        name: id.name,
        uuid: id.uuid,
        serial: id.serial,
        pci_bus_id: id.pci_bus_id,
        architecture: id.architecture,
        compute_capability: id.compute_capability,
        vbios_version: id.vbios_version,
        memory: mem.memory,
        bar1: mem.bar1,
        utilization: read_utilization(&dev, l),
        performance_state: read_performance_state(&dev, l),
        temperature: read_temperature(&dev, &fields, l),
        power: read_power(&dev, l),
        clocks: read_clocks(&dev, l),
        clock_event_reasons: read_clock_event_reasons(&dev, l),
        ecc: mem.ecc,
        retired_pages: mem.retired_pages,
        row_remapping: mem.row_remapping,
        pcie: read_pcie(&dev, l),
        nvlink: read_nvlink(&dev, &fields, l),
        persistence_mode,
        compute_mode,
        mig: read_mig(&dev, l),
        recovery_action: reading(recovery_action, l),
        processes: read_processes(&dev, l),
        since_previous: None,
        topology,
    };
    if worst != GpuAccess::Ok {
        g.access = worst;
        g.access_detail = gpu_state_detail(worst);
    }
    g
}

/// The explanation of a GPU-wide state one of the GPU's calls reported.
fn gpu_state_detail(state: GpuAccess) -> Option<String> {
    let e = match state {
        GpuAccess::Lost => NvmlError::GpuLost,
        GpuAccess::ResetRequired => NvmlError::ResetRequired,
        GpuAccess::InsufficientPower => NvmlError::InsufficientPower,
        GpuAccess::IrqIssue => NvmlError::IrqIssue,
        _ => return None,
    };
    gpu_state(&e).map(|(_, why)| why.to_owned())
}
