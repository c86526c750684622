//! The node transports' readers of what an agent sent, over any bytes, and what each must make
//! of them. Shared by the property tests (`tests/node_output.rs`, in CI) and the `node_output`
//! fuzz target (`fuzz/fuzz_targets/node_output.rs`), which both include this file.
//!
//! The bytes, after two bytes choosing how the exec reader's input is cut into reads and its
//! size limit: an exec'd agent's standard output ([`read_response`]), an HTTP JSON body and an
//! event-stream body ([`response_from_body`]).
//! What must hold: no panic; a response found is the one to the request's id; the exec reader
//! says "too large" only past its limit, finds a response line that stands alone within it, and
//! keeps at most a bounded snippet of garbage; the HTTP reader accepts a JSON body exactly when
//! it is the JSON-RPC response to the request; every error's message has no control character.

#![allow(dead_code)]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use gpu_mcp_k8s::NodeError;
use gpu_mcp_k8s::transport::exec::{StdoutOutcome, read_response};
use gpu_mcp_k8s::transport::http::response_from_body;
use gpu_mcp_protocol::{Message, RequestId, Response, parse_message};
use tokio::io::{AsyncRead, ReadBuf};

/// The id of the request being answered.
pub(crate) const ID: i64 = 5;
/// A response to it, as an agent writes it.
pub(crate) const RESPONSE_LINE: &[u8] =
    b"{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"content\":[]}}";
/// The longest garbage snippet the exec reader keeps (its snippet bound plus the cut mark).
const SNIPPET_BYTES: usize = 512 + '…'.len_utf8();

/// A reader that hands out `data` a few bytes at a time.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.step.min(self.data.len()).min(buf.remaining());
        let (now, later) = self.data.split_at(n);
        buf.put_slice(now);
        self.data = later;
        Poll::Ready(Ok(()))
    }
}

fn assert_clean(what: &str, error: &NodeError) {
    let message = error.to_string();
    assert!(
        !message.chars().any(char::is_control),
        "{what}: a control character in {message:?}"
    );
}

fn assert_answers(what: &str, response: &Response) {
    assert_eq!(
        response.id,
        Some(RequestId::Number(ID)),
        "{what}: {response:?}"
    );
}

/// Whether `data` holds [`RESPONSE_LINE`] as a line of its own.
fn has_response_line(data: &[u8]) -> bool {
    data.split(|b| *b == b'\n')
        .any(|line| line.trim_ascii() == RESPONSE_LINE)
}

/// Runs every reader over `input` and checks what each made of it.
pub(crate) async fn check_output(input: &[u8]) {
    let (step, limit, data) = match input {
        [a, b, rest @ ..] => (1 + usize::from(*a), usize::from(*b) * 64, rest),
        _ => (1, 0, input),
    };
    let limit = if limit == 0 { 1 << 20 } else { limit };
    let id = RequestId::Number(ID);

    let reader = Trickle { data, step };
    match read_response(reader, &id, limit).await {
        StdoutOutcome::Response(response) => assert_answers("exec", &response),
        StdoutOutcome::TooLarge => assert!(data.len() > limit, "exec: too large within {limit}"),
        StdoutOutcome::Eof { garbage } => {
            assert!(
                !(data.len() <= limit && has_response_line(data)),
                "exec: the response line was not found"
            );
            if let Some(g) = garbage {
                assert!(
                    g.len() <= SNIPPET_BYTES,
                    "exec: {} bytes of garbage kept",
                    g.len()
                );
            }
        }
    }

    match response_from_body(data, false, &id) {
        Ok(response) => assert_answers("http", &response),
        Err(e) => {
            assert_clean("http", &e);
            let decoded = parse_message(data);
            assert!(
                !matches!(&decoded, Ok(Message::Response(r)) if r.id == Some(id.clone())),
                "http: refused the response {decoded:?}: {e}"
            );
        }
    }

    match response_from_body(data, true, &id) {
        Ok(response) => assert_answers("event stream", &response),
        Err(e) => assert_clean("event stream", &e),
    }
}
