//! Queries for tenants.

use super::{Branding, NewTenant, PointsPolicy, Tenant, TenantPatch};
use crate::db::entities::tenants;
use crate::error::{AppError, AppResult};
use crate::ids::TenantId;
use crate::ledger::{ExpiryPolicy, ShortfallPolicy};
use crate::pagination::{Page, PageRequest};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

fn to_domain(m: tenants::Model) -> AppResult<Tenant> {
    let timezone = m.timezone.parse().map_err(|_| {
        AppError::internal(anyhow::anyhow!(
            "tenant {} has bad timezone {:?}",
            m.id,
            m.timezone
        ))
    })?;
    Ok(Tenant {
        id: TenantId(m.id),
        slug: m.slug,
        name: m.name,
        timezone,
        points_name: m.points_name,
        currency: m.currency,
        referral_cap: match (m.referral_cap, m.referral_cap_period.as_deref()) {
            (Some(n), Some(p)) => crate::referrals::CapPeriod::parse(p).map(|p| (n, p)),
            _ => None,
        },
        branding: Branding {
            primary_color: m.primary_color,
            logo_url: m.logo_url,
        },
        points_policy: PointsPolicy {
            expiry: ExpiryPolicy::from_db(&m.expiry_policy).ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("bad expiry policy {:?}", m.expiry_policy))
            })?,
            shortfall: ShortfallPolicy::from_db(&m.shortfall_policy).ok_or_else(|| {
                AppError::internal(anyhow::anyhow!(
                    "bad shortfall policy {:?}",
                    m.shortfall_policy
                ))
            })?,
        },
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

pub async fn insert(conn: &impl ConnectionTrait, id: TenantId, t: &NewTenant) -> AppResult<Tenant> {
    let now = crate::clock::now();
    let model = tenants::Model {
        id: id.0,
        slug: t.slug.clone(),
        name: t.name.clone(),
        timezone: t.timezone.name().into(),
        points_name: t.points_name.clone(),
        primary_color: t.branding.primary_color.clone(),
        logo_url: t.branding.logo_url.clone(),
        expiry_policy: PointsPolicy::default().expiry.as_db(),
        shortfall_policy: PointsPolicy::default().shortfall.as_db().into(),
        currency: t.currency.clone(),
        referral_cap: None,
        referral_cap_period: None,
        created_at: now,
        updated_at: now,
    };
    tenants::Entity::insert(model.clone().into_active_model())
        .exec_without_returning(conn)
        .await?;
    to_domain(model)
}

pub async fn find(conn: &impl ConnectionTrait, id: TenantId) -> AppResult<Option<Tenant>> {
    tenants::Entity::find_by_id(id.0)
        .one(conn)
        .await?
        .map(to_domain)
        .transpose()
}

pub async fn find_by_slug(conn: &impl ConnectionTrait, slug: &str) -> AppResult<Option<Tenant>> {
    tenants::Entity::find()
        .filter(tenants::Column::Slug.eq(slug))
        .one(conn)
        .await?
        .map(to_domain)
        .transpose()
}

pub async fn update(
    conn: &impl ConnectionTrait,
    id: TenantId,
    patch: TenantPatch,
) -> AppResult<Option<Tenant>> {
    let Some(model) = tenants::Entity::find_by_id(id.0).one(conn).await? else {
        return Ok(None);
    };
    let mut a = model.clone().into_active_model();
    if let Some(v) = patch.name {
        a.name = Set(v);
    }
    if let Some(v) = patch.timezone {
        a.timezone = Set(v.name().into());
    }
    if let Some(v) = patch.points_name {
        a.points_name = Set(v);
    }
    a.primary_color = Set(patch.primary_color.apply(model.primary_color));
    a.logo_url = Set(patch.logo_url.apply(model.logo_url));
    a.updated_at = Set(crate::clock::now());
    to_domain(a.update(conn).await?).map(Some)
}

pub async fn list(conn: &impl ConnectionTrait, page: PageRequest) -> AppResult<Page<Tenant>> {
    let mut q = tenants::Entity::find().order_by_asc(tenants::Column::Id);
    if let Some(after) = page.after {
        q = q.filter(tenants::Column::Id.gt(after));
    }
    let rows = q.limit(page.limit + 1).all(conn).await?;
    let rows = rows
        .into_iter()
        .map(to_domain)
        .collect::<AppResult<Vec<_>>>()?;
    Ok(Page::from_overfetch(rows, page.limit))
}

pub async fn set_referral_cap(
    conn: &impl ConnectionTrait,
    id: TenantId,
    cap: Option<(i64, crate::referrals::CapPeriod)>,
) -> AppResult<Option<Tenant>> {
    let Some(model) = tenants::Entity::find_by_id(id.0).one(conn).await? else {
        return Ok(None);
    };
    let mut a = model.into_active_model();
    a.referral_cap = Set(cap.map(|(n, _)| n));
    a.referral_cap_period = Set(cap.map(|(_, p)| p.as_str().to_string()));
    a.updated_at = Set(crate::clock::now());
    to_domain(a.update(conn).await?).map(Some)
}

pub async fn set_points_policy(
    conn: &impl ConnectionTrait,
    id: TenantId,
    policy: PointsPolicy,
) -> AppResult<Option<Tenant>> {
    let Some(model) = tenants::Entity::find_by_id(id.0).one(conn).await? else {
        return Ok(None);
    };
    let mut a = model.into_active_model();
    a.expiry_policy = Set(policy.expiry.as_db());
    a.shortfall_policy = Set(policy.shortfall.as_db().into());
    a.updated_at = Set(crate::clock::now());
    to_domain(a.update(conn).await?).map(Some)
}
