//! Parsed GraphQL documents, by query text.
//!
//! An integration sends the same few documents over and over with different variables; the
//! parser is a good part of a small request's CPU (BENCHMARKS.md, "CPU per request"). A
//! document is parsed once and then cloned from here. Nothing tenant-specific is in a
//! document: variables and the caller's key are not part of it.
//!
//! ## Validation of a document already answered
//! Most of GraphQL validation looks at the document alone (fields exist, arguments are known
//! and required ones given, variables are declared, used and of input types, fragments
//! apply, ...): a quarter of a small query's CPU, the same answer every time. Only two
//! checks look at a request's variables: each variable's value against the type of the
//! argument it fills, and the complexity limit (a page size may be a variable). So a
//! document is marked *checked* once a request of it was answered without any error, which
//! it cannot be without passing every rule. A later **query** of a checked document whose
//! variables are all of the built-in scalar types (`ID`, `String`, `Int`, `Float`,
//! `Boolean`, or lists of them) has its variable values checked here, by the same test
//! async-graphql applies, and is then run by the schema in its fast validation mode, which
//! still applies the depth and complexity limits (with this request's variables) and the
//! fragment-cycle check. A value that fails that test, or any null, goes the full way, so it
//! gets exactly the error a fresh document gets. Mutations always go the full way.
//!
//! ## Bounds
//! At most `api.document_cache_entries` documents (0: no cache), each from a query of at most
//! `api.document_cache_query_bytes_max` bytes; longer queries are parsed every time. When the
//! map is full it starts over, so a client that sends ever new queries costs a parse each, as
//! without the cache, and never more memory than the bound.

use crate::config::ApiSettings;
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, OperationType, Type,
};
use async_graphql::{Name, Value, Variables};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

pub(crate) struct Documents {
    entries_max: usize,
    query_bytes_max: usize,
    map: Mutex<HashMap<Box<str>, Arc<Document>>>,
}

/// A parsed document and what its answers have shown about it.
pub(crate) struct Document {
    parsed: ExecutableDocument,
    /// A request of it was answered without any error: it passes every validation rule that
    /// does not look at variable values.
    checked: AtomicBool,
    /// Its query operations (`None`: the document's only operation, unnamed) whose variables
    /// are all of built-in scalar types, with those types.
    queries: HashMap<Option<Name>, Vec<(Name, Scalars)>>,
}

/// A variable's type when it is built from the built-in scalars.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Scalars {
    Named(Scalar),
    List(Box<Scalars>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scalar {
    Id,
    String,
    Int,
    Float,
    Boolean,
}

impl Scalars {
    fn of(ty: &Type) -> Option<Self> {
        match &ty.base {
            BaseType::List(inner) => Some(Self::List(Box::new(Self::of(inner)?))),
            BaseType::Named(name) => Some(Self::Named(match name.as_str() {
                "ID" => Scalar::Id,
                "String" => Scalar::String,
                "Int" => Scalar::Int,
                "Float" => Scalar::Float,
                "Boolean" => Scalar::Boolean,
                _ => return None,
            })),
        }
    }

    /// async-graphql's own test of an input value (`is_valid_input_value` with the scalars'
    /// `is_valid`), except that a null is never taken here: whether a null fits depends on
    /// where the variable is used, which the full validation knows.
    fn fits(&self, v: &Value) -> bool {
        match (self, v) {
            (_, Value::Null) => false,
            (Self::List(inner), Value::List(items)) => items.iter().all(|i| inner.fits(i)),
            (Self::List(inner), v) => inner.fits(v),
            (Self::Named(s), v) => match s {
                Scalar::Id => {
                    matches!(v, Value::String(_)) || matches!(v, Value::Number(n) if n.is_i64())
                }
                Scalar::String => matches!(v, Value::String(_)),
                Scalar::Int => matches!(v, Value::Number(n) if n.is_i64()),
                Scalar::Float => matches!(v, Value::Number(_)),
                Scalar::Boolean => matches!(v, Value::Boolean(_)),
            },
        }
    }
}

impl Document {
    fn new(parsed: ExecutableDocument) -> Self {
        let mut queries = HashMap::new();
        let ops: Vec<(Option<Name>, _)> = match &parsed.operations {
            DocumentOperations::Single(op) => vec![(None, op)],
            DocumentOperations::Multiple(ops) => {
                ops.iter().map(|(n, op)| (Some(n.clone()), op)).collect()
            }
        };
        for (name, op) in ops {
            if op.node.ty != OperationType::Query {
                continue;
            }
            let vars = op
                .node
                .variable_definitions
                .iter()
                .map(|d| {
                    Some((
                        d.node.name.node.clone(),
                        Scalars::of(&d.node.var_type.node)?,
                    ))
                })
                .collect::<Option<Vec<_>>>();
            if let Some(vars) = vars {
                queries.insert(name, vars);
            }
        }
        Self {
            parsed,
            checked: AtomicBool::new(false),
            queries,
        }
    }

    /// Whether `req` (of this document) may skip the rules already passed: the document is
    /// checked, the operation the request runs is one of its plain queries, and every
    /// variable value given for it fits the variable's type.
    pub(crate) fn fast(&self, req: &async_graphql::Request) -> bool {
        if !self.checked.load(Ordering::Relaxed) {
            return false;
        }
        // The operation async-graphql will run: the named one, or the only one.
        let vars = match (&req.operation_name, &self.parsed.operations) {
            (_, DocumentOperations::Single(_)) => self.queries.get(&None),
            (Some(name), DocumentOperations::Multiple(_)) => {
                self.queries.get(&Some(Name::new(name)))
            }
            (None, DocumentOperations::Multiple(ops)) if ops.len() == 1 => ops
                .keys()
                .next()
                .and_then(|n| self.queries.get(&Some(n.clone()))),
            (None, DocumentOperations::Multiple(_)) => None,
        };
        vars.is_some_and(|vars| fits(vars, &req.variables))
    }

    /// Marks the document checked after a request of it got an answer without errors.
    pub(crate) fn answered(&self, resp: &async_graphql::Response) {
        if resp.errors.is_empty() {
            self.checked.store(true, Ordering::Relaxed);
        }
    }
}

/// Every given value fits its variable's type (a variable not given is left to execution,
/// as the full validation leaves it).
fn fits(vars: &[(Name, Scalars)], given: &Variables) -> bool {
    vars.iter()
        .all(|(name, ty)| given.get(name).is_none_or(|v| ty.fits(v)))
}

impl Documents {
    pub(crate) fn new(api: &ApiSettings) -> Self {
        Self {
            entries_max: api.document_cache_entries,
            query_bytes_max: api.document_cache_query_bytes_max,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Gives `req` its parsed document: the cached one, or parsed now and kept, and returns
    /// the cache's entry. A query that does not parse is left alone, and execution reports
    /// the error as it always does.
    pub(crate) fn prepare(&self, req: &mut async_graphql::Request) -> Option<Arc<Document>> {
        if self.entries_max == 0 || req.query.len() > self.query_bytes_max {
            return None;
        }
        let cached = self.lock().get(req.query.as_str()).cloned();
        if let Some(doc) = cached {
            req.set_parsed_query(doc.parsed.clone());
            return Some(doc);
        }
        let Ok(parsed) = req.parsed_query() else {
            return None;
        };
        let doc = Arc::new(Document::new(parsed.clone()));
        let mut map = self.lock();
        if map.len() >= self.entries_max {
            map.clear();
        }
        map.insert(req.query.as_str().into(), doc.clone());
        Some(doc)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Arc<Document>>> {
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

    /// A request of `query` with `vars`, prepared by `d` (the entry it got).
    fn request(d: &Documents, query: &str, vars: serde_json::Value) -> (bool, Arc<Document>) {
        let mut req = async_graphql::Request::new(query).variables(Variables::from_json(vars));
        let doc = d.prepare(&mut req).expect("kept");
        (doc.fast(&req), doc)
    }

    fn no_errors() -> async_graphql::Response {
        async_graphql::Response::new(Value::Null)
    }

    #[test]
    fn only_answered_queries_with_fitting_scalar_variables_skip_the_rules() {
        let d = cache(16, 4096);
        let q = "query($id: ID!, $n: Int, $s: [String!], $f: Float, $b: Boolean) { a }";
        let good = serde_json::json!({"id": "m1", "n": 3, "s": ["x", "y"], "f": 1.5, "b": true});
        let (fast, doc) = request(&d, q, good.clone());
        assert!(!fast, "not answered yet");
        // An answer with an error does not mark it.
        doc.answered(&async_graphql::Response::from_errors(vec![
            async_graphql::ServerError::new("no", None),
        ]));
        assert!(!request(&d, q, good.clone()).0);
        doc.answered(&no_errors());
        assert!(request(&d, q, good.clone()).0, "answered: fast");
        // An ID may be an integer; a single value fills a list; a variable not given is left
        // to execution.
        assert!(request(&d, q, serde_json::json!({"id": 7, "s": "x"})).0);
        // Values that do not fit, and any null, go the full way.
        for bad in [
            serde_json::json!({"id": true}),
            serde_json::json!({"id": 1.5}),
            serde_json::json!({"id": null}),
            serde_json::json!({"id": "m", "n": "3"}),
            serde_json::json!({"id": "m", "n": 1.5}),
            serde_json::json!({"id": "m", "s": [1]}),
            serde_json::json!({"id": "m", "s": ["x", null]}),
            serde_json::json!({"id": "m", "f": "1"}),
            serde_json::json!({"id": "m", "b": 1}),
            serde_json::json!({"id": "m", "n": null}),
        ] {
            assert!(!request(&d, q, bad.clone()).0, "{bad}");
        }
        // Mutations, and queries with variables of other types, never skip them.
        for q in [
            "mutation($id: ID!) { a(id: $id) }",
            "query($i: SomeInput!) { a(i: $i) }",
            "query($e: SomeEnum) { a(e: $e) }",
        ] {
            let (_, doc) = request(&d, q, serde_json::json!({}));
            doc.answered(&no_errors());
            assert!(!request(&d, q, serde_json::json!({})).0, "{q}");
        }
        // Several operations: the one named, or none when the name is missing or unknown.
        let q = "query A($id: ID!) { a } mutation B { b }";
        let (_, doc) = request(&d, q, serde_json::json!({}));
        doc.answered(&no_errors());
        let named = |name: Option<&str>| {
            let mut req = async_graphql::Request::new(q)
                .variables(Variables::from_json(serde_json::json!({"id": "m"})));
            if let Some(n) = name {
                req = req.operation_name(n);
            }
            d.prepare(&mut req).expect("kept").fast(&req)
        };
        assert!(named(Some("A")));
        assert!(!named(Some("B")));
        assert!(!named(Some("C")));
        assert!(!named(None));
        // The cache starting over forgets what was checked.
        let small = cache(1, 4096);
        let (_, doc) = request(&small, "{ a }", serde_json::json!({}));
        doc.answered(&no_errors());
        assert!(request(&small, "{ a }", serde_json::json!({})).0);
        request(&small, "{ b }", serde_json::json!({}));
        assert!(!request(&small, "{ a }", serde_json::json!({})).0);
    }
}
