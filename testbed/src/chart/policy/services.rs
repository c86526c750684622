//! Objects that select pods (Services, PDBs, NetworkPolicies, ServiceMonitors) must select what
//! the chart deploys.

use super::Object;
use super::json::{is_subset, labels_at, str_at, workload_for};

/// A Service must select the pods of one workload and target a port they name.
pub(super) fn check_service(svc: &Object<'_>, objects: &[Object<'_>], out: &mut Vec<String>) {
    let selector = labels_at(svc.value, "/spec/selector");
    let Some(workload) = workload_for(&selector, objects) else {
        out.push(format!(
            "{}: selector {selector:?} matches no pod template of the chart",
            svc.id()
        ));
        return;
    };
    let names: Vec<&str> = workload.value["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .filter_map(|p| str_at(p, "/name"))
        .collect();
    for port in svc.value["spec"]["ports"].as_array().into_iter().flatten() {
        match port["targetPort"].as_str() {
            Some(name) if names.contains(&name) => {}
            _ => out.push(format!(
                "{}: targetPort must name a port of {}",
                svc.id(),
                workload.id()
            )),
        }
    }
}

/// PDBs, NetworkPolicies and ServiceMonitors must select something the chart deploys.
pub(super) fn check_selects_something(
    obj: &Object<'_>,
    objects: &[Object<'_>],
    out: &mut Vec<String>,
) {
    let (pointer, targets): (&str, &[&str]) = match obj.kind {
        "NetworkPolicy" => (
            "/spec/podSelector/matchLabels",
            &["DaemonSet", "Deployment"],
        ),
        "ServiceMonitor" => ("/spec/selector/matchLabels", &["Service"]),
        _ => ("/spec/selector/matchLabels", &["DaemonSet", "Deployment"]),
    };
    let selector = labels_at(obj.value, pointer);
    let hit = !selector.is_empty()
        && objects.iter().any(|o| {
            targets.contains(&o.kind) && {
                let labels = if o.kind == "Service" {
                    labels_at(o.value, "/metadata/labels")
                } else {
                    labels_at(o.value, "/spec/template/metadata/labels")
                };
                is_subset(&selector, &labels)
            }
        });
    if !hit {
        out.push(format!(
            "{}: selector {selector:?} matches nothing the chart deploys",
            obj.id()
        ));
    }
    if obj.kind == "ServiceMonitor" {
        check_service_monitor(obj, out);
    }
}

/// The ServiceMonitor CRD has no schema in the Kubernetes bundle: check the fields we write.
fn check_service_monitor(obj: &Object<'_>, out: &mut Vec<String>) {
    const SPEC: &[&str] = &["selector", "endpoints", "namespaceSelector", "jobLabel"];
    const ENDPOINT: &[&str] = &["port", "path", "interval", "scrapeTimeout", "scheme"];
    if str_at(obj.value, "/apiVersion") != Some("monitoring.coreos.com/v1") {
        out.push(format!(
            "{}: apiVersion must be monitoring.coreos.com/v1",
            obj.id()
        ));
    }
    let spec_keys = obj.value["spec"]
        .as_object()
        .map(|m| m.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    for key in spec_keys.iter().filter(|k| !SPEC.contains(&k.as_str())) {
        out.push(format!("{}: unknown field spec.{key}", obj.id()));
    }
    let endpoints = obj.value["spec"]["endpoints"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if endpoints.is_empty() {
        out.push(format!("{}: spec.endpoints must not be empty", obj.id()));
    }
    for ep in endpoints {
        for key in ep
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
            .filter(|k| !ENDPOINT.contains(&k.as_str()))
        {
            out.push(format!(
                "{}: unknown field spec.endpoints[].{key}",
                obj.id()
            ));
        }
    }
}
