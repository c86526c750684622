//! Event sets and the event queue.

use super::*;

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
