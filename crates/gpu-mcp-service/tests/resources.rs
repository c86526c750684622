#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Resources through the public session API: the capability, `resources/list` (paged, with the
//! catalog's 2026-07-28 cache hints), `resources/templates/list`, `resources/read` (its
//! not-found error and cancellation), completion of template variables, and `resource_link`
//! blocks in tool results per revision.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use gpu_mcp_protocol::mcp::{
    CompleteRequestParams, Completion, ReadResourceResult, Resource, ResourceTemplate,
    TextResourceContents,
};
use gpu_mcp_protocol::{
    CallToolResult, Content, JsonObject, Message, Notification, Request, Response, Tool,
};
use gpu_mcp_service::{
    CallContext, CallError, McpServer, RequestContext, ResourceCatalog, ResourceError, ServerInfo,
    SessionPolicy, ToolCatalog,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A catalog with one template, `box://{name}`, over the boxes `a0` .. `a{n-1}`; `box://slow`
/// never answers, and a tool `link` answers with a `resource_link` to `box://a0`.
struct Boxes(usize);

impl ToolCatalog for Boxes {
    fn tools(&self) -> Vec<Tool> {
        vec![gpu_mcp_service::tool_definition::<Empty, Empty>(
            "link", "Link", "links",
        )]
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        _arguments: Option<JsonObject>,
        _ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        async move {
            if name != "link" {
                return Err(CallError::UnknownTool(name.to_owned()));
            }
            let mut result = CallToolResult::text("see the box");
            result.content.push(Content::resource_link(&boxed(0)));
            Ok(result)
        }
        .boxed()
    }

    fn resource_catalog(&self) -> Option<&dyn ResourceCatalog> {
        Some(self)
    }
}

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Empty {}

fn boxed(i: usize) -> Resource {
    Resource {
        uri: format!("box://a{i}"),
        name: format!("a{i}"),
        title: Some(format!("Box a{i}")),
        description: None,
        mime_type: Some("text/plain".into()),
    }
}

impl ResourceCatalog for Boxes {
    fn templates(&self) -> Vec<ResourceTemplate> {
        vec![ResourceTemplate {
            uri_template: "box://{name}".into(),
            name: "box".into(),
            title: Some("A box".into()),
            description: None,
            mime_type: Some("text/plain".into()),
        }]
    }

    fn resources(&self) -> BoxFuture<'_, Vec<Resource>> {
        async move { (0..self.0).map(boxed).collect() }.boxed()
    }

    fn resources_ttl_ms(&self) -> u64 {
        5_000
    }

    fn read<'a>(
        &'a self,
        uri: &'a str,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<ReadResourceResult, ResourceError>> {
        async move {
            if uri == "box://slow" {
                cancel.cancelled().await;
                return Err(ResourceError::Unavailable("cancelled".into()));
            }
            if uri == "box://broken" {
                return Err(ResourceError::Unavailable("the box is stuck".into()));
            }
            let known = (0..self.0).any(|i| uri == format!("box://a{i}"));
            if !known {
                return Err(ResourceError::NotFound(format!("No box at {uri}.")));
            }
            Ok(ReadResourceResult {
                contents: vec![TextResourceContents {
                    uri: uri.to_owned(),
                    mime_type: Some("text/plain".into()),
                    text: format!("inside {uri}"),
                }],
                ttl_ms: None,
                cache_scope: None,
                meta: None,
            })
        }
        .boxed()
    }

    fn complete<'a>(&'a self, request: &'a CompleteRequestParams) -> BoxFuture<'a, Completion> {
        async move {
            Completion::matching(
                (0..self.0).map(|i| format!("a{i}")),
                &request.argument.value,
            )
        }
        .boxed()
    }
}

fn info() -> ServerInfo {
    ServerInfo {
        name: "t".into(),
        version: "1".into(),
        title: None,
        instructions: None,
    }
}

async fn call(server: &McpServer, method: &str, params: Value) -> Response {
    let message = Message::Request(Request::new(1, method, Some(params)));
    server
        .session()
        .handle(message, RequestContext::stdio())
        .await
        .expect("a response")
}

fn result(r: &Response) -> Value {
    assert!(r.error.is_none(), "unexpected error {:?}", r.error);
    r.result_value().unwrap().into_owned()
}

fn envelope() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

#[tokio::test]
async fn the_capability_is_announced_only_where_there_are_templates() {
    let s = McpServer::new(info(), Arc::new(Boxes(3)));
    let r = result(&call(&s, "server/discover", json!({})).await);
    assert_eq!(
        r["capabilities"]["resources"],
        json!({"subscribe": false, "listChanged": false})
    );
    assert_eq!(r["capabilities"]["completions"], json!({}));
    let init = result(
        &call(
            &s,
            "initialize",
            json!({"protocolVersion": "2024-11-05", "capabilities": {}}),
        )
        .await,
    );
    assert!(init["capabilities"]["resources"].is_object(), "{init}");

    struct Bare;
    impl ToolCatalog for Bare {
        fn tools(&self) -> Vec<Tool> {
            Vec::new()
        }
        fn call<'a>(
            &'a self,
            name: &'a str,
            _: Option<JsonObject>,
            _: CallContext,
        ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
            async move { Err(CallError::UnknownTool(name.to_owned())) }.boxed()
        }
    }
    let none = McpServer::new(info(), Arc::new(Bare));
    let r = result(&call(&none, "server/discover", json!({})).await);
    assert!(r["capabilities"].get("resources").is_none(), "{r}");
    for method in [
        "resources/list",
        "resources/templates/list",
        "resources/read",
    ] {
        let r = call(&none, method, json!({"uri": "box://a0"})).await;
        assert_eq!(r.error.unwrap().code, -32601, "{method}");
    }
}

#[tokio::test]
async fn resources_list_pages_with_the_catalogs_cache_hints() {
    let s = McpServer::with_policy(
        info(),
        Arc::new(Boxes(250)),
        SessionPolicy {
            page_size: 1000,
            ..SessionPolicy::default()
        },
    );
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = json!({"_meta": envelope()});
        if let Some(c) = &cursor {
            params["cursor"] = json!(c);
        }
        let page = result(&call(&s, "resources/list", params).await);
        pages += 1;
        assert_eq!(
            page["ttlMs"], 5_000,
            "the catalog's lifetime, not the tools'"
        );
        assert_eq!(page["cacheScope"], "public");
        let listed = page["resources"].as_array().unwrap();
        assert!(listed.len() <= 100, "a page is bounded");
        seen.extend(listed.iter().map(|r| r["uri"].as_str().unwrap().to_owned()));
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..250).map(|i| format!("box://a{i}")).collect();
    assert_eq!(seen, expected, "every resource exactly once, in order");
    let old = result(&call(&s, "resources/list", json!({})).await);
    assert!(old.get("ttlMs").is_none());
    let bad = call(&s, "resources/list", json!({"cursor": "nope"})).await;
    assert_eq!(bad.error.unwrap().code, -32602);
}

#[tokio::test]
async fn templates_list_is_shaped_per_revision() {
    let s = McpServer::new(info(), Arc::new(Boxes(1)));
    let new = result(&call(&s, "resources/templates/list", json!({"_meta": envelope()})).await);
    assert_eq!(new["resourceTemplates"][0]["uriTemplate"], "box://{name}");
    assert_eq!(new["resourceTemplates"][0]["title"], "A box");
    assert_eq!(new["ttlMs"], 3_600_000);
    let session = s.session();
    let init = Message::Request(Request::new(
        0,
        "initialize",
        Some(json!({"protocolVersion": "2025-03-26", "capabilities": {}})),
    ));
    session.handle(init, RequestContext::stdio()).await.unwrap();
    let list = Message::Request(Request::new(1, "resources/templates/list", None));
    let old = session.handle(list, RequestContext::stdio()).await.unwrap();
    let old = result(&old);
    assert!(old["resourceTemplates"][0].get("title").is_none(), "{old}");
}

#[tokio::test]
async fn read_answers_contents_or_a_clean_error() {
    let s = McpServer::new(info(), Arc::new(Boxes(2)));
    let r = result(&call(&s, "resources/read", json!({"uri": "box://a1"})).await);
    assert_eq!(
        r["contents"],
        json!([{"uri": "box://a1", "mimeType": "text/plain", "text": "inside box://a1"}])
    );
    assert!(r.get("ttlMs").is_none(), "no cache hints before 2026-07-28");
    let fresh = result(
        &call(
            &s,
            "resources/read",
            json!({"uri": "box://a1", "_meta": envelope()}),
        )
        .await,
    );
    assert_eq!(
        (&fresh["ttlMs"], &fresh["cacheScope"]),
        (&json!(0), &json!("public"))
    );
    assert_eq!(fresh["resultType"], "complete");
    let missing = call(&s, "resources/read", json!({"uri": "box://a9"})).await;
    let e = missing.error.unwrap();
    assert_eq!(e.code, -32002);
    assert_eq!(e.data, Some(json!({"uri": "box://a9"})));
    assert!(e.message.contains("box://a9"), "{}", e.message);
    // SEP-2164: from 2026-07-28 the same resource is invalid params, with the same data.
    let missing = call(
        &s,
        "resources/read",
        json!({"uri": "box://a9", "_meta": envelope()}),
    )
    .await;
    let e = missing.error.unwrap();
    assert_eq!(e.code, -32602);
    assert_eq!(e.data, Some(json!({"uri": "box://a9"})));
    let broken = call(&s, "resources/read", json!({"uri": "box://broken"})).await;
    assert_eq!(broken.error.unwrap().code, -32603);
    let no_uri = call(&s, "resources/read", json!({})).await;
    assert_eq!(no_uri.error.unwrap().code, -32602);
}

#[tokio::test]
async fn a_cancelled_read_gets_no_response() {
    let s = McpServer::new(info(), Arc::new(Boxes(1)));
    let session = s.session();
    let read = Message::Request(Request::new(
        7,
        "resources/read",
        Some(json!({"uri": "box://slow"})),
    ));
    let reading = {
        let session = session.clone();
        tokio::spawn(async move { session.handle(read, RequestContext::stdio()).await })
    };
    while session.in_flight() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cancel = Message::Notification(Notification::new(
        "notifications/cancelled",
        Some(json!({"requestId": 7})),
    ));
    assert!(
        session
            .handle(cancel, RequestContext::stdio())
            .await
            .is_none()
    );
    assert!(reading.await.unwrap().is_none());
}

#[tokio::test]
async fn template_variables_complete_and_unknown_templates_are_refused() {
    let s = McpServer::new(info(), Arc::new(Boxes(12)));
    let r = result(
        &call(
            &s,
            "completion/complete",
            json!({"ref": {"type": "ref/resource", "uri": "box://{name}"},
                   "argument": {"name": "name", "value": "a1"}}),
        )
        .await,
    );
    assert_eq!(r["completion"]["values"], json!(["a1", "a10", "a11"]));
    let unknown = call(
        &s,
        "completion/complete",
        json!({"ref": {"type": "ref/resource", "uri": "other://{x}"},
               "argument": {"name": "x", "value": ""}}),
    )
    .await;
    assert_eq!(unknown.error.unwrap().code, -32602);
    // No prompts here: a prompt reference is an unknown prompt.
    let prompt = call(
        &s,
        "completion/complete",
        json!({"ref": {"type": "ref/prompt", "name": "p"}, "argument": {"name": "x", "value": ""}}),
    )
    .await;
    assert_eq!(prompt.error.unwrap().code, -32602);
}

#[tokio::test]
async fn resource_links_reach_new_revisions_and_are_words_for_old_ones() {
    let s = McpServer::new(info(), Arc::new(Boxes(1)));
    let new = result(&call(&s, "tools/call", json!({"name": "link"})).await);
    assert_eq!(new["content"][1]["type"], "resource_link");
    assert_eq!(new["content"][1]["uri"], "box://a0");
    let session = s.session();
    let init = Message::Request(Request::new(
        0,
        "initialize",
        Some(json!({"protocolVersion": "2025-03-26", "capabilities": {}})),
    ));
    session.handle(init, RequestContext::stdio()).await.unwrap();
    let call = Message::Request(Request::new(1, "tools/call", Some(json!({"name": "link"}))));
    let old = result(&session.handle(call, RequestContext::stdio()).await.unwrap());
    assert_eq!(old["content"][1]["type"], "text");
    assert!(
        old["content"][1]["text"]
            .as_str()
            .unwrap()
            .contains("box://a0")
    );
}
