//! Exec node transport: run the agent in one-shot stdio mode through `pods/exec`.

use futures::future::BoxFuture;
use gpu_mcp_protocol::mcp::{ClientCapabilities, Implementation, InitializeRequestParams, methods};
use gpu_mcp_protocol::{Notification, Request, RequestId, Response, encode_line};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Api;
use kube::api::AttachParams;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{DEFAULT_PROTOCOL_VERSION, NodeTransport, check_response, is_response_to};
use crate::endpoint::AgentEndpoint;
use crate::error::{Error, NodeError, Result, SNIPPET_LIMIT, truncate};

/// Command run in the agent container by default.
pub const DEFAULT_EXEC_COMMAND: [&str; 5] = [
    "/gpu-mcp-agent",
    "--transport",
    "stdio",
    "--nvml-mode",
    "real",
];

/// Request id used for the `initialize` request sent ahead of the forwarded request.
const INIT_ID: &str = "gpu-mcp-k8s-initialize";

/// Settings of [`ExecTransport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecTransportConfig {
    /// Command (argv) that starts the agent in stdio mode inside the container.
    pub command: Vec<String>,
    /// Container to exec into; defaults to the endpoint's container.
    pub container: Option<String>,
    /// Send `initialize` and `notifications/initialized` before the request.
    pub initialize: bool,
    /// Protocol version offered in `initialize`.
    pub protocol_version: String,
    /// Largest standard output accepted, in bytes.
    pub max_output_bytes: usize,
}

impl Default for ExecTransportConfig {
    fn default() -> Self {
        ExecTransportConfig {
            command: DEFAULT_EXEC_COMMAND
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            container: None,
            initialize: true,
            protocol_version: DEFAULT_PROTOCOL_VERSION.to_owned(),
            max_output_bytes: 4 << 20,
        }
    }
}

/// Runs the agent per request with `pods/exec` (WebSocket `v5.channel.k8s.io`/`v4`) and
/// exchanges newline-delimited JSON-RPC over its stdin and stdout.
#[derive(Clone)]
pub struct ExecTransport {
    client: kube::Client,
    config: ExecTransportConfig,
}

impl std::fmt::Debug for ExecTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ExecTransport {
    /// Build a transport that execs through `client`.
    pub fn new(client: kube::Client, config: ExecTransportConfig) -> Result<ExecTransport> {
        if config.command.first().is_none_or(String::is_empty) {
            return Err(Error::InvalidExecConfig("the command is empty".to_owned()));
        }
        Ok(ExecTransport { client, config })
    }

    fn stdin_payload(&self, request: &Request) -> Result<Vec<u8>, NodeError> {
        let mut payload = Vec::new();
        if self.config.initialize && request.id != RequestId::from(INIT_ID) {
            let params = InitializeRequestParams {
                protocol_version: self.config.protocol_version.clone(),
                capabilities: ClientCapabilities::default(),
                client_info: Some(Implementation {
                    name: "gpu-mcp-gateway".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Implementation::default()
                }),
                meta: None,
            };
            let params = serde_json::to_value(params).map_err(|e| NodeError::Protocol {
                message: format!("cannot encode the initialize request: {e}"),
            })?;
            let init = Request::new(INIT_ID, methods::INITIALIZE, Some(params));
            payload.extend(encode_line(&init));
            payload.extend(encode_line(&Notification::new(methods::INITIALIZED, None)));
        }
        payload.extend(encode_line(request));
        Ok(payload)
    }

    async fn exchange(
        &self,
        target: &AgentEndpoint,
        request: &Request,
    ) -> Result<Response, NodeError> {
        let id = &request.id;
        let pod = target.pod().ok_or_else(|| NodeError::Protocol {
            message: format!(
                "node {:?} has no agent pod; exec routing needs one (static agents use HTTP)",
                target.node_name
            ),
        })?;
        let payload = self.stdin_payload(request)?;
        let mut params = AttachParams::default()
            .stdin(true)
            .stdout(true)
            .stderr(true);
        if let Some(container) = self.config.container.as_ref().or(target.container.as_ref()) {
            params = params.container(container.clone());
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &target.namespace);
        let mut process = api
            .exec(pod, self.config.command.clone(), &params)
            .await
            .map_err(NodeError::from_kube)?;
        let exec_failed =
            |message: String, exit_code: Option<i32>, stderr: String| NodeError::ExecFailed {
                pod: pod.to_owned(),
                exit_code,
                message,
                stderr,
            };
        let (Some(mut stdin), Some(stdout)) = (process.stdin(), process.stdout()) else {
            return Err(exec_failed(
                "exec session has no stdin or stdout".into(),
                None,
                String::new(),
            ));
        };
        let stderr_task = process.stderr().map(|mut stderr| {
            tokio::spawn(async move {
                let mut kept = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match stderr.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let room = (SNIPPET_LIMIT * 4).saturating_sub(kept.len());
                            kept.extend_from_slice(&chunk[..n.min(room)]);
                        }
                    }
                }
                kept
            })
        });
        let status = process.take_status();

        let writer = async {
            stdin.write_all(&payload).await?;
            // Dropping the write half does not signal EOF; shutdown does.
            stdin.shutdown().await
        };
        let limit = self.config.max_output_bytes;
        let reader = read_response(stdout, id, limit);
        let (written, outcome) = tokio::join!(writer, reader);
        let (garbage, too_large) = match outcome {
            StdoutOutcome::Response(response) => {
                if let Some(task) = stderr_task {
                    task.abort();
                }
                return Ok(*response);
            }
            StdoutOutcome::Eof { garbage } => (garbage, false),
            StdoutOutcome::TooLarge => (None, true),
        };
        if too_large {
            return Err(NodeError::ResponseTooLarge { limit });
        }
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        let stderr = match stderr_task {
            Some(task) => task.await.unwrap_or_default(),
            None => Vec::new(),
        };
        let stderr = truncate(String::from_utf8_lossy(&stderr).trim());
        let (exit_code, status_message) = describe_status(status.as_ref());
        if exit_code.is_some_and(|c| c != 0)
            || status
                .as_ref()
                .is_some_and(|s| s.status.as_deref() == Some("Failure"))
        {
            return Err(exec_failed(status_message, exit_code, stderr));
        }
        if let Some(garbage) = garbage {
            return Err(NodeError::Protocol {
                message: format!("agent wrote output that is not JSON-RPC: {garbage}"),
            });
        }
        let mut message = format!("agent ended without answering request {id}");
        if let Err(e) = written {
            message.push_str(&format!(" (writing the request failed: {e})"));
        }
        Err(exec_failed(message, exit_code, stderr))
    }
}

impl NodeTransport for ExecTransport {
    fn send<'a>(
        &'a self,
        target: &'a AgentEndpoint,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<Response, NodeError>> {
        Box::pin(self.exchange(target, request))
    }
}

/// What an exec'd agent's standard output held.
#[derive(Debug)]
pub enum StdoutOutcome {
    /// The response to the request. Boxed: a response is far larger than the other outcomes.
    Response(Box<Response>),
    /// The output ended without it.
    Eof {
        /// The first line that was not JSON-RPC (cut short), if any.
        garbage: Option<String>,
    },
    /// The output grew past the limit first.
    TooLarge,
}

/// Reads newline-delimited JSON from an exec'd agent's standard output until the response with
/// `id` (other messages, such as the `initialize` answer, are skipped), at most `limit` bytes:
/// what [`ExecTransport`] makes of the bytes an agent wrote, whatever they are.
pub async fn read_response<R>(stdout: R, id: &RequestId, limit: usize) -> StdoutOutcome
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut reader = BufReader::new(stdout).take(limit as u64 + 1);
    let mut line = Vec::new();
    let mut garbage = None;
    let mut total = 0usize;
    loop {
        line.clear();
        let n = match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return StdoutOutcome::Eof { garbage },
            Ok(n) => n,
        };
        total += n;
        if total > limit {
            return StdoutOutcome::TooLarge;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(message) if is_response_to(&message, id) => match check_response(message, id) {
                Ok(response) => return StdoutOutcome::Response(Box::new(response)),
                Err(_) => {
                    garbage.get_or_insert_with(|| truncate(text));
                }
            },
            Ok(_) => {}
            Err(_) => {
                garbage.get_or_insert_with(|| truncate(text));
            }
        }
    }
}

/// Exit code and a readable message from the exec status of channel 3.
fn describe_status(status: Option<&Status>) -> (Option<i32>, String) {
    let Some(status) = status else {
        return (
            None,
            "the exec session ended without an exit status".to_owned(),
        );
    };
    let exit_code = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|causes| {
            causes
                .iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
                .and_then(|c| c.message.as_deref())
                .and_then(|m| m.trim().parse::<i32>().ok())
        })
        .or_else(|| (status.status.as_deref() == Some("Success")).then_some(0));
    let message = status
        .message
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| status.reason.clone())
        .unwrap_or_else(|| {
            status
                .status
                .clone()
                .unwrap_or_else(|| "unknown status".into())
        });
    (exit_code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_description() {
        let failure: Status = serde_json::from_value(json!({
            "status": "Failure",
            "message": "command terminated with non-zero exit code: exit status 3",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}
        }))
        .unwrap();
        let (code, message) = describe_status(Some(&failure));
        assert_eq!(code, Some(3));
        assert!(message.contains("exit status 3"));
        let success: Status = serde_json::from_value(json!({"status": "Success"})).unwrap();
        assert_eq!(describe_status(Some(&success)).0, Some(0));
        assert_eq!(describe_status(None).0, None);
    }

    #[tokio::test]
    async fn reads_until_matching_response() {
        let id = RequestId::Number(5);
        let out = b"not json\n{\"jsonrpc\":\"2.0\",\"id\":\"gpu-mcp-k8s-initialize\",\"result\":{}}\n{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"x\":1}}\n".to_vec();
        match read_response(&out[..], &id, 1 << 20).await {
            StdoutOutcome::Response(v) => assert_eq!(v.result.unwrap()["x"], 1),
            _ => panic!("expected a response"),
        }
        match read_response(&b"garbage\n"[..], &id, 1 << 20).await {
            StdoutOutcome::Eof { garbage } => assert_eq!(garbage.as_deref(), Some("garbage")),
            _ => panic!("expected EOF"),
        }
        let big = [b'x'; 100];
        assert!(matches!(
            read_response(&big[..], &id, 10).await,
            StdoutOutcome::TooLarge
        ));
    }
}
