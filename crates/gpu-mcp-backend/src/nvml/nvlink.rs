//! NVLink links, their error counters and the device at each link's far end.
//!
//! NVML answers `nvmlDeviceGetNvLinkState` per link: enabled (up), disabled, `NOT_SUPPORTED`
//! for a port that is not wired on this board, `INVALID_ARGUMENT` past the driver's last link.
//! "Disabled" covers both a link that failed to train (down) and one turned off on purpose;
//! the enabled-link count (field `NVML_FI_DEV_NVLINK_LINK_COUNT`) tells them apart: links that
//! are not up beyond that count are the disabled ones.

use gpu_mcp_model::{GpuAccess, NvLink, Reading};
use nvml_wrapper::Device;
use nvml_wrapper::enum_wrappers::nv_link::ErrorCounter;
use nvml_wrapper::error::NvmlError;

use super::convert::reading;
use super::fields::{Field, FieldValues};
use super::topology::link_remote;

/// Upper bound of NVLink links per GPU on current drivers (`NVML_NVLINK_MAX_LINKS`).
const MAX_NVLINKS: u32 = 36;

pub(super) fn read_nvlink(
    dev: &Device<'_>,
    fields: &FieldValues,
    l: &mut GpuAccess,
) -> Reading<Vec<NvLink>> {
    let enabled = fields
        .get(Field::NvlinkLinkCount)
        .ok()
        .and_then(|n| u32::try_from(n).ok());
    reading(links(dev).map(|ls| mark_disabled(ls, enabled)), l)
}

/// Every wired link; a lost GPU fails the whole list, a GPU without NVLink is not supported.
fn links(dev: &Device<'_>) -> Result<Vec<NvLink>, NvmlError> {
    let mut links = Vec::new();
    let mut first_error = None;
    for link in 0..MAX_NVLINKS {
        let w = dev.link_wrapper_for(link);
        let active = match w.is_active() {
            Ok(a) => a,
            // A port that is not wired on this board.
            Err(NvmlError::NotSupported) => continue,
            // Past the driver's last link.
            Err(NvmlError::InvalidArg) => break,
            Err(NvmlError::GpuLost) => return Err(NvmlError::GpuLost),
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        let mut lost_here = GpuAccess::Ok;
        links.push(NvLink {
            link,
            active,
            disabled: false,
            replay_errors: reading(w.error_counter(ErrorCounter::DlReplay), &mut lost_here),
            recovery_errors: reading(w.error_counter(ErrorCounter::DlRecovery), &mut lost_here),
            crc_flit_errors: reading(w.error_counter(ErrorCounter::DlCrcFlit), &mut lost_here),
            crc_data_errors: reading(w.error_counter(ErrorCounter::DlCrcData), &mut lost_here),
            remote: reading(link_remote(dev, link), &mut lost_here),
        });
        if lost_here == GpuAccess::Lost {
            return Err(NvmlError::GpuLost);
        }
    }
    match (links.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        (true, None) => Err(NvmlError::NotSupported),
        (false, _) => Ok(links),
    }
}

/// Marks the links that are turned off on purpose: with `enabled` links counted by the driver
/// and `up` of them up, `enabled - up` of the others are down and the rest disabled. When every
/// link that is not up is accounted for one way, it is marked so; when the count is unknown or
/// only some are disabled (NVML does not say which), they are all kept as down.
fn mark_disabled(mut links: Vec<NvLink>, enabled: Option<u32>) -> Vec<NvLink> {
    let Some(enabled) = enabled else {
        return links;
    };
    let up = links.iter().filter(|l| l.active).count() as u32;
    let expected_down = enabled.saturating_sub(up);
    if expected_down == 0 {
        for l in links.iter_mut().filter(|l| !l.active) {
            l.disabled = true;
        }
    }
    links
}
