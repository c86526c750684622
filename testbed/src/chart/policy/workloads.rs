//! The two workloads: the agent DaemonSet (selector consistency, no API token) and the gateway
//! Deployment (its flags against the agents, its exec command, its RBAC).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::json::{binds_service_account, find, flags, is_subset, labels_at, parse_selector};
use super::pod::check_pod;
use super::rbac::{check_cluster_rbac, check_rbac};
use super::{AGENT_HOST_PATHS, GATEWAY_DEFAULT_SELECTOR, GATEWAY_UID, Object, Release};

/// The agent DaemonSet: selector consistency, pod hardening, no API token.
pub(super) fn check_agent(
    agent: &Object<'_>,
    pod_labels: &BTreeMap<String, String>,
    objects: &[Object<'_>],
    out: &mut Vec<String>,
) {
    let id = agent.id();
    for (key, want) in GATEWAY_DEFAULT_SELECTOR {
        if pod_labels.get(*key).map(String::as_str) != Some(want) {
            out.push(format!(
                "{id}: pod label {key}={want} is missing, so the gateway's default selector would not find the agents"
            ));
        }
    }
    let match_labels = labels_at(agent.value, "/spec/selector/matchLabels");
    if match_labels.is_empty() || !is_subset(&match_labels, pod_labels) {
        out.push(format!(
            "{id}: spec.selector.matchLabels must be a non-empty subset of the pod labels"
        ));
    }
    let pod = &agent.value["spec"]["template"]["spec"];
    if pod["automountServiceAccountToken"] != Value::Bool(false) {
        out.push(format!(
            "{id}: agent pods must set automountServiceAccountToken: false"
        ));
    }
    if let Some(sa) = pod["serviceAccountName"].as_str() {
        match find(objects, "ServiceAccount", sa) {
            Some(sa_obj) if sa_obj.value["automountServiceAccountToken"] == Value::Bool(false) => {}
            Some(_) => out.push(format!(
                "{id}: ServiceAccount {sa} must not automount a token"
            )),
            None => out.push(format!(
                "{id}: ServiceAccount {sa} is not part of the chart"
            )),
        }
        for binding in objects.iter().filter(|o| o.kind == "RoleBinding") {
            if binds_service_account(binding.value, sa) {
                out.push(format!(
                    "{}: the agents' ServiceAccount must hold no role",
                    binding.id()
                ));
            }
        }
    }
    check_pod(&id, pod, "/gpu-mcp-agent", AGENT_HOST_PATHS, out);
}

/// The gateway Deployment, its RBAC and its view of the agents.
pub(super) fn check_gateway(
    gateway: &Object<'_>,
    agent_labels: &BTreeMap<String, String>,
    agent: &Object<'_>,
    objects: &[Object<'_>],
    release: &Release<'_>,
    out: &mut Vec<String>,
) {
    let id = gateway.id();
    let pod = &gateway.value["spec"]["template"]["spec"];
    check_pod(&id, pod, "/gpu-mcp-gateway", &[], out);
    if gateway.value["spec"]["replicas"].as_i64().is_none() {
        out.push(format!("{id}: spec.replicas must be set"));
    }
    for (path, want) in [
        ("/securityContext/runAsNonRoot", Value::Bool(true)),
        ("/securityContext/runAsUser", Value::from(GATEWAY_UID)),
    ] {
        if pod.pointer(path) != Some(&want) {
            out.push(format!("{id}: pod {path} must be {want}"));
        }
    }
    if pod.pointer("/affinity/podAntiAffinity").is_none() {
        out.push(format!("{id}: gateway replicas need pod anti-affinity"));
    }

    let Some(container) = pod["containers"].get(0) else {
        return;
    };
    let flags = flags(container);
    match flags.get("selector") {
        Some(selector) => match parse_selector(selector) {
            Some(terms) if !terms.is_empty() => {
                for (k, v) in &terms {
                    if agent_labels.get(k) != Some(v) {
                        out.push(format!(
                            "{id}: --selector term {k}={v} does not match the agent pod labels"
                        ));
                    }
                }
                let keys: BTreeSet<&str> = terms.iter().map(|(k, _)| k.as_str()).collect();
                if !keys.contains("app.kubernetes.io/component") {
                    out.push(format!("{id}: --selector must narrow to component=agent (not the gateway's own pods)"));
                }
            }
            _ => out.push(format!(
                "{id}: --selector {selector:?} is not a list of key=value terms"
            )),
        },
        None => out.push(format!("{id}: --selector is not set")),
    }
    if flags.get("namespace").map(String::as_str) != Some(release.namespace) {
        out.push(format!(
            "{id}: --namespace must be the release namespace {:?}",
            release.namespace
        ));
    }
    let agent_port = agent.value["spec"]["template"]["spec"]["containers"][0]
        .pointer("/ports/0/containerPort")
        .and_then(Value::as_i64);
    if flags.get("agent-port").and_then(|p| p.parse::<i64>().ok()) != agent_port {
        out.push(format!(
            "{id}: --agent-port must equal the agent's container port {agent_port:?}"
        ));
    }
    let agent_container = &agent.value["spec"]["template"]["spec"]["containers"][0];
    if let Some(name) = flags.get("agent-container")
        && agent_container["name"].as_str() != Some(name.as_str())
    {
        out.push(format!(
            "{id}: --agent-container {name:?} is not the agent's container"
        ));
    }
    let routing = flags.get("routing").map(String::as_str).unwrap_or("http");
    if routing == "exec" {
        check_exec_command(&id, flags.get("exec-command"), agent_container, out);
    }
    if !matches!(routing, "http" | "exec") {
        out.push(format!(
            "{id}: --routing {routing:?} is neither http nor exec"
        ));
    }

    let Some(sa) = pod["serviceAccountName"].as_str() else {
        out.push(format!("{id}: the gateway needs its own ServiceAccount"));
        return;
    };
    if find(objects, "ServiceAccount", sa).is_none() {
        out.push(format!(
            "{id}: ServiceAccount {sa} is not part of the chart"
        ));
    }
    check_rbac(sa, routing, objects, out);
    check_cluster_rbac(
        sa,
        release.namespace,
        flags.contains_key("cluster-context"),
        objects,
        out,
    );
}

/// Exec routing starts `/gpu-mcp-agent --transport stdio` in the agent container, in the NVML
/// mode the agents run in.
pub(super) fn check_exec_command(
    id: &str,
    command: Option<&String>,
    agent: &Value,
    out: &mut Vec<String>,
) {
    let Some(command) = command else {
        out.push(format!(
            "{id}: exec routing needs --exec-command (the default assumes real GPUs)"
        ));
        return;
    };
    let words: Vec<&str> = command.split_whitespace().collect();
    if words.first() != Some(&"/gpu-mcp-agent")
        || !words.windows(2).any(|w| w == ["--transport", "stdio"])
    {
        out.push(format!(
            "{id}: --exec-command {command:?} must run /gpu-mcp-agent --transport stdio"
        ));
    }
    let agent_mode = agent["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "GPU_MCP_AGENT_NVML_MODE")
        .and_then(|e| e["value"].as_str());
    let exec_mode = words
        .windows(2)
        .find(|w| w[0] == "--nvml-mode")
        .map(|w| w[1]);
    if exec_mode.is_some() && exec_mode != agent_mode {
        out.push(format!(
            "{id}: --exec-command runs NVML mode {exec_mode:?}, the agents run {agent_mode:?}"
        ));
    }
}
