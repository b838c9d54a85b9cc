//! Mapping of [`AppError`] to GraphQL errors with `extensions.code`.
//!
//! Internal errors are logged here, once, with their chain, and reach the client as
//! `INTERNAL` with a fixed message. Client errors are not logged as errors.

use crate::error::AppError;
use async_graphql::{ErrorExtensions, Response, Value};

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        let code = err.code();
        let message = match &err {
            AppError::Internal(inner) => {
                tracing::error!(error = ?inner, "internal error");
                "internal error: the request was not completed; it is safe to retry".to_string()
            }
            other => other.to_string(),
        };
        async_graphql::Error::new(message).extend_with(|_, e| {
            e.set("code", code);
            if let AppError::Validation { field, .. } = &err {
                e.set("field", field.as_str());
            }
            if let AppError::RewardUnavailable { reason, .. } = &err {
                e.set("reason", *reason);
            }
        })
    }
}

/// Errors raised by async-graphql itself (syntax, unknown fields, wrong types, depth and
/// complexity limits) carry no code; they are all the client's to fix.
pub fn with_error_codes(mut response: Response) -> Response {
    for err in &mut response.errors {
        let ext = err.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", Value::from("VALIDATION"));
        }
    }
    response
}
