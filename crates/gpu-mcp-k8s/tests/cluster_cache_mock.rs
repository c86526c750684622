//! The cluster cache against a mocked API server (`tower_test::mock::pair` behind
//! `kube::Client::new`): cluster-wide lists and watches of nodes and pods, pods without GPUs not
//! kept, changes and deletions applied, and an honest unsynced state when the RBAC is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::pin::Pin;
use std::time::Duration;

use gpu_mcp_k8s::{ClusterCache, GPU_RESOURCE, PodFilter};
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use support::{eventually, status_json, watch_body};
use tower_test::mock::{self, Handle, SendResponse};

type ApiHandle = Pin<Box<Handle<Request<Body>, Response<Body>>>>;

fn mocked() -> (ClusterCache, ApiHandle) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    (ClusterCache::start(client).unwrap(), Box::pin(handle))
}

async fn next(handle: &mut ApiHandle) -> (String, bool, String, SendResponse<Response<Body>>) {
    let (req, send) = tokio::time::timeout(Duration::from_secs(20), handle.next_request())
        .await
        .expect("no API request within 20 s")
        .expect("client gone");
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let watch = query.split('&').any(|kv| kv == "watch=true");
    (path, watch, query, send)
}

fn ok(body: Vec<u8>) -> Response<Body> {
    Response::new(Body::from(body))
}

fn list(kind: &str, items: Vec<Value>, rv: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({"apiVersion": "v1", "kind": kind,
        "metadata": {"resourceVersion": rv.to_string()}, "items": items}))
    .unwrap()
}

fn node(name: &str, unschedulable: bool, rv: u64) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "resourceVersion": rv.to_string(),
            "labels": {"nvidia.com/gpu.product": "NVIDIA-H100", "kubernetes.io/os": "linux"},
            "managedFields": [{"manager": "kubelet", "operation": "Update"}]},
        "spec": {"unschedulable": unschedulable,
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
        "status": {"capacity": {"nvidia.com/gpu": "8", "cpu": "96"},
            "allocatable": {"nvidia.com/gpu": "8"},
            "conditions": [{"type": "Ready", "status": "True"}]}})
}

fn pod(ns: &str, name: &str, gpus: Option<&str>, rv: u64) -> Value {
    let resources = match gpus {
        Some(n) => json!({"limits": {"nvidia.com/gpu": n}}),
        None => json!({"requests": {"cpu": "100m"}}),
    };
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": rv.to_string()},
        "spec": {"nodeName": "gpu-1", "containers": [{"name": "worker", "resources": resources}]},
        "status": {"phase": "Running"}})
}

#[tokio::test]
async fn lists_then_watches_nodes_and_gpu_pods_cluster_wide() {
    let (cache, mut api) = mocked();
    assert!(!cache.nodes_state().synced && !cache.pods_state().synced);
    // The two initial lists, in either order, cluster-wide and unfiltered.
    for _ in 0..2 {
        let (path, watch, query, send) = next(&mut api).await;
        assert!(!watch, "{path}?{query}");
        assert!(!query.contains("labelSelector"), "{query}");
        match path.as_str() {
            "/api/v1/nodes" => {
                send.send_response(ok(list("NodeList", vec![node("gpu-1", false, 5)], 10)))
            }
            "/api/v1/pods" => send.send_response(ok(list(
                "PodList",
                vec![
                    pod("ml-training", "train-0", Some("2"), 6),
                    pod("web", "frontend", None, 7),
                ],
                20,
            ))),
            other => panic!("unexpected list {other}"),
        }
    }
    cache
        .wait_until_synced(Duration::from_secs(10))
        .await
        .unwrap();
    let facts = cache.node("gpu-1").unwrap();
    assert_eq!(facts.capacity[GPU_RESOURCE], 8);
    assert_eq!(
        facts.gpu_labels.len(),
        1,
        "only nvidia.com/* labels are kept"
    );
    assert_eq!(facts.taints[0].key, "nvidia.com/gpu");
    assert_eq!(
        cache.pods_state().len,
        1,
        "the pod without GPUs is not kept"
    );
    assert_eq!(cache.pod("ml-training", "train-0").unwrap().whole_gpus(), 2);
    assert!(cache.pod("web", "frontend").is_none());

    // The watches: the node is cordoned, a GPU pod arrives, the first one is deleted, and a
    // pod without GPUs comes and goes unseen.
    for _ in 0..2 {
        let (path, watch, query, send) = next(&mut api).await;
        assert!(watch, "{path}?{query}");
        match path.as_str() {
            "/api/v1/nodes" => {
                assert!(query.contains("resourceVersion=10"), "{query}");
                send.send_response(ok(watch_body(&[("MODIFIED", node("gpu-1", true, 11))])));
            }
            "/api/v1/pods" => {
                assert!(query.contains("resourceVersion=20"), "{query}");
                send.send_response(ok(watch_body(&[
                    ("ADDED", pod("ml-training", "train-1", Some("1"), 21)),
                    ("ADDED", pod("web", "backend", None, 22)),
                    ("DELETED", pod("ml-training", "train-0", Some("2"), 23)),
                ])));
            }
            other => panic!("unexpected watch {other}"),
        }
    }
    eventually("the cordon is seen", || {
        cache.node("gpu-1").is_some_and(|n| n.unschedulable)
    })
    .await;
    eventually("the pod changes are applied", || {
        cache.pod("ml-training", "train-0").is_none()
            && cache.pod("ml-training", "train-1").is_some()
    })
    .await;
    let page = cache.pod_page(&PodFilter::default(), None, 10);
    assert_eq!(page.total, 1);
    assert_eq!(cache.pods_on("gpu-1").len(), 1);
}

#[tokio::test]
async fn without_the_rbac_the_cache_says_it_is_not_synced_and_why() {
    let (cache, mut api) = mocked();
    for _ in 0..2 {
        let (path, _, _, send) = next(&mut api).await;
        let message = format!("{path} is forbidden: User cannot list resource");
        send.send_response(
            Response::builder()
                .status(403)
                .body(Body::from(
                    serde_json::to_vec(&status_json(403, "Forbidden", &message)).unwrap(),
                ))
                .unwrap(),
        );
    }
    eventually("both watch errors are recorded", || {
        cache.nodes_state().last_error.is_some() && cache.pods_state().last_error.is_some()
    })
    .await;
    let state = cache.pods_state();
    assert!(!state.synced);
    assert!(
        state.last_error.unwrap().contains("forbidden"),
        "the error names the refusal"
    );
    assert!(cache.node("gpu-1").is_none());
}
