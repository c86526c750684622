//! A minimal Streamable HTTP client for measurements and single checks: one keep-alive
//! connection, bare `tools/call` requests (stateless, no `initialize`), answers as JSON or one
//! SSE event.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// One keep-alive connection to an MCP endpoint at `http://<addr>/mcp`.
#[derive(Debug)]
pub(crate) struct McpConn {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
    next_id: u64,
    token: Option<String>,
}

impl McpConn {
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Self {
            addr,
            sender,
            next_id: 1,
            token: None,
        })
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub(crate) fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// Calls `tool` with `arguments`; returns the time taken and the JSON-RPC `result`.
    pub(crate) async fn call_tool(
        &mut self,
        tool: &str,
        arguments: Value,
    ) -> Result<(Duration, Value)> {
        let t0 = Instant::now();
        let (status, bytes) = self.post_call(tool, arguments).await?;
        let elapsed = t0.elapsed();
        let text = String::from_utf8_lossy(&bytes);
        if !status.is_success() {
            bail!("{tool}: HTTP {status}: {text}");
        }
        let v = parse_answer(&text)?;
        match v.get("result") {
            Some(r) => Ok((elapsed, r.clone())),
            None => bail!("{tool}: no result: {v}"),
        }
    }
}

impl McpConn {
    /// POSTs a `tools/call` of `tool`; returns the HTTP status and the body, whatever they are.
    pub(crate) async fn post_call(
        &mut self,
        tool: &str,
        arguments: Value,
    ) -> Result<(hyper::StatusCode, Bytes)> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
                          "params":{"name":tool,"arguments":arguments}});
        let mut req = Request::post("/mcp")
            .header(hyper::header::HOST, self.addr.to_string())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, "application/json, text/event-stream");
        if let Some(token) = &self.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Full::new(Bytes::from(body.to_string())))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }
}

/// The JSON-RPC message in a JSON body or in the last `data:` line of an SSE body.
pub(crate) fn parse_answer(text: &str) -> Result<Value> {
    let json = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .rfind(|d| !d.trim().is_empty())
        .unwrap_or(text);
    serde_json::from_str(json.trim()).with_context(|| format!("not JSON: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_and_sse_answers() {
        assert_eq!(parse_answer(r#"{"id":1}"#).unwrap()["id"], 1);
        let sse = "id: 0\ndata: \n\nevent: message\ndata: {\"id\":2}\n\n";
        assert_eq!(parse_answer(sse).unwrap()["id"], 2);
        assert!(parse_answer("garbage").is_err());
    }
}
