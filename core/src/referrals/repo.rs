//! Queries of referrals.

use super::{Referral, Refusal, Status};
use crate::db::Batch;
use crate::db::entities::{referral_codes, referral_refusals, referrals};
use crate::error::{AppError, AppResult};
use crate::ids::{MemberId, TenantId};
use crate::pagination::{Page, PageRequest};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};
use uuid::Uuid;

/// A member's referral code as part of a [`Batch`].
pub fn insert_code_into(batch: &mut Batch, tenant: TenantId, member: MemberId, code: &str) {
    batch.insert(referral_codes::Entity::insert(
        referral_codes::Model {
            member_id: member.0,
            tenant_id: tenant.0,
            code: code.into(),
        }
        .into_active_model(),
    ));
}

pub async fn code_of(conn: &impl ConnectionTrait, member: MemberId) -> AppResult<Option<String>> {
    Ok(referral_codes::Entity::find_by_id(member.0)
        .one(conn)
        .await?
        .map(|m| m.code))
}

pub async fn owner_of(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    code: &str,
) -> AppResult<Option<MemberId>> {
    Ok(referral_codes::Entity::find()
        .filter(referral_codes::Column::TenantId.eq(tenant.0))
        .filter(referral_codes::Column::Code.eq(code))
        .one(conn)
        .await?
        .map(|m| MemberId(m.member_id)))
}

pub(crate) fn referral_from(m: referrals::Model) -> AppResult<Referral> {
    Ok(Referral {
        id: m.id,
        referrer_id: MemberId(m.referrer_id),
        referee_id: MemberId(m.referee_id),
        status: Status::parse(&m.status)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("bad status {:?}", m.status)))?,
        created_at: m.created_at,
        qualified_at: m.qualified_at,
        referrer_points: m.referrer_points,
        referee_points: m.referee_points,
        event_id: m.event_id,
    })
}

pub async fn insert_referral(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    r: &Referral,
) -> AppResult<()> {
    referrals::Entity::insert(
        referrals::Model {
            id: r.id,
            tenant_id: tenant.0,
            referrer_id: r.referrer_id.0,
            referee_id: r.referee_id.0,
            status: r.status.as_str().into(),
            created_at: r.created_at,
            qualified_at: r.qualified_at,
            referrer_points: r.referrer_points,
            referee_points: r.referee_points,
            event_id: r.event_id.clone(),
        }
        .into_active_model(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub async fn save_referral(conn: &impl ConnectionTrait, r: &Referral) -> AppResult<()> {
    let mut am = referrals::ActiveModel {
        id: sea_orm::Set(r.id),
        ..Default::default()
    };
    am.status = sea_orm::Set(r.status.as_str().into());
    am.qualified_at = sea_orm::Set(r.qualified_at);
    am.referrer_points = sea_orm::Set(r.referrer_points);
    am.referee_points = sea_orm::Set(r.referee_points);
    am.event_id = sea_orm::Set(r.event_id.clone());
    am.update(conn).await?;
    Ok(())
}

/// The referral that brought `referee`, if any.
pub async fn of_referee(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    referee: MemberId,
) -> AppResult<Option<Referral>> {
    referrals::Entity::find()
        .filter(referrals::Column::TenantId.eq(tenant.0))
        .filter(referrals::Column::RefereeId.eq(referee.0))
        .one(conn)
        .await?
        .map(referral_from)
        .transpose()
}

pub async fn list_of_referrer(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    referrer: MemberId,
    page: PageRequest,
) -> AppResult<Page<Referral>> {
    let mut q = referrals::Entity::find()
        .filter(referrals::Column::TenantId.eq(tenant.0))
        .filter(referrals::Column::ReferrerId.eq(referrer.0))
        .order_by_desc(referrals::Column::Id);
    if let Some(after) = page.after {
        q = q.filter(referrals::Column::Id.lt(after));
    }
    let rows = q
        .limit(page.limit + 1)
        .all(conn)
        .await?
        .into_iter()
        .map(referral_from)
        .collect::<AppResult<Vec<_>>>()?;
    Ok(Page::from_overfetch(rows, page.limit))
}

/// Qualified referrals of `referrer` with `qualified_at` in `[from, until)` (all, without a
/// range).
pub async fn count_qualified(
    conn: &impl ConnectionTrait,
    referrer: MemberId,
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> AppResult<u64> {
    use sea_orm::PaginatorTrait;
    let mut q = referrals::Entity::find()
        .filter(referrals::Column::ReferrerId.eq(referrer.0))
        .filter(referrals::Column::Status.eq(Status::Qualified.as_str()));
    if let Some((from, until)) = range {
        q = q
            .filter(referrals::Column::QualifiedAt.gte(from))
            .filter(referrals::Column::QualifiedAt.lt(until));
    }
    Ok(q.count(conn).await?)
}

/// Whether a member whose phone is `phone` was ever referred in the tenant.
pub async fn phone_was_referred(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    phone: &str,
) -> AppResult<bool> {
    use crate::db::entities::members;
    let referred = referrals::Entity::find()
        .select_only()
        .column(referrals::Column::RefereeId)
        .filter(referrals::Column::TenantId.eq(tenant.0))
        .into_query();
    let n = members::Entity::find()
        .filter(members::Column::TenantId.eq(tenant.0))
        .filter(members::Column::Phone.eq(phone))
        .filter(members::Column::Id.in_subquery(referred))
        .limit(1)
        .all(conn)
        .await?
        .len();
    Ok(n > 0)
}

pub async fn insert_refusal(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    r: &Refusal,
) -> AppResult<()> {
    referral_refusals::Entity::insert(
        referral_refusals::Model {
            id: r.id,
            tenant_id: tenant.0,
            referrer_id: r.referrer_id.map(|m| m.0),
            referee_id: r.referee_id.0,
            code: r.code.clone(),
            reason: r.reason.clone(),
            stage: r.stage.into(),
            created_at: r.created_at,
        }
        .into_active_model(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub async fn list_refusals(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    page: PageRequest,
) -> AppResult<Page<Refusal>> {
    let mut q = referral_refusals::Entity::find()
        .filter(referral_refusals::Column::TenantId.eq(tenant.0))
        .order_by_desc(referral_refusals::Column::Id);
    if let Some(after) = page.after {
        q = q.filter(referral_refusals::Column::Id.lt(after));
    }
    let rows = q
        .limit(page.limit + 1)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| Refusal {
            id: m.id,
            referrer_id: m.referrer_id.map(MemberId),
            referee_id: MemberId(m.referee_id),
            code: m.code,
            reason: m.reason,
            stage: if m.stage == "QUALIFICATION" {
                "QUALIFICATION"
            } else {
                "ATTRIBUTION"
            },
            created_at: m.created_at,
        })
        .collect();
    Ok(Page::from_overfetch(rows, page.limit))
}

pub fn new_id() -> Uuid {
    Uuid::now_v7()
}
