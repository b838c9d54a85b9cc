//! Idempotency keys for writes that create something.
//!
//! The first request with a key stores `(scope, key) -> (operation, request hash, result id)`
//! in the same transaction as its effect. A retry with the same key and the same request gets
//! the stored result and writes nothing; the same key with a different request is a CONFLICT.
//! Scope is the tenant (or `platform`), so two tenants never collide on a key.

use crate::db::Batch;
use crate::db::entities::idempotency_records;
use crate::error::{AppError, AppResult};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, IntoActiveModel};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Longest idempotency key accepted.
pub const KEY_CHARS_MAX: usize = 128;

/// A validated key plus the hash of the request it protects.
#[derive(Clone, Debug)]
pub struct IdempotencyKey {
    pub scope: String,
    pub key: String,
    pub operation: &'static str,
    pub request_hash: String,
}

impl IdempotencyKey {
    pub fn new(
        scope: impl Into<String>,
        key: &str,
        operation: &'static str,
        request: &impl Serialize,
    ) -> AppResult<Self> {
        let key = key.trim();
        if key.is_empty() || key.chars().count() > KEY_CHARS_MAX {
            return Err(AppError::validation(
                "idempotencyKey",
                format!("idempotencyKey must be 1 to {KEY_CHARS_MAX} characters"),
            ));
        }
        let body = serde_json::to_vec(request).map_err(AppError::internal)?;
        Ok(Self {
            scope: scope.into(),
            key: key.to_string(),
            operation,
            request_hash: hex::encode(Sha256::digest(&body)),
        })
    }
}

/// The stored result id when this key was used before with the same request; CONFLICT when it
/// was used with another one; `None` when it is new.
pub async fn lookup(conn: &impl ConnectionTrait, k: &IdempotencyKey) -> AppResult<Option<String>> {
    let found = idempotency_records::Entity::find_by_id((k.scope.clone(), k.key.clone()))
        .one(conn)
        .await?;
    match found {
        None => Ok(None),
        Some(r) if r.operation == k.operation && r.request_hash == k.request_hash => {
            Ok(Some(r.result_id))
        }
        Some(_) => Err(AppError::Conflict(format!(
            "idempotencyKey {:?} was already used for a different request",
            k.key
        ))),
    }
}

/// Records the key with its result, inside the caller's transaction.
pub async fn record(
    conn: &impl ConnectionTrait,
    k: &IdempotencyKey,
    result_id: &str,
) -> Result<(), DbErr> {
    insert(k, result_id)
        .exec_without_returning(conn)
        .await
        .map(|_| ())
}

/// [`record`] as part of a [`Batch`]: a key used before fails the whole batch with a unique
/// violation, after which [`lookup`] (outside the rolled-back transaction) finds the winner.
pub fn record_into(batch: &mut Batch, k: &IdempotencyKey, result_id: &str) {
    batch.insert(insert(k, result_id));
}

fn insert(
    k: &IdempotencyKey,
    result_id: &str,
) -> sea_orm::Insert<idempotency_records::ActiveModel> {
    idempotency_records::Entity::insert(
        idempotency_records::Model {
            scope: k.scope.clone(),
            key: k.key.clone(),
            operation: k.operation.into(),
            request_hash: k.request_hash.clone(),
            result_id: result_id.into(),
            created_at: crate::clock::now(),
        }
        .into_active_model(),
    )
}
