//! A Docker engine to build and run the image with: the one the environment points at when it
//! answers, else one this run installs (Debian's `docker.io`, as root) and starts on a socket of
//! its own, stopped when the run ends.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::cache::cache_root;
use crate::util::host::{self, which};
use crate::util::process::Supervised;
use crate::util::{cmd, fs as files};

/// How long a started daemon may take to answer.
const DAEMON_START: Duration = Duration::from_secs(60);

/// A Docker CLI and the daemon it talks to.
#[derive(Debug)]
pub(super) struct Engine {
    cli: PathBuf,
    /// `DOCKER_HOST` for a daemon this run started.
    host: Option<String>,
    /// The daemon this run started (stopped on drop).
    _daemon: Option<Supervised>,
}

impl Engine {
    /// The environment's engine when it answers, else a daemon started here.
    pub(super) fn start_or_find(log_dir: &Path) -> Result<Self> {
        let cli = cli()?;
        let found = Self {
            cli: cli.clone(),
            host: None,
            _daemon: None,
        };
        if found.answers() {
            return Ok(found);
        }
        let dockerd = which("dockerd").or_else(|| install_docker().ok().and(which("dockerd")));
        let Some(dockerd) = dockerd else {
            bail!(
                "no Docker engine answers and none could be installed: install Docker \
                 (Debian: `apt-get install docker.io`, as root) or set DOCKER_HOST"
            );
        };
        let state = cache_root()?.join("docker");
        let socket = state.join("docker.sock");
        files::create_dir(&state)?;
        let exec_root = std::env::temp_dir().join("gpu-mcp-docker-exec");
        eprintln!("starting dockerd (state in {})", state.display());
        let daemon = Supervised::spawn(
            "dockerd",
            Command::new(dockerd)
                .args(["--host", &format!("unix://{}", socket.display())])
                .arg("--data-root")
                .arg(state.join("data"))
                .arg("--exec-root")
                .arg(&exec_root)
                .arg("--pidfile")
                .arg(state.join("dockerd.pid"))
                // Containers here use the host network: no bridge, no iptables rules.
                .args(["--bridge", "none", "--iptables=false", "--ip6tables=false"]),
            log_dir,
        )?;
        let mut engine = Self {
            cli,
            host: Some(format!("unix://{}", socket.display())),
            _daemon: Some(daemon),
        };
        let started = Instant::now();
        while !engine.answers() {
            if let Some(d) = engine._daemon.as_mut()
                && !d.is_running()
            {
                bail!(
                    "dockerd exited; log {}:\n{}",
                    d.log_path().display(),
                    d.log_tail(20)
                );
            }
            if started.elapsed() > DAEMON_START {
                bail!("dockerd did not answer within {DAEMON_START:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(engine)
    }

    /// A `docker` command for this engine (BuildKit on).
    pub(super) fn command(&self) -> Command {
        let mut c = Command::new(&self.cli);
        c.env("DOCKER_BUILDKIT", "1");
        if let Some(host) = &self.host {
            c.env("DOCKER_HOST", host);
        }
        c
    }

    /// The command line that reaches this engine, for a program that starts `docker` itself.
    pub(super) fn argv(&self) -> Vec<String> {
        let mut argv = vec!["env".to_owned(), "DOCKER_BUILDKIT=1".to_owned()];
        if let Some(host) = &self.host {
            argv.push(format!("DOCKER_HOST={host}"));
        }
        argv.push(self.cli.display().to_string());
        argv
    }

    /// `docker <args>`'s stdout, trimmed; fails with its stderr.
    pub(super) fn output(&self, args: &[&str]) -> Result<String> {
        Ok(cmd::output(self.command().args(args))?.trim().to_owned())
    }

    /// The image's size in bytes.
    pub(super) fn image_size(&self, tag: &str) -> Result<u64> {
        self.output(&["image", "inspect", "--format", "{{.Size}}", tag])?
            .parse()
            .context("docker printed a size that is not a number")
    }

    fn answers(&self) -> bool {
        self.command()
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

/// The `docker` CLI to use: the one on `PATH` when it can build with BuildKit (it has buildx,
/// or it is a version with BuildKit built in), else the distribution's `/usr/bin/docker`.
fn cli() -> Result<PathBuf> {
    let on_path = which("docker");
    let usable = |cli: &Path| {
        Command::new(cli)
            .args(["buildx", "version"])
            .output()
            .is_ok_and(|o| o.status.success())
            || Command::new(cli)
                .args(["version", "--format", "{{.Client.Version}}"])
                .output()
                .is_ok_and(|o| {
                    o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("20.")
                })
    };
    if let Some(cli) = on_path.as_deref().filter(|c| usable(c)) {
        return Ok(cli.to_owned());
    }
    let distro = Path::new("/usr/bin/docker");
    if !distro.exists() {
        install_docker()?;
    }
    if distro.exists() {
        return Ok(distro.to_owned());
    }
    on_path.context("no docker CLI found: install Docker (Debian: `apt-get install docker.io`)")
}

/// Installs Debian's `docker.io` (daemon, CLI, containerd, runc) when running as root.
fn install_docker() -> Result<()> {
    host::apt_install(&["docker.io"], "building the image without a Docker engine")
}
