//! Xid errors: the catalog of codes, the kernel-log parser, and the `/dev/kmsg` reader.

pub mod catalog;
mod kmsg;
pub mod parse;

use std::time::SystemTime;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use catalog::{XidInfo, XidSeverity, assess, lookup};
pub use kmsg::{KernelLogRead, KernelLogStatus, KmsgReader};
pub use parse::{
    KernelLogParse, KernelLogParser, XidLine, normalize_pci_bus_id, parse_kernel_log,
    parse_xid_line,
};

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
    /// Normalised PCI address (`0000:3b:00`), when known.
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
