//! Queries of tiers. Every function takes the tenant (or a row that belongs to one) first.

use super::{
    Activity, Downgrade, Ladder, MemberTier, Metric, Reevaluation, Source, TierChange, TierDef,
    Window,
};
use crate::db::Batch;
use crate::db::entities::{
    member_tiers, members, tier_activity, tier_history, tier_ladders, tier_reevaluations,
};
use crate::error::{AppError, AppResult};
use crate::ids::{MemberId, TenantId};
use crate::pagination::{Page, PageRequest};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

fn bad(what: &str, v: &str) -> AppError {
    AppError::internal(anyhow::anyhow!("stored tier data: bad {what} {v:?}"))
}

fn ladder_from(m: tier_ladders::Model) -> AppResult<Ladder> {
    let tiers: Vec<TierDef> = serde_json::from_str(&m.tiers).map_err(AppError::internal)?;
    Ok(Ladder {
        id: m.id,
        tenant_id: TenantId(m.tenant_id),
        version: m.version,
        metric: Metric::parse(&m.metric).ok_or_else(|| bad("metric", &m.metric))?,
        window: Window::parse(&m.window_kind, m.window_months.map(i64::from))
            .map_err(|_| bad("window", &m.window_kind))?,
        downgrade: Downgrade {
            grace_days: u32::try_from(m.grace_days).unwrap_or(0),
            steps_max: u32::try_from(m.steps_max).unwrap_or(1),
        },
        tiers,
        definition_hash: m.definition_hash,
        created_at: m.created_at,
    })
}

/// The tenant's ladder: its newest version.
pub async fn current_ladder(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
) -> AppResult<Option<Ladder>> {
    tier_ladders::Entity::find()
        .filter(tier_ladders::Column::TenantId.eq(tenant.0))
        .order_by_desc(tier_ladders::Column::Version)
        .one(conn)
        .await?
        .map(ladder_from)
        .transpose()
}

pub async fn insert_ladder(conn: &impl ConnectionTrait, l: &Ladder) -> AppResult<()> {
    tier_ladders::Entity::insert(
        tier_ladders::Model {
            id: l.id,
            tenant_id: l.tenant_id.0,
            version: l.version,
            metric: l.metric.as_str().into(),
            window_kind: l.window.kind().into(),
            window_months: l.window.months().map(|m| m as i32),
            grace_days: l.downgrade.grace_days as i32,
            steps_max: l.downgrade.steps_max as i32,
            tiers: serde_json::to_string(&l.tiers).map_err(AppError::internal)?,
            definition_hash: l.definition_hash.clone(),
            created_at: l.created_at,
        }
        .into_active_model(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub(crate) fn member_tier_from(m: member_tiers::Model) -> AppResult<MemberTier> {
    Ok(MemberTier {
        member_id: MemberId(m.member_id),
        tenant_id: TenantId(m.tenant_id),
        source: Source::parse(&m.source).ok_or_else(|| bad("source", &m.source))?,
        tier: m.tier,
        since: m.since,
        manual_tier: m.manual_tier,
        manual_until: m.manual_until,
        manual_reason: m.manual_reason,
        period_end: m.period_end,
        review_at: m.review_at,
        ladder_version: m.ladder_version,
        updated_at: m.updated_at,
    })
}

pub async fn member_tier(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
) -> AppResult<Option<MemberTier>> {
    member_tiers::Entity::find_by_id(member.0)
        .filter(member_tiers::Column::TenantId.eq(tenant.0))
        .one(conn)
        .await?
        .map(member_tier_from)
        .transpose()
}

/// Inserts or replaces the member's row (the caller holds the member's lock).
pub async fn save_member_tier(conn: &impl ConnectionTrait, t: &MemberTier) -> AppResult<()> {
    let mut batch = Batch::on(conn);
    save_member_tier_into(&mut batch, t);
    batch.run(conn).await?;
    Ok(())
}

/// [`save_member_tier`] as part of a [`Batch`].
pub fn save_member_tier_into(batch: &mut Batch, t: &MemberTier) {
    use member_tiers::Column as C;
    let model = member_tiers::Model {
        member_id: t.member_id.0,
        tenant_id: t.tenant_id.0,
        tier: t.tier.clone(),
        since: t.since,
        source: t.source.as_str().into(),
        manual_tier: t.manual_tier.clone(),
        manual_until: t.manual_until,
        manual_reason: t.manual_reason.clone(),
        period_end: t.period_end,
        review_at: t.review_at,
        ladder_version: t.ladder_version,
        updated_at: t.updated_at,
    };
    batch.insert(
        member_tiers::Entity::insert(model.into_active_model()).on_conflict(
            OnConflict::column(C::MemberId)
                .update_columns([
                    C::Tier,
                    C::Since,
                    C::Source,
                    C::ManualTier,
                    C::ManualUntil,
                    C::ManualReason,
                    C::PeriodEnd,
                    C::ReviewAt,
                    C::LadderVersion,
                    C::UpdatedAt,
                ])
                .to_owned(),
        ),
    );
}

/// Records a tier change in the member's history, as part of a [`Batch`].
pub fn insert_change_into(batch: &mut Batch, tenant: TenantId, c: &TierChange) {
    batch.insert(tier_history::Entity::insert(
        tier_history::Model {
            id: c.id,
            tenant_id: tenant.0,
            member_id: c.member_id.0,
            from_tier: c.from.clone(),
            to_tier: c.to.clone(),
            direction: if c.up { "UP" } else { "DOWN" }.into(),
            source: c.source.as_str().into(),
            reason: c.reason.clone(),
            metric_value: c.metric_value,
            ladder_version: c.ladder_version,
            at: c.at,
        }
        .into_active_model(),
    ));
}

/// The member's tier changes, newest first.
pub async fn history(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
    page: PageRequest,
) -> AppResult<Page<TierChange>> {
    let mut q = tier_history::Entity::find()
        .filter(tier_history::Column::TenantId.eq(tenant.0))
        .filter(tier_history::Column::MemberId.eq(member.0))
        .order_by_desc(tier_history::Column::Id);
    if let Some(after) = page.after {
        q = q.filter(tier_history::Column::Id.lt(after));
    }
    let rows = q
        .limit(page.limit + 1)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| {
            Ok(TierChange {
                id: m.id,
                member_id: MemberId(m.member_id),
                from: m.from_tier,
                to: m.to_tier,
                up: m.direction == "UP",
                source: Source::parse(&m.source).ok_or_else(|| bad("source", &m.source))?,
                reason: m.reason,
                metric_value: m.metric_value,
                ladder_version: m.ladder_version,
                at: m.at,
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    Ok(Page::from_overfetch(rows, page.limit))
}

/// Adds one event's activity to the member's month (one upsert).
pub async fn add_activity(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
    month: i32,
    a: Activity,
) -> AppResult<()> {
    let mut batch = Batch::on(conn);
    add_activity_into(&mut batch, tenant, member, month, a);
    Ok(batch.run(conn).await?)
}

/// [`add_activity`] as part of a [`Batch`].
pub fn add_activity_into(
    batch: &mut Batch,
    tenant: TenantId,
    member: MemberId,
    month: i32,
    a: Activity,
) {
    use tier_activity::Column as C;
    let upsert = tier_activity::Entity::insert(
        tier_activity::Model {
            member_id: member.0,
            month,
            tenant_id: tenant.0,
            points_earned: a.points,
            spend: a.spend,
            purchases: a.purchases,
        }
        .into_active_model(),
    )
    .on_conflict(
        OnConflict::columns([C::MemberId, C::Month])
            // Qualified: PostgreSQL would read a bare name as ambiguous with EXCLUDED. The
            // amounts come from EXCLUDED, not as parameters, so that the rows of several
            // members merge into one statement (`Batch::merge`).
            .value(C::PointsEarned, add_excluded(C::PointsEarned))
            .value(C::Spend, add_excluded(C::Spend))
            .value(C::Purchases, add_excluded(C::Purchases))
            .to_owned(),
    );
    batch.insert(upsert);
}

/// `tier_activity.c + excluded.c`.
fn add_excluded(c: tier_activity::Column) -> Expr {
    Expr::col((tier_activity::Entity, c))
        .add(Expr::col((sea_orm::sea_query::Alias::new("excluded"), c)))
}

/// Replaces the member's activity (a rebuild from purchases and awards).
pub async fn replace_activity(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
    months: &[(i32, Activity)],
) -> AppResult<()> {
    tier_activity::Entity::delete_many()
        .filter(tier_activity::Column::TenantId.eq(tenant.0))
        .filter(tier_activity::Column::MemberId.eq(member.0))
        .exec(conn)
        .await?;
    if months.is_empty() {
        return Ok(());
    }
    tier_activity::Entity::insert_many(months.iter().map(|(month, a)| {
        tier_activity::Model {
            member_id: member.0,
            month: *month,
            tenant_id: tenant.0,
            points_earned: a.points,
            spend: a.spend,
            purchases: a.purchases,
        }
        .into_active_model()
    }))
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// The metric summed over `months` (inclusive; `None`: every month).
pub async fn metric_value(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
    metric: Metric,
    months: Option<(i32, i32)>,
) -> AppResult<i64> {
    let values = metric_values(conn, tenant, &[member], metric, months).await?;
    Ok(values.get(&member).copied().unwrap_or(0))
}

/// [`metric_value`] of several members in one query; a member with no activity in `months`
/// is missing from the map (their value is 0).
pub async fn metric_values(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    members: &[MemberId],
    metric: Metric,
    months: Option<(i32, i32)>,
) -> AppResult<std::collections::HashMap<MemberId, i64>> {
    Ok(metric_values_query(tenant, members, metric, months)
        .into_tuple::<(Uuid, i64)>()
        .all(conn)
        .await?
        .into_iter()
        .map(|(m, v)| (MemberId(m), v))
        .collect())
}

/// The select of [`metric_values`] (its plan is held to the activity's key by
/// `tests/tests/query_plans.rs`).
pub fn metric_values_query(
    tenant: TenantId,
    members: &[MemberId],
    metric: Metric,
    months: Option<(i32, i32)>,
) -> sea_orm::Select<tier_activity::Entity> {
    use tier_activity::Column as C;
    // SUM of BIGINT is NUMERIC on PostgreSQL: cast so both backends return an integer.
    let sum = match metric {
        Metric::PointsEarned => "CAST(COALESCE(SUM(points_earned), 0) AS BIGINT)",
        Metric::Spend => "CAST(COALESCE(SUM(spend), 0) AS BIGINT)",
        Metric::PurchaseCount => "CAST(COALESCE(SUM(purchases), 0) AS BIGINT)",
    };
    let mut q = tier_activity::Entity::find()
        .select_only()
        .column(C::MemberId)
        .column_as(Expr::cust(sum), "total")
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::MemberId.is_in(crate::db::padded(members).map(|m| m.0)))
        .group_by(C::MemberId);
    if let Some((from, to)) = months {
        q = q.filter(C::Month.between(from, to));
    }
    q
}

/// Members whose review is due at `now`, oldest review first.
pub async fn due_reviews(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> AppResult<Vec<(TenantId, MemberId)>> {
    Ok(member_tiers::Entity::find()
        .filter(member_tiers::Column::ReviewAt.lte(now))
        .order_by_asc(member_tiers::Column::ReviewAt)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| (TenantId(m.tenant_id), MemberId(m.member_id)))
        .collect())
}

fn reevaluation_from(m: tier_reevaluations::Model) -> Reevaluation {
    Reevaluation {
        id: m.id,
        tenant_id: TenantId(m.tenant_id),
        ladder_version: m.ladder_version,
        rebuild: m.rebuild,
        running: m.status == "RUNNING",
        cursor: m.cursor,
        members_total: m.members_total,
        members_done: m.members_done,
        upgraded: m.upgraded,
        downgraded: m.downgraded,
        started_at: m.started_at,
        finished_at: m.finished_at,
    }
}

fn reevaluation_model(r: &Reevaluation) -> tier_reevaluations::Model {
    tier_reevaluations::Model {
        id: r.id,
        tenant_id: r.tenant_id.0,
        ladder_version: r.ladder_version,
        rebuild: r.rebuild,
        status: if r.running { "RUNNING" } else { "DONE" }.into(),
        cursor: r.cursor,
        members_total: r.members_total,
        members_done: r.members_done,
        upgraded: r.upgraded,
        downgraded: r.downgraded,
        started_at: r.started_at,
        finished_at: r.finished_at,
    }
}

pub async fn insert_reevaluation(conn: &impl ConnectionTrait, r: &Reevaluation) -> AppResult<()> {
    tier_reevaluations::Entity::insert(reevaluation_model(r).into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Saves a job's progress if nobody else moved it since `expected_cursor` was read (two
/// servers running the jobs never count a member twice). Returns false when somebody did.
pub async fn advance_reevaluation(
    conn: &impl ConnectionTrait,
    r: &Reevaluation,
    expected_cursor: Option<Uuid>,
) -> AppResult<bool> {
    use tier_reevaluations::Column as C;
    let mut q = tier_reevaluations::Entity::update_many()
        .col_expr(
            C::Status,
            Expr::value(if r.running { "RUNNING" } else { "DONE" }),
        )
        .col_expr(C::Cursor, Expr::value(r.cursor))
        .col_expr(C::MembersTotal, Expr::value(r.members_total))
        .col_expr(C::MembersDone, Expr::value(r.members_done))
        .col_expr(C::Upgraded, Expr::value(r.upgraded))
        .col_expr(C::Downgraded, Expr::value(r.downgraded))
        .col_expr(C::FinishedAt, Expr::value(r.finished_at))
        .filter(C::Id.eq(r.id))
        .filter(C::Status.eq("RUNNING"));
    q = match expected_cursor {
        Some(c) => q.filter(C::Cursor.eq(c)),
        None => q.filter(C::Cursor.is_null()),
    };
    Ok(q.exec(conn).await?.rows_affected == 1)
}

/// Ends every running job of the tenant (a newer ladder replaces them).
pub async fn finish_running(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> AppResult<()> {
    use tier_reevaluations::Column as C;
    tier_reevaluations::Entity::update_many()
        .col_expr(C::Status, Expr::value("DONE"))
        .col_expr(C::FinishedAt, Expr::value(Some(now)))
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::Status.eq("RUNNING"))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn running_reevaluations(
    conn: &impl ConnectionTrait,
    limit: u64,
) -> AppResult<Vec<Reevaluation>> {
    Ok(tier_reevaluations::Entity::find()
        .filter(tier_reevaluations::Column::Status.eq("RUNNING"))
        .order_by_asc(tier_reevaluations::Column::StartedAt)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(reevaluation_from)
        .collect())
}

pub async fn reevaluation(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> AppResult<Option<Reevaluation>> {
    Ok(tier_reevaluations::Entity::find_by_id(id)
        .one(conn)
        .await?
        .map(reevaluation_from))
}

/// The job of the tenant's ladder version, if it had one.
pub async fn reevaluation_of(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    version: i32,
) -> AppResult<Option<Reevaluation>> {
    Ok(tier_reevaluations::Entity::find()
        .filter(tier_reevaluations::Column::TenantId.eq(tenant.0))
        .filter(tier_reevaluations::Column::LadderVersion.eq(version))
        .order_by_desc(tier_reevaluations::Column::StartedAt)
        .one(conn)
        .await?
        .map(reevaluation_from))
}

/// The tenant's members after `after` (by id), at most `limit`.
pub async fn members_after(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    after: Option<Uuid>,
    limit: u64,
) -> AppResult<Vec<MemberId>> {
    let mut q = members::Entity::find()
        .select_only()
        .column(members::Column::Id)
        .filter(members::Column::TenantId.eq(tenant.0))
        .order_by_asc(members::Column::Id);
    if let Some(a) = after {
        q = q.filter(members::Column::Id.gt(a));
    }
    Ok(q.limit(limit)
        .into_tuple::<Uuid>()
        .all(conn)
        .await?
        .into_iter()
        .map(MemberId)
        .collect())
}

pub async fn count_members(conn: &impl ConnectionTrait, tenant: TenantId) -> AppResult<i64> {
    let n = members::Entity::find()
        .filter(members::Column::TenantId.eq(tenant.0))
        .count(conn)
        .await?;
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The member's activity from its sources, by the time it happened: purchases (spend less
/// refunds; a fully returned purchase does not count), rule awards less clawbacks (at the time
/// of their purchase or event) and referral awards (when the referral qualified).
pub async fn activity_from_sources(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
) -> AppResult<Vec<(DateTime<Utc>, Activity)>> {
    use crate::db::entities::{event_awards, member_events, purchases, referrals};
    use std::collections::HashMap;
    let mut out = Vec::new();
    let mut when: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    for p in purchases::Entity::find()
        .filter(purchases::Column::TenantId.eq(tenant.0))
        .filter(purchases::Column::MemberId.eq(member.0))
        .all(conn)
        .await?
    {
        when.insert(p.id, p.occurred_at);
        out.push((
            p.occurred_at,
            Activity {
                points: 0,
                spend: p.total - p.returned_amount,
                purchases: i64::from(p.total <= 0 || p.returned_amount < p.total),
            },
        ));
    }
    for e in member_events::Entity::find()
        .filter(member_events::Column::TenantId.eq(tenant.0))
        .filter(member_events::Column::MemberId.eq(member.0))
        .all(conn)
        .await?
    {
        when.insert(e.id, e.occurred_at);
    }
    for a in event_awards::Entity::find()
        .filter(event_awards::Column::TenantId.eq(tenant.0))
        .filter(event_awards::Column::MemberId.eq(member.0))
        .all(conn)
        .await?
    {
        out.push((
            when.get(&a.source_id).copied().unwrap_or(a.created_at),
            Activity {
                points: a.points - a.clawed_back,
                ..Activity::default()
            },
        ));
    }
    for r in referrals::Entity::find()
        .filter(referrals::Column::TenantId.eq(tenant.0))
        .filter(
            referrals::Column::ReferrerId
                .eq(member.0)
                .or(referrals::Column::RefereeId.eq(member.0)),
        )
        .all(conn)
        .await?
    {
        let Some(at) = r.qualified_at else { continue };
        let points = if r.referrer_id == member.0 {
            r.referrer_points
        } else {
            r.referee_points
        };
        if points != 0 {
            out.push((
                at,
                Activity {
                    points,
                    ..Activity::default()
                },
            ));
        }
    }
    Ok(out)
}

/// A version of the tenant's ladder.
pub async fn ladder_version(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    version: i32,
) -> AppResult<Option<Ladder>> {
    tier_ladders::Entity::find()
        .filter(tier_ladders::Column::TenantId.eq(tenant.0))
        .filter(tier_ladders::Column::Version.eq(version))
        .one(conn)
        .await?
        .map(ladder_from)
        .transpose()
}
