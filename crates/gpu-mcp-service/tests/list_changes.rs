#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Resource list changes through the public session API: the capability per revision, and
//! `notifications/resources/list_changed` to initialized sessions, once per burst.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use gpu_mcp_protocol::mcp::{
    CompleteRequestParams, Completion, ReadResourceResult, Resource, ResourceTemplate,
};
use gpu_mcp_protocol::{CallToolResult, JsonObject, Message, Request, Tool};
use gpu_mcp_service::{
    CallContext, CallError, McpServer, RESOURCE_LIST_CHANGED_METHOD, RequestContext,
    ResourceCatalog, ResourceError, ServerInfo, Session, ToolCatalog,
};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A catalog with one template whose list changes when `generation` moves (or never, without
/// one).
struct Nodes {
    generation: Option<watch::Receiver<u64>>,
}

impl ToolCatalog for Nodes {
    fn tools(&self) -> Vec<Tool> {
        Vec::new()
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        _arguments: Option<JsonObject>,
        _ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        async move { Err(CallError::UnknownTool(name.to_owned())) }.boxed()
    }

    fn resource_catalog(&self) -> Option<&dyn ResourceCatalog> {
        Some(self)
    }
}

impl ResourceCatalog for Nodes {
    fn templates(&self) -> Vec<ResourceTemplate> {
        vec![ResourceTemplate {
            uri_template: "node://{name}".into(),
            name: "node".into(),
            title: None,
            description: None,
            mime_type: None,
        }]
    }

    fn resources(&self) -> BoxFuture<'_, Vec<Resource>> {
        async move { Vec::new() }.boxed()
    }

    fn resources_ttl_ms(&self) -> u64 {
        5_000
    }

    fn read<'a>(
        &'a self,
        uri: &'a str,
        _cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<ReadResourceResult, ResourceError>> {
        async move { Err(ResourceError::NotFound(format!("No node at {uri}."))) }.boxed()
    }

    fn complete<'a>(&'a self, _request: &'a CompleteRequestParams) -> BoxFuture<'a, Completion> {
        async move { Completion::matching(Vec::<String>::new(), "") }.boxed()
    }

    fn list_changes(&self) -> Option<watch::Receiver<u64>> {
        self.generation.clone()
    }
}

fn server(generation: Option<watch::Receiver<u64>>) -> McpServer {
    let info = ServerInfo {
        name: "t".into(),
        version: "1".into(),
        title: None,
        instructions: None,
    };
    McpServer::new(info, Arc::new(Nodes { generation }))
}

async fn request(session: &Session, method: &str, params: Value) -> Value {
    let message = Message::Request(Request::new(1, method, Some(params)));
    let response = session
        .handle(message, RequestContext::stdio())
        .await
        .expect("a response");
    assert!(response.error.is_none(), "{:?}", response.error);
    response.result_value().unwrap().into_owned()
}

async fn initialize(session: &Session) -> Value {
    let params = json!({
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "c", "version": "1"},
    });
    request(session, "initialize", params).await
}

#[tokio::test]
async fn list_changed_is_declared_in_handshake_revisions_only_when_the_list_changes() {
    let (_tx, rx) = watch::channel(0);
    let changing = server(Some(rx));
    let init = initialize(&changing.session()).await;
    assert_eq!(
        init["capabilities"]["resources"],
        json!({"subscribe": false, "listChanged": true})
    );
    let discover = request(&changing.session(), "server/discover", json!({})).await;
    assert_eq!(
        discover["capabilities"]["resources"],
        json!({"subscribe": false, "listChanged": false}),
        "2026-07-28 has no session stream to carry the notification"
    );

    let fixed = server(None);
    let init = initialize(&fixed.session()).await;
    assert_eq!(init["capabilities"]["resources"]["listChanged"], false);
    assert!(fixed.session().resource_list_changes().is_none());
}

#[tokio::test(start_paused = true)]
async fn initialized_sessions_get_one_notification_per_burst() {
    let (tx, rx) = watch::channel(0);
    let server = server(Some(rx));
    let session = server.session();
    let mut changes = session.resource_list_changes().expect("the list changes");
    let quiet = Duration::from_secs(10);

    tx.send_modify(|g| *g += 1);
    assert!(
        tokio::time::timeout(quiet, changes.next()).await.is_err(),
        "no notification before initialize"
    );

    initialize(&session).await;
    for _ in 0..50 {
        tx.send_modify(|g| *g += 1);
    }
    let notification = tokio::time::timeout(quiet, changes.next())
        .await
        .expect("a notification")
        .expect("the catalog is alive");
    let notification: Value = serde_json::from_slice(&notification).unwrap();
    assert_eq!(notification["method"], RESOURCE_LIST_CHANGED_METHOD);
    assert!(notification.get("id").is_none());
    assert!(
        tokio::time::timeout(quiet, changes.next()).await.is_err(),
        "a burst is announced once"
    );

    tx.send_modify(|g| *g += 1);
    assert!(tokio::time::timeout(quiet, changes.next()).await.is_ok());
    drop(tx);
    assert_eq!(changes.next().await, None, "the catalog can change no more");
}
