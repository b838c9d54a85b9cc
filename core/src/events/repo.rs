//! Queries of the events pipeline. Every function takes the tenant first and filters by it.

use super::{Award, Channel, MemberRef, MemberStats, Purchase, PurchaseLine, PurchaseReturn};
use crate::db::Batch;
use crate::db::entities::{
    event_awards, ledger_balances, member_events, member_stats, member_tiers, members,
    purchase_lines, purchase_returns, purchases, referrals,
};
use crate::error::{AppError, AppResult};
use crate::ids::{MemberId, TenantId};
use crate::ledger::Balances;
use crate::members::Member;
use crate::pagination::{Page, PageRequest};
use crate::referrals::Referral;
use crate::tiers::MemberTier;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Value;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    FromQueryResult, IntoActiveModel, Iterable, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use uuid::Uuid;

fn purchase_from(m: purchases::Model, lines: Vec<PurchaseLine>) -> AppResult<Purchase> {
    Ok(Purchase {
        id: m.id,
        member_id: MemberId(m.member_id),
        order_id: m.order_id,
        request_hash: m.request_hash,
        occurred_at: m.occurred_at,
        currency: m.currency,
        total: m.total,
        channel: Channel::parse(&m.channel)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("bad channel {:?}", m.channel)))?,
        store_id: m.store_id,
        lines,
        returned_amount: m.returned_amount,
        points_earned: m.points_earned,
        created_at: m.created_at,
    })
}

fn line_from(m: purchase_lines::Model) -> PurchaseLine {
    PurchaseLine {
        line_index: m.line_index,
        sku: m.sku,
        category: m.category,
        quantity: m.quantity,
        unit_price: m.unit_price,
        returned_quantity: m.returned_quantity,
    }
}

async fn lines_of(conn: &impl ConnectionTrait, purchase: Uuid) -> AppResult<Vec<PurchaseLine>> {
    Ok(purchase_lines::Entity::find()
        .filter(purchase_lines::Column::PurchaseId.eq(purchase))
        .order_by_asc(purchase_lines::Column::LineIndex)
        .all(conn)
        .await?
        .into_iter()
        .map(line_from)
        .collect())
}

pub async fn find_purchase(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    order_id: &str,
) -> AppResult<Option<Purchase>> {
    let Some(m) = purchases::Entity::find()
        .filter(purchases::Column::TenantId.eq(tenant.0))
        .filter(purchases::Column::OrderId.eq(order_id))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let lines = lines_of(conn, m.id).await?;
    purchase_from(m, lines).map(Some)
}

pub async fn insert_purchase(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    p: &Purchase,
) -> AppResult<()> {
    let mut batch = Batch::on(conn);
    insert_purchase_into(&mut batch, tenant, p);
    Ok(batch.run(conn).await?)
}

/// [`insert_purchase`] as part of a [`Batch`]: the purchase, then its lines.
pub fn insert_purchase_into(batch: &mut Batch, tenant: TenantId, p: &Purchase) {
    batch.insert(purchases::Entity::insert(
        purchases::Model {
            id: p.id,
            tenant_id: tenant.0,
            member_id: p.member_id.0,
            order_id: p.order_id.clone(),
            request_hash: p.request_hash.clone(),
            occurred_at: p.occurred_at,
            currency: p.currency.clone(),
            total: p.total,
            channel: p.channel.as_str().into(),
            store_id: p.store_id.clone(),
            returned_amount: p.returned_amount,
            points_earned: p.points_earned,
            created_at: p.created_at,
        }
        .into_active_model(),
    ));
    if !p.lines.is_empty() {
        let rows = p.lines.iter().map(|l| {
            purchase_lines::Model {
                purchase_id: p.id,
                line_index: l.line_index,
                tenant_id: tenant.0,
                sku: l.sku.clone(),
                category: l.category.clone(),
                quantity: l.quantity,
                unit_price: l.unit_price,
                returned_quantity: l.returned_quantity,
            }
            .into_active_model()
        });
        batch.insert(purchase_lines::Entity::insert_many(rows));
    }
}

/// Saves what changes on a purchase after it was recorded: points earned, returned amount and
/// the returned quantity of each line.
pub async fn save_purchase_progress(conn: &impl ConnectionTrait, p: &Purchase) -> AppResult<()> {
    let mut am = purchases::ActiveModel {
        id: sea_orm::Set(p.id),
        ..Default::default()
    };
    am.returned_amount = sea_orm::Set(p.returned_amount);
    am.points_earned = sea_orm::Set(p.points_earned);
    am.update(conn).await?;
    for l in &p.lines {
        let mut line = purchase_lines::ActiveModel {
            purchase_id: sea_orm::Set(p.id),
            line_index: sea_orm::Set(l.line_index),
            ..Default::default()
        };
        line.returned_quantity = sea_orm::Set(l.returned_quantity);
        line.update(conn).await?;
    }
    Ok(())
}

pub async fn list_purchases(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
    page: PageRequest,
) -> AppResult<Page<Purchase>> {
    let mut q = purchases::Entity::find()
        .filter(purchases::Column::TenantId.eq(tenant.0))
        .filter(purchases::Column::MemberId.eq(member.0))
        .order_by_desc(purchases::Column::Id);
    if let Some(after) = page.after {
        q = q.filter(purchases::Column::Id.lt(after));
    }
    let rows = q.limit(page.limit + 1).all(conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for m in rows {
        let lines = lines_of(conn, m.id).await?;
        out.push(purchase_from(m, lines)?);
    }
    Ok(Page::from_overfetch(out, page.limit))
}

fn return_from(m: purchase_returns::Model, order_id: String) -> PurchaseReturn {
    PurchaseReturn {
        id: m.id,
        purchase_id: m.purchase_id,
        member_id: MemberId(m.member_id),
        order_id,
        return_id: m.return_id,
        request_hash: m.request_hash,
        amount: m.amount,
        points_clawed_back: m.points_clawed_back,
        created_at: m.created_at,
    }
}

pub async fn find_return(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    return_id: &str,
) -> AppResult<Option<PurchaseReturn>> {
    let Some(m) = purchase_returns::Entity::find()
        .filter(purchase_returns::Column::TenantId.eq(tenant.0))
        .filter(purchase_returns::Column::ReturnId.eq(return_id))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let order = purchases::Entity::find_by_id(m.purchase_id)
        .one(conn)
        .await?
        .map(|p| p.order_id)
        .unwrap_or_default();
    Ok(Some(return_from(m, order)))
}

pub async fn insert_return(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    r: &PurchaseReturn,
) -> AppResult<()> {
    purchase_returns::Entity::insert(
        purchase_returns::Model {
            id: r.id,
            tenant_id: tenant.0,
            purchase_id: r.purchase_id,
            member_id: r.member_id.0,
            return_id: r.return_id.clone(),
            request_hash: r.request_hash.clone(),
            amount: r.amount,
            points_clawed_back: r.points_clawed_back,
            created_at: r.created_at,
        }
        .into_active_model(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// A recorded member event (custom, enrolment, birthday).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: Uuid,
    pub member_id: MemberId,
    pub request_hash: String,
}

pub async fn find_event(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    event_id: &str,
) -> AppResult<Option<StoredEvent>> {
    Ok(member_events::Entity::find()
        .filter(member_events::Column::TenantId.eq(tenant.0))
        .filter(member_events::Column::EventId.eq(event_id))
        .one(conn)
        .await?
        .map(|m| StoredEvent {
            id: m.id,
            member_id: MemberId(m.member_id),
            request_hash: m.request_hash,
        }))
}

/// A member event's row (custom, enrolment, birthday), as part of a [`Batch`].
#[allow(clippy::too_many_arguments)]
pub fn insert_event_into(
    batch: &mut Batch,
    tenant: TenantId,
    id: Uuid,
    member: MemberId,
    event_id: &str,
    kind: &str,
    name: Option<&str>,
    request_hash: &str,
    occurred_at: DateTime<Utc>,
    properties: &str,
    now: DateTime<Utc>,
) {
    batch.insert(member_events::Entity::insert(
        member_events::Model {
            id,
            tenant_id: tenant.0,
            member_id: member.0,
            event_id: event_id.into(),
            kind: kind.into(),
            name: name.map(Into::into),
            request_hash: request_hash.into(),
            occurred_at,
            properties: properties.into(),
            created_at: now,
        }
        .into_active_model(),
    ));
}

fn award_from(m: event_awards::Model) -> Award {
    Award {
        id: m.id,
        points: m.points,
        reason_code: m.reason_code,
        plugin_name: m.plugin_name,
        plugin_version: m.plugin_version,
        binding_id: m.binding_id,
        line_index: m.line_index,
        entry_id: Some(m.entry_id),
        clawed_back: m.clawed_back,
    }
}

/// The awards an event (purchase or member event) produced, in the order they were made.
pub async fn awards_of(conn: &impl ConnectionTrait, source: Uuid) -> AppResult<Vec<Award>> {
    Ok(event_awards::Entity::find()
        .filter(event_awards::Column::SourceId.eq(source))
        .order_by_asc(event_awards::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(award_from)
        .collect())
}

/// Stores several awards of one event in one statement (chunked far below the bind limits).
pub async fn insert_awards(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
    source: Uuid,
    awards: &[Award],
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut batch = Batch::on(conn);
    insert_awards_into(&mut batch, tenant, member, source, awards, now)?;
    Ok(batch.run(conn).await?)
}

/// [`insert_awards`] as part of a [`Batch`] (after the awards' entries).
pub fn insert_awards_into(
    batch: &mut Batch,
    tenant: TenantId,
    member: MemberId,
    source: Uuid,
    awards: &[Award],
    now: DateTime<Utc>,
) -> AppResult<()> {
    let rows = awards
        .iter()
        .map(|a| {
            let entry_id = a.entry_id.ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("an award is stored with its entry"))
            })?;
            Ok(event_awards::Model {
                id: a.id,
                tenant_id: tenant.0,
                member_id: member.0,
                source_id: source,
                entry_id,
                binding_id: a.binding_id,
                plugin_name: a.plugin_name.clone(),
                plugin_version: a.plugin_version.clone(),
                reason_code: a.reason_code.clone(),
                line_index: a.line_index,
                points: a.points,
                clawed_back: a.clawed_back,
                created_at: now,
            }
            .into_active_model())
        })
        .collect::<AppResult<Vec<_>>>()?;
    for chunk in rows.chunks(500) {
        batch.insert(event_awards::Entity::insert_many(chunk.to_vec()));
    }
    Ok(())
}

pub async fn save_award_clawback(conn: &impl ConnectionTrait, a: &Award) -> AppResult<()> {
    let mut am = event_awards::ActiveModel {
        id: sea_orm::Set(a.id),
        ..Default::default()
    };
    am.clawed_back = sea_orm::Set(a.clawed_back);
    am.update(conn).await?;
    Ok(())
}

pub async fn stats(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
) -> AppResult<MemberStats> {
    Ok(member_stats::Entity::find_by_id(member.0)
        .filter(member_stats::Column::TenantId.eq(tenant.0))
        .one(conn)
        .await?
        .map(|m| MemberStats {
            lifetime_spend: m.lifetime_spend,
            purchase_count: m.purchase_count,
            first_purchase_at: m.first_purchase_at,
            last_purchase_at: m.last_purchase_at,
        })
        .unwrap_or_default())
}

/// Writes the member's statistics (the caller holds the member's balance lock).
pub async fn save_stats(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
    s: &MemberStats,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut batch = Batch::on(conn);
    save_stats_into(&mut batch, tenant, member, s, now);
    Ok(batch.run(conn).await?)
}

/// [`save_stats`] as part of a [`Batch`].
pub fn save_stats_into(
    batch: &mut Batch,
    tenant: TenantId,
    member: MemberId,
    s: &MemberStats,
    now: DateTime<Utc>,
) {
    use sea_orm::sea_query::OnConflict;
    let model = member_stats::Model {
        member_id: member.0,
        tenant_id: tenant.0,
        lifetime_spend: s.lifetime_spend,
        purchase_count: s.purchase_count,
        first_purchase_at: s.first_purchase_at,
        last_purchase_at: s.last_purchase_at,
        updated_at: now,
    };
    let upsert = member_stats::Entity::insert(model.into_active_model()).on_conflict(
        OnConflict::column(member_stats::Column::MemberId)
            .update_columns([
                member_stats::Column::LifetimeSpend,
                member_stats::Column::PurchaseCount,
                member_stats::Column::FirstPurchaseAt,
                member_stats::Column::LastPurchaseAt,
                member_stats::Column::UpdatedAt,
            ])
            .to_owned(),
    );
    batch.insert(upsert);
}

/// Midnight at the start of `date` in `tz`, in UTC (the first instant of the day when a DST
/// change skips midnight).
fn local_midnight(tz: chrono_tz::Tz, date: chrono::NaiveDate) -> DateTime<Utc> {
    use chrono::TimeZone;
    let mut t = date.and_time(chrono::NaiveTime::MIN);
    for _ in 0..4 {
        if let Some(local) = tz.from_local_datetime(&t).earliest() {
            return local.with_timezone(&Utc);
        }
        t += chrono::Duration::minutes(30);
    }
    t.and_utc()
}

/// The calendar periods (day, ISO week, month, year) of `tz` that contain `at`, each as
/// `[start, end)` in UTC.
pub fn periods(tz: chrono_tz::Tz, at: DateTime<Utc>) -> [(DateTime<Utc>, DateTime<Utc>); 4] {
    use chrono::{Datelike, Days, Months, NaiveDate};
    let d = at.with_timezone(&tz).date_naive();
    let week = d - Days::new(u64::from(d.weekday().num_days_from_monday()));
    let month = d.with_day(1).unwrap_or(d);
    let year = NaiveDate::from_ymd_opt(d.year(), 1, 1).unwrap_or(d);
    let m = |date| local_midnight(tz, date);
    [
        (m(d), m(d + Days::new(1))),
        (m(week), m(week + Days::new(7))),
        (m(month), m(month + Months::new(1))),
        (m(year), m(year + Months::new(12))),
    ]
}

/// How many custom events named `name` the member has, in the periods of `at`, and ever.
pub async fn prior_counts(
    conn: &impl ConnectionTrait,
    tz: chrono_tz::Tz,
    tenant: TenantId,
    member: MemberId,
    name: &str,
    at: DateTime<Utc>,
) -> AppResult<loyalty_sdk::EventCounts> {
    use member_events::Column as C;
    use sea_orm::PaginatorTrait;
    let base = || {
        member_events::Entity::find()
            .filter(C::MemberId.eq(member.0))
            .filter(C::TenantId.eq(tenant.0))
            .filter(C::Kind.eq("custom"))
            .filter(C::Name.eq(name))
    };
    let mut within = [0u32; 4];
    for (slot, (from, until)) in within.iter_mut().zip(periods(tz, at)) {
        let n = base()
            .filter(C::OccurredAt.gte(from))
            .filter(C::OccurredAt.lt(until))
            .count(conn)
            .await?;
        *slot = u32::try_from(n).unwrap_or(u32::MAX);
    }
    let total = u32::try_from(base().count(conn).await?).unwrap_or(u32::MAX);
    Ok(loyalty_sdk::EventCounts {
        day: within[0],
        week: within[1],
        month: within[2],
        year: within[3],
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::periods;
    use chrono::{DateTime, Utc};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    #[test]
    fn periods_follow_the_tenant_calendar_across_a_dst_change() {
        // Sunday 29 March 2026: Amsterdam moves from CET to CEST; the day has 23 hours.
        let [day, week, month, year] =
            periods(chrono_tz::Europe::Amsterdam, t("2026-03-29T12:00:00Z"));
        assert_eq!(day, (t("2026-03-28T23:00:00Z"), t("2026-03-29T22:00:00Z")));
        assert_eq!(week, (t("2026-03-22T23:00:00Z"), t("2026-03-29T22:00:00Z")));
        assert_eq!(
            month,
            (t("2026-02-28T23:00:00Z"), t("2026-03-31T22:00:00Z"))
        );
        assert_eq!(year, (t("2025-12-31T23:00:00Z"), t("2026-12-31T23:00:00Z")));
        // 23:30 UTC on 31 October is already November in Amsterdam.
        let [_, _, month, _] = periods(chrono_tz::Europe::Amsterdam, t("2026-10-31T23:30:00Z"));
        assert_eq!(month.0, t("2026-10-31T23:00:00Z"));
    }

    #[test]
    fn a_rendered_state_statement_is_the_query_built_for_its_values() {
        use super::{
            MemberRef, Value, member_and_balances_query, member_and_balances_sql,
            state_and_order_query, state_and_order_statement,
        };
        use crate::ids::{MemberId, TenantId};
        use sea_orm::DbBackend;
        // Each shape rendered by a first call, then asked again with other values: the text
        // is the one the builder gives for those values, and so are the values, in order.
        for round in 0..3u128 {
            let tenant = TenantId(uuid::Uuid::from_u128(round + 1));
            let member = MemberId(uuid::Uuid::from_u128(round + 100));
            let by_id = MemberRef::Id(member);
            let external = MemberRef::External(format!("crm-{round}"));
            let order = format!("order-{round}");
            for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
                for who in [&by_id, &external] {
                    for order_id in [None, Some(order.as_str())] {
                        let cached = state_and_order_statement(backend, tenant, who, order_id);
                        let built = backend.build(&state_and_order_query(tenant, who, order_id));
                        assert_eq!(cached.sql, built.sql, "{backend:?} {who:?} {order_id:?}");
                        assert_eq!(
                            cached.values, built.values,
                            "{backend:?} {who:?} {order_id:?}"
                        );
                    }
                }
                let built = backend.build(&member_and_balances_query(tenant, member));
                assert_eq!(
                    member_and_balances_sql(backend),
                    built.sql,
                    "{backend:?} member and balances"
                );
                let values: Vec<Value> = vec![tenant.0.into(), member.0.into()];
                assert_eq!(
                    built.values,
                    Some(sea_orm::Values(values)),
                    "{backend:?} member and balances: the values query_one_by_ids binds"
                );
            }
        }
    }
}

/// What an event reads of its member before it writes: the member, balances (`None` before
/// the member's first entry), purchase statistics, stored tier and the referral that brought
/// them (`None` when nobody referred them).
#[derive(Clone, Debug, PartialEq)]
pub struct MemberState {
    pub member: Member,
    pub balances: Option<Balances>,
    pub stats: MemberStats,
    pub tier: Option<MemberTier>,
    pub referral: Option<Referral>,
}

/// Selects every column of `E` as `{prefix}{column}`.
fn select_prefixed<E: EntityTrait>(q: &mut sea_orm::sea_query::SelectStatement, prefix: &str) {
    use sea_orm::IdenStatic;
    use sea_orm::sea_query::{Alias, Expr};
    for c in E::Column::iter() {
        q.expr_as(
            Expr::col((E::default(), c)),
            Alias::new(format!("{prefix}{}", c.as_str())),
        );
    }
}

/// Left-joins the member's row of `E` (its `member` column is the member's id, in the
/// member's tenant) and selects its columns as `{prefix}{column}`.
fn join_member_row<E: EntityTrait>(
    q: &mut sea_orm::sea_query::SelectStatement,
    prefix: &str,
    member: E::Column,
    tenant: E::Column,
) {
    select_prefixed::<E>(q, prefix);
    left_join_member_row::<E>(q, member, tenant);
}

/// Left-joins the member's row of `E` without selecting its columns.
fn left_join_member_row<E: EntityTrait>(
    q: &mut sea_orm::sea_query::SelectStatement,
    member: E::Column,
    tenant: E::Column,
) {
    use sea_orm::sea_query::{Expr, ExprTrait, JoinType};
    let on = Expr::col((E::default(), member))
        .eq(Expr::col((members::Entity, members::Column::Id)))
        .and(
            Expr::col((E::default(), tenant))
                .eq(Expr::col((members::Entity, members::Column::TenantId))),
        );
    q.join(JoinType::LeftJoin, E::default(), on);
}

/// [`MemberState`] in one query (members joined with their balance, statistics, tier and
/// referral rows), without a lock, and in the same statement whether `order_id` (when given)
/// is already recorded in the tenant, for any member: a new purchase's replay check costs no
/// round trip of its own. `None` when there is no such member.
///
/// Not for locking on PostgreSQL: `FOR UPDATE OF ledger_balances` on this join would wait for
/// a concurrent event of the member and then re-read only the balance row, while statistics
/// and tier still came from the snapshot taken before the wait. Lock first
/// (`ledger::repo::lock_balances`), then read (see `events::pipeline::lock_states`).
pub async fn member_state_and_order(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    who: &MemberRef,
    order_id: Option<&str>,
) -> AppResult<Option<(MemberState, bool)>> {
    let stmt = state_and_order_statement(conn.get_database_backend(), tenant, who, order_id);
    let Some(row) = conn.query_one_raw(stmt).await? else {
        return Ok(None);
    };
    let recorded = match order_id {
        Some(_) => row.try_get::<bool>("", "order_recorded")?,
        None => false,
    };
    Ok(Some((state_from(&row)?, recorded)))
}

/// The statement of [`member_state_and_order`]. Its text depends only on the backend, on how
/// the member is named and on whether an order id is asked about: it is rendered once per
/// such shape (every purchase and balance read reads one, and building the join of five
/// tables and ~60 aliased columns was about 5 % of a balance read's CPU) and only its values
/// are new.
fn state_and_order_statement(
    backend: DbBackend,
    tenant: TenantId,
    who: &MemberRef,
    order_id: Option<&str>,
) -> Statement {
    static RENDERED: [OnceLock<String>; 8] = [const { OnceLock::new() }; 8];
    let backend_shape = match backend {
        DbBackend::Sqlite => 0,
        DbBackend::Postgres => 4,
        // Not a backend the server runs on: built every time.
        _ => return backend.build(&state_and_order_query(tenant, who, order_id)),
    };
    let shape = backend_shape
        + usize::from(matches!(who, MemberRef::External(_))) * 2
        + usize::from(order_id.is_some());
    let sql = RENDERED[shape].get_or_init(|| {
        backend
            .build(&state_and_order_query(tenant, who, order_id))
            .sql
    });
    // In the order of their placeholders: the order's lookup is in the select list, before
    // the member's `WHERE` (the unit test holds this to the builder's own values).
    let mut values: Vec<Value> = Vec::with_capacity(4);
    if let Some(order) = order_id {
        values.push(tenant.0.into());
        values.push(order.into());
    }
    values.push(tenant.0.into());
    values.push(match who {
        MemberRef::Id(id) => id.0.into(),
        MemberRef::External(e) => e.as_str().into(),
    });
    Statement::from_sql_and_values(backend, sql.clone(), values)
}

/// The query [`state_and_order_statement`] renders.
fn state_and_order_query(
    tenant: TenantId,
    who: &MemberRef,
    order_id: Option<&str>,
) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let member = |c: members::Column| Expr::col((members::Entity, c));
    let mut q = state_query(tenant);
    match who {
        MemberRef::Id(id) => q.and_where(member(members::Column::Id).eq(id.0)),
        MemberRef::External(e) => q.and_where(member(members::Column::ExternalId).eq(e.as_str())),
    };
    if let Some(order) = order_id {
        // `1` as text, not a parameter: the statement's values are the tenant, order and member.
        let recorded = Query::select()
            .expr(Expr::cust("1"))
            .from(purchases::Entity)
            .and_where(Expr::col((purchases::Entity, purchases::Column::TenantId)).eq(tenant.0))
            .and_where(Expr::col((purchases::Entity, purchases::Column::OrderId)).eq(order))
            .to_owned();
        q.expr_as(Expr::exists(recorded), Alias::new("order_recorded"));
    }
    q
}

/// [`member_state_and_order`]'s state of several members of `tenant` in one query, by id; a member that does
/// not exist is missing from the map. The same caveat on locking applies.
pub async fn member_states(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    ids: &[MemberId],
) -> AppResult<HashMap<MemberId, MemberState>> {
    let mut states = HashMap::with_capacity(ids.len());
    for row in conn.query_all(&member_states_query(ids)).await? {
        let s = state_from(&row)?;
        if s.member.tenant_id == tenant {
            states.insert(s.member.id, s);
        }
    }
    Ok(states)
}

/// The statement of [`member_states`]: by id alone, the tenant checked on each row. Beside
/// `members.tenant_id = ?`, SQLite's planner walked the tenant's range of a (tenant_id, ...)
/// index, every member of the tenant, instead of looking the ids up (250 ms a group at 1M
/// members); `tests/tests/query_plans.rs` holds it to the id lookup.
pub fn member_states_query(ids: &[MemberId]) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::{Expr, ExprTrait};
    let mut q = state_select();
    q.and_where(
        Expr::col((members::Entity, members::Column::Id))
            .is_in(crate::db::padded(ids).map(|id| id.0)),
    );
    q
}

/// The joined select of [`member_state_and_order`], for the members of `tenant`.
fn state_query(tenant: TenantId) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::{Expr, ExprTrait};
    let mut q = state_select();
    q.and_where(Expr::col((members::Entity, members::Column::TenantId)).eq(tenant.0));
    q
}

/// The joined select of [`member_state_and_order`], of any tenant: [`member_and_balances_select`] and
/// the member's statistics, tier and referral.
fn state_select() -> sea_orm::sea_query::SelectStatement {
    use member_stats::Column as S;
    use member_tiers::Column as T;
    use referrals::Column as R;
    let mut q = member_and_balances_select();
    join_member_row::<member_stats::Entity>(&mut q, "s_", S::MemberId, S::TenantId);
    join_member_row::<member_tiers::Entity>(&mut q, "t_", T::MemberId, T::TenantId);
    join_member_row::<referrals::Entity>(&mut q, "r_", R::RefereeId, R::TenantId);
    q
}

/// The member left-joined with what [`Balances`] holds of their balance row (`b_*`,
/// [`BALANCE_COLUMNS`]), of any tenant. The member's columns keep their own names (every
/// other table's have a prefix). Every select built on this one starts with these columns,
/// which [`member_and_balances_from`] decodes by position.
fn member_and_balances_select() -> sea_orm::sea_query::SelectStatement {
    use ledger_balances::Column as B;
    use sea_orm::IdenStatic;
    use sea_orm::sea_query::{Alias, Expr};
    let mut q = sea_orm::sea_query::Query::select();
    q.from(members::Entity);
    for c in members::Column::iter() {
        q.column((members::Entity, c));
    }
    for c in BALANCE_COLUMNS {
        q.expr_as(
            Expr::col((ledger_balances::Entity, c)),
            Alias::new(format!("b_{}", c.as_str())),
        );
    }
    left_join_member_row::<ledger_balances::Entity>(&mut q, B::MemberId, B::TenantId);
    q
}

/// The balance row's columns [`member_and_balances_select`] selects after the member's, in
/// this order: its key, NULL when the member has no balance row yet, then what [`Balances`]
/// holds.
const BALANCE_COLUMNS: [ledger_balances::Column; 7] = [
    ledger_balances::Column::MemberId,
    ledger_balances::Column::Available,
    ledger_balances::Column::Pending,
    ledger_balances::Column::Held,
    ledger_balances::Column::LifetimeEarned,
    ledger_balances::Column::LifetimeRedeemed,
    ledger_balances::Column::LifetimeExpired,
];

/// A member of `tenant` and their balances (`None` before the member's first entry), in one
/// statement of two tables: what `member(id) { balance }` needs. [`member_state_and_order`]
/// would join three more tables and copy twice the columns for fields this read does not
/// show. Read straight from the pool ([`crate::db::query_one_by_ids`]): the hottest read there is.
pub async fn member_and_balances(
    conn: &DatabaseConnection,
    tenant: TenantId,
    member: MemberId,
) -> AppResult<Option<(Member, Option<Balances>)>> {
    let sql = member_and_balances_sql(conn.get_database_backend());
    match crate::db::query_one_by_ids(conn, sql, &[tenant.0, member.0]).await? {
        Some(row) => Ok(Some(member_and_balances_from(&row)?)),
        None => Ok(None),
    }
}

/// The text of [`member_and_balances`], rendered once per backend like
/// [`state_and_order_statement`]; its values are the tenant and the member, in that order.
fn member_and_balances_sql(backend: DbBackend) -> &'static str {
    static RENDERED: [OnceLock<String>; 3] = [const { OnceLock::new() }; 3];
    let slot = match backend {
        DbBackend::Sqlite => 0,
        DbBackend::Postgres => 1,
        _ => 2,
    };
    // The values a statement is rendered with do not change its text.
    let any = TenantId(Uuid::nil());
    RENDERED[slot].get_or_init(|| {
        backend
            .build(&member_and_balances_query(any, MemberId(Uuid::nil())))
            .sql
    })
}

/// The query [`member_and_balances_sql`] renders.
fn member_and_balances_query(
    tenant: TenantId,
    member: MemberId,
) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::{Expr, ExprTrait};
    let col = |c: members::Column| Expr::col((members::Entity, c));
    let mut q = member_and_balances_select();
    q.and_where(col(members::Column::TenantId).eq(tenant.0));
    q.and_where(col(members::Column::Id).eq(member.0));
    q
}

/// A joined row is there when its key is not NULL; then every column must decode.
fn joined_row_present(row: &sea_orm::QueryResult, prefix: &str, key: &str) -> AppResult<bool> {
    Ok(row.try_get::<Option<Uuid>>(prefix, key)?.is_some())
}

/// The member and balances of one row of [`member_and_balances_select`] (or of a select
/// built on it), read by position: sea-orm's by-name lookup hashes every column's name, and
/// formats `{prefix}{column}` for a prefixed one (BENCHMARKS.md). Every read of a member's
/// state, the balance read's and each purchase's, decodes these columns.
fn member_and_balances_from(row: &sea_orm::QueryResult) -> AppResult<(Member, Option<Balances>)> {
    let mut c = Columns { row, next: 0 };
    let member = members::Model {
        id: c.get("id")?,
        tenant_id: c.get("tenant_id")?,
        external_id: c.get("external_id")?,
        email: c.get("email")?,
        phone: c.get("phone")?,
        first_name: c.get("first_name")?,
        last_name: c.get("last_name")?,
        birthday: c.get("birthday")?,
        locale: c.get("locale")?,
        tags: c.get("tags")?,
        consent_email: c.get("consent_email")?,
        consent_sms: c.get("consent_sms")?,
        attributes: c.get("attributes")?,
        status: c.get("status")?,
        enrolled_at: c.get("enrolled_at")?,
        updated_at: c.get("updated_at")?,
        erased_at: c.get("erased_at")?,
        birthday_md: c.get("birthday_md")?,
    };
    let member = crate::members::repo::to_domain(member)?;
    let balances = match c.get::<Option<Uuid>>("b_member_id")? {
        Some(_) => Some(Balances {
            available: c.get("b_available")?,
            pending: c.get("b_pending")?,
            held: c.get("b_held")?,
            lifetime_earned: c.get("b_lifetime_earned")?,
            lifetime_redeemed: c.get("b_lifetime_redeemed")?,
            lifetime_expired: c.get("b_lifetime_expired")?,
        }),
        None => None,
    };
    Ok((member, balances))
}

/// A row's columns read in the order they were selected.
struct Columns<'a> {
    row: &'a sea_orm::QueryResult,
    next: usize,
}

impl Columns<'_> {
    /// The next column, which debug builds (the tests) check is called `name`.
    fn get<T: sea_orm::TryGetable>(&mut self, name: &str) -> Result<T, sea_orm::DbErr> {
        debug_assert_eq!(
            self.row.column_names().get(self.next).map(String::as_str),
            Some(name),
            "column {} of the row",
            self.next
        );
        let value = self.row.try_get_by_index(self.next);
        self.next += 1;
        value
    }
}

/// One row of [`state_select`].
fn state_from(row: &sea_orm::QueryResult) -> AppResult<MemberState> {
    let present = |prefix: &str, key: &str| joined_row_present(row, prefix, key);
    let (member, balances) = member_and_balances_from(row)?;
    let stats = if present("s_", "member_id")? {
        let m = member_stats::Model::from_query_result(row, "s_")?;
        MemberStats {
            lifetime_spend: m.lifetime_spend,
            purchase_count: m.purchase_count,
            first_purchase_at: m.first_purchase_at,
            last_purchase_at: m.last_purchase_at,
        }
    } else {
        MemberStats::default()
    };
    let tier = if present("t_", "member_id")? {
        Some(crate::tiers::repo::member_tier_from(
            member_tiers::Model::from_query_result(row, "t_")?,
        )?)
    } else {
        None
    };
    let referral = if present("r_", "id")? {
        Some(crate::referrals::repo::referral_from(
            referrals::Model::from_query_result(row, "r_")?,
        )?)
    } else {
        None
    };
    Ok(MemberState {
        member,
        balances,
        stats,
        tier,
        referral,
    })
}

/// [`recorded_order_ids`] and [`member_states`] in one round trip: the first reads of a
/// purchase group's write transaction on SQLite, where `BEGIN IMMEDIATE` already holds the
/// lock. One script of two selects; the first is an aggregate (`json_group_array`), so its
/// one row comes first and the members' rows follow it. Each round trip to the writer
/// connection's thread is two thread wake-ups on the thread that bounds the purchase rate
/// (BENCHMARKS.md). Other backends: the two queries.
pub async fn recorded_and_member_states(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    order_ids: &[&str],
    members: &[MemberId],
) -> AppResult<(HashSet<String>, HashMap<MemberId, MemberState>)> {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let backend = conn.get_database_backend();
    if backend != DbBackend::Sqlite || order_ids.is_empty() || members.is_empty() {
        let recorded = match order_ids.is_empty() {
            true => HashSet::new(),
            false => recorded_order_ids(conn, tenant, order_ids).await?,
        };
        let states = match members.is_empty() {
            true => HashMap::new(),
            false => member_states(conn, tenant, members).await?,
        };
        return Ok((recorded, states));
    }
    let recorded = Query::select()
        .expr_as(
            Expr::cust("json_group_array(order_id)"),
            Alias::new("recorded"),
        )
        .from(purchases::Entity)
        .and_where(Expr::col(purchases::Column::TenantId).eq(tenant.0))
        .and_where(Expr::col(purchases::Column::OrderId).is_in(crate::db::padded(order_ids)))
        .to_owned();
    let first = backend.build(&recorded);
    let second = backend.build(&member_states_query(members));
    let mut values = first.values.map(|v| v.0).unwrap_or_default();
    values.extend(second.values.map(|v| v.0).unwrap_or_default());
    let script = format!("{};\n{}", first.sql, second.sql);
    let mut rows = conn
        .query_all_raw(Statement::from_sql_and_values(backend, script, values))
        .await?
        .into_iter();
    let ids = rows
        .next()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("no row of recorded order ids")))?;
    let ids: String = ids.try_get("", "recorded")?;
    let recorded: Vec<String> = serde_json::from_str(&ids).map_err(AppError::internal)?;
    let mut states = HashMap::with_capacity(members.len());
    for row in rows {
        let s = state_from(&row)?;
        if s.member.tenant_id == tenant {
            states.insert(s.member.id, s);
        }
    }
    Ok((recorded.into_iter().collect(), states))
}

/// Which of `order_ids` `tenant` has already recorded (one query, without their lines).
pub async fn recorded_order_ids(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    order_ids: &[&str],
) -> AppResult<HashSet<String>> {
    Ok(purchases::Entity::find()
        .select_only()
        .column(purchases::Column::OrderId)
        .filter(purchases::Column::TenantId.eq(tenant.0))
        .filter(purchases::Column::OrderId.is_in(crate::db::padded(order_ids)))
        .into_tuple::<String>()
        .all(conn)
        .await?
        .into_iter()
        .collect())
}
