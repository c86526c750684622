//! List the agent nodes of a real cluster.
//!
//! ```text
//! cargo run -p gpu-mcp-k8s --example list_agents -- [--kubeconfig PATH] [--context NAME]
//!     [--namespace gpu-diagnostics] [--selector app.kubernetes.io/name=k8s-gpu-mcp-server]
//!     [--agents-only] [--ping]
//! ```
//!
//! Without `--kubeconfig`, the in-cluster service account is tried, then `$KUBECONFIG` or
//! `~/.kube/config`. With `--ping`, each ready agent is sent `tools/list` over HTTP.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use gpu_mcp_k8s::{
    ClientOptions, Discovery, DiscoveryConfig, HttpTransport, HttpTransportConfig, NodeDirectory,
    Router, RouterConfig,
};
use gpu_mcp_protocol::Request;
use gpu_mcp_protocol::mcp::methods;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut options = ClientOptions::default();
    let mut config = DiscoveryConfig::default();
    let mut ping = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--kubeconfig" => options.kubeconfig = Some(value()?.into()),
            "--context" => options.context = Some(value()?),
            "--namespace" => config.namespace = value()?,
            "--selector" => config.label_selector = value()?,
            "--agents-only" => config.agent_component_only = true,
            "--ping" => ping = true,
            "-h" | "--help" => {
                println!(
                    "usage: list_agents [--kubeconfig PATH] [--context NAME] [--namespace NS] \
                     [--selector SEL] [--agents-only] [--ping]"
                );
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }

    let client = gpu_mcp_k8s::client(&options).await?;
    let discovery = Arc::new(Discovery::start(client, config)?);
    discovery.wait_until_synced(Duration::from_secs(30)).await?;

    let nodes = discovery.nodes();
    println!(
        "{:<32} {:<40} {:<6} {:<16} START",
        "NODE", "POD", "READY", "POD IP"
    );
    for node in &nodes {
        println!(
            "{:<32} {:<40} {:<6} {:<16} {}",
            node.node_name,
            node.pod_name,
            node.ready,
            node.pod_ip
                .map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
            node.start_time
                .map_or_else(|| "-".to_owned(), |t| t.to_string()),
        );
    }
    let unscheduled = discovery.unscheduled_pods();
    if !unscheduled.is_empty() {
        println!("unscheduled agent pods: {}", unscheduled.join(", "));
    }
    println!("{} node(s)", nodes.len());

    if ping {
        let transport = Arc::new(HttpTransport::new(HttpTransportConfig::default())?);
        let router = Router::new(discovery, transport, RouterConfig::default());
        let request = Request::new(1, methods::TOOLS_LIST, None);
        for result in router.route_to_all(&request).await {
            match result.outcome {
                Ok(response) => {
                    let tools = response
                        .result
                        .as_ref()
                        .and_then(|r| r["tools"].as_array())
                        .map_or(0, Vec::len);
                    println!(
                        "{}: {tools} tools in {:?}",
                        result.node_name, result.duration
                    );
                }
                Err(err) => println!("{}: {err}", result.node_name),
            }
        }
    }
    Ok(())
}
