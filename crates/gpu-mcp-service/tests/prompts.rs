#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Prompts and completion through the public session API: `prompts/list` (paginated, shaped per
//! revision, with 2026-07-28 cache hints), `prompts/get`, `completion/complete`, and the
//! capabilities that announce them.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use gpu_mcp_protocol::mcp::{
    CompleteRequestParams, Completion, CompletionReference, GetPromptResult, Prompt,
    PromptArgument, PromptMessage, Role,
};
use gpu_mcp_protocol::{CallToolResult, Content, JsonObject, Message, Request, Response, Tool};
use gpu_mcp_service::{
    CallContext, CallError, McpServer, PromptCatalog, PromptError, RequestContext, ServerInfo,
    SessionPolicy, ToolCatalog,
};
use serde_json::{Value, json};

/// A catalog with two prompts, completing the `host` argument of `check` from a fixed list.
struct PromptCatalogue;

fn prompt(name: &str) -> Prompt {
    Prompt {
        name: name.into(),
        title: Some(format!("Title of {name}")),
        description: Some("d".into()),
        arguments: vec![PromptArgument {
            name: "host".into(),
            title: Some("Host".into()),
            description: None,
            required: Some(true),
        }],
    }
}

impl ToolCatalog for PromptCatalogue {
    fn tools(&self) -> Vec<Tool> {
        Vec::new()
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        _arguments: Option<JsonObject>,
        _ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move { Err(CallError::UnknownTool(name.to_owned())) })
    }

    fn prompt_catalog(&self) -> Option<&dyn PromptCatalog> {
        Some(self)
    }
}

impl PromptCatalog for PromptCatalogue {
    fn prompts(&self) -> Vec<Prompt> {
        vec![prompt("check"), prompt("other")]
    }

    fn get_prompt(
        &self,
        name: &str,
        arguments: &BTreeMap<String, String>,
    ) -> Result<GetPromptResult, PromptError> {
        if name != "check" && name != "other" {
            return Err(PromptError::UnknownPrompt(name.into()));
        }
        let host = arguments
            .get("host")
            .ok_or_else(|| PromptError::InvalidArguments("needs `host`".into()))?;
        Ok(GetPromptResult {
            description: None,
            messages: vec![PromptMessage {
                role: Role::User,
                content: Content::text(format!("Check {host}.")),
            }],
            meta: None,
        })
    }

    fn complete<'a>(&'a self, request: &'a CompleteRequestParams) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            match &request.reference {
                CompletionReference::Prompt { .. } if request.argument.name == "host" => {
                    Completion::matching(["alpha", "beta", "alpine"], &request.argument.value)
                }
                _ => Completion::default(),
            }
        })
    }
}

struct NoPrompts;

impl ToolCatalog for NoPrompts {
    fn tools(&self) -> Vec<Tool> {
        Vec::new()
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        _arguments: Option<JsonObject>,
        _ctx: CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move { Err(CallError::UnknownTool(name.to_owned())) })
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

fn server(policy: SessionPolicy) -> McpServer {
    McpServer::with_policy(info(), Arc::new(PromptCatalogue), policy)
}

async fn call(server: &McpServer, method: &str, params: Value) -> Response {
    let message = Message::Request(Request::new(1, method, Some(params)));
    let bytes = gpu_mcp_protocol::encode(&message);
    let message = gpu_mcp_protocol::parse_message(&bytes).expect("valid request");
    server
        .session()
        .handle(message, RequestContext::stdio())
        .await
        .expect("a response")
}

fn result(r: &Response) -> Value {
    assert!(r.error.is_none(), "unexpected error {:?}", r.error);
    serde_json::to_value(r.result.as_ref()).unwrap()
}

fn error(r: &Response) -> (i64, String) {
    let e = r.error.as_ref().expect("an error");
    (e.code, e.message.clone())
}

fn envelope() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

#[tokio::test]
async fn capabilities_announce_prompts_and_completions_only_where_they_exist() {
    let s = server(SessionPolicy::default());
    let r = result(&call(&s, "server/discover", json!({})).await);
    assert_eq!(r["capabilities"]["prompts"], json!({"listChanged": false}));
    assert_eq!(r["capabilities"]["completions"], json!({}));

    let none = McpServer::new(info(), Arc::new(NoPrompts));
    let r = result(&call(&none, "server/discover", json!({})).await);
    assert!(r["capabilities"].get("prompts").is_none(), "{r}");
    assert!(r["capabilities"].get("completions").is_none(), "{r}");
    for method in ["prompts/list", "prompts/get", "completion/complete"] {
        let r = call(&none, method, json!({"name": "check"})).await;
        assert_eq!(error(&r).0, -32601, "{method}");
    }
}

#[tokio::test]
async fn prompts_list_pages_and_carries_2026_cache_hints() {
    let s = server(SessionPolicy {
        page_size: 1,
        ..SessionPolicy::default()
    });
    let first = result(&call(&s, "prompts/list", json!({"_meta": envelope()})).await);
    assert_eq!(first["prompts"][0]["name"], "check");
    assert_eq!(first["resultType"], "complete");
    assert_eq!(first["ttlMs"], 3_600_000);
    assert_eq!(first["cacheScope"], "public");
    let cursor = first["nextCursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let second = result(&call(&s, "prompts/list", json!({"cursor": cursor})).await);
    assert_eq!(second["prompts"][0]["name"], "other");
    assert!(second.get("nextCursor").is_none());
    // Handshake revisions carry no cache hints.
    assert!(second.get("ttlMs").is_none() && second.get("cacheScope").is_none());
    let bad = call(&s, "prompts/list", json!({"cursor": "elsewhere"})).await;
    assert_eq!(error(&bad).0, -32602);
}

#[tokio::test]
async fn prompt_titles_follow_the_revision() {
    let s = server(SessionPolicy::default());
    let session = s.session();
    let init = Message::Request(Request::new(
        0,
        "initialize",
        Some(json!({"protocolVersion": "2025-03-26", "capabilities": {},
                    "clientInfo": {"name": "c", "version": "0"}})),
    ));
    session
        .handle(init, RequestContext::stdio())
        .await
        .expect("initialized");
    let list = Message::Request(Request::new(1, "prompts/list", None));
    let r = session
        .handle(list, RequestContext::stdio())
        .await
        .expect("a response");
    let r = result(&r);
    assert!(r["prompts"][0].get("title").is_none(), "{r}");
    assert!(
        r["prompts"][0]["arguments"][0].get("title").is_none(),
        "{r}"
    );
    let modern = result(&call(&s, "prompts/list", json!({})).await);
    assert_eq!(modern["prompts"][0]["title"], "Title of check");
}

#[tokio::test]
async fn prompts_get_fills_the_template_or_names_the_problem() {
    let s = server(SessionPolicy::default());
    let r = result(
        &call(
            &s,
            "prompts/get",
            json!({"name": "check", "arguments": {"host": "alpha"}, "_meta": envelope()}),
        )
        .await,
    );
    assert_eq!(
        r["messages"],
        json!([{"role": "user", "content": {"type": "text", "text": "Check alpha."}}])
    );
    assert_eq!(r["resultType"], "complete");

    let missing = call(&s, "prompts/get", json!({"name": "check"})).await;
    assert_eq!(error(&missing), (-32602, "needs `host`".into()));
    let unknown = call(&s, "prompts/get", json!({"name": "nope"})).await;
    assert_eq!(error(&unknown), (-32602, "Unknown prompt: nope".into()));
    let not_strings = call(
        &s,
        "prompts/get",
        json!({"name": "check", "arguments": {"host": 1}}),
    )
    .await;
    assert_eq!(error(&not_strings).0, -32602);
}

#[tokio::test]
async fn completion_filters_by_prefix_and_checks_the_reference() {
    let s = server(SessionPolicy::default());
    let r = result(
        &call(
            &s,
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "check"},
                   "argument": {"name": "host", "value": "al"}, "_meta": envelope()}),
        )
        .await,
    );
    assert_eq!(
        r["completion"],
        json!({"values": ["alpha", "alpine"], "total": 2, "hasMore": false})
    );
    assert_eq!(r["resultType"], "complete");
    // Completion results carry no cache hints: what they list changes.
    assert!(r.get("ttlMs").is_none());

    let unknown = call(
        &s,
        "completion/complete",
        json!({"ref": {"type": "ref/prompt", "name": "nope"},
               "argument": {"name": "host", "value": ""}}),
    )
    .await;
    assert_eq!(error(&unknown).0, -32602);
    let malformed = call(
        &s,
        "completion/complete",
        json!({"ref": {"type": "ref/prompt"}, "argument": {"name": "host"}}),
    )
    .await;
    assert_eq!(error(&malformed).0, -32602);
    // A catalog without resources has no template to complete.
    let template = call(
        &s,
        "completion/complete",
        json!({"ref": {"type": "ref/resource", "uri": "x://{a}"},
               "argument": {"name": "a", "value": ""}}),
    )
    .await;
    assert_eq!(error(&template).0, -32602);
}
