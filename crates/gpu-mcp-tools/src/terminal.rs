//! Rendering for a person at a terminal (`gpu-mcp-agent health`, also through `kubectl exec`):
//! one row per GPU in the manner of `nvidia-smi`, then every finding with its action.
//! The sentences are the report's own (the same as the MCP text block); only the layout is here.

use std::fmt::Write as _;

use gpu_mcp_model::args::HealthArgs;
use gpu_mcp_model::output::{HealthReport, Verdict};
use gpu_mcp_protocol::Content;

use crate::AgentCatalog;

/// Column headers of the GPU table.
const HEADERS: [&str; 4] = ["GPU", "Name", "Bus-Id", "Verdict"];

/// Checks the node with `get_gpu_health`'s defaults: the report rendered by [`health`] and its
/// verdict, or why the GPUs could not be read.
pub async fn check_health(catalog: &AgentCatalog) -> Result<(String, Verdict), String> {
    match catalog.health_report(HealthArgs::default()).await {
        Ok(report) => Ok((health(&report), report.verdict)),
        Err(e) => Err(e
            .content
            .iter()
            .find_map(|c| match c {
                Content::Text { text } => Some(text.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "the health check failed".to_owned())),
    }
}

/// The health report as a table of GPUs followed by the findings and their actions.
pub fn health(h: &HealthReport) -> String {
    let rows: Vec<[String; 4]> = h
        .gpus
        .iter()
        .map(|g| {
            [
                g.index.to_string(),
                g.name.clone().unwrap_or_else(|| "?".to_owned()),
                g.pci_bus_id.clone().unwrap_or_else(|| "?".to_owned()),
                g.verdict.as_str().to_uppercase(),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == 0 {
                let _ = write!(l, "{cell:>w$}");
            } else {
                let _ = write!(l, "  {cell:<w$}");
            }
        }
        l.trim_end().to_owned()
    };
    let mut s = format!(
        "Node {} ({} backend): {}\n\n",
        h.node,
        h.backend,
        h.verdict.as_str().to_uppercase()
    );
    s.push_str(&line(HEADERS));
    s.push('\n');
    for row in &rows {
        s.push_str(&line([&row[0], &row[1], &row[2], &row[3]]));
        s.push('\n');
    }
    let findings = h.gpus.iter().flat_map(|g| {
        g.reasons
            .iter()
            .map(move |f| (format!("GPU {}", g.index), f))
    });
    let node = h.node_findings.iter().map(|f| ("Node".to_owned(), f));
    let mut any = false;
    for (who, f) in findings.chain(node) {
        if !any {
            s.push_str("\nFindings:\n");
            any = true;
        }
        let _ = write!(
            s,
            "  {who} [{}] {}\n    observed: {}\n    action:   {}\n",
            f.severity.as_str(),
            f.summary,
            f.observed,
            f.action
        );
    }
    let _ = write!(s, "\n{}\n", h.summary);
    s
}
