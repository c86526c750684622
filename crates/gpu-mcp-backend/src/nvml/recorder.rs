//! The Xid event recorder: a dedicated thread waits for NVML critical-Xid events and keeps the
//! newest in a bounded ring buffer.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use gpu_mcp_model::xid::normalize_pci_bus_id;
use gpu_mcp_model::{EventRecorderStatus, XidEvent, XidSource};
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::{NvmlError, NvmlErrorWithSource};
use nvml_wrapper::struct_wrappers::event::EventData;
use nvml_wrapper::{EventSet, Nvml};
use parking_lot::Mutex;

/// Events recorded by the event thread, bounded.
#[derive(Debug)]
pub(super) struct EventRing {
    pub(super) cap: usize,
    pub(super) events: Mutex<VecDeque<XidEvent>>,
    pub(super) status: Mutex<EventRecorderStatus>,
}

impl EventRing {
    fn push(&self, ev: XidEvent) {
        let mut q = self.events.lock();
        if q.len() >= self.cap {
            q.pop_front();
        }
        q.push_back(ev);
    }

    fn set_status(&self, active: bool, detail: String) {
        *self.status.lock() = EventRecorderStatus { active, detail };
    }
}

/// Starts the thread that waits for critical-Xid events and forwards them into `ring`.
pub(super) fn spawn_recorder(nvml: Arc<Nvml>, ring: Arc<EventRing>, stop: Arc<AtomicBool>) {
    let r2 = ring.clone();
    let spawned = std::thread::Builder::new()
        .name("nvml-xid-events".to_owned())
        .spawn(move || record_events(&nvml, &ring, &stop));
    if let Err(e) = spawned {
        r2.set_status(false, format!("cannot start the Xid event thread: {e}"));
    }
}

fn record_events(nvml: &Nvml, ring: &EventRing, stop: &AtomicBool) {
    let Some(Registered {
        set,
        registered,
        skipped,
    }) = register(nvml, ring)
    else {
        return;
    };
    if registered.is_empty() {
        ring.set_status(
            false,
            format!("no GPU supports Xid events ({})", skipped.join("; ")),
        );
        return;
    }
    let since = gpu_mcp_model::time::format_rfc3339(SystemTime::now());
    let mut detail = format!(
        "recording critical Xid events of {} GPU(s) since {since}",
        registered.len()
    );
    if !skipped.is_empty() {
        detail.push_str(&format!(" (not recorded: {})", skipped.join("; ")));
    }
    ring.set_status(true, detail);
    wait_for_events(&set, ring, stop);
}

/// The event set with every GPU that registered, and why the others did not.
struct Registered<'nvml> {
    set: EventSet<'nvml>,
    registered: Vec<u32>,
    skipped: Vec<String>,
}

/// Registers every GPU that supports critical-Xid events; `None` (with the ring's status set)
/// when events are unavailable altogether.
fn register<'nvml>(nvml: &'nvml Nvml, ring: &EventRing) -> Option<Registered<'nvml>> {
    let count = match nvml.device_count() {
        Ok(c) => c,
        Err(e) => {
            ring.set_status(
                false,
                format!("Xid events unavailable: device count failed: {e}"),
            );
            return None;
        }
    };
    // Registration consumes the set and frees it on failure: rebuild it then with the devices
    // that did register.
    let mut registered: Vec<u32> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut set = new_set(nvml, ring)?;
    for i in 0..count {
        let supported = nvml
            .device_by_index(i)
            .and_then(|d| d.supported_event_types())
            .map(|t| t.contains(MASK))
            .unwrap_or(false);
        if !supported {
            skipped.push(format!("GPU {i}: Xid events not supported"));
            continue;
        }
        match register_one(nvml, i, set) {
            Ok(s) => {
                set = s;
                registered.push(i);
            }
            Err(e) => {
                skipped.push(format!("GPU {i}: {}", e.error));
                set = new_set(nvml, ring)?;
                let mut again = Vec::new();
                for &j in &registered {
                    match register_one(nvml, j, set) {
                        Ok(s) => {
                            set = s;
                            again.push(j);
                        }
                        Err(_) => {
                            ring.set_status(false, "Xid event registration failed".to_owned());
                            return None;
                        }
                    }
                }
                registered = again;
            }
        }
    }
    Some(Registered {
        set,
        registered,
        skipped,
    })
}

const MASK: EventTypes = EventTypes::CRITICAL_XID_ERROR;

fn new_set<'nvml>(nvml: &'nvml Nvml, ring: &EventRing) -> Option<EventSet<'nvml>> {
    match nvml.create_event_set() {
        Ok(s) => Some(s),
        Err(e) => {
            ring.set_status(false, format!("Xid events unavailable: {e}"));
            None
        }
    }
}

fn register_one<'nvml>(
    nvml: &'nvml Nvml,
    index: u32,
    set: EventSet<'nvml>,
) -> Result<EventSet<'nvml>, NvmlErrorWithSource> {
    nvml.device_by_index(index)
        .map_err(NvmlErrorWithSource::from)
        .and_then(|d| d.register_events(MASK, set))
}

/// Forwards events into `ring` until `stop` is set.
fn wait_for_events(set: &EventSet<'_>, ring: &EventRing, stop: &AtomicBool) {
    let mut consecutive_errors = 0u32;
    while !stop.load(Ordering::Relaxed) {
        match set.wait(1000) {
            Ok(data) => {
                consecutive_errors = 0;
                if data.event_type.contains(MASK) {
                    ring.push(xid_event(&data));
                }
            }
            Err(NvmlError::Timeout) => consecutive_errors = 0,
            Err(e) => {
                consecutive_errors += 1;
                if consecutive_errors == 10 {
                    ring.set_status(
                        false,
                        format!("Xid event wait keeps failing ({e}); events may be missed"),
                    );
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

fn xid_event(data: &EventData<'_>) -> XidEvent {
    let xid = match data.event_data {
        Some(XidError::Value(v)) => u32::try_from(v).unwrap_or(u32::MAX),
        Some(XidError::Unknown) | None => 999,
    };
    let pci = data
        .device
        .pci_info()
        .ok()
        .and_then(|p| normalize_pci_bus_id(&p.bus_id));
    XidEvent {
        xid,
        source: XidSource::NvmlEvent,
        pci_bus_id: pci,
        gpu_uuid: data.device.uuid().ok(),
        gpu_index: data.device.index().ok(),
        gpu_instance: None,
        compute_instance: None,
        pid: None,
        process_name: None,
        message: String::new(),
        time: Some(SystemTime::now()),
        uptime_us: None,
        implied: false,
    }
}
