//! Routing benchmark: fan-out latency over 10 / 100 / 1000 simulated nodes through
//! `HttpTransport` (one loopback agent per node, each on its own 127.1.x.y pod IP) and through
//! `ExecTransport` (kube's WebSocket exec against a loopback stand-in of the API server), in the
//! same run; then the per-call cost of a discovery cache read against a LIST.
//!
//! `cargo bench -p gpu-mcp-k8s --bench routing` (add `-- --quick` for fewer iterations).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gpu_mcp_k8s::{
    AgentEndpoint, Discovery, DiscoveryConfig, ExecTransport, ExecTransportConfig, HttpTransport,
    HttpTransportConfig, NodeDirectory, NodeTransport, Router, RouterConfig, endpoint_from_pod,
};
use http::{Request, Response};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use kube::client::Body;
use serde_json::json;
use support::{Behavior, LoopbackAgent, pod, pod_list, spawn_agent_on, spawn_exec_standin};
use tower_test::mock;

/// A fixed list of endpoints (the benchmark measures routing, not discovery).
struct Fixed(Vec<AgentEndpoint>);

impl NodeDirectory for Fixed {
    fn nodes(&self) -> Vec<AgentEndpoint> {
        self.0.clone()
    }
    fn node(&self, name: &str) -> Option<AgentEndpoint> {
        self.0.iter().find(|e| e.node_name == name).cloned()
    }
    fn is_synced(&self) -> bool {
        true
    }
}

fn node_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8))
}

fn endpoint(i: usize, ip: Option<IpAddr>, port: Option<u16>) -> AgentEndpoint {
    AgentEndpoint {
        node_name: format!("gpu-node-{i:04}"),
        pod_name: format!("ok-agent-{i:04}"),
        namespace: "gpu-diagnostics".into(),
        pod_ip: ip,
        ready: true,
        container: Some("agent".into()),
        port,
        start_time: None,
        url: None,
    }
}

struct Stats {
    samples: usize,
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    let total: Duration = samples.iter().sum();
    Stats {
        samples: n,
        p50: samples[n / 2],
        p99: samples[(n * 99 / 100).min(n - 1)],
        mean: total / n as u32,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

async fn fan_out(router: &Router, iterations: usize, expect: usize) -> Stats {
    let request = support::request_of(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                         "params": {"name": "get_gpu_health", "arguments": {}}}));
    for _ in 0..2 {
        let warm = router.route_to_all(&request).await;
        assert_eq!(
            warm.iter().filter(|r| r.is_ok()).count(),
            expect,
            "{:?}",
            warm.iter().find(|r| !r.is_ok())
        );
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let results = router.route_to_all(&request).await;
        samples.push(start.elapsed());
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), expect);
    }
    stats(samples)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(quick));
}

async fn run(quick: bool) {
    let scale = |n: usize| if quick { n.div_ceil(5).max(3) } else { n };
    println!("| transport | nodes | fan-outs | p50 | p99 | mean | per node (mean) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");

    let standin = spawn_exec_standin(true).await;
    let exec: Arc<dyn NodeTransport> =
        Arc::new(ExecTransport::new(standin.client(), ExecTransportConfig::default()).unwrap());
    let http: Arc<dyn NodeTransport> =
        Arc::new(HttpTransport::new(HttpTransportConfig::default()).unwrap());

    for (nodes, http_iters, exec_iters) in [(10, 300, 100), (100, 100, 30), (1000, 30, 8)] {
        let mut agents: Vec<LoopbackAgent> = Vec::with_capacity(nodes);
        for i in 0..nodes {
            let agent = spawn_agent_on(
                SocketAddr::new(node_ip(i), 0),
                &format!("gpu-node-{i:04}"),
                Behavior::Good,
            )
            .await;
            agents.push(agent);
        }
        let http_dir = Arc::new(Fixed(
            agents
                .iter()
                .enumerate()
                .map(|(i, a)| endpoint(i, Some(a.addr.ip()), Some(a.addr.port())))
                .collect(),
        ));
        let exec_dir = Arc::new(Fixed((0..nodes).map(|i| endpoint(i, None, None)).collect()));
        let config = RouterConfig {
            node_timeout: Duration::from_secs(30),
            ..RouterConfig::default()
        };
        let http_router = Router::new(http_dir, http.clone(), config.clone());
        let exec_router = Router::new(exec_dir, exec.clone(), config);

        for (name, router, iterations) in [
            ("http", &http_router, scale(http_iters)),
            ("exec", &exec_router, scale(exec_iters)),
        ] {
            let s = fan_out(router, iterations, nodes).await;
            println!(
                "| {name} | {nodes} | {} | {} | {} | {} | {} |",
                s.samples,
                ms(s.p50),
                ms(s.p99),
                ms(s.mean),
                us(s.mean / nodes as u32)
            );
        }
        drop(agents);
    }

    println!();
    println!("| discovery read (pods in cache) | calls | p50 | p99 | mean |");
    println!("|---|---:|---:|---:|---:|");
    for pods in [100usize, 1000] {
        let items: Vec<_> = (0..pods)
            .map(|i| {
                let ip = node_ip(i).to_string();
                pod(
                    &format!("agent-{i:04}"),
                    Some(&format!("gpu-node-{i:04}")),
                    true,
                    Some(&ip),
                    i as u64 + 1,
                    "2026-01-01T00:00:00Z",
                )
            })
            .collect();
        let body = pod_list(items, 10_000);

        // An API server that answers every request with the same pod list (the watch too:
        // its body then ends and the watcher re-watches, which does not touch the cache reads).
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let list_body = body.clone();
        let responder = tokio::spawn(async move {
            let mut handle = Box::pin(handle);
            while let Some((req, send)) = handle.next_request().await {
                let watch = req.uri().query().is_some_and(|q| q.contains("watch=true"));
                if watch {
                    // Hold watches open for the rest of the run.
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        drop(send);
                    });
                } else {
                    send.send_response(Response::new(Body::from(list_body.clone())));
                }
            }
        });
        let client = kube::Client::new(service, "default");
        let discovery = Discovery::start(client.clone(), DiscoveryConfig::default()).unwrap();
        discovery
            .wait_until_synced(Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(discovery.nodes().len(), pods);
        let probe = format!("gpu-node-{:04}", pods / 2);

        let reads = scale(2000);
        let mut node_samples = Vec::with_capacity(reads);
        let mut nodes_samples = Vec::with_capacity(reads);
        for _ in 0..reads {
            let start = Instant::now();
            let one = discovery.node(&probe);
            node_samples.push(start.elapsed());
            assert!(one.is_some());
            let start = Instant::now();
            let all = discovery.nodes();
            nodes_samples.push(start.elapsed());
            assert_eq!(all.len(), pods);
        }
        let api: Api<Pod> = Api::namespaced(client, "gpu-diagnostics");
        let lp = ListParams::default().labels(gpu_mcp_k8s::DEFAULT_LABEL_SELECTOR);
        let lists = scale(200);
        let mut list_samples = Vec::with_capacity(lists);
        for _ in 0..lists {
            let start = Instant::now();
            let list = api.list(&lp).await.unwrap();
            let endpoints: Vec<_> = list
                .items
                .iter()
                .filter_map(|p| endpoint_from_pod(p, "agent"))
                .collect();
            list_samples.push(start.elapsed());
            assert_eq!(endpoints.len(), pods);
        }
        for (name, samples) in [
            (format!("cache `node(name)`, {pods} pods"), node_samples),
            (format!("cache `nodes()`, {pods} pods"), nodes_samples),
            (
                format!(
                    "LIST + decode (mock API, {} KiB), {pods} pods",
                    body.len() / 1024
                ),
                list_samples,
            ),
        ] {
            let s = stats(samples);
            println!(
                "| {name} | {} | {} | {} | {} |",
                s.samples,
                us(s.p50),
                us(s.p99),
                us(s.mean)
            );
        }
        drop(discovery);
        responder.abort();
    }
}
