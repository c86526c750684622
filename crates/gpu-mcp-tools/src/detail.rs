//! How much an answer lists (`detail`): what a `problems` or `summary` health answer keeps of
//! the full report. The verdict, the counts and the summary are computed from every GPU first,
//! so they cover every GPU whatever is listed.

use gpu_mcp_model::args::{HealthArgs, HealthDetail};
use gpu_mcp_model::output::{HealthReport, Verdict};

/// Whether a GPU judged `verdict` is listed in the answer `args` ask for.
pub(crate) fn lists_gpu(args: &HealthArgs, verdict: Verdict) -> bool {
    match args.detail.unwrap_or_default() {
        HealthDetail::Full => true,
        HealthDetail::Problems => verdict >= args.mildest_listed(),
        HealthDetail::Summary => false,
    }
}

/// Trims a full report to what `args` ask for: under `problems` the GPUs, their reasons and the
/// node-level findings at or above the mildest verdict listed; under `summary` none of them.
pub(crate) fn narrow_health(report: &mut HealthReport, args: &HealthArgs) {
    let detail = args.detail.unwrap_or_default();
    match detail {
        HealthDetail::Full => return,
        HealthDetail::Summary => {
            report.gpus.clear();
            report.node_findings.clear();
        }
        HealthDetail::Problems => {
            let min = args.mildest_listed();
            report.gpus.retain(|g| lists_gpu(args, g.verdict));
            for g in &mut report.gpus {
                g.reasons.retain(|f| f.severity >= min);
            }
            report.node_findings.retain(|f| f.severity >= min);
            report.min_verdict = Some(min);
        }
    }
    report.detail = Some(detail);
}
