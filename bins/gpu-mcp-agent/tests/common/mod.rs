//! Starting the built agent binary for the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const AGENT: &str = env!("CARGO_BIN_EXE_gpu-mcp-agent");

/// The agent command with quiet logs and no stray `GPU_MCP_*` settings from the environment.
pub fn agent(args: &[&str]) -> Command {
    let mut cmd = Command::new(AGENT);
    for (k, _) in std::env::vars() {
        if k.starts_with("GPU_MCP_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("GPU_MCP_AGENT_NODE_NAME", "test-node")
        .args(args)
        .kill_on_drop(true);
    cmd
}

/// A running HTTP agent on a loopback port it chose itself.
pub struct HttpAgent {
    pub child: Child,
    pub addr: SocketAddr,
}

impl HttpAgent {
    pub async fn start(extra: &[&str]) -> HttpAgent {
        let mut args = vec![
            "--transport",
            "http",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--log-level",
            "info",
        ];
        args.extend_from_slice(extra);
        let mut child = agent(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the agent exited before it listened");
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if let Some(addr) = v.get("local_addr").and_then(Value::as_str) {
                break addr.parse().unwrap();
            }
        };
        // Keep draining stderr so the agent never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        HttpAgent { child, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}
