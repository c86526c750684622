//! Policy checks over one rendered release of the chart.
//!
//! The Kubernetes schemas say whether a manifest is well formed; these checks say whether it is
//! the manifest we mean to ship: least privilege, exact RBAC, probes and resources everywhere,
//! and labels that the gateway's agent selector really matches.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The gateway's built-in agent selector (without flags): `name` and `component` labels.
pub(crate) const GATEWAY_DEFAULT_SELECTOR: &[(&str, &str)] = &[
    ("app.kubernetes.io/name", "k8s-gpu-mcp-server"),
    ("app.kubernetes.io/component", "agent"),
];

/// Capabilities a container may add, and only with the kernel log mounted.
const KMSG_CAPABILITY: &str = "SYSLOG";
/// The only host path the chart may mount.
const KMSG_PATH: &str = "/dev/kmsg";
/// UID the gateway runs as.
const GATEWAY_UID: i64 = 1000;

/// Where a rendered release lives.
#[derive(Debug, Clone)]
pub(crate) struct Release<'a> {
    pub(crate) name: &'a str,
    pub(crate) namespace: &'a str,
}

/// One object of the render, with a printable identity.
struct Object<'a> {
    value: &'a Value,
    kind: &'a str,
    name: &'a str,
}

impl Object<'_> {
    fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// Checks every policy and returns one line per violation (empty when the render is acceptable).
pub(crate) fn check(docs: &[Value], release: &Release<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let objects: Vec<Object<'_>> = docs
        .iter()
        .filter(|d| !d.is_null())
        .map(|value| Object {
            value,
            kind: str_at(value, "/kind").unwrap_or("<no kind>"),
            name: str_at(value, "/metadata/name").unwrap_or("<no name>"),
        })
        .collect();

    for obj in &objects {
        check_metadata(obj, release, &mut out);
        if matches!(obj.kind, "ClusterRole" | "ClusterRoleBinding") {
            out.push(format!(
                "{}: the chart must not grant cluster-wide permissions",
                obj.id()
            ));
        }
    }

    let daemonsets: Vec<&Object<'_>> = objects.iter().filter(|o| o.kind == "DaemonSet").collect();
    let [agent] = daemonsets.as_slice() else {
        out.push(format!(
            "expected exactly one DaemonSet (the agents), found {}",
            daemonsets.len()
        ));
        return out;
    };
    let agent_labels = labels_at(agent.value, "/spec/template/metadata/labels");
    check_agent(agent, &agent_labels, &objects, &mut out);

    let deployments: Vec<&Object<'_>> = objects.iter().filter(|o| o.kind == "Deployment").collect();
    match deployments.as_slice() {
        [] => {
            for obj in &objects {
                if matches!(obj.kind, "Role" | "RoleBinding") {
                    out.push(format!("{}: RBAC rendered without a gateway", obj.id()));
                }
            }
        }
        [gateway] => check_gateway(gateway, &agent_labels, agent, &objects, release, &mut out),
        more => out.push(format!(
            "expected at most one Deployment (the gateway), found {}",
            more.len()
        )),
    }

    for obj in &objects {
        match obj.kind {
            "Service" => check_service(obj, &objects, &mut out),
            "PodDisruptionBudget" | "NetworkPolicy" | "ServiceMonitor" => {
                check_selects_something(obj, &objects, &mut out);
            }
            _ => {}
        }
    }
    check_auth(&objects, &mut out);
    out
}

fn check_metadata(obj: &Object<'_>, release: &Release<'_>, out: &mut Vec<String>) {
    let labels = labels_at(obj.value, "/metadata/labels");
    for (key, want) in [
        ("app.kubernetes.io/name", "k8s-gpu-mcp-server"),
        ("app.kubernetes.io/instance", release.name),
        ("app.kubernetes.io/managed-by", "Helm"),
    ] {
        if labels.get(key).map(String::as_str) != Some(want) {
            out.push(format!(
                "{}: label {key} should be {want:?}, is {:?}",
                obj.id(),
                labels.get(key)
            ));
        }
    }
    if str_at(obj.value, "/metadata/namespace") != Some(release.namespace) {
        out.push(format!(
            "{}: metadata.namespace should be {:?}",
            obj.id(),
            release.namespace
        ));
    }
}

/// The agent DaemonSet: selector consistency, pod hardening, no API token.
fn check_agent(
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
    check_pod(&id, pod, "/gpu-mcp-agent", out);
}

/// The gateway Deployment, its RBAC and its view of the agents.
fn check_gateway(
    gateway: &Object<'_>,
    agent_labels: &BTreeMap<String, String>,
    agent: &Object<'_>,
    objects: &[Object<'_>],
    release: &Release<'_>,
    out: &mut Vec<String>,
) {
    let id = gateway.id();
    let pod = &gateway.value["spec"]["template"]["spec"];
    check_pod(&id, pod, "/gpu-mcp-gateway", out);
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
}

/// Exec routing starts `/gpu-mcp-agent --transport stdio` in the agent container, in the NVML
/// mode the agents run in.
fn check_exec_command(id: &str, command: Option<&String>, agent: &Value, out: &mut Vec<String>) {
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
        .find(|e| e["name"] == "GPU_MCP_NVML_MODE")
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

/// The gateway's Role holds exactly `pods: get, list, watch`, plus `pods/exec: create, get` for exec
/// routing, and nothing else; its RoleBinding binds it to the gateway's ServiceAccount.
fn check_rbac(sa: &str, routing: &str, objects: &[Object<'_>], out: &mut Vec<String>) {
    let roles: Vec<&Object<'_>> = objects.iter().filter(|o| o.kind == "Role").collect();
    let [role] = roles.as_slice() else {
        out.push(format!(
            "expected exactly one Role (the gateway's), found {}",
            roles.len()
        ));
        return;
    };
    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    want.insert(
        "pods".into(),
        ["get", "list", "watch"].map(String::from).into(),
    );
    if routing == "exec" {
        want.insert(
            "pods/exec".into(),
            ["create", "get"].map(String::from).into(),
        );
    }
    let mut got: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rule in role.value["rules"].as_array().into_iter().flatten() {
        let groups = strings(&rule["apiGroups"]);
        if groups != [""] {
            out.push(format!(
                "{}: rule for API groups {groups:?}; only the core group is allowed",
                role.id()
            ));
        }
        if rule.get("resourceNames").is_some() || rule.get("nonResourceURLs").is_some() {
            out.push(format!(
                "{}: unexpected resourceNames/nonResourceURLs",
                role.id()
            ));
        }
        for resource in strings(&rule["resources"]) {
            got.entry(resource)
                .or_default()
                .extend(strings(&rule["verbs"]));
        }
    }
    if got != want {
        out.push(format!(
            "{}: rules grant {got:?}, expected exactly {want:?} for {routing} routing",
            role.id()
        ));
    }
    let bindings: Vec<&Object<'_>> = objects.iter().filter(|o| o.kind == "RoleBinding").collect();
    let [binding] = bindings.as_slice() else {
        out.push(format!(
            "expected exactly one RoleBinding, found {}",
            bindings.len()
        ));
        return;
    };
    if str_at(binding.value, "/roleRef/kind") != Some("Role")
        || str_at(binding.value, "/roleRef/name") != Some(role.name)
    {
        out.push(format!(
            "{}: must reference Role {}",
            binding.id(),
            role.name
        ));
    }
    let subjects = binding.value["subjects"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    if subjects != 1 || !binds_service_account(binding.value, sa) {
        out.push(format!(
            "{}: must bind exactly the gateway ServiceAccount {sa}",
            binding.id()
        ));
    }
}

/// Hardening and health of every container of a pod.
fn check_pod(id: &str, pod: &Value, command: &str, out: &mut Vec<String>) {
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[key] == Value::Bool(true) {
            out.push(format!("{id}: {key} is not allowed"));
        }
    }
    if str_at(pod, "/securityContext/seccompProfile/type") != Some("RuntimeDefault") {
        out.push(format!("{id}: pod seccompProfile must be RuntimeDefault"));
    }
    let mut kmsg_volumes = BTreeSet::new();
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        if let Some(path) = str_at(volume, "/hostPath/path") {
            if path == KMSG_PATH {
                kmsg_volumes.insert(str_at(volume, "/name").unwrap_or_default().to_owned());
            } else {
                out.push(format!(
                    "{id}: hostPath {path} is not allowed (only {KMSG_PATH})"
                ));
            }
        }
    }
    let containers = pod["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if containers.len() != 1 {
        out.push(format!(
            "{id}: expected one container, found {}",
            containers.len()
        ));
    }
    let pod_non_root = pod.pointer("/securityContext/runAsNonRoot") == Some(&Value::Bool(true));
    for c in containers
        .iter()
        .chain(pod["initContainers"].as_array().into_iter().flatten())
    {
        let cid = format!("{id} container {}", str_at(c, "/name").unwrap_or("?"));
        if c.pointer("/command/0").and_then(Value::as_str) != Some(command) {
            out.push(format!("{cid}: command must start with {command}"));
        }
        let sc = &c["securityContext"];
        let mounts_kmsg = c["volumeMounts"].as_array().into_iter().flatten().any(|m| {
            let is_kmsg = kmsg_volumes.contains(str_at(m, "/name").unwrap_or_default());
            if is_kmsg && m["readOnly"] != Value::Bool(true) {
                out.push(format!("{cid}: {KMSG_PATH} must be mounted readOnly"));
            }
            is_kmsg
        });
        if sc["privileged"] == Value::Bool(true) {
            out.push(format!("{cid}: privileged containers are not allowed"));
        }
        if sc["allowPrivilegeEscalation"] != Value::Bool(false) {
            out.push(format!("{cid}: allowPrivilegeEscalation must be false"));
        }
        if sc["readOnlyRootFilesystem"] != Value::Bool(true) {
            out.push(format!("{cid}: readOnlyRootFilesystem must be true"));
        }
        if !strings(&sc["capabilities"]["drop"])
            .iter()
            .any(|c| c == "ALL")
        {
            out.push(format!("{cid}: capabilities.drop must contain ALL"));
        }
        let added = strings(&sc["capabilities"]["add"]);
        for cap in &added {
            if cap.trim_start_matches("CAP_") != KMSG_CAPABILITY || !mounts_kmsg {
                out.push(format!("{cid}: capability {cap} is not allowed (only {KMSG_CAPABILITY}, and only with {KMSG_PATH} mounted)"));
            }
        }
        let non_root = sc
            .get("runAsNonRoot")
            .map_or(pod_non_root, |v| v == &Value::Bool(true));
        if !non_root && added.is_empty() {
            out.push(format!("{cid}: must run as non-root (root is only for reading {KMSG_PATH} with {KMSG_CAPABILITY})"));
        }
        check_probe(&cid, c, "livenessProbe", "/healthz", out);
        check_probe(&cid, c, "readinessProbe", "/readyz", out);
        for kind in ["requests", "limits"] {
            for res in ["cpu", "memory"] {
                if c["resources"][kind][res].is_null() {
                    out.push(format!("{cid}: resources.{kind}.{res} must be set"));
                }
            }
        }
    }
}

fn check_probe(cid: &str, c: &Value, probe: &str, path: &str, out: &mut Vec<String>) {
    let port_names: Vec<&str> = c["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| str_at(p, "/name"))
        .collect();
    let get = &c[probe]["httpGet"];
    if get["path"].as_str() != Some(path) {
        out.push(format!("{cid}: {probe} must be an HTTP GET of {path}"));
    }
    match get["port"].as_str() {
        Some(name) if port_names.contains(&name) => {}
        _ => out.push(format!(
            "{cid}: {probe} must use a named container port ({port_names:?})"
        )),
    }
}

/// A Service must select the pods of one workload and target a port they name.
fn check_service(svc: &Object<'_>, objects: &[Object<'_>], out: &mut Vec<String>) {
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
fn check_selects_something(obj: &Object<'_>, objects: &[Object<'_>], out: &mut Vec<String>) {
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

/// With a token Secret in the render, both workloads read the token from a mounted file.
fn check_auth(objects: &[Object<'_>], out: &mut Vec<String>) {
    let workloads = objects
        .iter()
        .filter(|o| matches!(o.kind, "DaemonSet" | "Deployment"));
    let secrets: Vec<&str> = objects
        .iter()
        .filter(|o| o.kind == "Secret")
        .map(|o| o.name)
        .collect();
    for w in workloads {
        let pod = &w.value["spec"]["template"]["spec"];
        let Some(container) = pod["containers"].get(0) else {
            continue;
        };
        let Some(file) = flags(container).get("auth-token-file").cloned() else {
            continue;
        };
        let mounted = container["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| {
                let dir = str_at(m, "/mountPath").unwrap_or("/nonexistent");
                let name = str_at(m, "/name").unwrap_or_default();
                file.starts_with(&format!("{dir}/"))
                    && m["readOnly"] == Value::Bool(true)
                    && pod["volumes"].as_array().into_iter().flatten().any(|v| {
                        str_at(v, "/name") == Some(name)
                            && v.pointer("/secret/secretName").is_some()
                    })
            });
        if !mounted {
            out.push(format!(
                "{}: --auth-token-file {file} is not on a read-only Secret mount",
                w.id()
            ));
        }
    }
    if !secrets.is_empty() {
        for w in objects
            .iter()
            .filter(|o| matches!(o.kind, "DaemonSet" | "Deployment"))
        {
            let has = w.value["spec"]["template"]["spec"]["containers"]
                .get(0)
                .is_some_and(|c| flags(c).contains_key("auth-token-file"));
            if !has {
                out.push(format!(
                    "{}: a token Secret is rendered but this workload does not require it",
                    w.id()
                ));
            }
        }
    }
}

// ---- helpers -------------------------------------------------------------------------------

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn labels_at(v: &Value, pointer: &str) -> BTreeMap<String, String> {
    v.pointer(pointer)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

fn is_subset(small: &BTreeMap<String, String>, big: &BTreeMap<String, String>) -> bool {
    small.iter().all(|(k, v)| big.get(k) == Some(v))
}

fn find<'a, 'b>(objects: &'b [Object<'a>], kind: &str, name: &str) -> Option<&'b Object<'a>> {
    objects.iter().find(|o| o.kind == kind && o.name == name)
}

fn workload_for<'a, 'b>(
    selector: &BTreeMap<String, String>,
    objects: &'b [Object<'a>],
) -> Option<&'b Object<'a>> {
    if selector.is_empty() {
        return None;
    }
    objects.iter().find(|o| {
        matches!(o.kind, "DaemonSet" | "Deployment")
            && is_subset(
                selector,
                &labels_at(o.value, "/spec/template/metadata/labels"),
            )
    })
}

fn binds_service_account(binding: &Value, sa: &str) -> bool {
    binding["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| str_at(s, "/kind") == Some("ServiceAccount") && str_at(s, "/name") == Some(sa))
}

/// `--flag=value` and `--flag value` arguments of a container, by flag name.
fn flags(container: &Value) -> BTreeMap<String, String> {
    let args = strings(&container["args"]);
    let mut out = BTreeMap::new();
    let mut iter = args.iter().peekable();
    while let Some(arg) = iter.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            continue;
        };
        if let Some((k, v)) = flag.split_once('=') {
            out.insert(k.to_owned(), v.to_owned());
        } else if let Some(next) = iter.next_if(|n| !n.starts_with("--")) {
            out.insert(flag.to_owned(), next.clone());
        } else {
            out.insert(flag.to_owned(), String::new());
        }
    }
    out
}

/// `a=b,c=d` equality-based label selector terms.
fn parse_selector(s: &str) -> Option<Vec<(String, String)>> {
    s.split(',')
        .map(|term| {
            let (k, v) = term.split_once('=')?;
            let v = v.strip_prefix('=').unwrap_or(v);
            (!k.is_empty() && !k.ends_with('!')).then(|| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const RELEASE: Release<'static> = Release {
        name: "rel",
        namespace: "ns",
    };

    fn labels(component: &str) -> Value {
        json!({
            "app.kubernetes.io/name": "k8s-gpu-mcp-server",
            "app.kubernetes.io/instance": "rel",
            "app.kubernetes.io/managed-by": "Helm",
            "app.kubernetes.io/component": component,
        })
    }

    fn selector(component: &str) -> Value {
        json!({
            "app.kubernetes.io/name": "k8s-gpu-mcp-server",
            "app.kubernetes.io/instance": "rel",
            "app.kubernetes.io/component": component,
        })
    }

    fn meta(name: &str, component: &str) -> Value {
        json!({"name": name, "namespace": "ns", "labels": labels(component)})
    }

    fn container(command: &str, args: Value) -> Value {
        json!({
            "name": "main",
            "command": [command],
            "args": args,
            "ports": [{"name": "http", "containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "64Mi"}},
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]},
            },
        })
    }

    /// A minimal render that satisfies every policy: agents plus an HTTP-routing gateway.
    fn good() -> Vec<Value> {
        vec![
            json!({"kind": "ServiceAccount", "metadata": meta("agent", "agent"), "automountServiceAccountToken": false}),
            json!({"kind": "ServiceAccount", "metadata": meta("gw", "gateway"), "automountServiceAccountToken": false}),
            json!({"kind": "DaemonSet", "metadata": meta("agent", "agent"), "spec": {
                "selector": {"matchLabels": selector("agent")},
                "template": {"metadata": {"labels": labels("agent")}, "spec": {
                    "serviceAccountName": "agent",
                    "automountServiceAccountToken": false,
                    "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container("/gpu-mcp-agent", json!(["--transport=http"]))],
                }},
            }}),
            json!({"kind": "Deployment", "metadata": meta("gw", "gateway"), "spec": {
                "replicas": 2,
                "selector": {"matchLabels": selector("gateway")},
                "template": {"metadata": {"labels": labels("gateway")}, "spec": {
                    "serviceAccountName": "gw",
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
                    "affinity": {"podAntiAffinity": {}},
                    "containers": [container("/gpu-mcp-gateway", json!([
                        "--namespace=ns", "--routing=http", "--agent-port=8080",
                        "--selector=app.kubernetes.io/name=k8s-gpu-mcp-server,app.kubernetes.io/instance=rel,app.kubernetes.io/component=agent",
                    ]))],
                }},
            }}),
            json!({"kind": "Role", "metadata": meta("gw", "gateway"), "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            ]}),
            json!({"kind": "RoleBinding", "metadata": meta("gw", "gateway"),
                "roleRef": {"kind": "Role", "name": "gw", "apiGroup": "rbac.authorization.k8s.io"},
                "subjects": [{"kind": "ServiceAccount", "name": "gw", "namespace": "ns"}]}),
            json!({"kind": "Service", "metadata": meta("gw", "gateway"), "spec": {
                "selector": selector("gateway"), "ports": [{"port": 8080, "targetPort": "http"}],
            }}),
        ]
    }

    fn violations(docs: &[Value]) -> Vec<String> {
        check(docs, &RELEASE)
    }

    fn assert_flags(docs: &[Value], needle: &str) {
        let v = violations(docs);
        assert!(
            v.iter().any(|l| l.contains(needle)),
            "expected a violation containing {needle:?}, got {v:#?}"
        );
    }

    #[test]
    fn minimal_good_render_passes() {
        assert_eq!(violations(&good()), Vec::<String>::new());
    }

    #[test]
    fn privileged_container_is_rejected() {
        let mut docs = good();
        docs[2]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] =
            json!(true);
        assert_flags(&docs, "privileged containers are not allowed");
    }

    #[test]
    fn extra_rbac_verb_is_rejected() {
        let mut docs = good();
        docs[4]["rules"][0]["verbs"] = json!(["get", "list", "watch", "delete"]);
        assert_flags(&docs, "expected exactly");
    }

    #[test]
    fn exec_permission_without_exec_routing_is_rejected() {
        let mut docs = good();
        docs[4]["rules"].as_array_mut().unwrap().push(
            json!({"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]}),
        );
        assert_flags(&docs, "for http routing");
    }

    #[test]
    fn exec_routing_requires_exec_permission() {
        let mut docs = good();
        docs[3]["spec"]["template"]["spec"]["containers"][0]["args"][1] = json!("--routing=exec");
        assert_flags(&docs, "for exec routing");
        assert_flags(&docs, "exec routing needs --exec-command");
        let args = docs[3]["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array_mut()
            .unwrap();
        args.push(json!(
            "--exec-command=/gpu-mcp-agent --transport stdio --nvml-mode real"
        ));
        docs[2]["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "GPU_MCP_NVML_MODE", "value": "mock"}]);
        assert_flags(&docs, "the agents run Some(\"mock\")");
        docs[2]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = json!("real");
        docs[4]["rules"].as_array_mut().unwrap().push(
            json!({"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]}),
        );
        assert_eq!(violations(&docs), Vec::<String>::new());
    }

    #[test]
    fn cluster_roles_are_rejected() {
        let mut docs = good();
        docs.push(json!({"kind": "ClusterRole", "metadata": meta("x", "gateway"), "rules": []}));
        assert_flags(&docs, "cluster-wide");
    }

    #[test]
    fn missing_probe_and_resources_are_rejected() {
        let mut docs = good();
        let c = &mut docs[2]["spec"]["template"]["spec"]["containers"][0];
        c.as_object_mut().unwrap().remove("readinessProbe");
        c["resources"]["limits"]
            .as_object_mut()
            .unwrap()
            .remove("memory");
        assert_flags(&docs, "readinessProbe must be an HTTP GET of /readyz");
        assert_flags(&docs, "resources.limits.memory must be set");
    }

    #[test]
    fn selector_not_matching_agents_is_rejected() {
        let mut docs = good();
        docs[2]["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] =
            json!("node");
        assert_flags(
            &docs,
            "gateway's default selector would not find the agents",
        );
        assert_flags(&docs, "does not match the agent pod labels");
    }

    #[test]
    fn capabilities_need_the_kernel_log_mount() {
        let mut docs = good();
        let pod = &mut docs[2]["spec"]["template"]["spec"];
        pod["containers"][0]["securityContext"]["capabilities"]["add"] = json!(["SYSLOG"]);
        assert_flags(&docs, "capability SYSLOG is not allowed");
        let pod = &mut docs[2]["spec"]["template"]["spec"];
        pod["volumes"] = json!([{"name": "kmsg", "hostPath": {"path": "/dev/kmsg"}}]);
        pod["containers"][0]["volumeMounts"] =
            json!([{"name": "kmsg", "mountPath": "/dev/kmsg", "readOnly": true}]);
        assert_eq!(violations(&docs), Vec::<String>::new());
        docs[2]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
            json!(["SYS_ADMIN"]);
        assert_flags(&docs, "capability SYS_ADMIN is not allowed");
    }

    #[test]
    fn other_host_paths_and_root_are_rejected() {
        let mut docs = good();
        let pod = &mut docs[2]["spec"]["template"]["spec"];
        pod["volumes"] = json!([{"name": "root", "hostPath": {"path": "/"}}]);
        pod["securityContext"]["runAsNonRoot"] = json!(false);
        assert_flags(&docs, "hostPath / is not allowed");
        assert_flags(&docs, "must run as non-root");
    }

    #[test]
    fn agent_token_is_rejected() {
        let mut docs = good();
        docs[2]["spec"]["template"]["spec"]["automountServiceAccountToken"] = json!(true);
        assert_flags(&docs, "automountServiceAccountToken: false");
    }

    #[test]
    fn auth_flag_needs_a_secret_mount() {
        let mut docs = good();
        docs[3]["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array_mut()
            .unwrap()
            .push(json!("--auth-token-file=/etc/auth/token"));
        assert_flags(&docs, "is not on a read-only Secret mount");
    }

    #[test]
    fn flags_and_selectors_parse() {
        let c = json!({"args": ["--a=1", "--b", "2", "--c", "--d=x=y"]});
        let f = flags(&c);
        assert_eq!(f["a"], "1");
        assert_eq!(f["b"], "2");
        assert_eq!(f["c"], "");
        assert_eq!(f["d"], "x=y");
        assert_eq!(
            parse_selector("a=b,c==d"),
            Some(vec![("a".into(), "b".into()), ("c".into(), "d".into())])
        );
        assert_eq!(parse_selector("a!=b"), None);
        assert_eq!(parse_selector("a"), None);
    }
}
