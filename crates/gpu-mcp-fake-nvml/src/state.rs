//! The library's state: the scenario in use, handles, call counters, the event queue.
//!
//! One copy of the library holds one state; [`crate::FakeNvml`] gives every test its own copy,
//! so tests in one process never share it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nvml_wrapper_sys::bindings::{nvmlDevice_st, nvmlDevice_t, nvmlEventSet_st, nvmlEventSet_t};
use parking_lot::{Mutex, MutexGuard};

use crate::scenario::{Built, ErrorCode, EventSpec, GpuSpec, MAX_GPUS, MAX_MIG_SLOTS, Scenario};

/// The environment variable naming the scenario file when none lies beside the library.
pub const SCENARIO_ENV: &str = "FAKE_NVML_SCENARIO";

/// The scenario file the library reads from its own directory first.
pub const SIDECAR: &str = "fake-nvml-scenario.json";

/// Most event sets one library copy hands out.
const MAX_SETS: usize = 256;

const MIG_BASE: usize = MAX_GPUS as usize;
const SET_BASE: usize = MIG_BASE + (MAX_GPUS * MAX_MIG_SLOTS) as usize;
const TOKENS: usize = SET_BASE + MAX_SETS;

/// Handles are addresses inside this one object: stable, distinct and never null.
static HANDLE_SPACE: [u8; TOKENS] = [0; TOKENS];

/// What a device handle stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dev {
    /// A whole GPU.
    Gpu(u32),
    /// A MIG device: parent GPU and slot.
    Mig(u32, u32),
}

impl Dev {
    /// The physical GPU.
    pub(crate) fn gpu(self) -> u32 {
        match self {
            Dev::Gpu(g) | Dev::Mig(g, _) => g,
        }
    }

    /// The handle of this device.
    pub(crate) fn handle(self) -> nvmlDevice_t {
        let offset = match self {
            Dev::Gpu(g) => g as usize,
            Dev::Mig(g, s) => MIG_BASE + (g * MAX_MIG_SLOTS + s) as usize,
        };
        HANDLE_SPACE.as_ptr().wrapping_add(offset) as *mut nvmlDevice_st
    }

    /// The device a handle stands for, if it is one of ours.
    pub(crate) fn from_handle(h: nvmlDevice_t) -> Option<Dev> {
        let off = (h as usize).checked_sub(HANDLE_SPACE.as_ptr() as usize)?;
        if off < MIG_BASE {
            Some(Dev::Gpu(off as u32))
        } else if off < SET_BASE {
            let m = (off - MIG_BASE) as u32;
            Some(Dev::Mig(m / MAX_MIG_SLOTS, m % MAX_MIG_SLOTS))
        } else {
            None
        }
    }
}

/// The handle of event set `i`.
pub(crate) fn set_handle(i: usize) -> nvmlEventSet_t {
    HANDLE_SPACE.as_ptr().wrapping_add(SET_BASE + i) as *mut nvmlEventSet_st
}

/// The event set a handle stands for.
pub(crate) fn set_index(h: nvmlEventSet_t) -> Option<usize> {
    let off = (h as usize).checked_sub(HANDLE_SPACE.as_ptr() as usize)?;
    (SET_BASE..TOKENS).contains(&off).then(|| off - SET_BASE)
}

/// Where the scenario came from, to notice when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    File { path: PathBuf, stamp: Option<Stamp> },
    BuiltIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode: m.ino(),
    })
}

/// An event set.
#[derive(Debug, Default)]
pub(crate) struct EventSet {
    pub(crate) live: bool,
    /// Registered GPUs and their event masks.
    pub(crate) registered: Vec<(u32, u64)>,
}

/// The state of one library copy.
#[derive(Debug)]
pub(crate) struct State {
    source: Source,
    pub(crate) built: Built,
    missing: HashSet<String>,
    pub(crate) init_refs: u32,
    pub(crate) started: Instant,
    used: HashMap<(Option<u32>, String), u32>,
    pub(crate) lost: Vec<bool>,
    pub(crate) cursor: usize,
    pub(crate) wait_errors_given: u32,
    pub(crate) sets: Vec<EventSet>,
}

/// What a call does before it answers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Resolved {
    pub(crate) delay: Duration,
    pub(crate) error: Option<u32>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// The state, locked; never held across a delay.
pub(crate) fn lock() -> MutexGuard<'static, Option<State>> {
    STATE.lock()
}

/// The path of this library copy, as the dynamic loader opened it.
fn own_path() -> Option<PathBuf> {
    let mut info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    let addr = HANDLE_SPACE.as_ptr().cast::<libc::c_void>();
    // SAFETY: `addr` is an address inside this library's own static data, and `info` is a
    // valid, writable `Dl_info` that outlives the call.
    let found = unsafe { libc::dladdr(addr, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr succeeded, so `dli_fname` points to the NUL-terminated path of the loaded
    // object, which stays valid while the object is loaded (for the rest of this call).
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    use std::os::unix::ffi::OsStrExt;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes())))
}

/// The scenario file: beside the library, else [`SCENARIO_ENV`], else none (built-in default).
fn scenario_path() -> Option<PathBuf> {
    if let Some(dir) = own_path().as_deref().and_then(Path::parent) {
        let side = dir.join(SIDECAR);
        if side.is_file() {
            return Some(side);
        }
    }
    std::env::var_os(SCENARIO_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn load(path: &Path) -> Option<Built> {
    let text = std::fs::read_to_string(path).ok()?;
    Scenario::from_json(&text).ok()?.build().ok()
}

impl State {
    /// Reads the scenario; `None` when the file named cannot be read or is invalid.
    pub(crate) fn new() -> Option<State> {
        let (source, built) = match scenario_path() {
            Some(path) => {
                let st = stamp(&path);
                let built = load(&path)?;
                (Source::File { path, stamp: st }, built)
            }
            None => (Source::BuiltIn, Scenario::default().build().ok()?),
        };
        let mut s = State {
            source,
            missing: HashSet::new(),
            init_refs: 0,
            started: Instant::now(),
            used: HashMap::new(),
            lost: Vec::new(),
            cursor: 0,
            wait_errors_given: 0,
            sets: Vec::new(),
            built,
        };
        s.adopt();
        Some(s)
    }

    fn adopt(&mut self) {
        self.missing = self
            .built
            .scenario
            .missing_symbols
            .iter()
            .cloned()
            .collect();
        self.lost.resize(self.built.gpus.len(), false);
    }

    /// Re-reads the scenario file when it changed since it was read (tests change the world
    /// between two snapshots this way). The event queue restarts only if it changed.
    pub(crate) fn reload_if_changed(&mut self) {
        let Source::File { path, stamp: old } = &self.source else {
            return;
        };
        let now = stamp(path);
        if now == *old {
            return;
        }
        let path = path.clone();
        if let Some(built) = load(&path) {
            if built.scenario.events != self.built.scenario.events {
                self.cursor = 0;
                self.wait_errors_given = 0;
            }
            self.built = built;
            self.adopt();
        }
        self.source = Source::File { path, stamp: now };
    }

    /// Number of GPUs.
    pub(crate) fn count(&self) -> u32 {
        self.built.gpus.len() as u32
    }

    /// The spec of a GPU.
    pub(crate) fn gpu(&self, g: u32) -> Option<&GpuSpec> {
        self.built.gpus.get(g as usize)
    }

    /// The next event, if any.
    pub(crate) fn next_event(&self) -> Option<&EventSpec> {
        self.built.scenario.events.get(self.cursor)
    }

    /// Decides what `symbol` does for `gpu` (`None`: a driver-wide call), counting the call
    /// against outcomes limited by `times`.
    pub(crate) fn resolve(&mut self, symbol: &str, gpu: Option<u32>) -> Resolved {
        if self.missing.contains(symbol) {
            return Resolved {
                delay: Duration::ZERO,
                error: Some(13), // FUNCTION_NOT_FOUND
            };
        }
        if let Some(g) = gpu {
            if self.lost.get(g as usize).copied().unwrap_or(false) {
                return Resolved {
                    delay: Duration::ZERO,
                    error: Some(ErrorCode::GPU_IS_LOST.0),
                };
            }
            let Some(spec) = self.built.gpus.get(g as usize) else {
                return Resolved {
                    delay: Duration::ZERO,
                    error: Some(ErrorCode::INVALID_ARGUMENT.0),
                };
            };
            let mut keys = vec![symbol];
            if symbol != "nvmlDeviceGetHandleByIndex_v2" && symbol != "nvmlDeviceGetHandleByIndex" {
                keys.push("*");
            }
            for key in keys {
                let Some(o) = spec.calls.get(key) else {
                    continue;
                };
                let used = self.used.entry((gpu, key.to_owned())).or_insert(0);
                if o.times.is_some_and(|t| *used >= t) {
                    continue;
                }
                *used += 1;
                return Resolved {
                    delay: Duration::from_millis(o.delay_ms),
                    error: o.error.map(|e| e.0),
                };
            }
            return Resolved::default();
        }
        if let Some(o) = self.built.scenario.calls.get(symbol) {
            let used = self.used.entry((None, symbol.to_owned())).or_insert(0);
            if o.times.is_none_or(|t| *used < t) {
                *used += 1;
                return Resolved {
                    delay: Duration::from_millis(o.delay_ms),
                    error: o.error.map(|e| e.0),
                };
            }
        }
        Resolved::default()
    }
}
