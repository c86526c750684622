//! The PCIe link: generation, width and replays.

use gpu_mcp_model::{GpuAccess, Pcie};
use nvml_wrapper::Device;

use super::convert::reading;

pub(super) fn read_pcie(dev: &Device<'_>, l: &mut GpuAccess) -> Pcie {
    Pcie {
        current_generation: reading(dev.current_pcie_link_gen(), l),
        max_generation: reading(dev.max_pcie_link_gen(), l),
        current_width: reading(dev.current_pcie_link_width(), l),
        max_width: reading(dev.max_pcie_link_width(), l),
        replay_counter: reading(dev.pcie_replay_counter().map(u64::from), l),
    }
}
