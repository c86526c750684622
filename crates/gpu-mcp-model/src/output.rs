//! Structured results of the GPU tools (their `outputSchema` is generated from these types).

pub use crate::args::{HealthDetail, XidDetail};
pub use crate::inventory::*;
use crate::snapshot::BackendKind;
use crate::xid::{EventRecorderStatus, KernelLogStatus, XidSeverity, XidSource};
use schemars::JsonSchema;
use serde::Serialize;

/// A health verdict, from best to worst.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    serde::Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing to do.
    Healthy,
    /// Needs attention, keeps working.
    Warning,
    /// Works with reduced performance or capacity.
    Degraded,
    /// Needs an operator now: drain, reset, reboot or replace.
    Critical,
}

impl Verdict {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Warning => "warning",
            Self::Degraded => "degraded",
            Self::Critical => "critical",
        }
    }
}

impl From<XidSeverity> for Verdict {
    fn from(s: XidSeverity) -> Self {
        match s {
            XidSeverity::Info => Self::Healthy,
            XidSeverity::Warning => Self::Warning,
            XidSeverity::Critical => Self::Critical,
        }
    }
}

/// One reason behind a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Finding {
    /// The rule that fired (see docs/health-rules.md).
    pub check: String,
    /// How serious it is.
    pub severity: Verdict,
    /// One sentence: what is wrong.
    pub summary: String,
    /// The value observed.
    pub observed: String,
    /// The threshold it was compared with (from the device where NVML provides one).
    pub threshold: String,
    /// What the operator should do.
    pub action: String,
}

/// Counts of GPUs per verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct VerdictCounts {
    /// Healthy GPUs.
    pub healthy: u32,
    /// GPUs with warnings.
    pub warning: u32,
    /// Degraded GPUs.
    pub degraded: u32,
    /// Critical GPUs.
    pub critical: u32,
}

/// Where Xid evidence came from and whether it could be read.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct EvidenceSources {
    /// The kernel log.
    pub kernel_log: KernelLogSource,
    /// Xid events recorded by the backend since the agent started.
    pub recorded_events: EventRecorderStatus,
}

/// How reading the kernel log went.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct KernelLogSource {
    /// Outcome.
    pub status: KernelLogStatus,
    /// The path read, when one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// One sentence explaining a status other than `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Lines (records) examined.
    pub lines: u64,
    /// Lines that mention `NVRM: Xid` but could not be parsed (truncated or garbled).
    pub unparsed_xid_lines: u64,
}

/// Health of one GPU.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct GpuHealth {
    /// GPU index.
    pub index: u32,
    /// The worst severity among the reasons (`healthy` when there are none).
    pub verdict: Verdict,
    /// GPU UUID, when readable.
    pub uuid: Option<String>,
    /// Product name, when readable.
    pub name: Option<String>,
    /// PCI bus id, when readable.
    pub pci_bus_id: Option<String>,
    /// Every reason, worst first.
    pub reasons: Vec<Finding>,
    /// Context that does not change the verdict.
    pub notes: Vec<String>,
    /// Checks that could not run because the field is not supported or not readable.
    pub not_checked: Vec<String>,
    /// The GPU's MIG devices with their processes and holders, when MIG is enabled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mig_devices: Vec<crate::processes::MigDeviceProcesses>,
}

/// Result of `get_gpu_health`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct HealthReport {
    /// The node's verdict: the worst of its GPUs and node-level findings.
    pub verdict: Verdict,
    /// One-paragraph summary: the verdict and the reason of every GPU that is not healthy.
    pub summary: String,
    /// Kubernetes node name.
    pub node: String,
    /// Backend that read the GPUs.
    pub backend: BackendKind,
    /// GPUs per verdict.
    pub counts: VerdictCounts,
    /// Xid events at or after this time counted (RFC 3339).
    pub xid_since: String,
    /// Evidence sources.
    pub sources: EvidenceSources,
    /// Findings that belong to the node rather than one GPU (for example an Xid from a GPU the
    /// driver no longer lists, or an NVSwitch's SXid errors); asked about one GPU, the NVSwitch
    /// findings about a switch its NVLinks are not known to go through.
    pub node_findings: Vec<Finding>,
    /// Per-GPU health.
    pub gpus: Vec<GpuHealth>,
    /// What the answer lists when it is not every GPU and finding (`problems`: the GPUs and
    /// findings at or above `min_verdict`; `summary`: none); absent in a full answer. `counts`
    /// and `verdict` always cover every GPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "HealthDetail")]
    pub detail: Option<HealthDetail>,
    /// With `detail: problems`, the mildest verdict listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Verdict")]
    pub min_verdict: Option<Verdict>,
}

/// Xid events of one code on one GPU.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct XidGroup {
    /// GPU index, when the event could be attributed.
    pub gpu_index: Option<u32>,
    /// GPU UUID, when known.
    pub gpu_uuid: Option<String>,
    /// PCI address (`0000:3b:00.0`), when known.
    pub pci_bus_id: Option<String>,
    /// The Xid code.
    pub xid: u32,
    /// False when the code is not in the catalog.
    pub known: bool,
    /// NVIDIA's mnemonic.
    pub mnemonic: String,
    /// Short name.
    pub name: String,
    /// Cause category.
    pub category: String,
    /// Severity (the worst of the group's events).
    pub severity: XidSeverity,
    /// Usually caused by the application rather than the hardware.
    pub application_error: bool,
    /// What the operator should do.
    pub action: String,
    /// Number of events.
    pub count: u32,
    /// First occurrence (RFC 3339), when known.
    pub first_seen: Option<String>,
    /// Last occurrence (RFC 3339), when known.
    pub last_seen: Option<String>,
    /// Where the events were seen.
    pub sources: Vec<XidSource>,
    /// The driver's message of the last event.
    pub last_message: String,
}

/// One Xid event.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct XidRecord {
    /// When it happened (RFC 3339), when known.
    pub time: Option<String>,
    /// Seconds since boot, from the kernel log.
    pub uptime_seconds: Option<f64>,
    /// GPU index, when attributed.
    pub gpu_index: Option<u32>,
    /// GPU UUID, when known.
    pub gpu_uuid: Option<String>,
    /// PCI address (`0000:3b:00.0`), when known.
    pub pci_bus_id: Option<String>,
    /// MIG GPU instance, when the driver attributed one.
    pub gpu_instance: Option<u32>,
    /// MIG compute instance, when the driver attributed one.
    pub compute_instance: Option<u32>,
    /// The Xid code.
    pub xid: u32,
    /// Short name from the catalog.
    pub name: String,
    /// Severity.
    pub severity: XidSeverity,
    /// Where it was seen.
    pub sources: Vec<XidSource>,
    /// Process id, when known.
    pub pid: Option<u32>,
    /// Process name, when known.
    pub process_name: Option<String>,
    /// The container the process runs in, when it still runs there (its cgroup names a pod) or
    /// the allocation never changes (the mock fleet's); an event older than the GPU's current
    /// allocation names none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<crate::pods::PodRef>,
    /// The driver's message.
    pub message: String,
    /// Inferred from a "fallen off the bus" line without an Xid line.
    pub implied: bool,
}

/// Result of `analyze_xid_errors`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct XidReport {
    /// One-paragraph summary: how many events, and the worst group with its action.
    pub summary: String,
    /// Kubernetes node name.
    pub node: String,
    /// Events at or after this time were considered (RFC 3339); everything when absent.
    pub since: Option<String>,
    /// Evidence sources.
    pub sources: EvidenceSources,
    /// Events matching the filters.
    pub total_events: u32,
    /// Events listed in `events`.
    pub returned_events: u32,
    /// More events matched than `limit` allowed to list.
    pub truncated: bool,
    /// Events grouped per GPU and code, worst first.
    pub groups: Vec<XidGroup>,
    /// Individual events, newest first.
    pub events: Vec<XidRecord>,
    /// NVSwitch SXid errors in the same window (absent when there are none).
    #[serde(skip_serializing_if = "NvSwitchErrors::is_empty")]
    pub nvswitch: NvSwitchErrors,
    /// `summary` when the answer left out the individual events that matched (it lists groups
    /// and counts only); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "XidDetail")]
    pub detail: Option<XidDetail>,
}

/// SXid errors of one code, as fatal or non-fatal, on one NVSwitch.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SxidGroup {
    /// The switch device, e.g. `nvidia-nvswitch3`, when the line names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch: Option<String>,
    /// The NVSwitch instance (`3` for `nvidia-nvswitch3`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<u32>,
    /// The NVSwitch's PCI address (`0000:c1:00.0`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    /// The SXid code.
    pub sxid: u32,
    /// False when the code is not in the SXid catalog.
    pub known: bool,
    /// NVIDIA's name for the code.
    pub name: String,
    /// Whether these occurrences are fatal: the driver's word on the line, or always for a code
    /// NVIDIA's Fabric Manager guide calls always fatal.
    pub fatal: bool,
    /// NVIDIA's Fabric Manager guide calls the code fatal to the entire fabric whatever the
    /// line's own word.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub always_fatal: bool,
    /// `critical` for fatal, `warning` for non-fatal.
    pub severity: XidSeverity,
    /// What the operator should do.
    pub action: String,
    /// Number of events.
    pub count: u32,
    /// The NVSwitch ports (links) named, lowest first (at most 16).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<u32>,
    /// First occurrence (RFC 3339), when known.
    pub first_seen: Option<String>,
    /// Last occurrence (RFC 3339), when known.
    pub last_seen: Option<String>,
    /// The driver's message of the last event.
    pub last_message: String,
}

/// The NVSwitch SXid errors of an answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct NvSwitchErrors {
    /// SXid events in the window.
    pub total_events: u32,
    /// Of them, the fatal ones (the driver's word, or an always-fatal code).
    pub fatal_events: u32,
    /// More groups matched than are listed.
    pub truncated: bool,
    /// Events grouped per NVSwitch, code and fatality, newest first.
    pub groups: Vec<SxidGroup>,
}

impl NvSwitchErrors {
    /// No SXid event at all.
    pub fn is_empty(&self) -> bool {
        self.total_events == 0
    }
}
