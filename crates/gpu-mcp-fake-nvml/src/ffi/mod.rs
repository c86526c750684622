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
    nvmlGpuInstance_t, nvmlGpuInstanceInfo_t, nvmlGpuInstancePlacement_t, nvmlMemory_t,
    nvmlMemory_v2_t, nvmlMemoryErrorType_t, nvmlNvLinkErrorCounter_t, nvmlPageRetirementCause_t,
    nvmlPciInfo_t, nvmlProcessInfo_t, nvmlPstates_t, nvmlReturn_t, nvmlTemperatureSensors_t,
    nvmlTemperatureThresholds_t, nvmlUtilization_t, nvmlValue_t,
};

use crate::scenario::{Answer, GpuSpec, LinkSpec, LinkState, ProcessSpec};
use crate::state::{Dev, EventSet, State, lock, set_handle, set_index};

const SUCCESS: nvmlReturn_t = 0;
const UNINITIALIZED: nvmlReturn_t = 1;
const INVALID_ARGUMENT: nvmlReturn_t = 2;
const NOT_SUPPORTED: nvmlReturn_t = 3;
const NO_PERMISSION: nvmlReturn_t = 4;
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

/// The MIG device in `slot` of a GPU.
fn mig_instance(spec: &GpuSpec, slot: u32) -> Res<&crate::scenario::MigInstanceSpec> {
    spec.mig
        .instances
        .iter()
        .find(|m| m.slot == slot)
        .ok_or(INVALID_ARGUMENT)
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

mod check;
mod device;
mod events;
mod links;
mod memory;
mod system;
mod topology;

pub use check::EXPORTED;
pub use device::*;
pub use events::*;
pub use links::*;
pub use memory::*;
pub use system::*;
pub use topology::*;

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
