//! NVLink, MIG devices and processes.

use super::*;

// ---------------------------------------------------------------------------------------------
// NVLink

fn link(spec: &GpuSpec, l: c_uint) -> Res<LinkSpec> {
    let links = opt(spec.nvlinks.as_ref())?;
    let k = links.get(l as usize).cloned().ok_or(INVALID_ARGUMENT)?;
    if k.state == LinkState::NotWired {
        return Err(NOT_SUPPORTED);
    }
    Ok(k)
}

/// `nvmlDeviceGetNvLinkState`: up is enabled; down and disabled both answer disabled; a link
/// that is not wired answers `NOT_SUPPORTED`; a link past the list `INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetNvLinkState(
    device: nvmlDevice_t,
    l: c_uint,
    is_active: *mut nvmlEnableState_t,
) -> nvmlReturn_t {
    guard(|| {
        let k = device_call("nvmlDeviceGetNvLinkState", device, |_, d, g| {
            whole(d)?;
            link(g, l)
        })?;
        put!(is_active, enable(k.state == LinkState::Up))
    })
}

/// `nvmlDeviceGetNvLinkErrorCounter` (replay, recovery, CRC flit, CRC data).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetNvLinkErrorCounter(
    device: nvmlDevice_t,
    l: c_uint,
    counter: nvmlNvLinkErrorCounter_t,
    counter_value: *mut c_ulonglong,
) -> nvmlReturn_t {
    guard(|| {
        let v = device_call("nvmlDeviceGetNvLinkErrorCounter", device, |_, d, g| {
            whole(d)?;
            let k = link(g, l)?;
            match counter {
                0 => answer(&k.replay_errors),
                1 => answer(&k.recovery_errors),
                2 => answer(&k.crc_flit_errors),
                3 => answer(&k.crc_data_errors),
                _ => Err(NOT_SUPPORTED),
            }
        })?;
        put!(counter_value, v)
    })
}

// ---------------------------------------------------------------------------------------------
// MIG

/// `nvmlDeviceGetMigMode`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMigMode(
    device: nvmlDevice_t,
    current_mode: *mut c_uint,
    pending_mode: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let m = device_call("nvmlDeviceGetMigMode", device, |_, d, g| {
            whole(d)?;
            opt(g.mig_mode)
        })?;
        put!(current_mode, m.current)?;
        put!(pending_mode, m.pending)
    })
}

/// `nvmlDeviceGetMigDeviceHandleByIndex`: `NOT_FOUND` for an empty slot.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMigDeviceHandleByIndex(
    device: nvmlDevice_t,
    index: c_uint,
    mig_device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    guard(|| {
        let h = device_call("nvmlDeviceGetMigDeviceHandleByIndex", device, |_, d, g| {
            let gpu = whole(d)?;
            if opt(g.mig_mode)?.current != 1 {
                return Err(INVALID_ARGUMENT);
            }
            if index >= opt(g.mig.max_devices)? {
                return Err(INVALID_ARGUMENT);
            }
            if g.mig.instances.iter().any(|m| m.slot == index) {
                Ok(Dev::Mig(gpu, index).handle())
            } else {
                Err(NOT_FOUND)
            }
        })?;
        put!(mig_device, h)
    })
}

/// `nvmlDeviceIsMigDeviceHandle`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceIsMigDeviceHandle(
    device: nvmlDevice_t,
    is_mig_device: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let v = device_call("nvmlDeviceIsMigDeviceHandle", device, |_, d, _| {
            Ok(u32::from(matches!(d, Dev::Mig(..))))
        })?;
        put!(is_mig_device, v)
    })
}

/// `nvmlDeviceGetDeviceHandleFromMigDeviceHandle`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetDeviceHandleFromMigDeviceHandle(
    mig_device: nvmlDevice_t,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    guard(|| {
        let h = device_call(
            "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
            mig_device,
            |_, d, _| match d {
                Dev::Mig(g, _) => Ok(Dev::Gpu(g).handle()),
                Dev::Gpu(_) => Err(INVALID_ARGUMENT),
            },
        )?;
        put!(device, h)
    })
}

fn instance_id(symbol: &str, device: nvmlDevice_t, out: *mut c_uint, gi: bool) -> nvmlReturn_t {
    guard(|| {
        let v = device_call(symbol, device, |_, d, g| match d {
            Dev::Mig(_, s) => {
                let m = mig_instance(g, s)?;
                Ok(if gi {
                    m.gpu_instance_id
                } else {
                    m.compute_instance_id
                })
            }
            Dev::Gpu(_) => Err(NOT_SUPPORTED),
        })?;
        put!(out, v)
    })
}

/// `nvmlDeviceGetGpuInstanceId` of a MIG device.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceId(
    device: nvmlDevice_t,
    id: *mut c_uint,
) -> nvmlReturn_t {
    instance_id("nvmlDeviceGetGpuInstanceId", device, id, true)
}

/// `nvmlDeviceGetComputeInstanceId` of a MIG device.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeInstanceId(
    device: nvmlDevice_t,
    id: *mut c_uint,
) -> nvmlReturn_t {
    instance_id("nvmlDeviceGetComputeInstanceId", device, id, false)
}

/// `nvmlDeviceGetGpuInstanceById`: the GPU instance handle is the handle of the MIG device
/// in that instance (the fake's instances hold one compute instance each), so
/// `nvmlGpuInstanceGetInfo` finds its way back.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceById(
    device: nvmlDevice_t,
    id: c_uint,
    gpu_instance: *mut nvmlGpuInstance_t,
) -> nvmlReturn_t {
    guard(|| {
        let h = device_call("nvmlDeviceGetGpuInstanceById", device, |_, d, g| {
            let gpu = whole(d)?;
            if opt(g.mig_mode)?.current != 1 {
                return Err(NOT_SUPPORTED);
            }
            let m = g
                .mig
                .instances
                .iter()
                .find(|m| m.gpu_instance_id == id)
                .ok_or(NOT_FOUND)?;
            if m.placement.is_none() {
                return Err(NO_PERMISSION);
            }
            Ok(Dev::Mig(gpu, m.slot).handle() as nvmlGpuInstance_t)
        })?;
        put!(gpu_instance, h)
    })
}

/// `nvmlGpuInstanceGetInfo` of a handle from `nvmlDeviceGetGpuInstanceById`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpuInstanceGetInfo(
    gpu_instance: nvmlGpuInstance_t,
    info: *mut nvmlGpuInstanceInfo_t,
) -> nvmlReturn_t {
    guard(|| {
        let v = device_call(
            "nvmlGpuInstanceGetInfo",
            gpu_instance as nvmlDevice_t,
            |_, d, g| match d {
                Dev::Mig(gpu, s) => {
                    let m = mig_instance(g, s)?;
                    let p = opt(m.placement)?;
                    Ok(nvmlGpuInstanceInfo_t {
                        device: Dev::Gpu(gpu).handle(),
                        id: m.gpu_instance_id,
                        profileId: 0,
                        placement: nvmlGpuInstancePlacement_t {
                            start: p.start,
                            size: p.size,
                        },
                    })
                }
                Dev::Gpu(_) => Err(INVALID_ARGUMENT),
            },
        )?;
        put!(info, v)
    })
}

// ---------------------------------------------------------------------------------------------
// Processes

fn processes(
    symbol: &str,
    device: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
    pick: fn(&GpuSpec) -> Option<&Vec<ProcessSpec>>,
) -> nvmlReturn_t {
    guard(|| {
        let list = device_call(symbol, device, |_, d, g| {
            whole(d)?;
            opt(pick(g).cloned())
        })?;
        if count.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        // SAFETY: NVML's contract: `count` (checked non-null) holds the capacity of `infos`.
        let cap = unsafe { count.read() } as usize;
        let n = u32::try_from(list.len()).map_err(|_| UNKNOWN)?;
        put!(count, n)?;
        if list.is_empty() {
            return Ok(());
        }
        if infos.is_null() || cap < list.len() {
            return Err(INSUFFICIENT_SIZE);
        }
        let raw: Vec<nvmlProcessInfo_t> = list
            .iter()
            .map(|p| nvmlProcessInfo_t {
                pid: p.pid,
                usedGpuMemory: p.used_memory.unwrap_or(NOT_AVAILABLE_U64),
                gpuInstanceId: p.gpu_instance.unwrap_or(NO_INSTANCE),
                computeInstanceId: p.compute_instance.unwrap_or(NO_INSTANCE),
            })
            .collect();
        put_all(infos, &raw)
    })
}

/// `nvmlDeviceGetComputeRunningProcesses_v3` (the `INSUFFICIENT_SIZE` count protocol).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeRunningProcesses_v3(
    device: nvmlDevice_t,
    info_count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    processes(
        "nvmlDeviceGetComputeRunningProcesses_v3",
        device,
        info_count,
        infos,
        |g| g.processes.compute.as_ref(),
    )
}

/// `nvmlDeviceGetGraphicsRunningProcesses_v3`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGraphicsRunningProcesses_v3(
    device: nvmlDevice_t,
    info_count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    processes(
        "nvmlDeviceGetGraphicsRunningProcesses_v3",
        device,
        info_count,
        infos,
        |g| g.processes.graphics.as_ref(),
    )
}

/// `nvmlDeviceGetMPSComputeRunningProcesses_v3`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMPSComputeRunningProcesses_v3(
    device: nvmlDevice_t,
    info_count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    processes(
        "nvmlDeviceGetMPSComputeRunningProcesses_v3",
        device,
        info_count,
        infos,
        |g| g.processes.mps.as_ref(),
    )
}
