//! Queries for API keys and platform settings.

use crate::db::entities::{api_keys, platform_settings};
use crate::ids::{ApiKeyId, TenantId};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, Set,
};

pub async fn insert_key(conn: &impl ConnectionTrait, key: api_keys::Model) -> Result<(), DbErr> {
    api_keys::Entity::insert(key.into_active_model())
        .exec_without_returning(conn)
        .await
        .map(|_| ())
}

pub async fn find_key(
    conn: &impl ConnectionTrait,
    id: ApiKeyId,
) -> Result<Option<api_keys::Model>, DbErr> {
    api_keys::Entity::find_by_id(id.0).one(conn).await
}

pub async fn list_keys(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
) -> Result<Vec<api_keys::Model>, DbErr> {
    api_keys::Entity::find()
        .filter(api_keys::Column::TenantId.eq(tenant.0))
        .order_by_asc(api_keys::Column::Id)
        .all(conn)
        .await
}

pub async fn mark_revoked(
    conn: &impl ConnectionTrait,
    key: api_keys::Model,
    at: DateTime<Utc>,
) -> Result<api_keys::Model, DbErr> {
    let mut active = key.into_active_model();
    active.revoked_at = Set(Some(at));
    active.update(conn).await
}

pub async fn get_setting(conn: &impl ConnectionTrait, key: &str) -> Result<Option<String>, DbErr> {
    Ok(platform_settings::Entity::find_by_id(key.to_string())
        .one(conn)
        .await?
        .map(|m| m.value))
}

pub async fn insert_setting(
    conn: &impl ConnectionTrait,
    key: &str,
    value: &str,
) -> Result<(), DbErr> {
    platform_settings::Entity::insert(
        platform_settings::Model {
            key: key.into(),
            value: value.into(),
            created_at: crate::clock::now(),
        }
        .into_active_model(),
    )
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}
