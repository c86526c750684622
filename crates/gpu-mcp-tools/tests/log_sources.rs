#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The agent's log records for clients: a GPU that cannot be read, a kernel log that became
//! unreadable and an Xid event recorder that stopped are each said once when they change, and
//! again when they come back.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use gpu_mcp_backend::{GpuBackend, MockBackend, MockConfig, Scenario};
use gpu_mcp_model::{BackendKind, EventRecorderStatus, NodeSnapshot, XidEvent};
use gpu_mcp_protocol::mcp::LoggingLevel;
use gpu_mcp_service::{CallContext, LogRecord, LogSink, ThrottledLog, ToolCatalog};
use gpu_mcp_tools::{AgentCatalog, AgentCatalogConfig};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::broadcast;

/// A healthy or a sick fleet, with a recorder status the test sets.
struct Switch {
    healthy: MockBackend,
    sick: MockBackend,
    use_sick: AtomicBool,
    recorder: Mutex<EventRecorderStatus>,
}

impl Switch {
    fn new(sick: Scenario) -> Arc<Self> {
        let mock = |scenario| {
            MockBackend::new(MockConfig {
                gpus: 2,
                scenario,
                ..MockConfig::default()
            })
            .unwrap()
        };
        Arc::new(Self {
            healthy: mock(Scenario::Healthy),
            sick: mock(sick),
            use_sick: AtomicBool::new(false),
            recorder: Mutex::new(recorder(true, "recording since start")),
        })
    }

    fn current(&self) -> &MockBackend {
        if self.use_sick.load(Ordering::SeqCst) {
            &self.sick
        } else {
            &self.healthy
        }
    }
}

fn recorder(active: bool, detail: &str) -> EventRecorderStatus {
    EventRecorderStatus {
        active,
        detail: detail.to_owned(),
        heartbeat: Some("2027-01-15T08:00:00Z".to_owned()),
    }
}

impl GpuBackend for Switch {
    fn snapshot(&self) -> BoxFuture<'_, gpu_mcp_backend::Result<NodeSnapshot>> {
        self.current().snapshot()
    }
    fn xid_events(&self) -> Vec<XidEvent> {
        Vec::new()
    }
    fn xid_recorder_status(&self) -> EventRecorderStatus {
        self.recorder.lock().clone()
    }
    fn kind(&self) -> BackendKind {
        self.current().kind()
    }
}

fn catalog(
    backend: Arc<Switch>,
    kmsg: Option<PathBuf>,
) -> (AgentCatalog, broadcast::Receiver<LogRecord>) {
    let sink = LogSink::new();
    let rx = sink.subscribe();
    let catalog = AgentCatalog::new(
        backend,
        AgentCatalogConfig {
            kmsg_path: kmsg,
            ..AgentCatalogConfig::default()
        },
    )
    // No interval: what is said once here is said once by the change detection alone (the
    // interval is the throttle's, tested with it).
    .with_log(ThrottledLog::new(sink, Duration::ZERO));
    (catalog, rx)
}

async fn health(c: &AgentCatalog) {
    c.call("get_gpu_health", None, CallContext::default())
        .await
        .unwrap();
}

fn written(rx: &mut broadcast::Receiver<LogRecord>) -> Vec<(LoggingLevel, String, Value)> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .map(|r| (r.level, r.logger, r.data))
        .collect()
}

#[tokio::test]
async fn a_gpu_that_cannot_be_read_is_said_once_then_its_return() {
    let backend = Switch::new(Scenario::Xid79);
    let (c, mut rx) = catalog(backend.clone(), None);
    health(&c).await;
    assert!(written(&mut rx).is_empty(), "a healthy node says nothing");

    backend.use_sick.store(true, Ordering::SeqCst);
    health(&c).await;
    health(&c).await;
    let lost = written(&mut rx);
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].0, LoggingLevel::Error);
    assert_eq!(lost[0].1, "gpu");
    assert_eq!(lost[0].2["access"], "lost");
    let message = lost[0].2["message"].as_str().unwrap();
    assert!(message.contains("cannot be read (lost)"), "{message}");

    backend.use_sick.store(false, Ordering::SeqCst);
    health(&c).await;
    let back = written(&mut rx);
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(back[0].0, LoggingLevel::Notice);
    assert_eq!(back[0].2["gpu"], lost[0].2["gpu"]);
    assert!(
        back[0].2["message"]
            .as_str()
            .unwrap()
            .ends_with("answers again")
    );
}

#[tokio::test]
async fn a_gpu_that_stops_answering_in_time_is_an_error() {
    let backend = Switch::new(Scenario::GspTimeout);
    backend.use_sick.store(true, Ordering::SeqCst);
    let (c, mut rx) = catalog(backend, None);
    health(&c).await;
    let hung = written(&mut rx);
    assert_eq!(hung.len(), 1, "{hung:?}");
    assert_eq!(hung[0].0, LoggingLevel::Error);
    assert_eq!(hung[0].2["access"], "unresponsive");
}

#[tokio::test]
async fn an_unreadable_kernel_log_and_a_stopped_recorder_are_said_once_each() {
    let dir = std::env::temp_dir().join(format!("gpu-mcp-tools-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kmsg = dir.join("kmsg");
    let _ = std::fs::remove_file(&kmsg);
    let backend = Switch::new(Scenario::Healthy);
    let (c, mut rx) = catalog(backend.clone(), Some(kmsg.clone()));

    health(&c).await;
    *backend.recorder.lock() = recorder(false, "NVML event waits failed 5 times in a row");
    health(&c).await;
    health(&c).await;
    let first = written(&mut rx);
    let words: Vec<(LoggingLevel, &str)> = first.iter().map(|(l, g, _)| (*l, g.as_str())).collect();
    assert_eq!(
        words,
        [(LoggingLevel::Warning, "xid"), (LoggingLevel::Error, "xid")],
        "{first:?}"
    );
    assert_eq!(first[0].2["status"], "not_found");
    assert!(
        first[1].2["message"]
            .as_str()
            .unwrap()
            .contains("recorder stopped: NVML event waits failed")
    );

    std::fs::write(&kmsg, "").unwrap();
    *backend.recorder.lock() = recorder(true, "recording again");
    health(&c).await;
    let back = written(&mut rx);
    let words: Vec<(LoggingLevel, &str)> = back.iter().map(|(l, g, _)| (*l, g.as_str())).collect();
    assert_eq!(
        words,
        [(LoggingLevel::Notice, "xid"), (LoggingLevel::Notice, "xid")],
        "{back:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
