//! The real node's files: where everything lives under `<state>/real-node/`, and the
//! configuration of containerd, the CNI network and the kubelet.

use std::path::{Path, PathBuf};

use super::super::handle::quoted;
use crate::util::cache::fnv1a;

/// The image every pod sandbox runs (built and imported by the test bed, never pulled).
pub(crate) const PAUSE_IMAGE: &str = "localhost/gpu-mcp-pause:v1";
/// Pod IPs of real nodes: one /24 per cluster out of 198.18.0.0/15, the range reserved for
/// network tests (RFC 2544), on veth pairs into the pods' network namespaces, routed on this
/// machine only.
const POD_RANGE: [u8; 2] = [198, 18];

/// The first /24 of the pod range that no route of this machine uses yet (`/proc/net/route`'s
/// text), so clusters started side by side never share pod addresses.
pub(crate) fn free_pod_subnet(routes: &str) -> Option<String> {
    let used: Vec<[u8; 3]> = routes
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1))
        .filter_map(|hex| u32::from_str_radix(hex, 16).ok())
        .map(|dest| {
            let [a, b, c, _] = dest.to_le_bytes();
            [a, b, c]
        })
        .collect();
    (0..512u16)
        .map(|i| {
            let [hi, lo] = i.to_be_bytes();
            [POD_RANGE[0], POD_RANGE[1] + hi, lo]
        })
        .find(|net| !used.contains(net))
        .map(|[a, b, c]| format!("{a}.{b}.{c}.0/24"))
}

/// Where the real node keeps its files.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// `<state>/real-node`.
    pub(crate) root: PathBuf,
}

impl Layout {
    /// The layout inside a cluster's state directory.
    pub(crate) fn new(state_dir: &Path) -> Self {
        Self {
            root: state_dir.join("real-node"),
        }
    }
    pub(crate) fn containerd_config(&self) -> PathBuf {
        self.root.join("containerd").join("config.toml")
    }
    pub(crate) fn containerd_socket(&self) -> PathBuf {
        self.root.join("containerd").join("containerd.sock")
    }
    /// runc's state of every container (the shim adds the containerd namespace).
    pub(crate) fn runc_root(&self) -> PathBuf {
        self.root.join("runc")
    }
    pub(crate) fn cni_bin(&self) -> PathBuf {
        self.root.join("cni").join("bin")
    }
    pub(crate) fn cni_conf(&self) -> PathBuf {
        self.root.join("cni").join("net.d")
    }
    pub(crate) fn kubelet_config(&self) -> PathBuf {
        self.root.join("kubelet").join("config.yaml")
    }
    pub(crate) fn kubelet_root(&self) -> PathBuf {
        self.root.join("kubelet").join("root")
    }
    pub(crate) fn pod_logs(&self) -> PathBuf {
        self.root.join("kubelet").join("pod-logs")
    }
    pub(crate) fn images(&self) -> PathBuf {
        self.root.join("images")
    }
    /// The kubelet's cgroup root: one directory per cgroup hierarchy, named after the state
    /// directory so two clusters never share one.
    pub(crate) fn cgroup_root(&self) -> String {
        let hash = fnv1a(&[self.root.as_os_str().as_encoded_bytes()]);
        format!("/gpu-mcp-node-{:08x}", hash >> 32)
    }
}

/// containerd's configuration: every path (root, state, sockets, runc's state, CNI) inside the
/// layout, the CRI streaming server on 127.0.0.1, runc with cgroupfs, and the local pause image.
pub(crate) fn containerd_toml(layout: &Layout, runc: &Path) -> String {
    let c = layout.root.join("containerd");
    let q = |p: PathBuf| quoted(&p.display().to_string());
    let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
    format!(
        r#"version = 2
root = {root}
state = {state}

[grpc]
  address = {socket}

[ttrpc]
  address = {ttrpc}

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = {opt}

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Without CAP_SYS_RESOURCE no process may lower its OOM score below containerd's own.
  restrict_oom_score_adj = true

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  BinaryName = {runc}
  Root = {runc_root}
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = {cni_bin}
  conf_dir = {cni_conf}
  max_conf_num = 1
"#,
        root = q(c.join("root")),
        state = q(c.join("state")),
        socket = q(layout.containerd_socket()),
        ttrpc = q(c.join("containerd.sock.ttrpc")),
        opt = q(c.join("opt")),
        runc = q(runc.to_path_buf()),
        runc_root = q(layout.runc_root()),
        cni_bin = q(layout.cni_bin()),
        cni_conf = q(layout.cni_conf()),
    )
}

/// The pod network: a veth pair per pod (`ptp`) with an address of `subnet` and a host route
/// to it, no masquerading (pods talk to this machine only).
pub(crate) fn cni_conflist(layout: &Layout, subnet: &str) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "gpu-mcp-real-node",
        "plugins": [{
            "type": "ptp",
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{ "subnet": subnet }]],
                "dataDir": layout.root.join("cni").join("ipam"),
            },
        }],
    })
}

/// What the kubelet's configuration depends on beyond the layout.
#[derive(Debug, Clone)]
pub(crate) struct KubeletSettings {
    /// Port of the kubelet's API (exec, logs) on 127.0.0.1.
    pub(crate) port: u16,
    /// Port of its `/healthz` on 127.0.0.1.
    pub(crate) healthz_port: u16,
    /// Serving certificate and key of the kubelet's API.
    pub(crate) tls_cert: PathBuf,
    pub(crate) tls_key: PathBuf,
    /// CA of the client certificates it accepts (the API server's).
    pub(crate) client_ca: PathBuf,
}

/// The kubelet's `KubeletConfiguration`: serving on 127.0.0.1 only, client certificates and
/// webhook authorisation (the API server decides who may exec), cgroupfs under the layout's
/// cgroup root, every directory inside the layout, the node tainted like GPU nodes, and
/// eviction and image garbage collection thresholds a shared CI disk does not trip.
pub(crate) fn kubelet_yaml(layout: &Layout, settings: &KubeletSettings) -> String {
    let q = |p: &Path| quoted(&p.display().to_string());
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: {port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz}
tlsCertFile: {cert}
tlsPrivateKeyFile: {key}
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {ca}
authorization:
  mode: Webhook
containerRuntimeEndpoint: {endpoint}
cgroupDriver: cgroupfs
cgroupRoot: {cgroup_root}
# Debian 12 hosts and many CI machines still mount cgroup v1.
failCgroupV1: false
failSwapOn: false
podLogsDir: {pod_logs}
volumePluginDir: {plugins}
clusterDNS: []
registerWithTaints:
- key: nvidia.com/gpu
  value: present
  effect: NoSchedule
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
"#,
        port = settings.port,
        healthz = settings.healthz_port,
        cert = q(&settings.tls_cert),
        key = q(&settings.tls_key),
        ca = q(&settings.client_ca),
        endpoint = quoted(&format!("unix://{}", layout.containerd_socket().display())),
        cgroup_root = quoted(&layout.cgroup_root()),
        pod_logs = q(&layout.pod_logs()),
        plugins = q(&layout.root.join("kubelet").join("volume-plugins")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout::new(Path::new("/s/t"))
    }

    #[test]
    fn containerd_keeps_every_path_and_socket_inside_the_state_directory() {
        let toml = containerd_toml(&layout(), Path::new("/usr/sbin/runc"));
        for line in toml.lines().filter(|l| l.contains('/')) {
            let value = line.split_once('=').map_or(line, |(_, v)| v).trim();
            assert!(
                value.starts_with("\"/s/t/real-node/")
                    || value == "\"/usr/sbin/runc\""
                    || value == format!("\"{PAUSE_IMAGE}\"")
                    || line.trim_start().starts_with('#'),
                "{line}"
            );
        }
        assert!(toml.contains("address = \"/s/t/real-node/containerd/containerd.sock\""));
        assert!(toml.contains("stream_server_address = \"127.0.0.1\""));
        assert!(toml.contains(&format!("sandbox_image = \"{PAUSE_IMAGE}\"")));
    }

    #[test]
    fn the_kubelet_serves_on_loopback_with_authentication_and_its_own_directories() {
        let settings = KubeletSettings {
            port: 10250,
            healthz_port: 10248,
            tls_cert: "/s/t/pki/serving.crt".into(),
            tls_key: "/s/t/pki/serving.key".into(),
            client_ca: "/s/t/pki/ca.crt".into(),
        };
        let yaml = kubelet_yaml(&layout(), &settings);
        assert!(yaml.contains("address: 127.0.0.1\n"));
        assert!(yaml.contains("healthzBindAddress: 127.0.0.1\n"));
        assert!(yaml.contains("readOnlyPort: 0\n"));
        assert!(yaml.contains("anonymous:\n    enabled: false"));
        assert!(yaml.contains("mode: Webhook"));
        assert!(yaml.contains("\"unix:///s/t/real-node/containerd/containerd.sock\""));
        assert!(yaml.contains(&format!("cgroupRoot: \"{}\"", layout().cgroup_root())));
        assert!(layout().cgroup_root().starts_with("/gpu-mcp-node-"));
        assert_ne!(
            layout().cgroup_root(),
            Layout::new(Path::new("/other")).cgroup_root()
        );
    }

    #[test]
    fn each_cluster_gets_a_pod_subnet_no_route_uses() {
        let header = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n";
        assert_eq!(free_pod_subnet(header).as_deref(), Some("198.18.0.0/24"));
        // 198.18.0.2/32 (a pod of another cluster) and 198.18.1.0/24 are taken.
        let routes = format!(
            "{header}veth1\t020012C6\t00000000\t0005\t0\t0\t0\tFFFFFFFF\n\
             eth0\t000112C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"
        );
        assert_eq!(free_pod_subnet(&routes).as_deref(), Some("198.18.2.0/24"));
        let full: String = (0..=255u32)
            .map(|c| format!("x\t{:08X}\t0\n", u32::from_le_bytes([198, 18, c as u8, 0])))
            .collect();
        assert_eq!(
            free_pod_subnet(&format!("{header}{full}")).as_deref(),
            Some("198.19.0.0/24")
        );
    }

    #[test]
    fn the_pod_network_stays_on_this_machine() {
        let conf = cni_conflist(&layout(), "198.18.7.0/24");
        assert_eq!(
            conf["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "198.18.7.0/24"
        );
        assert_eq!(conf["plugins"][0]["type"], "ptp");
        assert_eq!(conf["plugins"][0]["ipMasq"], false);
        assert_eq!(
            conf["plugins"][0]["ipam"]["dataDir"],
            "/s/t/real-node/cni/ipam"
        );
    }
}
