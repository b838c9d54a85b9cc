//! Key issuance, revocation and authentication of bearer tokens.

use super::{KeyRecord, Principal, Role, TenantPrincipal, TokenKind, repo};
use crate::config::AuthSettings;
use crate::db::Db;
use crate::db::entities::api_keys;
use crate::error::{AppError, AppResult, is_unique_violation};
use crate::ids::{ApiKeyId, TenantId};
use crate::tenants;
use crate::validate;
use chrono::{DateTime, Utc};

const PLATFORM_KEY_SETTING: &str = "platform_key_sha256";

/// An API key as the API shows it: never its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<api_keys::Model> for ApiKey {
    type Error = AppError;
    fn try_from(m: api_keys::Model) -> AppResult<Self> {
        let role = Role::parse(&m.role)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("unknown role {:?}", m.role)))?;
        Ok(Self {
            id: ApiKeyId(m.id),
            tenant_id: TenantId(m.tenant_id),
            name: m.name,
            role,
            created_at: m.created_at,
            revoked_at: m.revoked_at,
        })
    }
}

/// The platform key's hash, and the key itself when it was generated just now (to print once).
pub async fn platform_key_hash(
    db: &Db,
    settings: &AuthSettings,
) -> anyhow::Result<(String, Option<String>)> {
    if let Some(key) = &settings.platform_key {
        anyhow::ensure!(
            key.expose().len() >= 24,
            "auth.platform_key must be at least 24 characters"
        );
        return Ok((super::hash_token(key.expose()), None));
    }
    if let Some(hash) = repo::get_setting(db.reader(), PLATFORM_KEY_SETTING).await? {
        return Ok((hash, None));
    }
    let key = super::new_platform_key();
    let hash = super::hash_token(&key);
    let txn = db.begin_write().await?;
    match repo::insert_setting(&txn, PLATFORM_KEY_SETTING, &hash).await {
        Ok(()) => txn.commit().await?,
        Err(e) if is_unique_violation(&e) => txn.rollback().await?,
        Err(e) => return Err(e.into()),
    }
    // Another replica may have won the race: the stored hash is the one that counts.
    let stored = repo::get_setting(db.reader(), PLATFORM_KEY_SETTING)
        .await?
        .ok_or_else(|| anyhow::anyhow!("platform key was not stored"))?;
    let generated = (stored == hash).then_some(key);
    Ok((stored, generated))
}

/// Resolves a bearer token to a principal, or UNAUTHENTICATED.
pub async fn authenticate(db: &Db, platform_hash: &str, token: &str) -> AppResult<Principal> {
    let presented = super::hash_token(token);
    match super::parse_token(token) {
        Some(TokenKind::Platform) if super::hashes_match(&presented, platform_hash) => {
            Ok(Principal::Platform)
        }
        Some(TokenKind::Tenant(id)) => {
            let key = db
                .caches()
                .keys
                .get_or_load(&id, async {
                    let mut key = repo::find_key(db.reader(), id)
                        .await?
                        .ok_or(AppError::Unauthenticated)?;
                    let secret_hash = std::mem::take(&mut key.secret_hash);
                    let key = ApiKey::try_from(key)?;
                    Ok::<_, AppError>(KeyRecord {
                        tenant_id: key.tenant_id,
                        role: key.role,
                        secret_hash,
                        revoked: key.revoked_at.is_some(),
                    })
                })
                .await?;
            if key.revoked || !super::hashes_match(&presented, &key.secret_hash) {
                return Err(AppError::Unauthenticated);
            }
            Ok(Principal::Tenant(TenantPrincipal {
                tenant_id: key.tenant_id,
                key_id: id,
                role: key.role,
            }))
        }
        _ => Err(AppError::Unauthenticated),
    }
}

/// Issues a key; returns it with its secret, which is never shown again.
pub async fn create_api_key(
    db: &Db,
    principal: &Principal,
    tenant: TenantId,
    role: Role,
    name: &str,
) -> AppResult<(ApiKey, String)> {
    principal.require_key_manager(tenant)?;
    let name = validate::text("name", name, 100)?;
    tenants::service::get(db, tenant).await?;
    let id = ApiKeyId::new();
    let secret = super::new_tenant_key(id);
    let model = api_keys::Model {
        id: id.0,
        tenant_id: tenant.0,
        name,
        role: role.as_str().into(),
        secret_hash: super::hash_token(&secret),
        created_at: db.now(),
        revoked_at: None,
    };
    let txn = db.begin_write().await?;
    repo::insert_key(&txn, model.clone()).await?;
    txn.commit().await?;
    Ok((ApiKey::try_from(model)?, secret))
}

/// Revokes a key at once. Revoking a revoked key returns it unchanged.
pub async fn revoke_api_key(db: &Db, principal: &Principal, id: ApiKeyId) -> AppResult<ApiKey> {
    let txn = db.begin_write().await?;
    let key = repo::find_key(&txn, id)
        .await?
        .ok_or(AppError::not_found("API key"))?;
    principal
        .require_key_manager(TenantId(key.tenant_id))
        .map_err(|e| match e {
            AppError::NotFound { .. } => AppError::not_found("API key"),
            other => other,
        })?;
    let key = if key.revoked_at.is_some() {
        key
    } else {
        repo::mark_revoked(&txn, key, db.now()).await?
    };
    txn.commit().await?;
    db.caches().keys.forget(&id);
    ApiKey::try_from(key)
}

pub async fn list_api_keys(
    db: &Db,
    principal: &Principal,
    tenant: TenantId,
) -> AppResult<Vec<ApiKey>> {
    principal.require_key_manager(tenant)?;
    repo::list_keys(db.reader(), tenant)
        .await?
        .into_iter()
        .map(ApiKey::try_from)
        .collect()
}
