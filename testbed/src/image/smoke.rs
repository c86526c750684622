//! The image run as a user would: its metadata, the agent over HTTP and stdio, the gateway
//! routing to that agent, each checked by the official Python MCP SDK, the agent's report of a
//! kubelet socket it may not use, and SIGTERM.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use super::docker::Engine;
use crate::sdk_clients::{self, Server};
use crate::util::{http, net};

/// The most the image may weigh.
const MAX_IMAGE_BYTES: u64 = 30 * 1_000_000;
/// How long `docker stop` waits after SIGTERM before it kills.
const STOP_GRACE_S: u32 = 20;
/// The mock scenario the agent container serves (one sick GPU, so verdicts are not all healthy).
const SCENARIO: &str = "xid-79";
/// How the containers run: the chart's restrictions (read-only root, non-root, no capabilities).
const LOCKED_DOWN: [&str; 8] = [
    "--read-only",
    "--user",
    "65532:65532",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--init=false",
];

/// Runs every check; containers are removed however it ends.
pub(super) fn run(engine: &Engine, tag: &str, out_dir: &Path) -> Result<()> {
    let started = Instant::now();
    metadata(engine, tag)?;

    let [agent_port, gateway_port]: [u16; 2] = net::free_ports(2)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("wanted two free ports"))?;
    let agent_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, agent_port));
    let gateway_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, gateway_port));
    let agent_url = format!("http://{agent_addr}/mcp");

    // A kubelet pod-resources socket as kubelets make it: root's, mode 0755, mounted read-only
    // where the chart mounts it. As UID 65532 the agent cannot connect (that needs write
    // permission) and must say so at start-up, then serve as usual.
    let (kubelet_dir, _kubelet_socket) = root_only_socket(out_dir)?;
    let mount = format!(
        "{}:/var/lib/kubelet/pod-resources:ro",
        kubelet_dir.display()
    );
    let agent = Container::start(
        engine,
        "agent",
        tag,
        None,
        &["--volume", &mount],
        &[
            "--transport",
            "http",
            "--listen",
            &agent_addr.to_string(),
            "--node-name",
            "image-node",
            "--mock-scenario",
            SCENARIO,
        ],
    )?;
    agent.wait_probes(agent_addr)?;
    agent.expect_pod_resources_denied(agent_addr)?;
    sdk_clients::check_with_python("image-agent-http", Server::Http(agent_url.clone()), out_dir)?;

    let gateway = Container::start(
        engine,
        "gateway",
        tag,
        Some("/gpu-mcp-gateway"),
        &[],
        &[
            "--transport",
            "http",
            "--listen",
            &gateway_addr.to_string(),
            "--agents",
            &format!("image-node={agent_url}"),
        ],
    )?;
    gateway.wait_probes(gateway_addr)?;
    sdk_clients::check_with_python(
        "image-gateway-http",
        Server::Http(format!("http://{gateway_addr}/mcp")),
        out_dir,
    )?;

    let mut stdio = engine.argv();
    stdio.extend(["run", "-i", "--rm", "--network", "none"].map(String::from));
    stdio.extend(LOCKED_DOWN.map(String::from));
    stdio.extend([tag, "--transport", "stdio", "--mock-scenario", SCENARIO].map(String::from));
    sdk_clients::check_with_python("image-agent-stdio", Server::Stdio(stdio), out_dir)?;

    for container in [gateway, agent] {
        container.stop_cleanly()?;
    }
    eprintln!(
        "image checks passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Size, user, entrypoint and labels.
fn metadata(engine: &Engine, tag: &str) -> Result<()> {
    let inspect: Value = serde_json::from_str(&engine.output(&["image", "inspect", tag])?)
        .context("docker image inspect printed no JSON")?;
    let image = &inspect[0];
    let size = image["Size"].as_u64().context("image without a size")?;
    ensure!(
        size <= MAX_IMAGE_BYTES,
        "the image is {size} bytes, over the {MAX_IMAGE_BYTES} limit"
    );
    let config = &image["Config"];
    ensure!(
        config["User"] == "65532:65532",
        "the image runs as {:?}, not 65532:65532",
        config["User"]
    );
    ensure!(
        config["Entrypoint"][0] == "/gpu-mcp-agent",
        "unexpected entrypoint {}",
        config["Entrypoint"]
    );
    for label in [
        "org.opencontainers.image.title",
        "org.opencontainers.image.source",
        "org.opencontainers.image.licenses",
        "org.opencontainers.image.version",
    ] {
        ensure!(
            config["Labels"][label].is_string(),
            "label {label} is missing"
        );
    }
    eprintln!(
        "  image: {:.1} MB, user 65532:65532, labels present",
        size as f64 / 1_000_000.0
    );
    Ok(())
}

/// A listening unix socket `kubelet.sock` in a fresh directory under `out_dir`, both root's with
/// mode 0755; the listener lives as long as the returned value.
fn root_only_socket(out_dir: &Path) -> Result<(PathBuf, UnixListener)> {
    let dir = out_dir.join("pod-resources");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let socket = dir.join("kubelet.sock");
    let listener =
        UnixListener::bind(&socket).with_context(|| format!("binding {}", socket.display()))?;
    for path in [&dir, &socket] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod 0755 {}", path.display()))?;
    }
    Ok((dir, listener))
}

/// A detached container on the host network, removed when dropped.
struct Container<'a> {
    engine: &'a Engine,
    name: String,
    what: &'static str,
}

impl<'a> Container<'a> {
    fn start(
        engine: &'a Engine,
        what: &'static str,
        tag: &str,
        entrypoint: Option<&str>,
        options: &[&str],
        args: &[&str],
    ) -> Result<Self> {
        let name = format!("gpu-mcp-image-{what}-{}", std::process::id());
        let _ = engine.command().args(["rm", "-f", &name]).output();
        let mut run = vec!["run", "-d", "--name", &name, "--network", "host"];
        run.extend(LOCKED_DOWN);
        run.extend(options);
        if let Some(e) = entrypoint {
            run.extend(["--entrypoint", e]);
        }
        run.push(tag);
        run.extend(args);
        engine.output(&run)?;
        Ok(Self { engine, name, what })
    }

    fn logs(&self) -> String {
        self.engine
            .command()
            .args(["logs", "--tail", "30", &self.name])
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default()
    }

    fn wait_probes(&self, addr: SocketAddr) -> Result<()> {
        for probe in ["/healthz", "/readyz"] {
            http::wait_ok(addr, probe, Duration::from_secs(60), None).with_context(|| {
                format!(
                    "the {} container never answered {probe}; its log:\n{}",
                    self.what,
                    self.logs()
                )
            })?;
        }
        eprintln!("  {} container: /healthz and /readyz answer 200", self.what);
        Ok(())
    }

    /// The agent's start-up check of the pod-resources socket reports `permission_denied`, on
    /// `/metrics` and in its log.
    fn expect_pod_resources_denied(&self, addr: SocketAddr) -> Result<()> {
        const GAUGE: &str =
            "agent_attribution_source_up{source=\"pod_resources\",reason=\"permission_denied\"} 0";
        let (status, metrics) = http::get(addr, "/metrics", Duration::from_secs(10))?;
        ensure!(
            status == 200 && metrics.contains(GAUGE),
            "the agent running as 65532 did not report the root-only kubelet socket as \
             permission denied (`{GAUGE}`); /metrics answered {status}:\n{metrics}"
        );
        let logs = self.logs();
        ensure!(
            logs.contains("permission_denied"),
            "the agent's log does not name the denied kubelet socket:\n{logs}"
        );
        eprintln!("  agent container: the root-only kubelet socket is reported permission denied");
        Ok(())
    }

    /// `docker stop` (SIGTERM, then SIGKILL after the grace): the container must have exited by
    /// itself, with status 0.
    fn stop_cleanly(self) -> Result<()> {
        let started = Instant::now();
        self.engine
            .output(&["stop", "--time", &STOP_GRACE_S.to_string(), &self.name])?;
        let took = started.elapsed();
        let state: Value = serde_json::from_str(&self.engine.output(&[
            "inspect",
            "--format",
            "{{json .State}}",
            &self.name,
        ])?)
        .context("docker inspect printed no JSON")?;
        let code = state["ExitCode"].as_i64();
        if code != Some(0) || state["OOMKilled"] == true {
            bail!(
                "the {} container did not exit cleanly on SIGTERM: state {state}; log:\n{}",
                self.what,
                self.logs()
            );
        }
        eprintln!(
            "  {} container: SIGTERM -> exit 0 after {:.1} s",
            self.what,
            took.as_secs_f64()
        );
        Ok(())
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self
            .engine
            .command()
            .args(["rm", "-f", &self.name])
            .output();
    }
}
