//! Parsed GraphQL documents, by query text.
//!
//! An integration sends the same few documents over and over with different variables; the
//! parser is a good part of a small request's CPU (BENCHMARKS.md, "CPU per request"). A
//! document is parsed once and then cloned from here; validation, the depth and complexity
//! limits and execution still run on every request, so a cached document is checked exactly
//! as a fresh one. Nothing tenant-specific is in a document: variables and the caller's key
//! are not part of it.
//!
//! ## Bounds
//! At most `api.document_cache_entries` documents (0: no cache), each from a query of at most
//! `api.document_cache_query_bytes_max` bytes; longer queries are parsed every time. When the
//! map is full it starts over, so a client that sends ever new queries costs a parse each, as
//! without the cache, and never more memory than the bound.

use crate::config::ApiSettings;
use async_graphql::parser::types::ExecutableDocument;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

pub(crate) struct Documents {
    entries_max: usize,
    query_bytes_max: usize,
    map: Mutex<HashMap<Box<str>, Arc<ExecutableDocument>>>,
}

impl Documents {
    pub(crate) fn new(api: &ApiSettings) -> Self {
        Self {
            entries_max: api.document_cache_entries,
            query_bytes_max: api.document_cache_query_bytes_max,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Gives `req` its parsed document: the cached one, or parsed now and kept. A query that
    /// does not parse is left alone, and execution reports the error as it always does.
    pub(crate) fn prepare(&self, req: &mut async_graphql::Request) {
        if self.entries_max == 0 || req.query.len() > self.query_bytes_max {
            return;
        }
        let cached = self.lock().get(req.query.as_str()).cloned();
        if let Some(doc) = cached {
            req.set_parsed_query(ExecutableDocument::clone(&doc));
            return;
        }
        let Ok(doc) = req.parsed_query() else {
            return;
        };
        let doc = Arc::new(doc.clone());
        let mut map = self.lock();
        if map.len() >= self.entries_max {
            map.clear();
        }
        map.insert(req.query.as_str().into(), doc);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Arc<ExecutableDocument>>> {
        // A panic while holding it cannot leave the map half-changed: use it as it is.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: usize, bytes: usize) -> Documents {
        Documents::new(&ApiSettings {
            document_cache_entries: entries,
            document_cache_query_bytes_max: bytes,
            ..ApiSettings::default()
        })
    }

    fn parsed(d: &Documents, query: &str) -> bool {
        let mut req = async_graphql::Request::new(query);
        d.prepare(&mut req);
        // `parsed_query` parses only when nothing was set: compare what was set with a parse.
        let set = req.parsed_query().ok().map(|doc| format!("{doc:?}"));
        let fresh = async_graphql::parser::parse_query(query)
            .ok()
            .map(|doc| format!("{doc:?}"));
        set == fresh && set.is_some()
    }

    #[test]
    fn documents_are_kept_within_the_bounds() {
        assert_eq!(ApiSettings::default().document_cache_entries, 256);
        assert_eq!(
            ApiSettings::default().document_cache_query_bytes_max,
            16 * 1024
        );
        let d = cache(2, 64);
        assert!(parsed(&d, "{ a }"));
        assert!(parsed(&d, "{ a }"), "the cached document is the parsed one");
        assert_eq!(d.len(), 1);
        assert!(parsed(&d, "{ b }"));
        assert_eq!(d.len(), 2);
        // Full: it starts over with the new document.
        assert!(parsed(&d, "query Q($x: Int) { c(x: $x) }"));
        assert_eq!(d.len(), 1);
        // Longer than the bound: parsed by the request, not kept.
        let long = format!("{{ {} }}", "field ".repeat(20));
        let mut req = async_graphql::Request::new(long.clone());
        d.prepare(&mut req);
        assert_eq!(d.len(), 1);
        assert!(parsed(&d, &long), "still answered");
        // A query that does not parse is not kept (execution reports its error).
        let mut req = async_graphql::Request::new("{ unclosed");
        d.prepare(&mut req);
        assert!(req.parsed_query().is_err());
        assert_eq!(d.len(), 1);
        // 0 entries: no cache at all.
        let off = cache(0, 64);
        assert!(parsed(&off, "{ a }"));
        assert_eq!(off.len(), 0);
    }
}
