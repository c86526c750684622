//! The headline and the text block.

use gpu_mcp_model::GpuSnapshot;
use gpu_mcp_model::topology::TopologyReport;

use super::Pair;

/// `NV17` or `NV17 to NV18`.
fn span(lo: u32, hi: u32) -> String {
    if lo == hi {
        format!("NV{hi}")
    } else {
        format!("NV{lo} to NV{hi}")
    }
}

/// One sentence: the GPUs, how they are connected, the fabric, and the verdict with its main
/// reason.
pub(super) fn headline(r: &TopologyReport, gpus: &[GpuSnapshot], pairs: &[Pair<'_>]) -> String {
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
            "NVSwitch, {} between {} of {} pairs",
            span(*lo, *hi),
            counts.len(),
            pairs.len()
        ),
        ("nvswitch", _, _) => "NVSwitch, no NVLink link up".to_owned(),
        ("nvlink", Some(lo), Some(hi)) => format!(
            "direct NVLink between {} of {} pairs ({})",
            counts.len(),
            pairs.len(),
            span(*lo, *hi)
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
        let registered = |f: &&&gpu_mcp_model::FabricInfo| {
            f.state == gpu_mcp_model::FabricState::Completed && f.status == "success"
        };
        let done = fabrics.iter().filter(registered).count();
        let mut cliques: Vec<u32> = fabrics
            .iter()
            .filter(registered)
            .map(|f| f.clique_id)
            .collect();
        cliques.sort_unstable();
        cliques.dedup();
        let cliques = if cliques.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = cliques.iter().map(u32::to_string).collect();
            format!(
                " (clique{} {})",
                if list.len() == 1 { "" } else { "s" },
                list.join(", ")
            )
        };
        format!(
            "; fabric registered on {done} of {} GPUs{cliques}",
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
            if l.up > 0 {
                s.push_str(&format!(" to {}", l.remote));
            }
            parts.push(s);
        }
        if let Some(f) = &g.fabric {
            parts.push(if f.state == gpu_mcp_model::FabricState::Completed {
                format!("fabric completed ({}, clique {})", f.status, f.clique_id)
            } else {
                format!("fabric {}", f.state.as_str())
            });
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
