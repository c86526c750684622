#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The client against a real gRPC server of the pod-resources API on a unix socket, and the
//! cgroup reader against a host-like `/proc` tree; the start-up checks of both sources.

use gpu_mcp_attribution::proto::pod_resources_lister_server::{
    PodResourcesLister, PodResourcesListerServer,
};
use gpu_mcp_attribution::proto::{
    AllocatableResourcesRequest, AllocatableResourcesResponse, ContainerDevices,
    ContainerResources, GetPodResourcesRequest, GetPodResourcesResponse, ListPodResourcesRequest,
    ListPodResourcesResponse, PodResources,
};
use gpu_mcp_attribution::{
    AttributionSource, CgroupLookup, CheckState, DeviceAllocations, Error, GpuProcessRef, PodRef,
    PodResourcesClient, Problem, ProcRoot, attribute,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tonic::{Request, Response, Status};

const GPU0: &str = "GPU-0a0a0a0a-0000-0000-0000-000000000000";
const GPU1: &str = "GPU-1b1b1b1b-1111-1111-1111-111111111111";
const GPU2: &str = "GPU-2c2c2c2c-2222-2222-2222-222222222222";
const UID: &str = "1b6b5a0e-3f4d-4c2a-9c1e-0123456789ab";
const CID: &str = "4e3f0d8a9b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e";

fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "gpu-mcp-attribution-{}-{name}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn container(name: &str, resource: &str, ids: &[&str]) -> ContainerResources {
    ContainerResources {
        name: name.into(),
        devices: vec![ContainerDevices {
            resource_name: resource.into(),
            device_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            topology: None,
        }],
        ..Default::default()
    }
}

/// A kubelet's answer: one training pod with GPU0, two pods time-sharing GPU1, a pod with a
/// non-GPU device, and a pod with no devices.
fn node_pods() -> ListPodResourcesResponse {
    ListPodResourcesResponse {
        pod_resources: vec![
            PodResources {
                name: "train-0".into(),
                namespace: "ml".into(),
                containers: vec![container("trainer", "nvidia.com/gpu", &[GPU0])],
            },
            PodResources {
                name: "notebook-a".into(),
                namespace: "research".into(),
                containers: vec![container(
                    "jupyter",
                    "nvidia.com/gpu.shared",
                    &[&format!("{GPU1}::0")],
                )],
            },
            PodResources {
                name: "notebook-b".into(),
                namespace: "research".into(),
                containers: vec![container(
                    "jupyter",
                    "nvidia.com/gpu.shared",
                    &[&format!("{GPU1}::1")],
                )],
            },
            PodResources {
                name: "nic-user".into(),
                namespace: "net".into(),
                containers: vec![container("app", "example.com/sriov", &["0000:3b:00.1"])],
            },
            PodResources {
                name: "web".into(),
                namespace: "default".into(),
                containers: vec![ContainerResources {
                    name: "nginx".into(),
                    ..Default::default()
                }],
            },
        ],
    }
}

/// A kubelet's pod-resources server: how it answers `List`.
enum Kubelet {
    /// With the pods of [`node_pods`].
    Lists,
    /// Never.
    Stalls,
    /// With an error.
    Fails(&'static str),
}

#[tonic::async_trait]
impl PodResourcesLister for Kubelet {
    async fn list(
        &self,
        _: Request<ListPodResourcesRequest>,
    ) -> Result<Response<ListPodResourcesResponse>, Status> {
        match self {
            Self::Lists => Ok(Response::new(node_pods())),
            Self::Stalls => std::future::pending().await,
            Self::Fails(message) => Err(Status::internal(*message)),
        }
    }
    async fn get_allocatable_resources(
        &self,
        _: Request<AllocatableResourcesRequest>,
    ) -> Result<Response<AllocatableResourcesResponse>, Status> {
        Err(Status::unimplemented("not served here"))
    }
    async fn get(
        &self,
        _: Request<GetPodResourcesRequest>,
    ) -> Result<Response<GetPodResourcesResponse>, Status> {
        Err(Status::unimplemented("not served here"))
    }
}

fn serve(socket: &Path, kubelet: Kubelet) {
    let listener = tokio::net::UnixListener::bind(socket).unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(PodResourcesListerServer::new(kubelet))
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );
}

fn pod(ns: &str, name: &str, c: &str) -> PodRef {
    PodRef {
        namespace: ns.into(),
        pod: name.into(),
        container: c.into(),
    }
}

#[tokio::test]
async fn lists_gpu_allocations_from_a_grpc_server_on_a_unix_socket() {
    let dir = scratch("list");
    let socket = dir.join("kubelet.sock");
    serve(&socket, Kubelet::Lists);
    let client = PodResourcesClient::new(&socket, Duration::from_secs(10));
    let found = client.gpu_allocations().await.unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found.holders(GPU0), [pod("ml", "train-0", "trainer")]);
    assert_eq!(
        found.holders(GPU1),
        [
            pod("research", "notebook-a", "jupyter"),
            pod("research", "notebook-b", "jupyter")
        ]
    );
    assert!(found.holders(GPU2).is_empty());
    assert!(
        found.holders("0000:3b:00.1").is_empty(),
        "non-GPU devices are not filed"
    );
}

#[tokio::test]
async fn a_missing_socket_is_a_connect_error_naming_the_path() {
    let dir = scratch("missing");
    let socket = dir.join("absent.sock");
    let client = PodResourcesClient::new(&socket, Duration::from_secs(10));
    let err = client.gpu_allocations().await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("absent.sock"), "{err}");
}

#[tokio::test]
async fn a_kubelet_that_never_answers_is_cut_at_the_deadline() {
    let dir = scratch("stall");
    let socket = dir.join("kubelet.sock");
    serve(&socket, Kubelet::Stalls);
    let client = PodResourcesClient::new(&socket, Duration::from_millis(300));
    let err = client.gpu_allocations().await.unwrap_err();
    assert!(matches!(err, Error::Deadline { .. }), "{err:?}");
}

fn write_cgroup(proc_root: &Path, pid: u32, text: &str) {
    let dir = proc_root.join(pid.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cgroup"), text).unwrap();
}

#[tokio::test]
async fn processes_are_attributed_from_both_sources_without_guessing() {
    let dir = scratch("both");
    let socket = dir.join("kubelet.sock");
    serve(&socket, Kubelet::Lists);
    let proc_root = dir.join("proc");
    let uid = UID.replace('-', "_");
    // pid 100: the trainer on GPU0; 200, 201: the notebooks sharing GPU1;
    // 300: a host process (persistenced-like) on GPU0; 400: gone before we looked.
    write_cgroup(
        &proc_root,
        100,
        &format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/cri-containerd-{CID}.scope\n"
        ),
    );
    write_cgroup(
        &proc_root,
        200,
        &format!("0::/kubepods/besteffort/pod{UID}/{CID}\n"),
    );
    write_cgroup(
        &proc_root,
        201,
        &format!("0::/kubepods/besteffort/pod{UID}/{CID}\n"),
    );
    write_cgroup(
        &proc_root,
        300,
        "0::/system.slice/nvidia-persistenced.service\n",
    );

    let allocations = PodResourcesClient::new(&socket, Duration::from_secs(10))
        .gpu_allocations()
        .await
        .unwrap();
    let lookups = ProcRoot::new(&proc_root, Duration::from_secs(10))
        .lookup(&[100, 200, 201, 300, 400])
        .await
        .unwrap();
    assert!(
        matches!(lookups[4], CgroupLookup::Unreadable(_)),
        "{:?}",
        lookups[4]
    );

    let gpu0: &[&str] = &[GPU0, "0"];
    let gpu1: &[&str] = &[GPU1, "1"];
    let processes = [
        GpuProcessRef {
            pid: 100,
            device_ids: gpu0,
        },
        GpuProcessRef {
            pid: 200,
            device_ids: gpu1,
        },
        GpuProcessRef {
            pid: 201,
            device_ids: gpu1,
        },
        GpuProcessRef {
            pid: 300,
            device_ids: gpu0,
        },
        GpuProcessRef {
            pid: 400,
            device_ids: gpu0,
        },
    ];
    let owners = attribute(&processes, Some(&allocations), Some(&lookups));
    let both = [AttributionSource::PodResources, AttributionSource::Cgroup];

    assert_eq!(owners[0].pod, Some(pod("ml", "train-0", "trainer")));
    assert_eq!(owners[0].pod_uid.as_deref(), Some(UID));
    assert_eq!(owners[0].container_id.as_deref(), Some(CID));
    assert_eq!(owners[0].sources, both);

    assert_eq!(
        owners[1].pod, None,
        "a shared GPU names candidates, never a pick"
    );
    assert_eq!(owners[1].candidates.len(), 2);
    assert_eq!(owners[1].pod_uid.as_deref(), Some(UID));

    assert!(
        owners[3].is_unknown(),
        "a host process on an allocated GPU is not the pod's: {:?}",
        owners[3]
    );
    assert_eq!(owners[3].sources, both);

    // Unreadable cgroup: pod-resources still names the only holder of GPU0.
    assert_eq!(owners[4].pod, Some(pod("ml", "train-0", "trainer")));
    assert_eq!(owners[4].pod_uid, None);
}

#[tokio::test]
async fn each_source_alone_still_answers_what_it_knows() {
    let dir = scratch("alone");
    let socket = dir.join("kubelet.sock");
    serve(&socket, Kubelet::Lists);
    let allocations = PodResourcesClient::new(&socket, Duration::from_secs(10))
        .gpu_allocations()
        .await
        .unwrap();
    let by_index: &[&str] = &["GPU-not-advertised", "0"];
    let owners = attribute(
        &[GpuProcessRef {
            pid: 7,
            device_ids: &[GPU0],
        }],
        Some(&allocations),
        None,
    );
    assert_eq!(owners[0].pod, Some(pod("ml", "train-0", "trainer")));
    assert_eq!(owners[0].sources, [AttributionSource::PodResources]);
    let owners = attribute(
        &[GpuProcessRef {
            pid: 7,
            device_ids: by_index,
        }],
        Some(&allocations),
        None,
    );
    assert!(
        owners[0].is_unknown(),
        "index 0 is not allocated under the uuid strategy"
    );

    let proc_root = scratch("alone-proc");
    write_cgroup(
        &proc_root,
        9,
        &format!("4:devices:/kubepods/pod{UID}/{CID}\n"),
    );
    let lookups = ProcRoot::new(&proc_root, Duration::from_secs(10))
        .lookup(&[9])
        .await
        .unwrap();
    let owners = attribute(
        &[GpuProcessRef {
            pid: 9,
            device_ids: &[GPU2],
        }],
        None,
        Some(&lookups),
    );
    assert_eq!(owners[0].pod, None);
    assert_eq!(owners[0].pod_uid.as_deref(), Some(UID));
    assert_eq!(owners[0].sources, [AttributionSource::Cgroup]);
}

#[tokio::test]
async fn inspect_reads_names_and_cgroups_in_one_batch() {
    let proc_root = scratch("inspect");
    write_cgroup(&proc_root, 11, &format!("0::/kubepods/pod{UID}/{CID}\n"));
    std::fs::write(proc_root.join("11").join("comm"), "python3\n").unwrap();
    write_cgroup(&proc_root, 12, "0::/system.slice/x.service\n");
    // A process may name itself anything: control characters are dropped.
    std::fs::write(proc_root.join("12").join("comm"), "bad\u{1b}[2Jname\n").unwrap();
    let found = ProcRoot::new(&proc_root, Duration::from_secs(10))
        .inspect(&[11, 12, 13])
        .await
        .unwrap();
    assert_eq!(found[0].name.as_deref(), Some("python3"));
    assert!(matches!(found[0].cgroup, CgroupLookup::Pod(_)));
    assert_eq!(found[1].name.as_deref(), Some("bad[2Jname"));
    assert_eq!(found[1].cgroup, CgroupLookup::Host);
    assert_eq!(found[2].name, None);
    assert!(matches!(found[2].cgroup, CgroupLookup::Unreadable(_)));
}

#[test]
fn allocations_that_did_not_come_from_a_kubelet_name_their_source() {
    let a = DeviceAllocations::from_holders(
        AttributionSource::MockFleet,
        [
            (GPU0, pod("ml-training", "n-job-0", "worker")),
            (GPU0, pod("ml-training", "n-job-0", "worker")),
        ],
    );
    assert_eq!(a.len(), 1, "one holder filed once");
    let owners = attribute(
        &[GpuProcessRef {
            pid: 1,
            device_ids: &[GPU0],
        }],
        Some(&a),
        None,
    );
    assert_eq!(owners[0].pod, Some(pod("ml-training", "n-job-0", "worker")));
    assert_eq!(owners[0].sources, [AttributionSource::MockFleet]);
    assert_eq!(
        DeviceAllocations::from_list(&node_pods()).source(),
        AttributionSource::PodResources
    );
}

#[tokio::test]
async fn the_check_of_a_kubelet_counts_the_pods_it_lists() {
    let dir = scratch("check-ok");
    let socket = dir.join("kubelet.sock");
    serve(&socket, Kubelet::Lists);
    let check = PodResourcesClient::new(&socket, Duration::from_secs(10))
        .check()
        .await;
    assert_eq!(check.source, AttributionSource::PodResources);
    assert_eq!(check.path, socket);
    assert_eq!(
        check.state,
        CheckState::PodsListed {
            pods: 5,
            gpu_devices: 2
        }
    );
    assert!(check.is_ok());
    assert_eq!((check.reason(), check.entries()), ("ok", Some(5)));
    assert!(check.to_string().contains("5 pod(s)"), "{check}");
}

#[tokio::test]
async fn the_check_says_why_the_socket_cannot_be_used() {
    let dir = scratch("check-bad");
    let deadline = Duration::from_secs(10);
    let check =
        |path: PathBuf| async move { PodResourcesClient::new(path, deadline).check().await };

    // A directory without the socket (a mount of a directory the kubelet does not use).
    let empty = check(dir.join("kubelet.sock")).await;
    assert_eq!(empty.problem(), Some(Problem::Missing), "{empty}");
    assert!(empty.to_string().contains("is there without it"), "{empty}");
    assert_eq!((empty.reason(), empty.entries()), ("missing", None));

    // No directory at all.
    let unmounted = check(dir.join("absent").join("kubelet.sock")).await;
    assert_eq!(unmounted.problem(), Some(Problem::Missing), "{unmounted}");
    assert!(unmounted.to_string().contains("not mounted"), "{unmounted}");

    // A regular file where the socket should be.
    std::fs::write(dir.join("file.sock"), "").unwrap();
    let file = check(dir.join("file.sock")).await;
    assert_eq!(file.problem(), Some(Problem::NotASocket), "{file}");

    // A socket nobody listens on any more.
    drop(std::os::unix::net::UnixListener::bind(dir.join("stale.sock")).unwrap());
    let stale = check(dir.join("stale.sock")).await;
    assert_eq!(stale.problem(), Some(Problem::Refused), "{stale}");

    // A kubelet that answers with an error.
    let broken = dir.join("broken.sock");
    serve(&broken, Kubelet::Fails("pod manager not ready"));
    let refused = check(broken).await;
    assert_eq!(refused.problem(), Some(Problem::KubeletError), "{refused}");
    assert!(
        refused.to_string().contains("pod manager not ready"),
        "{refused}"
    );
}

#[tokio::test]
async fn the_check_of_a_kubelet_that_never_answers_ends_at_the_deadline() {
    let dir = scratch("check-stall");
    let socket = dir.join("kubelet.sock");
    serve(&socket, Kubelet::Stalls);
    let check = PodResourcesClient::new(&socket, Duration::from_millis(300))
        .check()
        .await;
    assert_eq!(check.problem(), Some(Problem::Deadline), "{check}");
}

#[tokio::test]
async fn the_check_of_a_host_proc_lists_processes_and_reads_a_cgroup() {
    let proc_root = scratch("check-proc");
    write_cgroup(&proc_root, 1, "0::/init.scope\n");
    write_cgroup(&proc_root, 4242, &format!("0::/kubepods/pod{UID}/{CID}\n"));
    std::fs::create_dir_all(proc_root.join("self")).unwrap();
    std::fs::write(proc_root.join("uptime"), "1.0 1.0\n").unwrap();
    let check = ProcRoot::new(&proc_root, Duration::from_secs(10))
        .check()
        .await;
    assert_eq!(check.source, AttributionSource::Cgroup);
    assert_eq!(
        check.state,
        CheckState::ProcessesSeen {
            processes: 2,
            cgroup_of: 1
        }
    );
    assert_eq!((check.reason(), check.entries()), ("ok", Some(2)));
}

#[tokio::test]
async fn the_check_says_why_a_proc_tree_cannot_be_used() {
    let dir = scratch("check-proc-bad");
    let check = |path: PathBuf| async move {
        ProcRoot::new(path, Duration::from_secs(10))
            .check()
            .await
            .problem()
    };
    assert_eq!(check(dir.join("absent")).await, Some(Problem::Missing));
    std::fs::write(dir.join("file"), "").unwrap();
    assert_eq!(check(dir.join("file")).await, Some(Problem::NotADirectory));
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert_eq!(check(empty).await, Some(Problem::NoProcesses));

    // Process directories without cgroup files.
    let bare = dir.join("bare");
    std::fs::create_dir_all(bare.join("7")).unwrap();
    std::fs::create_dir_all(bare.join("8")).unwrap();
    assert_eq!(check(bare).await, Some(Problem::CgroupUnreadable));

    // A container's own /proc: process 1 is the container's.
    let container = dir.join("container");
    write_cgroup(
        &container,
        1,
        &format!("0::/kubepods/besteffort/pod{UID}/{CID}\n"),
    );
    let problem = ProcRoot::new(&container, Duration::from_secs(10))
        .check()
        .await;
    assert_eq!(problem.problem(), Some(Problem::NotHostProc), "{problem}");
    assert!(problem.to_string().contains(UID), "{problem}");
}
