//! The NVML facts `nvml-wrapper` does not expose (or reads wrongly), read through its own
//! loaded library: a device handle's identity, the MIG instance ids of a MIG device, a GPU
//! instance's placement, the instance ids an Xid event carries (`nvmlEventData_t.gpuInstanceId`
//! / `computeInstanceId`), the kind of device at the far end of an NVLink link, and the NVSwitch
//! fabric registration.
//!
//! This is the backend's only `unsafe` code: each block calls one symbol of the library
//! `nvml-wrapper` loaded, with handles it handed out, after checking the symbol exists (an old
//! driver lacks some), so a missing symbol is `FunctionNotFound`, never a panic.
#![allow(unsafe_code)]

use gpu_mcp_model::MigPlacement;
use nvml_wrapper::error::{NvmlError, nvml_sym, nvml_try};
use nvml_wrapper::{Device, EventSet};
use nvml_wrapper_sys::bindings::{
    nvmlEventData_t, nvmlGpuFabricInfo_t, nvmlGpuFabricInfo_v2_t, nvmlGpuFabricInfo_v3_t,
    nvmlGpuFabricInfoV_t, nvmlGpuInstance_t, nvmlGpuInstanceInfo_t, nvmlGpuInstancePlacement_t,
    nvmlIntNvLinkDeviceType_t,
};

/// `NVML_ERROR_ARGUMENT_VERSION_MISMATCH`, which `nvml-wrapper` has no variant for.
const ARGUMENT_VERSION_MISMATCH: u32 = 25;

/// NVML's "no instance" value in event data and process records.
const NO_INSTANCE: u32 = u32::MAX;

/// The identity of a device handle: NVML hands out one fixed handle per GPU for the life of
/// the library, so the handle registered at start names the GPU of a later event even when
/// that GPU no longer answers queries (fallen off the bus).
pub(super) fn handle_key(dev: &Device<'_>) -> usize {
    // SAFETY: `handle` only copies the pointer out of the wrapper; it is compared as a number
    // and never dereferenced or used to build another wrapper.
    (unsafe { dev.handle() }) as usize
}

/// `nvmlDeviceGetGpuInstanceId` of a MIG device.
pub(super) fn gpu_instance_id(dev: &Device<'_>) -> Result<u32, NvmlError> {
    let sym = nvml_sym(dev.nvml().lib().nvmlDeviceGetGpuInstanceId.as_ref())?;
    let mut id: u32 = 0;
    // SAFETY: the symbol exists (checked above) in the library `dev` came from; `dev`'s handle
    // is valid while `dev` borrows the library, and `id` is a valid, writable `unsigned int`.
    nvml_try(unsafe { sym(dev.handle(), &mut id) })?;
    Ok(id)
}

/// `nvmlDeviceGetComputeInstanceId` of a MIG device.
pub(super) fn compute_instance_id(dev: &Device<'_>) -> Result<u32, NvmlError> {
    let sym = nvml_sym(dev.nvml().lib().nvmlDeviceGetComputeInstanceId.as_ref())?;
    let mut id: u32 = 0;
    // SAFETY: as in `gpu_instance_id`.
    nvml_try(unsafe { sym(dev.handle(), &mut id) })?;
    Ok(id)
}

/// Where GPU instance `gpu_instance_id` sits on `parent` (`nvmlDeviceGetGpuInstanceById`, then
/// `nvmlGpuInstanceGetInfo`). The driver may require privileges for these (`NO_PERMISSION`).
pub(super) fn gpu_instance_placement(
    parent: &Device<'_>,
    gpu_instance_id: u32,
) -> Result<MigPlacement, NvmlError> {
    let lib = parent.nvml().lib();
    let by_id = nvml_sym(lib.nvmlDeviceGetGpuInstanceById.as_ref())?;
    let info_of = nvml_sym(lib.nvmlGpuInstanceGetInfo.as_ref())?;
    let mut gi: nvmlGpuInstance_t = std::ptr::null_mut();
    // SAFETY: the symbol exists (checked above) in the library `parent` came from; its handle
    // is valid while `parent` borrows the library, and `gi` is a valid, writable handle slot.
    nvml_try(unsafe { by_id(parent.handle(), gpu_instance_id, &mut gi) })?;
    let mut info = nvmlGpuInstanceInfo_t {
        device: std::ptr::null_mut(),
        id: 0,
        profileId: 0,
        placement: nvmlGpuInstancePlacement_t { start: 0, size: 0 },
    };
    // SAFETY: the symbol exists (checked above); `gi` is the handle NVML just handed out for
    // this library, and `info` is a valid, writable `nvmlGpuInstanceInfo_t`.
    nvml_try(unsafe { info_of(gi, &mut info) })?;
    Ok(MigPlacement {
        start: info.placement.start,
        size: info.placement.size,
    })
}

/// One event as NVML delivered it, with nothing asked of the device.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawEvent {
    /// The device handle (see [`handle_key`]).
    pub(super) device: usize,
    /// `nvmlEventType*` bits.
    pub(super) event_type: u64,
    /// The Xid code for Xid events.
    pub(super) data: u64,
    /// MIG GPU instance, when the driver attributed one.
    pub(super) gpu_instance: Option<u32>,
    /// MIG compute instance, when the driver attributed one.
    pub(super) compute_instance: Option<u32>,
}

/// `nvmlEventSetWait_v2` on `set`, keeping the fields `EventSet::wait` drops.
pub(super) fn wait(
    set: &EventSet<'_>,
    nvml: &nvml_wrapper::Nvml,
    timeout_ms: u32,
) -> Result<RawEvent, NvmlError> {
    let sym = nvml_sym(nvml.lib().nvmlEventSetWait_v2.as_ref())?;
    let mut data = nvmlEventData_t {
        device: std::ptr::null_mut(),
        eventType: 0,
        eventData: 0,
        gpuInstanceId: NO_INSTANCE,
        computeInstanceId: NO_INSTANCE,
    };
    // SAFETY: the symbol exists in the library `set` was created from (`nvml`); the set's
    // handle is valid while `set` lives, and `data` is a valid, writable `nvmlEventData_t`.
    nvml_try(unsafe { sym(set.handle(), &mut data, timeout_ms) })?;
    let id = |v: u32| (v != NO_INSTANCE).then_some(v);
    Ok(RawEvent {
        device: data.device as usize,
        event_type: data.eventType,
        data: data.eventData,
        gpu_instance: id(data.gpuInstanceId),
        compute_instance: id(data.computeInstanceId),
    })
}

/// `nvmlDeviceGetNvLinkRemoteDeviceType`: the kind of device at the far end of `link`
/// (`nvmlIntNvLinkDeviceType_t`: 0 GPU, 1 IBM NPU, 2 NVSwitch, 255 unknown). `nvml-wrapper`'s
/// own call writes the answer into a temporary and always returns "unknown".
pub(super) fn remote_device_type(dev: &Device<'_>, link: u32) -> Result<u32, NvmlError> {
    let sym = nvml_sym(
        dev.nvml()
            .lib()
            .nvmlDeviceGetNvLinkRemoteDeviceType
            .as_ref(),
    )?;
    let mut kind: nvmlIntNvLinkDeviceType_t = 255;
    // SAFETY: the symbol exists (checked above) in the library `dev` came from; `dev`'s handle
    // is valid while `dev` borrows the library, and `kind` is a valid, writable enum value.
    nvml_try(unsafe { sym(dev.handle(), link, &mut kind) })?;
    Ok(kind)
}

/// A GPU's NVSwitch fabric registration as the driver reports it.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawFabric {
    /// `nvmlGpuFabricState_t`.
    pub(super) state: u8,
    /// The registration's own return code (meaningful once completed).
    pub(super) status: u32,
    /// The NVLink clique.
    pub(super) clique_id: u32,
    /// The cluster UUID's bytes.
    pub(super) cluster_uuid: [u8; 16],
    /// The health mask (`nvmlGpuFabricInfo_v2` and later), when the driver gave one.
    pub(super) health_mask: Option<u32>,
}

/// `NVML_STRUCT_VERSION(GpuFabricInfo, v)`: the struct size with the version in the top byte.
fn fabric_version<T>(v: u32) -> u32 {
    (std::mem::size_of::<T>() as u32) | (v << 24)
}

/// `nvmlDeviceGetGpuFabricInfoV` (version 3, then 2), or `nvmlDeviceGetGpuFabricInfo` on a
/// driver without the versioned call.
pub(super) fn fabric_info(dev: &Device<'_>) -> Result<RawFabric, NvmlError> {
    let lib = dev.nvml().lib();
    if let Ok(sym) = nvml_sym(lib.nvmlDeviceGetGpuFabricInfoV.as_ref()) {
        for version in [
            fabric_version::<nvmlGpuFabricInfo_v3_t>(3),
            fabric_version::<nvmlGpuFabricInfo_v2_t>(2),
        ] {
            let mut info = nvmlGpuFabricInfoV_t {
                version,
                clusterUuid: [0; 16],
                status: 0,
                cliqueId: 0,
                state: 0,
                healthMask: 0,
                healthSummary: 0,
            };
            // SAFETY: the symbol exists in the library `dev` came from; `dev`'s handle is
            // valid while `dev` borrows the library, and `info` is a valid, writable
            // `nvmlGpuFabricInfo_v3_t`, at least as large as the version it names.
            match nvml_try(unsafe { sym(dev.handle(), &mut info) }) {
                Ok(()) => {
                    return Ok(RawFabric {
                        state: info.state,
                        status: info.status,
                        clique_id: info.cliqueId,
                        cluster_uuid: info.clusterUuid,
                        health_mask: Some(info.healthMask),
                    });
                }
                // An older driver that knows the call but not this version of the struct.
                Err(NvmlError::UnexpectedVariant(ARGUMENT_VERSION_MISMATCH)) => continue,
                Err(e) => return Err(e),
            }
        }
    }
    let sym = nvml_sym(lib.nvmlDeviceGetGpuFabricInfo.as_ref())?;
    let mut info = nvmlGpuFabricInfo_t {
        clusterUuid: [0; 16],
        status: 0,
        cliqueId: 0,
        state: 0,
    };
    // SAFETY: the symbol exists (checked above) in the library `dev` came from; `dev`'s handle
    // is valid while `dev` borrows the library, and `info` is a valid, writable
    // `nvmlGpuFabricInfo_t`.
    nvml_try(unsafe { sym(dev.handle(), &mut info) })?;
    Ok(RawFabric {
        state: info.state,
        status: info.status,
        clique_id: info.cliqueId,
        cluster_uuid: info.clusterUuid,
        health_mask: None,
    })
}
