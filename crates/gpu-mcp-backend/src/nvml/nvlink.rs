//! NVLink links and their error counters.

use gpu_mcp_model::{GpuAccess, NvLink, Reading};
use nvml_wrapper::Device;
use nvml_wrapper::enum_wrappers::nv_link::ErrorCounter;
use nvml_wrapper::error::NvmlError;

use super::convert::reading;

/// Upper bound of NVLink links per GPU in NVML.
const MAX_NVLINKS: u32 = 18;

pub(super) fn read_nvlink(dev: &Device<'_>, l: &mut GpuAccess) -> Reading<Vec<NvLink>> {
    reading(links(dev), l)
}

/// Links until the first one NVML does not know; a lost GPU fails the whole list.
fn links(dev: &Device<'_>) -> Result<Vec<NvLink>, NvmlError> {
    let mut links = Vec::new();
    for link in 0..MAX_NVLINKS {
        let w = dev.link_wrapper_for(link);
        let active = match w.is_active() {
            Ok(a) => a,
            Err(e) if link == 0 => return Err(e),
            Err(_) => break,
        };
        let mut lost_here = GpuAccess::Ok;
        links.push(NvLink {
            link,
            active,
            replay_errors: reading(w.error_counter(ErrorCounter::DlReplay), &mut lost_here),
            recovery_errors: reading(w.error_counter(ErrorCounter::DlRecovery), &mut lost_here),
            crc_flit_errors: reading(w.error_counter(ErrorCounter::DlCrcFlit), &mut lost_here),
            crc_data_errors: reading(w.error_counter(ErrorCounter::DlCrcData), &mut lost_here),
        });
        if lost_here == GpuAccess::Lost {
            return Err(NvmlError::GpuLost);
        }
    }
    Ok(links)
}
