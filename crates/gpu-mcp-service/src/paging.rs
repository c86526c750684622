//! Paging of the list methods (`tools/list`, `prompts/list`, `resources/list`,
//! `resources/templates/list`): one cursor rule for all four, and one place that decides which
//! revisions get cache hints.
//!
//! A cursor is the list's own prefix and the index of the page's first item (`tools:20`); any
//! other string, or an index outside the list, is `-32602`. The cache hints (`ttlMs`,
//! `cacheScope`) exist from 2026-07-28; every list is the same for every caller, so its scope is
//! `public`.

use gpu_mcp_protocol::mcp::{CacheScope, ListPage};
use gpu_mcp_protocol::{ErrorObject, ProtocolVersion};
use serde_json::Value;

/// The `cursor` of a list request.
pub(crate) fn cursor(params: Option<&Value>) -> Result<Option<&str>, ErrorObject> {
    match params.and_then(|p| p.get("cursor")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(ErrorObject::invalid_params("`cursor` must be a string")),
    }
}

/// The page of `items` after `cursor` (at most `page_size`, at least one), and the next page's
/// cursor.
pub(crate) fn page<T>(
    mut items: Vec<T>,
    cursor: Option<&str>,
    prefix: &str,
    page_size: usize,
) -> Result<(Vec<T>, Option<String>), ErrorObject> {
    let start = match cursor {
        None => 0,
        Some(c) => match c.strip_prefix(prefix).and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n > 0 && n <= items.len() => n,
            _ => {
                return Err(ErrorObject::invalid_params(format!(
                    "Invalid cursor: {c:?}"
                )));
            }
        },
    };
    let end = start.saturating_add(page_size.max(1)).min(items.len());
    let next = (end < items.len()).then(|| format!("{prefix}{end}"));
    items.truncate(end);
    items.drain(..start);
    Ok((items, next))
}

/// `ttlMs` and `cacheScope` of a result that stays fresh for `ttl_ms` in `version`: `public`
/// where the revision has cache hints, else none.
pub(crate) fn cache_hints(
    version: ProtocolVersion,
    ttl_ms: u64,
) -> (Option<u64>, Option<CacheScope>) {
    if version.supports_cache_hints() {
        (Some(ttl_ms), Some(CacheScope::Public))
    } else {
        (None, None)
    }
}

/// What a list page carries beside its items, in `version`.
pub(crate) fn list_page(
    next_cursor: Option<String>,
    version: ProtocolVersion,
    ttl_ms: u64,
) -> ListPage {
    let (ttl_ms, cache_scope) = cache_hints(version, ttl_ms);
    ListPage {
        next_cursor,
        ttl_ms,
        cache_scope,
        meta: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_every_item_once() {
        let items: Vec<u32> = (0..7).collect();
        let (first, next) = page(items.clone(), None, "r:", 3).unwrap();
        assert_eq!((first, next.as_deref()), (vec![0, 1, 2], Some("r:3")));
        let (second, next) = page(items.clone(), Some("r:3"), "r:", 3).unwrap();
        assert_eq!((second, next.as_deref()), (vec![3, 4, 5], Some("r:6")));
        let (last, next) = page(items.clone(), Some("r:6"), "r:", 3).unwrap();
        assert_eq!((last, next), (vec![6], None));
        for bad in ["r:0", "r:8", "x:3", "r:x"] {
            assert_eq!(
                page(items.clone(), Some(bad), "r:", 3).unwrap_err().code,
                -32602
            );
        }
    }

    #[test]
    fn cursors_are_strings_or_absent() {
        assert_eq!(cursor(None).unwrap(), None);
        let p = serde_json::json!({"cursor": null});
        assert_eq!(cursor(Some(&p)).unwrap(), None);
        let p = serde_json::json!({"cursor": "tools:3"});
        assert_eq!(cursor(Some(&p)).unwrap(), Some("tools:3"));
        let p = serde_json::json!({"cursor": 3});
        assert_eq!(cursor(Some(&p)).unwrap_err().code, -32602);
    }

    #[test]
    fn cache_hints_only_where_the_revision_has_them() {
        assert_eq!(
            cache_hints(ProtocolVersion::V2026_07_28, 3_600_000),
            (Some(3_600_000), Some(CacheScope::Public))
        );
        for v in ProtocolVersion::ALL
            .into_iter()
            .filter(|v| v.uses_handshake())
        {
            assert_eq!(cache_hints(v, 3_600_000), (None, None), "{v}");
            assert_eq!(list_page(None, v, 1), ListPage::default(), "{v}");
        }
    }
}
