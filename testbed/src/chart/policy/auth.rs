//! The bearer-token Secret and the workloads that read it, and the OAuth settings of a workload.

use serde_json::Value;

use super::Object;
use super::json::{flags, str_at};

/// With a token Secret in the render, both workloads read the token from a mounted file.
pub(super) fn check_auth(objects: &[Object<'_>], out: &mut Vec<String>) {
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

/// A workload that accepts OAuth access tokens names its audience and an https issuer (and
/// JWKS URL): plain http to an identity provider inside a cluster is never rendered.
pub(super) fn check_oauth(objects: &[Object<'_>], out: &mut Vec<String>) {
    for w in objects
        .iter()
        .filter(|o| matches!(o.kind, "DaemonSet" | "Deployment"))
    {
        let Some(container) = w.value["spec"]["template"]["spec"]["containers"].get(0) else {
            continue;
        };
        let flags = flags(container);
        let Some(issuer) = flags.get("oauth-issuer") else {
            continue;
        };
        if flags.get("oauth-audience").is_none_or(|a| a.is_empty()) {
            out.push(format!(
                "{}: --oauth-issuer without --oauth-audience",
                w.id()
            ));
        }
        for (flag, url) in [
            ("oauth-issuer", Some(issuer)),
            ("oauth-jwks-url", flags.get("oauth-jwks-url")),
        ] {
            if let Some(url) = url
                && !url.starts_with("https://")
            {
                out.push(format!("{}: --{flag} {url} is not https", w.id()));
            }
        }
    }
}
