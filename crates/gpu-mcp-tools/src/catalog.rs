//! The agent's tool catalog over a [`GpuBackend`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use gpu_mcp_backend::{GpuBackend, KmsgReader};
use gpu_mcp_model::args::{DEFAULT_HEALTH_XID_WINDOW, HealthArgs, InventoryArgs, XidArgs};
use gpu_mcp_model::output::*;
use gpu_mcp_model::processes::GpuProcessesArgs;
use gpu_mcp_model::time::{format_rfc3339, parse_since};
use gpu_mcp_model::toolsets::Toolsets;
use gpu_mcp_model::topology::TopologyArgs;
use gpu_mcp_model::{
    ANALYZE_XID_ERRORS, GET_GPU_HEALTH, GET_GPU_INVENTORY, GET_GPU_PROCESSES, GET_NVLINK_TOPOLOGY,
    GpuSnapshot, KernelLogStatus, NodeSnapshot, XidEvent, gpu_tool_definitions,
};
use gpu_mcp_protocol::{CallToolResult, JsonObject, Tool};
use gpu_mcp_service::{
    CallContext, CallError, PromptCatalog, ResourceCatalog, ThrottledLog, ToolAnswer, ToolCatalog,
    parse_arguments,
};

use crate::answers::AnswerCache;
use crate::detail::{lists_gpu, narrow_health};
use crate::health::{assess_gpu, assess_gpu_labelled, names_processes};
use crate::log::AgentLog;
use crate::owners::{Query, Sources, gpu_queries, labels};
use crate::processes;
pub(crate) use crate::select::select_gpus;
use crate::xid_analysis::{GpuKeys, Merged, group, is_since, merge, record};
use crate::{nvswitch, text, topology};

const DEFAULT_XID_LIMIT: u32 = 50;
const MAX_XID_LIMIT: u32 = 1000;

/// Configuration of the agent's catalog.
#[derive(Debug, Clone)]
pub struct AgentCatalogConfig {
    /// Kubernetes node name reported in every result.
    pub node_name: String,
    /// Kernel log to read Xid lines from (`/dev/kmsg`, or a file); none when `None`.
    pub kmsg_path: Option<PathBuf>,
    /// Deadline of one kernel-log read.
    pub kmsg_timeout: Duration,
    /// Boot time for kernel-log timestamps; from `/proc/uptime` when `None`.
    pub boot_time: Option<SystemTime>,
    /// A fixed "now" (for reproducible output); the system clock when `None`.
    pub now: Option<SystemTime>,
    /// The kubelet's pod-resources socket, to attribute GPUs to pods; none when `None`.
    pub pod_resources_socket: Option<PathBuf>,
    /// The host's `/proc` (process names and cgroups), to attribute processes to pods; none
    /// when `None`.
    pub host_proc: Option<PathBuf>,
    /// Deadline of one attribution read (the pod-resources call, one batch of `/proc` reads).
    pub attribution_timeout: Duration,
    /// The toolsets served (all by default): the tools of the others are unknown tools, and
    /// the prompts and resources that need them are not offered.
    pub toolsets: Toolsets,
}

impl Default for AgentCatalogConfig {
    fn default() -> Self {
        Self {
            node_name: "localhost".to_owned(),
            kmsg_path: None,
            kmsg_timeout: Duration::from_secs(5),
            boot_time: None,
            now: None,
            pod_resources_socket: None,
            host_proc: None,
            attribution_timeout: Duration::from_secs(2),
            toolsets: Toolsets::all(),
        }
    }
}

/// The agent's catalog: `get_gpu_inventory`, `get_gpu_health`, `analyze_xid_errors`,
/// `get_gpu_processes`, `get_nvlink_topology`.
#[derive(Clone)]
pub struct AgentCatalog {
    backend: Arc<dyn GpuBackend>,
    config: AgentCatalogConfig,
    sources: Arc<Sources>,
    tools: Vec<Tool>,
    answers: Arc<AnswerCache>,
    log: Arc<AgentLog>,
}

impl std::fmt::Debug for AgentCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCatalog")
            .field("backend", &self.backend.kind())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Evidence gathered for one call.
pub(crate) struct Evidence {
    pub(crate) snapshot: Option<NodeSnapshot>,
    pub(crate) snapshot_error: Option<String>,
    sources: EvidenceSources,
    events: Vec<Merged>,
    sxids: Vec<gpu_mcp_model::xid::SxidEvent>,
}

impl AgentCatalog {
    pub(crate) fn backend(&self) -> &Arc<dyn GpuBackend> {
        &self.backend
    }

    pub(crate) fn config(&self) -> &AgentCatalogConfig {
        &self.config
    }

    pub(crate) fn sources(&self) -> &Sources {
        &self.sources
    }

    pub(crate) fn log(&self) -> &AgentLog {
        &self.log
    }

    /// A catalog over `backend`.
    pub fn new(backend: Arc<dyn GpuBackend>, config: AgentCatalogConfig) -> Self {
        let sources = Arc::new(Sources::new(
            config.pod_resources_socket.clone(),
            config.host_proc.clone(),
            config.attribution_timeout,
        ));
        Self {
            backend,
            tools: gpu_tool_definitions()
                .into_iter()
                .filter(|t| config.toolsets.enables(&t.name))
                .collect(),
            config,
            sources,
            answers: Arc::default(),
            log: Arc::default(),
        }
    }

    /// Tells `log` when a GPU cannot be read or stops answering in time, when the kernel log
    /// becomes unreadable, when the Xid event recorder stops, and when each comes back.
    #[must_use]
    pub fn with_log(mut self, log: ThrottledLog) -> Self {
        self.log = Arc::new(AgentLog::new(log));
        self
    }

    /// Whether the catalog serves the tool `name` (it exists and its toolset is enabled).
    pub(crate) fn offers_tool(&self, name: &str) -> bool {
        self.tools.iter().any(|t| t.name == name)
    }

    /// The node this catalog reports on.
    pub(crate) fn node_name(&self) -> &str {
        &self.config.node_name
    }

    fn now(&self) -> SystemTime {
        self.config.now.unwrap_or_else(SystemTime::now)
    }

    pub(crate) fn parse_since(
        &self,
        arg: &str,
        value: Option<&str>,
    ) -> Result<Option<SystemTime>, CallToolResult> {
        match value {
            None => Ok(None),
            Some(s) => parse_since(s, self.now())
                .map(Some)
                .map_err(|e| CallToolResult::error(format!("Invalid argument `{arg}`: {e}."))),
        }
    }

    pub(crate) async fn gather(&self, with_snapshot: bool) -> Evidence {
        let (snapshot, snapshot_error) = if with_snapshot {
            match self.backend.snapshot().await {
                Ok(s) => {
                    self.log.snapshot(Ok(&s));
                    (Some(s), None)
                }
                Err(e) => {
                    let error = e.to_string();
                    self.log.snapshot(Err(&error));
                    (None, Some(error))
                }
            }
        } else {
            (None, None)
        };
        let (kernel_events, mut sxids, kernel_log) = match &self.config.kmsg_path {
            None => (
                Vec::new(),
                Vec::new(),
                KernelLogSource {
                    status: KernelLogStatus::NotConfigured,
                    path: None,
                    detail: Some("no kernel-log path is configured".to_owned()),
                    lines: 0,
                    unparsed_xid_lines: 0,
                },
            ),
            Some(path) => {
                let mut reader =
                    KmsgReader::new(path.clone()).with_timeout(self.config.kmsg_timeout);
                if let Some(b) = self.config.boot_time {
                    reader = reader.with_boot_time(b);
                }
                let read = reader.read().await;
                (
                    read.parse.events,
                    read.parse.sxids,
                    KernelLogSource {
                        status: read.status,
                        path: Some(read.path.display().to_string()),
                        detail: read.detail,
                        lines: read.parse.lines,
                        unparsed_xid_lines: read.parse.unparsed_xid_lines,
                    },
                )
            }
        };
        let keys = GpuKeys::new(snapshot.as_ref());
        let recorded: Vec<XidEvent> = self.backend.xid_events();
        let events = merge(kernel_events, recorded, &keys);
        sxids.extend(self.backend.sxid_events());
        let sources = EvidenceSources {
            kernel_log,
            recorded_events: self.backend.xid_recorder_status(),
        };
        self.log.sources(&sources);
        Evidence {
            snapshot,
            snapshot_error,
            sources,
            events,
            sxids,
        }
    }

    /// Builds the health report, listing what `args.detail` asks for (also used by the docs
    /// generator and tests).
    pub async fn health_report(&self, args: HealthArgs) -> Result<HealthReport, CallToolResult> {
        let window = args
            .xid_since
            .as_deref()
            .unwrap_or(DEFAULT_HEALTH_XID_WINDOW);
        let since = self
            .parse_since("xid_since", Some(window))?
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let ev = self.gather(true).await;
        let mut report = self.judge(&ev, &args, since, true).await?;
        narrow_health(&mut report, &args);
        Ok(report)
    }

    /// The full health report from gathered evidence; `with_owners` names the owners of the
    /// processes and MIG devices of the GPUs `args.detail` lists (a caller after the verdicts
    /// alone skips that).
    pub(crate) async fn judge(
        &self,
        ev: &Evidence,
        args: &HealthArgs,
        since: SystemTime,
        with_owners: bool,
    ) -> Result<HealthReport, CallToolResult> {
        let Some(snap) = &ev.snapshot else {
            return Err(CallToolResult::error(format!(
                "Cannot read the GPUs: {}",
                ev.snapshot_error.clone().unwrap_or_default()
            )));
        };
        let selected = select_gpus(&snap.gpus, args.gpu_index, args.gpu_uuid.as_deref())?;
        let since_s = format_rfc3339(since);
        let recent: Vec<&Merged> = ev
            .events
            .iter()
            .filter(|m| is_since(&m.ev, since))
            .collect();
        let groups = group(&recent);
        let mine = |g: &GpuSnapshot| -> Vec<&XidGroup> {
            groups
                .iter()
                .filter(|x| x.gpu_index == Some(g.index))
                .collect()
        };
        let first: Vec<GpuHealth> = selected
            .iter()
            .map(|g| assess_gpu(g, &mine(g), &since_s))
            .collect();
        // The owners of the processes the advice names, and of the MIG devices, are looked up
        // only for the GPUs whose answer shows them.
        let shown: Vec<bool> = selected
            .iter()
            .zip(&first)
            .map(|(g, h)| {
                with_owners
                    && lists_gpu(args, h.verdict)
                    && (names_processes(g, h) || g.mig.enabled.get() == Some(true))
            })
            .collect();
        let queries: Vec<Query> = selected
            .iter()
            .zip(&shown)
            .filter(|(_, s)| **s)
            .flat_map(|(g, _)| gpu_queries(g))
            .collect();
        let attribution = if shown.contains(&true) {
            Some(
                self.sources
                    .attribute(self.backend.as_ref(), Some(snap), &queries)
                    .await,
            )
        } else {
            None
        };
        let by_pid = attribution
            .as_ref()
            .map(|a| labels(&queries, a))
            .unwrap_or_default();
        let mut gpus = Vec::with_capacity(selected.len());
        let mut counts = VerdictCounts::default();
        // Asked about one GPU, the NVSwitch fabric's findings join it or stand beside it.
        let one_gpu = args.gpu_index.is_some() || args.gpu_uuid.is_some();
        let sxids = nvswitch::sxid_errors(&ev.sxids, Some(since));
        let mut node_findings = Vec::new();
        for ((g, mut h), shown) in selected.iter().zip(first).zip(shown) {
            if shown {
                let mine_labels = by_pid
                    .iter()
                    .filter(|((gi, _), _)| *gi == g.index)
                    .map(|((_, pid), l)| (*pid, l.clone()))
                    .collect();
                h = assess_gpu_labelled(g, &mine(g), &since_s, &mine_labels);
                h.mig_devices = processes::mig_devices_of(g, attribution.as_ref());
            }
            if one_gpu {
                node_findings.extend(crate::health::nvswitch_sxid_for_gpu(
                    &sxids, &since_s, g, &mut h,
                ));
            }
            match h.verdict {
                Verdict::Healthy => counts.healthy += 1,
                Verdict::Warning => counts.warning += 1,
                Verdict::Degraded => counts.degraded += 1,
                Verdict::Critical => counts.critical += 1,
            }
            gpus.push(h);
        }
        // Xids from a GPU the driver does not list (one fallen off the bus), and the NVSwitches.
        if !one_gpu {
            node_findings.extend(crate::health::xid_unattributed(&groups, &since_s));
            node_findings.extend(crate::health::nvswitch_sxid(&sxids, &since_s));
        }
        let verdict = gpus
            .iter()
            .map(|g| g.verdict)
            .chain(node_findings.iter().map(|f| f.severity))
            .max()
            .unwrap_or(Verdict::Healthy);
        let mut report = HealthReport {
            node: self.config.node_name.clone(),
            backend: snap.backend,
            verdict,
            summary: String::new(),
            counts,
            xid_since: since_s,
            sources: ev.sources.clone(),
            node_findings,
            gpus,
            detail: None,
            min_verdict: None,
        };
        report.summary = text::health_summary(&report);
        Ok(report)
    }

    async fn health(&self, args: HealthArgs) -> CallToolResult {
        match self.health_report(args).await {
            Ok(r) => CallToolResult::structured_encoded(&r, text::health(&r)),
            Err(e) => e,
        }
    }

    /// Builds the Xid report (also used by the docs generator and tests).
    pub async fn xid_report(&self, args: XidArgs) -> Result<XidReport, CallToolResult> {
        let since = self.parse_since("since", args.since.as_deref())?;
        let limit = args.limit.unwrap_or(DEFAULT_XID_LIMIT);
        if limit == 0 || limit > MAX_XID_LIMIT {
            return Err(CallToolResult::error(format!(
                "Invalid argument `limit`: {limit} is out of range; use 1 to {MAX_XID_LIMIT}."
            )));
        }
        let ev = self.gather(true).await;
        let filter_index = match &ev.snapshot {
            Some(s) => {
                let sel = select_gpus(&s.gpus, args.gpu_index, args.gpu_uuid.as_deref())?;
                if args.gpu_index.is_some() || args.gpu_uuid.is_some() {
                    sel.first().map(|g| g.index)
                } else {
                    None
                }
            }
            None if args.gpu_index.is_some() || args.gpu_uuid.is_some() => {
                return Err(CallToolResult::error(format!(
                    "Cannot filter by GPU: the GPUs cannot be read ({}).",
                    ev.snapshot_error.unwrap_or_default()
                )));
            }
            None => None,
        };
        let matching: Vec<&Merged> = ev
            .events
            .iter()
            .filter(|m| since.is_none_or(|s| is_since(&m.ev, s)))
            .filter(|m| filter_index.is_none() || m.gpu_index == filter_index)
            .collect();
        let groups = group(&matching);
        let detail = args.detail.filter(|d| *d != XidDetail::Full);
        let listed = if detail.is_some() { 0 } else { limit as usize };
        let mut events: Vec<XidRecord> = matching
            .iter()
            .rev()
            .take(listed)
            .map(|m| record(m))
            .collect();
        let queries: Vec<Query> = events
            .iter()
            .filter_map(|e| {
                Some(Query {
                    pid: e.pid?,
                    gpu_index: e.gpu_index,
                    gpu_instance: e.gpu_instance,
                    compute_instance: e.compute_instance,
                })
            })
            .collect();
        if !queries.is_empty() {
            let a = self
                .sources
                .attribute(self.backend.as_ref(), ev.snapshot.as_ref(), &queries)
                .await;
            // An event may be older than the GPU's current allocation: its pod is named only
            // when the process still runs in a pod (its cgroup says so) or the allocations
            // never change (the mock fleet's).
            let mut owners = a.owners.into_iter();
            for e in events.iter_mut().filter(|e| e.pid.is_some()) {
                e.pod = owners
                    .next()
                    .filter(|o| {
                        o.pod_uid.is_some()
                            || o.sources
                                .contains(&gpu_mcp_model::AttributionSource::MockFleet)
                    })
                    .and_then(|o| o.pod);
            }
        }
        let mut report = XidReport {
            node: self.config.node_name.clone(),
            since: since.map(format_rfc3339),
            summary: String::new(),
            sources: ev.sources,
            total_events: matching.len() as u32,
            returned_events: events.len() as u32,
            truncated: detail.is_none() && matching.len() > events.len(),
            groups,
            events,
            nvswitch: nvswitch::sxid_errors(&ev.sxids, since),
            detail: detail.filter(|_| !matching.is_empty()),
        };
        if let Some(e) = ev.snapshot_error {
            report.summary =
                format!("GPUs could not be read ({e}); events are not attributed to GPU indexes. ");
        }
        report.summary.push_str(&text::xid_summary(&report));
        Ok(report)
    }

    async fn topology(&self, args: TopologyArgs) -> CallToolResult {
        match self.backend.snapshot().await {
            Ok(s) => {
                self.log.snapshot(Ok(&s));
                topology::answer(&self.config.node_name, &s, &args)
            }
            Err(e) => {
                self.log.snapshot(Err(&e.to_string()));
                CallToolResult::error(format!("Cannot read the GPUs: {e}"))
            }
        }
    }

    async fn xids(&self, args: XidArgs) -> CallToolResult {
        match self.xid_report(args).await {
            Ok(r) => CallToolResult::structured_encoded(&r, text::xids(&r)),
            Err(e) => e,
        }
    }

    /// Runs a tool by name without the MCP plumbing (used by the docs generator and tests);
    /// an answer may be reused, as with [`AgentCatalog::run_shared`].
    pub async fn run(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, CallError> {
        self.run_shared(name, arguments)
            .await
            .map(ToolAnswer::into_result)
    }

    /// Runs a tool by name; an answer reused or kept for reuse comes back shared (encoded once).
    pub async fn run_shared(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<ToolAnswer, CallError> {
        if !self.offers_tool(name) {
            return Err(CallError::UnknownTool(name.to_owned()));
        }
        let fresh = || self.backend.fresh_generation();
        // Boxed on a miss only: a reuse does not carry the state of a computation it skips.
        let compute = |arguments| Box::pin(self.compute(name, arguments));
        self.answers.answer(fresh, name, arguments, compute).await
    }

    async fn compute(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, CallError> {
        Ok(match name {
            GET_GPU_INVENTORY => match parse_arguments::<InventoryArgs>(arguments) {
                Ok(a) => self.inventory(a).await,
                Err(e) => e,
            },
            GET_GPU_HEALTH => match parse_arguments::<HealthArgs>(arguments) {
                Ok(a) => self.health(a).await,
                Err(e) => e,
            },
            ANALYZE_XID_ERRORS => match parse_arguments::<XidArgs>(arguments) {
                Ok(a) => self.xids(a).await,
                Err(e) => e,
            },
            GET_GPU_PROCESSES => match parse_arguments::<GpuProcessesArgs>(arguments) {
                Ok(a) => self.processes(a).await,
                Err(e) => e,
            },
            GET_NVLINK_TOPOLOGY => match parse_arguments::<TopologyArgs>(arguments) {
                Ok(a) => self.topology(a).await,
                Err(e) => e,
            },
            other => return Err(CallError::UnknownTool(other.to_owned())),
        })
    }
}

impl ToolCatalog for AgentCatalog {
    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        arguments: Option<JsonObject>,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        let call = self.call_shared(name, arguments, ctx);
        Box::pin(async move { call.await.map(ToolAnswer::into_result) })
    }

    fn call_shared<'a>(
        &'a self,
        name: &'a str,
        arguments: Option<JsonObject>,
        ctx: CallContext,
    ) -> BoxFuture<'a, Result<ToolAnswer, CallError>> {
        Box::pin(async move {
            tokio::select! {
                r = self.run_shared(name, arguments) => r,
                () = ctx.cancel.cancelled() => Ok(CallToolResult::error("The call was cancelled.").into()),
            }
        })
    }

    fn prompt_catalog(&self) -> Option<&dyn PromptCatalog> {
        Some(self)
    }

    fn resource_catalog(&self) -> Option<&dyn ResourceCatalog> {
        Some(self)
    }
}
