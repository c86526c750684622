//! `get_nvlink_topology`: the node's GPU wiring from one snapshot, judged by the link and fabric
//! rules (the same functions `get_gpu_health` runs) plus the pair rule `p2p_nvlink`, in the words
//! of `nvidia-smi topo -m`.

use std::collections::BTreeMap;

use gpu_mcp_model::output::{Finding, Verdict};
use gpu_mcp_model::topology::{
    GpuTopologyFacts, LinkFact, LinkState, LinkSummary, PairFacts, TopologyFinding, TopologyReport,
    nvlinks_between,
};
use gpu_mcp_model::{GpuAccess, GpuSnapshot, NvLink, P2pStatus, PeerPath, Reading, RemoteKind};

use crate::health::{self, Assessment};

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
struct Pair<'a> {
    a: &'a GpuSnapshot,
    b: &'a GpuSnapshot,
    nvlinks: Option<u32>,
    /// `a`'s path to `b`, else `b`'s to `a` (the PCIe level is the same both ways).
    path: Option<&'a PeerPath>,
    /// Both directions as each GPU reported them (peer-to-peer status can differ).
    both: [Option<&'a PeerPath>; 2],
}

impl Pair<'_> {
    fn word(&self) -> String {
        match self.nvlinks {
            Some(n) if n > 0 => format!("NV{n}"),
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
        match g.access {
            GpuAccess::Lost
            | GpuAccess::Unresponsive
            | GpuAccess::Error
            | GpuAccess::NoPermission => {
                health::gpu_access(g, &mut a);
            }
            _ => {
                health::nvlink(g, &mut a);
                health::fabric(g, &mut a);
            }
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

/// The matrix rows: a header, then one row per GPU, as `nvidia-smi topo -m` prints them.
fn matrix(gpus: &[GpuSnapshot], pairs: &[Pair<'_>]) -> Vec<String> {
    let word = |a: u32, b: u32| -> String {
        if a == b {
            return "X".to_owned();
        }
        pairs
            .iter()
            .find(|p| (p.a.index, p.b.index) == (a.min(b), a.max(b)))
            .map_or_else(|| "?".to_owned(), Pair::word)
    };
    grid(gpus, &word, true)
}

/// The P2P rows (`nvidia-smi topo -p2p` codes, read and write together).
fn p2p_matrix(gpus: &[GpuSnapshot], pairs: &[Pair<'_>]) -> Vec<String> {
    let cell = |a: u32, b: u32| -> String {
        if a == b {
            return "X".to_owned();
        }
        // Row `a`'s own view of its path to `b`, else `b`'s.
        let Some(path) = pairs
            .iter()
            .find(|p| (p.a.index, p.b.index) == (a.min(b), a.max(b)))
            .and_then(|p| {
                let (mine, theirs) = if p.a.index == a {
                    (p.both[0], p.both[1])
                } else {
                    (p.both[1], p.both[0])
                };
                mine.filter(|x| x.p2p_read.value().is_some())
                    .or(theirs.filter(|x| x.p2p_read.value().is_some()))
                    .or(mine)
                    .or(theirs)
            })
        else {
            return "?".to_owned();
        };
        let code = |x: &Reading<P2pStatus>| x.get().map_or("?", P2pStatus::code);
        let (r, w) = (code(&path.p2p_read), code(&path.p2p_write));
        if r == w {
            r.to_owned()
        } else {
            format!("r:{r}/w:{w}")
        }
    };
    grid(gpus, &cell, false)
}

/// Rows of `cell(a, b)` under a `GPU0 GPU1 ...` header, with CPU and NUMA affinity columns.
fn grid(gpus: &[GpuSnapshot], cell: &dyn Fn(u32, u32) -> String, affinity: bool) -> Vec<String> {
    let cells: Vec<Vec<String>> = gpus
        .iter()
        .map(|a| gpus.iter().map(|b| cell(a.index, b.index)).collect())
        .collect();
    let width = cells
        .iter()
        .flatten()
        .map(String::len)
        .chain(gpus.iter().map(|g| format!("GPU{}", g.index).len()))
        .max()
        .unwrap_or(4)
        + 2;
    let label = gpus
        .iter()
        .map(|g| format!("GPU{}", g.index).len())
        .max()
        .unwrap_or(4)
        + 2;
    let mut header = format!("{:label$}", "");
    for g in gpus {
        header.push_str(&format!("{:<width$}", format!("GPU{}", g.index)));
    }
    let cpu_width = gpus
        .iter()
        .filter_map(|g| g.topology.cpu_affinity.value().map(String::len))
        .max()
        .unwrap_or(3)
        .max("CPU Affinity".len())
        + 2;
    if affinity {
        header.push_str(&format!("{:<cpu_width$}NUMA Affinity", "CPU Affinity"));
    }
    let mut rows = vec![header.trim_end().to_owned()];
    for (g, row) in gpus.iter().zip(cells) {
        let mut line = format!("{:<label$}", format!("GPU{}", g.index));
        for c in row {
            line.push_str(&format!("{c:<width$}"));
        }
        if affinity {
            let cpus = g
                .topology
                .cpu_affinity
                .value()
                .map_or("N/A", String::as_str);
            let numa = g
                .topology
                .numa_node
                .get()
                .map_or_else(|| "N/A".to_owned(), |n| n.to_string());
            line.push_str(&format!("{cpus:<cpu_width$}{numa}"));
        }
        rows.push(line.trim_end().to_owned());
    }
    rows
}

/// The name of a link's far end: `NVSwitch 0000:05:00`, `GPU3`, `CPU`.
fn remote_name(l: &NvLink, gpus: &[GpuSnapshot]) -> Option<String> {
    let r = l.remote.value()?;
    let gpu_of = |bus: &str| {
        gpus.iter()
            .find(|g| g.pci_bus_id.value().is_some_and(|b| b == bus))
            .map(|g| g.index)
    };
    Some(match (r.kind, r.pci_bus_id.as_deref()) {
        (RemoteKind::Nvswitch, Some(bus)) => format!("NVSwitch {bus}"),
        (RemoteKind::Nvswitch, None) => "NVSwitch".to_owned(),
        (RemoteKind::Gpu, Some(bus)) => {
            gpu_of(bus).map_or_else(|| format!("GPU {bus}"), |i| format!("GPU{i}"))
        }
        (RemoteKind::Gpu, None) => "GPU".to_owned(),
        (RemoteKind::Cpu, _) => "CPU".to_owned(),
        (RemoteKind::Unknown, Some(bus)) => format!("device {bus}"),
        (RemoteKind::Unknown, None) => "unknown".to_owned(),
    })
}

/// Where a GPU's up links go, grouped: `NVSwitch`, `GPU1 x2, GPU3 x1`.
fn remote_summary(links: &[NvLink], gpus: &[GpuSnapshot]) -> String {
    let mut groups: BTreeMap<String, u32> = BTreeMap::new();
    for l in links.iter().filter(|l| l.active) {
        let name = remote_name(l, gpus).unwrap_or_else(|| "unknown".to_owned());
        let key = if name.starts_with("NVSwitch") {
            "NVSwitch".to_owned()
        } else {
            name
        };
        *groups.entry(key).or_default() += 1;
    }
    if groups.is_empty() {
        return "no link up".to_owned();
    }
    if groups.len() == 1 && groups.contains_key("NVSwitch") {
        return "NVSwitch".to_owned();
    }
    groups
        .iter()
        .map(|(k, n)| format!("{k} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn links_summary(
    g: &GpuSnapshot,
    links: &[NvLink],
    gpus: &[GpuSnapshot],
    full: bool,
) -> LinkSummary {
    let state = |l: &NvLink| {
        if l.active {
            LinkState::Up
        } else if l.disabled {
            LinkState::Disabled
        } else {
            LinkState::Down
        }
    };
    let changes = g.since_previous.as_ref();
    let mut s = LinkSummary {
        wired: links.len() as u32,
        remote: remote_summary(links, gpus),
        ..LinkSummary::default()
    };
    for l in links {
        match state(l) {
            LinkState::Up => s.up += 1,
            LinkState::Down => s.down += 1,
            LinkState::Disabled => s.disabled += 1,
        }
        let new = changes
            .and_then(|c| c.nvlink.iter().find(|x| x.link == l.link))
            .copied();
        let erroring = new.is_some_and(|c| {
            c.replay.unwrap_or(0) + c.recovery.unwrap_or(0) + c.crc.unwrap_or(0) > 0
        });
        if !(full || state(l) == LinkState::Down || erroring) {
            continue;
        }
        let total = {
            let n = |r: &Reading<u64>| r.get();
            let crc = n(&l.crc_flit_errors)
                .zip(n(&l.crc_data_errors))
                .map(|(a, b)| a + b)
                .or_else(|| n(&l.crc_flit_errors))
                .or_else(|| n(&l.crc_data_errors));
            match (crc, n(&l.replay_errors), n(&l.recovery_errors)) {
                (None, None, None) => None,
                (c, r, rec) => {
                    let f = |x: Option<u64>| x.map_or_else(|| "?".to_owned(), |v| v.to_string());
                    Some(format!(
                        "{} CRC, {} replay, {} recovery",
                        f(c),
                        f(r),
                        f(rec)
                    ))
                }
            }
        };
        s.links.push(LinkFact {
            link: l.link,
            state: state(l),
            remote: remote_name(l, gpus),
            errors_total: total,
            new_errors: new,
        });
    }
    s
}

fn facts(g: &GpuSnapshot, gpus: &[GpuSnapshot], full: bool) -> GpuTopologyFacts {
    let mut unavailable = BTreeMap::new();
    let mut take = |key: &str, why: Option<String>| {
        if let Some(w) = why {
            unavailable.insert(key.to_owned(), w);
        }
    };
    let why = |r: Reading<()>| match r {
        Reading::Value(()) => None,
        Reading::NotSupported => Some("not_supported".to_owned()),
        Reading::Error(e) => Some(e),
    };
    let t = &g.topology;
    take("numa_node", why(t.numa_node.as_ref().map(|_| ())));
    take("cpu_affinity", why(t.cpu_affinity.as_ref().map(|_| ())));
    take("peers", why(t.peers.as_ref().map(|_| ())));
    if let Reading::Error(e) = &t.fabric {
        take("fabric", Some(e.clone()));
    }
    if let Reading::Error(e) = &g.nvlink {
        take("nvlink", Some(e.clone()));
    }
    GpuTopologyFacts {
        index: g.index,
        uuid: g.uuid.value().cloned(),
        pci_bus_id: g.pci_bus_id.value().cloned(),
        numa_node: t.numa_node.get(),
        cpu_affinity: t.cpu_affinity.value().cloned(),
        nvlink: g
            .nvlink
            .value()
            .filter(|l| !l.is_empty())
            .map(|l| links_summary(g, l, gpus, full)),
        fabric: t.fabric.value().cloned(),
        unavailable,
    }
}

fn pair_facts(p: &Pair<'_>) -> PairFacts {
    PairFacts {
        gpu: p.a.index,
        peer: p.b.index,
        link: p.word(),
        nvlinks: p.nvlinks.unwrap_or(0),
        pci_level: p.path.and_then(|x| x.pci_level.get()),
        p2p_read: p.path.and_then(|x| x.p2p_read.get()),
        p2p_write: p.path.and_then(|x| x.p2p_write.get()),
        p2p_nvlink: p.path.and_then(|x| x.p2p_nvlink.get()),
    }
}

/// One sentence: the GPUs, how they are connected, the fabric, and the verdict with its main
/// reason.
fn headline(r: &TopologyReport, gpus: &[GpuSnapshot], pairs: &[Pair<'_>]) -> String {
    let counts: Vec<u32> = pairs
        .iter()
        .filter_map(|p| p.nvlinks)
        .filter(|&n| n > 0)
        .collect();
    let (lo, hi) = (counts.iter().min(), counts.iter().max());
    let wiring = match (r.interconnect.as_str(), lo, hi) {
        ("nvswitch", Some(lo), Some(hi)) if lo == hi && counts.len() == pairs.len() => {
            format!("NVSwitch, NV{hi} between every pair")
        }
        ("nvswitch", Some(lo), Some(hi)) => format!(
            "NVSwitch, NV{lo} to NV{hi} between {} of {} pairs",
            counts.len(),
            pairs.len()
        ),
        ("nvswitch", _, _) => "NVSwitch, no NVLink link up".to_owned(),
        ("nvlink", Some(lo), Some(hi)) => format!(
            "direct NVLink between {} of {} pairs (NV{lo} to NV{hi})",
            counts.len(),
            pairs.len()
        ),
        ("nvlink", _, _) => "direct NVLink, no link up".to_owned(),
        ("pcie", _, _) => {
            let mut words: Vec<&str> = pairs
                .iter()
                .filter_map(|p| p.path.and_then(|x| x.pci_level.get()))
                .map(|l| l.word())
                .collect();
            words.sort_unstable();
            words.dedup();
            if words.is_empty() {
                "PCIe only".to_owned()
            } else {
                format!("PCIe only ({})", words.join("/"))
            }
        }
        _ => "NVLink not readable".to_owned(),
    };
    let fabrics: Vec<_> = gpus
        .iter()
        .filter_map(|g| g.topology.fabric.value())
        .filter(|f| f.state != gpu_mcp_model::FabricState::NotSupported)
        .collect();
    let fabric = if fabrics.is_empty() {
        String::new()
    } else {
        let done = fabrics
            .iter()
            .filter(|f| f.state == gpu_mcp_model::FabricState::Completed && f.status == "success")
            .count();
        let mut cliques: Vec<u32> = fabrics.iter().map(|f| f.clique_id).collect();
        cliques.sort_unstable();
        cliques.dedup();
        let cliques = cliques
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "; fabric registered on {done} of {} GPUs (clique {cliques})",
            fabrics.len()
        )
    };
    let reason = match r.findings.first() {
        None => String::new(),
        Some(f) => {
            let more = r.findings.len() - 1;
            let who = match (f.gpu, f.peer) {
                (Some(a), Some(b)) => format!("GPU {a}/GPU {b}: "),
                (Some(a), None) => format!("GPU {a}: "),
                _ => String::new(),
            };
            let more = if more > 0 {
                format!(
                    " (+{more} more finding{})",
                    if more == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            };
            format!(": {who}{}{more}", f.finding.summary.trim_end_matches('.'))
        }
    };
    format!(
        "{} GPU{}, {wiring}{fabric}. Topology {}{reason}.",
        gpus.len(),
        if gpus.len() == 1 { "" } else { "s" },
        r.verdict.as_str()
    )
}

/// The text block: the headline, each finding with its action, the matrices and the legend.
pub(crate) fn text(r: &TopologyReport) -> String {
    let mut out = format!("{}\n", r.headline);
    for f in &r.findings {
        let who = match (f.gpu, f.peer) {
            (Some(a), Some(b)) => format!("GPU {a} and GPU {b}"),
            (Some(a), None) => format!("GPU {a}"),
            _ => "Node".to_owned(),
        };
        out.push_str(&format!(
            "\n{} ({}) {who}: {}\n  Observed {}; expected {}.\n  Action: {}\n",
            f.finding.severity.as_str().to_uppercase(),
            f.finding.check,
            f.finding.summary,
            f.finding.observed,
            f.finding.threshold,
            f.finding.action
        ));
    }
    out.push('\n');
    for row in &r.matrix {
        out.push_str(row);
        out.push('\n');
    }
    out.push_str(
        "Legend: X itself, NV# bonded NVLinks, PIX one PCIe switch, PXB several switches, PHB a host bridge, NODE within a NUMA node, SYS across NUMA nodes.\n\nPeer-to-peer read/write:\n",
    );
    for row in &r.p2p {
        out.push_str(row);
        out.push('\n');
    }
    for g in &r.gpus {
        let mut parts = Vec::new();
        if let Some(l) = &g.nvlink {
            let mut s = format!("NVLink {} of {} up", l.up, l.wired);
            if l.down > 0 {
                s.push_str(&format!(", {} down", l.down));
            }
            if l.disabled > 0 {
                s.push_str(&format!(", {} disabled", l.disabled));
            }
            s.push_str(&format!(" to {}", l.remote));
            parts.push(s);
        }
        if let Some(f) = &g.fabric {
            parts.push(format!(
                "fabric {} ({}, clique {})",
                f.state.as_str(),
                f.status,
                f.clique_id
            ));
        }
        if !g.unavailable.is_empty() {
            parts.push(format!(
                "not readable: {}",
                g.unavailable.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if !parts.is_empty() {
            out.push_str(&format!("\nGPU {}: {}.", g.index, parts.join("; ")));
        }
    }
    if !r.not_checked.is_empty() {
        out.push_str(&format!("\n\nNot checked: {}.", r.not_checked.join("; ")));
    }
    out.trim_end().to_owned()
}
