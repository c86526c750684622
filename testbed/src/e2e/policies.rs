//! The release's NetworkPolicies checked against the API server: every policy the chart
//! rendered is in the namespace with the spec it rendered, and each pod selector in them
//! selects pods of the release (the agents, and the gateway the agents admit).
//!
//! Neither the kwok nodes nor the real node's bridge CNI enforce NetworkPolicies, so this
//! checks what the chart asks for, not that a network plugin does it (docs/testing.md).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Map, Value};

use crate::cluster::ClusterHandle;
use crate::util::fs;

/// Checks the NetworkPolicies of `release` in `namespace` (see the module docs); `scratch` is
/// a directory for the rendered manifest. Returns the policies' names.
pub(crate) fn check(
    handle: &ClusterHandle,
    release: &str,
    namespace: &str,
    scratch: &Path,
) -> Result<Vec<String>> {
    let manifest = handle
        .helm_output(&["get", "manifest", release, "-n", namespace])
        .with_context(|| format!("reading the manifest of release {release}"))?;
    let path = scratch.join(format!("{release}-manifest.yaml"));
    fs::write(&path, &manifest)?;
    // kubectl parses the YAML into objects (one JSON document each) without sending them.
    let objects = handle.kubectl_output(&[
        "create",
        "--dry-run=client",
        "-o",
        "json",
        "-f",
        &path.display().to_string(),
    ])?;
    let objects = serde_json::Deserializer::from_str(&objects)
        .into_iter::<Value>()
        .collect::<Result<Vec<_>, _>>()
        .context("kubectl's reading of the rendered manifest is not JSON")?;
    let rendered = objects
        .iter()
        .flat_map(policies)
        .collect::<BTreeMap<_, _>>();
    ensure!(
        !rendered.is_empty(),
        "release {release} rendered no NetworkPolicy (the chart's default is networkPolicy.enabled=true)"
    );
    let live: Value = serde_json::from_str(&handle.kubectl_output(&[
        "-n",
        namespace,
        "get",
        "networkpolicy",
        "-l",
        &format!("app.kubernetes.io/instance={release}"),
        "-o",
        "json",
    ])?)?;
    let live = policies(&live);
    let names = |m: &BTreeMap<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    ensure!(
        names(&rendered) == names(&live),
        "NetworkPolicies rendered {:?}, in {namespace} {:?}",
        names(&rendered),
        names(&live)
    );
    for (name, spec) in &rendered {
        let stored = &live[name];
        if normalize(spec) != normalize(stored) {
            bail!(
                "NetworkPolicy {name} differs from its render:\nrendered {spec}\nstored   {stored}"
            );
        }
        for selector in pod_selectors(spec) {
            let pods = handle.kubectl_output(&[
                "-n", namespace, "get", "pods", "-l", &selector, "-o", "name",
            ])?;
            ensure!(
                !pods.trim().is_empty(),
                "NetworkPolicy {name}: the pod selector {selector} selects no pod in {namespace}"
            );
        }
    }
    Ok(names(&rendered))
}

/// The NetworkPolicies (name → spec) in an object or a List of them.
fn policies(objects: &Value) -> BTreeMap<String, Value> {
    let items = match objects["items"].as_array() {
        Some(items) => items.clone(),
        None => vec![objects.clone()],
    };
    items
        .into_iter()
        .filter(|o| o["kind"] == "NetworkPolicy")
        .filter_map(|o| {
            Some((
                o["metadata"]["name"].as_str()?.to_owned(),
                o["spec"].clone(),
            ))
        })
        .collect()
}

/// `v` without nulls, empty lists and empty maps (the API server leaves empty lists out).
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), normalize(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// The label selectors (as `k=v,...`) of the pods a policy applies to and of the pods of its
/// namespace it admits (peers with a namespace selector are in other namespaces: left out).
fn pod_selectors(spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(match_labels(&spec["podSelector"]));
    for rule in spec["ingress"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        for peer in rule["from"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if peer["namespaceSelector"].is_null() {
                out.extend(match_labels(&peer["podSelector"]));
            }
        }
    }
    out
}

fn match_labels(selector: &Value) -> Option<String> {
    let labels = selector["matchLabels"].as_object()?;
    let parts: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?)))
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn empty_lists_and_nulls_do_not_count() {
        let rendered =
            json!({"podSelector": {"matchLabels": {"a": "b"}}, "ingress": [], "egress": []});
        let stored = json!({"podSelector": {"matchLabels": {"a": "b"}}, "policyTypes": null});
        assert_eq!(normalize(&rendered), normalize(&stored));
        let other = json!({"podSelector": {"matchLabels": {"a": "c"}}});
        assert_ne!(normalize(&rendered), normalize(&other));
    }

    #[test]
    fn selectors_of_the_policy_and_its_same_namespace_peers() {
        let spec = json!({
            "podSelector": {"matchLabels": {"app": "agent", "i": "r"}},
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "gateway"}}}]},
                {"from": [{"namespaceSelector": {"matchLabels": {"m": "x"}},
                           "podSelector": {"matchLabels": {"app": "prom"}}}]}
            ]
        });
        assert_eq!(pod_selectors(&spec), ["app=agent,i=r", "app=gateway"]);
    }

    #[test]
    fn policies_from_a_list_or_one_object() {
        let list = json!({"kind": "List", "items": [
            {"kind": "Secret", "metadata": {"name": "s"}},
            {"kind": "NetworkPolicy", "metadata": {"name": "p"}, "spec": {"x": 1}}
        ]});
        assert_eq!(policies(&list).keys().collect::<Vec<_>>(), ["p"]);
        let one = json!({"kind": "NetworkPolicy", "metadata": {"name": "q"}, "spec": {}});
        assert_eq!(policies(&one).len(), 1);
    }
}
