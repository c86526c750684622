//! Multi-Instance GPU: the mode now and after reset, and the MIG devices that exist.
//!
//! `nvmlDeviceGetMaxMigDeviceCount` is the number of slots, not of instances: a slot without a
//! MIG device answers `NOT_FOUND` and is skipped.

use gpu_mcp_model::{GpuAccess, Mig, MigInstance, Reading};
use nvml_wrapper::Device;
use nvml_wrapper::error::NvmlError;

use super::convert::{clone_err, reading};
use super::raw;

pub(super) fn read_mig(dev: &Device<'_>, l: &mut GpuAccess) -> Mig {
    let mig_mode = dev.mig_mode();
    let mig_enabled = mig_mode.as_ref().map(|m| m.current == 1).unwrap_or(false);
    let instances = match &mig_mode {
        Ok(_) if !mig_enabled => Ok(Vec::new()),
        Ok(_) => dev.mig_device_count().and_then(|slots| {
            let mut found = Vec::new();
            for i in 0..slots {
                match dev.mig_device_by_index(i) {
                    Ok(m) => found.push(instance(dev, &m, i)),
                    // An empty slot.
                    Err(NvmlError::NotFound) => {}
                    Err(NvmlError::GpuLost) => return Err(NvmlError::GpuLost),
                    Err(e) => found.push(instance_error(i, &e)),
                }
            }
            Ok(found)
        }),
        Err(e) => Err(clone_err(e)),
    };
    Mig {
        enabled: reading(
            mig_mode.as_ref().map(|m| m.current == 1).map_err(clone_err),
            l,
        ),
        pending_enabled: reading(
            mig_mode.as_ref().map(|m| m.pending == 1).map_err(clone_err),
            l,
        ),
        instances: reading(instances, l),
    }
}

/// One MIG device of `parent`; its fields do not mark the parent GPU lost.
fn instance(parent: &Device<'_>, m: &Device<'_>, i: u32) -> MigInstance {
    let mut x = GpuAccess::Ok;
    let name = reading(m.name(), &mut x);
    let gi = raw::gpu_instance_id(m);
    let placement = match &gi {
        Ok(id) => raw::gpu_instance_placement(parent, *id),
        Err(e) => Err(clone_err(e)),
    };
    MigInstance {
        index: i,
        uuid: reading(m.uuid(), &mut x),
        profile: name.value().and_then(|n| MigInstance::profile_of(n)),
        name,
        memory_total_bytes: reading(m.memory_info().map(|mi| mi.total), &mut x),
        gpu_instance_id: reading(gi, &mut x),
        compute_instance_id: reading(raw::compute_instance_id(m), &mut x),
        placement: reading(placement, &mut x),
    }
}

fn instance_error(i: u32, e: &NvmlError) -> MigInstance {
    MigInstance {
        index: i,
        uuid: Reading::Error(e.to_string()),
        name: Reading::Error(e.to_string()),
        memory_total_bytes: Reading::Error(e.to_string()),
        gpu_instance_id: Reading::Error(e.to_string()),
        compute_instance_id: Reading::Error(e.to_string()),
        profile: None,
        placement: Reading::Error(e.to_string()),
    }
}
