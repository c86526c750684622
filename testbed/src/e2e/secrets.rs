//! The chart's Secret volumes as files on this machine, for the processes that play a pod.
//!
//! The chart hands the agents and the gateway their bearer tokens as files of a Secret volume
//! (`--auth-token-file=/etc/gpu-mcp/auth/...`), a path inside the container. A process that
//! plays the container here (an agent on its pod IP, the gateway) gets the same arguments with
//! each path under a Secret volume's mount path pointed at a local copy of that volume: the
//! Secret read through the API (`kubectl get secret -o jsonpath={.data}`) and the volume's
//! items written as the kubelet would.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::Value;

use crate::cluster::ClusterHandle;
use crate::util::fs;

/// One Secret volume mounted into a container: where, which Secret, and its files
/// (`(key, path)`; every key under its own name when the volume lists no items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretVolume {
    pub(crate) mount_path: String,
    pub(crate) secret: String,
    pub(crate) items: Option<Vec<(String, String)>>,
}

/// The Secret volumes of a container, copied into a local directory.
#[derive(Debug, Clone, Default)]
pub(crate) struct SecretMounts {
    /// Mount path in the container → the local directory holding its files.
    mounts: Vec<(String, PathBuf)>,
}

impl SecretMounts {
    /// Reads every Secret volume that `container` of `pod_spec` mounts and writes its files
    /// under `dir` (one directory per volume, files mode 0400).
    pub(crate) fn copy(
        handle: &ClusterHandle,
        namespace: &str,
        pod_spec: &Value,
        container: &str,
        dir: &Path,
    ) -> Result<Self> {
        let mut mounts = Vec::new();
        for (i, volume) in secret_volumes(pod_spec, container)?.iter().enumerate() {
            let data = secret_data(handle, namespace, &volume.secret)?;
            let local = dir.join(format!("secret-{i}"));
            fs::create_dir(&local)?;
            for (key, path) in volume_files(volume, &data) {
                let value = data.get(&key).with_context(|| {
                    format!("Secret {namespace}/{} has no key {key}", volume.secret)
                })?;
                let file = local.join(&path);
                // A copy of an earlier install is read-only: replaced, not written into.
                let _ = std::fs::remove_file(&file);
                fs::write(&file, value)?;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400))
                    .with_context(|| format!("restricting {}", file.display()))?;
            }
            mounts.push((volume.mount_path.clone(), local));
        }
        Ok(Self { mounts })
    }

    /// `args` with each path under a Secret volume's mount path (`--flag=PATH` or `PATH`)
    /// pointed at the local copy.
    pub(crate) fn local_args(&self, args: &[String]) -> Vec<String> {
        args.iter().map(|a| self.local_arg(a)).collect()
    }

    /// The arguments of `args` that name a file of a Secret volume, pointed at the local copy:
    /// the authentication flags a process playing the container must be given.
    pub(crate) fn secret_args(&self, args: &[String]) -> Vec<String> {
        args.iter()
            .filter(|a| self.names_secret(a))
            .map(|a| self.local_arg(a))
            .collect()
    }

    /// The local copy of the file `flag` (e.g. `--auth-token-file`) names in `args`.
    pub(crate) fn file_of(&self, args: &[String], flag: &str) -> Option<PathBuf> {
        let prefix = format!("{flag}=");
        args.iter()
            .find_map(|a| a.strip_prefix(&prefix))
            .map(|path| PathBuf::from(self.local_arg(path)))
    }

    fn names_secret(&self, arg: &str) -> bool {
        self.local_arg(arg) != arg
    }

    fn local_arg(&self, arg: &str) -> String {
        let (flag, value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (Some(flag), value),
            _ => (None, arg),
        };
        let local = self.mounts.iter().find_map(|(mount, local)| {
            let rest = value.strip_prefix(mount.trim_end_matches('/'))?;
            let rest = rest.strip_prefix('/')?;
            Some(local.join(rest).display().to_string())
        });
        match (flag, local) {
            (Some(flag), Some(local)) => format!("{flag}={local}"),
            (None, Some(local)) => local,
            (_, None) => arg.to_owned(),
        }
    }
}

/// The Secret volumes `container` of `pod_spec` mounts.
pub(crate) fn secret_volumes(pod_spec: &Value, container: &str) -> Result<Vec<SecretVolume>> {
    let containers = pod_spec["containers"].as_array().map(Vec::as_slice);
    let Some(c) = containers
        .unwrap_or_default()
        .iter()
        .find(|c| c["name"] == container)
    else {
        bail!("the pod template has no container {container}");
    };
    let volumes = pod_spec["volumes"].as_array().map(Vec::as_slice);
    let mut out = Vec::new();
    for mount in c["volumeMounts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (Some(name), Some(mount_path)) = (mount["name"].as_str(), mount["mountPath"].as_str())
        else {
            continue;
        };
        let Some(secret) = volumes
            .unwrap_or_default()
            .iter()
            .find(|v| v["name"] == name)
            .map(|v| &v["secret"])
            .filter(|s| s.is_object())
        else {
            continue;
        };
        let secret_name = secret["secretName"]
            .as_str()
            .with_context(|| format!("Secret volume {name} names no Secret"))?;
        let items = secret["items"].as_array().map(|items| {
            items
                .iter()
                .filter_map(|i| {
                    Some((
                        i["key"].as_str()?.to_owned(),
                        i["path"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        });
        out.push(SecretVolume {
            mount_path: mount_path.to_owned(),
            secret: secret_name.to_owned(),
            items,
        });
    }
    Ok(out)
}

/// The files of `volume` given the Secret's keys: its items, or every key.
fn volume_files(volume: &SecretVolume, data: &BTreeMap<String, Vec<u8>>) -> Vec<(String, String)> {
    volume
        .items
        .clone()
        .unwrap_or_else(|| data.keys().map(|k| (k.clone(), k.clone())).collect())
}

/// The decoded data of Secret `name`, read through the API.
pub(crate) fn secret_data(
    handle: &ClusterHandle,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let raw = handle
        .kubectl_output(&[
            "-n",
            namespace,
            "get",
            "secret",
            name,
            "-o",
            "jsonpath={.data}",
        ])
        .with_context(|| format!("reading Secret {namespace}/{name}"))?;
    decode_data(&raw).with_context(|| format!("Secret {namespace}/{name}"))
}

/// A Secret's `data` (a JSON map of base64 values) decoded.
fn decode_data(raw: &str) -> Result<BTreeMap<String, Vec<u8>>> {
    if raw.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let map: BTreeMap<String, String> =
        serde_json::from_str(raw.trim()).context("data is not a map of strings")?;
    map.into_iter()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .map_err(|e| anyhow::anyhow!("key {k} is not base64: {e}"))?;
            Ok((k, bytes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec() -> Value {
        json!({
            "containers": [{
                "name": "agent",
                "args": ["--transport=http", "--auth-token-file=/etc/gpu-mcp/auth/agent-token"],
                "volumeMounts": [
                    {"name": "tmp", "mountPath": "/tmp"},
                    {"name": "auth", "mountPath": "/etc/gpu-mcp/auth", "readOnly": true}
                ]
            }],
            "volumes": [
                {"name": "tmp", "emptyDir": {}},
                {"name": "auth", "secret": {"secretName": "gpu-mcp-auth",
                    "items": [{"key": "agent-token", "path": "agent-token"}]}}
            ]
        })
    }

    #[test]
    fn finds_the_secret_volumes_of_a_container() {
        let volumes = secret_volumes(&spec(), "agent").unwrap();
        assert_eq!(
            volumes,
            vec![SecretVolume {
                mount_path: "/etc/gpu-mcp/auth".to_owned(),
                secret: "gpu-mcp-auth".to_owned(),
                items: Some(vec![("agent-token".to_owned(), "agent-token".to_owned())]),
            }]
        );
        assert!(secret_volumes(&spec(), "gateway").is_err());
    }

    #[test]
    fn points_secret_paths_at_the_local_copy() {
        let mounts = SecretMounts {
            mounts: vec![("/etc/gpu-mcp/auth".to_owned(), PathBuf::from("/l/secret-0"))],
        };
        let args: Vec<String> = [
            "--transport=http",
            "--auth-token-file=/etc/gpu-mcp/auth/agent-token",
            "/etc/gpu-mcp/auth/token",
            "--other=/etc/gpu-mcp/authority",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(
            mounts.local_args(&args),
            [
                "--transport=http",
                "--auth-token-file=/l/secret-0/agent-token",
                "/l/secret-0/token",
                "--other=/etc/gpu-mcp/authority",
            ]
        );
        assert_eq!(
            mounts.secret_args(&args),
            [
                "--auth-token-file=/l/secret-0/agent-token",
                "/l/secret-0/token"
            ]
        );
        assert_eq!(
            mounts.file_of(&args, "--auth-token-file"),
            Some(PathBuf::from("/l/secret-0/agent-token"))
        );
        assert_eq!(mounts.file_of(&args, "--agent-token-file"), None);
    }

    #[test]
    fn decodes_secret_data() {
        let data = decode_data(r#"{"token":"c2VjcmV0","agent-token":"b3du"}"#).unwrap();
        assert_eq!(data["token"], b"secret");
        assert_eq!(data["agent-token"], b"own");
        assert!(decode_data("").unwrap().is_empty());
        assert!(decode_data(r#"{"token":"%%%"}"#).is_err());
        let volume = SecretVolume {
            mount_path: "/a".to_owned(),
            secret: "s".to_owned(),
            items: None,
        };
        assert_eq!(volume_files(&volume, &data).len(), 2);
    }
}
