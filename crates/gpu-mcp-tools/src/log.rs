//! What the agent tells its clients' logs (`notifications/message`) about its own sources: a
//! GPU that cannot be read or does not answer in time, a kernel log that became unreadable, an
//! NVML Xid event recorder that stopped, and each of them coming back.
//!
//! The catalog hands every snapshot and every set of evidence sources it gathers to
//! [`AgentLog`], which speaks only when a source changes state (a GPU that stays unresponsive
//! is reported once, not on every call) and writes through a [`ThrottledLog`], so a GPU or a
//! file that flaps costs a client at most one record per source per interval.

use std::collections::HashMap;

use gpu_mcp_model::output::EvidenceSources;
use gpu_mcp_model::{GpuAccess, KernelLogStatus, NodeSnapshot};
use gpu_mcp_protocol::mcp::LoggingLevel;
use gpu_mcp_service::ThrottledLog;
use parking_lot::Mutex;
use serde_json::{Value, json};

/// Logger name of GPU records.
const GPU_LOGGER: &str = "gpu";
/// Logger name of Xid source records.
const XID_LOGGER: &str = "xid";

/// Turns the state of the agent's sources into log records; silent without a log.
#[derive(Debug, Default)]
pub(crate) struct AgentLog {
    log: Option<ThrottledLog>,
    seen: Mutex<Seen>,
}

/// The last state seen of each source.
#[derive(Debug, Default)]
struct Seen {
    /// The last snapshot failed as a whole.
    snapshot_failed: bool,
    /// GPUs whose last reading was not `ok`, and how.
    gpus: HashMap<u32, GpuAccess>,
    /// The kernel log's last status, once read.
    kernel_log: Option<KernelLogStatus>,
    /// Whether the event recorder was active, once seen.
    recorder_active: Option<bool>,
}

/// One record to write.
struct Record {
    level: LoggingLevel,
    logger: &'static str,
    key: String,
    data: Value,
}

impl AgentLog {
    pub(crate) fn new(log: ThrottledLog) -> Self {
        Self {
            log: Some(log),
            seen: Mutex::default(),
        }
    }

    fn write(&self, records: Vec<Record>) {
        let Some(log) = &self.log else {
            return;
        };
        for r in records {
            log.log(r.level, r.logger, &r.key, r.data);
        }
    }

    /// A snapshot just taken, or why none could be.
    pub(crate) fn snapshot(&self, snapshot: Result<&NodeSnapshot, &str>) {
        if self.log.is_none() {
            return;
        }
        let mut records = Vec::new();
        {
            let mut seen = self.seen.lock();
            match snapshot {
                Err(error) => {
                    if !std::mem::replace(&mut seen.snapshot_failed, true) {
                        records.push(Record {
                            level: LoggingLevel::Error,
                            logger: GPU_LOGGER,
                            key: "snapshot".into(),
                            data: json!({"message": format!("the GPUs cannot be read: {error}")}),
                        });
                    }
                }
                Ok(snapshot) => {
                    if std::mem::replace(&mut seen.snapshot_failed, false) {
                        records.push(Record {
                            level: LoggingLevel::Notice,
                            logger: GPU_LOGGER,
                            key: "snapshot".into(),
                            data: json!({"message": "the GPUs can be read again"}),
                        });
                    }
                    for gpu in &snapshot.gpus {
                        let before = seen.gpus.get(&gpu.index).copied();
                        if gpu.access == GpuAccess::Ok {
                            if before.is_some() {
                                seen.gpus.remove(&gpu.index);
                                records.push(gpu_record(
                                    LoggingLevel::Notice,
                                    gpu.index,
                                    format!("GPU {} answers again", gpu.index),
                                    GpuAccess::Ok,
                                ));
                            }
                        } else if before != Some(gpu.access) {
                            seen.gpus.insert(gpu.index, gpu.access);
                            let detail = gpu.access_detail.as_deref().unwrap_or("no detail");
                            records.push(gpu_record(
                                access_level(gpu.access),
                                gpu.index,
                                format!(
                                    "GPU {} cannot be read ({}): {detail}",
                                    gpu.index,
                                    word(gpu.access)
                                ),
                                gpu.access,
                            ));
                        }
                    }
                }
            }
        }
        self.write(records);
    }

    /// The Xid evidence sources of one call.
    pub(crate) fn sources(&self, sources: &EvidenceSources) {
        if self.log.is_none() {
            return;
        }
        let mut records = Vec::new();
        {
            let mut seen = self.seen.lock();
            let kernel = &sources.kernel_log;
            let readable = matches!(
                kernel.status,
                KernelLogStatus::Ok | KernelLogStatus::NotConfigured
            );
            let before = seen.kernel_log.replace(kernel.status);
            let was_readable = before
                .is_none_or(|s| matches!(s, KernelLogStatus::Ok | KernelLogStatus::NotConfigured));
            let path = kernel.path.as_deref().unwrap_or("the kernel log");
            if !readable && before != Some(kernel.status) {
                records.push(Record {
                    level: LoggingLevel::Warning,
                    logger: XID_LOGGER,
                    key: "kernel_log".into(),
                    data: json!({
                        "message": format!(
                            "{path} cannot be read ({}): {}; Xid errors come from the NVML event recorder only",
                            word(kernel.status),
                            kernel.detail.as_deref().unwrap_or("no detail")
                        ),
                        "status": word(kernel.status),
                    }),
                });
            } else if readable && !was_readable {
                records.push(Record {
                    level: LoggingLevel::Notice,
                    logger: XID_LOGGER,
                    key: "kernel_log".into(),
                    data: json!({"message": format!("{path} can be read again"), "status": word(kernel.status)}),
                });
            }

            let recorder = &sources.recorded_events;
            let before = seen.recorder_active.replace(recorder.active);
            // A recorder seen inactive at first had stopped only if it ever heard the driver.
            let stopped = !recorder.active
                && match before {
                    Some(active) => active,
                    None => recorder.heartbeat.is_some(),
                };
            if stopped {
                records.push(Record {
                    level: LoggingLevel::Error,
                    logger: XID_LOGGER,
                    key: "recorder".into(),
                    data: json!({"message": format!(
                        "the NVML Xid event recorder stopped: {}",
                        recorder.detail
                    )}),
                });
            } else if recorder.active && before == Some(false) {
                records.push(Record {
                    level: LoggingLevel::Notice,
                    logger: XID_LOGGER,
                    key: "recorder".into(),
                    data: json!({"message": "the NVML Xid event recorder records again"}),
                });
            }
        }
        self.write(records);
    }
}

fn gpu_record(level: LoggingLevel, index: u32, message: String, access: GpuAccess) -> Record {
    Record {
        level,
        logger: GPU_LOGGER,
        key: format!("gpu/{index}"),
        data: json!({"message": message, "gpu": index, "access": word(access)}),
    }
}

/// A GPU gone or hung is an error; one the agent may not open, or that needs its power or an
/// interrupt looked at, is a warning.
fn access_level(access: GpuAccess) -> LoggingLevel {
    match access {
        GpuAccess::Lost | GpuAccess::Unresponsive | GpuAccess::ResetRequired => LoggingLevel::Error,
        _ => LoggingLevel::Warning,
    }
}

/// The `snake_case` word a value is serialized as.
fn word<T: Copy + Into<Word>>(value: T) -> String {
    match value.into().0 {
        Ok(Value::String(s)) => s,
        _ => "unknown".to_owned(),
    }
}

/// A status or access value, serialized.
struct Word(serde_json::Result<Value>);

impl From<GpuAccess> for Word {
    fn from(access: GpuAccess) -> Self {
        Self(serde_json::to_value(access))
    }
}

impl From<KernelLogStatus> for Word {
    fn from(status: KernelLogStatus) -> Self {
        Self(serde_json::to_value(status))
    }
}
