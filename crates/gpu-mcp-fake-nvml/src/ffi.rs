//! The exported NVML C functions.
//!
//! Every signature is the one `nvml-wrapper-sys` loads (checked at compile time below). Every
//! function catches panics and answers `NVML_ERROR_UNKNOWN` instead, refuses null output
//! pointers with `NVML_ERROR_INVALID_ARGUMENT`, and never holds the state lock while it sleeps.
//!
//! # Safety
//!
//! The caller keeps NVML's contract: every non-null pointer argument points to writable
//! storage of the documented type and size for the duration of the call.
#![allow(clippy::missing_safety_doc, non_snake_case)]

use std::os::raw::{c_char, c_int, c_uint, c_ulonglong};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nvml_wrapper_sys::bindings::{
    nvmlBAR1Memory_t, nvmlClockType_t, nvmlComputeMode_t, nvmlDevice_t, nvmlDeviceArchitecture_t,
    nvmlEccCounterType_t, nvmlEnableState_t, nvmlEventData_t, nvmlEventSet_t, nvmlFieldValue_t,
    nvmlMemory_t, nvmlMemory_v2_t, nvmlMemoryErrorType_t, nvmlNvLinkErrorCounter_t,
    nvmlPageRetirementCause_t, nvmlPciInfo_t, nvmlProcessInfo_t, nvmlPstates_t, nvmlReturn_t,
    nvmlTemperatureSensors_t, nvmlTemperatureThresholds_t, nvmlUtilization_t, nvmlValue_t,
};

use crate::scenario::{Answer, GpuSpec, LinkSpec, LinkState, ProcessSpec};
use crate::state::{Dev, EventSet, State, lock, set_handle, set_index};

const SUCCESS: nvmlReturn_t = 0;
const UNINITIALIZED: nvmlReturn_t = 1;
const INVALID_ARGUMENT: nvmlReturn_t = 2;
const NOT_SUPPORTED: nvmlReturn_t = 3;
const NOT_FOUND: nvmlReturn_t = 6;
const INSUFFICIENT_SIZE: nvmlReturn_t = 7;
const TIMEOUT: nvmlReturn_t = 10;
const MEMORY: nvmlReturn_t = 20;
const UNKNOWN: nvmlReturn_t = 999;

/// "Not available" in NVML's structures.
const NOT_AVAILABLE_U64: u64 = u64::MAX;
const NO_INSTANCE: u32 = u32::MAX;

type Res<T> = Result<T, nvmlReturn_t>;

/// Writes one value through an output pointer, refusing null.
macro_rules! put {
    ($p:expr, $v:expr) => {{
        let p = $p;
        if p.is_null() {
            Err(INVALID_ARGUMENT)
        } else {
            // SAFETY: NVML's contract: a non-null output pointer points to a writable, aligned
            // value of its type that the caller owns for the duration of the call.
            unsafe { p.write($v) };
            Ok(())
        }
    }};
}

/// Runs an export's body, turning a panic into `NVML_ERROR_UNKNOWN`.
fn guard(f: impl FnOnce() -> Res<()>) -> nvmlReturn_t {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => SUCCESS,
        Ok(Err(code)) => code,
        Err(_) => UNKNOWN,
    }
}

fn opt<T>(v: Option<T>) -> Res<T> {
    v.ok_or(NOT_SUPPORTED)
}

fn answer<T: Copy>(a: &Answer<T>) -> Res<T> {
    a.get().map_err(|e| e.0)
}

fn whole(dev: Dev) -> Res<u32> {
    match dev {
        Dev::Gpu(g) => Ok(g),
        Dev::Mig(..) => Err(NOT_SUPPORTED),
    }
}

fn sleep(d: Duration) {
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

/// A call about one device: checks the handle, applies the scenario's outcome (delay first,
/// outside the lock), then computes the answer.
fn device_call<T>(
    symbol: &str,
    h: nvmlDevice_t,
    f: impl FnOnce(&State, Dev, &GpuSpec) -> Res<T>,
) -> Res<T> {
    let (resolved, value) = {
        let mut guard = lock();
        let st = guard
            .as_mut()
            .filter(|s| s.init_refs > 0)
            .ok_or(UNINITIALIZED)?;
        let dev = Dev::from_handle(h)
            .filter(|d| d.gpu() < st.count())
            .ok_or(INVALID_ARGUMENT)?;
        if let Dev::Mig(g, slot) = dev {
            let exists = st
                .gpu(g)
                .is_some_and(|s| s.mig.instances.iter().any(|m| m.slot == slot));
            if !exists {
                return Err(INVALID_ARGUMENT);
            }
        }
        let r = st.resolve(symbol, Some(dev.gpu()));
        let v = match (r.error, st.gpu(dev.gpu())) {
            (Some(_), _) => Err(UNKNOWN),
            (None, Some(spec)) => f(st, dev, spec),
            (None, None) => Err(INVALID_ARGUMENT),
        };
        (r, v)
    };
    sleep(resolved.delay);
    match resolved.error {
        Some(e) => Err(e),
        None => value,
    }
}

/// A driver-wide call.
fn system_call<T>(symbol: &str, f: impl FnOnce(&mut State) -> Res<T>) -> Res<T> {
    let (resolved, value) = {
        let mut guard = lock();
        let st = guard
            .as_mut()
            .filter(|s| s.init_refs > 0)
            .ok_or(UNINITIALIZED)?;
        let r = st.resolve(symbol, None);
        let v = if r.error.is_some() {
            Err(UNKNOWN)
        } else {
            f(st)
        };
        (r, v)
    };
    sleep(resolved.delay);
    match resolved.error {
        Some(e) => Err(e),
        None => value,
    }
}

/// Copies `s` and a NUL into a caller buffer of `len` bytes.
fn put_str(buf: *mut c_char, len: c_uint, s: &str) -> Res<()> {
    if buf.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    let bytes = s.as_bytes();
    if bytes.len() >= len as usize {
        return Err(INSUFFICIENT_SIZE);
    }
    // SAFETY: NVML's contract: `buf` points to `len` writable bytes; `bytes.len() + 1 <= len`
    // bytes are written, and a Rust string never overlaps a caller's buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), buf, bytes.len());
        buf.add(bytes.len()).write(0);
    }
    Ok(())
}

/// Copies `items` into a caller array of `items.len()` elements (the caller checked capacity).
fn put_all<T: Copy>(p: *mut T, items: &[T]) -> Res<()> {
    if items.is_empty() {
        return Ok(());
    }
    if p.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    // SAFETY: NVML's contract: `p` points to an array whose capacity the caller passed; the
    // caller of this function checked that capacity against `items.len()`.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), p, items.len()) };
    Ok(())
}

/// Copies a string into a fixed C array, NUL-terminated and truncated to fit.
fn c_array<const N: usize>(s: &str) -> [c_char; N] {
    let mut out = [0 as c_char; N];
    for (o, b) in out.iter_mut().zip(s.bytes().take(N.saturating_sub(1))) {
        *o = b as c_char;
    }
    out
}

fn enable(b: bool) -> nvmlEnableState_t {
    u32::from(b)
}

// ---------------------------------------------------------------------------------------------
// Initialisation and the system

fn init(symbol: &str) -> nvmlReturn_t {
    guard(|| {
        let resolved = {
            let mut guard = lock();
            if guard.is_none() {
                *guard = Some(State::new().ok_or(UNKNOWN)?);
            }
            let st = guard.as_mut().ok_or(UNKNOWN)?;
            if st.init_refs == 0 {
                st.reload_if_changed();
            }
            let r = st.resolve(symbol, None);
            if r.error.is_none() {
                if st.init_refs == 0 {
                    st.started = Instant::now();
                }
                st.init_refs += 1;
            }
            r
        };
        sleep(resolved.delay);
        resolved.error.map_or(Ok(()), Err)
    })
}

/// `nvmlInit_v2`: loads the scenario (beside the library, else `$FAKE_NVML_SCENARIO`, else the
/// built-in healthy server) and applies its `nvmlInit_v2` outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlInit_v2() -> nvmlReturn_t {
    init("nvmlInit_v2")
}

/// `nvmlInitWithFlags`: as `nvmlInit_v2`, with its own outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> nvmlReturn_t {
    init("nvmlInitWithFlags")
}

/// `nvmlShutdown`: releases one initialisation.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlShutdown() -> nvmlReturn_t {
    guard(|| {
        let mut guard = lock();
        let st = guard
            .as_mut()
            .filter(|s| s.init_refs > 0)
            .ok_or(UNINITIALIZED)?;
        st.init_refs -= 1;
        Ok(())
    })
}

/// `nvmlErrorString`: NVML's name of a return code.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlErrorString(result: nvmlReturn_t) -> *const c_char {
    let s: &'static std::ffi::CStr = match result {
        0 => c"Success",
        1 => c"Uninitialized",
        2 => c"Invalid Argument",
        3 => c"Not Supported",
        4 => c"Insufficient Permissions",
        6 => c"Not Found",
        7 => c"Insufficient Size",
        9 => c"Driver Not Loaded",
        10 => c"Timeout",
        13 => c"Function Not Found",
        15 => c"GPU is lost",
        16 => c"GPU requires restart",
        18 => c"RM has detected an NVML/RM version mismatch",
        _ => c"Unknown Error",
    };
    s.as_ptr()
}

/// `nvmlSystemGetDriverVersion`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let v = system_call("nvmlSystemGetDriverVersion", |s| {
            opt(s.built.scenario.system.driver_version.clone())
        })?;
        put_str(version, length, &v)
    })
}

/// `nvmlSystemGetNVMLVersion`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetNVMLVersion(
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let v = system_call("nvmlSystemGetNVMLVersion", |s| {
            opt(s.built.scenario.system.nvml_version.clone())
        })?;
        put_str(version, length, &v)
    })
}

fn cuda_version(symbol: &str, out: *mut c_int) -> nvmlReturn_t {
    guard(|| {
        let v = system_call(symbol, |s| opt(s.built.scenario.system.cuda_driver_version))?;
        put!(out, v)
    })
}

/// `nvmlSystemGetCudaDriverVersion`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion(
    cuda_driver_version: *mut c_int,
) -> nvmlReturn_t {
    cuda_version("nvmlSystemGetCudaDriverVersion", cuda_driver_version)
}

/// `nvmlSystemGetCudaDriverVersion_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion_v2(
    cuda_driver_version: *mut c_int,
) -> nvmlReturn_t {
    cuda_version("nvmlSystemGetCudaDriverVersion_v2", cuda_driver_version)
}

fn device_count(symbol: &str, out: *mut c_uint) -> nvmlReturn_t {
    guard(|| {
        {
            // A changed scenario file takes effect from the next snapshot on.
            let mut guard = lock();
            if let Some(st) = guard.as_mut() {
                st.reload_if_changed();
            }
        }
        let n = system_call(symbol, |s| Ok(s.count()))?;
        put!(out, n)
    })
}

/// `nvmlDeviceGetCount_v2`; also picks up a changed scenario file.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(device_count_out: *mut c_uint) -> nvmlReturn_t {
    device_count("nvmlDeviceGetCount_v2", device_count_out)
}

/// `nvmlDeviceGetCount`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCount(device_count_out: *mut c_uint) -> nvmlReturn_t {
    device_count("nvmlDeviceGetCount", device_count_out)
}

fn handle_by_index(symbol: &str, index: c_uint, device: *mut nvmlDevice_t) -> nvmlReturn_t {
    guard(|| {
        let resolved = {
            let mut guard = lock();
            let st = guard
                .as_mut()
                .filter(|s| s.init_refs > 0)
                .ok_or(UNINITIALIZED)?;
            if index >= st.count() {
                return Err(INVALID_ARGUMENT);
            }
            st.resolve(symbol, Some(index))
        };
        sleep(resolved.delay);
        if let Some(e) = resolved.error {
            return Err(e);
        }
        put!(device, Dev::Gpu(index).handle())
    })
}

/// `nvmlDeviceGetHandleByIndex_v2`: the GPU's handle (its `calls` entry under this exact name
/// applies; `"*"` does not).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    handle_by_index("nvmlDeviceGetHandleByIndex_v2", index, device)
}

/// `nvmlDeviceGetHandleByIndex`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    handle_by_index("nvmlDeviceGetHandleByIndex", index, device)
}

/// `nvmlDeviceGetIndex`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetIndex(
    device: nvmlDevice_t,
    index: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let v = device_call("nvmlDeviceGetIndex", device, |_, d, _| whole(d))?;
        put!(index, v)
    })
}

// ---------------------------------------------------------------------------------------------
// Identity

fn mig_instance(spec: &GpuSpec, slot: u32) -> Res<&crate::scenario::MigInstanceSpec> {
    spec.mig
        .instances
        .iter()
        .find(|m| m.slot == slot)
        .ok_or(INVALID_ARGUMENT)
}

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
fn parse_bus_id(s: &str) -> (u32, u32, u32) {
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

// ---------------------------------------------------------------------------------------------
// Simple readings

/// Defines an export `fn(device, *mut T)` that answers `$body` (a `Res<T>` over the GPU spec
/// `$g`) for whole GPUs.
macro_rules! getter {
    ($(#[$doc:meta])* $name:ident, $ty:ty, |$g:ident| $body:expr) => {
        $(#[$doc])*
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(device: nvmlDevice_t, out: *mut $ty) -> nvmlReturn_t {
            guard(|| {
                let v: $ty = device_call(stringify!($name), device, |_, d, $g| {
                    whole(d)?;
                    $body
                })?;
                put!(out, v)
            })
        }
    };
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

// ---------------------------------------------------------------------------------------------
// Memory health

/// `nvmlDeviceGetEccMode`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetEccMode(
    device: nvmlDevice_t,
    current: *mut nvmlEnableState_t,
    pending: *mut nvmlEnableState_t,
) -> nvmlReturn_t {
    guard(|| {
        let m = device_call("nvmlDeviceGetEccMode", device, |_, d, g| {
            whole(d)?;
            opt(g.ecc_mode)
        })?;
        put!(current, enable(m.current))?;
        put!(pending, enable(m.pending))
    })
}

/// `nvmlDeviceGetTotalEccErrors`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTotalEccErrors(
    device: nvmlDevice_t,
    error_type: nvmlMemoryErrorType_t,
    counter_type: nvmlEccCounterType_t,
    ecc_counts: *mut c_ulonglong,
) -> nvmlReturn_t {
    guard(|| {
        let v = device_call("nvmlDeviceGetTotalEccErrors", device, |_, d, g| {
            whole(d)?;
            let e = opt(g.ecc_errors)?;
            let c = match counter_type {
                0 => e.volatile,
                1 => e.aggregate,
                _ => return Err(INVALID_ARGUMENT),
            };
            match error_type {
                0 => Ok(c.corrected),
                1 => Ok(c.uncorrected),
                _ => Err(INVALID_ARGUMENT),
            }
        })?;
        put!(ecc_counts, v)
    })
}

fn retired(
    symbol: &str,
    device: nvmlDevice_t,
    cause: nvmlPageRetirementCause_t,
    count: *mut c_uint,
    addresses: *mut c_ulonglong,
    timestamps: *mut c_ulonglong,
) -> Res<()> {
    let n = device_call(symbol, device, |_, d, g| {
        whole(d)?;
        let r = opt(g.retired_pages)?;
        match cause {
            0 => Ok(r.single_bit),
            1 => Ok(r.double_bit),
            _ => Err(INVALID_ARGUMENT),
        }
    })?;
    if count.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    // SAFETY: NVML's contract: `count` (checked non-null) points to the caller's capacity.
    let cap = unsafe { count.read() };
    put!(count, n)?;
    if cap < n || addresses.is_null() {
        return if n == 0 {
            Ok(())
        } else {
            Err(INSUFFICIENT_SIZE)
        };
    }
    let addrs: Vec<u64> = (0..u64::from(n))
        .map(|k| 0x2_0000_0000 + (u64::from(cause) << 24) + k * 0x1000)
        .collect();
    put_all(addresses, &addrs)?;
    if !timestamps.is_null() {
        let times: Vec<u64> = (0..u64::from(n))
            .map(|k| 1_700_000_000 + k * 3600)
            .collect();
        put_all(timestamps, &times)?;
    }
    Ok(())
}

/// `nvmlDeviceGetRetiredPages`: the count protocol (`INSUFFICIENT_SIZE` with the count when the
/// buffer is too small).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetRetiredPages(
    device: nvmlDevice_t,
    cause: nvmlPageRetirementCause_t,
    page_count: *mut c_uint,
    addresses: *mut c_ulonglong,
) -> nvmlReturn_t {
    guard(|| {
        retired(
            "nvmlDeviceGetRetiredPages",
            device,
            cause,
            page_count,
            addresses,
            std::ptr::null_mut(),
        )
    })
}

/// `nvmlDeviceGetRetiredPages_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetRetiredPages_v2(
    device: nvmlDevice_t,
    cause: nvmlPageRetirementCause_t,
    page_count: *mut c_uint,
    addresses: *mut c_ulonglong,
    timestamps: *mut c_ulonglong,
) -> nvmlReturn_t {
    guard(|| {
        retired(
            "nvmlDeviceGetRetiredPages_v2",
            device,
            cause,
            page_count,
            addresses,
            timestamps,
        )
    })
}

/// `nvmlDeviceGetRemappedRows`, from fields 142-145 of the scenario.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetRemappedRows(
    device: nvmlDevice_t,
    corr_rows: *mut c_uint,
    unc_rows: *mut c_uint,
    is_pending: *mut c_uint,
    failure_occurred: *mut c_uint,
) -> nvmlReturn_t {
    guard(|| {
        let v = device_call("nvmlDeviceGetRemappedRows", device, |_, d, g| {
            whole(d)?;
            let mut out = [0u32; 4];
            for (o, id) in out.iter_mut().zip(142..=145) {
                let n = answer(&opt(g.field(id, 0).cloned())?.map_number())?;
                *o = u32::try_from(n).unwrap_or(u32::MAX);
            }
            Ok(out)
        })?;
        put!(corr_rows, v[0])?;
        put!(unc_rows, v[1])?;
        put!(is_pending, v[2])?;
        put!(failure_occurred, v[3])
    })
}

impl Answer<serde_json::Number> {
    fn map_number(self) -> Answer<u64> {
        match self {
            Answer::Value(n) => Answer::Value(n.as_u64().unwrap_or(0)),
            Answer::Error { error } => Answer::Error { error },
        }
    }
}

/// The answer to one field: the value type, the value, the return code.
fn field_value(spec: &GpuSpec, id: u32, scope: u32) -> (u32, nvmlValue_t, nvmlReturn_t) {
    let zero = nvmlValue_t { ullVal: 0 };
    let given = spec.field(id, scope).cloned().or_else(|| {
        // Field 91 (NVLink link count) follows the link list unless the scenario sets it.
        (id == 91).then(|| {
            spec.nvlinks.as_ref().map(|l| {
                let n = l
                    .iter()
                    .filter(|k| matches!(k.state, LinkState::Up | LinkState::Down))
                    .count();
                Answer::Value(serde_json::Number::from(n as u64))
            })
        })?
    });
    match given {
        None => (3, zero, NOT_SUPPORTED),
        Some(Answer::Error { error }) => (3, zero, error.0),
        Some(Answer::Value(n)) => {
            if let Some(u) = n.as_u64() {
                (3, nvmlValue_t { ullVal: u }, SUCCESS)
            } else if let Some(i) = n.as_i64() {
                (4, nvmlValue_t { sllVal: i }, SUCCESS)
            } else {
                (
                    0,
                    nvmlValue_t {
                        dVal: n.as_f64().unwrap_or(0.0),
                    },
                    SUCCESS,
                )
            }
        }
    }
}

/// `nvmlDeviceGetFieldValues`: each field answers its own value or return code.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetFieldValues(
    device: nvmlDevice_t,
    values_count: c_int,
    values: *mut nvmlFieldValue_t,
) -> nvmlReturn_t {
    guard(|| {
        let n = usize::try_from(values_count).map_err(|_| INVALID_ARGUMENT)?;
        if n > 0 && values.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        let spec = device_call("nvmlDeviceGetFieldValues", device, |_, d, g| {
            whole(d)?;
            Ok(g.clone())
        })?;
        if n == 0 {
            return Ok(());
        }
        // SAFETY: NVML's contract: `values` (checked non-null) points to `values_count`
        // initialised, writable `nvmlFieldValue_t`, owned by the caller for the call.
        let slots = unsafe { std::slice::from_raw_parts_mut(values, n) };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        for v in slots {
            let (kind, value, ret) = field_value(&spec, v.fieldId, v.scopeId);
            v.valueType = kind;
            v.value = value;
            v.nvmlReturn = ret;
            v.timestamp = now;
            v.latencyUsec = 0;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// NVLink

fn link(spec: &GpuSpec, l: c_uint) -> Res<LinkSpec> {
    let links = opt(spec.nvlinks.as_ref())?;
    let k = *links.get(l as usize).ok_or(INVALID_ARGUMENT)?;
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

// ---------------------------------------------------------------------------------------------
// Events

/// `nvmlEventSetCreate`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlEventSetCreate(set: *mut nvmlEventSet_t) -> nvmlReturn_t {
    guard(|| {
        if set.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        let i = system_call("nvmlEventSetCreate", |s| {
            if s.sets.len() >= 256 {
                return Err(MEMORY);
            }
            s.sets.push(EventSet {
                live: true,
                registered: Vec::new(),
            });
            Ok(s.sets.len() - 1)
        })?;
        put!(set, set_handle(i))
    })
}

/// `nvmlEventSetFree`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlEventSetFree(set: nvmlEventSet_t) -> nvmlReturn_t {
    guard(|| {
        let mut guard = lock();
        let st = guard.as_mut().ok_or(UNINITIALIZED)?;
        let s = set_index(set)
            .and_then(|i| st.sets.get_mut(i))
            .filter(|s| s.live)
            .ok_or(INVALID_ARGUMENT)?;
        s.live = false;
        s.registered.clear();
        Ok(())
    })
}

/// `nvmlDeviceRegisterEvents`: `NOT_SUPPORTED` for types outside the GPU's supported events.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceRegisterEvents(
    device: nvmlDevice_t,
    event_types: c_ulonglong,
    set: nvmlEventSet_t,
) -> nvmlReturn_t {
    guard(|| {
        let (gpu, ok) = device_call("nvmlDeviceRegisterEvents", device, |st, d, g| {
            let gpu = whole(d)?;
            let live = set_index(set)
                .and_then(|i| st.sets.get(i))
                .is_some_and(|s| s.live);
            if !live {
                return Err(INVALID_ARGUMENT);
            }
            let supported = opt(g.supported_events)?;
            Ok((gpu, event_types & !supported == 0))
        })?;
        if !ok {
            return Err(NOT_SUPPORTED);
        }
        let mut guard = lock();
        let st = guard.as_mut().ok_or(UNINITIALIZED)?;
        let s = set_index(set)
            .and_then(|i| st.sets.get_mut(i))
            .ok_or(INVALID_ARGUMENT)?;
        s.registered.push((gpu, event_types));
        Ok(())
    })
}

/// What one look at the queue found.
enum Next {
    Deliver(nvmlEventData_t),
    Fail(nvmlReturn_t),
    NotYet(Duration),
    Nothing,
}

fn next_event(st: &mut State, set: usize) -> Next {
    loop {
        let Some(ev) = st.next_event().cloned() else {
            return Next::Nothing;
        };
        let due = st.started + Duration::from_millis(ev.after_ms);
        let now = Instant::now();
        if now < due {
            return Next::NotYet(due - now);
        }
        if let Some(code) = ev.wait_error {
            st.wait_errors_given += 1;
            if st.wait_errors_given >= ev.count.unwrap_or(1) {
                st.cursor += 1;
                st.wait_errors_given = 0;
            }
            return Next::Fail(code.0);
        }
        st.cursor += 1;
        let (Some(gpu), Some(xid)) = (ev.gpu, ev.xid) else {
            continue;
        };
        let kind = ev.event_type.unwrap_or(8);
        let listening = st
            .sets
            .get(set)
            .is_some_and(|s| s.registered.iter().any(|&(g, m)| g == gpu && m & kind != 0));
        if !listening {
            // Nobody registered for it: the driver drops it.
            continue;
        }
        if ev.then_lost
            && let Some(l) = st.lost.get_mut(gpu as usize)
        {
            *l = true;
        }
        return Next::Deliver(nvmlEventData_t {
            device: Dev::Gpu(gpu).handle(),
            eventType: kind,
            eventData: xid,
            gpuInstanceId: ev.gpu_instance.unwrap_or(NO_INSTANCE),
            computeInstanceId: ev.compute_instance.unwrap_or(NO_INSTANCE),
        });
    }
}

/// `nvmlEventSetWait_v2`: the scenario's events in order once due, its wait errors, else
/// `TIMEOUT` after `timeoutms`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlEventSetWait_v2(
    set: nvmlEventSet_t,
    data: *mut nvmlEventData_t,
    timeoutms: c_uint,
) -> nvmlReturn_t {
    guard(|| {
        if data.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        let index = set_index(set).ok_or(INVALID_ARGUMENT)?;
        system_call("nvmlEventSetWait_v2", |st| {
            st.sets
                .get(index)
                .filter(|s| s.live)
                .map(|_| ())
                .ok_or(INVALID_ARGUMENT)
        })?;
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeoutms));
        loop {
            let next = {
                let mut guard = lock();
                let st = guard.as_mut().ok_or(UNINITIALIZED)?;
                next_event(st, index)
            };
            let now = Instant::now();
            match next {
                Next::Deliver(ev) => return put!(data, ev),
                Next::Fail(code) => return Err(code),
                Next::NotYet(d) if now < deadline => {
                    sleep(d.min(deadline - now).min(Duration::from_millis(20)));
                }
                Next::Nothing if now < deadline => {
                    sleep((deadline - now).min(Duration::from_millis(20)));
                }
                Next::NotYet(_) | Next::Nothing => return Err(TIMEOUT),
            }
        }
    })
}

/// Checks every export's signature against the function type `nvml-wrapper-sys` loads it as.
#[allow(dead_code)]
fn signatures_match_nvml_wrapper_sys(lib: &nvml_wrapper_sys::bindings::NvmlLib) {
    fn same<F, E>(_: &Result<F, E>, _: F) {}
    macro_rules! check {
        ($($f:ident),* $(,)?) => { $( same(&lib.$f, $f); )* };
    }
    check!(
        nvmlInit_v2,
        nvmlInitWithFlags,
        nvmlShutdown,
        nvmlErrorString,
        nvmlSystemGetDriverVersion,
        nvmlSystemGetNVMLVersion,
        nvmlSystemGetCudaDriverVersion,
        nvmlSystemGetCudaDriverVersion_v2,
        nvmlDeviceGetCount_v2,
        nvmlDeviceGetHandleByIndex_v2,
        nvmlDeviceGetIndex,
        nvmlDeviceGetName,
        nvmlDeviceGetUUID,
        nvmlDeviceGetSerial,
        nvmlDeviceGetVbiosVersion,
        nvmlDeviceGetPciInfo_v3,
        nvmlDeviceGetArchitecture,
        nvmlDeviceGetCudaComputeCapability,
        nvmlDeviceGetPerformanceState,
        nvmlDeviceGetPowerUsage,
        nvmlDeviceGetPowerManagementLimit,
        nvmlDeviceGetPowerManagementDefaultLimit,
        nvmlDeviceGetEnforcedPowerLimit,
        nvmlDeviceGetCurrentClocksThrottleReasons,
        nvmlDeviceGetCurrentClocksEventReasons,
        nvmlDeviceGetCurrPcieLinkGeneration,
        nvmlDeviceGetMaxPcieLinkGeneration,
        nvmlDeviceGetCurrPcieLinkWidth,
        nvmlDeviceGetMaxPcieLinkWidth,
        nvmlDeviceGetPcieReplayCounter,
        nvmlDeviceGetPersistenceMode,
        nvmlDeviceGetComputeMode,
        nvmlDeviceGetRetiredPagesPendingStatus,
        nvmlDeviceGetSupportedEventTypes,
        nvmlDeviceGetMaxMigDeviceCount,
        nvmlDeviceGetUtilizationRates,
        nvmlDeviceGetMemoryInfo_v2,
        nvmlDeviceGetMemoryInfo,
        nvmlDeviceGetBAR1MemoryInfo,
        nvmlDeviceGetTemperature,
        nvmlDeviceGetTemperatureThreshold,
        nvmlDeviceGetClockInfo,
        nvmlDeviceGetMaxClockInfo,
        nvmlDeviceGetEccMode,
        nvmlDeviceGetTotalEccErrors,
        nvmlDeviceGetRetiredPages,
        nvmlDeviceGetRetiredPages_v2,
        nvmlDeviceGetRemappedRows,
        nvmlDeviceGetFieldValues,
        nvmlDeviceGetNvLinkState,
        nvmlDeviceGetNvLinkErrorCounter,
        nvmlDeviceGetMigMode,
        nvmlDeviceGetMigDeviceHandleByIndex,
        nvmlDeviceIsMigDeviceHandle,
        nvmlDeviceGetDeviceHandleFromMigDeviceHandle,
        nvmlDeviceGetGpuInstanceId,
        nvmlDeviceGetComputeInstanceId,
        nvmlDeviceGetComputeRunningProcesses_v3,
        nvmlDeviceGetGraphicsRunningProcesses_v3,
        nvmlDeviceGetMPSComputeRunningProcesses_v3,
        nvmlEventSetCreate,
        nvmlEventSetFree,
        nvmlDeviceRegisterEvents,
        nvmlEventSetWait_v2,
    );
}

/// The symbols this library exports, for [`crate::FakeNvml`]'s checks.
pub const EXPORTED: &[&str] = &[
    "nvmlInit_v2",
    "nvmlInitWithFlags",
    "nvmlShutdown",
    "nvmlErrorString",
    "nvmlSystemGetDriverVersion",
    "nvmlSystemGetNVMLVersion",
    "nvmlSystemGetCudaDriverVersion",
    "nvmlSystemGetCudaDriverVersion_v2",
    "nvmlDeviceGetCount_v2",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex_v2",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetSerial",
    "nvmlDeviceGetVbiosVersion",
    "nvmlDeviceGetPciInfo_v3",
    "nvmlDeviceGetArchitecture",
    "nvmlDeviceGetCudaComputeCapability",
    "nvmlDeviceGetPerformanceState",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetPowerManagementLimit",
    "nvmlDeviceGetPowerManagementDefaultLimit",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetCurrentClocksThrottleReasons",
    "nvmlDeviceGetCurrentClocksEventReasons",
    "nvmlDeviceGetCurrPcieLinkGeneration",
    "nvmlDeviceGetMaxPcieLinkGeneration",
    "nvmlDeviceGetCurrPcieLinkWidth",
    "nvmlDeviceGetMaxPcieLinkWidth",
    "nvmlDeviceGetPcieReplayCounter",
    "nvmlDeviceGetPersistenceMode",
    "nvmlDeviceGetComputeMode",
    "nvmlDeviceGetRetiredPagesPendingStatus",
    "nvmlDeviceGetSupportedEventTypes",
    "nvmlDeviceGetMaxMigDeviceCount",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetMemoryInfo_v2",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetBAR1MemoryInfo",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetTemperatureThreshold",
    "nvmlDeviceGetClockInfo",
    "nvmlDeviceGetMaxClockInfo",
    "nvmlDeviceGetEccMode",
    "nvmlDeviceGetTotalEccErrors",
    "nvmlDeviceGetRetiredPages",
    "nvmlDeviceGetRetiredPages_v2",
    "nvmlDeviceGetRemappedRows",
    "nvmlDeviceGetFieldValues",
    "nvmlDeviceGetNvLinkState",
    "nvmlDeviceGetNvLinkErrorCounter",
    "nvmlDeviceGetMigMode",
    "nvmlDeviceGetMigDeviceHandleByIndex",
    "nvmlDeviceIsMigDeviceHandle",
    "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
    "nvmlDeviceGetGpuInstanceId",
    "nvmlDeviceGetComputeInstanceId",
    "nvmlDeviceGetComputeRunningProcesses_v3",
    "nvmlDeviceGetGraphicsRunningProcesses_v3",
    "nvmlDeviceGetMPSComputeRunningProcesses_v3",
    "nvmlEventSetCreate",
    "nvmlEventSetFree",
    "nvmlDeviceRegisterEvents",
    "nvmlEventSetWait_v2",
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr::null_mut;

    /// The exports as linked into this test binary: one state, so one test drives them all.
    #[test]
    fn exports_refuse_bad_arguments_instead_of_crashing() {
        // SAFETY: every pointer passed below is null, dangling-by-design as a handle value that
        // is never dereferenced, or points to a live local of the declared type.
        unsafe {
            let mut n: c_uint = 0;
            assert_eq!(nvmlDeviceGetCount_v2(&mut n), UNINITIALIZED);
            assert_eq!(nvmlInit_v2(), SUCCESS);
            assert_eq!(nvmlDeviceGetCount_v2(null_mut()), INVALID_ARGUMENT);
            assert_eq!(nvmlDeviceGetCount_v2(&mut n), SUCCESS);
            assert_eq!(n, 8);
            let mut dev: nvmlDevice_t = null_mut();
            assert_eq!(nvmlDeviceGetHandleByIndex_v2(8, &mut dev), INVALID_ARGUMENT);
            assert_eq!(
                nvmlDeviceGetHandleByIndex_v2(0, null_mut()),
                INVALID_ARGUMENT
            );
            assert_eq!(nvmlDeviceGetHandleByIndex_v2(2, &mut dev), SUCCESS);
            assert!(!dev.is_null());
            let mut idx: c_uint = 0;
            assert_eq!(nvmlDeviceGetIndex(dev, &mut idx), SUCCESS);
            assert_eq!(idx, 2);
            // A handle that is not one of ours.
            let bogus = 0x10 as nvmlDevice_t;
            assert_eq!(nvmlDeviceGetIndex(bogus, &mut idx), INVALID_ARGUMENT);
            assert_eq!(
                nvmlDeviceGetTemperature(dev, 0, null_mut()),
                INVALID_ARGUMENT
            );
            // Strings that do not fit, and null buffers.
            let mut small = [0 as c_char; 4];
            assert_eq!(
                nvmlDeviceGetName(dev, small.as_mut_ptr(), 4),
                INSUFFICIENT_SIZE
            );
            assert_eq!(nvmlDeviceGetName(dev, null_mut(), 96), INVALID_ARGUMENT);
            // Field values: a negative count and a null array.
            assert_eq!(
                nvmlDeviceGetFieldValues(dev, -1, null_mut()),
                INVALID_ARGUMENT
            );
            assert_eq!(
                nvmlDeviceGetFieldValues(dev, 2, null_mut()),
                INVALID_ARGUMENT
            );
            // The process count protocol.
            let mut count: c_uint = 0;
            assert_eq!(
                nvmlDeviceGetComputeRunningProcesses_v3(dev, &mut count, null_mut()),
                SUCCESS
            );
            assert_eq!(count, 0);
            // Event sets.
            let mut set: nvmlEventSet_t = null_mut();
            assert_eq!(nvmlEventSetCreate(&mut set), SUCCESS);
            let mut data: nvmlEventData_t = std::mem::zeroed();
            assert_eq!(nvmlEventSetWait_v2(set, &mut data, 0), TIMEOUT);
            assert_eq!(nvmlEventSetWait_v2(set, null_mut(), 0), INVALID_ARGUMENT);
            assert_eq!(nvmlEventSetFree(set), SUCCESS);
            assert_eq!(nvmlEventSetFree(set), INVALID_ARGUMENT);
            assert_eq!(
                nvmlEventSetWait_v2(0x10 as nvmlEventSet_t, &mut data, 0),
                INVALID_ARGUMENT
            );
            assert_eq!(nvmlShutdown(), SUCCESS);
            assert_eq!(nvmlShutdown(), UNINITIALIZED);
            assert!(!nvmlErrorString(15).is_null());
        }
    }
}
