//! Readable text blocks that accompany the structured results.

use std::fmt::Write as _;

use gpu_mcp_model::output::{HealthReport, Verdict, XidReport};
use gpu_mcp_model::{GpuAccess, GpuSnapshot, KernelLogStatus, NodeSnapshot, Reading};

fn r<T: std::fmt::Display>(x: &Reading<T>) -> String {
    match x {
        Reading::Value(v) => v.to_string(),
        Reading::NotSupported => "n/a".to_owned(),
        Reading::Error(_) => "unreadable".to_owned(),
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn gpu_line(g: &GpuSnapshot) -> String {
    let mut s = format!(
        "GPU {} {} {} {}",
        g.index,
        r(&g.name),
        r(&g.pci_bus_id),
        r(&g.uuid)
    );
    if g.access != GpuAccess::Ok {
        let _ = write!(
            s,
            ": {}",
            g.access_detail.as_deref().unwrap_or("unreadable")
        );
        return s;
    }
    let _ = write!(s, ": {} °C", r(&g.temperature.gpu_c));
    if let (Some(d), Some(l)) = (g.power.draw_w.get(), g.power.limit_w.get()) {
        let _ = write!(s, ", {d:.0}/{l:.0} W");
    }
    if let Some(u) = g.utilization.get() {
        let _ = write!(s, ", util {}%", u.gpu_percent);
    }
    if let Some(m) = g.memory.get() {
        let _ = write!(
            s,
            ", mem {:.1}/{:.1} GiB",
            m.used_bytes as f64 / GIB,
            m.total_bytes as f64 / GIB
        );
    }
    if let (Some(c), Some(m)) = (g.clocks.sm_mhz.get(), g.clocks.max_sm_mhz.get()) {
        let _ = write!(s, ", SM {c}/{m} MHz");
    }
    if let Some(reasons) = g.clock_event_reasons.value()
        && !reasons.is_empty()
    {
        let names: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
        let _ = write!(s, ", clocks limited by {}", names.join("+"));
    }
    if let Some(e) = g.ecc.volatile.get() {
        let _ = write!(s, ", ECC {}/{} (corr/uncorr)", e.corrected, e.uncorrected);
    }
    if let (Some(cg), Some(cw)) = (g.pcie.current_generation.get(), g.pcie.current_width.get()) {
        let _ = write!(s, ", PCIe Gen{cg} x{cw}");
    }
    if let Some(p) = g.processes.value() {
        let _ = write!(s, ", {} process(es)", p.len());
    }
    if let Some(true) = g.mig.enabled.get() {
        let n = g.mig.instances.value().map_or(0, Vec::len);
        let _ = write!(s, ", MIG on ({n} instances)");
    }
    s
}

/// Text of `get_gpu_inventory`: a line per selected GPU (those with an index in `keep`).
pub(crate) fn inventory(node: &str, snap: &NodeSnapshot, keep: &[u32]) -> String {
    let mut s = format!(
        "Node {node} ({} backend): {} GPU(s), driver {}, CUDA {}.",
        snap.backend,
        snap.gpus.len(),
        r(&snap.driver_version),
        r(&snap.cuda_driver_version)
    );
    for g in snap.gpus.iter().filter(|g| keep.contains(&g.index)) {
        s.push('\n');
        s.push_str(&gpu_line(g));
    }
    s
}

/// The one-paragraph summary inside the health report.
pub(crate) fn health_summary(h: &HealthReport) -> String {
    let c = &h.counts;
    let total = c.healthy + c.warning + c.degraded + c.critical;
    let mut s = format!(
        "Node {} is {}: {total} GPU(s) checked, {} healthy, {} warning, {} degraded, {} critical.",
        h.node,
        h.verdict.as_str(),
        c.healthy,
        c.warning,
        c.degraded,
        c.critical
    );
    let worst: Vec<String> = h
        .gpus
        .iter()
        .filter(|g| g.verdict >= Verdict::Degraded)
        .filter_map(|g| {
            g.reasons
                .first()
                .map(|f| format!(" GPU {}: {}", g.index, f.summary))
        })
        .collect();
    for w in worst {
        s.push_str(&w);
    }
    for f in &h.node_findings {
        s.push(' ');
        s.push_str(&f.summary);
    }
    match h.sources.kernel_log.status {
        KernelLogStatus::Ok | KernelLogStatus::NotConfigured => {}
        _ => {
            let _ = write!(
                s,
                " The kernel log could not be read ({}), so older Xid errors may be missing.",
                h.sources
                    .kernel_log
                    .detail
                    .as_deref()
                    .unwrap_or("unknown reason")
            );
        }
    }
    s
}

/// Text of `get_gpu_health`.
pub(crate) fn health(h: &HealthReport) -> String {
    let mut s = h.summary.clone();
    for g in &h.gpus {
        let _ = write!(
            s,
            "\n\nGPU {} {} ({}): {}",
            g.index,
            g.name.as_deref().unwrap_or("?"),
            g.pci_bus_id.as_deref().unwrap_or("?"),
            g.verdict.as_str().to_uppercase()
        );
        for f in &g.reasons {
            let _ = write!(
                s,
                "\n  - [{}] {}\n    observed: {}; threshold: {}\n    action: {}",
                f.severity.as_str(),
                f.summary,
                f.observed,
                f.threshold,
                f.action
            );
        }
        for n in &g.notes {
            let _ = write!(s, "\n  note: {n}");
        }
    }
    for f in &h.node_findings {
        let _ = write!(
            s,
            "\n\nNode: [{}] {}\n  Action: {}",
            f.severity.as_str(),
            f.summary,
            f.action
        );
    }
    let c = &h.counts;
    let total = c.healthy + c.warning + c.degraded + c.critical;
    let unlisted = total as usize - h.gpus.len().min(total as usize);
    if h.detail.is_some() && unlisted > 0 {
        let _ = write!(
            s,
            "\n\n{unlisted} GPU(s) not listed (counted above); `detail: full` lists every GPU."
        );
    }
    s
}

/// The one-paragraph summary inside the Xid report.
pub(crate) fn xid_summary(x: &XidReport) -> String {
    let window = x
        .since
        .as_deref()
        .map_or("in the available history".to_owned(), |t| {
            format!("since {t}")
        });
    if x.total_events == 0 {
        let mut s = format!("No Xid errors on node {} {window}.", x.node);
        if x.sources.kernel_log.status != KernelLogStatus::Ok {
            let _ = write!(
                s,
                " The kernel log was not read ({}).",
                x.sources
                    .kernel_log
                    .detail
                    .as_deref()
                    .unwrap_or("not configured")
            );
        }
        s.push_str(&crate::nvswitch::sentence(&x.nvswitch));
        return s;
    }
    let crit = x
        .groups
        .iter()
        .filter(|g| g.severity == gpu_mcp_model::xid::XidSeverity::Critical)
        .count();
    let mut s = format!(
        "{} Xid event(s) on node {} {window} in {} group(s), {crit} of them critical.",
        x.total_events,
        x.node,
        x.groups.len()
    );
    if let Some(g) = x.groups.first() {
        let who = g.gpu_index.map_or_else(
            || g.pci_bus_id.clone().unwrap_or_else(|| "unknown GPU".into()),
            |i| format!("GPU {i}"),
        );
        let _ = write!(
            s,
            " Worst: Xid {} ({}) on {who}, {} time(s): {}",
            g.xid, g.name, g.count, g.action
        );
    }
    s.push_str(&crate::nvswitch::sentence(&x.nvswitch));
    s
}

/// Text of `analyze_xid_errors`.
pub(crate) fn xids(x: &XidReport) -> String {
    let mut s = x.summary.clone();
    for g in &x.groups {
        let who = g.gpu_index.map_or_else(
            || g.pci_bus_id.clone().unwrap_or_else(|| "unknown GPU".into()),
            |i| format!("GPU {i}"),
        );
        let _ = write!(
            s,
            "\n- {who} Xid {} {} [{}], {} time(s), first {}, last {}\n  Action: {}",
            g.xid,
            g.name,
            g.severity,
            g.count,
            g.first_seen.as_deref().unwrap_or("?"),
            g.last_seen.as_deref().unwrap_or("?"),
            g.action
        );
    }
    if x.truncated {
        let _ = write!(
            s,
            "\n({} of {} events listed; raise `limit` to see more.)",
            x.returned_events, x.total_events
        );
    }
    crate::nvswitch::lines(&x.nvswitch, &mut s);
    s
}
