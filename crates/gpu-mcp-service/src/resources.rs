//! `resources/list`, `resources/templates/list` and `resources/read`: the catalog's resources,
//! paged and shaped per revision.
//!
//! The template list is fixed for the life of the process and the same for every caller, so in
//! 2026-07-28 it carries the tool list's cache hints. The concrete resources follow what the
//! catalog knows (GPUs, nodes), so their `ttlMs` is the catalog's
//! ([`ResourceCatalog::resources_ttl_ms`]), with `cacheScope: "public"` (every caller gets the
//! same list). A read carries the catalog's [`ResourceCatalog::read_ttl_ms`] (by default 0: the
//! GPUs' state now) and `cacheScope: "public"` in 2026-07-28. `title`s exist from 2025-06-18.
//! A URI that names no resource is `-32602` (invalid params, SEP-2164) in 2026-07-28 and
//! `-32002` (resource not found) before, with `data: {uri}` in both; one that exists but cannot
//! be read now is `-32603`.

use std::pin::pin;

use futures::future::{Either, select};
use gpu_mcp_protocol::mcp::{
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceRequestParams, methods,
    parse_params,
};
use gpu_mcp_protocol::{ErrorObject, RequestId};
use serde_json::Value;

use crate::catalog::{ResourceCatalog, ResourceError};
use crate::lifecycle::Served;
use crate::paging::{cache_hints, cursor, list_page, page};
use crate::session::Session;

const RESOURCES_CURSOR: &str = "resources:";
const TEMPLATES_CURSOR: &str = "templates:";

/// Most resources on one `resources/list` page, whatever the policy's page size: a node's
/// resources are a handful, a fleet's are thousands.
pub(crate) const MAX_RESOURCE_PAGE: usize = 100;

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, ErrorObject> {
    serde_json::to_value(v).map_err(|e| ErrorObject::internal(e.to_string()))
}

impl Session {
    /// Whether the catalog offers resources (else the resource methods are `-32601`).
    pub(crate) fn has_resources(&self) -> bool {
        self.server.inner.has_resources
    }

    /// The catalog's resources; only called when [`Session::has_resources`].
    pub(crate) fn resource_catalog(&self) -> Result<&dyn ResourceCatalog, ErrorObject> {
        self.server
            .inner
            .catalog
            .resource_catalog()
            .ok_or_else(|| ErrorObject::internal("the catalog has no resources"))
    }

    /// Whether `method` is a resource method this session's catalog serves.
    pub(crate) fn serves_resource_method(&self, method: &str) -> bool {
        matches!(
            method,
            methods::RESOURCES_LIST | methods::RESOURCES_TEMPLATES_LIST | methods::RESOURCES_READ
        ) && self.has_resources()
    }

    pub(crate) async fn list_resources(
        &self,
        params: Option<Value>,
        served: Served,
    ) -> Result<Value, ErrorObject> {
        let cursor = cursor(params.as_ref())?;
        let catalog = self.resource_catalog()?;
        let page_size = self.server.inner.policy.page_size.min(MAX_RESOURCE_PAGE);
        let (mut resources, next_cursor) = page(
            catalog.resources().await,
            cursor,
            RESOURCES_CURSOR,
            page_size,
        )?;
        if !served.version.supports_title() {
            for r in &mut resources {
                r.title = None;
            }
        }
        to_value(ListResourcesResult {
            resources,
            page: list_page(next_cursor, served.version, catalog.resources_ttl_ms()),
        })
    }

    pub(crate) fn list_resource_templates(
        &self,
        params: Option<Value>,
        served: Served,
    ) -> Result<Value, ErrorObject> {
        let cursor = cursor(params.as_ref())?;
        let templates = self.resource_catalog()?.templates();
        let (mut templates, next_cursor) = page(
            templates,
            cursor,
            TEMPLATES_CURSOR,
            self.server.inner.policy.page_size,
        )?;
        if !served.version.supports_title() {
            for t in &mut templates {
                t.title = None;
            }
        }
        let ttl_ms = self.server.inner.policy.tools_ttl_ms;
        to_value(ListResourceTemplatesResult {
            resource_templates: templates,
            page: list_page(next_cursor, served.version, ttl_ms),
        })
    }

    /// `None`: the read was cancelled and gets no response.
    pub(crate) async fn read_resource(
        &self,
        id: &RequestId,
        params: Option<Value>,
        served: Served,
    ) -> Option<Result<Value, ErrorObject>> {
        let params: ReadResourceRequestParams = match parse_params(params) {
            Ok(p) => p,
            Err(e) => {
                return Some(Err(ErrorObject::invalid_params(format!(
                    "resources/read: {e}"
                ))));
            }
        };
        let catalog = match self.resource_catalog() {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let Some((cancel, _in_flight)) = self.start_call(id) else {
            return Some(Err(ErrorObject::invalid_request(format!(
                "Request id {id} is already in use by a request in flight"
            ))));
        };
        let read = pin!(catalog.read(&params.uri, cancel.clone()));
        let cancelled = pin!(cancel.cancelled());
        let outcome = match select(read, cancelled).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(((), _)) => return None,
        };
        if cancel.is_cancelled() {
            return None;
        }
        Some(match outcome {
            Ok(mut result) => {
                (result.ttl_ms, result.cache_scope) =
                    cache_hints(served.version, catalog.read_ttl_ms());
                to_value(result)
            }
            Err(ResourceError::NotFound(message)) => Err(ErrorObject::resource_not_found(
                served.version,
                &params.uri,
                message,
            )),
            Err(ResourceError::Unavailable(message)) => Err(ErrorObject::internal(message)),
        })
    }
}
