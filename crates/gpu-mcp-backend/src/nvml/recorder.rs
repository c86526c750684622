//! The Xid event recorder: a dedicated thread waits for NVML Xid events and keeps the newest in
//! a bounded ring buffer.
//!
//! Each GPU's identity (index, UUID, PCI address) is taken when it registers, keyed by its
//! device handle: an event names its GPU by handle, and the GPU of an Xid 79 has fallen off
//! the bus and can no longer be asked who it is. The event's MIG GPU and compute instance ids
//! are kept. Every wait that returns (an event or a normal timeout) is a heartbeat; after
//! repeated wait failures, or when asked (a GPU that came back after a reset), the recorder
//! builds a new event set and registers every GPU again, and its status recovers with the
//! first wait that works.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use gpu_mcp_model::xid::normalize_pci_bus_id;
use gpu_mcp_model::{EventRecorderStatus, XidEvent, XidSource};
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::error::{NvmlError, NvmlErrorWithSource};
use nvml_wrapper::{EventSet, Nvml};
use parking_lot::Mutex;

use super::raw::{self, RawEvent};

/// Consecutive failed waits before the recorder says so and registers again.
const FAILURES_BEFORE_RESET: u32 = 10;

/// Events recorded by the event thread, bounded, and the signals between the thread and the
/// backend.
#[derive(Debug)]
pub(super) struct EventRing {
    pub(super) cap: usize,
    pub(super) events: Mutex<VecDeque<XidEvent>>,
    pub(super) status: Mutex<EventRecorderStatus>,
    /// Set by the backend when the recorder should register every GPU again.
    pub(super) reregister: AtomicBool,
}

impl EventRing {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            events: Mutex::new(VecDeque::new()),
            status: Mutex::new(EventRecorderStatus {
                active: false,
                detail: "Xid event recording is disabled".to_owned(),
                heartbeat: None,
            }),
            reregister: AtomicBool::new(false),
        }
    }

    fn push(&self, ev: XidEvent) {
        let mut q = self.events.lock();
        if q.len() >= self.cap {
            q.pop_front();
        }
        q.push_back(ev);
    }

    fn set_status(&self, active: bool, detail: String) {
        let mut s = self.status.lock();
        s.active = active;
        s.detail = detail;
    }

    fn heartbeat(&self, active_detail: &str) {
        let mut s = self.status.lock();
        s.heartbeat = Some(gpu_mcp_model::time::format_rfc3339(SystemTime::now()));
        if !s.active {
            s.active = true;
            active_detail.clone_into(&mut s.detail);
        }
    }
}

/// Starts the thread that waits for Xid events and forwards them into `ring`.
pub(super) fn spawn_recorder(nvml: Arc<Nvml>, ring: Arc<EventRing>, stop: Arc<AtomicBool>) {
    let r2 = ring.clone();
    let spawned = std::thread::Builder::new()
        .name("nvml-xid-events".to_owned())
        .spawn(move || record_events(&nvml, &ring, &stop));
    if let Err(e) = spawned {
        r2.set_status(false, format!("cannot start the Xid event thread: {e}"));
    }
}

/// Who a GPU is, taken when it registered.
#[derive(Debug, Clone)]
struct Identity {
    index: u32,
    uuid: Option<String>,
    pci_bus_id: Option<String>,
}

fn record_events(nvml: &Nvml, ring: &EventRing, stop: &AtomicBool) {
    let since = gpu_mcp_model::time::format_rfc3339(SystemTime::now());
    // Identities by device handle; kept across registrations, so a GPU that is lost and can no
    // longer register still names its late events.
    let mut known: HashMap<usize, Identity> = HashMap::new();
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        ring.reregister.store(false, Ordering::Relaxed);
        let Some(Registered {
            set,
            registered,
            skipped,
        }) = register(nvml, ring, &mut known)
        else {
            // Events unavailable right now (the status says why): try again later.
            pause(stop, Duration::from_secs(30));
            continue;
        };
        if registered.is_empty() {
            ring.set_status(
                false,
                format!("no GPU supports Xid events ({})", skipped.join("; ")),
            );
            pause(stop, Duration::from_secs(30));
            continue;
        }
        let mut detail = format!(
            "recording Xid events of {} GPU(s) since {since}",
            registered.len()
        );
        if !skipped.is_empty() {
            detail.push_str(&format!(" (not recorded: {})", skipped.join("; ")));
        }
        // A registration after failures stays inactive until a wait works (the heartbeat).
        if first || ring.status.lock().active {
            ring.set_status(true, detail.clone());
        }
        first = false;
        wait_for_events(nvml, &set, ring, stop, &known, &detail);
    }
}

/// Sleeps up to `total`, waking early when stopped or asked to register again.
fn pause(stop: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(100);
    let mut waited = Duration::ZERO;
    while waited < total && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        waited += step;
    }
}

/// The event set with every GPU that registered, and why the others did not.
struct Registered<'nvml> {
    set: EventSet<'nvml>,
    registered: Vec<u32>,
    skipped: Vec<String>,
}

/// Registers every GPU that supports Xid events, noting each one's identity in `known`; `None`
/// (with the ring's status set) when events are unavailable altogether.
fn register<'nvml>(
    nvml: &'nvml Nvml,
    ring: &EventRing,
    known: &mut HashMap<usize, Identity>,
) -> Option<Registered<'nvml>> {
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
        let dev = match nvml.device_by_index(i) {
            Ok(d) => d,
            Err(e) => {
                skipped.push(format!("GPU {i}: {e}"));
                continue;
            }
        };
        known.insert(
            raw::handle_key(&dev),
            Identity {
                index: i,
                uuid: dev.uuid().ok(),
                pci_bus_id: dev
                    .pci_info()
                    .ok()
                    .and_then(|p| normalize_pci_bus_id(&p.bus_id)),
            },
        );
        let supported = dev
            .supported_event_types()
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

/// NVML delivers every Xid, critical or not, as this event type.
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

/// Forwards events into `ring` until `stop` is set, the waits keep failing, or the backend
/// asks for a new registration.
fn wait_for_events(
    nvml: &Nvml,
    set: &EventSet<'_>,
    ring: &EventRing,
    stop: &AtomicBool,
    known: &HashMap<usize, Identity>,
    active_detail: &str,
) {
    let mut consecutive_errors = 0u32;
    while !stop.load(Ordering::Relaxed) && !ring.reregister.load(Ordering::Relaxed) {
        match raw::wait(set, nvml, 1000) {
            Ok(data) => {
                consecutive_errors = 0;
                ring.heartbeat(active_detail);
                if data.event_type & MASK.bits() != 0 {
                    ring.push(xid_event(&data, known));
                }
            }
            Err(NvmlError::Timeout) => {
                consecutive_errors = 0;
                ring.heartbeat(active_detail);
            }
            Err(e) => {
                consecutive_errors += 1;
                if consecutive_errors >= FAILURES_BEFORE_RESET {
                    ring.set_status(
                        false,
                        format!(
                            "Xid event wait keeps failing ({e}); events may be missed; registering the GPUs again"
                        ),
                    );
                    std::thread::sleep(Duration::from_millis(500));
                    return;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

fn xid_event(data: &RawEvent, known: &HashMap<usize, Identity>) -> XidEvent {
    let xid = u32::try_from(data.data).unwrap_or(u32::MAX);
    let who = known.get(&data.device);
    XidEvent {
        xid,
        source: XidSource::NvmlEvent,
        pci_bus_id: who.and_then(|w| w.pci_bus_id.clone()),
        gpu_uuid: who.and_then(|w| w.uuid.clone()),
        gpu_index: who.map(|w| w.index),
        gpu_instance: data.gpu_instance,
        compute_instance: data.compute_instance,
        pid: None,
        process_name: None,
        message: String::new(),
        time: Some(SystemTime::now()),
        uptime_us: None,
        implied: false,
    }
}
