#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `get_gpu_processes` through the catalog: the mock fleet's own pods, MIG devices, limits and
//! filters; and on a backend that is not the mock, attribution from a real gRPC pod-resources
//! server on a unix socket and a host-like `/proc` tree, each source failing alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use gpu_mcp_attribution::proto::pod_resources_lister_server::{
    PodResourcesLister, PodResourcesListerServer,
};
use gpu_mcp_attribution::proto::{
    AllocatableResourcesRequest, AllocatableResourcesResponse, ContainerDevices,
    ContainerResources, GetPodResourcesRequest, GetPodResourcesResponse, ListPodResourcesRequest,
    ListPodResourcesResponse, PodResources,
};
use gpu_mcp_backend::{GpuBackend, MOCK_UPTIME, MockBackend, MockConfig, Scenario};
use gpu_mcp_model::{
    BackendKind, EventRecorderStatus, NodeSnapshot, XidEvent, gpu_tool_definitions,
};
use gpu_mcp_protocol::{CallToolResult, Content, JsonObject};
use gpu_mcp_service::{CallContext, ToolCatalog};
use gpu_mcp_tools::{AgentCatalog, AgentCatalogConfig};
use serde_json::{Value, json};

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn mock(scenario: Scenario) -> MockBackend {
    MockBackend::new(MockConfig {
        node_name: "gpu-node-1".into(),
        gpus: 8,
        scenario,
        now: Some(now()),
        ..MockConfig::default()
    })
    .unwrap()
}

fn config() -> AgentCatalogConfig {
    AgentCatalogConfig {
        node_name: "gpu-node-1".into(),
        boot_time: Some(now() - MOCK_UPTIME),
        now: Some(now()),
        ..AgentCatalogConfig::default()
    }
}

fn catalog(scenario: Scenario) -> AgentCatalog {
    AgentCatalog::new(Arc::new(mock(scenario)), config())
}

async fn call(c: &AgentCatalog, name: &str, args: Value) -> CallToolResult {
    let args: Option<JsonObject> = match args {
        Value::Object(o) => Some(o),
        _ => None,
    };
    c.call(name, args, CallContext::default()).await.unwrap()
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| match c {
            Content::Text { text } => Some(text.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ok(r: &CallToolResult) -> Value {
    assert_ne!(r.is_error, Some(true), "tool failed: {}", text(r));
    let v = r.structured_value().unwrap().into_owned();
    let def = gpu_tool_definitions()
        .into_iter()
        .find(|t| t.name == "get_gpu_processes")
        .unwrap();
    let schema = Value::Object(def.output_schema.unwrap());
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "schema: {errors:#?}");
    v
}

async fn processes(c: &AgentCatalog, args: Value) -> (Value, String) {
    let r = call(c, "get_gpu_processes", args).await;
    (ok(&r), text(&r))
}

fn state(v: &Value, source: &str) -> String {
    v["attribution"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == source)
        .map(|s| s["state"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_mock_fleet_names_its_own_pods_and_says_so() {
    let c = catalog(Scenario::UncorrectableEcc);
    let (v, words) = processes(&c, json!({})).await;
    assert_eq!(v["process_count"], 8);
    assert_eq!(v["processes_omitted"], 0);
    assert_eq!(v["pods_by_namespace"]["ml-training"], 8);
    assert_eq!(state(&v, "mock_fleet"), "ok");
    assert_eq!(state(&v, "pod_resources"), "not_configured");
    for (i, g) in v["gpus"].as_array().unwrap().iter().enumerate() {
        let p = &g["processes"][0];
        assert_eq!(p["name"], "python3");
        assert_eq!(p["kind"], "compute");
        assert_eq!(
            p["owner"]["pod"],
            json!({"namespace": "ml-training", "pod": format!("gpu-node-1-job-{i}"), "container": "worker"})
        );
        assert_eq!(
            p["owner"]["sources"],
            json!(["mock_fleet"]),
            "never the kubelet"
        );
    }
    let allocations = v["allocations"].as_array().unwrap();
    assert_eq!(allocations.len(), 8);
    let sick = allocations.iter().find(|a| a["gpu_index"] == 0).unwrap();
    assert_eq!(sick["verdict"], "critical");
    assert_eq!(sick["device_uuid"], v["gpus"][0]["uuid"]);
    assert_eq!(sick["holders"][0]["pod"], "gpu-node-1-job-0");
    assert!(
        allocations
            .iter()
            .filter(|a| a["gpu_index"] != 0)
            .all(|a| a["verdict"] == "healthy")
    );
    // Words, not JSON.
    assert!(
        words.starts_with(v["headline"].as_str().unwrap()),
        "{words}"
    );
    assert!(
        words.contains("ml-training/gpu-node-1-job-3/worker"),
        "{words}"
    );
    assert!(!words.contains('{'), "{words}");
    assert!(
        v["headline"]
            .as_str()
            .unwrap()
            .contains("8 processes on 8 GPUs"),
        "{}",
        v["headline"]
    );
}

#[tokio::test]
async fn limit_keeps_the_biggest_and_counts_everything() {
    let c = catalog(Scenario::Healthy);
    let (all, _) = processes(&c, json!({})).await;
    let mut sizes: Vec<u64> = all["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["processes"][0]["used_memory_bytes"].as_u64().unwrap())
        .collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let (v, _) = processes(&c, json!({"limit": 3})).await;
    assert_eq!(v["process_count"], 8);
    assert_eq!(v["processes_omitted"], 5);
    let mut listed: Vec<u64> = v["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["processes"].as_array().unwrap().clone())
        .map(|p| p["used_memory_bytes"].as_u64().unwrap())
        .collect();
    listed.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(listed, sizes[..3]);
    assert_eq!(
        v["gpus"].as_array().unwrap().len(),
        8,
        "every GPU asked about is listed"
    );
    assert!(
        v["headline"]
            .as_str()
            .unwrap()
            .contains("5 processes left out")
    );
}

#[tokio::test]
async fn filters_by_gpu_namespace_and_pod() {
    let c = catalog(Scenario::Healthy);
    let (v, _) = processes(&c, json!({"pod": "gpu-node-1-job-5"})).await;
    assert_eq!(v["process_count"], 1);
    assert_eq!(v["allocations"].as_array().unwrap().len(), 1);
    assert_eq!(v["allocations"][0]["gpu_index"], 5);
    let (v, _) = processes(&c, json!({"namespace": "kube-system"})).await;
    assert_eq!(v["process_count"], 0);
    assert_eq!(v["allocations"], json!([]));
    let (v, _) = processes(&c, json!({"gpu_index": 2})).await;
    assert_eq!(v["gpus"].as_array().unwrap().len(), 1);
    assert_eq!(v["allocations"].as_array().unwrap().len(), 1);
    let uuid = v["gpus"][0]["uuid"].clone();
    let (v, _) = processes(&c, json!({"gpu_uuid": uuid})).await;
    assert_eq!(v["gpus"][0]["index"], 2);

    for (args, needle) in [
        (json!({"limit": 0}), "`limit`"),
        (json!({"limit": 1001}), "`limit`"),
        (json!({"gpu_index": 9}), "`gpu_index`"),
        (json!({"gpu_uuid": "GPU-nope"}), "`gpu_uuid`"),
        (json!({"pods": "x"}), "pods"),
    ] {
        let r = call(&c, "get_gpu_processes", args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{args}");
        assert!(text(&r).contains(needle), "{args}: {}", text(&r));
    }
}

#[tokio::test]
async fn mig_devices_have_their_processes_and_are_allocated_by_mig_uuid() {
    let c = catalog(Scenario::MigEnabled);
    let (v, words) = processes(&c, json!({"gpu_index": 0})).await;
    let g = &v["gpus"][0];
    assert_eq!(g["processes"].as_array().unwrap().len(), 3);
    let migs = g["mig_devices"].as_array().unwrap();
    assert_eq!(migs.len(), 3);
    for m in migs {
        assert_eq!(m["process_count"], 1, "{m}");
        assert_eq!(m["holders"][0]["pod"], "gpu-node-1-job-0");
        assert!(m["uuid"].as_str().unwrap().starts_with("MIG-"));
    }
    let allocations = v["allocations"].as_array().unwrap();
    assert_eq!(allocations.len(), 3);
    assert!(
        allocations
            .iter()
            .all(|a| a["device_uuid"].as_str().unwrap().starts_with("MIG-")
                && a["gpu_index"] == 0
                && a["verdict"] == "healthy")
    );
    for p in g["processes"].as_array().unwrap() {
        assert!(p["mig_uuid"].as_str().unwrap().starts_with("MIG-"));
        assert_eq!(p["owner"]["pod"]["pod"], "gpu-node-1-job-0");
    }
    assert!(words.contains("GI 1, CI 0"), "{words}");

    // A MIG UUID narrows the answer to that MIG device.
    let mig = migs[1]["uuid"].clone();
    let (v, _) = processes(&c, json!({"gpu_uuid": mig})).await;
    assert_eq!(v["process_count"], 1);
    assert_eq!(v["gpus"][0]["processes"][0]["mig_uuid"], mig);
    assert_eq!(v["allocations"].as_array().unwrap().len(), 1);
    assert_eq!(v["allocations"][0]["device_uuid"], mig);

    // Inventory and health show the MIG devices with their ids, placement, pids and pods.
    let inv = call(
        &c,
        "get_gpu_inventory",
        json!({"gpu_index": 0, "sections": ["mig"]}),
    )
    .await;
    let iv = inv.structured_value().unwrap().into_owned();
    let inst = &iv["gpus"][0]["mig"]["instances"][0];
    assert_eq!(inst["gpu_instance_id"], 1);
    assert_eq!(inst["compute_instance_id"], 0);
    assert_eq!(inst["profile"], "3g.40gb");
    assert_eq!(inst["placement"], json!({"start": 0, "size": 4}));
    assert_eq!(inst["pids"].as_array().unwrap().len(), 1);
    assert_eq!(inst["pods"][0]["pod"], "gpu-node-1-job-0");
    let h = call(&c, "get_gpu_health", json!({"gpu_index": 0})).await;
    let hv = h.structured_value().unwrap().into_owned();
    let hm = hv["gpus"][0]["mig_devices"].as_array().unwrap();
    assert_eq!(hm.len(), 3);
    assert_eq!(hm[2]["profile"], "1g.10gb");
    assert_eq!(hm[2]["holders"][0]["container"], "worker");
}

#[tokio::test]
async fn xid_records_with_a_pid_name_its_pod() {
    let c = catalog(Scenario::ApplicationXid);
    let r = call(&c, "analyze_xid_errors", json!({})).await;
    let v = r.structured_value().unwrap().into_owned();
    let events = v["events"].as_array().unwrap();
    assert!(!events.is_empty());
    for e in events {
        assert!(e["pid"].is_u64());
        assert_eq!(e["pod"]["pod"], "gpu-node-1-job-0", "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// A backend that is not the mock: the agent's real attribution sources.

/// The mock fleet's GPUs without its allocations, as real hardware would be.
struct Hardware(MockBackend);

impl GpuBackend for Hardware {
    fn snapshot(&self) -> BoxFuture<'_, gpu_mcp_backend::Result<NodeSnapshot>> {
        self.0.snapshot()
    }
    fn xid_events(&self) -> Vec<XidEvent> {
        self.0.xid_events()
    }
    fn xid_recorder_status(&self) -> EventRecorderStatus {
        self.0.xid_recorder_status()
    }
    fn kind(&self) -> BackendKind {
        BackendKind::Nvml
    }
}

fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "gpu-mcp-tools-{}-{name}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Kubelet(ListPodResourcesResponse);

#[tonic::async_trait]
impl PodResourcesLister for Kubelet {
    async fn list(
        &self,
        _: tonic::Request<ListPodResourcesRequest>,
    ) -> Result<tonic::Response<ListPodResourcesResponse>, tonic::Status> {
        Ok(tonic::Response::new(self.0.clone()))
    }
    async fn get_allocatable_resources(
        &self,
        _: tonic::Request<AllocatableResourcesRequest>,
    ) -> Result<tonic::Response<AllocatableResourcesResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not served here"))
    }
    async fn get(
        &self,
        _: tonic::Request<GetPodResourcesRequest>,
    ) -> Result<tonic::Response<GetPodResourcesResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not served here"))
    }
}

fn serve(socket: &Path, answer: ListPodResourcesResponse) {
    let listener = tokio::net::UnixListener::bind(socket).unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(PodResourcesListerServer::new(Kubelet(answer)))
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );
}

const UID: &str = "1b6b5a0e-3f4d-4c2a-9c1e-0123456789ab";
const CID: &str = "4e3f0d8a9b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e";

/// GPUs 0 and 1 of the mock fleet allocated to two pods; the rest to none.
async fn kubelet_answer(backend: &MockBackend) -> ListPodResourcesResponse {
    let snap = backend.snapshot().await.unwrap();
    let uuid = |i: usize| snap.gpus[i].uuid.value().unwrap().clone();
    let pod = |ns: &str, name: &str, id: String| PodResources {
        name: name.into(),
        namespace: ns.into(),
        containers: vec![ContainerResources {
            name: "trainer".into(),
            devices: vec![ContainerDevices {
                resource_name: "nvidia.com/gpu".into(),
                device_ids: vec![id],
                topology: None,
            }],
            ..Default::default()
        }],
    };
    ListPodResourcesResponse {
        pod_resources: vec![
            pod("ml", "train-0", uuid(0)),
            pod("research", "nb-1", uuid(1)),
        ],
    }
}

/// A host `/proc` with every GPU process of the fleet: GPU 0's in a pod, the others host
/// processes.
async fn host_proc(backend: &MockBackend, dir: &Path) -> PathBuf {
    let root = dir.join("proc");
    let snap = backend.snapshot().await.unwrap();
    for g in &snap.gpus {
        for p in g.processes.value().unwrap() {
            let d = root.join(p.pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            let (comm, cgroup) = if g.index == 0 {
                (
                    "torchrun\n".to_owned(),
                    format!("0::/kubepods/burstable/pod{UID}/{CID}\n"),
                )
            } else {
                (
                    "Xorg\n".to_owned(),
                    "0::/system.slice/display.service\n".to_owned(),
                )
            };
            std::fs::write(d.join("comm"), comm).unwrap();
            std::fs::write(d.join("cgroup"), cgroup).unwrap();
        }
    }
    root
}

fn hardware_catalog(
    backend: MockBackend,
    socket: Option<PathBuf>,
    proc: Option<PathBuf>,
) -> AgentCatalog {
    AgentCatalog::new(
        Arc::new(Hardware(backend)),
        AgentCatalogConfig {
            pod_resources_socket: socket,
            host_proc: proc,
            ..config()
        },
    )
}

#[tokio::test]
async fn the_kubelet_and_the_host_proc_attribute_real_processes() {
    let dir = scratch("both");
    let backend = mock(Scenario::Healthy);
    let socket = dir.join("kubelet.sock");
    serve(&socket, kubelet_answer(&backend).await);
    let proc = host_proc(&backend, &dir).await;
    let c = hardware_catalog(backend, Some(socket), Some(proc));
    let (v, words) = processes(&c, json!({})).await;
    assert_eq!(state(&v, "pod_resources"), "ok");
    assert_eq!(state(&v, "cgroup"), "ok");
    assert!(
        v["attribution"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["source"] != "mock_fleet")
    );
    let g0 = &v["gpus"][0]["processes"][0];
    assert_eq!(g0["name"], "torchrun");
    assert_eq!(
        g0["owner"]["pod"],
        json!({"namespace": "ml", "pod": "train-0", "container": "trainer"})
    );
    assert_eq!(g0["owner"]["pod_uid"], UID);
    assert_eq!(g0["owner"]["container_id"], CID);
    assert_eq!(g0["owner"]["sources"], json!(["pod_resources", "cgroup"]));
    // GPU 1 is allocated, but its process is a host process: nobody's pod.
    let g1 = &v["gpus"][1]["processes"][0];
    assert_eq!(g1["name"], "Xorg");
    assert!(g1["owner"].get("pod").is_none(), "{g1}");
    assert_eq!(v["pods_by_namespace"], json!({"ml": 1}));
    let allocations = v["allocations"].as_array().unwrap();
    assert_eq!(allocations.len(), 2);
    assert_eq!(allocations[0]["holders"][0]["namespace"], "ml");
    assert_eq!(
        allocations
            .iter()
            .map(|a| a["gpu_index"].as_u64().unwrap())
            .collect::<Vec<_>>()
            .len(),
        2
    );
    assert!(words.contains("torchrun"), "{words}");
    assert!(words.contains("sources: pod_resources, cgroup"), "{words}");

    // The pod filter works from the kubelet's names too.
    let (v, _) = processes(&c, json!({"pod": "nb-1"})).await;
    assert_eq!(
        v["process_count"], 0,
        "the host process on nb-1's GPU is not nb-1's"
    );
    assert_eq!(v["allocations"].as_array().unwrap().len(), 1);
    assert_eq!(v["allocations"][0]["gpu_index"], 1);
}

#[tokio::test]
async fn a_missing_socket_is_not_configured_and_a_foreign_proc_is_unavailable() {
    let dir = scratch("missing");
    let backend = mock(Scenario::Healthy);
    // `/proc` of a pid namespace that does not hold the GPU processes.
    let empty_proc = dir.join("proc");
    std::fs::create_dir_all(&empty_proc).unwrap();
    let c = hardware_catalog(backend, Some(dir.join("absent.sock")), Some(empty_proc));
    let (v, words) = processes(&c, json!({})).await;
    assert_eq!(state(&v, "pod_resources"), "not_configured");
    assert_eq!(state(&v, "cgroup"), "unavailable");
    let detail = v["attribution"].to_string();
    assert!(detail.contains("absent.sock"), "{detail}");
    assert!(detail.contains("host's /proc"), "{detail}");
    assert_eq!(v["process_count"], 8, "processes are listed without owners");
    assert_eq!(v["allocations"], json!([]));
    assert!(
        v["headline"]
            .as_str()
            .unwrap()
            .contains("no attribution source answered")
    );
    assert!(words.contains("owner unknown"), "{words}");

    // Nothing configured at all.
    let c = hardware_catalog(mock(Scenario::Healthy), None, None);
    let (v, _) = processes(&c, json!({})).await;
    assert_eq!(state(&v, "pod_resources"), "not_configured");
    assert_eq!(state(&v, "cgroup"), "not_configured");
}

#[tokio::test]
async fn a_socket_that_is_not_a_kubelet_is_unavailable_with_the_reason() {
    let dir = scratch("notkubelet");
    let socket = dir.join("kubelet.sock");
    // A unix socket that accepts and closes: not a gRPC server.
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    let c = AgentCatalog::new(
        Arc::new(Hardware(mock(Scenario::Healthy))),
        AgentCatalogConfig {
            pod_resources_socket: Some(socket),
            attribution_timeout: Duration::from_millis(500),
            ..config()
        },
    );
    let (v, _) = processes(&c, json!({})).await;
    assert_eq!(state(&v, "pod_resources"), "unavailable");
    assert!(
        v["headline"]
            .as_str()
            .unwrap()
            .contains("pod-resources API unavailable"),
        "{}",
        v["headline"]
    );
}

#[tokio::test]
async fn an_xid_names_a_pod_only_while_its_process_still_runs_there() {
    let dir = scratch("xid");
    let backend = mock(Scenario::ApplicationXid);
    let socket = dir.join("kubelet.sock");
    serve(&socket, kubelet_answer(&backend).await);
    let proc = dir.join("proc");
    // 31337 still runs in a pod; 31544 is gone (the GPU may have a new holder since).
    let d = proc.join("31337");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("comm"), "python3\n").unwrap();
    std::fs::write(
        d.join("cgroup"),
        format!("0::/kubepods/burstable/pod{UID}/{CID}\n"),
    )
    .unwrap();
    let c = hardware_catalog(backend, Some(socket), Some(proc));
    let r = call(&c, "analyze_xid_errors", json!({})).await;
    let v = r.structured_value().unwrap().into_owned();
    let events = v["events"].as_array().unwrap();
    let by_pid = |pid: u64| {
        events
            .iter()
            .filter(|e| e["pid"] == pid)
            .map(|e| e["pod"].clone())
            .collect::<Vec<_>>()
    };
    assert!(!by_pid(31337).is_empty());
    assert!(by_pid(31337).iter().all(|p| p["pod"] == "train-0"), "{v}");
    assert!(!by_pid(31544).is_empty());
    assert!(
        by_pid(31544).iter().all(Value::is_null),
        "never a guess: {v}"
    );
}
