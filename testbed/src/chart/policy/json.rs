//! Reading the rendered objects: JSON pointers, labels, container flags, selectors.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Object;

pub(super) fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

pub(super) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

pub(super) fn labels_at(v: &Value, pointer: &str) -> BTreeMap<String, String> {
    v.pointer(pointer)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

pub(super) fn is_subset(small: &BTreeMap<String, String>, big: &BTreeMap<String, String>) -> bool {
    small.iter().all(|(k, v)| big.get(k) == Some(v))
}

pub(super) fn find<'a, 'b>(
    objects: &'b [Object<'a>],
    kind: &str,
    name: &str,
) -> Option<&'b Object<'a>> {
    objects.iter().find(|o| o.kind == kind && o.name == name)
}

pub(super) fn workload_for<'a, 'b>(
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

pub(super) fn binds_service_account(binding: &Value, sa: &str) -> bool {
    binding["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| str_at(s, "/kind") == Some("ServiceAccount") && str_at(s, "/name") == Some(sa))
}

/// `--flag=value` and `--flag value` arguments of a container, by flag name.
pub(super) fn flags(container: &Value) -> BTreeMap<String, String> {
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
pub(super) fn parse_selector(s: &str) -> Option<Vec<(String, String)>> {
    s.split(',')
        .map(|term| {
            let (k, v) = term.split_once('=')?;
            let v = v.strip_prefix('=').unwrap_or(v);
            (!k.is_empty() && !k.ends_with('!')).then(|| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}
