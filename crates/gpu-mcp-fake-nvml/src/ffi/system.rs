//! Initialisation, driver-wide facts, the device count and handles.

use super::*;

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
