//! The handle of a started cluster: its kubeconfigs, binaries and nodes, and kubectl with the
//! admin identity or a ServiceAccount token.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::procs;
use super::state::{State, marker, read_state};
use crate::util::{cmd, fs as files};

/// A running local cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterHandle {
    /// Admin kubeconfig (`system:masters`).
    pub kubeconfig: PathBuf,
    /// Directory with `kubectl`, `helm`, the control-plane binaries and `gpu-mcp-agent`.
    pub bin_dir: PathBuf,
    /// The built kubectl.
    pub kubectl: PathBuf,
    /// The built helm.
    pub helm: PathBuf,
    /// State directory (pids, logs, certificates, kubeconfigs).
    pub state_dir: PathBuf,
    /// API server URL, `https://127.0.0.1:<port>`.
    pub server: String,
    /// CA certificate that signed the API server's serving certificate.
    pub ca_cert: PathBuf,
    /// Names of the fake GPU nodes.
    pub nodes: Vec<String>,
    /// The real node (a kubelet on containerd), when the cluster has one.
    #[serde(default)]
    pub real_node: Option<super::RealNode>,
}

impl ClusterHandle {
    /// The handle of a started cluster in `state_dir`.
    pub fn load(state_dir: &Path) -> anyhow::Result<Self> {
        let state_dir = files::absolute(state_dir)?;
        match read_state(&state_dir)? {
            Some(State {
                handle: Some(handle),
                ..
            }) => Ok(handle),
            Some(_) => bail!(
                "the local cluster in {} did not finish starting; run `cargo xtask cluster up`",
                state_dir.display()
            ),
            None => bail!(
                "no local cluster in {}; run `cargo xtask cluster up`",
                state_dir.display()
            ),
        }
    }

    /// Whether every recorded process runs and the API server reports ready.
    pub fn is_healthy(&self) -> bool {
        let marker = marker(&self.state_dir);
        let Ok(Some(state)) = read_state(&self.state_dir) else {
            return false;
        };
        !state.processes.is_empty()
            && state
                .processes
                .iter()
                .all(|r| procs::is_ours(r.pid, &marker))
            && self.kubectl_output(&["get", "--raw=/readyz"]).is_ok()
    }

    /// Imports an image archive (`docker save` format) into the real node's containerd, where
    /// its kubelet finds images; fails when the cluster has no real node.
    pub fn import_image(&self, archive: &Path) -> anyhow::Result<()> {
        if self.real_node.is_none() {
            bail!(
                "the local cluster in {} has no real node (`cargo xtask cluster up --real-node`)",
                self.state_dir.display()
            );
        }
        super::realnode::import_image(&self.state_dir, archive)
    }

    /// The real node's kubelet root directory (its `--root-dir`, inside the state directory),
    /// when the cluster has a real node.
    pub fn real_node_kubelet_root(&self) -> Option<PathBuf> {
        self.real_node
            .as_ref()
            .map(|_| super::realnode::Layout::new(&self.state_dir).kubelet_root())
    }

    /// A `kubectl` command using the admin kubeconfig.
    pub fn kubectl_command(&self) -> Command {
        let mut command = Command::new(&self.kubectl);
        command.arg(format!("--kubeconfig={}", self.kubeconfig.display()));
        command
    }

    /// Runs kubectl with the admin kubeconfig; returns stdout, or an error carrying stderr.
    pub fn kubectl_output(&self, args: &[&str]) -> anyhow::Result<String> {
        cmd::output(self.kubectl_command().args(args))
    }

    /// Runs helm against this cluster with the admin kubeconfig; returns stdout, or an error
    /// carrying stderr.
    pub fn helm_output(&self, args: &[&str]) -> anyhow::Result<String> {
        cmd::output(
            Command::new(&self.helm)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args),
        )
    }

    /// Shell lines that point kubectl, helm and kube clients at this cluster.
    pub fn env_exports(&self) -> String {
        format!(
            "export KUBECONFIG={}\nexport PATH=\"{}:$PATH\"\n",
            quoted(&self.kubeconfig.display().to_string()),
            self.bin_dir.display()
        )
    }

    /// Mints a token for ServiceAccount `namespace/service_account` through the TokenRequest
    /// API (`kubectl create token`) and writes a kubeconfig that authenticates with it, at
    /// `output` or `<state>/<namespace>-<service_account>.kubeconfig`. Returns its path.
    pub fn token_kubeconfig(
        &self,
        namespace: &str,
        service_account: &str,
        duration: &str,
        output: Option<&Path>,
    ) -> anyhow::Result<PathBuf> {
        let token = self
            .kubectl_output(&[
                "create",
                "token",
                service_account,
                "--namespace",
                namespace,
                "--duration",
                duration,
            ])
            .with_context(|| {
                format!("minting a token for ServiceAccount {namespace}/{service_account}")
            })?;
        let token = token.trim();
        if token.is_empty() {
            bail!("the TokenRequest API returned an empty token for {namespace}/{service_account}");
        }
        let path = match output {
            Some(path) => files::absolute(path)?,
            None => self
                .state_dir
                .join(format!("{namespace}-{service_account}.kubeconfig")),
        };
        let user = format!("system:serviceaccount:{namespace}:{service_account}");
        files::write(
            &path,
            kubeconfig_yaml(
                &self.server,
                &self.ca_cert,
                &user,
                &UserAuth::Token(token.to_owned()),
                Some(namespace),
            ),
        )?;
        Ok(path)
    }
}

/// How a kubeconfig user authenticates.
pub(super) enum UserAuth {
    /// A client certificate and its key.
    Cert { cert: PathBuf, key: PathBuf },
    /// A bearer token.
    Token(String),
}

/// JSON string literal (a valid YAML scalar), for values written into YAML files.
pub(super) fn quoted(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// A kubeconfig for `user` at `server`, trusting `ca`, in `namespace` when given.
pub(super) fn kubeconfig_yaml(
    server: &str,
    ca: &Path,
    user: &str,
    auth: &UserAuth,
    namespace: Option<&str>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "apiVersion: v1\nkind: Config");
    let _ = writeln!(out, "clusters:\n- name: gpu-mcp-local\n  cluster:");
    let _ = writeln!(out, "    server: {}", quoted(server));
    let _ = writeln!(
        out,
        "    certificate-authority: {}",
        quoted(&ca.display().to_string())
    );
    let _ = writeln!(out, "users:\n- name: {}\n  user:", quoted(user));
    match auth {
        UserAuth::Cert { cert, key } => {
            let _ = writeln!(
                out,
                "    client-certificate: {}\n    client-key: {}",
                quoted(&cert.display().to_string()),
                quoted(&key.display().to_string())
            );
        }
        UserAuth::Token(token) => {
            let _ = writeln!(out, "    token: {}", quoted(token));
        }
    }
    let _ = writeln!(
        out,
        "contexts:\n- name: gpu-mcp-local\n  context:\n    cluster: gpu-mcp-local\n    user: {}",
        quoted(user)
    );
    if let Some(ns) = namespace {
        let _ = writeln!(out, "    namespace: {}", quoted(ns));
    }
    let _ = writeln!(out, "current-context: gpu-mcp-local");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_quotes_values_and_sets_the_namespace() {
        let yaml = kubeconfig_yaml(
            "https://127.0.0.1:6443",
            Path::new("/tmp/a b/ca.crt"),
            "system:serviceaccount:gpu:gw",
            &UserAuth::Token("abc.def".into()),
            Some("gpu"),
        );
        assert!(yaml.contains("server: \"https://127.0.0.1:6443\""));
        assert!(yaml.contains("certificate-authority: \"/tmp/a b/ca.crt\""));
        assert!(yaml.contains("token: \"abc.def\""));
        assert!(yaml.contains("namespace: \"gpu\""));
        assert!(yaml.contains("current-context: gpu-mcp-local"));
    }
}
