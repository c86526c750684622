//! Discovery against a mocked API server (`tower_test::mock::pair` behind `kube::Client::new`):
//! list, watch events, readiness changes, re-IP, deletion, watch errors, 410 Gone and re-list,
//! and the node set generation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use gpu_mcp_k8s::{Discovery, DiscoveryConfig, FleetEvent, FleetEvents, NoEvents, NodeDirectory};
use http::{Request, Response};
use kube::client::Body;
use support::{eventually, pod, pod_list, status_json, watch_body};
use tower_test::mock::{self, Handle, SendResponse};

type ApiHandle = Pin<Box<Handle<Request<Body>, Response<Body>>>>;

fn mocked(config: DiscoveryConfig) -> (Discovery, ApiHandle) {
    mocked_with(config, Arc::new(NoEvents))
}

fn mocked_with(config: DiscoveryConfig, events: Arc<dyn FleetEvents>) -> (Discovery, ApiHandle) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    (
        Discovery::start_with_events(client, config, events).unwrap(),
        Box::pin(handle),
    )
}

/// The watch events discovery reported, as words.
#[derive(Default)]
struct WatchEvents(parking_lot::Mutex<Vec<String>>);

impl FleetEvents for WatchEvents {
    fn observe(&self, event: FleetEvent) {
        let word = match event {
            FleetEvent::WatchLost { error } => format!("lost: {error}"),
            FleetEvent::WatchRestored => "restored".to_owned(),
            other => format!("unexpected {other:?}"),
        };
        self.0.lock().push(word);
    }
}

/// The next API request, with its query string.
async fn next(handle: &mut ApiHandle) -> (String, String, SendResponse<Response<Body>>) {
    let (req, send) = tokio::time::timeout(Duration::from_secs(20), handle.next_request())
        .await
        .expect("no API request within 20 s")
        .expect("client gone");
    assert_eq!(req.method(), http::Method::GET);
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    (path, query, send)
}

fn ok(body: Vec<u8>) -> Response<Body> {
    Response::new(Body::from(body))
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .body(Body::from(
            serde_json::to_vec(&status_json(code, reason, message)).unwrap(),
        ))
        .unwrap()
}

fn is_watch(query: &str) -> bool {
    query.split('&').any(|kv| kv == "watch=true")
}

fn summary(d: &Discovery) -> Vec<String> {
    d.nodes()
        .into_iter()
        .map(|e| {
            format!(
                "{}:{}:{}:{}",
                e.node_name,
                e.pod_name,
                if e.ready { "ready" } else { "unready" },
                e.pod_ip
                    .map(|ip| ip.to_string())
                    .unwrap_or_else(|| "-".into())
            )
        })
        .collect()
}

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-02T00:00:00Z";

#[tokio::test]
async fn list_watch_lifecycle_and_recovery() {
    let (discovery, mut api) = mocked(DiscoveryConfig::default());
    assert!(!discovery.is_synced());

    // Initial LIST in the namespace with the selector.
    let (path, query, send) = next(&mut api).await;
    assert_eq!(path, "/api/v1/namespaces/gpu-diagnostics/pods");
    assert!(!is_watch(&query));
    assert!(
        query.contains("labelSelector=app.kubernetes.io%2Fname%3Dk8s-gpu-mcp-server"),
        "{query}"
    );
    send.send_response(ok(pod_list(
        vec![
            pod("a1", Some("node-a"), true, Some("127.0.1.1"), 10, T0),
            pod("b1", Some("node-b"), false, None, 11, T0),
            pod("u1", None, false, None, 12, T0),
        ],
        100,
    )));
    discovery
        .wait_until_synced(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(discovery.is_synced());
    assert_eq!(
        summary(&discovery),
        ["node-a:a1:ready:127.0.1.1", "node-b:b1:unready:-"]
    );
    assert_eq!(discovery.unscheduled_pods(), ["u1"]);
    assert_eq!(discovery.node("node-b").unwrap().pod_name, "b1");
    assert!(discovery.node("node-c").is_none());

    // WATCH from the list's resourceVersion: readiness change and a second pod on node-a.
    let (_, query, send) = next(&mut api).await;
    assert!(
        is_watch(&query) && query.contains("resourceVersion=100"),
        "{query}"
    );
    send.send_response(ok(watch_body(&[
        (
            "MODIFIED",
            pod("b1", Some("node-b"), true, Some("127.0.1.2"), 101, T0),
        ),
        (
            "ADDED",
            pod("a2", Some("node-a"), false, Some("127.0.1.3"), 102, T1),
        ),
    ])));
    eventually("b1 ready", || {
        summary(&discovery).contains(&"node-b:b1:ready:127.0.1.2".into())
    })
    .await;
    // Rolling update: the new pod is not ready yet, the old one keeps serving.
    assert_eq!(discovery.node("node-a").unwrap().pod_name, "a1");
    assert_eq!(discovery.pods().len(), 3);

    // The stream ended; the watch resumes from the last event. New pod ready, b1 re-IP'd.
    let (_, query, send) = next(&mut api).await;
    assert!(
        is_watch(&query) && query.contains("resourceVersion=102"),
        "{query}"
    );
    send.send_response(ok(watch_body(&[
        (
            "MODIFIED",
            pod("a2", Some("node-a"), true, Some("127.0.1.3"), 103, T1),
        ),
        (
            "MODIFIED",
            pod("b1", Some("node-b"), true, Some("127.0.1.4"), 104, T0),
        ),
    ])));
    eventually("a2 preferred and b1 re-IP", || {
        summary(&discovery) == ["node-a:a2:ready:127.0.1.3", "node-b:b1:ready:127.0.1.4"]
    })
    .await;

    // Deletions.
    let (_, query, send) = next(&mut api).await;
    assert!(query.contains("resourceVersion=104"), "{query}");
    send.send_response(ok(watch_body(&[
        (
            "DELETED",
            pod("a1", Some("node-a"), true, Some("127.0.1.1"), 105, T0),
        ),
        (
            "DELETED",
            pod("b1", Some("node-b"), true, Some("127.0.1.4"), 106, T0),
        ),
    ])));
    eventually("b1 deleted", || {
        summary(&discovery) == ["node-a:a2:ready:127.0.1.3"]
    })
    .await;
    assert_eq!(discovery.pods().len(), 1);
    assert_eq!(discovery.unscheduled_pods(), ["u1"]);

    // 410 Gone inside the watch stream: the cache keeps serving and re-lists.
    let (_, query, send) = next(&mut api).await;
    assert!(is_watch(&query));
    send.send_response(ok(watch_body(&[(
        "ERROR",
        status_json(410, "Expired", "too old resource version: 106 (200)"),
    )])));
    let (_, query, send) = next(&mut api).await;
    assert!(
        !is_watch(&query),
        "expected a re-list after 410, got {query}"
    );
    assert!(
        discovery
            .last_error()
            .unwrap()
            .contains("too old resource version")
    );
    assert_eq!(summary(&discovery), ["node-a:a2:ready:127.0.1.3"]);
    send.send_response(ok(pod_list(
        vec![pod("c1", Some("node-c"), true, Some("127.0.1.5"), 150, T1)],
        200,
    )));
    eventually("re-listed", || {
        summary(&discovery) == ["node-c:c1:ready:127.0.1.5"]
    })
    .await;
    assert!(discovery.is_synced());
    eventually("error cleared", || discovery.last_error().is_none()).await;

    // The API server fails the next watch with 500: back off, retry, keep the cache.
    let (_, query, send) = next(&mut api).await;
    assert!(
        is_watch(&query) && query.contains("resourceVersion=200"),
        "{query}"
    );
    send.send_response(status(
        500,
        "InternalError",
        "etcdserver: request timed out",
    ));
    let (_, query, send) = next(&mut api).await;
    assert!(
        is_watch(&query) && query.contains("resourceVersion=200"),
        "{query}"
    );
    assert!(
        discovery.last_error().unwrap().contains("etcdserver"),
        "{:?}",
        discovery.last_error()
    );
    assert_eq!(summary(&discovery), ["node-c:c1:ready:127.0.1.5"]);

    // A stream cut in the middle of an event: the partial event is dropped, nothing panics.
    let mut cut = watch_body(&[(
        "MODIFIED",
        pod("c1", Some("node-c"), true, Some("127.0.1.6"), 201, T1),
    )]);
    let mut partial = watch_body(&[(
        "ADDED",
        pod("d1", Some("node-d"), true, Some("127.0.1.7"), 202, T1),
    )]);
    partial.truncate(partial.len() / 2);
    cut.extend(partial);
    send.send_response(ok(cut));
    eventually("c1 re-IP applied", || {
        summary(&discovery) == ["node-c:c1:ready:127.0.1.6"]
    })
    .await;
    let (_, query, send) = next(&mut api).await;
    assert!(is_watch(&query), "{query}");
    assert_eq!(summary(&discovery), ["node-c:c1:ready:127.0.1.6"]);
    send.send_response(ok(watch_body(&[(
        "ADDED",
        pod("d1", Some("node-d"), true, Some("127.0.1.7"), 203, T1),
    )])));
    eventually("d1 added", || discovery.nodes().len() == 2).await;
}

#[tokio::test]
async fn forbidden_list_is_reported_then_retried() {
    let config = DiscoveryConfig {
        agent_component_only: true,
        ..DiscoveryConfig::default()
    };
    let events = Arc::new(WatchEvents::default());
    let (discovery, mut api) = mocked_with(config, events.clone());
    let (_, query, send) = next(&mut api).await;
    assert!(
        query.contains("app.kubernetes.io%2Fcomponent%3Dagent"),
        "selector not narrowed: {query}"
    );
    send.send_response(status(
        403,
        "Forbidden",
        "pods is forbidden: User \"system:serviceaccount:gpu-diagnostics:gateway\" cannot list resource \"pods\"",
    ));
    let (_, query, send) = next(&mut api).await;
    assert!(!is_watch(&query));
    assert!(!discovery.is_synced());
    let err = discovery.last_error().unwrap();
    assert!(err.contains("cannot list resource"), "{err}");
    assert!(discovery.nodes().is_empty());

    send.send_response(status(401, "Unauthorized", "Unauthorized"));
    let (_, _, send) = next(&mut api).await;
    assert!(discovery.last_error().unwrap().contains("Unauthorized"));
    send.send_response(ok(pod_list(
        vec![pod("a1", Some("node-a"), true, Some("127.0.1.1"), 1, T0)],
        5,
    )));
    discovery
        .wait_until_synced(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(summary(&discovery), ["node-a:a1:ready:127.0.1.1"]);
    // Lost once (the retry that failed again is the same loss), restored once.
    eventually("the watch restored", || events.0.lock().len() == 2).await;
    let seen = events.0.lock().clone();
    assert!(
        seen[0].starts_with("lost: ") && seen[0].contains("cannot list resource"),
        "{seen:?}"
    );
    assert_eq!(seen[1], "restored");
}

#[tokio::test]
async fn sync_timeout_and_bad_config() {
    let (discovery, _api) = mocked(DiscoveryConfig::default());
    let err = discovery
        .wait_until_synced(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("did not sync"), "{err}");

    let (service, _handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let bad = DiscoveryConfig {
        namespace: "Not A Namespace".into(),
        ..DiscoveryConfig::default()
    };
    assert!(Discovery::start(client, bad).is_err());
}

#[tokio::test]
async fn the_node_set_generation_moves_when_nodes_come_and_go_only() {
    let (discovery, mut api) = mocked(DiscoveryConfig::default());
    let changes = discovery.node_set_changes().expect("discovery changes");
    let (_, _, send) = next(&mut api).await;
    send.send_response(ok(pod_list(
        vec![pod("a1", Some("node-a"), true, Some("127.0.1.1"), 10, T0)],
        100,
    )));
    discovery
        .wait_until_synced(Duration::from_secs(10))
        .await
        .unwrap();
    let listed = *changes.borrow();
    assert!(listed > 0, "the first list brought node-a");

    // Status changes and a second pod on a known node: the same nodes.
    let (_, _, send) = next(&mut api).await;
    send.send_response(ok(watch_body(&[
        (
            "MODIFIED",
            pod("a1", Some("node-a"), false, Some("127.0.1.9"), 101, T0),
        ),
        (
            "ADDED",
            pod("a2", Some("node-a"), true, Some("127.0.1.3"), 102, T1),
        ),
    ])));
    eventually("a2 serves node-a", || {
        discovery.node("node-a").is_some_and(|e| e.pod_name == "a2")
    })
    .await;
    assert_eq!(*changes.borrow(), listed, "no node came or went");

    // A node appears, then goes.
    let (_, _, send) = next(&mut api).await;
    send.send_response(ok(watch_body(&[(
        "ADDED",
        pod("c1", Some("node-c"), false, None, 103, T0),
    )])));
    eventually("node-c announced", || *changes.borrow() > listed).await;
    assert!(discovery.node("node-c").is_some());
    let appeared = *changes.borrow();
    let (_, _, send) = next(&mut api).await;
    send.send_response(ok(watch_body(&[(
        "DELETED",
        pod("c1", Some("node-c"), false, None, 104, T0),
    )])));
    eventually("node-c gone", || *changes.borrow() > appeared).await;
    assert!(discovery.node("node-c").is_none());
}

#[test]
fn static_agents_never_change() {
    let agents = gpu_mcp_k8s::StaticDirectory::new([("node-a", "http://127.0.0.1:1")]).unwrap();
    assert!(agents.node_set_changes().is_none());
}
