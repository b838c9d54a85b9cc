//! The domain-event outbox: facts appended in the transaction that made them true, read in
//! order afterwards (the `events` query today; webhooks and brokers later). Because the append
//! commits or rolls back with the change, nothing is announced that did not happen and nothing
//! that happened is missing.
//!
//! Kinds: `member.enrolled`, `member.birthday`, `purchase.recorded`, `purchase.returned`,
//! `event.recorded`, `points.earned`, `points.reversed`, `points.expired`, `plugin.failed`,
//! `reward.redeemed`, `reward.used`, `reward.expired`, `reward.cancelled`,
//! `referral.attributed`, `referral.qualified`, `referral.refused`.
//! An event's own record comes first, then the points it earned.

use crate::db::Batch;
use crate::db::entities::outbox_events;
use crate::error::{AppError, AppResult};
use crate::ids::{MemberId, TenantId};
use crate::pagination::{Page, PageRequest};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

/// One domain event.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainEvent {
    /// UUIDv7: ordered by time of append.
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub member_id: Option<MemberId>,
    pub kind: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Appends an event inside the caller's transaction.
pub async fn append(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: Option<MemberId>,
    kind: &str,
    payload: serde_json::Value,
    now: DateTime<Utc>,
) -> AppResult<()> {
    append_all(conn, tenant, member, vec![(kind, payload)], now).await
}

/// Appends several events about one member in one statement, in the order given.
pub async fn append_all(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: Option<MemberId>,
    events: Vec<(&str, serde_json::Value)>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut batch = Batch::on(conn);
    append_all_into(&mut batch, tenant, member, events, now);
    Ok(batch.run(conn).await?)
}

/// [`append_all`] as part of a [`Batch`]: the records keep their order (ids are assigned
/// here, in order).
pub fn append_all_into(
    batch: &mut Batch,
    tenant: TenantId,
    member: Option<MemberId>,
    events: Vec<(&str, serde_json::Value)>,
    now: DateTime<Utc>,
) {
    if events.is_empty() {
        return;
    }
    // Few columns per row: 500 rows stay far below both databases' bind limits.
    let rows: Vec<_> = events
        .into_iter()
        .map(|(kind, payload)| {
            outbox_events::Model {
                id: Uuid::now_v7(),
                tenant_id: tenant.0,
                member_id: member.map(|m| m.0),
                kind: kind.into(),
                payload: payload.to_string(),
                created_at: now,
            }
            .into_active_model()
        })
        .collect();
    for chunk in rows.chunks(500) {
        batch.insert(outbox_events::Entity::insert_many(chunk.to_vec()));
    }
}

/// The tenant's events, oldest first, optionally of one kind or about one member.
pub async fn list(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    kind: Option<&str>,
    member: Option<MemberId>,
    page: PageRequest,
) -> AppResult<Page<DomainEvent>> {
    use outbox_events::Column as C;
    let mut q = outbox_events::Entity::find()
        .filter(C::TenantId.eq(tenant.0))
        .order_by_asc(C::Id);
    if let Some(kind) = kind {
        q = q.filter(C::Kind.eq(kind));
    }
    if let Some(member) = member {
        q = q.filter(C::MemberId.eq(member.0));
    }
    if let Some(after) = page.after {
        q = q.filter(C::Id.gt(after));
    }
    let rows = q.limit(page.limit + 1).all(conn).await?;
    let items = rows
        .into_iter()
        .map(|m| {
            Ok(DomainEvent {
                id: m.id,
                tenant_id: TenantId(m.tenant_id),
                member_id: m.member_id.map(MemberId),
                kind: m.kind,
                payload: serde_json::from_str(&m.payload).map_err(AppError::internal)?,
                created_at: m.created_at,
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    Ok(Page::from_overfetch(items, page.limit))
}
