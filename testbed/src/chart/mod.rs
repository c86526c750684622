//! What a render of the Helm chart must satisfy, and which Helm renders it.
//!
//! - [`policy`]: least privilege, exact RBAC, probes and resources, labels the gateway's selector
//!   matches, checked over the rendered objects;
//! - [`contract`]: the rendered agent arguments and environment start a working agent, and the
//!   gateway's exec command answers with them;
//! - [`locate_helm`]: the pinned Helm that the local-cluster tooling builds, or one the user names.
//!
//! `cargo xtask chart` renders the chart and feeds the renders to these; the kind e2e installs
//! the chart with the same Helm.

pub mod contract;
pub mod policy;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail, ensure};

/// Chart directory, relative to the workspace root.
pub const CHART_DIR: &str = "charts/k8s-gpu-mcp-server";
/// Release name used for renders, snapshots and the documented install.
pub const RELEASE: &str = "k8s-gpu-mcp-server";
/// Namespace used for renders, snapshots and the documented install.
pub const NAMESPACE: &str = "gpu-diagnostics";

/// The Helm binary: `explicit`, then `$HELM`, then the local-cluster tooling's pinned build,
/// then `helm` on `PATH`.
pub fn locate_helm(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        ensure!(path.is_file(), "--helm {} does not exist", path.display());
        return Ok(path.to_owned());
    }
    if let Some(path) = std::env::var_os("HELM").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        ensure!(path.is_file(), "HELM={} does not exist", path.display());
        return Ok(path);
    }
    if let Some(path) = local_cluster_helm() {
        return Ok(path);
    }
    if let Some(path) = find_on_path("helm") {
        return Ok(path);
    }
    bail!(
        "no helm found: pass --helm PATH, set HELM, or put helm on PATH \
         (the local-cluster tooling builds a pinned one with Go)"
    )
}

/// The Helm that the local-cluster tooling builds (once, then cached) from its pinned Go module.
/// Unavailable without a Go toolchain; the caller then falls back to `PATH`.
fn local_cluster_helm() -> Option<PathBuf> {
    match crate::cluster::helm_path() {
        Ok(path) => Some(path),
        Err(e) => {
            eprintln!(
                "chart: the pinned helm build is unavailable ({e:#}); looking for helm on PATH"
            );
            None
        }
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
