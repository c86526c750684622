//! Identity and modes: name, UUID, serial, PCI bus id, architecture, compute capability, VBIOS,
//! persistence and compute mode.

use gpu_mcp_model::xid::normalize_pci_bus_id;
use gpu_mcp_model::{ComputeMode, GpuAccess, Reading};
use nvml_wrapper::Device;

use super::convert::{compute_mode, reading};

/// A GPU's identity fields.
pub(super) struct Identity {
    pub(super) name: Reading<String>,
    pub(super) uuid: Reading<String>,
    pub(super) serial: Reading<String>,
    pub(super) pci_bus_id: Reading<String>,
    pub(super) architecture: Reading<String>,
    pub(super) compute_capability: Reading<String>,
    pub(super) vbios_version: Reading<String>,
}

pub(super) fn read_identity(dev: &Device<'_>, l: &mut GpuAccess) -> Identity {
    Identity {
        name: reading(dev.name(), l),
        uuid: reading(dev.uuid(), l),
        serial: reading(dev.serial(), l),
        // One form everywhere: Linux's `dddd:bb:dd.f` (NVML prints `00000000:3B:00.0`).
        pci_bus_id: reading(
            dev.pci_info()
                .map(|p| normalize_pci_bus_id(&p.bus_id).unwrap_or(p.bus_id)),
            l,
        ),
        architecture: reading(dev.architecture().map(|a| a.to_string()), l),
        compute_capability: reading(
            dev.cuda_compute_capability()
                .map(|c| format!("{}.{}", c.major, c.minor)),
            l,
        ),
        vbios_version: reading(dev.vbios_version(), l),
    }
}

/// Persistence mode and compute mode.
pub(super) fn read_modes(
    dev: &Device<'_>,
    l: &mut GpuAccess,
) -> (Reading<bool>, Reading<ComputeMode>) {
    (
        reading(dev.is_in_persistent_mode(), l),
        reading(dev.compute_mode().map(compute_mode), l),
    )
}
