//! A kind cluster created by this run: kubectl and helm against it, the gateway's port-forward,
//! paused workers, logs on failure, and its deletion.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::tools::Tools;
use super::{
    CLUSTER, GATEWAY_SERVICE_PORT, NAMESPACE, NODE_TIMEOUT_SECS, SKIPPED_SCENARIOS, XID_SCENARIO,
    step,
};
use crate::programs;
use crate::util::{cmd, net};

/// A kind cluster created by this run; deleted on drop unless kept.
#[derive(Debug)]
pub(super) struct Cluster<'a> {
    pub(super) tools: &'a Tools,
    pub(super) kubeconfig: PathBuf,
    /// Created by this run: deleted on drop unless `keep`.
    pub(super) owned: bool,
    pub(super) keep: bool,
    pub(super) port_forward: Option<Child>,
}

impl<'a> Cluster<'a> {
    pub(super) fn create(tools: &'a Tools, work: &Path, workers: u32, keep: bool) -> Result<Self> {
        let existing = cmd::output(Command::new(&tools.kind).args(["get", "clusters"]))?;
        if existing.lines().any(|l| l.trim() == CLUSTER) {
            eprintln!("deleting the kind cluster {CLUSTER} left by an earlier run");
            cmd::status(Command::new(&tools.kind).args(["delete", "cluster", "--name", CLUSTER]))?;
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
                cmd::status(
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

    pub(super) fn kubectl_cmd(&self) -> Command {
        let mut cmd = Command::new(&self.tools.kubectl);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    pub(super) fn kubectl(&self, args: &[&str]) -> Result<String> {
        cmd::output(self.kubectl_cmd().args(args))
    }

    pub(super) fn helm(&self, args: &[&str]) -> Result<String> {
        cmd::output(
            Command::new(&self.tools.helm)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args),
        )
    }

    /// Worker node names, sorted.
    pub(super) fn workers(&self) -> Result<Vec<String>> {
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

    pub(super) fn run_routing(
        &mut self,
        work: &Path,
        routing: &str,
        workers: &[String],
        xid_node: &str,
        victim: &str,
    ) -> Result<()> {
        self.install(routing, xid_node)?;

        let gateway = self.single_name("deployment", "gateway")?;
        let role = self.single_name("role", "gateway")?;
        let service = self.single_name("service", "gateway")?;
        let port = net::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
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
        let result =
            programs::run_scenarios(env.iter().map(|(k, v)| (*k, v)), false, SKIPPED_SCENARIOS);
        self.stop_port_forward();
        result
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

    pub(super) fn unpause(&self, node: &str) {
        let _ = Command::new(&self.tools.docker)
            .args(["unpause", node])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    pub(super) fn wait_node_ready(&self, node: &str) -> Result<()> {
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

    pub(super) fn dump_logs(&self, dir: &Path) {
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
            cmd::output(Command::new(&self.tools.kind).args(["get", "nodes", "--name", CLUSTER]))
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
