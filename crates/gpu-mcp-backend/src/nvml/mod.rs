//! The real backend: the NVIDIA management library through `nvml-wrapper`.
//!
//! The library is loaded at run time, so the binary builds and starts on machines without a
//! driver; [`NvmlBackend::init`] then fails with one clear sentence. Every NVML call runs on a
//! blocking thread with a deadline. A GPU whose previous read has not returned (a hung driver) is
//! reported `unresponsive` without starting another stuck thread. `nvmlInit` has its own
//! deadline, and start-up opens every GPU once with a longer one (with persistence mode off the
//! driver initialises a GPU on first use, which must not read as a hung GPU). The backend keeps each GPU's previous reading, so cumulative
//! counters are reported with their increase since then ([`CounterChanges`]). A dedicated
//! thread records Xid events into a bounded ring buffer.
//!
//! - `device`: one GPU's read, by field group (`identity`, `memory`, `thermal`, `clocks`,
//!   `pcie`, `nvlink`, `mig`, `processes`, `topology`), with the NVML field-value batch in
//!   `fields`.
//! - `guard`: the deadline and the one-read-per-GPU rule.
//! - `convert`: NVML results and enums to the model's readings and names.
//! - `recorder`: the Xid event thread and its ring buffer.
//! - `raw`: the few NVML facts `nvml-wrapper` does not expose (handle identity, MIG instance
//!   ids, an event's instance ids, an NVLink link's far-end kind, the fabric registration).

mod clocks;
mod convert;
mod device;
mod fields;
mod guard;
mod identity;
mod memory;
mod mig;
mod nvlink;
mod pcie;
mod processes;
mod raw;
mod recorder;
mod thermal;
mod topology;

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use gpu_mcp_model::{
    BackendKind, CounterChanges, EventRecorderStatus, GpuAccess, GpuSnapshot, NodeSnapshot,
    Reading, XidEvent,
};
use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

pub use convert::{decode_clock_event_reasons, reading};
use device::read_gpu_blocking;
use guard::{Guarded, guarded, guarded_read};
use parking_lot::Mutex;
use recorder::{EventRing, spawn_recorder};
use topology::read_pairs;

use crate::backend::GpuBackend;
use crate::{Error, Result};

/// The busy-set key of the step that reads the GPU pairs (never a GPU index).
const PAIRS_KEY: u32 = u32::MAX;

/// The library name `nvml-wrapper` loads by default.
pub const DEFAULT_LIBRARY: &str = "libnvidia-ml.so.1";

/// Options of the NVML backend.
#[derive(Debug, Clone)]
pub struct NvmlOptions {
    /// Path of `libnvidia-ml.so.1`; the dynamic loader's search path when `None`.
    pub library_path: Option<PathBuf>,
    /// Deadline of one GPU's read (all its fields).
    pub call_timeout: Duration,
    /// Deadline of `nvmlInit` (the driver may initialise every GPU).
    pub init_timeout: Duration,
    /// How long start-up waits for the first open of every GPU (with persistence mode off the
    /// driver initialises a GPU on first use, which can take several seconds); GPUs still
    /// opening after it are read, and judged, normally.
    pub open_timeout: Duration,
    /// Record critical-Xid events on a dedicated thread.
    pub record_xid_events: bool,
    /// Most events kept in the ring buffer.
    pub event_buffer: usize,
    /// Where sysfs is mounted: a GPU's NUMA node is read from its PCI device there when NVML
    /// does not report it.
    pub sysfs_root: PathBuf,
}

impl Default for NvmlOptions {
    fn default() -> Self {
        Self {
            library_path: None,
            call_timeout: Duration::from_secs(5),
            init_timeout: Duration::from_secs(60),
            open_timeout: Duration::from_secs(30),
            record_xid_events: true,
            event_buffer: 4096,
            sysfs_root: PathBuf::from("/sys"),
        }
    }
}

/// The NVML backend.
#[derive(Debug)]
pub struct NvmlBackend {
    nvml: Arc<Nvml>,
    timeout: Duration,
    /// GPUs whose read is still running (possibly stuck in the driver).
    busy: Arc<Mutex<HashSet<u32>>>,
    /// Each GPU's previous reading and when it was taken, the baseline of counter increases.
    previous: Mutex<HashMap<u32, Previous>>,
    ring: Arc<EventRing>,
    stop: Arc<AtomicBool>,
    sysfs_root: Arc<PathBuf>,
}

/// What the backend keeps of a GPU's previous reading.
#[derive(Debug)]
struct Previous {
    at: Instant,
    /// The last reading that answered (the counters' baseline).
    readable: Option<GpuSnapshot>,
    /// Whether the last reading answered.
    ok: bool,
}

impl Drop for NvmlBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Maps an `nvml-wrapper` initialisation error to this crate's error.
pub fn init_error(library: &str, e: NvmlError) -> Error {
    match e {
        NvmlError::LibloadingError(l) => Error::NvmlLibraryMissing {
            library: library.to_owned(),
            detail: l.to_string(),
        },
        NvmlError::LibraryNotFound => Error::NvmlLibraryMissing {
            library: library.to_owned(),
            detail: "NVML reports the library was not found".to_owned(),
        },
        NvmlError::LibRmVersionMismatch => Error::NvmlVersionMismatch,
        other => Error::NvmlInit(other),
    }
}

impl NvmlBackend {
    /// Loads the library, initialises NVML (within `init_timeout`) and starts the Xid event
    /// recorder.
    ///
    /// Blocking: call it at start-up (or from a blocking thread). A hung `nvmlInit` keeps its
    /// thread (a call stuck in the driver cannot be cancelled) and fails this call at the
    /// deadline.
    pub fn init(options: NvmlOptions) -> Result<NvmlBackend> {
        let library = options
            .library_path
            .as_ref()
            .map_or_else(|| DEFAULT_LIBRARY.to_owned(), |p| p.display().to_string());
        let (tx, rx) = std::sync::mpsc::channel();
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        let path = options.library_path.clone();
        std::thread::Builder::new()
            .name("nvml-init".to_owned())
            .spawn(move || {
                let r = match &path {
                    Some(p) => Nvml::builder().lib_path(OsStr::new(p.as_os_str())).init(),
                    None => Nvml::init(),
                };
                let nvml = r.map(Arc::new);
                let opener = nvml.as_ref().ok().cloned();
                // The receivers are gone when a deadline passed: nothing to do then.
                let _ = tx.send(nvml);
                if let Some(nvml) = opener {
                    // Open every GPU once; the handles are kept by the library.
                    for i in 0..nvml.device_count().unwrap_or(0) {
                        let _ = nvml.device_by_index(i);
                    }
                    let _ = opened_tx.send(());
                }
            })
            .map_err(|e| Error::Task(format!("cannot start the NVML init thread: {e}")))?;
        let nvml = match rx.recv_timeout(options.init_timeout) {
            Ok(r) => r.map_err(|e| init_error(&library, e))?,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                return Err(Error::NvmlInitTimeout {
                    timeout: options.init_timeout,
                });
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::Task("the NVML init thread failed".to_owned()));
            }
        };
        // Not fatal: a GPU that is still opening is read, and judged, like any other.
        let _ = opened_rx.recv_timeout(options.open_timeout);
        let ring = Arc::new(EventRing::new(options.event_buffer));
        let stop = Arc::new(AtomicBool::new(false));
        if options.record_xid_events {
            spawn_recorder(nvml.clone(), ring.clone(), stop.clone());
        }
        Ok(NvmlBackend {
            nvml,
            timeout: options.call_timeout,
            busy: Arc::new(Mutex::new(HashSet::new())),
            previous: Mutex::new(HashMap::new()),
            ring,
            stop,
            sysfs_root: Arc::new(options.sysfs_root),
        })
    }

    async fn read_node(&self) -> Result<NodeSnapshot> {
        let nvml = self.nvml.clone();
        let task = tokio::task::spawn_blocking(move || {
            (
                nvml.device_count(),
                reading(nvml.sys_driver_version(), &mut GpuAccess::Ok),
                reading(
                    nvml.sys_cuda_driver_version().map(|v| {
                        format!(
                            "{}.{}",
                            nvml_wrapper::cuda_driver_version_major(v),
                            nvml_wrapper::cuda_driver_version_minor(v)
                        )
                    }),
                    &mut GpuAccess::Ok,
                ),
                reading(nvml.sys_nvml_version(), &mut GpuAccess::Ok),
            )
        });
        let (count, driver_version, cuda_driver_version, nvml_version) =
            match tokio::time::timeout(self.timeout, task).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Err(Error::Task(e.to_string())),
                Err(_) => {
                    return Err(Error::Timeout {
                        call: "nvmlDeviceGetCount",
                        timeout: self.timeout,
                    });
                }
            };
        let count = count.map_err(|source| Error::Nvml {
            call: "nvmlDeviceGetCount",
            source,
        })?;
        let reads = (0..count).map(|i| self.read_gpu(i));
        let mut gpus = futures::future::join_all(reads).await;
        self.read_peers(&mut gpus).await;
        self.compare_with_previous(&mut gpus);
        Ok(NodeSnapshot {
            backend: BackendKind::Nvml,
            driver_version,
            cuda_driver_version,
            nvml_version,
            gpus,
        })
    }

    async fn read_gpu(&self, index: u32) -> GpuSnapshot {
        let nvml = self.nvml.clone();
        let sysfs = self.sysfs_root.clone();
        guarded_read(&self.busy, index, self.timeout, move || {
            read_gpu_blocking(&nvml, index, &sysfs)
        })
        .await
    }

    /// Fills every readable GPU's paths to the other GPUs, read in one guarded step of its own
    /// between the GPUs that answered (a GPU's read never waits on another GPU's handle).
    async fn read_peers(&self, gpus: &mut [GpuSnapshot]) {
        let readable: Vec<u32> = gpus
            .iter()
            .filter(|g| g.access == GpuAccess::Ok)
            .map(|g| g.index)
            .collect();
        if readable.is_empty() {
            return;
        }
        let all: Vec<u32> = gpus.iter().map(|g| g.index).collect();
        let nvml = self.nvml.clone();
        let pairs = guarded(&self.busy, PAIRS_KEY, self.timeout, move || {
            read_pairs(&nvml, &readable, &all)
        })
        .await;
        for g in gpus.iter_mut().filter(|g| g.access == GpuAccess::Ok) {
            g.topology.peers = match &pairs {
                Guarded::Done(map) => map.get(&g.index).cloned().map_or_else(
                    || Reading::Error("the GPU could not be opened for its pairs".to_owned()),
                    Reading::Value,
                ),
                other => Reading::Error(other.reason("reading the GPU pairs", self.timeout)),
            };
        }
    }

    /// Fills each GPU's counter increases since its previous reading, keeps this reading as
    /// the next baseline, and asks the Xid recorder to register again when a GPU answers again
    /// after it did not (a reset GPU needs a new registration).
    fn compare_with_previous(&self, gpus: &mut [GpuSnapshot]) {
        let now = Instant::now();
        let mut previous = self.previous.lock();
        let mut came_back = false;
        for g in gpus.iter_mut() {
            let ok = g.access == GpuAccess::Ok;
            let entry = previous.entry(g.index).or_insert(Previous {
                at: now,
                readable: None,
                ok,
            });
            if ok && !entry.ok {
                came_back = true;
            }
            if ok {
                if let Some(before) = &entry.readable {
                    let ms =
                        u64::try_from(now.duration_since(entry.at).as_millis()).unwrap_or(u64::MAX);
                    g.since_previous = CounterChanges::between(before, g, ms);
                }
                let mut keep = g.clone();
                keep.since_previous = None;
                keep.processes = gpu_mcp_model::Reading::NotSupported;
                entry.readable = Some(keep);
                entry.at = now;
            }
            entry.ok = ok;
        }
        if came_back {
            self.ring.reregister.store(true, Ordering::Relaxed);
        }
    }
}

impl GpuBackend for NvmlBackend {
    fn snapshot(&self) -> BoxFuture<'_, Result<NodeSnapshot>> {
        Box::pin(self.read_node())
    }

    fn xid_events(&self) -> Vec<XidEvent> {
        self.ring.events.lock().iter().cloned().collect()
    }

    fn xid_recorder_status(&self) -> EventRecorderStatus {
        self.ring.status.lock().clone()
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Nvml
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_without_the_library_fails_with_one_clear_sentence() {
        let err = NvmlBackend::init(NvmlOptions {
            library_path: Some(PathBuf::from("/nonexistent/libnvidia-ml.so.1")),
            ..NvmlOptions::default()
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::NvmlLibraryMissing { .. }), "{err:?}");
        assert!(msg.contains("/nonexistent/libnvidia-ml.so.1"), "{msg}");
        assert!(msg.contains("could not be loaded"), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn default_init_fails_cleanly_when_no_driver_is_installed() {
        // On a GPU machine the library loads; there is nothing to check then.
        let present = [
            "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
            "/usr/lib64/libnvidia-ml.so.1",
            "/usr/lib/aarch64-linux-gnu/libnvidia-ml.so.1",
        ]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
        match NvmlBackend::init(NvmlOptions::default()) {
            Ok(_) => assert!(present, "NVML loaded although no library was found"),
            Err(e) => assert!(
                matches!(e, Error::NvmlLibraryMissing { .. } | Error::NvmlInit(_)),
                "{e:?}"
            ),
        }
    }
}
