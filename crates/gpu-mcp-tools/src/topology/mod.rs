//! `get_nvlink_topology`: the node's GPU wiring from one snapshot, judged by the link and fabric
//! rules (the same functions `get_gpu_health` runs) plus the pair rule `p2p_nvlink`, in the words
//! of `nvidia-smi topo -m`: `matrix` (the two matrices), `facts` (per GPU and per pair), `words`
//! (the headline and the text block).

use gpu_mcp_model::output::{Finding, Verdict};
use gpu_mcp_model::topology::{GpuTopologyFacts, TopologyFinding, TopologyReport, nvlinks_between};
use gpu_mcp_model::{GpuAccess, GpuSnapshot, P2pStatus, PeerPath, Reading, RemoteKind};

use crate::health::{self, Assessment};

mod facts;
mod matrix;
mod words;

use facts::{facts, pair_facts};
use matrix::{matrix, p2p_matrix};
use words::headline;
pub(crate) use words::text;

/// What the report covers: the node's GPUs and the ones asked about.
pub(crate) struct Scope<'a> {
    /// The node name.
    pub(crate) node: &'a str,
    /// Every GPU of the node.
    pub(crate) gpus: &'a [GpuSnapshot],
    /// The indexes asked about (every GPU without a filter).
    pub(crate) selected: Vec<u32>,
    /// Every link and pair.
    pub(crate) full: bool,
}

/// One pair of GPUs as the matrix shows it.
pub(super) struct Pair<'a> {
    pub(super) a: &'a GpuSnapshot,
    pub(super) b: &'a GpuSnapshot,
    pub(super) nvlinks: Option<u32>,
    /// `a`'s path to `b`, else `b`'s to `a` (the PCIe level is the same both ways).
    pub(super) path: Option<&'a PeerPath>,
    /// Both directions as each GPU reported them (peer-to-peer status can differ).
    pub(super) both: [Option<&'a PeerPath>; 2],
}

impl Pair<'_> {
    pub(super) fn word(&self) -> String {
        let unreadable = |g: &GpuSnapshot| matches!(g.nvlink, Reading::Error(_));
        match self.nvlinks {
            Some(n) if n > 0 => format!("NV{n}"),
            // Whether NVLink joins them cannot be told: no PCIe word that would suggest not.
            _ if unreadable(self.a) || unreadable(self.b) => "?".to_owned(),
            _ => self
                .path
                .and_then(|p| p.pci_level.get())
                .map_or_else(|| "?".to_owned(), |l| l.word().to_owned()),
        }
    }
}

/// `x`'s path to GPU `y`, as `x` reported it.
fn path_to(x: &GpuSnapshot, y: u32) -> Option<&PeerPath> {
    x.topology
        .peers
        .value()
        .and_then(|ps| ps.iter().find(|p| p.gpu == y))
}

fn pair<'a>(a: &'a GpuSnapshot, b: &'a GpuSnapshot) -> Pair<'a> {
    let both = [path_to(a, b.index), path_to(b, a.index)];
    let with_level = both
        .iter()
        .flatten()
        .find(|p| p.pci_level.value().is_some())
        .copied();
    Pair {
        a,
        b,
        nvlinks: nvlinks_between(a, b),
        path: with_level.or(both[0]).or(both[1]),
        both,
    }
}

/// The tool's answer over one snapshot: the report and its text block, or the `isError` result
/// naming a GPU filter that matches nothing.
pub(crate) fn answer(
    node: &str,
    snap: &gpu_mcp_model::NodeSnapshot,
    args: &gpu_mcp_model::topology::TopologyArgs,
) -> gpu_mcp_protocol::CallToolResult {
    let selected =
        match crate::catalog::select_gpus(&snap.gpus, args.gpu_index, args.gpu_uuid.as_deref()) {
            Ok(g) => g.into_iter().map(|g| g.index).collect(),
            Err(e) => return e,
        };
    let r = report(&Scope {
        node,
        gpus: &snap.gpus,
        selected,
        full: args.full,
    });
    gpu_mcp_protocol::CallToolResult::structured_encoded(&r, text(&r))
}

/// Builds the report.
pub(crate) fn report(scope: &Scope<'_>) -> TopologyReport {
    let gpus = scope.gpus;
    let pairs: Vec<Pair<'_>> = gpus
        .iter()
        .enumerate()
        .flat_map(|(i, a)| gpus[i + 1..].iter().map(move |b| pair(a, b)))
        .collect();
    let wanted = |i: u32| scope.selected.contains(&i);
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    let mut not_checked = Vec::new();
    for g in gpus.iter().filter(|g| wanted(g.index)) {
        let mut a = Assessment::default();
        // A GPU the driver cannot fully use is never healthy here either: its access state
        // is a finding next to what its links say.
        if g.access != GpuAccess::Ok {
            health::gpu_access(g, &mut a);
        }
        if !matches!(
            g.access,
            GpuAccess::Lost | GpuAccess::Unresponsive | GpuAccess::Error | GpuAccess::NoPermission
        ) {
            health::nvlink(g, &mut a);
            health::fabric(g, &mut a);
        }
        findings.extend(a.reasons.into_iter().map(|f| TopologyFinding {
            gpu: Some(g.index),
            peer: None,
            finding: f,
        }));
        notes.extend(a.notes.into_iter().map(|n| format!("GPU {}: {n}", g.index)));
        not_checked.extend(
            a.not_checked
                .into_iter()
                .map(|n| format!("GPU {}: {n}", g.index)),
        );
    }
    for p in pairs
        .iter()
        .filter(|p| wanted(p.a.index) || wanted(p.b.index))
    {
        if let Some(f) = p2p_finding(p) {
            findings.push(f);
        }
    }
    let unknown_far_end = |g: &GpuSnapshot| {
        g.nvlink
            .value()
            .is_some_and(|ls| ls.iter().any(|l| l.active && l.remote.value().is_none()))
    };
    if gpus.iter().any(unknown_far_end) {
        not_checked.push(
            "nvlink_pairs: the driver does not say where some up NVLink links go; the matrix shows their PCIe path instead".to_owned(),
        );
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.finding.severity));
    let verdict = findings
        .iter()
        .map(|f| f.finding.severity)
        .max()
        .unwrap_or(Verdict::Healthy);
    let interconnect = interconnect(gpus);
    let facts: Vec<GpuTopologyFacts> = gpus
        .iter()
        .filter(|g| wanted(g.index))
        .map(|g| facts(g, gpus, scope.full))
        .collect();
    let mut report = TopologyReport {
        headline: String::new(),
        verdict,
        node: scope.node.to_owned(),
        interconnect: interconnect.to_owned(),
        findings,
        matrix: matrix(gpus, &pairs),
        p2p: p2p_matrix(gpus, &pairs),
        gpus: facts,
        pairs: if scope.full {
            pairs.iter().map(pair_facts).collect()
        } else {
            Vec::new()
        },
        notes,
        not_checked,
    };
    report.headline = headline(&report, gpus, &pairs);
    report
}

/// `nvswitch`, `nvlink`, `pcie` or `unknown`, from where the wired links go.
fn interconnect(gpus: &[GpuSnapshot]) -> &'static str {
    let mut kinds = Vec::new();
    let mut unreadable = false;
    for g in gpus {
        match &g.nvlink {
            Reading::Value(ls) => {
                kinds.extend(ls.iter().filter_map(|l| l.remote.value().map(|r| r.kind)))
            }
            Reading::NotSupported => {}
            Reading::Error(_) => unreadable = true,
        }
    }
    if kinds.contains(&RemoteKind::Nvswitch) {
        "nvswitch"
    } else if kinds.contains(&RemoteKind::Gpu) {
        "nvlink"
    } else if unreadable
        || gpus
            .iter()
            .any(|g| g.nvlink.value().is_some_and(|l| !l.is_empty()))
    {
        "unknown"
    } else {
        "pcie"
    }
}

/// The pair rule `p2p_nvlink`: two GPUs with NVLink between them should reach each other
/// peer-to-peer; otherwise NCCL and CUDA fall back to copies through host memory.
fn p2p_finding(p: &Pair<'_>) -> Option<TopologyFinding> {
    let n = p.nvlinks.filter(|&n| n > 0)?;
    let bad = |r: &Reading<P2pStatus>| r.get().is_some_and(|s| s != P2pStatus::Ok);
    let path = p
        .both
        .iter()
        .flatten()
        .copied()
        .find(|x| bad(&x.p2p_read) || bad(&x.p2p_write) || bad(&x.p2p_nvlink))?;
    let code = |x: &Reading<P2pStatus>| x.get().map_or("?", P2pStatus::code);
    Some(TopologyFinding {
        gpu: Some(p.a.index),
        peer: Some(p.b.index),
        finding: Finding {
            check: "p2p_nvlink".to_owned(),
            severity: Verdict::Degraded,
            summary: format!(
                "GPU {} and GPU {} have {n} NVLink links between them but peer-to-peer access does not work: CUDA and NCCL copy through host memory instead.",
                p.a.index, p.b.index
            ),
            observed: format!(
                "NV{n}; P2P read {}, write {}, NVLink {}",
                code(&path.p2p_read),
                code(&path.p2p_write),
                code(&path.p2p_nvlink)
            ),
            threshold: "P2P read, write and NVLink OK between NVLink peers".to_owned(),
            action: "Check the fabric findings above (NVSwitch systems), that P2P is not disabled by a driver registry key, and the IOMMU/ACS settings in the BIOS and kernel; reset the GPUs or reboot if it persists.".to_owned(),
        },
    })
}
