//! `cargo xtask e2e --cluster kind`: the real image and the chart on a kind cluster.
//!
//! The local-cluster e2e runs the binaries as host processes behind kwok pods; this one runs
//! what users install: the container image built from the `Dockerfile`, in pods of a real
//! (containerised) Kubernetes, with the gateway inside the cluster under the chart's RBAC.
//!
//! 1. checks for a reachable Docker engine, `kind`, `kubectl` and `helm`;
//! 2. `docker build`s the image and compiles the scenario runner;
//! 3. creates a kind cluster (one control plane, N workers) with its own kubeconfig file, so the
//!    user's `~/.kube/config` is left alone, and loads the image into it;
//! 4. labels the workers as GPU nodes, and `helm upgrade --install`s the chart with mock agents,
//!    the gateway (pinned to the control plane), no RuntimeClass, for each routing in turn;
//! 5. gives the first worker the XID 79 mock scenario through a second agent DaemonSet, a copy
//!    of the chart's with one more label and the scenario set (a DaemonSet shares one
//!    environment, so per-node scenarios need one per scenario);
//! 6. port-forwards the gateway Service to 127.0.0.1 and runs the scenarios (the `rmcp` client
//!    of `bins/gpu-mcp-gateway/tests/e2e_cluster.rs`, the same as on the local cluster);
//! 7. on failure prints pods, events and logs and exports kind's logs; then deletes the cluster
//!    (unless `--keep`).
//!
//! A killed agent is a paused worker (`docker pause`): its agent neither answers HTTP nor accepts
//! an exec, yet its pod is still listed, which is what the partial-answer scenario needs. The
//! scenario that adds a node is skipped: kind cannot add a node to a running cluster.
//!
//! `tools` finds the programs it needs, `cluster` owns the kind cluster (create, kubectl,
//! port-forward, logs, delete), `install` puts the chart and the XID scenario's DaemonSet on it.

mod cluster;
mod install;
mod tools;

use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

use crate::chart::{NAMESPACE, RELEASE};
use crate::programs;
use crate::util::{cmd, fs, workspace};
use cluster::Cluster;
use tools::Tools;

/// What `--cluster kind` needs, for `--help` and for the prerequisite error.
pub(crate) const HELP: &str = "\
`--cluster kind` needs, on PATH: a Docker engine with BuildKit that the user can reach \
(`docker info` works), \
kind (https://kind.sigs.k8s.io), kubectl and helm 3 (or HELM=/path/to/helm). It builds the \
image with `docker build` (a release build inside Docker: allow several minutes and about 4 GiB \
of disk), creates the kind cluster `gpu-mcp-e2e` with 1 control plane and --nodes workers, \
and deletes it afterwards unless --keep. Nothing is written to ~/.kube/config.";

/// Name of the kind cluster (and prefix of its node containers).
const CLUSTER: &str = "gpu-mcp-e2e";
/// Image tag built and loaded into the cluster.
const IMAGE_REPOSITORY: &str = "k8s-gpu-mcp-server";
const IMAGE_TAG: &str = "e2e";
/// Mock scenario of the first worker.
const XID_SCENARIO: &str = "xid-79";
/// Node label that sets the first worker apart.
const SCENARIO_LABEL: &str = "gpu-mcp.dev/e2e-scenario";
/// Node label the chart's default node selector matches.
const GPU_NODE_LABEL: &str = "nvidia.com/gpu.present";
/// Gateway node timeout during the scenarios (the scenarios read it too).
const NODE_TIMEOUT_SECS: u64 = 5;
/// The chart's default gateway Service port.
const GATEWAY_SERVICE_PORT: u16 = 8080;
/// Scenarios that need a kwok node created on the fly; kind cannot add nodes to a cluster.
// The Kubernetes-context scenario needs GPU workload pods, and kind's workers advertise no
// `nvidia.com/gpu`; the local cluster's kwok nodes do.
const SKIPPED_SCENARIOS: &[&str] = &[
    "s08_added_pod_is_routable_and_deleted_pod_disappears",
    "s05b_kubernetes_context_from_a_pod_to_its_node_taints_and_drain",
];

/// What to run on kind.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Gateway routings to test, in order (`http`, `exec`).
    pub(crate) routings: &'static [&'static str],
    /// Worker nodes (each runs one agent); at least 2.
    pub(crate) workers: u32,
    /// Leave the cluster running afterwards.
    pub(crate) keep: bool,
}

/// Builds the image, creates the kind cluster and runs the scenarios for each routing.
pub(crate) fn run(opts: &Options) -> Result<()> {
    ensure!(
        opts.workers >= 2,
        "the kind e2e needs at least 2 workers (one healthy, one XID 79)"
    );
    let tools = Tools::find()?;
    let root = workspace::workspace_root();
    let work = workspace::scratch_dir("e2e-kind");
    fs::create_dir(&work)?;
    let image = format!("{IMAGE_REPOSITORY}:{IMAGE_TAG}");

    // The slow, cluster-free steps first.
    step(&format!("docker build -t {image}"), || {
        cmd::status(
            std::process::Command::new(&tools.docker)
                .current_dir(&root)
                .args(["build", "-t", &image, "."]),
        )
    })?;
    step("compile the scenario runner", || {
        programs::run_scenarios(std::iter::empty::<(&str, &str)>(), true, &[])
    })?;

    let mut cluster = Cluster::create(&tools, &work, opts.workers, opts.keep)?;
    step(&format!("kind load docker-image {image}"), || {
        cmd::status(std::process::Command::new(&tools.kind).args([
            "load",
            "docker-image",
            &image,
            "--name",
            CLUSTER,
        ]))
    })?;
    let workers = cluster.workers()?;
    ensure!(
        workers.len() >= 2,
        "kind made {} workers, expected at least 2",
        workers.len()
    );
    let xid_node = workers[0].clone();
    let victim = workers[workers.len() - 1].clone();
    for node in &workers {
        cluster.kubectl(&[
            "label",
            "node",
            node,
            &format!("{GPU_NODE_LABEL}=true"),
            "--overwrite",
        ])?;
    }
    cluster.kubectl(&[
        "label",
        "node",
        &xid_node,
        &format!("{SCENARIO_LABEL}={XID_SCENARIO}"),
        "--overwrite",
    ])?;

    let mut failures = Vec::new();
    for routing in opts.routings {
        eprintln!("\n=== e2e on kind: --routing {routing} ===");
        let result = cluster.run_routing(&work, routing, &workers, &xid_node, &victim);
        if let Err(e) = &result {
            eprintln!("=== e2e on kind --routing {routing}: FAILED: {e:#} ===");
            cluster.dump_logs(&work.join(format!("logs-{routing}")));
            failures.push(format!("{routing}: {e:#}"));
        } else {
            eprintln!("=== e2e on kind --routing {routing}: passed ===");
        }
        // The partial-answer scenario pauses the victim; bring it back for the next routing.
        cluster.unpause(&victim);
        if let Err(e) = cluster.wait_node_ready(&victim) {
            failures.push(format!("{routing}: {victim} did not recover: {e:#}"));
            break;
        }
    }
    drop(cluster);
    if failures.is_empty() {
        eprintln!("e2e on kind passed: {}", opts.routings.join(", "));
        Ok(())
    } else {
        bail!("e2e on kind failed:\n{}", failures.join("\n"))
    }
}

/// Runs one slow step, saying what it is and how long it took.
fn step<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("--> {what}");
    let started = Instant::now();
    let out = f().with_context(|| what.to_owned())?;
    eprintln!("    done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_names_every_prerequisite() {
        for tool in ["Docker engine", "kind", "kubectl", "helm", "--keep"] {
            assert!(HELP.contains(tool), "{tool}");
        }
    }

    /// The kind-specific install (placement values, the XID scenario's DaemonSet copy) against
    /// any real API server, such as `cargo xtask cluster up`'s: the API server validates the
    /// copy, and the two DaemonSets must split the nodes between them.

    #[test]
    fn too_few_workers_is_refused_before_any_tool_runs() {
        let err = run(&Options {
            routings: &["http"],
            workers: 1,
            keep: false,
        })
        .unwrap_err();
        assert!(err.to_string().contains("at least 2 workers"), "{err}");
    }
}
