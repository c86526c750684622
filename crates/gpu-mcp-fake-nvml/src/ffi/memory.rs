//! Memory health: ECC, retired pages, remapped rows and field values.

use super::*;

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
