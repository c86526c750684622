//! Starting the components of a fresh cluster, in order, each waited on until it works.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::handle::{ClusterHandle, UserAuth, kubeconfig_yaml};
use super::state::{ProcessRecord, State, marker, write_state};
use super::up::{UpOptions, agent_path};
use super::{gobuild, kwok, pki, procs, realnode};
use crate::util::{fs as files, http, net};

/// The ServiceCIDR; nothing routes it (there is no kube-proxy), but a loopback range keeps every
/// address the cluster hands out on this machine.
const SERVICE_CIDR: &str = "127.1.0.0/16";
/// Pod IPs for pods on nodes kwok manages without a `spec.podCIDR`.
const FALLBACK_POD_CIDR: &str = "127.0.255.0/24";

/// Everything `start` needs to know about one component.
pub(super) struct Component<'a> {
    pub(super) name: &'static str,
    pub(super) binary: PathBuf,
    pub(super) args: Vec<String>,
    pub(super) envs: Vec<(String, String)>,
    pub(super) state_dir: &'a Path,
}

impl Component<'_> {
    fn log(&self) -> PathBuf {
        self.state_dir
            .join("logs")
            .join(format!("{}.log", self.name))
    }

    pub(super) fn spawn(self, state: &mut State) -> anyhow::Result<ProcessRecord> {
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
        files::quote_lines(&files::tail(&record.log, 20))
    )
    .context(format!(
        "starting the local cluster in {}",
        state_dir.display()
    ))
}

/// Polls `check` every 250 ms until it returns `Ok(true)`, failing when `record` dies or
/// `timeout` passes.
pub(super) fn wait_for(
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
                files::quote_lines(&files::tail(&record.log, 20))
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub(super) fn bin(bins: &[(gobuild::GoModule, PathBuf)], name: &str) -> anyhow::Result<PathBuf> {
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

/// Starts etcd, kube-apiserver, the controller manager, the scheduler and kwok in `state_dir`,
/// registers the nodes and waits until each works; records every process as it starts.
pub(super) fn start(
    opts: &UpOptions,
    state_dir: &Path,
    bins: &[(gobuild::GoModule, PathBuf)],
    stages: &str,
    real_node: Option<&realnode::HostTools>,
) -> anyhow::Result<ClusterHandle> {
    let started = Instant::now();
    let mut state = State::default();
    write_state(state_dir, &state)?;

    // Binaries, plus the agent, in one directory that also goes first on kwok's PATH.
    let bin_dir = state_dir.join("bin");
    fs::create_dir_all(&bin_dir)?;
    for (module, dir) in bins {
        for tool in module.tools {
            files::symlink(&dir.join(tool.binary), &bin_dir.join(tool.binary))?;
        }
    }
    // A dangling link is fine: it starts to resolve once the agent is built.
    files::symlink(&agent_path(opts)?, &bin_dir.join("gpu-mcp-agent"))?;

    let pki = pki::generate(
        &state_dir.join("pki"),
        &[
            pki::ADMIN,
            pki::CONTROLLER_MANAGER,
            pki::SCHEDULER,
            pki::KWOK,
            pki::APISERVER_KUBELET_CLIENT,
            pki::REAL_NODE,
        ],
    )?;

    let ports = net::free_ports(4)?;
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
        nodes: (0..opts.nodes).map(kwok::node_name).collect(),
        real_node: None,
    };
    let p = |path: &Path| path.display().to_string();

    let kubelet_client = pki.client(&pki::APISERVER_KUBELET_CLIENT);

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
            http::get(
                SocketAddr::from((Ipv4Addr::LOCALHOST, etcd_port)),
                "/health",
                Duration::from_secs(5),
            )
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
            // Who the API server is when it calls a kubelet (the real node's checks it).
            format!("--kubelet-client-certificate={}", p(&kubelet_client.0)),
            format!("--kubelet-client-key={}", p(&kubelet_client.1)),
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
    files::write(&exec_crd, kwok::exec_crd()?)?;
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
    files::write(&kwok_config, kwok::config_yaml(stages, &exec_dir))?;
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
        serde_json::to_vec_pretty(&kwok::nodes_manifest(opts.nodes))?,
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
                .is_some_and(|list| kwok::all_nodes_ready(&list, &handle.nodes))
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
    let mut handle = handle;
    if let Some(tools) = real_node {
        let node = realnode::start(
            &realnode::Join {
                state_dir,
                bins,
                pki: &pki,
                kubeconfig: kubeconfig(&pki::REAL_NODE)?,
                handle: &handle,
                tools,
            },
            &mut state,
        )?;
        handle.real_node = Some(node);
    }
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
