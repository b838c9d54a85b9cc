//! The GraphQL transport: JSON over POST, queries over GET, GraphiQL for browsers.

use super::HttpState;
use crate::auth;
use crate::error::AppError;
use crate::graphql::{RequestAuth, with_error_codes};
use async_graphql::parser::types::{DocumentOperations, OperationType};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

pub(super) async fn graphql_post(
    State(s): State<HttpState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match serde_json::from_slice::<async_graphql::Request>(&body) {
        Ok(req) => execute(&s, &headers, req).await,
        Err(e) => client_error(
            StatusCode::BAD_REQUEST,
            &format!("the body must be a JSON GraphQL request {{\"query\": ...}}: {e}"),
        ),
    }
}

pub(super) async fn graphql_get(
    State(s): State<HttpState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        if wants_html && s.app.settings.api.graphiql {
            return Html(
                async_graphql::http::GraphiQLSource::build()
                    .endpoint("/graphql")
                    .title("Loyalty GraphQL")
                    .finish(),
            )
            .into_response();
        }
        return client_error(
            StatusCode::BAD_REQUEST,
            "GET /graphql needs a `query` parameter",
        );
    };
    let mut req = match async_graphql::http::parse_query_string(&query) {
        Ok(r) => r,
        Err(e) => return client_error(StatusCode::BAD_REQUEST, &format!("bad query string: {e}")),
    };
    if is_mutation(&mut req) {
        let mut resp = client_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
        );
        resp.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return resp;
    }
    execute(&s, &headers, req).await
}

fn is_mutation(req: &mut async_graphql::Request) -> bool {
    let name = req.operation_name.clone();
    let Ok(doc) = req.parsed_query() else {
        return false;
    };
    match &doc.operations {
        DocumentOperations::Single(op) => op.node.ty == OperationType::Mutation,
        DocumentOperations::Multiple(ops) => match name {
            Some(n) => ops
                .iter()
                .any(|(k, op)| k.as_str() == n && op.node.ty == OperationType::Mutation),
            None => ops.values().any(|op| op.node.ty == OperationType::Mutation),
        },
    }
}

async fn execute(s: &HttpState, headers: &HeaderMap, mut req: async_graphql::Request) -> Response {
    let principal = match bearer(headers) {
        None => None,
        Some(token) => {
            match auth::service::authenticate(&s.app.db, &s.app.platform_key_hash, token).await {
                Ok(p) => Some(p),
                Err(AppError::Internal(e)) => {
                    let err: async_graphql::Error = AppError::Internal(e).into();
                    let resp = async_graphql::Response::from_errors(vec![
                        err.into_server_error(async_graphql::Pos::default()),
                    ]);
                    return (StatusCode::SERVICE_UNAVAILABLE, Json(resp)).into_response();
                }
                Err(_) => None,
            }
        }
    };
    let doc = s.documents.prepare(&mut req);
    let resp = match &doc {
        Some(doc) if doc.fast(&req) => {
            s.checked_schema
                .execute(req.data(RequestAuth(principal)))
                .await
        }
        _ => {
            let resp = s.schema.execute(req.data(RequestAuth(principal))).await;
            if let Some(doc) = &doc {
                doc.answered(&resp);
            }
            resp
        }
    };
    Json(with_error_codes(resp)).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn client_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": "VALIDATION" } }]
    });
    (status, Json(body)).into_response()
}
