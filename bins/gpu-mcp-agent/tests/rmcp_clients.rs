//! The built agent driven by an independent MCP client implementation (the `rmcp` crate) over
//! stdio and Streamable HTTP, for every protocol revision the agent supports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RoleClient, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::json;

const HANDSHAKE_VERSIONS: [ProtocolVersion; 4] = [
    ProtocolVersion::V_2024_11_05,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
];

type Client = RunningService<RoleClient, ClientConfig>;

/// Lists the tools, calls each GPU tool and checks the failure paths, all through rmcp.
/// `structured`: the revision has `structuredContent` (2025-06-18 and later).
async fn exercise(client: &Client, label: &str, structured: bool) {
    let tools = client
        .list_all_tools()
        .await
        .unwrap_or_else(|e| panic!("{label}: tools/list: {e}"));
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in [
        "get_gpu_inventory",
        "get_gpu_health",
        "analyze_xid_errors",
        "get_gpu_processes",
        "get_nvlink_topology",
    ] {
        assert!(
            names.contains(&expected),
            "{label}: {expected} missing from {names:?}"
        );
    }
    for tool in [
        "get_gpu_inventory",
        "get_gpu_health",
        "analyze_xid_errors",
        "get_gpu_processes",
        "get_nvlink_topology",
    ] {
        let result = client
            .call_tool(CallToolRequestParams::new(tool))
            .await
            .unwrap_or_else(|e| panic!("{label}: {tool}: {e}"));
        assert_ne!(
            result.is_error,
            Some(true),
            "{label}: {tool} failed: {result:?}"
        );
        assert_eq!(
            result.structured_content.is_some(),
            structured,
            "{label}: {tool} structuredContent"
        );
        assert!(
            !result.content.is_empty(),
            "{label}: {tool} has no text block"
        );
    }
    // Wrong argument type and an unknown tool: an error the client sees, and the server goes on.
    let bad = client
        .call_tool(
            CallToolRequestParams::new("get_gpu_health").with_arguments(
                json!({"gpu_index": "not a number"})
                    .as_object()
                    .cloned()
                    .unwrap(),
            ),
        )
        .await;
    assert!(
        matches!(&bad, Ok(r) if r.is_error == Some(true)) || bad.is_err(),
        "{label}: {bad:?}"
    );
    let extra = client
        .call_tool(
            CallToolRequestParams::new("get_gpu_inventory").with_arguments(
                json!({"unexpected_argument": true})
                    .as_object()
                    .cloned()
                    .unwrap(),
            ),
        )
        .await;
    assert!(
        matches!(&extra, Ok(r) if r.is_error == Some(true)) || extra.is_err(),
        "{label}: {extra:?}"
    );
    let unknown = client
        .call_tool(CallToolRequestParams::new("no_such_tool"))
        .await;
    assert!(
        matches!(&unknown, Ok(r) if r.is_error == Some(true)) || unknown.is_err(),
        "{label}: {unknown:?}"
    );
    let again = client
        .call_tool(CallToolRequestParams::new("get_gpu_health"))
        .await
        .unwrap();
    assert_ne!(again.is_error, Some(true), "{label}");
}

fn has_structured(version: &ProtocolVersion) -> bool {
    ![ProtocolVersion::V_2024_11_05, ProtocolVersion::V_2025_03_26].contains(version)
}

fn negotiated(client: &Client) -> Option<String> {
    client.peer_info().map(|p| p.protocol_version.to_string())
}

#[tokio::test]
async fn stdio_every_handshake_version() {
    for version in HANDSHAKE_VERSIONS {
        let cmd = common::agent(&["--log-level", "warn"]);
        let transport = TokioChildProcess::new(cmd).unwrap();
        let client = ClientConfig::default()
            .with_protocol_version(version.clone())
            .serve(transport)
            .await
            .unwrap_or_else(|e| panic!("stdio {version}: initialize: {e}"));
        assert_eq!(
            negotiated(&client).as_deref(),
            Some(version.as_str()),
            "stdio"
        );
        exercise(
            &client,
            &format!("stdio {version}"),
            has_structured(&version),
        )
        .await;
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn stdio_default_client_gets_our_latest_handshake_version() {
    // rmcp's default asks for a version newer than any handshake revision.
    let transport = TokioChildProcess::new(common::agent(&["--log-level", "warn"])).unwrap();
    let client = ().serve(transport).await.unwrap();
    assert_eq!(
        client.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2025_11_25
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn stdio_stateless_2026_07_28() {
    let transport = TokioChildProcess::new(common::agent(&["--log-level", "warn"])).unwrap();
    let client = ClientConfig::default()
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap_or_else(|e| panic!("stdio 2026-07-28: discover: {e}"));
    assert_eq!(
        negotiated(&client).as_deref(),
        Some("2026-07-28"),
        "stdio discover"
    );
    exercise(&client, "stdio 2026-07-28", true).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn http_every_version() {
    let agent = common::HttpAgent::start(&[]).await;
    for version in HANDSHAKE_VERSIONS {
        let transport = {
            install_crypto();
            StreamableHttpClientTransport::from_uri(agent.url())
        };
        let client = ClientConfig::default()
            .with_protocol_version(version.clone())
            .serve(transport)
            .await
            .unwrap_or_else(|e| panic!("http {version}: initialize: {e}"));
        assert_eq!(
            negotiated(&client).as_deref(),
            Some(version.as_str()),
            "http"
        );
        exercise(
            &client,
            &format!("http {version}"),
            has_structured(&version),
        )
        .await;
        client.cancel().await.unwrap();
    }
    let transport = {
        install_crypto();
        StreamableHttpClientTransport::from_uri(agent.url())
    };
    let client = ClientConfig::default()
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap_or_else(|e| panic!("http 2026-07-28: discover: {e}"));
    assert_eq!(
        negotiated(&client).as_deref(),
        Some("2026-07-28"),
        "http discover"
    );
    exercise(&client, "http 2026-07-28", true).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn http_with_required_sessions() {
    let agent = common::HttpAgent::start(&["--http-sessions", "required"]).await;
    let transport = {
        install_crypto();
        StreamableHttpClientTransport::from_uri(agent.url())
    };
    let client = ClientConfig::default()
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
        .serve(transport)
        .await
        .unwrap();
    exercise(&client, "http required sessions", true).await;
    client.cancel().await.unwrap();
}

/// The rmcp HTTP client builds a TLS stack even for `http://` URLs; the workspace carries one
/// crypto provider (ring), installed here once.
fn install_crypto() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
}
