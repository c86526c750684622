//! The local cluster prepared for `cargo xtask bench gateway --exec`.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cluster::{self, UpOptions};
use crate::e2e::Deployment;
use crate::util::workspace::Workspace;

/// The local cluster prepared for `cargo xtask bench gateway --exec`: the chart installed with
/// exec routing, every agent pod configured, a gateway ServiceAccount kubeconfig.
#[derive(Debug)]
pub(crate) struct ExecBenchTarget {
    deployment: Deployment,
}

impl ExecBenchTarget {
    /// Starts (or reuses) a local cluster in `state_dir` with `nodes` kwok nodes and installs
    /// the chart.
    pub(crate) fn prepare(nodes: usize, state_dir: &Path) -> Result<Self> {
        let ws = Workspace::new(false);
        let mut opts = UpOptions::new()?;
        opts.nodes = u32::try_from(nodes).context("node count")?;
        opts.state_dir = state_dir.to_path_buf();
        // Exec runs the release build that the benchmark measures.
        opts.agent_bin = Some(Workspace::new(true).binary("gpu-mcp-agent"));
        let handle = cluster::ensure_up(&opts)?;
        let deployment = Deployment::install(&handle, "exec", &ws.scratch("bench-exec"))?;
        if !deployment.exec_objects {
            bail!("the local cluster does not serve kwok Exec objects (see `cargo xtask e2e`)");
        }
        for pod in &deployment.pods {
            deployment.set_exec_env(pod, None)?;
        }
        Ok(Self { deployment })
    }

    /// The agent nodes.
    pub(crate) fn nodes(&self) -> Vec<String> {
        self.deployment
            .pods
            .iter()
            .map(|p| p.node.clone())
            .collect()
    }

    /// Gateway arguments without `--routing` (the bench adds its own).
    pub(crate) fn gateway_args(&self) -> Vec<String> {
        self.deployment
            .gateway_args(30)
            .into_iter()
            .filter(|a| !a.starts_with("--routing") && !a.starts_with("--node-timeout"))
            .collect()
    }
}
