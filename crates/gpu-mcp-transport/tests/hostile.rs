//! Hostile clients on raw loopback sockets, table-driven: request smuggling and header abuse,
//! pipelining, `Expect`, authorization abuse, session-id abuse, HTTP/2 rapid reset and oversized
//! header blocks, stalled and garbled TLS handshakes, and stdio EPIPE. Each case asserts the answer (a
//! status, or that the connection is closed) and that a valid request right after, from the same
//! client, still succeeds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{TestCatalog, call};
use gpu_mcp_transport::{Health, HttpConfig, HttpServer, Metrics, StdioConfig, serve_stdio_with};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

struct Running {
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(mut config: HttpConfig) -> Running {
    config.listen = "127.0.0.1:0".parse().unwrap();
    let server = HttpServer::bind(
        config,
        common::server(Arc::new(TestCatalog::default())),
        Health::new(true),
        Metrics::new(),
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let shutdown = CancellationToken::new();
    tokio::spawn(server.serve(shutdown.clone()));
    Running { addr, shutdown }
}

/// Writes `bytes` (the server may close before all are taken) and reads until the server
/// closes, or for at most 20 s.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let _ = tcp.write_all(bytes).await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut reply)).await;
    reply
}

/// The status codes of the HTTP/1.1 responses in `reply`, in order.
fn statuses(reply: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(reply);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(at, _)| text.get(at + 9..at + 12)?.parse().ok())
        .collect()
}

fn post_head(extra: &str, body: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n{extra}\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn echo_body(id: i64) -> String {
    call(id, "echo", json!({"ok": true})).to_string()
}

/// A valid call on a fresh connection from the same client succeeds.
async fn still_serves(addr: SocketAddr, token: Option<&str>) {
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = post_head(&format!("{auth}connection: close\r\n"), &echo_body(77));
    let reply = exchange(addr, request.as_bytes()).await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(r#""ok":true"#), "{text}");
}

/// What a case must be answered with.
#[derive(Debug)]
enum Expect {
    /// These statuses, in order, then the connection closes.
    Statuses(&'static [u16]),
    /// One response with one of these statuses (what hyper picks among equally valid refusals).
    OneOf(&'static [u16]),
}

fn check(name: &str, reply: &[u8], expect: &Expect) {
    let got = statuses(reply);
    let ok = match expect {
        Expect::Statuses(want) => got == *want,
        Expect::OneOf(any) => got.len() == 1 && any.contains(&got[0]),
    };
    assert!(
        ok,
        "{name}: expected {expect:?}, got {got:?}: {}",
        String::from_utf8_lossy(&reply[..reply.len().min(600)])
    );
}

#[tokio::test]
async fn http1_header_abuse_is_refused_and_the_server_keeps_serving() {
    let s = start(HttpConfig::default()).await;
    let body = echo_body(1);
    let smuggled = format!(
        "{}GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n",
        "0\r\n\r\n"
    );
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "two different Content-Lengths",
            format!(
                "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\ncontent-length: 3\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
            Expect::Statuses(&[400]),
        ),
        (
            "Content-Length and Transfer-Encoding together (CL.TE smuggling)",
            format!(
                "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\ntransfer-encoding: chunked\r\n\r\n{smuggled}",
                smuggled.len()
            )
            .into_bytes(),
            Expect::OneOf(&[400]),
        ),
        (
            "a transfer coding other than chunked last",
            format!(
                "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                 transfer-encoding: chunked, identity\r\n\r\n{body}"
            )
            .into_bytes(),
            Expect::OneOf(&[400, 501]),
        ),
        (
            "a chunk size beyond any integer",
            b"POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
              transfer-encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nx\r\n0\r\n\r\n"
                .to_vec(),
            Expect::OneOf(&[400, 413]),
        ),
        (
            "a header block over the read buffer",
            format!(
                "POST /mcp HTTP/1.1\r\nhost: localhost\r\nx-pad: {}\r\n\r\n",
                "a".repeat(80 << 10)
            )
            .into_bytes(),
            Expect::OneOf(&[431, 400]),
        ),
        (
            "ten thousand headers",
            format!(
                "POST /mcp HTTP/1.1\r\nhost: localhost\r\n{}\r\n",
                "x-a: b\r\n".repeat(10_000)
            )
            .into_bytes(),
            Expect::OneOf(&[431, 400]),
        ),
        (
            "a NUL byte in a header value",
            post_head("x-evil: a\0b\r\n", &body).into_bytes(),
            Expect::Statuses(&[400]),
        ),
        (
            "an obsolete folded header line",
            post_head("x-folded: a\r\n  continued\r\n", &body).into_bytes(),
            Expect::Statuses(&[400]),
        ),
        (
            "a method that is not a token",
            b"P@ST /mcp HTTP/1.1\r\nhost: localhost\r\n\r\n".to_vec(),
            Expect::Statuses(&[400]),
        ),
        (
            "a request line that is not HTTP",
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03junk\r\n\r\n".to_vec(),
            Expect::OneOf(&[400]),
        ),
        (
            "a declared body over the limit with Expect: 100-continue is refused unread",
            b"POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
              expect: 100-continue\r\ncontent-length: 1000000000\r\nconnection: close\r\n\r\n"
                .to_vec(),
            Expect::Statuses(&[413]),
        ),
        (
            "Content-Type that only starts like JSON",
            format!(
                "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json-seq\r\n\
                 connection: close\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
            Expect::Statuses(&[415]),
        ),
        (
            "three pipelined requests are answered in order",
            [
                post_head("", &echo_body(1)),
                post_head("", "{not json"),
                post_head("connection: close\r\n", &echo_body(3)),
            ]
            .concat()
            .into_bytes(),
            Expect::Statuses(&[200, 400, 200]),
        ),
    ];
    for (name, request, expect) in &cases {
        let reply = exchange(s.addr, request).await;
        check(name, &reply, expect);
        still_serves(s.addr, None).await;
    }
    // Nothing smuggled reached a handler: the body after the chunked terminator was refused
    // with its request, not answered as a second one.
    let reply = exchange(s.addr, &cases[1].1).await;
    assert!(!String::from_utf8_lossy(&reply).contains("mcp_requests"));
}

#[tokio::test]
async fn authorization_and_session_id_abuse_is_refused() {
    let token = "0123456789abcdef0123456789abcdef";
    let s = start(HttpConfig {
        bearer_token: Some(token.into()),
        ..HttpConfig::default()
    })
    .await;
    let body = echo_body(1);
    let huge = "x".repeat(8 << 10);
    let cases: Vec<(&str, String, Expect)> = vec![
        ("no Authorization", String::new(), Expect::Statuses(&[401])),
        (
            "Basic credentials",
            "authorization: Basic dXNlcjpwYXNz\r\n".into(),
            Expect::Statuses(&[401]),
        ),
        (
            "Bearer with no token",
            "authorization: Bearer\r\n".into(),
            Expect::Statuses(&[401]),
        ),
        (
            "Bearer with a prefix of the token",
            format!("authorization: Bearer {}\r\n", &token[..16]),
            Expect::Statuses(&[401]),
        ),
        (
            "Bearer with the token and more",
            format!("authorization: Bearer {token}x\r\n"),
            Expect::Statuses(&[401]),
        ),
        (
            "an 8 KiB token",
            format!("authorization: Bearer {huge}\r\n"),
            Expect::Statuses(&[401]),
        ),
        (
            "the token twice in one header",
            format!("authorization: Bearer {token} {token}\r\n"),
            Expect::Statuses(&[401]),
        ),
        (
            "the right token, scheme in any case",
            format!("authorization: bEaReR {token}\r\n"),
            Expect::Statuses(&[200]),
        ),
        (
            "an 8 KiB session id that no session has",
            format!("authorization: Bearer {token}\r\nmcp-session-id: {huge}\r\n"),
            Expect::Statuses(&[404]),
        ),
        (
            "a session id with a blank inside",
            format!("authorization: Bearer {token}\r\nmcp-session-id: a b\r\n"),
            Expect::Statuses(&[400]),
        ),
        (
            "a session id with control bytes",
            format!("authorization: Bearer {token}\r\nmcp-session-id: a\x7fb\r\n"),
            Expect::Statuses(&[400]),
        ),
    ];
    for (name, headers, expect) in &cases {
        let request = post_head(&format!("{headers}connection: close\r\n"), &body);
        let reply = exchange(s.addr, request.as_bytes()).await;
        check(name, &reply, expect);
        still_serves(s.addr, Some(token)).await;
    }
    // Ending a session takes its id: a guessed one is 404, a missing one 400, and neither needs
    // less than the token.
    for (headers, want) in [
        (String::new(), 401u16),
        (format!("authorization: Bearer {token}\r\n"), 400),
        (
            format!("authorization: Bearer {token}\r\nmcp-session-id: guessed\r\n"),
            404,
        ),
    ] {
        let request = format!(
            "DELETE /mcp HTTP/1.1\r\nhost: localhost\r\n{headers}connection: close\r\n\r\n"
        );
        let reply = exchange(s.addr, request.as_bytes()).await;
        assert_eq!(statuses(&reply), [want], "{headers}");
    }
    still_serves(s.addr, Some(token)).await;
}

/// One HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_HEADERS: u8 = 0x4;

/// The header block of `POST /mcp` (HPACK: static-table names, literal values, no indexing),
/// with `extra` more literal header fields.
fn post_block(extra: &[(&str, &str)]) -> Vec<u8> {
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
    let literal = |block: &mut Vec<u8>, index: u8, value: &str| {
        block.push(index); // literal without indexing, indexed name (index < 15)
        block.push(u8::try_from(value.len()).unwrap());
        block.extend_from_slice(value.as_bytes());
    };
    literal(&mut block, 0x04, "/mcp"); // :path
    literal(&mut block, 0x01, "localhost"); // :authority
    for (name, value) in extra {
        block.push(0x00); // literal without indexing, new name
        block.push(u8::try_from(name.len()).unwrap());
        block.extend_from_slice(name.as_bytes());
        let len = value.len();
        if len < 127 {
            block.push(u8::try_from(len).unwrap());
        } else {
            // 7-bit prefix integer
            block.push(0x7f);
            let mut rest = len - 127;
            while rest >= 128 {
                block.push(u8::try_from(rest % 128).unwrap() | 0x80);
                rest /= 128;
            }
            block.push(u8::try_from(rest).unwrap());
        }
        block.extend_from_slice(value.as_bytes());
    }
    block
}

/// Sends an HTTP/2 connection preface and `frames`, then reads for at most 20 s; whether a
/// GOAWAY came back or the connection closed.
async fn h2_exchange(addr: SocketAddr, frames: &[u8]) -> (bool, bool) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out.extend_from_slice(frames);
    let _ = tcp.write_all(&out).await;
    let mut reply = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut reply))
        .await
        .is_ok();
    // Walk the frames the server sent.
    let mut goaway = false;
    let mut at = 0;
    while at + 9 <= reply.len() {
        let len = usize::from(reply[at]) << 16
            | usize::from(reply[at + 1]) << 8
            | usize::from(reply[at + 2]);
        goaway |= reply[at + 3] == GOAWAY;
        at += 9 + len;
    }
    (goaway, closed)
}

#[tokio::test]
async fn http2_rapid_reset_and_oversized_header_blocks_end_the_connection() {
    let s = start(HttpConfig::default()).await;
    // Rapid reset: thousands of streams opened and cancelled at once.
    let mut frames = Vec::new();
    for i in 0..5_000u32 {
        let stream = 2 * i + 1;
        frames.extend(frame(
            HEADERS,
            END_HEADERS,
            stream,
            &post_block(&[("content-type", "application/json")]),
        ));
        frames.extend(frame(RST_STREAM, 0, stream, &8u32.to_be_bytes()));
    }
    let (goaway, closed) = h2_exchange(s.addr, &frames).await;
    assert!(goaway && closed, "goaway {goaway}, closed {closed}");
    still_serves(s.addr, None).await;

    // A header block over the 16 KiB limit.
    let big = "v".repeat(20 << 10);
    let block = post_block(&[("x-big", &big)]);
    let frames = frame(HEADERS, END_HEADERS, 1, &block);
    let (goaway, closed) = h2_exchange(s.addr, &frames).await;
    assert!(goaway || closed, "goaway {goaway}, closed {closed}");
    still_serves(s.addr, None).await;
}

/// A valid call over TLS succeeds.
async fn still_serves_tls(addr: SocketAddr) {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};

    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(include_bytes!("fixtures/test-ca.pem")).unwrap())
        .unwrap();
    let client = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let request = post_head("connection: close\r\n", &echo_body(5));
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = tls.read_to_end(&mut reply).await;
    assert_eq!(
        statuses(&reply),
        [200],
        "{}",
        String::from_utf8_lossy(&reply)
    );
}

#[tokio::test]
async fn stalled_and_garbled_tls_handshakes_are_closed_and_tls_keeps_serving() {
    let s = start(HttpConfig {
        tls: Some(gpu_mcp_transport::TlsConfig::Pem {
            cert_chain: include_bytes!("fixtures/localhost.pem").to_vec(),
            private_key: include_bytes!("fixtures/localhost.key").to_vec(),
        }),
        header_read_timeout: Duration::from_secs(1),
        ..HttpConfig::default()
    })
    .await;
    for (name, bytes) in [
        (
            "a ClientHello cut short, then silence",
            b"\x16\x03\x01\x00\xa5\x01".to_vec(),
        ),
        (
            "a record header announcing 16 KiB that never come",
            b"\x16\x03\x01\x40\x00".to_vec(),
        ),
        ("TLS records of garbage", vec![0x16; 4096]),
        ("an SSLv2-style hello", b"\x80\x2e\x01\x00\x02".to_vec()),
    ] {
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        let _ = tcp.write_all(&bytes).await;
        let mut reply = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut reply))
            .await
            .is_ok();
        assert!(closed, "{name}: the server kept the connection");
        assert!(statuses(&reply).is_empty(), "{name}: an HTTP answer on TLS");
        still_serves_tls(s.addr).await;
    }
}

#[tokio::test]
async fn stdio_survives_a_client_that_closed_its_end() {
    // The client writes requests and then closes the pipe it should read replies from (EPIPE).
    let catalog = Arc::new(TestCatalog::default());
    let server = common::server(catalog);
    let (client_in, server_in) = tokio::io::duplex(64 << 10);
    let (server_out, client_out) = tokio::io::duplex(64);
    drop(client_out);
    let task = tokio::spawn(serve_stdio_with(
        StdioConfig::default(),
        server,
        server_in,
        server_out,
        CancellationToken::new(),
    ));
    let mut client_in = client_in;
    for id in 0..50 {
        let mut line = call(id, "echo", json!({"pad": "x".repeat(256)})).to_string();
        line.push('\n');
        if client_in.write_all(line.as_bytes()).await.is_err() {
            break;
        }
    }
    drop(client_in);
    let ended = tokio::time::timeout(Duration::from_secs(30), task).await;
    let result = ended.expect("stdio ends once its client is gone").unwrap();
    // Ending with an error or cleanly are both answers; hanging or panicking are not.
    let _ = result;
}
