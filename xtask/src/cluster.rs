//! `cargo xtask cluster`: a real Kubernetes control plane on loopback for end-to-end tests.
//!
//! etcd, kube-apiserver (RBAC on), kube-controller-manager and kube-scheduler run as local
//! processes on 127.0.0.1; kwok plays the kubelets of N fake GPU nodes, so pods become Running
//! and Ready with loopback pod IPs (node `i` owns `127.0.<i+1>.0/24`), and `pods/exec` runs the
//! requested command on this machine.
//! Every binary is built from a pinned Go wrapper module in `xtask/k8s-bins/` (see `gobuild`).
//!
//! Other xtask commands use [`ensure_up`], [`down`], [`helm_path`], [`kubectl_path`] and
//! [`ClusterHandle::token_kubeconfig`].

mod gobuild;
mod pki;
mod procs;
mod smoke;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Arguments of `cargo xtask cluster`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Build (or reuse) the binaries and start a fresh cluster; leftovers of an earlier run are
    /// stopped and removed first.
    Up(UpArgs),
    /// Stop every process the cluster started and remove its state.
    Down(StateArgs),
    /// Print shell exports (KUBECONFIG, PATH) for the running cluster.
    Env(StateArgs),
    /// Report each component (pid, liveness, memory), the API's readiness and the nodes.
    Status(StateArgs),
    /// Mint a ServiceAccount token (TokenRequest API) and write a kubeconfig that uses it.
    Token(TokenArgs),
    /// Only build (or reuse) the Go binaries, printing where they are.
    Build,
    /// Check a running cluster end to end: a pod placed on a node and a DaemonSet's pods become
    /// Running and Ready with loopback IPs, `pods/exec` runs a local command, and RBAC denies a
    /// ServiceAccount without a binding.
    Smoke(StateArgs),
}

#[derive(Debug, clap::Args)]
struct StateArgs {
    /// State directory (pids, logs, certificates, kubeconfigs).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    #[command(flatten)]
    state: StateArgs,
    /// Number of fake GPU nodes (kwok).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=200))]
    nodes: u32,
    /// Port of kube-apiserver on 127.0.0.1 (default: a free one).
    #[arg(long)]
    apiserver_port: Option<u16>,
    /// Agent binary that `pods/exec` runs as `gpu-mcp-agent` (default: target/debug/gpu-mcp-agent).
    #[arg(long, value_name = "PATH")]
    agent_bin: Option<PathBuf>,
    /// Keep a running, healthy cluster with the same node count instead of recreating it.
    #[arg(long)]
    reuse: bool,
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    #[command(flatten)]
    state: StateArgs,
    /// Namespace of the ServiceAccount.
    #[arg(long, short = 'n', default_value = "gpu-diagnostics")]
    namespace: String,
    /// ServiceAccount name.
    #[arg(long)]
    service_account: String,
    /// Token lifetime (a Go duration, e.g. `1h`).
    #[arg(long, default_value = "24h")]
    duration: String,
    /// Where to write the kubeconfig (default: in the state directory).
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    match args.action {
        Action::Up(up) => {
            let mut opts = UpOptions::new()?;
            opts.nodes = up.nodes;
            opts.apiserver_port = up.apiserver_port;
            opts.agent_bin = up.agent_bin;
            if let Some(dir) = up.state.state_dir {
                opts.state_dir = procs::absolute(&dir)?;
            }
            let started = Instant::now();
            let handle = if up.reuse {
                ensure_up(&opts)?
            } else {
                self::up(&opts)?
            };
            eprintln!(
                "cluster ready in {:.1} s: {} on {} with nodes {}",
                started.elapsed().as_secs_f64(),
                handle.nodes.len(),
                handle.server,
                handle.nodes.join(", ")
            );
            print!("{}", handle.env_exports());
            Ok(())
        }
        Action::Down(args) => down(&state_dir_or_default(args.state_dir)?),
        Action::Env(args) => {
            let handle = ClusterHandle::load(&state_dir_or_default(args.state_dir)?)?;
            print!("{}", handle.env_exports());
            Ok(())
        }
        Action::Status(args) => status(&state_dir_or_default(args.state_dir)?),
        Action::Token(args) => {
            let handle = ClusterHandle::load(&state_dir_or_default(args.state.state_dir)?)?;
            let path = handle.token_kubeconfig(
                &args.namespace,
                &args.service_account,
                &args.duration,
                args.output.as_deref(),
            )?;
            println!("{}", path.display());
            Ok(())
        }
        Action::Smoke(args) => {
            let handle = ClusterHandle::load(&state_dir_or_default(args.state_dir)?)?;
            smoke::run(&handle)
        }
        Action::Build => {
            for module in gobuild::ALL {
                let dir = gobuild::ensure(&module)?;
                println!("{} {}: {}", module.name, module.version, dir.display());
            }
            println!("kubectl: {}", kubectl_path()?.display());
            println!("helm: {}", helm_path()?.display());
            Ok(())
        }
    }
}

/// Options of [`up`] and [`ensure_up`].
#[derive(Debug, Clone)]
pub(crate) struct UpOptions {
    /// Number of fake GPU nodes.
    pub(crate) nodes: u32,
    /// State directory (default `target/local-cluster`).
    pub(crate) state_dir: PathBuf,
    /// Port for kube-apiserver (default: a free one).
    pub(crate) apiserver_port: Option<u16>,
    /// Agent binary run by `pods/exec` (default `target/debug/gpu-mcp-agent`).
    pub(crate) agent_bin: Option<PathBuf>,
}

impl UpOptions {
    /// Defaults: three nodes in `target/local-cluster`.
    pub(crate) fn new() -> anyhow::Result<Self> {
        Ok(Self {
            nodes: 3,
            state_dir: default_state_dir()?,
            apiserver_port: None,
            agent_bin: None,
        })
    }
}

/// A running local cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClusterHandle {
    /// Admin kubeconfig (`system:masters`).
    pub(crate) kubeconfig: PathBuf,
    /// Directory with `kubectl`, `helm`, the control-plane binaries and `gpu-mcp-agent`.
    pub(crate) bin_dir: PathBuf,
    /// The built kubectl.
    pub(crate) kubectl: PathBuf,
    /// The built helm.
    pub(crate) helm: PathBuf,
    /// State directory (pids, logs, certificates, kubeconfigs).
    pub(crate) state_dir: PathBuf,
    /// API server URL, `https://127.0.0.1:<port>`.
    pub(crate) server: String,
    /// CA certificate that signed the API server's serving certificate.
    pub(crate) ca_cert: PathBuf,
    /// Names of the fake GPU nodes.
    pub(crate) nodes: Vec<String>,
}

/// What `up` records in `<state>/state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    handle: Option<ClusterHandle>,
    processes: Vec<ProcessRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProcessRecord {
    name: String,
    pid: u32,
    log: PathBuf,
}

const STATE_FILE: &str = "state.json";
const NODE_PREFIX: &str = "kwok-gpu-node-";
/// The ServiceCIDR; nothing routes it (there is no kube-proxy), but a loopback range keeps every
/// address the cluster hands out on this machine.
const SERVICE_CIDR: &str = "127.1.0.0/16";
/// Pod IPs for pods on nodes kwok manages without a `spec.podCIDR`.
const FALLBACK_POD_CIDR: &str = "127.0.255.0/24";
/// GPUs each fake node advertises (`nvidia.com/gpu` capacity).
const GPUS_PER_NODE: u32 = 8;
/// Most fake nodes one cluster has (each owns one /24 of 127.0.0.0/16).
const MAX_NODES: u32 = 200;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn default_state_dir() -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    procs::absolute(&target.join("local-cluster"))
}

fn state_dir_or_default(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match dir {
        Some(dir) => procs::absolute(&dir),
        None => default_state_dir(),
    }
}

/// The built helm binary (built on first use).
pub(crate) fn helm_path() -> anyhow::Result<PathBuf> {
    gobuild::binary(&gobuild::HELM, "helm")
}

/// The built kubectl binary (built on first use).
pub(crate) fn kubectl_path() -> anyhow::Result<PathBuf> {
    gobuild::binary(&gobuild::KUBERNETES, "kubectl")
}

fn node_name(i: u32) -> String {
    format!("{NODE_PREFIX}{i}")
}

/// Node `i` owns the pod CIDR `127.0.<i+1>.0/24`.
fn node_pod_cidr(i: u32) -> String {
    format!("127.0.{}.0/24", i + 1)
}

fn read_state(state_dir: &Path) -> anyhow::Result<Option<State>> {
    let path = state_dir.join(STATE_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?,
        )),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_state(state_dir: &Path, state: &State) -> anyhow::Result<()> {
    let path = state_dir.join(STATE_FILE);
    let tmp = state_dir.join(format!("{STATE_FILE}.tmp"));
    fs::write(&tmp, serde_json::to_vec_pretty(state)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

fn marker(state_dir: &Path) -> String {
    format!("{}/", state_dir.display())
}

/// Stops every process of the cluster in `state_dir` (recorded pids first, then any process
/// whose command line still names the state directory) and keeps the files. Returns how many
/// processes were running.
fn stop_all(state_dir: &Path) -> anyhow::Result<usize> {
    let marker = marker(state_dir);
    let mut stopped = 0;
    if let Some(state) = read_state(state_dir)? {
        for record in state.processes.iter().rev() {
            if procs::stop(record.pid, &marker, Duration::from_secs(15)) {
                stopped += 1;
            }
        }
    }
    for pid in procs::find_by_marker(&marker) {
        if procs::stop(pid, &marker, Duration::from_secs(15)) {
            stopped += 1;
        }
    }
    Ok(stopped)
}

/// Stops the cluster in `state_dir` and removes the directory.
pub(crate) fn down(state_dir: &Path) -> anyhow::Result<()> {
    let state_dir = procs::absolute(state_dir)?;
    let _lock = lock(&state_dir)?;
    // Processes can outlive a state directory removed by hand: look for them either way.
    let stopped = stop_all(&state_dir)?;
    if !state_dir.exists() {
        eprintln!(
            "no local cluster in {} (stopped {stopped} stray process(es))",
            state_dir.display()
        );
        return Ok(());
    }
    fs::remove_dir_all(&state_dir).with_context(|| format!("removing {}", state_dir.display()))?;
    eprintln!(
        "stopped {stopped} process(es) and removed {}",
        state_dir.display()
    );
    Ok(())
}

/// Returns the cluster in `opts.state_dir` when it is healthy and has the asked node count;
/// otherwise starts a fresh one with [`up`].
pub(crate) fn ensure_up(opts: &UpOptions) -> anyhow::Result<ClusterHandle> {
    let state_dir = procs::absolute(&opts.state_dir)?;
    let _lock = lock(&state_dir)?;
    if let Ok(handle) = ClusterHandle::load(&state_dir)
        && handle.nodes.len() == opts.nodes as usize
        && runs_current_binaries(&handle)
        && handle.is_healthy()
    {
        // kwok looks the agent up on PATH at each exec, so re-pointing the link is enough.
        procs::symlink(&agent_path(opts)?, &handle.bin_dir.join("gpu-mcp-agent"))?;
        return Ok(handle);
    }
    up_locked(opts, &state_dir)
}

/// Serialises `up`, `ensure_up` and `down` on one state directory across processes.
fn lock(state_dir: &Path) -> anyhow::Result<procs::PidLock> {
    let mut name = state_dir.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let path = state_dir.with_file_name(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    procs::PidLock::acquire(
        &path,
        &format!(
            "another start or stop of the cluster in {}",
            state_dir.display()
        ),
    )
}

/// Whether the cluster's `bin/` links point at the binaries the wrapper modules now build
/// (a cluster started before a version bump or a patch is not reused).
fn runs_current_binaries(handle: &ClusterHandle) -> bool {
    gobuild::ALL.iter().all(|module| {
        gobuild::output_dir(module).is_ok_and(|dir| {
            module.tools.iter().all(|tool| {
                fs::read_link(handle.bin_dir.join(tool.binary))
                    .is_ok_and(|target| target == dir.join(tool.binary))
            })
        })
    })
}

/// The agent binary `pods/exec` runs: `opts.agent_bin` or `target/debug/gpu-mcp-agent`.
fn agent_path(opts: &UpOptions) -> anyhow::Result<PathBuf> {
    match &opts.agent_bin {
        Some(path) => procs::absolute(path),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| workspace_root().join("target"), PathBuf::from);
            procs::absolute(&target.join("debug").join("gpu-mcp-agent"))
        }
    }
}

/// Builds (or reuses) the binaries and starts a fresh cluster, after stopping and removing
/// whatever an earlier run left in the state directory. On failure every process started so
/// far is stopped and the logs stay in `<state>/logs`.
pub(crate) fn up(opts: &UpOptions) -> anyhow::Result<ClusterHandle> {
    let state_dir = procs::absolute(&opts.state_dir)?;
    let _lock = lock(&state_dir)?;
    up_locked(opts, &state_dir)
}

fn up_locked(opts: &UpOptions, state_dir: &Path) -> anyhow::Result<ClusterHandle> {
    // Node `i` owns 127.0.<i+1>.0/24; 127.0.255.0/24 is kwok's fallback pool.
    anyhow::ensure!(
        (1..=MAX_NODES).contains(&opts.nodes),
        "the local cluster has 1 to {MAX_NODES} nodes, not {}",
        opts.nodes
    );
    let state_dir = state_dir.to_path_buf();
    let stopped = stop_all(&state_dir)?;
    if stopped > 0 {
        eprintln!("stopped {stopped} leftover process(es) of an earlier run");
    }
    if state_dir.exists() {
        fs::remove_dir_all(&state_dir)
            .with_context(|| format!("removing {}", state_dir.display()))?;
    }
    if let Some(port) = opts.apiserver_port {
        procs::check_port_free(port, "kube-apiserver")?;
    }

    // Build before creating any state, so a failed build leaves nothing behind.
    let mut bins = Vec::new();
    for module in gobuild::ALL {
        bins.push((module, gobuild::ensure(&module)?));
    }
    let stages = kwok_stages()?;

    fs::create_dir_all(state_dir.join("logs"))
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let result = start(opts, &state_dir, &bins, &stages);
    if result.is_err() {
        let _ = stop_all(&state_dir);
        if let Ok(Some(mut state)) = read_state(&state_dir) {
            state.handle = None;
            let _ = write_state(&state_dir, &state);
        }
    }
    result
}

/// Everything `start` needs to know about one component.
struct Component<'a> {
    name: &'static str,
    binary: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    state_dir: &'a Path,
}

impl Component<'_> {
    fn log(&self) -> PathBuf {
        self.state_dir
            .join("logs")
            .join(format!("{}.log", self.name))
    }

    fn spawn(self, state: &mut State) -> anyhow::Result<ProcessRecord> {
        let log = self.log();
        let pid = procs::spawn_detached(&self.binary, &self.args, &self.envs, &log)?;
        let record = ProcessRecord {
            name: self.name.to_owned(),
            pid,
            log,
        };
        state.processes.push(record.clone());
        write_state(self.state_dir, state)?;
        Ok(record)
    }
}

fn died(record: &ProcessRecord, state_dir: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{} (pid {}) exited during start-up; its log: {}\n{}",
        record.name,
        record.pid,
        record.log.display(),
        gobuild::tail(&record.log, 20)
    )
    .context(format!(
        "starting the local cluster in {}",
        state_dir.display()
    ))
}

/// Polls `check` every 250 ms until it returns `Ok(true)`, failing when `record` dies or
/// `timeout` passes.
fn wait_for(
    what: &str,
    record: &ProcessRecord,
    state_dir: &Path,
    timeout: Duration,
    mut check: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let marker = marker(state_dir);
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return Ok(());
        }
        if !procs::is_ours(record.pid, &marker) {
            return Err(died(record, state_dir));
        }
        if Instant::now() > deadline {
            bail!(
                "timed out after {} s waiting for {what}; log of {}: {}\n{}",
                timeout.as_secs(),
                record.name,
                record.log.display(),
                gobuild::tail(&record.log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn bin(bins: &[(gobuild::GoModule, PathBuf)], name: &str) -> anyhow::Result<PathBuf> {
    bins.iter()
        .find_map(|(module, dir)| {
            module
                .tools
                .iter()
                .any(|t| t.binary == name)
                .then(|| dir.join(name))
        })
        .with_context(|| format!("no module builds {name}"))
}

fn start(
    opts: &UpOptions,
    state_dir: &Path,
    bins: &[(gobuild::GoModule, PathBuf)],
    stages: &str,
) -> anyhow::Result<ClusterHandle> {
    let started = Instant::now();
    let mut state = State::default();
    write_state(state_dir, &state)?;

    // Binaries, plus the agent, in one directory that also goes first on kwok's PATH.
    let bin_dir = state_dir.join("bin");
    fs::create_dir_all(&bin_dir)?;
    for (module, dir) in bins {
        for tool in module.tools {
            procs::symlink(&dir.join(tool.binary), &bin_dir.join(tool.binary))?;
        }
    }
    // A dangling link is fine: it starts to resolve once the agent is built.
    procs::symlink(&agent_path(opts)?, &bin_dir.join("gpu-mcp-agent"))?;

    let pki = pki::generate(
        &state_dir.join("pki"),
        &[
            pki::ADMIN,
            pki::CONTROLLER_MANAGER,
            pki::SCHEDULER,
            pki::KWOK,
        ],
    )?;

    let ports = procs::free_ports(4)?;
    let (etcd_port, etcd_peer_port, kwok_port) = (ports[0], ports[1], ports[2]);
    let api_port = opts.apiserver_port.unwrap_or(ports[3]);
    let server = format!("https://127.0.0.1:{api_port}");

    let kubeconfig = |id: &pki::Identity| -> anyhow::Result<PathBuf> {
        let (cert, key) = pki.client(id);
        let path = state_dir.join(format!("{}.kubeconfig", id.file));
        fs::write(
            &path,
            kubeconfig_yaml(
                &server,
                &pki.ca_cert,
                id.user,
                &UserAuth::Cert { cert, key },
                None,
            ),
        )?;
        Ok(path)
    };
    let admin_kubeconfig = kubeconfig(&pki::ADMIN)?;
    let cm_kubeconfig = kubeconfig(&pki::CONTROLLER_MANAGER)?;
    let scheduler_kubeconfig = kubeconfig(&pki::SCHEDULER)?;
    let kwok_kubeconfig = kubeconfig(&pki::KWOK)?;

    let handle = ClusterHandle {
        kubeconfig: admin_kubeconfig.clone(),
        bin_dir: bin_dir.clone(),
        kubectl: bin(bins, "kubectl")?,
        helm: bin(bins, "helm")?,
        state_dir: state_dir.to_path_buf(),
        server: server.clone(),
        ca_cert: pki.ca_cert.clone(),
        nodes: (0..opts.nodes).map(node_name).collect(),
    };
    let p = |path: &Path| path.display().to_string();

    // etcd
    let etcd_url = format!("http://127.0.0.1:{etcd_port}");
    let peer_url = format!("http://127.0.0.1:{etcd_peer_port}");
    let etcd = Component {
        name: "etcd",
        binary: bin(bins, "etcd")?,
        args: vec![
            "--name=local".into(),
            format!("--data-dir={}", p(&state_dir.join("etcd"))),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=local={peer_url}"),
            "--auto-compaction-retention=1".into(),
            "--quota-backend-bytes=1073741824".into(),
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
        ],
        envs: Vec::new(),
        state_dir,
    }
    .spawn(&mut state)?;
    wait_for(
        "etcd /health",
        &etcd,
        state_dir,
        Duration::from_secs(60),
        || {
            procs::http_get(etcd_port, "/health")
                .is_ok_and(|(code, body)| code == 200 && body.contains("true"))
        },
    )?;

    // kube-apiserver
    let apiserver = Component {
        name: "kube-apiserver",
        binary: bin(bins, "kube-apiserver")?,
        args: vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", p(&state_dir.join("apiserver-certs"))),
            format!("--tls-cert-file={}", p(&pki.serving_cert)),
            format!("--tls-private-key-file={}", p(&pki.serving_key)),
            format!("--client-ca-file={}", p(&pki.ca_cert)),
            format!("--service-account-key-file={}", p(&pki.sa_pub)),
            format!("--service-account-signing-key-file={}", p(&pki.sa_key)),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--authorization-mode=Node,RBAC".into(),
            "--allow-privileged=true".into(),
            // The default endpoint reconciler would publish 127.0.0.1 as the `kubernetes`
            // Service's endpoint, which endpoint validation rejects (loopback).
            "--endpoint-reconciler-type=none".into(),
            "--kubelet-preferred-address-types=InternalIP,Hostname".into(),
            "--enable-priority-and-fairness=false".into(),
            "--profiling=false".into(),
            "--event-ttl=30m".into(),
        ],
        envs: Vec::new(),
        state_dir,
    }
    .spawn(&mut state)?;
    let kubectl = handle.kubectl.clone();
    wait_for(
        "kube-apiserver /readyz",
        &apiserver,
        state_dir,
        Duration::from_secs(240),
        || {
            Command::new(&kubectl)
                .arg(format!("--kubeconfig={}", admin_kubeconfig.display()))
                .args(["get", "--raw=/readyz", "--request-timeout=5s"])
                .output()
                .is_ok_and(|o| o.status.success())
        },
    )?;

    // kube-controller-manager and kube-scheduler
    let controller_manager = Component {
        name: "kube-controller-manager",
        binary: bin(bins, "kube-controller-manager")?,
        args: vec![
            format!("--kubeconfig={}", p(&cm_kubeconfig)),
            format!("--authentication-kubeconfig={}", p(&cm_kubeconfig)),
            format!("--authorization-kubeconfig={}", p(&cm_kubeconfig)),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
            "--leader-elect=false".into(),
            // Each controller acts as its own ServiceAccount with its bootstrap role, as in
            // kubeadm clusters; the controller manager's own user may do little more than that.
            "--use-service-account-credentials=true".into(),
            format!("--service-account-private-key-file={}", p(&pki.sa_key)),
            format!("--root-ca-file={}", p(&pki.ca_cert)),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            // Pod CIDRs are set on each node; nothing else in this cluster allocates them.
            "--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle".into(),
            "--profiling=false".into(),
        ],
        envs: Vec::new(),
        state_dir,
    }
    .spawn(&mut state)?;
    let scheduler = Component {
        name: "kube-scheduler",
        binary: bin(bins, "kube-scheduler")?,
        args: vec![
            format!("--kubeconfig={}", p(&scheduler_kubeconfig)),
            format!("--authentication-kubeconfig={}", p(&scheduler_kubeconfig)),
            format!("--authorization-kubeconfig={}", p(&scheduler_kubeconfig)),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
            "--leader-elect=false".into(),
            "--profiling=false".into(),
        ],
        envs: Vec::new(),
        state_dir,
    }
    .spawn(&mut state)?;

    // kwok's namespaced `Exec` kind, served as a CRD: an `Exec` named after a pod overrides the
    // ClusterExec for that pod (e2e gives each exec'd agent its node name and mock scenario).
    let exec_crd = state_dir.join("kwok-exec-crd.yaml");
    fs::write(&exec_crd, kwok_exec_crd()?)?;
    handle
        .kubectl_output(&["apply", "-f", &p(&exec_crd)])
        .context("installing kwok's Exec CRD")?;
    handle
        .kubectl_output(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/execs.kwok.x-k8s.io",
        ])
        .context("waiting for kwok's Exec CRD")?;

    // kwok: stages plus a ClusterExec that runs `pods/exec` commands on this machine.
    let exec_dir = state_dir.join("exec");
    fs::create_dir_all(&exec_dir)?;
    let kwok_config = state_dir.join("kwok.yaml");
    fs::write(&kwok_config, kwok_config_yaml(stages, &exec_dir))?;
    let path = std::env::var("PATH").unwrap_or_default();
    let kwok = Component {
        name: "kwok",
        binary: bin(bins, "kwok")?,
        args: vec![
            format!("--kubeconfig={}", p(&kwok_kubeconfig)),
            format!("--config={}", p(&kwok_config)),
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake".into(),
            "--node-ip=127.0.0.1".into(),
            "--node-name=localhost".into(),
            format!("--node-port={kwok_port}"),
            format!("--server-address=127.0.0.1:{kwok_port}"),
            format!("--tls-cert-file={}", p(&pki.serving_cert)),
            format!("--tls-private-key-file={}", p(&pki.serving_key)),
            format!("--cidr={FALLBACK_POD_CIDR}"),
            "--node-lease-duration-seconds=40".into(),
            "--enable-crds=Exec".into(),
        ],
        envs: vec![("PATH".into(), format!("{}:{path}", bin_dir.display()))],
        state_dir,
    }
    .spawn(&mut state)?;

    // Fake GPU nodes.
    let nodes_file = state_dir.join("nodes.json");
    fs::write(
        &nodes_file,
        serde_json::to_vec_pretty(&nodes_manifest(opts.nodes))?,
    )?;
    handle
        .kubectl_output(&["apply", "-f", &p(&nodes_file)])
        .context("registering the fake GPU nodes")?;
    // One LIST per check: `kubectl wait` over many nodes spends its timeout one node at a time
    // and never finishes for a few dozen nodes on a busy machine.
    wait_for(
        "the kwok nodes to be Ready",
        &kwok,
        state_dir,
        Duration::from_secs(120),
        || {
            handle
                .kubectl_output(&["get", "nodes", "-o", "json"])
                .ok()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .is_some_and(|list| all_nodes_ready(&list, &handle.nodes))
        },
    )?;
    // The controller manager is working once it has created the default ServiceAccount.
    wait_for(
        "kube-controller-manager (the default ServiceAccount)",
        &controller_manager,
        state_dir,
        Duration::from_secs(120),
        || {
            handle
                .kubectl_output(&["get", "serviceaccount", "default", "-n", "default"])
                .is_ok()
        },
    )?;
    let marker = marker(state_dir);
    for record in [&scheduler, &apiserver, &etcd] {
        if !procs::is_ours(record.pid, &marker) {
            return Err(died(record, state_dir));
        }
    }

    state.handle = Some(handle.clone());
    write_state(state_dir, &state)?;
    eprintln!(
        "control plane started in {:.1} s (state: {})",
        started.elapsed().as_secs_f64(),
        state_dir.display()
    );
    Ok(handle)
}

/// How a kubeconfig user authenticates.
enum UserAuth {
    Cert { cert: PathBuf, key: PathBuf },
    Token(String),
}

/// JSON string literal (a valid YAML scalar), for values written into YAML files.
fn quoted(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

fn kubeconfig_yaml(
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

/// kwok's `--config`: upstream's fast node and pod stages, then a ClusterExec that runs every
/// `pods/exec` command on this machine (the binaries in `<state>/bin` first on PATH).
fn kwok_config_yaml(stages: &str, exec_dir: &Path) -> String {
    format!(
        "{stages}\n---\napiVersion: kwok.x-k8s.io/v1alpha1\nkind: ClusterExec\nmetadata:\n  name: local-exec\n\
         spec:\n  execs:\n  - local:\n      workDir: {}\n      envs:\n      - name: GPU_MCP_LOCAL_CLUSTER\n        value: \"1\"\n",
        quoted(&exec_dir.display().to_string())
    )
}

/// Whether every node named in `names` is in the node `list` with the Ready condition True.
fn all_nodes_ready(list: &serde_json::Value, names: &[String]) -> bool {
    let items = list["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    names.iter().all(|name| {
        items.iter().any(|node| {
            node["metadata"]["name"] == name.as_str()
                && node["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
    })
}

/// Node objects of the fake GPU nodes, labelled like nodes with the NVIDIA device plugin and
/// GPU feature discovery.
fn nodes_manifest(n: u32) -> serde_json::Value {
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let name = node_name(i);
            let resources = serde_json::json!({
                "cpu": "32",
                "memory": "256Gi",
                "pods": "110",
                "nvidia.com/gpu": GPUS_PER_NODE.to_string(),
            });
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {
                        "kwok.x-k8s.io/node": "fake",
                        "node.alpha.kubernetes.io/ttl": "0",
                    },
                    "labels": {
                        "type": "kwok",
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "nvidia.com/gpu.present": "true",
                        "nvidia.com/gpu.count": GPUS_PER_NODE.to_string(),
                        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                    },
                },
                "spec": {
                    "podCIDR": node_pod_cidr(i),
                    "podCIDRs": [node_pod_cidr(i)],
                },
                "status": {
                    "allocatable": resources,
                    "capacity": resources,
                },
            })
        })
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// kwok's `Exec` CRD from the kwok module in the Go module cache, cached beside the kwok binary.
fn kwok_exec_crd() -> anyhow::Result<String> {
    kwok_asset("exec-crd.yaml", &["crd/bases/kwok.x-k8s.io_execs.yaml"])
}

/// Upstream kwok's fast node and pod stages (as kwokctl combines them), read from the kwok
/// module in the Go module cache and cached beside the kwok binary.
fn kwok_stages() -> anyhow::Result<String> {
    kwok_asset(
        "stages.yaml",
        &[
            "stage/node/fast/node-initialize.yaml",
            "stage/node/heartbeat/node-heartbeat.yaml",
            "stage/pod/fast/pod-ready.yaml",
            "stage/pod/fast/pod-complete.yaml",
            "stage/pod/fast/pod-delete.yaml",
        ],
    )
}

/// The files `files` under the kwok module's `kustomize/` directory as one multi-document
/// YAML, cached as `<kwok output dir>/<cache_name>`.
fn kwok_asset(cache_name: &str, files: &[&str]) -> anyhow::Result<String> {
    let cache = gobuild::output_dir(&gobuild::KWOK)?.join(cache_name);
    if let Ok(text) = fs::read_to_string(&cache) {
        return Ok(text);
    }
    gobuild::check_go()?;
    let module_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("k8s-bins")
        .join(gobuild::KWOK.name);
    let output = Command::new("go")
        .args([
            "mod",
            "download",
            "-json",
            &format!("sigs.k8s.io/kwok@{}", gobuild::KWOK.version),
        ])
        .current_dir(&module_dir)
        .env("GOTOOLCHAIN", "local")
        .output()
        .context("running `go mod download` for kwok's stages and CRDs")?;
    if !output.status.success() {
        bail!(
            "`go mod download sigs.k8s.io/kwok` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let info: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let dir = info
        .get("Dir")
        .and_then(|d| d.as_str())
        .context("`go mod download -json` gave no Dir for kwok")?;
    let mut text = String::new();
    for file in files {
        let path = Path::new(dir).join("kustomize").join(file);
        let body =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        if !text.is_empty() {
            text.push_str("\n---\n");
        }
        text.push_str(body.trim_end());
        text.push('\n');
    }
    fs::write(&cache, &text).with_context(|| format!("writing {}", cache.display()))?;
    Ok(text)
}

impl ClusterHandle {
    /// The handle of a started cluster in `state_dir`.
    pub(crate) fn load(state_dir: &Path) -> anyhow::Result<Self> {
        let state_dir = procs::absolute(state_dir)?;
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
    pub(crate) fn is_healthy(&self) -> bool {
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

    /// A `kubectl` command using the admin kubeconfig.
    pub(crate) fn kubectl_command(&self) -> Command {
        let mut command = Command::new(&self.kubectl);
        command.arg(format!("--kubeconfig={}", self.kubeconfig.display()));
        command
    }

    /// Runs kubectl with the admin kubeconfig; returns stdout, or an error carrying stderr.
    pub(crate) fn kubectl_output(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self
            .kubectl_command()
            .args(args)
            .output()
            .with_context(|| format!("running {}", self.kubectl.display()))?;
        if !output.status.success() {
            bail!(
                "`kubectl {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Shell lines that point kubectl, helm and kube clients at this cluster.
    pub(crate) fn env_exports(&self) -> String {
        format!(
            "export KUBECONFIG={}\nexport PATH=\"{}:$PATH\"\n",
            quoted(&self.kubeconfig.display().to_string()),
            self.bin_dir.display()
        )
    }

    /// Mints a token for ServiceAccount `namespace/service_account` through the TokenRequest
    /// API (`kubectl create token`) and writes a kubeconfig that authenticates with it, at
    /// `output` or `<state>/<namespace>-<service_account>.kubeconfig`. Returns its path.
    pub(crate) fn token_kubeconfig(
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
            Some(path) => procs::absolute(path)?,
            None => self
                .state_dir
                .join(format!("{namespace}-{service_account}.kubeconfig")),
        };
        let user = format!("system:serviceaccount:{namespace}:{service_account}");
        fs::write(
            &path,
            kubeconfig_yaml(
                &self.server,
                &self.ca_cert,
                &user,
                &UserAuth::Token(token.to_owned()),
                Some(namespace),
            ),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

fn status(state_dir: &Path) -> anyhow::Result<()> {
    let Some(state) = read_state(state_dir)? else {
        println!("no local cluster in {}", state_dir.display());
        return Ok(());
    };
    let marker = marker(state_dir);
    println!("state: {}", state_dir.display());
    let mut all_running = true;
    for record in &state.processes {
        let running = procs::is_ours(record.pid, &marker);
        all_running &= running;
        let rss = procs::rss_kib(record.pid)
            .filter(|_| running)
            .map_or_else(String::new, |kib| format!("  rss {} MiB", kib / 1024));
        println!(
            "{:<24} pid {:<8} {}{rss}\n{:<24} log {}",
            record.name,
            record.pid,
            if running { "running" } else { "NOT RUNNING" },
            "",
            record.log.display()
        );
    }
    let Some(handle) = state.handle else {
        bail!("the cluster did not finish starting; `cargo xtask cluster up` starts it afresh");
    };
    match handle.kubectl_output(&["get", "--raw=/readyz"]) {
        Ok(_) => println!("api: {} ready", handle.server),
        Err(err) => println!("api: {} NOT READY: {err:#}", handle.server),
    }
    match handle.kubectl_output(&["get", "nodes", "-o", "wide"]) {
        Ok(nodes) => print!("{nodes}"),
        Err(err) => println!("nodes: {err:#}"),
    }
    if !all_running {
        bail!("some components are not running; see their logs");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_get_disjoint_loopback_pod_cidrs_and_gpu_labels() {
        let manifest = nodes_manifest(3);
        let items = manifest["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        let cidrs: Vec<&str> = items
            .iter()
            .map(|n| n["spec"]["podCIDR"].as_str().unwrap())
            .collect();
        assert_eq!(cidrs, ["127.0.1.0/24", "127.0.2.0/24", "127.0.3.0/24"]);
        for node in items {
            assert_eq!(node["metadata"]["labels"]["nvidia.com/gpu.present"], "true");
            assert_eq!(
                node["metadata"]["annotations"]["kwok.x-k8s.io/node"],
                "fake"
            );
            assert_eq!(node["status"]["capacity"]["nvidia.com/gpu"], "8");
        }
        assert_eq!(items[2]["metadata"]["name"], "kwok-gpu-node-2");
    }

    #[test]
    fn node_readiness_needs_every_named_node_ready() {
        let list = serde_json::json!({"items": [
            {"metadata": {"name": "a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            {"metadata": {"name": "b"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
        ]});
        assert!(all_nodes_ready(&list, &["a".to_owned()]));
        assert!(!all_nodes_ready(&list, &["a".to_owned(), "b".to_owned()]));
        assert!(!all_nodes_ready(&list, &["c".to_owned()]));
    }

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

    #[test]
    fn kwok_config_appends_a_cluster_wide_local_exec() {
        let yaml = kwok_config_yaml("kind: Stage", Path::new("/state/exec"));
        assert!(yaml.starts_with("kind: Stage\n---\n"));
        assert!(yaml.contains("kind: ClusterExec"));
        assert!(yaml.contains("workDir: \"/state/exec\""));
        assert!(!yaml.contains("selector"));
    }

    #[test]
    fn down_stops_recorded_and_unrecorded_processes_and_removes_the_state() {
        let dir = std::env::temp_dir().join(format!("gpu-mcp-down-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("logs")).unwrap();
        let dir = procs::absolute(&dir).unwrap();
        // Two stand-in components whose command lines name the state directory, as real ones
        // do; only the first made it into state.json before a crash.
        let spawn = |name: &str| {
            procs::spawn_detached(
                Path::new("sh"),
                &[
                    "-c".into(),
                    "trap 'kill $!; exit 0' TERM; sleep 60 & wait".into(),
                    format!("{}/{name}", dir.display()),
                ],
                &[],
                &dir.join("logs").join(format!("{name}.log")),
            )
            .unwrap()
        };
        let recorded = spawn("recorded");
        let stray = spawn("stray");
        let state = State {
            handle: None,
            processes: vec![ProcessRecord {
                name: "recorded".into(),
                pid: recorded,
                log: dir.join("logs/recorded.log"),
            }],
        };
        write_state(&dir, &state).unwrap();
        let marker = marker(&dir);
        assert!(procs::is_ours(recorded, &marker) && procs::is_ours(stray, &marker));

        // A half-started cluster is reported as such, not handed out.
        let err = ClusterHandle::load(&dir).unwrap_err().to_string();
        assert!(err.contains("did not finish starting"), "{err}");

        down(&dir).unwrap();
        assert!(!procs::is_ours(recorded, &marker));
        assert!(!procs::is_ours(stray, &marker));
        assert!(!dir.exists());
    }

    #[test]
    fn a_missing_state_dir_is_a_clear_error() {
        let err = ClusterHandle::load(Path::new("/nonexistent/gpu-mcp-state"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cargo xtask cluster up"), "{err}");
    }
}
