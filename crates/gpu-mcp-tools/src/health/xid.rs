//! Recent Xid errors of the GPU.

use gpu_mcp_model::output::{Verdict, XidGroup};

use super::Assessment;

/// Rule `recent_xid`: Xid events of this GPU in the window, one finding per code.
pub fn recent_xid(groups: &[&XidGroup], since: &str, a: &mut Assessment) {
    for grp in groups {
        let severity = Verdict::from(grp.severity);
        let when = grp
            .last_seen
            .as_deref()
            .map_or(String::new(), |t| format!(", last at {t}"));
        if grp.xid == 45 && groups.iter().all(|g| g.xid == 45) {
            // NVIDIA's WORKFLOW_XID_45: alone, the channel teardown points at the fabric
            // manager; with other Xids it is their follow-up.
            a.find(
                "recent_xid",
                Verdict::Warning,
                format!(
                    "Xid 45 ({}) seen {} time(s) without another Xid on this GPU.",
                    grp.name, grp.count
                ),
                format!("Xid 45 ×{}{when}, no other Xid", grp.count),
                format!("Xid 45 alone since {since}"),
                "Restart the fabric manager (nvidia-fabricmanager) on NVSwitch systems; elsewhere the application was aborted (Ctrl-C, kill, GPU reset) and no action is needed.",
            );
            continue;
        }
        if severity == Verdict::Healthy {
            a.notes.push(format!(
                "Xid {} ({}) seen {} time(s){when}: informational.",
                grp.xid, grp.name, grp.count
            ));
            continue;
        }
        let summary = if grp.application_error {
            format!(
                "Xid {} ({}) seen {} time(s): usually a workload error, not a hardware fault.",
                grp.xid, grp.name, grp.count
            )
        } else if !grp.known {
            format!(
                "Xid {} (not in the catalog) seen {} time(s).",
                grp.xid, grp.count
            )
        } else {
            format!("Xid {} ({}) seen {} time(s).", grp.xid, grp.name, grp.count)
        };
        a.find(
            "recent_xid",
            severity,
            summary,
            format!("Xid {} ×{}{when}", grp.xid, grp.count),
            format!("{} Xid since {since}", grp.severity),
            grp.action.clone(),
        );
    }
}
