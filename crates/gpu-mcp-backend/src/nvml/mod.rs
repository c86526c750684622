//! The real backend: the NVIDIA management library through `nvml-wrapper`.
//!
//! The library is loaded at run time, so the binary builds and starts on machines without a
//! driver; [`NvmlBackend::init`] then fails with one clear sentence. Every NVML call runs on a
//! blocking thread with a deadline. A GPU whose previous read has not returned (a hung driver) is
//! reported `unresponsive` without starting another stuck thread. A dedicated thread records
//! critical-Xid events into a bounded ring buffer.
//!
//! - `device`: one GPU's read, by field group (`identity`, `memory`, `thermal`, `clocks`,
//!   `pcie`, `nvlink`, `mig`, `processes`), with the NVML field-value batch in `fields`.
//! - `guard`: the deadline and the one-read-per-GPU rule.
//! - `convert`: NVML results and enums to the model's readings and names.
//! - `recorder`: the Xid event thread and its ring buffer.

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
mod recorder;
mod thermal;

use std::collections::{HashSet, VecDeque};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use gpu_mcp_model::{
    BackendKind, EventRecorderStatus, GpuAccess, GpuSnapshot, NodeSnapshot, XidEvent,
};
use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

pub use convert::{decode_clock_event_reasons, reading};
use device::read_gpu_blocking;
use guard::guarded_read;
use parking_lot::Mutex;
use recorder::{EventRing, spawn_recorder};

use crate::backend::GpuBackend;
use crate::{Error, Result};

/// The library name `nvml-wrapper` loads by default.
pub const DEFAULT_LIBRARY: &str = "libnvidia-ml.so.1";

/// Options of the NVML backend.
#[derive(Debug, Clone)]
pub struct NvmlOptions {
    /// Path of `libnvidia-ml.so.1`; the dynamic loader's search path when `None`.
    pub library_path: Option<PathBuf>,
    /// Deadline of one GPU's read (all its fields).
    pub call_timeout: Duration,
    /// Record critical-Xid events on a dedicated thread.
    pub record_xid_events: bool,
    /// Most events kept in the ring buffer.
    pub event_buffer: usize,
}

impl Default for NvmlOptions {
    fn default() -> Self {
        Self {
            library_path: None,
            call_timeout: Duration::from_secs(5),
            record_xid_events: true,
            event_buffer: 4096,
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
    ring: Arc<EventRing>,
    stop: Arc<AtomicBool>,
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
        other => Error::NvmlInit(other),
    }
}

impl NvmlBackend {
    /// Loads the library, initialises NVML and starts the Xid event recorder.
    ///
    /// Blocking: call it at start-up (or from a blocking thread).
    pub fn init(options: NvmlOptions) -> Result<NvmlBackend> {
        let library = options
            .library_path
            .as_ref()
            .map_or_else(|| DEFAULT_LIBRARY.to_owned(), |p| p.display().to_string());
        let nvml = match &options.library_path {
            Some(p) => Nvml::builder().lib_path(OsStr::new(p.as_os_str())).init(),
            None => Nvml::init(),
        }
        .map_err(|e| init_error(&library, e))?;
        let nvml = Arc::new(nvml);
        let ring = Arc::new(EventRing {
            cap: options.event_buffer.max(1),
            events: Mutex::new(VecDeque::new()),
            status: Mutex::new(EventRecorderStatus {
                active: false,
                detail: "Xid event recording is disabled".to_owned(),
            }),
        });
        let stop = Arc::new(AtomicBool::new(false));
        if options.record_xid_events {
            spawn_recorder(nvml.clone(), ring.clone(), stop.clone());
        }
        Ok(NvmlBackend {
            nvml,
            timeout: options.call_timeout,
            busy: Arc::new(Mutex::new(HashSet::new())),
            ring,
            stop,
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
        let gpus = futures::future::join_all(reads).await;
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
        guarded_read(&self.busy, index, self.timeout, move || {
            read_gpu_blocking(&nvml, index)
        })
        .await
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
