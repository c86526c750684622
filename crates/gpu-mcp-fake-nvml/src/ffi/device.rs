//! A GPU's identity and its simple readings.

use super::*;

// ---------------------------------------------------------------------------------------------
// Identity

/// `nvmlDeviceGetName` (GPU or MIG device).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetName(
    device: nvmlDevice_t,
    name: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let v = device_call("nvmlDeviceGetName", device, |_, d, g| match d {
            Dev::Gpu(_) => opt(g.name.clone()),
            Dev::Mig(_, s) => Ok(mig_instance(g, s)?.name.clone()),
        })?;
        put_str(name, length, &v)
    })
}

/// `nvmlDeviceGetUUID` (GPU or MIG device).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetUUID(
    device: nvmlDevice_t,
    uuid: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let v = device_call("nvmlDeviceGetUUID", device, |_, d, g| match d {
            Dev::Gpu(_) => opt(g.uuid.clone()),
            Dev::Mig(_, s) => Ok(mig_instance(g, s)?.uuid.clone()),
        })?;
        put_str(uuid, length, &v)
    })
}

/// `nvmlDeviceGetSerial`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetSerial(
    device: nvmlDevice_t,
    serial: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let v = device_call("nvmlDeviceGetSerial", device, |_, d, g| {
            whole(d)?;
            opt(g.serial.clone())
        })?;
        put_str(serial, length, &v)
    })
}

/// `nvmlDeviceGetVbiosVersion`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetVbiosVersion(
    device: nvmlDevice_t,
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let v = device_call("nvmlDeviceGetVbiosVersion", device, |_, d, g| {
            whole(d)?;
            opt(g.vbios_version.clone())
        })?;
        put_str(version, length, &v)
    })
}

/// Parses `DDDDDDDD:BB:DD.F` (hex).
pub(super) fn parse_bus_id(s: &str) -> (u32, u32, u32) {
    let mut parts = s.split([':', '.']);
    let mut next = || {
        parts
            .next()
            .and_then(|p| u32::from_str_radix(p, 16).ok())
            .unwrap_or(0)
    };
    (next(), next(), next())
}

/// `nvmlDeviceGetPciInfo_v3`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetPciInfo_v3(
    device: nvmlDevice_t,
    pci: *mut nvmlPciInfo_t,
) -> nvmlReturn_t {
    guard(|| {
        let p = device_call("nvmlDeviceGetPciInfo_v3", device, |_, d, g| {
            whole(d)?;
            opt(g.pci.clone())
        })?;
        let (domain, bus, dev) = parse_bus_id(&p.bus_id);
        let legacy = format!("{:04X}:{bus:02X}:{dev:02X}.0", domain & 0xffff);
        put!(
            pci,
            nvmlPciInfo_t {
                busIdLegacy: c_array(&legacy),
                domain,
                bus,
                device: dev,
                pciDeviceId: p.device_id,
                pciSubSystemId: p.subsystem_id,
                busId: c_array(&p.bus_id),
            }
        )
    })
}

/// `nvmlDeviceGetArchitecture`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetArchitecture(
    device: nvmlDevice_t,
    arch: *mut nvmlDeviceArchitecture_t,
) -> nvmlReturn_t {
    guard(|| {
        let v = device_call("nvmlDeviceGetArchitecture", device, |_, d, g| {
            whole(d)?;
            opt(g.architecture.map(|a| a.0))
        })?;
        put!(arch, v)
    })
}

/// `nvmlDeviceGetCudaComputeCapability`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCudaComputeCapability(
    device: nvmlDevice_t,
    major: *mut c_int,
    minor: *mut c_int,
) -> nvmlReturn_t {
    guard(|| {
        let [a, b] = device_call("nvmlDeviceGetCudaComputeCapability", device, |_, d, g| {
            whole(d)?;
            opt(g.compute_capability)
        })?;
        put!(major, a)?;
        put!(minor, b)
    })
}

getter!(
    /// `nvmlDeviceGetPerformanceState`.
    nvmlDeviceGetPerformanceState, nvmlPstates_t, |g| opt(g.performance_state)
);
getter!(
    /// `nvmlDeviceGetPowerUsage` (mW).
    nvmlDeviceGetPowerUsage, c_uint, |g| opt(g.power.usage_mw)
);
getter!(
    /// `nvmlDeviceGetPowerManagementLimit` (mW).
    nvmlDeviceGetPowerManagementLimit, c_uint, |g| opt(g.power.limit_mw)
);
getter!(
    /// `nvmlDeviceGetPowerManagementDefaultLimit` (mW).
    nvmlDeviceGetPowerManagementDefaultLimit, c_uint, |g| opt(g.power.default_limit_mw)
);
getter!(
    /// `nvmlDeviceGetEnforcedPowerLimit` (mW).
    nvmlDeviceGetEnforcedPowerLimit, c_uint, |g| opt(g.power.enforced_limit_mw)
);
getter!(
    /// `nvmlDeviceGetCurrentClocksThrottleReasons`.
    nvmlDeviceGetCurrentClocksThrottleReasons, c_ulonglong, |g| opt(g.clock_event_reasons)
);
getter!(
    /// `nvmlDeviceGetCurrentClocksEventReasons`.
    nvmlDeviceGetCurrentClocksEventReasons, c_ulonglong, |g| opt(g.clock_event_reasons)
);
getter!(
    /// `nvmlDeviceGetCurrPcieLinkGeneration`.
    nvmlDeviceGetCurrPcieLinkGeneration, c_uint, |g| opt(g.pcie.generation)
);
getter!(
    /// `nvmlDeviceGetMaxPcieLinkGeneration`.
    nvmlDeviceGetMaxPcieLinkGeneration, c_uint, |g| opt(g.pcie.max_generation)
);
getter!(
    /// `nvmlDeviceGetCurrPcieLinkWidth`.
    nvmlDeviceGetCurrPcieLinkWidth, c_uint, |g| opt(g.pcie.width)
);
getter!(
    /// `nvmlDeviceGetMaxPcieLinkWidth`.
    nvmlDeviceGetMaxPcieLinkWidth, c_uint, |g| opt(g.pcie.max_width)
);
getter!(
    /// `nvmlDeviceGetPcieReplayCounter`.
    nvmlDeviceGetPcieReplayCounter, c_uint, |g| opt(g.pcie.replay_counter)
);
getter!(
    /// `nvmlDeviceGetPersistenceMode`.
    nvmlDeviceGetPersistenceMode, nvmlEnableState_t, |g| opt(g.persistence_mode.map(enable))
);
getter!(
    /// `nvmlDeviceGetComputeMode`.
    nvmlDeviceGetComputeMode, nvmlComputeMode_t, |g| opt(g.compute_mode)
);
getter!(
    /// `nvmlDeviceGetRetiredPagesPendingStatus`.
    nvmlDeviceGetRetiredPagesPendingStatus, nvmlEnableState_t,
    |g| opt(g.retired_pages.map(|r| enable(r.pending)))
);
getter!(
    /// `nvmlDeviceGetSupportedEventTypes`.
    nvmlDeviceGetSupportedEventTypes, c_ulonglong, |g| opt(g.supported_events)
);
getter!(
    /// `nvmlDeviceGetMaxMigDeviceCount` (slots, empty or not).
    nvmlDeviceGetMaxMigDeviceCount, c_uint, |g| opt(g.mig.max_devices)
);

/// `nvmlDeviceGetUtilizationRates`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetUtilizationRates(
    device: nvmlDevice_t,
    utilization: *mut nvmlUtilization_t,
) -> nvmlReturn_t {
    guard(|| {
        let u = device_call("nvmlDeviceGetUtilizationRates", device, |_, d, g| {
            whole(d)?;
            opt(g.utilization)
        })?;
        put!(
            utilization,
            nvmlUtilization_t {
                gpu: u.gpu,
                memory: u.memory,
            }
        )
    })
}

fn memory(spec: &GpuSpec, d: Dev) -> Res<(u64, u64, u64)> {
    match d {
        Dev::Gpu(_) => {
            let m = opt(spec.memory)?;
            let free = m.total.saturating_sub(m.reserved).saturating_sub(m.used);
            Ok((m.total, m.reserved, free))
        }
        Dev::Mig(_, s) => {
            let total = mig_instance(spec, s)?.memory_total;
            Ok((total, 0, total))
        }
    }
}

/// `nvmlDeviceGetMemoryInfo_v2` (GPU or MIG device).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo_v2(
    device: nvmlDevice_t,
    info: *mut nvmlMemory_v2_t,
) -> nvmlReturn_t {
    guard(|| {
        if info.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        let (total, reserved, free) =
            device_call("nvmlDeviceGetMemoryInfo_v2", device, |_, d, g| memory(g, d))?;
        let version = (std::mem::size_of::<nvmlMemory_v2_t>() | (2 << 24)) as u32;
        put!(
            info,
            nvmlMemory_v2_t {
                version,
                total,
                reserved,
                free,
                used: total - reserved - free,
            }
        )
    })
}

/// `nvmlDeviceGetMemoryInfo` (GPU or MIG device).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo(
    device: nvmlDevice_t,
    info: *mut nvmlMemory_t,
) -> nvmlReturn_t {
    guard(|| {
        let (total, _reserved, free) =
            device_call("nvmlDeviceGetMemoryInfo", device, |_, d, g| memory(g, d))?;
        put!(
            info,
            nvmlMemory_t {
                total,
                free,
                used: total - free,
            }
        )
    })
}

/// `nvmlDeviceGetBAR1MemoryInfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetBAR1MemoryInfo(
    device: nvmlDevice_t,
    bar1: *mut nvmlBAR1Memory_t,
) -> nvmlReturn_t {
    guard(|| {
        let b = device_call("nvmlDeviceGetBAR1MemoryInfo", device, |_, d, g| {
            whole(d)?;
            opt(g.bar1)
        })?;
        put!(
            bar1,
            nvmlBAR1Memory_t {
                bar1Total: b.total,
                bar1Free: b.total.saturating_sub(b.used),
                bar1Used: b.used,
            }
        )
    })
}

/// `nvmlDeviceGetTemperature` (the GPU sensor only).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTemperature(
    device: nvmlDevice_t,
    sensor: nvmlTemperatureSensors_t,
    temp: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let v = device_call("nvmlDeviceGetTemperature", device, |_, d, g| {
            whole(d)?;
            if sensor != 0 {
                return Err(INVALID_ARGUMENT);
            }
            opt(g.temperature)
        })?;
        put!(temp, v)
    })
}

/// `nvmlDeviceGetTemperatureThreshold`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTemperatureThreshold(
    device: nvmlDevice_t,
    threshold: nvmlTemperatureThresholds_t,
    temp: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let v = device_call("nvmlDeviceGetTemperatureThreshold", device, |_, d, g| {
            whole(d)?;
            let t = &g.thresholds;
            opt(match threshold {
                0 => t.shutdown,
                1 => t.slowdown,
                2 => t.memory_max,
                3 => t.gpu_max,
                _ => None,
            })
        })?;
        put!(temp, v)
    })
}

fn clock(spec: &crate::scenario::ClockSpec, kind: nvmlClockType_t) -> Res<u32> {
    opt(match kind {
        0 => spec.graphics,
        1 => spec.sm,
        2 => spec.memory,
        3 => spec.video,
        _ => None,
    })
}

/// `nvmlDeviceGetClockInfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetClockInfo(
    device: nvmlDevice_t,
    kind: nvmlClockType_t,
    mhz: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let v = device_call("nvmlDeviceGetClockInfo", device, |_, d, g| {
            whole(d)?;
            clock(&g.clocks, kind)
        })?;
        put!(mhz, v)
    })
}

/// `nvmlDeviceGetMaxClockInfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMaxClockInfo(
    device: nvmlDevice_t,
    kind: nvmlClockType_t,
    mhz: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let v = device_call("nvmlDeviceGetMaxClockInfo", device, |_, d, g| {
            whole(d)?;
            clock(&g.max_clocks, kind)
        })?;
        put!(mhz, v)
    })
}
