//! The gateway's Role and RoleBinding: exactly the verbs its routing needs, bound to its
//! ServiceAccount; and, only with `--cluster-context`, its ClusterRole and ClusterRoleBinding:
//! exactly read access to nodes and pods.

use std::collections::{BTreeMap, BTreeSet};

use super::Object;
use super::json::{binds_service_account, str_at, strings};

/// The gateway's Role holds exactly `pods: get, list, watch`, plus `pods/exec: create, get` for exec
/// routing, and nothing else; its RoleBinding binds it to the gateway's ServiceAccount.
pub(super) fn check_rbac(sa: &str, routing: &str, objects: &[Object<'_>], out: &mut Vec<String>) {
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
    let got = granted(role, out);
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

/// What a Role's or ClusterRole's rules grant, per resource; anything outside the core group or
/// naming resources or URLs is a violation.
fn granted(role: &Object<'_>, out: &mut Vec<String>) -> BTreeMap<String, BTreeSet<String>> {
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
    got
}

/// With `--cluster-context` (`enabled`): exactly one ClusterRole granting `nodes: get, list,
/// watch` and `pods: list, watch`, and one ClusterRoleBinding of it to the gateway's
/// ServiceAccount in the release namespace. Without it: no cluster-wide permission at all.
pub(super) fn check_cluster_rbac(
    sa: &str,
    namespace: &str,
    enabled: bool,
    objects: &[Object<'_>],
    out: &mut Vec<String>,
) {
    let roles: Vec<&Object<'_>> = objects.iter().filter(|o| o.kind == "ClusterRole").collect();
    let bindings: Vec<&Object<'_>> = objects
        .iter()
        .filter(|o| o.kind == "ClusterRoleBinding")
        .collect();
    if !enabled {
        for obj in roles.iter().chain(&bindings) {
            out.push(format!(
                "{}: the chart must not grant cluster-wide permissions without the gateway's \
                 --cluster-context",
                obj.id()
            ));
        }
        return;
    }
    let ([role], [binding]) = (roles.as_slice(), bindings.as_slice()) else {
        out.push(format!(
            "--cluster-context needs exactly one ClusterRole and one ClusterRoleBinding, found \
             {} and {}",
            roles.len(),
            bindings.len()
        ));
        return;
    };
    let want: BTreeMap<String, BTreeSet<String>> = BTreeMap::from([
        (
            "nodes".to_owned(),
            ["get", "list", "watch"].map(String::from).into(),
        ),
        (
            "pods".to_owned(),
            ["list", "watch"].map(String::from).into(),
        ),
    ]);
    let got = granted(role, out);
    if got != want {
        out.push(format!(
            "{}: rules grant {got:?}, expected exactly {want:?} for --cluster-context",
            role.id()
        ));
    }
    if str_at(binding.value, "/roleRef/kind") != Some("ClusterRole")
        || str_at(binding.value, "/roleRef/name") != Some(role.name)
    {
        out.push(format!(
            "{}: must reference ClusterRole {}",
            binding.id(),
            role.name
        ));
    }
    let subjects = binding.value["subjects"].as_array();
    let exact = subjects.is_some_and(|s| {
        s.len() == 1
            && str_at(&s[0], "/kind") == Some("ServiceAccount")
            && str_at(&s[0], "/name") == Some(sa)
            && str_at(&s[0], "/namespace") == Some(namespace)
    });
    if !exact {
        out.push(format!(
            "{}: must bind exactly the gateway ServiceAccount {sa} of namespace {namespace}",
            binding.id()
        ));
    }
}
