//! The router's unit tests: fan-out bounds, node errors, deadlines, the breaker and its events.

use super::*;
use crate::endpoint::StaticDirectory;
use futures::future::BoxFuture;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Answers from a per-node script; counts calls and the peak number in flight.
#[derive(Default)]
struct Scripted {
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    failing: Mutex<std::collections::HashSet<String>>,
}

/// Decrements the in-flight count when the request ends or is dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl NodeTransport for Scripted {
    fn send<'a>(
        &'a self,
        target: &'a AgentEndpoint,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<Response, NodeError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            let guard = InFlight(&self.in_flight);
            tokio::time::sleep(Duration::from_millis(5)).await;
            drop(guard);
            if target.node_name == "hang" {
                std::future::pending::<()>().await;
            }
            if self.failing.lock().contains(&target.node_name) {
                return Err(NodeError::Connect {
                    url: target.url.clone().unwrap_or_default(),
                    message: "connection refused".into(),
                });
            }
            Ok(Response::success(
                request.id.clone(),
                json!({"node": target.node_name}),
            ))
        })
    }
}

fn tools_list() -> Request {
    Request::new(1, "tools/list", None)
}

fn name(node: &str) -> NodeName {
    NodeName::try_from(node).unwrap()
}

fn directory(names: &[&str]) -> Arc<StaticDirectory> {
    Arc::new(
        StaticDirectory::new(
            names
                .iter()
                .map(|n| (n.to_string(), format!("http://127.0.0.1:9/{n}"))),
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn fan_out_is_bounded_sorted_and_complete() {
    let names: Vec<String> = (0..40).rev().map(|i| format!("node-{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let transport = Arc::new(Scripted::default());
    transport.failing.lock().insert("node-07".into());
    let router = Router::new(
        directory(&refs),
        transport.clone(),
        RouterConfig {
            concurrency: 4,
            ..RouterConfig::default()
        },
    );
    let results = router.route_to_all(&tools_list()).await;
    assert_eq!(results.len(), 40);
    let sorted: Vec<_> = results.iter().map(|r| r.node_name.clone()).collect();
    let mut expected = sorted.clone();
    expected.sort();
    assert_eq!(sorted, expected);
    assert!(transport.peak.load(Ordering::SeqCst) <= 4);
    assert_eq!(results.iter().filter(|r| !r.is_ok()).count(), 1);
    assert!(matches!(results[7].outcome, Err(NodeError::Connect { .. })));
    assert_eq!(
        results[3]
            .outcome
            .as_ref()
            .unwrap()
            .result
            .as_ref()
            .unwrap()["node"],
        "node-03"
    );
}

#[tokio::test]
async fn single_node_errors() {
    let router = Router::new(
        directory(&["a", "b"]),
        Arc::new(Scripted::default()),
        RouterConfig::default(),
    );
    let req = tools_list();
    let r = router.route_to_node(&name("c"), &req).await;
    let err = r.outcome.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no agent pod on node \"c\" (known nodes: a, b)"
    );
    let r = router.route_to_node(&name("b"), &req).await;
    assert_eq!(r.outcome.unwrap().result.unwrap()["node"], "b");
}

/// The router alone judges readiness: a not-ready agent gets no request.
#[tokio::test]
async fn not_ready_nodes_are_refused_before_sending() {
    struct OneNotReady;
    impl NodeDirectory for OneNotReady {
        fn nodes(&self) -> Vec<AgentEndpoint> {
            let mut e = AgentEndpoint::from_url("a", "http://127.0.0.1:9/a");
            e.pod_name = "agent-a".into();
            e.ready = false;
            vec![e]
        }
        fn node(&self, name: &str) -> Option<AgentEndpoint> {
            self.nodes().into_iter().find(|e| e.node_name == name)
        }
        fn is_synced(&self) -> bool {
            true
        }
    }
    let transport = Arc::new(Scripted::default());
    let router = Router::new(
        Arc::new(OneNotReady),
        transport.clone(),
        RouterConfig::default(),
    );
    let req = tools_list();
    let r = router.route_to_node(&name("a"), &req).await;
    assert_eq!(
        r.outcome,
        Err(NodeError::NotReady {
            node: "a".into(),
            pod: "agent-a".into()
        })
    );
    assert_eq!(r.pod_name.as_deref(), Some("agent-a"));
    assert_eq!(transport.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn node_deadline_and_cancellation() {
    let transport = Arc::new(Scripted::default());
    let router = Arc::new(Router::new(
        directory(&["a", "hang"]),
        transport.clone(),
        RouterConfig {
            node_timeout: Duration::from_secs(2),
            ..RouterConfig::default()
        },
    ));
    let req = tools_list();
    let results = router.route_to_all(&req).await;
    assert!(results[0].is_ok());
    assert_eq!(
        results[1].outcome,
        Err(NodeError::Timeout {
            after: Duration::from_secs(2)
        })
    );

    // A dropped caller cancels the in-flight requests.
    let fut = router.route_to_all(&req);
    let cancelled = tokio::time::timeout(Duration::from_millis(1), fut).await;
    assert!(cancelled.is_err());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(transport.in_flight.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn circuit_breaker_opens_and_recovers() {
    let transport = Arc::new(Scripted::default());
    transport.failing.lock().insert("a".into());
    let router = Router::new(
        directory(&["a"]),
        transport.clone(),
        RouterConfig {
            circuit_breaker: Some(CircuitBreakerConfig {
                failure_threshold: 2,
                cool_down: Duration::from_secs(10),
            }),
            ..RouterConfig::default()
        },
    );
    let req = tools_list();
    for _ in 0..2 {
        assert!(matches!(
            router.route_to_node(&name("a"), &req).await.outcome,
            Err(NodeError::Connect { .. })
        ));
    }
    let r = router.route_to_node(&name("a"), &req).await;
    assert!(
        matches!(r.outcome, Err(NodeError::CircuitOpen { failures: 2, .. })),
        "{:?}",
        r.outcome
    );
    assert_eq!(transport.calls.load(Ordering::SeqCst), 2);

    // After the cool-down one trial goes through; failing again re-opens.
    tokio::time::advance(Duration::from_secs(11)).await;
    assert!(matches!(
        router.route_to_node(&name("a"), &req).await.outcome,
        Err(NodeError::Connect { .. })
    ));
    assert!(matches!(
        router.route_to_node(&name("a"), &req).await.outcome,
        Err(NodeError::CircuitOpen { .. })
    ));

    // A successful trial closes it.
    tokio::time::advance(Duration::from_secs(11)).await;
    transport.failing.lock().clear();
    assert!(router.route_to_node(&name("a"), &req).await.is_ok());
    assert!(router.route_to_node(&name("a"), &req).await.is_ok());
    assert_eq!(transport.calls.load(Ordering::SeqCst), 5);
}

/// Keeps every event as a short word, in order.
#[derive(Default)]
struct Recorded(Mutex<Vec<String>>);

impl FleetEvents for Recorded {
    fn observe(&self, event: FleetEvent) {
        let word = match event {
            FleetEvent::NodeAnswered { node } => format!("answered {node}"),
            FleetEvent::NodeFailed { node, error } => format!("failed {node}: {error}"),
            FleetEvent::CircuitOpened {
                node,
                failures,
                cool_down,
            } => format!(
                "opened {node} after {failures} for {}s",
                cool_down.as_secs()
            ),
            FleetEvent::CircuitClosed { node } => format!("closed {node}"),
            FleetEvent::WatchLost { .. } | FleetEvent::WatchRestored => "watch".into(),
        };
        self.0.lock().push(word);
    }
}

#[tokio::test(start_paused = true)]
async fn answers_failures_and_breaker_changes_are_reported() {
    let transport = Arc::new(Scripted::default());
    transport.failing.lock().insert("a".into());
    let events = Arc::new(Recorded::default());
    let router = Router::new(
        directory(&["a"]),
        transport.clone(),
        RouterConfig {
            circuit_breaker: Some(CircuitBreakerConfig {
                failure_threshold: 2,
                cool_down: Duration::from_secs(10),
            }),
            ..RouterConfig::default()
        },
    )
    .with_events(events.clone());
    let req = tools_list();
    for _ in 0..3 {
        router.route_to_node(&name("a"), &req).await;
    }
    tokio::time::advance(Duration::from_secs(11)).await;
    transport.failing.lock().clear();
    router.route_to_node(&name("a"), &req).await;
    router.route_to_node(&name("a"), &req).await;
    let refused =
        "failed a: cannot connect to the agent at http://127.0.0.1:9/a: \"connection refused\"";
    assert_eq!(
        *events.0.lock(),
        [
            refused.to_owned(),
            refused.to_owned(),
            "opened a after 2 for 10s".to_owned(),
            // The third call was skipped by the open breaker: no request, no event.
            "answered a".to_owned(),
            "closed a".to_owned(),
            "answered a".to_owned(),
        ]
    );
}
