//! What the caches keep of a Node or a Pod: the compact records, built as each object
//! arrives so the full objects are never stored.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{
    Condition, ContainerFacts, GPU_LABEL_PREFIX, GpuPod, MESSAGE_LIMIT, NodeFacts, Taint,
    is_gpu_resource,
};

/// `text` cut to [`MESSAGE_LIMIT`] bytes on a character boundary.
fn bounded(text: &str) -> String {
    if text.len() <= MESSAGE_LIMIT {
        return text.to_owned();
    }
    let mut end = MESSAGE_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// An extended-resource quantity as a whole number (they are integers by the API's rule).
fn count(quantity: &Quantity) -> Option<i64> {
    quantity.0.trim().parse().ok()
}

fn gpu_resources(map: Option<&BTreeMap<String, Quantity>>) -> BTreeMap<String, i64> {
    map.into_iter()
        .flatten()
        .filter(|(k, _)| is_gpu_resource(k))
        .filter_map(|(k, q)| Some((k.clone(), count(q)?)))
        .collect()
}

/// What the gateway keeps of a Node.
pub fn node_facts(node: &Node) -> NodeFacts {
    let spec = node.spec.as_ref();
    let status = node.status.as_ref();
    NodeFacts {
        name: node.metadata.name.clone().unwrap_or_default(),
        gpu_labels: node
            .metadata
            .labels
            .iter()
            .flatten()
            .filter(|(k, _)| k.starts_with(GPU_LABEL_PREFIX))
            .map(|(k, v)| (k.clone(), bounded(v)))
            .collect(),
        taints: spec
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .map(|t| Taint {
                key: t.key.clone(),
                value: t.value.clone().filter(|v| !v.is_empty()),
                effect: t.effect.clone(),
            })
            .collect(),
        conditions: status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .map(|c| Condition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone().filter(|r| !r.is_empty()),
                message: c.message.as_deref().filter(|m| !m.is_empty()).map(bounded),
            })
            .collect(),
        unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
        capacity: gpu_resources(status.and_then(|s| s.capacity.as_ref())),
        allocatable: gpu_resources(status.and_then(|s| s.allocatable.as_ref())),
    }
}

fn container_gpus(container: &Container) -> BTreeMap<String, i64> {
    let resources = container.resources.as_ref();
    let mut gpus = gpu_resources(resources.and_then(|r| r.limits.as_ref()));
    // A request, when given, is what the scheduler counts; it must equal the limit anyway.
    gpus.extend(gpu_resources(resources.and_then(|r| r.requests.as_ref())));
    gpus.retain(|_, n| *n > 0);
    gpus
}

fn container_state(facts: &mut ContainerFacts, status: &ContainerStatus) {
    facts.restart_count = status.restart_count;
    if let Some(state) = status.state.as_ref() {
        if let Some(running) = state.running.as_ref() {
            facts.state = "running".into();
            facts.started_at = running.started_at.as_ref().map(|t| t.0);
        } else if let Some(t) = state.terminated.as_ref() {
            facts.state = "terminated".into();
            facts.reason = t.reason.clone();
            facts.exit_code = Some(t.exit_code);
            facts.message = t.message.as_deref().filter(|m| !m.is_empty()).map(bounded);
            facts.started_at = t.started_at.as_ref().map(|t| t.0);
            facts.finished_at = t.finished_at.as_ref().map(|t| t.0);
        } else if let Some(w) = state.waiting.as_ref() {
            facts.state = "waiting".into();
            facts.reason = w.reason.clone();
            facts.message = w.message.as_deref().filter(|m| !m.is_empty()).map(bounded);
        }
    }
    facts.last_termination = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| (t.reason.clone(), t.exit_code));
}

/// What the gateway keeps of a Pod: `None` when it requests no GPU.
pub fn gpu_pod(pod: &Pod) -> Option<GpuPod> {
    let spec = pod.spec.as_ref()?;
    let status = pod.status.as_ref();
    let statuses = |init: bool| {
        status
            .and_then(|s| {
                if init {
                    s.init_container_statuses.as_ref()
                } else {
                    s.container_statuses.as_ref()
                }
            })
            .into_iter()
            .flatten()
    };
    let mut containers = Vec::new();
    let mut sum: BTreeMap<String, i64> = BTreeMap::new();
    let mut init_max: BTreeMap<String, i64> = BTreeMap::new();
    let all = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| (c, true))
        .chain(spec.containers.iter().map(|c| (c, false)));
    for (container, init) in all {
        let gpus = container_gpus(container);
        if gpus.is_empty() {
            continue;
        }
        for (resource, n) in &gpus {
            if init {
                let max = init_max.entry(resource.clone()).or_default();
                *max = (*max).max(*n);
            } else {
                *sum.entry(resource.clone()).or_default() += n;
            }
        }
        let mut facts = ContainerFacts {
            name: container.name.clone(),
            init,
            gpus,
            ..ContainerFacts::default()
        };
        if let Some(s) = statuses(init).find(|s| s.name == container.name) {
            container_state(&mut facts, s);
        }
        containers.push(facts);
    }
    if containers.is_empty() {
        return None;
    }
    for (resource, n) in init_max {
        let total = sum.entry(resource).or_default();
        *total = (*total).max(n);
    }
    Some(GpuPod {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone()?,
        node: spec.node_name.clone().filter(|n| !n.is_empty()),
        phase: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        reason: status.and_then(|s| s.reason.clone()),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        started: status.and_then(|s| s.start_time.as_ref()).map(|t| t.0),
        gpus: sum,
        containers,
    })
}
