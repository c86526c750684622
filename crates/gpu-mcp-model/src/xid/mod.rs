//! Xid errors: the catalog of codes, the kernel-log parser, one Xid occurrence, and the status
//! words of the two places Xid evidence comes from (the kernel log and the backend's recorder);
//! and the NVSwitch SXid errors the same parser reads, with their own catalog (`sxid`).

pub mod catalog;
pub mod parse;
mod stamp;
pub mod sxid;

use std::time::SystemTime;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use catalog::{XidInfo, XidSeverity, assess, lookup};
pub use parse::{
    KernelLogParse, KernelLogParser, SxidEvent, XidLine, normalize_pci_bus_id, parse_kernel_log,
    parse_sxid_line, parse_xid_line,
};
pub use sxid::{SxidClass, SxidInfo, lookup_sxid, sxid_always_fatal, sxid_class};

/// Where an Xid event was seen.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum XidSource {
    /// The kernel log (`NVRM: Xid` lines).
    KernelLog,
    /// An NVML critical-Xid event recorded by the agent since it started.
    NvmlEvent,
    /// Simulated by the mock backend's scenario.
    Mock,
}

/// One Xid occurrence.
#[derive(Debug, Clone, PartialEq)]
pub struct XidEvent {
    /// The Xid code.
    pub xid: u32,
    /// Where it was seen.
    pub source: XidSource,
    /// Normalised PCI address (`0000:3b:00.0`), when known.
    pub pci_bus_id: Option<String>,
    /// GPU UUID, when known.
    pub gpu_uuid: Option<String>,
    /// GPU index, when known (NVML events).
    pub gpu_index: Option<u32>,
    /// MIG GPU instance, when the driver attributed it.
    pub gpu_instance: Option<u32>,
    /// MIG compute instance, when the driver attributed it.
    pub compute_instance: Option<u32>,
    /// Process id, when known.
    pub pid: Option<u32>,
    /// Process name, when known.
    pub process_name: Option<String>,
    /// The driver's message.
    pub message: String,
    /// Wall-clock time, when known.
    pub time: Option<SystemTime>,
    /// Time since boot in microseconds (kernel-log records).
    pub uptime_us: Option<u64>,
    /// Inferred from a "fallen off the bus" line that had no Xid line.
    pub implied: bool,
}

/// The outcome of reading the kernel log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KernelLogStatus {
    /// Read completely.
    Ok,
    /// No kernel-log path is configured.
    NotConfigured,
    /// The log exists but may not be read (missing CAP_SYSLOG).
    PermissionDenied,
    /// The path does not exist (for example `/dev/kmsg` is not mounted into the container).
    NotFound,
    /// Reading took longer than the deadline; the events read so far are kept.
    TimedOut,
    /// Another I/O error.
    Error,
}

/// Whether the backend records Xid events while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventRecorderStatus {
    /// Events are being recorded.
    pub active: bool,
    /// One sentence: what is recorded since when, or why nothing is.
    pub detail: String,
    /// When the recorder last heard from the driver (an event or a wait that timed out
    /// normally), RFC 3339; `None` before the first wait or where no recorder runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<String>,
}
