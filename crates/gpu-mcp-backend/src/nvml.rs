//! The real backend: the NVIDIA management library through `nvml-wrapper`.
//!
//! The library is loaded at run time, so the binary builds and starts on machines without a
//! driver; [`NvmlBackend::init`] then fails with one clear sentence. Every NVML call runs on a
//! blocking thread with a deadline. A GPU whose previous read has not returned (a hung driver) is
//! reported `unresponsive` without starting another stuck thread. A dedicated thread records
//! critical-Xid events into a bounded ring buffer.

use std::collections::{HashSet, VecDeque};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::device::ThrottleReasons;
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enum_wrappers::device::{
    Clock, ComputeMode as NvComputeMode, EccCounter, MemoryError, PerformanceState,
    RetirementCause, TemperatureSensor, TemperatureThreshold,
};
use nvml_wrapper::enum_wrappers::nv_link::ErrorCounter;
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::structs::device::FieldId;

use gpu_mcp_model::xid::normalize_pci_bus_id;
use gpu_mcp_model::*;

use crate::backend::GpuBackend;
use crate::{Error, Result};

/// The library name `nvml-wrapper` loads by default.
pub const DEFAULT_LIBRARY: &str = "libnvidia-ml.so.1";

/// Field ids read through `nvmlDeviceGetFieldValues`.
const FI_MEMORY_TEMP: u32 = 82;
const FI_REMAPPED_COR: u32 = 142;
const FI_REMAPPED_UNC: u32 = 143;
const FI_REMAPPED_PENDING: u32 = 144;
const FI_REMAPPED_FAILURE: u32 = 145;
const FI_RECOVERY_ACTION: u32 = 230;
/// Upper bound of NVLink links per GPU in NVML.
const MAX_NVLINKS: u32 = 18;

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

/// Events recorded by the event thread, bounded.
#[derive(Debug)]
struct EventRing {
    cap: usize,
    events: Mutex<VecDeque<XidEvent>>,
    status: Mutex<EventRecorderStatus>,
}

impl EventRing {
    fn push(&self, ev: XidEvent) {
        let mut q = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if q.len() >= self.cap {
            q.pop_front();
        }
        q.push_back(ev);
    }

    fn set_status(&self, active: bool, detail: String) {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) =
            EventRecorderStatus { active, detail };
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
                reading(nvml.sys_driver_version(), &mut false),
                reading(
                    nvml.sys_cuda_driver_version().map(|v| {
                        format!(
                            "{}.{}",
                            nvml_wrapper::cuda_driver_version_major(v),
                            nvml_wrapper::cuda_driver_version_minor(v)
                        )
                    }),
                    &mut false,
                ),
                reading(nvml.sys_nvml_version(), &mut false),
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

/// Runs one GPU's blocking read on a blocking thread with a deadline.
///
/// A read that misses the deadline keeps its thread (a call stuck in the driver cannot be
/// cancelled); until it returns, later reads of the same GPU report `unresponsive` at once
/// instead of piling up more stuck threads.
async fn guarded_read<F>(
    busy: &Arc<Mutex<HashSet<u32>>>,
    index: u32,
    timeout: Duration,
    read: F,
) -> GpuSnapshot
where
    F: FnOnce() -> GpuSnapshot + Send + 'static,
{
    {
        let mut b = busy.lock().unwrap_or_else(PoisonError::into_inner);
        if !b.insert(index) {
            return GpuSnapshot::unreadable(
                index,
                GpuAccess::Unresponsive,
                "an earlier read of this GPU has not returned from the driver; the driver or GPU may be hung",
            );
        }
    }
    let busy = busy.clone();
    let task = tokio::task::spawn_blocking(move || {
        // Cleared when the read returns, even if the driver took longer than the deadline.
        let _guard = BusyGuard { busy, index };
        read()
    });
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(g)) => g,
        Ok(Err(e)) => GpuSnapshot::unreadable(
            index,
            GpuAccess::Error,
            &format!("reading the GPU failed: {e}"),
        ),
        Err(_) => GpuSnapshot::unreadable(
            index,
            GpuAccess::Unresponsive,
            &format!("the driver did not answer within {timeout:?}; the driver or GPU may be hung"),
        ),
    }
}

struct BusyGuard {
    busy: Arc<Mutex<HashSet<u32>>>,
    index: u32,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.busy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.index);
    }
}

impl GpuBackend for NvmlBackend {
    fn snapshot(&self) -> BoxFuture<'_, Result<NodeSnapshot>> {
        Box::pin(self.read_node())
    }

    fn xid_events(&self) -> Vec<XidEvent> {
        self.ring
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    fn xid_recorder_status(&self) -> EventRecorderStatus {
        self.ring
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Nvml
    }
}

/// Converts one NVML result into a [`Reading`], noting a lost GPU in `lost`.
pub fn reading<T>(r: std::result::Result<T, NvmlError>, lost: &mut bool) -> Reading<T> {
    match r {
        Ok(v) => Reading::Value(v),
        Err(NvmlError::NotSupported) => Reading::NotSupported,
        Err(NvmlError::GpuLost) => {
            *lost = true;
            Reading::Error("the GPU is lost (fallen off the bus)".to_owned())
        }
        Err(e) => Reading::Error(e.to_string()),
    }
}

/// Decodes NVML's clock-event (throttle) reason bits.
pub fn decode_clock_event_reasons(bits: ThrottleReasons) -> Vec<ClockEventReason> {
    let table = [
        (ThrottleReasons::GPU_IDLE, ClockEventReason::GpuIdle),
        (
            ThrottleReasons::APPLICATIONS_CLOCKS_SETTING,
            ClockEventReason::ApplicationsClocksSetting,
        ),
        (ThrottleReasons::SW_POWER_CAP, ClockEventReason::SwPowerCap),
        (ThrottleReasons::HW_SLOWDOWN, ClockEventReason::HwSlowdown),
        (ThrottleReasons::SYNC_BOOST, ClockEventReason::SyncBoost),
        (
            ThrottleReasons::SW_THERMAL_SLOWDOWN,
            ClockEventReason::SwThermalSlowdown,
        ),
        (
            ThrottleReasons::HW_THERMAL_SLOWDOWN,
            ClockEventReason::HwThermalSlowdown,
        ),
        (
            ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN,
            ClockEventReason::HwPowerBrakeSlowdown,
        ),
        (
            ThrottleReasons::DISPLAY_CLOCK_SETTING,
            ClockEventReason::DisplayClockSetting,
        ),
    ];
    table
        .into_iter()
        .filter(|(bit, _)| !bit.is_empty() && bits.contains(*bit))
        .map(|(_, r)| r)
        .collect()
}

fn compute_mode(m: NvComputeMode) -> ComputeMode {
    match m {
        NvComputeMode::Default => ComputeMode::Default,
        NvComputeMode::ExclusiveThread => ComputeMode::ExclusiveThread,
        NvComputeMode::Prohibited => ComputeMode::Prohibited,
        NvComputeMode::ExclusiveProcess => ComputeMode::ExclusiveProcess,
    }
}

fn pstate(p: PerformanceState) -> String {
    let n = match p {
        PerformanceState::Zero => 0,
        PerformanceState::One => 1,
        PerformanceState::Two => 2,
        PerformanceState::Three => 3,
        PerformanceState::Four => 4,
        PerformanceState::Five => 5,
        PerformanceState::Six => 6,
        PerformanceState::Seven => 7,
        PerformanceState::Eight => 8,
        PerformanceState::Nine => 9,
        PerformanceState::Ten => 10,
        PerformanceState::Eleven => 11,
        PerformanceState::Twelve => 12,
        PerformanceState::Thirteen => 13,
        PerformanceState::Fourteen => 14,
        PerformanceState::Fifteen => 15,
        PerformanceState::Unknown => return "unknown".to_owned(),
    };
    format!("P{n}")
}

fn sample_u64(v: &SampleValue) -> u64 {
    match *v {
        SampleValue::U32(x) => u64::from(x),
        SampleValue::U64(x) => x,
        SampleValue::I64(x) => x.max(0) as u64,
        SampleValue::F64(x) => x.max(0.0) as u64,
    }
}

fn milliwatts(r: std::result::Result<u32, NvmlError>) -> std::result::Result<f64, NvmlError> {
    r.map(|mw| f64::from(mw) / 1000.0)
}

#[allow(clippy::too_many_lines)]
fn read_gpu_blocking(nvml: &Nvml, index: u32) -> GpuSnapshot {
    let dev = match nvml.device_by_index(index) {
        Ok(d) => d,
        Err(NvmlError::GpuLost) => {
            return GpuSnapshot::unreadable(
                index,
                GpuAccess::Lost,
                "the driver reports the GPU as lost (NVML_ERROR_GPU_IS_LOST)",
            );
        }
        Err(e) => {
            return GpuSnapshot::unreadable(
                index,
                GpuAccess::Error,
                &format!("cannot open the GPU: {e}"),
            );
        }
    };
    let mut lost = false;
    let l = &mut lost;

    // Field values: one driver call for several counters.
    let fields = dev.field_values_for(&[
        FieldId(FI_MEMORY_TEMP),
        FieldId(FI_REMAPPED_COR),
        FieldId(FI_REMAPPED_UNC),
        FieldId(FI_REMAPPED_PENDING),
        FieldId(FI_REMAPPED_FAILURE),
        FieldId(FI_RECOVERY_ACTION),
    ]);
    let field = |i: usize| -> std::result::Result<u64, NvmlError> {
        match &fields {
            Ok(v) => match v.get(i) {
                Some(Ok(s)) => match &s.value {
                    Ok(x) => Ok(sample_u64(x)),
                    Err(e) => Err(clone_err(e)),
                },
                Some(Err(e)) => Err(clone_err(e)),
                None => Err(NvmlError::NotSupported),
            },
            Err(e) => Err(clone_err(e)),
        }
    };
    let row_remapping = (|| -> std::result::Result<RowRemapping, NvmlError> {
        Ok(RowRemapping {
            correctable: field(1)?,
            uncorrectable: field(2)?,
            pending: field(3)? != 0,
            failed: field(4)? != 0,
        })
    })();
    let recovery_action = field(5)
        .and_then(|v| RecoveryAction::from_nvml(v).ok_or(NvmlError::UnexpectedVariant(v as u32)));

    let ecc_counts = |c: EccCounter| -> std::result::Result<EccCounts, NvmlError> {
        Ok(EccCounts {
            corrected: dev.total_ecc_errors(MemoryError::Corrected, c)?,
            uncorrected: dev.total_ecc_errors(MemoryError::Uncorrected, c)?,
        })
    };
    let ecc_mode = dev.is_ecc_enabled();
    let retired = (|| -> std::result::Result<RetiredPages, NvmlError> {
        Ok(RetiredPages {
            single_bit_ecc: dev
                .retired_pages(RetirementCause::MultipleSingleBitEccErrors)?
                .len() as u64,
            double_bit_ecc: dev.retired_pages(RetirementCause::DoubleBitEccError)?.len() as u64,
            pending: dev.are_pages_pending_retired()?,
        })
    })();

    let nvlink = (|| -> std::result::Result<Vec<NvLink>, NvmlError> {
        let mut links = Vec::new();
        for link in 0..MAX_NVLINKS {
            let w = dev.link_wrapper_for(link);
            let active = match w.is_active() {
                Ok(a) => a,
                Err(e) if link == 0 => return Err(e),
                Err(_) => break,
            };
            let mut lost_here = false;
            links.push(NvLink {
                link,
                active,
                replay_errors: reading(w.error_counter(ErrorCounter::DlReplay), &mut lost_here),
                recovery_errors: reading(w.error_counter(ErrorCounter::DlRecovery), &mut lost_here),
                crc_flit_errors: reading(w.error_counter(ErrorCounter::DlCrcFlit), &mut lost_here),
                crc_data_errors: reading(w.error_counter(ErrorCounter::DlCrcData), &mut lost_here),
            });
            if lost_here {
                return Err(NvmlError::GpuLost);
            }
        }
        Ok(links)
    })();

    let mig_mode = dev.mig_mode();
    let mig_enabled = mig_mode.as_ref().map(|m| m.current == 1).unwrap_or(false);
    let instances = match &mig_mode {
        Ok(_) if !mig_enabled => Ok(Vec::new()),
        Ok(_) => dev.mig_device_count().map(|n| {
            (0..n)
                .map(|i| match dev.mig_device_by_index(i) {
                    Ok(m) => {
                        let mut x = false;
                        MigInstance {
                            index: i,
                            uuid: reading(m.uuid(), &mut x),
                            name: reading(m.name(), &mut x),
                            memory_total_bytes: reading(m.memory_info().map(|mi| mi.total), &mut x),
                        }
                    }
                    Err(e) => MigInstance {
                        index: i,
                        uuid: Reading::Error(e.to_string()),
                        name: Reading::Error(e.to_string()),
                        memory_total_bytes: Reading::Error(e.to_string()),
                    },
                })
                .collect()
        }),
        Err(e) => Err(clone_err(e)),
    };

    let mut g = GpuSnapshot {
        index,
        access: GpuAccess::Ok,
        access_detail: None,
        name: reading(dev.name(), l),
        uuid: reading(dev.uuid(), l),
        serial: reading(dev.serial(), l),
        pci_bus_id: reading(dev.pci_info().map(|p| p.bus_id), l),
        architecture: reading(dev.architecture().map(|a| a.to_string()), l),
        compute_capability: reading(
            dev.cuda_compute_capability()
                .map(|c| format!("{}.{}", c.major, c.minor)),
            l,
        ),
        vbios_version: reading(dev.vbios_version(), l),
        memory: reading(
            dev.memory_info().map(|m| MemoryUsage {
                total_bytes: m.total,
                used_bytes: m.used,
                free_bytes: m.free,
            }),
            l,
        ),
        bar1: reading(
            dev.bar1_memory_info().map(|m| MemoryUsage {
                total_bytes: m.total,
                used_bytes: m.used,
                free_bytes: m.free,
            }),
            l,
        ),
        utilization: reading(
            dev.utilization_rates().map(|u| Utilization {
                gpu_percent: u.gpu,
                memory_percent: u.memory,
            }),
            l,
        ),
        performance_state: reading(dev.performance_state().map(pstate), l),
        temperature: Temperature {
            gpu_c: reading(dev.temperature(TemperatureSensor::Gpu), l),
            memory_c: reading(field(0).map(|v| v as u32), l),
            slowdown_c: reading(dev.temperature_threshold(TemperatureThreshold::Slowdown), l),
            shutdown_c: reading(dev.temperature_threshold(TemperatureThreshold::Shutdown), l),
            gpu_max_operating_c: reading(
                dev.temperature_threshold(TemperatureThreshold::GpuMax),
                l,
            ),
            memory_max_operating_c: reading(
                dev.temperature_threshold(TemperatureThreshold::MemoryMax),
                l,
            ),
        },
        power: Power {
            draw_w: reading(milliwatts(dev.power_usage()), l),
            limit_w: reading(milliwatts(dev.power_management_limit()), l),
            default_limit_w: reading(milliwatts(dev.power_management_limit_default()), l),
            enforced_limit_w: reading(milliwatts(dev.enforced_power_limit()), l),
        },
        clocks: Clocks {
            graphics_mhz: reading(dev.clock_info(Clock::Graphics), l),
            sm_mhz: reading(dev.clock_info(Clock::SM), l),
            memory_mhz: reading(dev.clock_info(Clock::Memory), l),
            max_graphics_mhz: reading(dev.max_clock_info(Clock::Graphics), l),
            max_sm_mhz: reading(dev.max_clock_info(Clock::SM), l),
            max_memory_mhz: reading(dev.max_clock_info(Clock::Memory), l),
        },
        clock_event_reasons: reading(
            dev.current_throttle_reasons()
                .map(decode_clock_event_reasons),
            l,
        ),
        ecc: Ecc {
            enabled: reading(
                ecc_mode
                    .as_ref()
                    .map(|m| m.currently_enabled)
                    .map_err(clone_err),
                l,
            ),
            pending_enabled: reading(
                ecc_mode
                    .as_ref()
                    .map(|m| m.pending_enabled)
                    .map_err(clone_err),
                l,
            ),
            volatile: reading(ecc_counts(EccCounter::Volatile), l),
            aggregate: reading(ecc_counts(EccCounter::Aggregate), l),
        },
        retired_pages: reading(retired, l),
        row_remapping: reading(row_remapping, l),
        pcie: Pcie {
            current_generation: reading(dev.current_pcie_link_gen(), l),
            max_generation: reading(dev.max_pcie_link_gen(), l),
            current_width: reading(dev.current_pcie_link_width(), l),
            max_width: reading(dev.max_pcie_link_width(), l),
            replay_counter: reading(dev.pcie_replay_counter().map(u64::from), l),
        },
        nvlink: reading(nvlink, l),
        persistence_mode: reading(dev.is_in_persistent_mode(), l),
        compute_mode: reading(dev.compute_mode().map(compute_mode), l),
        mig: Mig {
            enabled: reading(
                mig_mode.as_ref().map(|m| m.current == 1).map_err(clone_err),
                l,
            ),
            pending_enabled: reading(
                mig_mode.as_ref().map(|m| m.pending == 1).map_err(clone_err),
                l,
            ),
            instances: reading(instances, l),
        },
        recovery_action: reading(recovery_action, l),
        processes: reading(processes(&dev), l),
    };
    if lost {
        g.access = GpuAccess::Lost;
        g.access_detail =
            Some("the driver reports the GPU as lost (NVML_ERROR_GPU_IS_LOST)".to_owned());
    }
    g
}

/// Compute and graphics processes of a device (a process with both appears twice).
fn processes(dev: &nvml_wrapper::Device<'_>) -> std::result::Result<Vec<GpuProcess>, NvmlError> {
    let conv = |p: nvml_wrapper::struct_wrappers::device::ProcessInfo, kind| GpuProcess {
        pid: p.pid,
        kind,
        used_memory_bytes: match p.used_gpu_memory {
            nvml_wrapper::enums::device::UsedGpuMemory::Used(b) => Some(b),
            nvml_wrapper::enums::device::UsedGpuMemory::Unavailable => None,
        },
        gpu_instance: p.gpu_instance_id,
        compute_instance: p.compute_instance_id,
    };
    let mut out: Vec<GpuProcess> = dev
        .running_compute_processes()?
        .into_iter()
        .map(|p| conv(p, ProcessKind::Compute))
        .collect();
    match dev.running_graphics_processes() {
        Ok(g) => out.extend(g.into_iter().map(|p| conv(p, ProcessKind::Graphics))),
        Err(NvmlError::NotSupported) => {}
        Err(e) => return Err(e),
    }
    Ok(out)
}

/// `NvmlError` is not `Clone`; keep the variants that matter for classification.
fn clone_err(e: &NvmlError) -> NvmlError {
    match e {
        NvmlError::NotSupported => NvmlError::NotSupported,
        NvmlError::GpuLost => NvmlError::GpuLost,
        NvmlError::NoPermission => NvmlError::NoPermission,
        NvmlError::Timeout => NvmlError::Timeout,
        NvmlError::InvalidArg => NvmlError::InvalidArg,
        NvmlError::NotFound => NvmlError::NotFound,
        NvmlError::FailedToLoadSymbol(s) => NvmlError::FailedToLoadSymbol(s.clone()),
        NvmlError::UnexpectedVariant(v) => NvmlError::UnexpectedVariant(*v),
        _ => NvmlError::Unknown,
    }
}

/// Starts the thread that waits for critical-Xid events and forwards them into `ring`.
fn spawn_recorder(nvml: Arc<Nvml>, ring: Arc<EventRing>, stop: Arc<AtomicBool>) {
    let r2 = ring.clone();
    let spawned = std::thread::Builder::new()
        .name("nvml-xid-events".to_owned())
        .spawn(move || record_events(&nvml, &ring, &stop));
    if let Err(e) = spawned {
        r2.set_status(false, format!("cannot start the Xid event thread: {e}"));
    }
}

fn record_events(nvml: &Nvml, ring: &EventRing, stop: &AtomicBool) {
    let count = match nvml.device_count() {
        Ok(c) => c,
        Err(e) => {
            ring.set_status(
                false,
                format!("Xid events unavailable: device count failed: {e}"),
            );
            return;
        }
    };
    let mask = EventTypes::CRITICAL_XID_ERROR;
    // Registration consumes the set and frees it on failure: rebuild it then with the devices
    // that did register.
    let mut registered: Vec<u32> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut set = match nvml.create_event_set() {
        Ok(s) => s,
        Err(e) => {
            ring.set_status(false, format!("Xid events unavailable: {e}"));
            return;
        }
    };
    for i in 0..count {
        let supported = nvml
            .device_by_index(i)
            .and_then(|d| d.supported_event_types())
            .map(|t| t.contains(mask))
            .unwrap_or(false);
        if !supported {
            skipped.push(format!("GPU {i}: Xid events not supported"));
            continue;
        }
        let attempt = nvml
            .device_by_index(i)
            .map_err(nvml_wrapper::error::NvmlErrorWithSource::from)
            .and_then(|d| d.register_events(mask, set));
        match attempt {
            Ok(s) => {
                set = s;
                registered.push(i);
            }
            Err(e) => {
                skipped.push(format!("GPU {i}: {}", e.error));
                set = match nvml.create_event_set() {
                    Ok(s) => s,
                    Err(e) => {
                        ring.set_status(false, format!("Xid events unavailable: {e}"));
                        return;
                    }
                };
                let mut again = Vec::new();
                for &j in &registered {
                    match nvml
                        .device_by_index(j)
                        .map_err(nvml_wrapper::error::NvmlErrorWithSource::from)
                        .and_then(|d| d.register_events(mask, set))
                    {
                        Ok(s) => {
                            set = s;
                            again.push(j);
                        }
                        Err(_) => {
                            ring.set_status(false, "Xid event registration failed".to_owned());
                            return;
                        }
                    }
                }
                registered = again;
            }
        }
    }
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
    let mut consecutive_errors = 0u32;
    while !stop.load(Ordering::Relaxed) {
        match set.wait(1000) {
            Ok(data) => {
                consecutive_errors = 0;
                if !data.event_type.contains(mask) {
                    continue;
                }
                let xid = match data.event_data {
                    Some(XidError::Value(v)) => u32::try_from(v).unwrap_or(u32::MAX),
                    Some(XidError::Unknown) | None => 999,
                };
                let pci = data
                    .device
                    .pci_info()
                    .ok()
                    .and_then(|p| normalize_pci_bus_id(&p.bus_id));
                ring.push(XidEvent {
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
                });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hung_read_reports_unresponsive_and_is_not_stacked() {
        let busy = Arc::new(Mutex::new(HashSet::new()));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        // A driver call that hangs until released.
        let first = guarded_read(&busy, 3, Duration::from_millis(50), move || {
            let _ = wait.recv();
            let _ = done_tx.send(());
            GpuSnapshot::unreadable(3, GpuAccess::Ok, "released")
        })
        .await;
        assert_eq!(first.access, GpuAccess::Unresponsive);
        assert!(first.access_detail.unwrap().contains("did not answer"));
        // While it is stuck, the next read does not start another thread.
        let second = guarded_read(&busy, 3, Duration::from_secs(5), || {
            panic!("a second read must not start while the first is stuck")
        })
        .await;
        assert_eq!(second.access, GpuAccess::Unresponsive);
        assert!(second.access_detail.unwrap().contains("earlier read"));
        // Other GPUs are unaffected.
        let other = guarded_read(&busy, 4, Duration::from_secs(5), || {
            GpuSnapshot::unreadable(4, GpuAccess::Ok, "fine")
        })
        .await;
        assert_eq!(other.access, GpuAccess::Ok);
        // Once the driver returns, the GPU is read again.
        release.send(()).unwrap();
        done_rx.recv().unwrap();
        let mut third = None;
        for _ in 0..100 {
            let r = guarded_read(&busy, 3, Duration::from_secs(5), || {
                GpuSnapshot::unreadable(3, GpuAccess::Ok, "again")
            })
            .await;
            if r.access == GpuAccess::Ok {
                third = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            third.is_some(),
            "the GPU stayed marked busy after the read returned"
        );
    }

    #[tokio::test]
    async fn a_panicking_read_is_an_error_not_a_crash() {
        let busy = Arc::new(Mutex::new(HashSet::new()));
        let r = guarded_read(&busy, 0, Duration::from_secs(5), || panic!("driver bug")).await;
        assert_eq!(r.access, GpuAccess::Error);
        assert!(busy.lock().unwrap().is_empty());
    }

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

    #[test]
    fn readings_classify_nvml_errors() {
        let mut lost = false;
        assert_eq!(reading(Ok(3), &mut lost), Reading::Value(3));
        assert_eq!(
            reading::<u32>(Err(NvmlError::NotSupported), &mut lost),
            Reading::NotSupported
        );
        assert!(!lost);
        assert!(matches!(
            reading::<u32>(Err(NvmlError::GpuLost), &mut lost),
            Reading::Error(_)
        ));
        assert!(lost);
        assert!(matches!(
            reading::<u32>(Err(NvmlError::NoPermission), &mut false),
            Reading::Error(e) if e.contains("permission") || !e.is_empty()
        ));
    }

    #[test]
    fn clock_event_reasons_decode_to_names() {
        let bits = ThrottleReasons::HW_SLOWDOWN
            | ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN
            | ThrottleReasons::SW_POWER_CAP;
        assert_eq!(
            decode_clock_event_reasons(bits),
            vec![
                ClockEventReason::SwPowerCap,
                ClockEventReason::HwSlowdown,
                ClockEventReason::HwPowerBrakeSlowdown
            ]
        );
        assert!(decode_clock_event_reasons(ThrottleReasons::NONE).is_empty());
    }

    #[test]
    fn performance_states_and_compute_modes_map() {
        assert_eq!(pstate(PerformanceState::Zero), "P0");
        assert_eq!(pstate(PerformanceState::Eight), "P8");
        assert_eq!(
            compute_mode(NvComputeMode::ExclusiveProcess),
            ComputeMode::ExclusiveProcess
        );
        assert_eq!(sample_u64(&SampleValue::I64(-3)), 0);
        assert_eq!(sample_u64(&SampleValue::U32(7)), 7);
    }
}
