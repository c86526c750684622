//! Multi-Instance GPU: the mode now and after reset, and the MIG devices.

use gpu_mcp_model::{GpuAccess, Mig, MigInstance, Reading};
use nvml_wrapper::Device;
use nvml_wrapper::error::NvmlError;

use super::convert::{clone_err, reading};

pub(super) fn read_mig(dev: &Device<'_>, l: &mut GpuAccess) -> Mig {
    let mig_mode = dev.mig_mode();
    let mig_enabled = mig_mode.as_ref().map(|m| m.current == 1).unwrap_or(false);
    let instances = match &mig_mode {
        Ok(_) if !mig_enabled => Ok(Vec::new()),
        Ok(_) => dev
            .mig_device_count()
            .map(|n| (0..n).map(|i| instance(dev, i)).collect()),
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

/// One MIG device; its fields do not mark the parent GPU lost.
fn instance(dev: &Device<'_>, i: u32) -> MigInstance {
    match dev.mig_device_by_index(i) {
        Ok(m) => {
            let mut x = GpuAccess::Ok;
            MigInstance {
                index: i,
                uuid: reading(m.uuid(), &mut x),
                name: reading(m.name(), &mut x),
                memory_total_bytes: reading(m.memory_info().map(|mi| mi.total), &mut x),
            }
        }
        Err(e) => instance_error(i, &e),
    }
}

fn instance_error(i: u32, e: &NvmlError) -> MigInstance {
    MigInstance {
        index: i,
        uuid: Reading::Error(e.to_string()),
        name: Reading::Error(e.to_string()),
        memory_total_bytes: Reading::Error(e.to_string()),
    }
}
