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

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::chart::{self, CHART_DIR, NAMESPACE, RELEASE};

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
const SKIPPED_SCENARIOS: &[&str] = &["s08_added_pod_is_routable_and_deleted_pod_disappears"];

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

pub(crate) fn run(opts: &Options) -> Result<()> {
    ensure!(
        opts.workers >= 2,
        "the kind e2e needs at least 2 workers (one healthy, one XID 79)"
    );
    let tools = Tools::find()?;
    let root = chart::workspace_root();
    let work = chart::target_dir(&root).join("xtask").join("e2e-kind");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let image = format!("{IMAGE_REPOSITORY}:{IMAGE_TAG}");

    // The slow, cluster-free steps first.
    step(&format!("docker build -t {image}"), || {
        run_status(
            Command::new(&tools.docker)
                .current_dir(&root)
                .args(["build", "-t", &image, "."]),
        )
    })?;
    step("compile the scenario runner", || {
        run_scenarios(&root, &[], true)
    })?;

    let mut cluster = Cluster::create(&tools, &work, opts.workers, opts.keep)?;
    step(&format!("kind load docker-image {image}"), || {
        run_status(Command::new(&tools.kind).args([
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
        let result = cluster.run_routing(&root, &work, routing, &workers, &xid_node, &victim);
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

/// The external programs, found (and checked) up front.
#[derive(Debug)]
struct Tools {
    docker: PathBuf,
    kind: PathBuf,
    kubectl: PathBuf,
    helm: PathBuf,
}

impl Tools {
    fn find() -> Result<Self> {
        let mut missing = Vec::new();
        let mut probe = |name: &str, args: &[&str]| -> PathBuf {
            let path = PathBuf::from(name);
            match Command::new(&path)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
            {
                Ok(s) if s.success() => {}
                Ok(_) if name == "docker" => {
                    missing.push("a reachable Docker engine (`docker info` fails)".to_owned())
                }
                Ok(_) => missing.push(format!(
                    "a working {name} (`{name} {}` fails)",
                    args.join(" ")
                )),
                Err(_) => missing.push(format!("{name} on PATH")),
            }
            path
        };
        let docker = probe("docker", &["info"]);
        let kind = probe("kind", &["version"]);
        let kubectl = probe("kubectl", &["version", "--client"]);
        let helm = chart::locate_helm(None).unwrap_or_else(|e| {
            missing.push(format!("helm ({e:#})"));
            PathBuf::from("helm")
        });
        if !missing.is_empty() {
            bail!("missing: {}.\n{HELP}", missing.join(", "));
        }
        Ok(Self {
            docker,
            kind,
            kubectl,
            helm,
        })
    }
}

/// A kind cluster created by this run; deleted on drop unless kept.
#[derive(Debug)]
struct Cluster<'a> {
    tools: &'a Tools,
    kubeconfig: PathBuf,
    /// Created by this run: deleted on drop unless `keep`.
    owned: bool,
    keep: bool,
    port_forward: Option<Child>,
}

impl<'a> Cluster<'a> {
    fn create(tools: &'a Tools, work: &Path, workers: u32, keep: bool) -> Result<Self> {
        let existing = output(Command::new(&tools.kind).args(["get", "clusters"]))?;
        if existing.lines().any(|l| l.trim() == CLUSTER) {
            eprintln!("deleting the kind cluster {CLUSTER} left by an earlier run");
            run_status(Command::new(&tools.kind).args(["delete", "cluster", "--name", CLUSTER]))?;
        }
        let config = work.join("kind-config.yaml");
        let mut text = String::from(
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n",
        );
        for _ in 0..workers {
            text.push_str("  - role: worker\n");
        }
        fs::write(&config, text)?;
        let kubeconfig = work.join("kubeconfig");
        let cluster = Self {
            tools,
            kubeconfig: kubeconfig.clone(),
            owned: true,
            keep,
            port_forward: None,
        };
        step(
            &format!("kind create cluster {CLUSTER} (1 control plane, {workers} workers)"),
            || {
                run_status(
                    Command::new(&tools.kind)
                        .args([
                            "create", "cluster", "--name", CLUSTER, "--wait", "180s", "--config",
                        ])
                        .arg(&config)
                        .arg("--kubeconfig")
                        .arg(&kubeconfig),
                )
            },
        )?;
        Ok(cluster)
    }

    fn kubectl_cmd(&self) -> Command {
        let mut cmd = Command::new(&self.tools.kubectl);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    fn kubectl(&self, args: &[&str]) -> Result<String> {
        output(self.kubectl_cmd().args(args))
    }

    fn helm(&self, args: &[&str]) -> Result<String> {
        output(
            Command::new(&self.tools.helm)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args),
        )
    }

    /// Worker node names, sorted.
    fn workers(&self) -> Result<Vec<String>> {
        let text = self.kubectl(&[
            "get",
            "nodes",
            "-l",
            "!node-role.kubernetes.io/control-plane",
            "-o",
            "name",
        ])?;
        let mut names: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("node/"))
            .map(str::to_owned)
            .collect();
        names.sort();
        Ok(names)
    }

    fn run_routing(
        &mut self,
        root: &Path,
        work: &Path,
        routing: &str,
        workers: &[String],
        xid_node: &str,
        victim: &str,
    ) -> Result<()> {
        self.install(root, routing, xid_node)?;

        let gateway = self.single_name("deployment", "gateway")?;
        let role = self.single_name("role", "gateway")?;
        let service = self.single_name("service", "gateway")?;
        let port = free_port()?;
        self.start_port_forward(
            &service,
            port,
            &work.join(format!("port-forward-{routing}.log")),
        )?;

        let env = [
            (
                "GPU_MCP_E2E_GATEWAY_URL",
                format!("http://127.0.0.1:{port}/mcp"),
            ),
            ("GPU_MCP_E2E_NODES", workers.join(",")),
            (
                "GPU_MCP_E2E_SCENARIOS",
                format!("{xid_node}={XID_SCENARIO}"),
            ),
            ("GPU_MCP_E2E_ROUTING", routing.to_owned()),
            (
                "GPU_MCP_E2E_NODE_TIMEOUT_SECS",
                NODE_TIMEOUT_SECS.to_string(),
            ),
            (
                "GPU_MCP_E2E_KUBECTL",
                self.tools.kubectl.display().to_string(),
            ),
            (
                "GPU_MCP_E2E_KUBECONFIG",
                self.kubeconfig.display().to_string(),
            ),
            ("GPU_MCP_E2E_NAMESPACE", NAMESPACE.to_owned()),
            ("GPU_MCP_E2E_GATEWAY_ROLE", role),
            // Only the skipped add-a-node scenario starts agents itself.
            ("GPU_MCP_E2E_AGENT_BIN", "/gpu-mcp-agent".to_owned()),
            ("GPU_MCP_E2E_AGENT_PORT", "8080".to_owned()),
            ("GPU_MCP_E2E_KILL_NODE", victim.to_owned()),
            (
                "GPU_MCP_E2E_KILL_CMD",
                format!("'{}' pause '{victim}'", self.tools.docker.display()),
            ),
        ];
        eprintln!("gateway {gateway} forwarded to 127.0.0.1:{port}");
        let result = run_scenarios(root, &env, false);
        self.stop_port_forward();
        result
    }

    /// `helm upgrade --install` of the chart for `routing` (mock agents, in-cluster gateway), then
    /// the XID scenario's DaemonSet.
    fn install(&self, root: &Path, routing: &str, xid_node: &str) -> Result<()> {
        let chart = root.join(CHART_DIR);
        let set = format!(
            "agent.nvmlMode=mock,gateway.enabled=true,gpu.runtimeClass.enabled=false,\
             gateway.routing={routing},gateway.replicas=1,\
             image.repository={IMAGE_REPOSITORY},image.tag={IMAGE_TAG},image.pullPolicy=Never"
        );
        // The main DaemonSet skips the XID node; the gateway stays on the control plane, so pausing
        // a worker never takes the gateway with it.
        let affinity = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": SCENARIO_LABEL, "operator": "NotIn", "values": [XID_SCENARIO]},
            ]}],
        }}});
        let gateway_placement = [
            format!(
                "gateway.nodeSelector={}",
                json!({"node-role.kubernetes.io/control-plane": ""})
            ),
            format!(
                "gateway.tolerations={}",
                json!([{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}])
            ),
            format!(
                "gateway.extraArgs={}",
                json!([format!("--node-timeout={NODE_TIMEOUT_SECS}s")])
            ),
            format!("agent.affinity={affinity}"),
        ];
        let chart_path = chart.display().to_string();
        let mut args: Vec<&str> = vec![
            "upgrade",
            "--install",
            RELEASE,
            &chart_path,
            "--namespace",
            NAMESPACE,
            "--create-namespace",
            "--set",
            &set,
            "--wait",
            "--timeout",
            "5m",
        ];
        for s in &gateway_placement {
            args.extend(["--set-json", s.as_str()]);
        }
        step(&format!("helm upgrade --install ({set})"), || {
            self.helm(&args).map(drop)
        })?;
        self.ensure_scenario_daemonset(xid_node)?;
        Ok(())
    }

    /// A copy of the chart's agent DaemonSet for the XID node, with the scenario in its
    /// environment and one more selector label, so the two DaemonSets never claim each other's pods.
    fn ensure_scenario_daemonset(&self, xid_node: &str) -> Result<()> {
        let name = self.single_name("daemonset", "agent")?;
        let mut ds: Value = serde_json::from_str(&self.kubectl(&[
            "-n",
            NAMESPACE,
            "get",
            "daemonset",
            &name,
            "-o",
            "json",
        ])?)?;
        let copy_name = format!("{name}-{XID_SCENARIO}");
        let mut labels = ds["metadata"]["labels"].clone();
        labels[SCENARIO_LABEL] = json!(XID_SCENARIO);
        ds["metadata"] = json!({"name": copy_name, "namespace": NAMESPACE, "labels": labels});
        if let Some(o) = ds.as_object_mut() {
            o.remove("status");
        }
        ds["spec"]["selector"]["matchLabels"][SCENARIO_LABEL] = json!(XID_SCENARIO);
        ds["spec"]["template"]["metadata"]["labels"][SCENARIO_LABEL] = json!(XID_SCENARIO);
        let pod = &mut ds["spec"]["template"]["spec"];
        pod["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": SCENARIO_LABEL, "operator": "In", "values": [XID_SCENARIO]},
            ]}],
        }}});
        let env = pod["containers"][0]["env"]
            .as_array_mut()
            .context("the agent container has no env")?;
        env.retain(|e| e["name"] != "GPU_MCP_MOCK_SCENARIO");
        env.push(json!({"name": "GPU_MCP_MOCK_SCENARIO", "value": XID_SCENARIO}));
        let path = std::env::temp_dir().join(format!("{copy_name}.json"));
        fs::write(&path, ds.to_string())?;
        self.kubectl(&["apply", "-f", &path.display().to_string()])?;
        self.kubectl(&[
            "-n",
            NAMESPACE,
            "rollout",
            "status",
            "daemonset",
            &copy_name,
            "--timeout=180s",
        ])?;
        let on_node = self.kubectl(&[
            "-n",
            NAMESPACE,
            "get",
            "pods",
            "-l",
            &format!("{SCENARIO_LABEL}={XID_SCENARIO}"),
            "--field-selector",
            &format!("spec.nodeName={xid_node}"),
            "-o",
            "name",
        ])?;
        ensure!(
            !on_node.trim().is_empty(),
            "no XID-scenario agent pod on {xid_node}"
        );
        Ok(())
    }

    /// The name of the one object of `kind` with `app.kubernetes.io/component=<component>` in the
    /// release (the scenario DaemonSet's copy is told apart by its scenario label).
    fn single_name(&self, kind: &str, component: &str) -> Result<String> {
        let selector = format!(
            "app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component},!{SCENARIO_LABEL}"
        );
        let text = self.kubectl(&["-n", NAMESPACE, "get", kind, "-l", &selector, "-o", "name"])?;
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once('/').map(|(_, n)| n))
            .collect();
        match names.as_slice() {
            [name] => Ok((*name).to_owned()),
            _ => bail!("expected one {kind} for {selector}, found {names:?}"),
        }
    }

    fn start_port_forward(&mut self, service: &str, port: u16, log: &Path) -> Result<()> {
        let log_file = fs::File::create(log)?;
        let child = self
            .kubectl_cmd()
            .args(["-n", NAMESPACE, "port-forward", "--address", "127.0.0.1"])
            .arg(format!("service/{service}"))
            .arg(format!("{port}:{GATEWAY_SERVICE_PORT}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("starting kubectl port-forward")?;
        self.port_forward = Some(child);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self
                .port_forward
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "kubectl port-forward exited ({status}); see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        bail!(
            "kubectl port-forward did not listen on {addr} within 60 s; see {}",
            log.display()
        )
    }

    fn stop_port_forward(&mut self) {
        if let Some(mut child) = self.port_forward.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn unpause(&self, node: &str) {
        let _ = Command::new(&self.tools.docker)
            .args(["unpause", node])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    fn wait_node_ready(&self, node: &str) -> Result<()> {
        self.kubectl(&[
            "wait",
            "--for=condition=Ready",
            &format!("node/{node}"),
            "--timeout=180s",
        ])?;
        self.kubectl(&[
            "-n",
            NAMESPACE,
            "wait",
            "--for=condition=Ready",
            "pods",
            "--all",
            "--timeout=180s",
        ])?;
        Ok(())
    }

    fn dump_logs(&self, dir: &Path) {
        let show = |title: &str, args: &[&str]| match self.kubectl(args) {
            Ok(text) => eprintln!("--- {title} ---\n{}", text.trim_end()),
            Err(e) => eprintln!("--- {title}: {e:#} ---"),
        };
        show("nodes", &["get", "nodes", "-o", "wide"]);
        show("pods", &["-n", NAMESPACE, "get", "pods", "-o", "wide"]);
        show(
            "events",
            &["-n", NAMESPACE, "get", "events", "--sort-by=.lastTimestamp"],
        );
        show(
            "gateway logs",
            &[
                "-n",
                NAMESPACE,
                "logs",
                "-l",
                "app.kubernetes.io/component=gateway",
                "--tail=200",
                "--prefix",
            ],
        );
        show(
            "agent logs",
            &[
                "-n",
                NAMESPACE,
                "logs",
                "-l",
                "app.kubernetes.io/component=agent",
                "--tail=40",
                "--prefix",
            ],
        );
        let exported = Command::new(&self.tools.kind)
            .args(["export", "logs", "--name", CLUSTER])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if exported.is_ok_and(|s| s.success()) {
            eprintln!("--- kind logs exported to {} ---", dir.display());
        }
    }
}

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        self.stop_port_forward();
        if !self.owned {
            return;
        }
        if self.keep {
            eprintln!(
                "--keep: kind cluster {CLUSTER} left running (KUBECONFIG={}); `kind delete cluster --name {CLUSTER}` removes it",
                self.kubeconfig.display()
            );
            return;
        }
        // A paused node container cannot be removed.
        if let Ok(nodes) =
            output(Command::new(&self.tools.kind).args(["get", "nodes", "--name", CLUSTER]))
        {
            for node in nodes.lines() {
                self.unpause(node.trim());
            }
        }
        eprintln!("deleting the kind cluster {CLUSTER}");
        let _ = Command::new(&self.tools.kind)
            .args(["delete", "cluster", "--name", CLUSTER])
            .status();
    }
}

/// The scenario runner: the gateway's MCP scenarios (`bins/gpu-mcp-gateway/tests/e2e_cluster.rs`,
/// an `rmcp` client), given the gateway URL and the cluster through `GPU_MCP_E2E_*` variables.
/// `build_only` compiles it without running.
fn run_scenarios(root: &Path, env: &[(&str, String)], build_only: bool) -> Result<()> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root)
        .args(["test", "-p", "gpu-mcp-gateway", "--test", "e2e_cluster"]);
    if build_only {
        cmd.arg("--no-run");
    } else {
        cmd.args(["--", "--ignored", "--test-threads=1"]);
        for skipped in SKIPPED_SCENARIOS {
            cmd.args(["--skip", skipped]);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v)));
    run_status(&mut cmd)
}

fn step<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("--> {what}");
    let started = Instant::now();
    let out = f().with_context(|| what.to_owned())?;
    eprintln!("    done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(out)
}

fn run_status(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    ensure!(
        status.success(),
        "{:?} failed ({status})",
        cmd.get_program()
    );
    Ok(())
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    ensure!(
        out.status.success(),
        "{:?} {:?} failed ({}): {}",
        cmd.get_program(),
        cmd.get_args().collect::<Vec<_>>(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a free loopback port")?;
    Ok(listener.local_addr()?.port())
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
    #[ignore = "needs a cluster: GPU_MCP_TEST_KUBECONFIG (nodes labelled nvidia.com/gpu.present=true)"]
    fn install_and_scenario_daemonset_on_a_real_api_server() {
        let kubeconfig = PathBuf::from(std::env::var("GPU_MCP_TEST_KUBECONFIG").unwrap());
        let kubectl = std::env::var_os("GPU_MCP_TEST_KUBECTL")
            .map_or_else(|| crate::cluster::kubectl_path().unwrap(), PathBuf::from);
        let tools = Tools {
            docker: "docker".into(),
            kind: "kind".into(),
            kubectl,
            helm: chart::locate_helm(None).unwrap(),
        };
        let cluster = Cluster {
            tools: &tools,
            kubeconfig,
            owned: false,
            keep: true,
            port_forward: None,
        };
        let mut nodes: Vec<String> = cluster
            .kubectl(&[
                "get",
                "nodes",
                "-l",
                &format!("{GPU_NODE_LABEL}=true"),
                "-o",
                "name",
            ])
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("node/"))
            .map(str::to_owned)
            .collect();
        nodes.sort();
        assert!(nodes.len() >= 3, "need 3 GPU nodes, have {nodes:?}");
        let (control_plane, xid_node) = (&nodes[0], &nodes[1]);
        cluster
            .kubectl(&[
                "label",
                "node",
                control_plane,
                "node-role.kubernetes.io/control-plane=",
                "--overwrite",
            ])
            .unwrap();
        cluster
            .kubectl(&[
                "label",
                "node",
                xid_node,
                &format!("{SCENARIO_LABEL}={XID_SCENARIO}"),
                "--overwrite",
            ])
            .unwrap();

        let result = cluster.install(&chart::workspace_root(), "exec", xid_node);
        let pods = cluster.kubectl(&["-n", NAMESPACE, "get", "pods", "-o", "json"]);
        let main_ds = cluster.single_name("daemonset", "agent");
        // Clean up before asserting.
        let _ = cluster.helm(&["uninstall", RELEASE, "--namespace", NAMESPACE, "--wait"]);
        let _ = cluster.kubectl(&[
            "-n",
            NAMESPACE,
            "delete",
            "daemonset",
            "-l",
            SCENARIO_LABEL,
            "--wait=false",
        ]);
        let _ = cluster.kubectl(&[
            "label",
            "node",
            control_plane,
            "node-role.kubernetes.io/control-plane-",
        ]);
        let _ = cluster.kubectl(&["label", "node", xid_node, &format!("{SCENARIO_LABEL}-")]);

        result.unwrap();
        assert_eq!(main_ds.unwrap(), format!("{RELEASE}-agent"));
        let pods: Value = serde_json::from_str(&pods.unwrap()).unwrap();
        let agents: Vec<(&str, Option<&str>)> = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["labels"]["app.kubernetes.io/component"] == "agent")
            .map(|p| {
                let scenario = p["spec"]["containers"][0]["env"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| e["name"] == "GPU_MCP_MOCK_SCENARIO")
                    .and_then(|e| e["value"].as_str());
                (p["spec"]["nodeName"].as_str().unwrap_or(""), scenario)
            })
            .collect();
        // One agent per GPU node, and only the XID node's runs the scenario.
        assert_eq!(agents.len(), nodes.len(), "{agents:?}");
        for node in &nodes {
            let here: Vec<_> = agents.iter().filter(|(n, _)| n == node).collect();
            let want = (node == xid_node).then_some(XID_SCENARIO);
            assert_eq!(here.len(), 1, "{node}: {agents:?}");
            assert_eq!(here[0].1, want, "{node}: {agents:?}");
        }
        let gateway: Vec<&Value> = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway")
            .collect();
        assert_eq!(gateway.len(), 1);
        assert_eq!(gateway[0]["spec"]["nodeName"], control_plane.as_str());
    }

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
