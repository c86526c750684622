//! Policy checks over one rendered release of the chart.
//!
//! The Kubernetes schemas say whether a manifest is well formed; these checks say whether it is
//! the manifest we mean to ship: least privilege, exact RBAC, probes and resources everywhere,
//! and labels that the gateway's agent selector really matches.
//!
//! One module per kind of rule: `workloads` (the agent DaemonSet and the gateway Deployment),
//! `pod` (hardening, probes, resources), `rbac`, `services` (what selects pods) and `auth`
//! (the token Secret); `json` reads the rendered objects.

mod auth;
mod json;
mod pod;
mod rbac;
mod services;
mod workloads;

use serde_json::Value;

use json::{labels_at, str_at};

/// The gateway's built-in agent selector (without flags): `name` and `component` labels.
pub const GATEWAY_DEFAULT_SELECTOR: &[(&str, &str)] = &[
    ("app.kubernetes.io/name", "k8s-gpu-mcp-server"),
    ("app.kubernetes.io/component", "agent"),
];

/// Capabilities a container may add, and only with the kernel log mounted.
const KMSG_CAPABILITY: &str = "SYSLOG";
/// The kernel log, the one host path that comes with a capability.
const KMSG_PATH: &str = "/dev/kmsg";
/// The host paths the agent may mount, each read-only and only where the agent reads it:
/// the kernel log (Xid lines), the kubelet's pod-resources directory (which pod holds which
/// GPU; under whatever root directory the kubelet has, [`KUBELET_ROOT`], and always at the
/// default's path in the container) and the host's `/proc` (each GPU process's name and
/// cgroup), never over the container's own `/proc`. The gateway may mount none.
const AGENT_HOST_PATHS: &[(&str, &str)] = &[
    (KMSG_PATH, KMSG_PATH),
    (
        "<kubelet root>/pod-resources",
        "/var/lib/kubelet/pod-resources",
    ),
    ("/proc", "/host/proc"),
];
/// In a host path of [`AGENT_HOST_PATHS`]: any absolute directory (no empty, `.` or `..`
/// segment), the kubelet's `--root-dir`.
const KUBELET_ROOT: &str = "<kubelet root>";
/// UID the gateway runs as.
const GATEWAY_UID: i64 = 1000;

/// Where a rendered release lives.
#[derive(Debug, Clone)]
pub struct Release<'a> {
    /// The release name (`app.kubernetes.io/instance`).
    pub name: &'a str,
    /// The namespace every object must be in.
    pub namespace: &'a str,
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
pub fn check(docs: &[Value], release: &Release<'_>) -> Vec<String> {
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
    workloads::check_agent(agent, &agent_labels, &objects, &mut out);

    let deployments: Vec<&Object<'_>> = objects.iter().filter(|o| o.kind == "Deployment").collect();
    match deployments.as_slice() {
        [] => {
            for obj in &objects {
                if matches!(
                    obj.kind,
                    "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding"
                ) {
                    out.push(format!("{}: RBAC rendered without a gateway", obj.id()));
                }
            }
        }
        [gateway] => {
            workloads::check_gateway(gateway, &agent_labels, agent, &objects, release, &mut out)
        }
        more => out.push(format!(
            "expected at most one Deployment (the gateway), found {}",
            more.len()
        )),
    }

    for obj in &objects {
        match obj.kind {
            "Service" => services::check_service(obj, &objects, &mut out),
            "PodDisruptionBudget" | "NetworkPolicy" | "ServiceMonitor" => {
                services::check_selects_something(obj, &objects, &mut out);
            }
            _ => {}
        }
    }
    auth::check_auth(&objects, &mut out);
    auth::check_oauth(&objects, &mut out);
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
    // Cluster-scoped objects have no namespace.
    let want =
        (!matches!(obj.kind, "ClusterRole" | "ClusterRoleBinding")).then_some(release.namespace);
    if str_at(obj.value, "/metadata/namespace") != want {
        out.push(format!(
            "{}: metadata.namespace should be {want:?}",
            obj.id(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::json::{flags, parse_selector};
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
    fn oauth_needs_an_audience_and_https() {
        let mut docs = good();
        let args = &mut docs[3]["spec"]["template"]["spec"]["containers"][0]["args"];
        let base = args.clone();
        let with = |extra: &[&str]| {
            let mut a = base.as_array().unwrap().clone();
            a.extend(extra.iter().map(|s| json!(s)));
            Value::Array(a)
        };
        *args = with(&[
            "--oauth-issuer=https://idp.example.com",
            "--oauth-audience=https://gpu.example.com/mcp",
        ]);
        assert_eq!(violations(&docs), Vec::<String>::new());
        docs[3]["spec"]["template"]["spec"]["containers"][0]["args"] = with(&[
            "--oauth-issuer=http://idp.example.com",
            "--oauth-jwks-url=http://idp.example.com/jwks",
        ]);
        let v = violations(&docs);
        assert_eq!(v.len(), 3, "{v:#?}");
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
            json!([{"name": "GPU_MCP_AGENT_NVML_MODE", "value": "mock"}]);
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

    fn cluster_meta(name: &str) -> Value {
        json!({"name": name, "labels": labels("gateway")})
    }

    /// The cluster-context RBAC: read nodes, list and watch pods, bound to the gateway.
    fn with_cluster_context() -> Vec<Value> {
        let mut docs = good();
        docs[3]["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array_mut()
            .unwrap()
            .push(json!("--cluster-context"));
        docs.push(
            json!({"kind": "ClusterRole", "metadata": cluster_meta("gw-ctx"), "rules": [
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
            ]}),
        );
        docs.push(json!({"kind": "ClusterRoleBinding", "metadata": cluster_meta("gw-ctx"),
            "roleRef": {"kind": "ClusterRole", "name": "gw-ctx", "apiGroup": "rbac.authorization.k8s.io"},
            "subjects": [{"kind": "ServiceAccount", "name": "gw", "namespace": "ns"}]}));
        docs
    }

    #[test]
    fn cluster_context_grants_exactly_read_access_to_nodes_and_pods() {
        assert_eq!(violations(&with_cluster_context()), Vec::<String>::new());
        let mut docs = with_cluster_context();
        docs[7]["rules"][1]["resources"] = json!(["pods", "secrets"]);
        assert_flags(&docs, "expected exactly");
        let mut docs = with_cluster_context();
        docs[7]["rules"][0]["verbs"] = json!(["get", "list", "watch", "patch"]);
        assert_flags(&docs, "expected exactly");
        let mut docs = with_cluster_context();
        docs[8]["subjects"][0]["namespace"] = json!("other");
        assert_flags(&docs, "must bind exactly the gateway ServiceAccount");
        let mut docs = with_cluster_context();
        docs[7]["metadata"]["namespace"] = json!("ns");
        assert_flags(&docs, "metadata.namespace should be None");
        // The flag without the ClusterRole, and the ClusterRole without the flag.
        let mut docs = with_cluster_context();
        docs.truncate(7);
        assert_flags(&docs, "--cluster-context needs exactly one ClusterRole");
        let mut docs = with_cluster_context();
        docs[3]["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array_mut()
            .unwrap()
            .pop();
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
    fn attribution_mounts_are_read_only_and_only_where_the_agent_reads_them() {
        let mut docs = good();
        let pod = &mut docs[2]["spec"]["template"]["spec"];
        pod["volumes"] = json!([
            {"name": "pr", "hostPath": {"path": "/var/lib/kubelet/pod-resources"}},
            {"name": "proc", "hostPath": {"path": "/proc"}},
        ]);
        pod["containers"][0]["volumeMounts"] = json!([
            {"name": "pr", "mountPath": "/var/lib/kubelet/pod-resources", "readOnly": true},
            {"name": "proc", "mountPath": "/host/proc", "readOnly": true},
        ]);
        assert_eq!(violations(&docs), Vec::<String>::new());
        let mounts = &mut docs[2]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"];
        mounts[0]["readOnly"] = json!(false);
        mounts[1]["mountPath"] = json!("/proc");
        assert_flags(
            &docs,
            "/var/lib/kubelet/pod-resources must be mounted readOnly",
        );
        assert_flags(&docs, "/proc must be mounted at /host/proc, not /proc");
        // The kubelet's whole directory is not the pod-resources directory.
        let mut docs = good();
        docs[2]["spec"]["template"]["spec"]["volumes"] =
            json!([{"name": "k", "hostPath": {"path": "/var/lib/kubelet"}}]);
        assert_flags(&docs, "hostPath /var/lib/kubelet is not allowed");
        // Under another kubelet root, at the same path in the container.
        let mut docs = good();
        let pod = &mut docs[2]["spec"]["template"]["spec"];
        pod["volumes"] = json!([
            {"name": "pr", "hostPath": {"path": "/var/lib/k0s/kubelet/pod-resources"}},
        ]);
        pod["containers"][0]["volumeMounts"] = json!([
            {"name": "pr", "mountPath": "/var/lib/kubelet/pod-resources", "readOnly": true},
        ]);
        assert_eq!(violations(&docs), Vec::<String>::new());
        docs[2]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] =
            json!("/var/lib/k0s/kubelet/pod-resources");
        assert_flags(
            &docs,
            "/var/lib/k0s/kubelet/pod-resources must be mounted at /var/lib/kubelet/pod-resources",
        );
        for path in [
            "/var/lib/kubelet/../../etc/pod-resources",
            "/pod-resources",
            "var/lib/kubelet/pod-resources",
            "/var/lib/kubelet//pod-resources",
            "/var/lib/kubelet/pod-resources/..",
        ] {
            let mut docs = good();
            docs[2]["spec"]["template"]["spec"]["volumes"] =
                json!([{"name": "k", "hostPath": {"path": path}}]);
            assert_flags(&docs, &format!("hostPath {path} is not allowed"));
        }
        // The gateway mounts no host path at all.
        let mut docs = good();
        docs[3]["spec"]["template"]["spec"]["volumes"] =
            json!([{"name": "proc", "hostPath": {"path": "/proc"}}]);
        assert_flags(&docs, "hostPath /proc is not allowed (none here)");
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
