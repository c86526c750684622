//! A stand-in Kubernetes API for the gateway's memory benchmark: serves a fixed set of agent pods
//! to the gateway's discovery (paginated LIST, then a WATCH that stays open and quiet).
//!
//! It speaks just enough of the API for kube-runtime's watcher: `GET .../pods` with `limit` and
//! `continue`, `watch=true` (held open), and `sendInitialEvents=true` (streaming list: every pod as
//! `ADDED`, then the bookmark that ends the initial events).
//! Filling a real API server with 5,000 pods would measure etcd on a 2-core machine, not the gateway.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

const RESOURCE_VERSION: &str = "5000";

/// A running stand-in API server; stops when dropped.
#[derive(Debug)]
pub(crate) struct StandInApi {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl StandInApi {
    /// Serves `pods` agent pods in `namespace` on 127.0.0.1 (ephemeral port).
    pub(crate) async fn start(namespace: &str, pods: usize) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the stand-in API server")?;
        let addr = listener.local_addr()?;
        let items: Arc<Vec<Value>> = Arc::new((0..pods).map(|i| agent_pod(namespace, i)).collect());
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // Held watch streams end when this is dropped (on stop).
            let mut held: Vec<mpsc::Sender<()>> = Vec::new();
            let (hold_tx, mut hold_rx) = mpsc::unbounded_channel::<mpsc::Sender<()>>();
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    Some(h) = hold_rx.recv() => held.push(h),
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let items = Arc::clone(&items);
                        let hold_tx = hold_tx.clone();
                        tokio::spawn(async move {
                            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                                let items = Arc::clone(&items);
                                let hold_tx = hold_tx.clone();
                                async move { Ok::<_, Infallible>(answer(&req, &items, &hold_tx)) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), svc)
                                .await;
                        });
                    }
                }
            }
            drop(held);
        });
        Ok(Self {
            addr,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    #[cfg(test)]
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig (YAML) that points at this server over plain HTTP.
    pub(crate) fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: http://{}\n\
             users:\n- name: stand-in\n  user:\n    token: stand-in\n\
             contexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: stand-in\n\
             current-context: stand-in\n",
            self.addr
        )
    }
}

impl Drop for StandInApi {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(status: StatusCode, v: &Value) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(v.to_string())).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn query(req: &Request<hyper::body::Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (!k.is_empty()).then(|| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

fn answer(
    req: &Request<hyper::body::Incoming>,
    items: &Arc<Vec<Value>>,
    hold: &mpsc::UnboundedSender<mpsc::Sender<()>>,
) -> Response<Body> {
    if req.method() != hyper::Method::GET || !req.uri().path().ends_with("/pods") {
        return full(
            StatusCode::NOT_FOUND,
            &json!({"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,
                    "message":"the stand-in API serves pods only"}),
        );
    }
    let q = query(req);
    if q.get("watch").is_some_and(|v| v == "true" || v == "1") {
        let initial = q.get("sendInitialEvents").is_some_and(|v| v == "true");
        return watch_stream(if initial { Some(items) } else { None }, hold);
    }
    let offset: usize = q.get("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let end = offset.saturating_add(limit).min(items.len());
    let page: Vec<&Value> = items
        .get(offset.min(end)..end)
        .unwrap_or(&[])
        .iter()
        .collect();
    let mut metadata = json!({"resourceVersion": RESOURCE_VERSION});
    if end < items.len() {
        metadata["continue"] = json!(end.to_string());
        metadata["remainingItemCount"] = json!(items.len() - end);
    }
    full(
        StatusCode::OK,
        &json!({"kind":"PodList","apiVersion":"v1","metadata":metadata,"items":page}),
    )
}

/// A watch response that sends the initial events (if asked) and then stays open, quiet.
fn watch_stream(
    initial: Option<&Arc<Vec<Value>>>,
    hold: &mpsc::UnboundedSender<mpsc::Sender<()>>,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(64);
    let initial = initial.cloned();
    let (keep_tx, mut keep_rx) = mpsc::channel::<()>(1);
    let _ = hold.send(keep_tx);
    tokio::spawn(async move {
        if let Some(items) = initial {
            for pod in items.iter() {
                let line = format!("{}\n", json!({"type":"ADDED","object":pod}));
                if tx.send(Ok(Frame::data(Bytes::from(line)))).await.is_err() {
                    return;
                }
            }
            let bookmark = json!({"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1",
                "metadata":{"resourceVersion":RESOURCE_VERSION,
                    "annotations":{"k8s.io/initial-events-end":"true"}}}});
            if tx
                .send(Ok(Frame::data(Bytes::from(format!("{bookmark}\n")))))
                .await
                .is_err()
            {
                return;
            }
        }
        // Stay open until the server stops (the holder drops its sender).
        let _ = keep_rx.recv().await;
        drop(tx);
    });
    let stream = futures_stream(rx);
    let mut resp = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// An `mpsc::Receiver` as a `Stream`.
fn futures_stream<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

/// One agent pod as the API server would return it, on node `gpu-node-NNNN` with a 127.x IP.
fn agent_pod(namespace: &str, i: usize) -> Value {
    let node = format!("gpu-node-{i:04}");
    let ip = format!("127.1.{}.{}", i / 250, i % 250 + 1);
    json!({
        "metadata": {
            "name": format!("k8s-gpu-mcp-server-agent-{i:05}"),
            "namespace": namespace,
            "uid": format!("00000000-0000-4000-8000-{i:012}"),
            "resourceVersion": RESOURCE_VERSION,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {
                "app.kubernetes.io/name": "k8s-gpu-mcp-server",
                "app.kubernetes.io/component": "agent",
                "app.kubernetes.io/instance": "bench"
            },
            "ownerReferences": [{"apiVersion":"apps/v1","kind":"DaemonSet","name":"k8s-gpu-mcp-server-agent",
                                 "uid":"00000000-0000-4000-8000-000000000000","controller":true}]
        },
        "spec": {
            "nodeName": node,
            "containers": [{"name": "agent", "image": "ghcr.io/k8s-gpu-mcp-server/agent:bench",
                            "ports": [{"name":"http","containerPort":8080,"protocol":"TCP"}]}]
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "hostIP": "127.0.0.1",
            "startTime": "2026-01-01T00:00:01Z",
            "conditions": [
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "True"},
                {"type": "ContainersReady", "status": "True"},
                {"type": "PodScheduled", "status": "True"}
            ]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_have_loopback_ips_and_distinct_nodes() {
        let a = agent_pod("ns", 0);
        let b = agent_pod("ns", 4999);
        assert_eq!(a["status"]["podIP"], "127.1.0.1");
        assert_eq!(b["status"]["podIP"], "127.1.19.250");
        assert_ne!(a["spec"]["nodeName"], b["spec"]["nodeName"]);
    }

    #[tokio::test]
    async fn lists_in_pages_with_continue_tokens() {
        let api = StandInApi::start("gpu-diagnostics", 1200).await.unwrap();
        let path = "/api/v1/namespaces/gpu-diagnostics/pods?limit=500";
        let (status, body) = get(api.addr(), path).await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["items"].as_array().unwrap().len(), 500);
        assert_eq!(v["metadata"]["continue"], "500");
        let (_, body) = get(api.addr(), &format!("{path}&continue=1000")).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["items"].as_array().unwrap().len(), 200);
        assert!(v["metadata"].get("continue").is_none());
    }

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = Request::get(path)
            .header(hyper::header::HOST, addr.to_string())
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }
}
