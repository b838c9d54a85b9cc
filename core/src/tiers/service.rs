//! Tier operations: define a ladder, assign a tier by hand, read a member's tier, progress
//! and history; and the steps other transactions call: the snapshot's tier, the activity of
//! an event (with the upgrade it may bring), a review, a member's re-evaluation after a ladder
//! change. The in-transaction steps expect the caller to hold the member's lock (the ledger
//! balance row), like every other write about a member.

use super::{
    Activity, Ladder, LadderRequest, MemberTier, MemberTierView, Progress, Reevaluation, Source,
    TierChange, local_month, repo, window_months,
};
use crate::auth::{Access, Principal};
use crate::config::ApiSettings;
use crate::db::{Batch, Db};
use crate::error::{AppError, AppResult};
use crate::events::outbox;
use crate::ids::{MemberId, TenantId};
use crate::pagination::{Page, PageRequest};
use crate::tenants::{self, Tenant};
use chrono::{DateTime, Duration, Utc};
use loyalty_sdk as sdk;
use sea_orm::ConnectionTrait;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use uuid::Uuid;

fn definition_hash(req: &LadderRequest) -> AppResult<String> {
    let body = serde_json::to_vec(req).map_err(AppError::internal)?;
    Ok(hex::encode(Sha256::digest(&body)))
}

/// A validated ladder of `tenant` at `version` (not stored).
pub fn new_ladder(
    tenant: TenantId,
    version: i32,
    req: LadderRequest,
    tiers_max: usize,
    now: DateTime<Utc>,
) -> AppResult<Ladder> {
    let req = super::validate(req, tiers_max)?;
    Ok(Ladder {
        id: Uuid::now_v7(),
        tenant_id: tenant,
        version,
        metric: req.metric,
        window: req.window,
        downgrade: req.downgrade,
        definition_hash: definition_hash(&req)?,
        tiers: req.tiers,
        created_at: now,
    })
}

/// `defineTiers` (ADMIN): validates and stores a new version of the tenant's ladder and starts
/// the re-evaluation of every member. The same definition again changes nothing.
pub async fn define(
    db: &Db,
    api: &ApiSettings,
    principal: &Principal,
    req: LadderRequest,
) -> AppResult<(Ladder, Option<Reevaluation>)> {
    let t = principal.require_tenant(Access::Manage)?;
    let now = db.now();
    let candidate = new_ladder(t.tenant_id, 1, req, api.tiers_max, now)?;
    let txn = db.begin_write().await?;
    let previous = repo::current_ladder(&txn, t.tenant_id).await?;
    if let Some(p) = &previous
        && p.definition_hash == candidate.definition_hash
    {
        return Ok((p.clone(), None));
    }
    let ladder = Ladder {
        version: previous.as_ref().map_or(1, |p| p.version + 1),
        ..candidate
    };
    if let Err(e) = repo::insert_ladder(&txn, &ladder).await {
        drop(txn);
        if e.is_unique_violation() {
            return Err(AppError::Conflict(
                "the ladder was changed concurrently; read tierLadder and try again".into(),
            ));
        }
        return Err(e);
    }
    repo::finish_running(&txn, t.tenant_id, now).await?;
    let job = Reevaluation {
        id: Uuid::now_v7(),
        tenant_id: t.tenant_id,
        ladder_version: ladder.version,
        rebuild: previous.is_none(),
        running: true,
        cursor: None,
        members_total: repo::count_members(&txn, t.tenant_id).await?,
        members_done: 0,
        upgraded: 0,
        downgraded: 0,
        started_at: now,
        finished_at: None,
    };
    repo::insert_reevaluation(&txn, &job).await?;
    outbox::append(
        &txn,
        t.tenant_id,
        None,
        "tiers.defined",
        json!({
            "version": ladder.version,
            "metric": ladder.metric.as_str(),
            "tiers": ladder.tiers.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
            "reevaluationId": job.id,
        }),
        now,
    )
    .await?;
    txn.commit().await?;
    db.caches().forget_tenant(t.tenant_id);
    Ok((ladder, Some(job)))
}

/// The tenant's ladder (any role).
pub async fn ladder(db: &Db, principal: &Principal) -> AppResult<Option<Ladder>> {
    let t = principal.require_tenant(Access::Read)?;
    repo::current_ladder(db.reader(), t.tenant_id).await
}

/// The re-evaluation that followed a ladder version, if any.
pub async fn reevaluation_of(
    db: &Db,
    tenant: TenantId,
    version: i32,
) -> AppResult<Option<Reevaluation>> {
    repo::reevaluation_of(db.reader(), tenant, version).await
}

/// The member's tier as plugins see it: the lowest tier without a row, the base tier (no
/// name, 1x) without a ladder.
pub async fn snapshot_tier(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
) -> AppResult<sdk::Tier> {
    let ladder = repo::current_ladder(conn, tenant).await?;
    snapshot_tier_on(conn, ladder.as_ref(), tenant, member).await
}

/// [`snapshot_tier`] on a ladder the caller already has (the pipeline's cached one).
pub async fn snapshot_tier_on(
    conn: &impl ConnectionTrait,
    ladder: Option<&Ladder>,
    tenant: TenantId,
    member: MemberId,
) -> AppResult<sdk::Tier> {
    if ladder.is_none() {
        return Ok(snapshot_tier_of(None, None));
    }
    let stored = repo::member_tier(conn, tenant, member).await?;
    Ok(snapshot_tier_of(ladder, stored.as_ref()))
}

/// [`snapshot_tier`] from a member's stored tier row the caller has read.
pub fn snapshot_tier_of(ladder: Option<&Ladder>, stored: Option<&MemberTier>) -> sdk::Tier {
    let Some(ladder) = ladder else {
        return sdk::Tier {
            name: String::new(),
            multiplier_bp: super::ONE_X_BP,
        };
    };
    let def = &ladder.tiers[rank_of(ladder, stored)];
    sdk::Tier {
        name: def.name.clone(),
        multiplier_bp: def.multiplier_bp,
    }
}

/// The member's rank (the lowest without a row, or when the stored tier left the ladder and
/// the re-evaluation has not reached the member yet).
fn rank_of(ladder: &Ladder, stored: Option<&MemberTier>) -> usize {
    stored.and_then(|s| ladder.rank_of(&s.tier)).unwrap_or(0)
}

/// The member's rank on the tenant's ladder, `None` without a ladder (rewards' `minTier`).
pub async fn member_rank(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
) -> AppResult<Option<(Ladder, usize)>> {
    let Some(ladder) = repo::current_ladder(conn, tenant).await? else {
        return Ok(None);
    };
    let stored = repo::member_tier(conn, tenant, member).await?;
    let rank = rank_of(&ladder, stored.as_ref());
    Ok(Some((ladder, rank)))
}

async fn value_at(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    ladder: &Ladder,
    member: MemberId,
    at: DateTime<Utc>,
) -> AppResult<i64> {
    repo::metric_value(
        conn,
        tenant.id,
        member,
        ladder.metric,
        window_months(ladder.window, tenant.timezone, at),
    )
    .await
}

/// The next review of a member at `rank`: the end of the current period plus grace, or the
/// end of a manual assignment when that comes first. The lowest tier is never reviewed.
fn schedule(
    tenant: &Tenant,
    ladder: &Ladder,
    rank: usize,
    manual_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let periodic = (rank > 0)
        .then(|| ladder.review_after(tenant.timezone, now))
        .flatten();
    let review = match (periodic.map(|p| p.1), manual_until) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    (periodic.map(|p| p.0), review)
}

/// Moves the member to `to` (or only updates the stored row when the rank stays), records the
/// change and announces it.
#[allow(clippy::too_many_arguments)]
async fn move_to(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    ladder: &Ladder,
    member: MemberId,
    stored: Option<MemberTier>,
    from_rank: Option<usize>,
    to: usize,
    up: bool,
    source: Source,
    reason: Option<String>,
    value: i64,
    now: DateTime<Utc>,
) -> AppResult<Option<TierChange>> {
    let mut batch = Batch::on(conn);
    let change = move_into(
        &mut batch, tenant, ladder, member, stored, from_rank, to, up, source, reason, value, now,
    );
    batch.run(conn).await?;
    Ok(change)
}

/// [`move_to`] as part of a [`Batch`]: the member's tier row, and when the tier changes its
/// history row and outbox record. Returns the change.
#[allow(clippy::too_many_arguments)]
fn move_into(
    batch: &mut Batch,
    tenant: &Tenant,
    ladder: &Ladder,
    member: MemberId,
    stored: Option<MemberTier>,
    from_rank: Option<usize>,
    to: usize,
    up: bool,
    source: Source,
    reason: Option<String>,
    value: i64,
    now: DateTime<Utc>,
) -> Option<TierChange> {
    let from_name = stored.as_ref().map_or_else(
        || ladder.tiers[0].name.clone(),
        |s| {
            from_rank
                .map(|r| ladder.tiers[r].name.clone())
                .unwrap_or_else(|| s.tier.clone())
        },
    );
    let changed = from_rank != Some(to);
    let mut row = stored.unwrap_or_else(|| MemberTier {
        member_id: member,
        tenant_id: tenant.id,
        tier: ladder.tiers[0].name.clone(),
        since: now,
        source: Source::Threshold,
        manual_tier: None,
        manual_until: None,
        manual_reason: None,
        period_end: None,
        review_at: None,
        ladder_version: ladder.version,
        updated_at: now,
    });
    // A manual floor whose tier left the ladder is over.
    if row
        .manual_tier
        .as_deref()
        .is_some_and(|m| ladder.rank_of(m).is_none())
    {
        row.manual_tier = None;
        row.manual_until = None;
        row.manual_reason = None;
    }
    if changed {
        row.tier = ladder.tiers[to].name.clone();
        row.since = now;
        row.source = source;
    }
    let (period_end, review_at) = schedule(
        tenant,
        ladder,
        to,
        row.manual_tier.as_ref().and(row.manual_until),
        now,
    );
    row.period_end = period_end;
    row.review_at = review_at;
    row.ladder_version = ladder.version;
    row.updated_at = now;
    repo::save_member_tier_into(batch, &row);
    if !changed {
        return None;
    }
    let change = TierChange {
        id: Uuid::now_v7(),
        member_id: member,
        from: Some(from_name),
        to: row.tier.clone(),
        up,
        source,
        reason,
        metric_value: value,
        ladder_version: ladder.version,
        at: now,
    };
    repo::insert_change_into(batch, tenant.id, &change);
    let kind = if up {
        "tier.upgraded"
    } else {
        "tier.downgraded"
    };
    let payload = json!({
        "from": change.from,
        "to": change.to,
        "source": source.as_str(),
        "reason": change.reason,
        "metric": ladder.metric.as_str(),
        "metricValue": value,
        "ladderVersion": ladder.version,
        "reviewAt": row.review_at,
    });
    outbox::append_all_into(batch, tenant.id, Some(member), vec![(kind, payload)], now);
    Some(change)
}

/// Adds an event's activity to the member's month and upgrades the member when the value now
/// reaches a higher tier. Nothing without a ladder (the first ladder rebuilds activity).
pub async fn record_activity(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    member: MemberId,
    occurred_at: DateTime<Utc>,
    activity: Activity,
    now: DateTime<Utc>,
) -> AppResult<Option<TierChange>> {
    if activity.is_empty() {
        return Ok(None);
    }
    let Some(ladder) = repo::current_ladder(conn, tenant.id).await? else {
        return Ok(None);
    };
    record_activity_on(
        conn,
        tenant,
        Some(&ladder),
        member,
        occurred_at,
        activity,
        now,
    )
    .await
}

/// [`record_activity`] on a ladder the caller already has (the pipeline's cached one). A
/// cached "no ladder" may be a moment old, so the activity is kept even then: the first
/// ladder's rebuild replaces it, and an event that raced with that ladder loses nothing.
pub async fn record_activity_on(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    ladder: Option<&Ladder>,
    member: MemberId,
    occurred_at: DateTime<Utc>,
    activity: Activity,
    now: DateTime<Utc>,
) -> AppResult<Option<TierChange>> {
    let mut batch = Batch::on(conn);
    if !record_activity_into(&mut batch, tenant, member, occurred_at, activity) {
        return Ok(None);
    }
    batch.run(conn).await?;
    let Some(ladder) = ladder else {
        return Ok(None);
    };
    let stored = repo::member_tier(conn, tenant.id, member).await?;
    upgrade_in(conn, tenant, ladder, member, stored, Source::Threshold, now).await
}

/// The write of [`record_activity_on`] as part of a [`Batch`]; false when there is nothing to
/// record. Once the batch ran, [`upgrade_all_with`] is the rest.
pub fn record_activity_into(
    batch: &mut Batch,
    tenant: &Tenant,
    member: MemberId,
    occurred_at: DateTime<Utc>,
    activity: Activity,
) -> bool {
    if activity.is_empty() {
        return false;
    }
    let month = local_month(tenant.timezone, occurred_at);
    repo::add_activity_into(batch, tenant.id, member, month, activity);
    true
}

/// Lifts the member to the highest tier the value reaches, if that is above the current one.
async fn upgrade_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    ladder: &Ladder,
    member: MemberId,
    stored: Option<MemberTier>,
    source: Source,
    now: DateTime<Utc>,
) -> AppResult<Option<TierChange>> {
    let value = value_at(conn, tenant, ladder, member, now).await?;
    let mut batch = Batch::on(conn);
    let change = upgrade_into(
        &mut batch, tenant, ladder, member, stored, value, source, now,
    );
    batch.run(conn).await?;
    Ok(change)
}

/// The reads of the metric values [`upgrade_all_with`] needs, one per window, to be sent
/// after the batch that recorded the members' activity (`Batch::run_then_read`, which on
/// SQLite sends them with it). None without a ladder.
pub fn metric_reads(
    backend: sea_orm::DbBackend,
    tenant: &Tenant,
    ladder: Option<&Ladder>,
    members: &[(MemberId, Option<MemberTier>, DateTime<Utc>)],
) -> Vec<sea_orm::Statement> {
    let Some(ladder) = ladder else {
        return Vec::new();
    };
    let mut windows: BTreeMap<Option<(i32, i32)>, Vec<MemberId>> = BTreeMap::new();
    for (member, _, now) in members {
        let window = super::window_months(ladder.window, tenant.timezone, *now);
        windows.entry(window).or_default().push(*member);
    }
    windows
        .into_iter()
        .map(|(window, ids)| {
            use sea_orm::QueryTrait;
            repo::metric_values_query(tenant.id, &ids, ladder.metric, window).build(backend)
        })
        .collect()
}

/// The rest of [`record_activity_into`] after its batch ran, for several members of `tenant`
/// at once, with the rows of their [`metric_reads`] (one query per window: one, unless the
/// members' times straddle a month): lifts each member on `ladder` (when there is one) to the
/// tier its value reaches, if that is above its tier row as read under its lock. Each member
/// is in `members` once, so a member's row is its value in its own window; a member without a
/// row has 0.
pub async fn upgrade_all_with(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    ladder: Option<&Ladder>,
    members: Vec<(MemberId, Option<MemberTier>, DateTime<Utc>)>,
    rows: &[sea_orm::QueryResult],
) -> AppResult<()> {
    let Some(ladder) = ladder else {
        return Ok(());
    };
    let mut values = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        let member: Uuid = row.try_get_by_index(0)?;
        let value: i64 = row.try_get_by_index(1)?;
        values.insert(MemberId(member), value);
    }
    // The upgrades' writes in one round trip (distinct members: no row written twice).
    let mut batch = Batch::on(conn);
    for (member, stored, now) in members {
        let value = values.get(&member).copied().unwrap_or(0);
        let mut unit = Batch::on(conn);
        let source = Source::Threshold;
        upgrade_into(
            &mut unit, tenant, ladder, member, stored, value, source, now,
        );
        batch.merge(unit);
    }
    batch.run(conn).await?;
    Ok(())
}

/// The rest of [`upgrade_in`] once the member's metric value is known, as part of a
/// [`Batch`]: nothing when `value` reaches no higher tier.
#[allow(clippy::too_many_arguments)]
fn upgrade_into(
    batch: &mut Batch,
    tenant: &Tenant,
    ladder: &Ladder,
    member: MemberId,
    stored: Option<MemberTier>,
    value: i64,
    source: Source,
    now: DateTime<Utc>,
) -> Option<TierChange> {
    let current = stored.as_ref().map_or(Some(0), |s| ladder.rank_of(&s.tier));
    let qualified = ladder.qualified(value);
    match current {
        Some(c) if qualified <= c => None,
        _ => move_into(
            batch, tenant, ladder, member, stored, current, qualified, true, source, None, value,
            now,
        ),
    }
}

/// A due review of one member (the caller holds the member's lock): the manual assignment
/// ends at its date; otherwise the member keeps the tier the better of the closed period and
/// the current window reaches, going down at most `steps_max` ranks and never below a manual
/// assignment in force. Returns the change, if any.
pub async fn review_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    member: MemberId,
    now: DateTime<Utc>,
) -> AppResult<Option<TierChange>> {
    let Some(ladder) = repo::current_ladder(conn, tenant.id).await? else {
        return Ok(None);
    };
    let Some(mut stored) = repo::member_tier(conn, tenant.id, member).await? else {
        return Ok(None);
    };
    if stored.review_at.is_none_or(|r| r > now) {
        return Ok(None); // Done by a concurrent run, or moved by an event.
    }
    let Some(current) = ladder.rank_of(&stored.tier) else {
        return reevaluate_in(conn, tenant, &ladder, member, false, now)
            .await
            .map(|r| r.0);
    };
    let value_now = value_at(conn, tenant, &ladder, member, now).await?;
    let qualified_now = ladder.qualified(value_now);
    if stored.manual_until.is_some_and(|u| u <= now) {
        stored.manual_tier = None;
        stored.manual_until = None;
        stored.manual_reason = None;
        return move_to(
            conn,
            tenant,
            &ladder,
            member,
            Some(stored),
            Some(current),
            qualified_now,
            qualified_now > current,
            Source::ManualEnded,
            None,
            value_now,
            now,
        )
        .await;
    }
    let closed = match stored.period_end {
        Some(end) if end <= now => {
            value_at(
                conn,
                tenant,
                &ladder,
                member,
                end - Duration::microseconds(1),
            )
            .await?
        }
        _ => value_now,
    };
    let value = closed.max(value_now);
    let qualified = ladder.qualified(value);
    let floor = stored
        .manual_tier
        .as_deref()
        .and_then(|m| ladder.rank_of(m))
        .unwrap_or(0);
    let steps = ladder.downgrade.steps_max as usize;
    let target = if qualified >= current {
        qualified
    } else {
        qualified.max(current.saturating_sub(steps)).max(floor)
    };
    move_to(
        conn,
        tenant,
        &ladder,
        member,
        Some(stored),
        Some(current),
        target,
        target > current,
        Source::Review,
        None,
        value,
        now,
    )
    .await
}

/// Re-evaluates one member against `ladder` after a ladder change (the caller holds the
/// member's lock): with `rebuild`, the member's activity is first rebuilt from its sources.
/// A member whose tier is still on the ladder keeps it until the next review unless the
/// value reaches higher; a member whose tier is gone goes to the tier the value reaches (or
/// the manual floor). Returns the change and whether it was an upgrade.
pub async fn reevaluate_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    ladder: &Ladder,
    member: MemberId,
    rebuild: bool,
    now: DateTime<Utc>,
) -> AppResult<(Option<TierChange>, bool)> {
    if rebuild {
        let mut months: BTreeMap<i32, Activity> = BTreeMap::new();
        for (at, a) in repo::activity_from_sources(conn, tenant.id, member).await? {
            let m = months.entry(local_month(tenant.timezone, at)).or_default();
            m.points += a.points;
            m.spend += a.spend;
            m.purchases += a.purchases;
        }
        let months: Vec<_> = months.into_iter().filter(|(_, a)| !a.is_empty()).collect();
        repo::replace_activity(conn, tenant.id, member, &months).await?;
    }
    let stored = repo::member_tier(conn, tenant.id, member).await?;
    let current = stored.as_ref().map_or(Some(0), |s| ladder.rank_of(&s.tier));
    let value = value_at(conn, tenant, ladder, member, now).await?;
    let qualified = ladder.qualified(value);
    let target = match current {
        Some(c) => qualified.max(c),
        None => {
            let floor = stored
                .as_ref()
                .and_then(|s| s.manual_tier.as_deref())
                .and_then(|m| ladder.rank_of(m))
                .unwrap_or(0);
            qualified.max(floor)
        }
    };
    if current == Some(target) {
        // Same tier: keep its review, unless the member has none yet (a LIFETIME ladder
        // became a windowed one) or no longer needs one.
        let Some(mut s) = stored else {
            return Ok((None, false));
        };
        if s.ladder_version == ladder.version {
            return Ok((None, false));
        }
        if target > 0 && s.review_at.is_none() {
            let (end, review) = schedule(tenant, ladder, target, s.manual_until, now);
            s.period_end = end;
            s.review_at = review;
        }
        if target == 0 && s.manual_until.is_none() {
            s.review_at = None;
            s.period_end = None;
        }
        s.ladder_version = ladder.version;
        s.updated_at = now;
        repo::save_member_tier(conn, &s).await?;
        return Ok((None, false));
    }
    // A move off a tier that left the ladder goes up or down by where the member stood on
    // the ladder it came from.
    let up = match (current, &stored) {
        (Some(c), _) => target > c,
        (None, Some(s)) => repo::ladder_version(conn, tenant.id, s.ladder_version)
            .await?
            .and_then(|old| old.rank_of(&s.tier))
            .is_none_or(|old_rank| target > old_rank),
        (None, None) => target > 0,
    };
    let change = move_to(
        conn,
        tenant,
        ladder,
        member,
        stored,
        current,
        target,
        up,
        Source::LadderChange,
        None,
        value,
        now,
    )
    .await?;
    Ok((change, up))
}

/// `assignTier`'s input.
#[derive(Clone, Debug)]
pub struct AssignRequest {
    pub member: MemberId,
    pub tier: String,
    pub reason: String,
    pub until: Option<DateTime<Utc>>,
}

/// `assignTier` (ADMIN): puts the member in a tier now and keeps it as a floor until `until`
/// (for good without). The same assignment again changes nothing.
pub async fn assign(db: &Db, principal: &Principal, req: AssignRequest) -> AppResult<()> {
    let t = principal.require_tenant(Access::Manage)?;
    let tenant = tenants::service::get(db, t.tenant_id).await?;
    let now = db.now();
    let reason = req.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > super::REASON_CHARS_MAX {
        return Err(AppError::validation(
            "reason",
            format!(
                "a reason of 1 to {} characters is required",
                super::REASON_CHARS_MAX
            ),
        ));
    }
    if req.until.is_some_and(|u| u <= now) {
        return Err(AppError::validation("until", "until must be in the future"));
    }
    let txn = db.begin_write().await?;
    let member = crate::members::repo::find(&txn, tenant.id, req.member)
        .await?
        .ok_or(AppError::not_found("member"))?;
    crate::events::pipeline::check_active(&member)?;
    let ladder = repo::current_ladder(&txn, tenant.id)
        .await?
        .ok_or_else(|| {
            AppError::validation("tier", "the tenant has no tiers yet: defineTiers first")
        })?;
    let to = ladder.rank_of(req.tier.trim()).ok_or_else(|| {
        AppError::validation(
            "tier",
            format!(
                "unknown tier {:?}; the ladder has {}",
                req.tier,
                ladder
                    .tiers
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    crate::ledger::repo::lock_balances(&txn, tenant.id, member.id, now).await?;
    let stored = repo::member_tier(&txn, tenant.id, member.id).await?;
    let name = ladder.tiers[to].name.clone();
    if let Some(s) = &stored
        && s.manual_tier.as_deref() == Some(name.as_str())
        && s.manual_reason.as_deref() == Some(reason.as_str())
        && s.manual_until == req.until
        && s.tier == name
    {
        return Ok(()); // The same assignment again.
    }
    let current = stored.as_ref().map_or(Some(0), |s| ladder.rank_of(&s.tier));
    let value = value_at(&txn, &tenant, &ladder, member.id, now).await?;
    let row = match stored {
        Some(mut r) => {
            r.manual_tier = Some(name.clone());
            r.manual_until = req.until;
            r.manual_reason = Some(reason.clone());
            r
        }
        None => MemberTier {
            member_id: member.id,
            tenant_id: tenant.id,
            tier: ladder.tiers[0].name.clone(),
            since: now,
            source: Source::Threshold,
            manual_tier: Some(name.clone()),
            manual_until: req.until,
            manual_reason: Some(reason.clone()),
            period_end: None,
            review_at: None,
            ladder_version: ladder.version,
            updated_at: now,
        },
    };
    move_to(
        &txn,
        &tenant,
        &ladder,
        member.id,
        Some(row),
        current,
        to,
        current.is_none_or(|c| to > c),
        Source::Manual,
        Some(reason),
        value,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The member's tier (any role); `None` without a ladder.
pub async fn member_tier(
    db: &Db,
    principal: &Principal,
    member: MemberId,
) -> AppResult<Option<MemberTierView>> {
    let t = principal.require_tenant(Access::Read)?;
    let conn = db.reader();
    let Some(ladder) = repo::current_ladder(conn, t.tenant_id).await? else {
        return Ok(None);
    };
    let stored = repo::member_tier(conn, t.tenant_id, member).await?;
    let rank = rank_of(&ladder, stored.as_ref());
    Ok(Some(MemberTierView {
        rank,
        def: ladder.tiers[rank].clone(),
        stored,
    }))
}

/// The member's progress (any role); `None` without a ladder.
pub async fn progress(
    db: &Db,
    principal: &Principal,
    member: MemberId,
) -> AppResult<Option<Progress>> {
    let t = principal.require_tenant(Access::Read)?;
    let tenant = tenants::service::get(db, t.tenant_id).await?;
    let conn = db.reader();
    let now = db.now();
    let Some(ladder) = repo::current_ladder(conn, tenant.id).await? else {
        return Ok(None);
    };
    let stored = repo::member_tier(conn, tenant.id, member).await?;
    let rank = rank_of(&ladder, stored.as_ref());
    let value = value_at(conn, &tenant, &ladder, member, now).await?;
    let next = ladder
        .next_above(rank)
        .map(|i| (i, ladder.tiers[i].clone()));
    let needed = next
        .as_ref()
        .and_then(|(_, d)| d.threshold)
        .map(|th| (th - value).max(0));
    let period_ends_at = super::period_end(ladder.window, tenant.timezone, now);
    let current = ladder.tiers[rank].clone();
    let keep_needed = match (period_ends_at, current.threshold) {
        (Some(_), Some(th)) if rank > 0 => Some((th - value).max(0)),
        _ => None,
    };
    Ok(Some(Progress {
        current_rank: rank,
        current,
        next,
        metric: ladder.metric,
        value,
        needed,
        period_ends_at,
        keep_needed,
    }))
}

/// The member's tier changes, newest first (any role).
pub async fn history(
    db: &Db,
    principal: &Principal,
    member: MemberId,
    page: PageRequest,
) -> AppResult<Page<TierChange>> {
    let t = principal.require_tenant(Access::Read)?;
    repo::history(db.reader(), t.tenant_id, member, page).await
}
