//! Tenant operations. Creating and changing tenants is the platform key's job.

use super::{NewTenant, Tenant, TenantPatch, repo};
use crate::auth::Principal;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::ids::TenantId;
use crate::pagination::{Page, PageRequest};

pub async fn create(db: &Db, principal: &Principal, input: NewTenant) -> AppResult<Tenant> {
    principal.require_platform()?;
    let txn = db.begin_write().await?;
    let t = create_in(&txn, TenantId::new(), &input).await?;
    txn.commit().await?;
    Ok(t)
}

/// Inserts the tenant inside the caller's transaction; a taken slug is a CONFLICT.
pub async fn create_in(
    conn: &impl sea_orm::ConnectionTrait,
    id: TenantId,
    input: &NewTenant,
) -> AppResult<Tenant> {
    match repo::insert(conn, id, input).await {
        Ok(t) => Ok(t),
        Err(e) if e.is_unique_violation() => Err(AppError::Conflict(format!(
            "a tenant with slug {:?} already exists",
            input.slug
        ))),
        Err(e) => Err(e),
    }
}

pub async fn update(
    db: &Db,
    principal: &Principal,
    id: TenantId,
    patch: TenantPatch,
) -> AppResult<Tenant> {
    principal.require_platform()?;
    let txn = db.begin_write().await?;
    let t = repo::update(&txn, id, patch)
        .await?
        .ok_or(AppError::not_found("tenant"))?;
    txn.commit().await?;
    db.caches().forget_tenant(id);
    Ok(t)
}

/// Loads a tenant without a permission check (for services that already checked one).
/// [`get`] through a cache that lives for one job run (tenants change rarely; a run is short).
pub async fn get_cached(
    db: &Db,
    cache: &mut std::collections::HashMap<TenantId, Tenant>,
    id: TenantId,
) -> AppResult<Tenant> {
    if let Some(t) = cache.get(&id) {
        return Ok(t.clone());
    }
    let t = get(db, id).await?;
    cache.insert(id, t.clone());
    Ok(t)
}

/// The tenant, through the process's cache (see [`crate::cache`] for how fresh it is).
pub async fn get(db: &Db, id: TenantId) -> AppResult<Tenant> {
    db.caches()
        .tenants
        .get_or_load(&id, async {
            repo::find(db.reader(), id)
                .await?
                .ok_or(AppError::not_found("tenant"))
        })
        .await
}

/// A tenant as its caller may see it: the platform key sees all, a tenant key its own.
pub async fn get_visible(db: &Db, principal: &Principal, id: TenantId) -> AppResult<Tenant> {
    match principal {
        Principal::Platform => get(db, id).await,
        Principal::Tenant(t) if t.tenant_id == id => get(db, id).await,
        Principal::Tenant(_) => Err(AppError::not_found("tenant")),
    }
}

pub async fn list(db: &Db, principal: &Principal, page: PageRequest) -> AppResult<Page<Tenant>> {
    principal.require_platform()?;
    repo::list(db.reader(), page).await
}

pub async fn find_by_slug(db: &Db, slug: &str) -> AppResult<Option<Tenant>> {
    repo::find_by_slug(db.reader(), slug).await
}
