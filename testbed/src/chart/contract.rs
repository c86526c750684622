//! The chart's contract with the agent binary: the arguments and environment the chart renders
//! must start a working agent.
//!
//! The agent DaemonSet of a mock render is started as a local process (its `--listen` moved to a
//! free loopback port) until `/readyz` answers 200; the gateway's exec command of an exec-routing
//! render is run with that DaemonSet's environment, as `pods/exec` would, and must answer a
//! `tools/call` on stdio. A renamed flag or environment variable fails here instead of in a cluster.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::util::process::KillOnDrop;
use crate::util::{http, net};

/// Path of the agent binary inside the image, as the chart names it.
const IMAGE_AGENT: &str = "/gpu-mcp-agent";
/// Node name given for downward-API (`valueFrom`) variables.
const NODE: &str = "contract-node";
/// Bound on each wait (a hang guard, not a performance assertion).
const WAIT: Duration = Duration::from_secs(60);

/// Starts the agent as the rendered DaemonSet would, and waits until it is ready.
pub fn check_daemonset(docs: &[Value], agent_bin: &Path, log: &Path) -> Result<()> {
    let container = agent_container(docs)?;
    let args = container_args(container)?;
    let port = net::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
    let mut saw_listen = false;
    let secrets_dir = log.with_extension("secrets");
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            if a.starts_with("--listen=") {
                saw_listen = true;
                Ok(format!("--listen=127.0.0.1:{port}"))
            } else if let Some(path) = a.strip_prefix("--auth-token-file=") {
                let file = secret_file(docs, path, &secrets_dir)?;
                Ok(format!("--auth-token-file={}", file.display()))
            } else {
                Ok(a)
            }
        })
        .collect::<Result<_>>()?;
    ensure!(
        saw_listen,
        "the agent container has no --listen=ADDR argument: {args:?}"
    );
    let log_file = std::fs::File::create(log)?;
    let child = Command::new(agent_bin)
        .args(&args)
        .env_clear()
        .envs(container_env(container))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("starting {}", agent_bin.display()))?;
    let mut child = KillOnDrop(child);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.0.try_wait()? {
            bail!(
                "the agent exited ({status}) with the chart's arguments {args:?}; see {}",
                log.display()
            );
        }
        if http::get(addr, "/readyz", Duration::from_secs(2)).is_ok_and(|(code, _)| code == 200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the agent never became ready on {addr}; see {}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes the rendered Secret key that `mounted` (a path inside a Secret volume) names into
/// `dir`, as the kubelet would mount it, and returns the local file.
fn secret_file(docs: &[Value], mounted: &str, dir: &Path) -> Result<std::path::PathBuf> {
    use base64::Engine as _;
    let key = mounted.rsplit('/').next().unwrap_or(mounted);
    let encoded = docs
        .iter()
        .filter(|d| d["kind"] == "Secret")
        .find_map(|d| d["data"][key].as_str())
        .with_context(|| format!("no rendered Secret holds the key {key:?} of {mounted}"))?;
    let value = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| anyhow::anyhow!("Secret key {key:?} is not base64: {e}"))?;
    std::fs::create_dir_all(dir)?;
    let file = dir.join(key);
    std::fs::write(&file, value)?;
    Ok(file)
}

/// Runs the gateway's `--exec-command` with the agent container's environment and sends one
/// `tools/call` on stdin, as exec routing does.
pub fn check_exec_command(docs: &[Value], agent_bin: &Path) -> Result<()> {
    let agent = agent_container(docs)?;
    let gateway = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .and_then(|d| d.pointer("/spec/template/spec/containers/0"))
        .context("no gateway Deployment in the render")?;
    let command = container_args(gateway)?
        .into_iter()
        .find_map(|a| a.strip_prefix("--exec-command=").map(str::to_owned))
        .context("the gateway has no --exec-command")?;
    let mut words = command.split_whitespace();
    ensure!(
        words.next() == Some(IMAGE_AGENT),
        "--exec-command {command:?} does not start {IMAGE_AGENT}"
    );
    let mut child = KillOnDrop(
        Command::new(agent_bin)
            .args(words)
            .env_clear()
            .envs(container_env(agent))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", agent_bin.display()))?,
    );
    let request = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_gpu_inventory","arguments":{}}}"#;
    {
        let mut stdin = child.0.stdin.take().context("no stdin")?;
        writeln!(stdin, "{request}")?;
    } // closing stdin ends the one-shot session
    let stdout = child.0.stdout.take().context("no stdout")?;
    let mut stderr = child.0.stderr.take().context("no stderr")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let line = BufReader::new(stdout).lines().next();
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(WAIT) {
        Ok(Some(Ok(line))) => line,
        Ok(_) => {
            let _ = child.0.kill();
            let mut err = String::new();
            let _ = stderr.read_to_string(&mut err);
            bail!("`{command}` with the agent's environment answered nothing; stderr:\n{err}");
        }
        Err(_) => bail!("`{command}` did not answer within {} s", WAIT.as_secs()),
    };
    let answer: Value =
        serde_json::from_str(&line).with_context(|| format!("not JSON-RPC: {line}"))?;
    ensure!(
        answer["id"] == 1 && answer["result"]["isError"] != true && answer["result"].is_object(),
        "`{command}` answered with an error: {line}"
    );
    ensure!(
        answer.to_string().contains(NODE),
        "the exec'd agent did not take its node name from the container's environment: {line}"
    );
    Ok(())
}

fn agent_container(docs: &[Value]) -> Result<&Value> {
    docs.iter()
        .find(|d| d["kind"] == "DaemonSet")
        .and_then(|d| d.pointer("/spec/template/spec/containers/0"))
        .context("no agent DaemonSet in the render")
}

fn container_args(container: &Value) -> Result<Vec<String>> {
    ensure!(
        container
            .pointer("/command/0")
            .and_then(Value::as_str)
            .is_some(),
        "the container has no command"
    );
    Ok(container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect())
}

/// The container's environment: literal values as rendered, downward-API values as one fixed
/// node name, plus a `PATH`.
fn container_env(container: &Value) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e["name"].as_str()?.to_owned();
            let value = match e["value"].as_str() {
                Some(v) => v.to_owned(),
                None if e.pointer("/valueFrom/fieldRef/fieldPath")
                    == Some(&"spec.nodeName".into()) =>
                {
                    NODE.to_owned()
                }
                None => return None,
            };
            Some((name, value))
        })
        .collect();
    env.insert("PATH".into(), "/usr/bin:/bin".into());
    env
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn environment_takes_literals_and_the_node_name() {
        let c = json!({"env": [
            {"name": "GPU_MCP_AGENT_NVML_MODE", "value": "mock"},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ]});
        let env = container_env(&c);
        assert_eq!(env["GPU_MCP_AGENT_NVML_MODE"], "mock");
        assert_eq!(env["NODE_NAME"], NODE);
        assert!(!env.contains_key("POD_IP"));
        assert!(env.contains_key("PATH"));
    }

    #[test]
    fn a_render_without_an_agent_is_refused() {
        let err =
            check_daemonset(&[], Path::new("/nonexistent"), Path::new("/nonexistent")).unwrap_err();
        assert!(err.to_string().contains("no agent DaemonSet"), "{err}");
    }
}
