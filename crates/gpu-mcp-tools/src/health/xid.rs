//! Recent Xid errors of the GPU.

use gpu_mcp_model::output::{Finding, Verdict, XidGroup};

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

/// Rule `xid_unattributed`: Xid events in the window from a GPU the driver does not list as a
/// GPU of this node (for example one that fell off the bus), one node-level finding per group.
pub fn xid_unattributed(groups: &[XidGroup], since: &str) -> Vec<Finding> {
    groups
        .iter()
        .filter(|x| x.gpu_index.is_none())
        .filter_map(|grp| {
            let sev = Verdict::from(grp.severity);
            if sev == Verdict::Healthy {
                return None;
            }
            let who = grp
                .pci_bus_id
                .clone()
                .or_else(|| grp.gpu_uuid.clone())
                .unwrap_or_else(|| "an unidentified GPU".to_owned());
            Some(Finding {
                check: "xid_unattributed".to_owned(),
                severity: sev,
                summary: format!(
                    "Xid {} ({}) from {who}, which the driver does not list as a GPU of this node (it may have fallen off the bus).",
                    grp.xid, grp.name
                ),
                observed: format!("Xid {} ×{} on {who}", grp.xid, grp.count),
                threshold: format!("{} Xid since {since}", grp.severity),
                action: grp.action.clone(),
            })
        })
        .collect()
}
