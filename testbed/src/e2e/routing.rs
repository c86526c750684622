//! One routing of the local e2e: the agents played (real agent processes on the pod IPs for
//! http, kwok `Exec` objects for exec), the gateway started as the chart runs it, the
//! scenarios run against it, then (for the first routing of a run) the official SDK clients.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::deployment::{Deployment, NAMESPACE};
use super::workloads::WORKLOAD_NAMESPACE;
use crate::cluster::ClusterHandle;
use crate::programs;
use crate::sdk_clients::{self, CheckOptions, ClientChoice, Server};
use crate::util::net;
use crate::util::process::Supervised;
use crate::util::workspace::Workspace;

/// Mock scenario of the first node; the others run the healthy default.
const XID_SCENARIO: &str = "xid-79";
/// Gateway node timeout during the scenarios.
const NODE_TIMEOUT_SECS: u64 = 5;

/// Everything started for one routing; killed on drop.
struct Run {
    agents: BTreeMap<String, Supervised>,
    gateway: Option<Supervised>,
}

/// Installs the chart with `routing`, plays its agents, starts the gateway and runs the scenarios;
/// with `sdk_check`, then the official SDK clients against the same gateway.
pub(super) fn run(
    ws: &Workspace,
    handle: &ClusterHandle,
    routing: &str,
    workload_env: &BTreeMap<String, String>,
    sdk_check: bool,
) -> Result<()> {
    let log_dir = ws.scratch(&format!("e2e-{routing}"));
    let deployment = Deployment::install(handle, routing, &log_dir)?;
    let nodes: Vec<String> = deployment.pods.iter().map(|p| p.node.clone()).collect();
    let scenario_of = |node: &str| (node == nodes[0]).then_some(XID_SCENARIO);
    let victim = nodes[nodes.len() - 1].clone();

    let mut run = Run {
        agents: BTreeMap::new(),
        gateway: None,
    };
    let mut env = BTreeMap::new();
    match routing {
        "http" => {
            for pod in &deployment.pods {
                let addr = SocketAddr::new(pod.ip, deployment.agent_port);
                let agent = programs::start_http_agent(
                    ws,
                    &format!("agent-{}", pod.node),
                    addr,
                    &pod.node,
                    8,
                    scenario_of(&pod.node),
                    &deployment.agent_auth_args,
                    &log_dir,
                )?;
                run.agents.insert(pod.node.clone(), agent);
            }
            let pid = run.agents[&victim].pid();
            env.insert("GPU_MCP_E2E_KILL_CMD".to_owned(), format!("kill -9 {pid}"));
        }
        _ => {
            if deployment.exec_objects {
                for pod in &deployment.pods {
                    deployment.set_exec_env(pod, scenario_of(&pod.node))?;
                }
                // "Killing" an exec-routed agent: its next start fails (an unknown scenario makes
                // the agent exit non-zero before answering).
                let pod = deployment
                    .pods
                    .iter()
                    .find(|p| p.node == victim)
                    .context("victim pod")?;
                let path = handle.state_dir.join(format!("exec-{}.json", pod.name));
                let text = std::fs::read_to_string(&path)?;
                let broken = text.replace(
                    r#"{"name":"GPU_MCP_AGENT_NVML_MODE","value":"mock"}"#,
                    r#"{"name":"GPU_MCP_AGENT_NVML_MODE","value":"mock"},{"name":"GPU_MCP_AGENT_MOCK_SCENARIO","value":"no-such-scenario"}"#,
                );
                let broken_path = handle
                    .state_dir
                    .join(format!("exec-{}-broken.json", pod.name));
                std::fs::write(&broken_path, broken)?;
                env.insert(
                    "GPU_MCP_E2E_KILL_CMD".to_owned(),
                    format!(
                        "'{}' --kubeconfig '{}' apply -f '{}' >/dev/null",
                        handle.kubectl.display(),
                        handle.kubeconfig.display(),
                        broken_path.display()
                    ),
                );
            } else {
                bail!(
                    "exec routing needs per-pod kwok Exec objects (CRD execs.kwok.x-k8s.io, kwok \
                     started with --enable-crds=Exec) to give each exec'd agent its node name and \
                     scenario; this local cluster does not serve them"
                );
            }
        }
    }

    let port = net::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
    let gw_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let gateway = programs::start_gateway(
        ws,
        &format!("gateway-{routing}"),
        gw_addr,
        &deployment.gateway_args(NODE_TIMEOUT_SECS),
        &log_dir,
        Duration::from_secs(90),
    );
    let gateway = match gateway {
        Ok(g) => g,
        Err(e) => {
            dump_logs(&run, handle);
            return Err(e);
        }
    };
    run.gateway = Some(gateway);

    let scenarios: Vec<String> = nodes
        .iter()
        .filter_map(|n| scenario_of(n).map(|s| format!("{n}={s}")))
        .collect();
    env.extend([
        (
            "GPU_MCP_E2E_GATEWAY_URL".to_owned(),
            format!("http://{gw_addr}/mcp"),
        ),
        ("GPU_MCP_E2E_NODES".to_owned(), nodes.join(",")),
        ("GPU_MCP_E2E_SCENARIOS".to_owned(), scenarios.join(",")),
        ("GPU_MCP_E2E_ROUTING".to_owned(), routing.to_owned()),
        (
            "GPU_MCP_E2E_NODE_TIMEOUT_SECS".to_owned(),
            NODE_TIMEOUT_SECS.to_string(),
        ),
        (
            "GPU_MCP_E2E_KUBECTL".to_owned(),
            handle.kubectl.display().to_string(),
        ),
        (
            "GPU_MCP_E2E_KUBECONFIG".to_owned(),
            handle.kubeconfig.display().to_string(),
        ),
        ("GPU_MCP_E2E_NAMESPACE".to_owned(), NAMESPACE.to_owned()),
        (
            "GPU_MCP_E2E_GATEWAY_ROLE".to_owned(),
            deployment.gateway_role.clone(),
        ),
        (
            "GPU_MCP_E2E_AGENT_BIN".to_owned(),
            ws.binary("gpu-mcp-agent").display().to_string(),
        ),
        (
            "GPU_MCP_E2E_AGENT_PORT".to_owned(),
            deployment.agent_port.to_string(),
        ),
        ("GPU_MCP_E2E_KILL_NODE".to_owned(), victim),
        // What a client sends to the gateway, and the agent flags of an agent playing a pod.
        (
            "GPU_MCP_E2E_TOKEN".to_owned(),
            deployment.client_token.clone(),
        ),
        (
            "GPU_MCP_E2E_AGENT_ARGS".to_owned(),
            deployment.agent_auth_args.join("\n"),
        ),
    ]);
    if routing == "http"
        && let Some(pod) = deployment.pods.first()
    {
        // An agent reached directly (as a pod the NetworkPolicy does not admit would).
        env.insert(
            "GPU_MCP_E2E_AGENT_URL".to_owned(),
            format!(
                "http://{}/mcp",
                SocketAddr::new(pod.ip, deployment.agent_port)
            ),
        );
    }
    env.extend(workload_env.clone());
    let mut result = programs::run_scenarios(&env, false, &[]);
    if sdk_check {
        let url = format!("http://{gw_addr}/mcp");
        let sdk = sdk_check_gateway(&url, &nodes[0], &deployment.client_token, &log_dir);
        result = match (result, sdk) {
            (Ok(()), sdk) => sdk,
            (Err(e), Ok(())) => Err(e),
            (Err(e), Err(s)) => Err(e.context(format!("and the SDK clients failed too: {s:#}"))),
        };
    }
    if result.is_err() {
        dump_logs(&run, handle);
    }
    // Exec objects of this run would outlive the pods otherwise.
    if routing == "exec" {
        let _ = handle.kubectl_output(&["-n", NAMESPACE, "delete", "execs.kwok.x-k8s.io", "--all"]);
    }
    drop(run);
    result
}

/// The official Python and TypeScript SDK clients against the gateway as the chart runs it (its
/// client token, `--cluster-context`): every tool called, the Kubernetes-context ones naming
/// `node` and its first workload pod, every `structuredContent` validated against its
/// `outputSchema`.
fn sdk_check_gateway(url: &str, node: &str, token: &str, log_dir: &std::path::Path) -> Result<()> {
    eprintln!("\n--- e2e: the official SDK clients against the gateway (node {node}) ---");
    let started = std::time::Instant::now();
    let pod = format!("{node}-job-0");
    let options = CheckOptions {
        token: Some(token.to_owned()),
        arguments: vec![
            ("describe_gpu_node".to_owned(), json!({"node": node})),
            ("get_pod_gpu_allocation".to_owned(), json!({"node": node})),
            (
                "explain_pod_gpu_failure".to_owned(),
                json!({"namespace": WORKLOAD_NAMESPACE, "pod": pod}),
            ),
        ],
    };
    sdk_clients::check(
        ClientChoice::Both,
        "e2e-gateway",
        Server::Http(url.to_owned()),
        options,
        &log_dir.join("sdk-clients"),
    )
    .context("the official SDK clients against the e2e gateway")?;
    eprintln!(
        "--- e2e: the SDK clients passed in {:.0} s ---",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn dump_logs(run: &Run, handle: &ClusterHandle) {
    if let Some(g) = &run.gateway {
        eprintln!(
            "--- gateway log ({}) ---\n{}",
            g.log_path().display(),
            g.log_tail(60)
        );
    }
    for (node, a) in &run.agents {
        eprintln!(
            "--- agent {node} log ({}) ---\n{}",
            a.log_path().display(),
            a.log_tail(20)
        );
    }
    if let Ok(pods) = handle.kubectl_output(&["-n", NAMESPACE, "get", "pods", "-o", "wide"]) {
        eprintln!("--- pods ---\n{pods}");
    }
    eprintln!(
        "--- cluster logs: {} ---",
        handle.state_dir.join("logs").display()
    );
}
