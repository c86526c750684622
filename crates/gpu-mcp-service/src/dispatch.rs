//! Dispatch: one request to its handler (`initialize`, `ping`, `server/discover`, `tools/list`,
//! `tools/call`, `logging/setLevel`, `prompts/list`, `prompts/get`, `completion/complete`,
//! `resources/list`, `resources/templates/list`, `resources/read`), and the handlers that are
//! not lifecycle.

use std::pin::pin;

use futures::future::{Either, select};
use gpu_mcp_protocol::mcp::{ListToolsResult, LoggingLevel, methods};
use gpu_mcp_protocol::{ErrorObject, JsonObject, Request, RequestId, Response};
use serde_json::Value;

use crate::catalog::{CallContext, CallError, ToolAnswer};
use crate::exchange::RequestContext;
use crate::headers::check_headers;
use crate::lifecycle::Served;
use crate::logging::request_log_level;
use crate::paging::{cursor, list_page, page};
use crate::progress::Progress;
use crate::session::{Answer, Session};
use crate::shaping::{shape_call_result, shape_tools, takes_results_unchanged};

const CURSOR_PREFIX: &str = "tools:";

impl Session {
    /// `None`: the request was a call cancelled by the client, which gets no response.
    pub(crate) async fn handle_request(
        &self,
        req: Request,
        ctx: &RequestContext,
    ) -> Option<Answer> {
        let Request {
            id, method, params, ..
        } = req;
        let error = |e: ErrorObject| Some(Answer::of(Response::error(Some(id.clone()), e)));

        if let Some(headers) = &ctx.http
            && let Err(e) = check_headers(headers, &method, params.as_ref())
        {
            return error(e);
        }
        if params.as_ref().is_some_and(|p| !p.is_object()) {
            return error(ErrorObject::invalid_params("`params` must be an object"));
        }
        let served = match self.serving(&method, params.as_ref(), ctx) {
            Ok(served) => served,
            Err(e) => return error(e),
        };
        // A 2026-07-28 request asks for its log messages in its own `_meta`.
        let log_level = if served.stateless && served.version.supports_request_log_level() {
            match request_log_level(params.as_ref()) {
                Ok(level) => level,
                Err(e) => return error(e),
            }
        } else {
            None
        };
        // Pinned where it is made: the handler's state is not moved (nor held twice).
        let run = pin!(self.run_method(id, method, params, served, ctx));
        match (log_level, &ctx.notifications) {
            (Some(level), Some(tx)) => self.request_log(level, tx.clone()).around(run).await,
            _ => run.await,
        }
    }

    /// Runs the handler of a request that passed the header, params and revision checks.
    async fn run_method(
        &self,
        id: RequestId,
        method: String,
        params: Option<Value>,
        served: Served,
        ctx: &RequestContext,
    ) -> Option<Answer> {
        let error = |e: ErrorObject| Some(Answer::of(Response::error(Some(id.clone()), e)));
        let outcome = match method.as_str() {
            methods::INITIALIZE => self.initialize(params),
            methods::PING => Ok(Value::Object(JsonObject::new())),
            methods::DISCOVER => Ok(self.discover()),
            methods::TOOLS_LIST => self.list_tools(params, served),
            methods::TOOLS_CALL => return self.tools_call(id, params, served, ctx).await,
            methods::LOGGING_SET_LEVEL => self.set_level(params),
            methods::PROMPTS_LIST if self.has_prompts() => self.list_prompts(params, served),
            methods::PROMPTS_GET if self.has_prompts() => self.get_prompt(params),
            methods::COMPLETION_COMPLETE if self.has_prompts() || self.has_resources() => {
                self.complete(params).await
            }
            methods::RESOURCES_LIST if self.has_resources() => {
                self.list_resources(params, served).await
            }
            methods::RESOURCES_TEMPLATES_LIST if self.has_resources() => {
                self.list_resource_templates(params, served)
            }
            methods::RESOURCES_READ if self.has_resources() => {
                match self.read_resource(&id, params, served).await? {
                    Ok(result) => Ok(result),
                    Err(e) => return error(e),
                }
            }
            _ => return error(ErrorObject::method_not_found(&method)),
        };
        Some(Answer::of(match outcome {
            Ok(mut result) => {
                if served.stateless || method == methods::DISCOVER {
                    self.decorate_stateless(&mut result);
                }
                Response::success(id, result)
            }
            Err(error) => Response::error(Some(id), error),
        }))
    }

    async fn tools_call(
        &self,
        id: RequestId,
        params: Option<Value>,
        served: Served,
        ctx: &RequestContext,
    ) -> Option<Answer> {
        let answer = match self.call_tool(&id, params, ctx).await? {
            Ok(answer) => answer,
            Err(e) => return Some(Answer::of(Response::error(Some(id), e))),
        };
        // A shared result goes out as its bytes, where the revision takes it unchanged: one
        // copy into the response, the 2026-07-28 members (encoded once) spliced in.
        let result = match answer {
            ToolAnswer::Shared(shared) if takes_results_unchanged(served.version) => {
                let members = served
                    .stateless
                    .then(|| self.server.inner.stateless_members.clone());
                return Some(Answer {
                    tool_failed: shared.result().failed(),
                    response: Response::success_shared(id, shared.encoded().clone(), members),
                });
            }
            other => shape_call_result(other.into_result(), served.version),
        };
        let tool_failed = result.failed();
        // Structured content encoded by the tool goes out as is: the whole result is
        // serialized once, with no `Value` tree of it built and dropped per call.
        let response = if result.encoded_structured_content().is_some() && !tool_failed {
            let extra = served.stateless.then(|| self.stateless_members());
            match result.to_raw_value(extra.as_ref()) {
                Ok(raw) => Response::success_encoded(id, raw),
                Err(e) => Response::error(Some(id), ErrorObject::internal(e.to_string())),
            }
        } else {
            let mut value = result.into_value();
            if served.stateless {
                self.decorate_stateless(&mut value);
            }
            Response::success(id, value)
        };
        Some(Answer {
            response,
            tool_failed,
        })
    }

    fn list_tools(&self, params: Option<Value>, served: Served) -> Result<Value, ErrorObject> {
        let policy = &self.server.inner.policy;
        let (tools, next_cursor) = page(
            self.server.inner.catalog.tools(),
            cursor(params.as_ref())?,
            CURSOR_PREFIX,
            policy.page_size,
        )?;
        let result = ListToolsResult {
            tools: shape_tools(tools, served.version),
            page: list_page(next_cursor, served.version, policy.tools_ttl_ms),
        };
        serde_json::to_value(result).map_err(|e| ErrorObject::internal(e.to_string()))
    }

    fn set_level(&self, params: Option<Value>) -> Result<Value, ErrorObject> {
        let level = params
            .and_then(|mut p| p.as_object_mut().and_then(|o| o.remove("level")))
            .ok_or_else(|| ErrorObject::invalid_params("logging/setLevel needs a `level`"))?;
        let level: LoggingLevel = serde_json::from_value(level).map_err(|e| {
            ErrorObject::invalid_params(format!(
                    "Invalid `level`: {e} (expected debug, info, notice, warning, error, critical, alert or emergency)"
                ),
            )
        })?;
        self.set_log_level(level);
        Ok(Value::Object(JsonObject::new()))
    }

    /// `None`: the call was cancelled and gets no response.
    async fn call_tool(
        &self,
        id: &RequestId,
        params: Option<Value>,
        request: &RequestContext,
    ) -> Option<Result<ToolAnswer, ErrorObject>> {
        let Some(Value::Object(mut params)) = params else {
            return Some(Err(ErrorObject::invalid_params(
                "tools/call needs params with the tool `name`",
            )));
        };
        let name = match params.remove("name") {
            Some(Value::String(name)) if !name.is_empty() => name,
            _ => {
                return Some(Err(ErrorObject::invalid_params(
                    "tools/call: `name` must be a non-empty string",
                )));
            }
        };
        let arguments = match params.remove("arguments") {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => Some(o),
            Some(_) => {
                return Some(Err(ErrorObject::invalid_params(
                    "tools/call: `arguments` must be an object",
                )));
            }
        };
        let meta = match params.remove("_meta") {
            Some(Value::Object(o)) => Some(o),
            _ => None,
        };

        let Some((cancel, _in_flight)) = self.start_call(id) else {
            return Some(Err(ErrorObject::invalid_request(format!(
                "Request id {id} is already in use by a call in flight"
            ))));
        };
        let progress = Progress::of(meta.as_ref(), request.notifications.as_ref());
        let ctx = CallContext {
            cancel: cancel.clone(),
            meta,
            progress,
        };
        let call = pin!(self.server.inner.catalog.call_shared(&name, arguments, ctx));
        let cancelled = pin!(cancel.cancelled());
        let outcome = match select(call, cancelled).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(((), _)) => return None,
        };
        if cancel.is_cancelled() {
            return None;
        }
        Some(match outcome {
            Ok(answer) => Ok(answer),
            Err(CallError::UnknownTool(tool)) => {
                Err(ErrorObject::invalid_params(format!("Unknown tool: {tool}")))
            }
        })
    }
}
