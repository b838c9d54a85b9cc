//! The steps every event shares: the member snapshot, the tenant's point rules in order, the
//! ledger entries for their awards, and the outbox records of what happened. The callers
//! (`service.rs`, the birthday job, enrolment) own the transaction and the idempotency check.

use super::repo::MemberState;
use super::{Award, MemberRef, MemberStats, PluginError, outbox};
use crate::db::{Batch, Db};
use crate::error::{AppError, AppResult};
use crate::ids::{MemberId, TenantId};
use crate::ledger::service::{EarnSpec, POINTS_PER_ENTRY_MAX, Source, earn_fresh_into};
use crate::ledger::{Balances, repo as ledger_repo};
use crate::members::Member;
use crate::plugins::runtime::PluginRuntime;
use crate::plugins::{Binding, PluginKind, PluginVersion, repo as plugin_repo};
use crate::tenants::Tenant;
use crate::tiers::Ladder;
use chrono::{DateTime, Datelike, Duration, Utc};
use loyalty_sdk as sdk;
use sea_orm::ConnectionTrait;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// What the pipeline needs besides the transaction.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub db: &'a Db,
    pub runtime: &'a PluginRuntime,
    pub tenant: &'a Tenant,
    /// The tenant's point rules and tier ladder, as [`config`] read them.
    pub config: &'a PipelineConfig,
    /// `api.plugin_awards_max`.
    pub awards_max: usize,
}

/// What the pipeline runs with for one tenant: the enabled point rules in binding order, each
/// with its version, and the current tier ladder.
#[derive(Clone, Debug, Default)]
pub struct PipelineConfig {
    pub rules: Vec<(Binding, PluginVersion)>,
    pub ladder: Option<Ladder>,
}

/// The tenant's pipeline configuration, through the process's cache: binding or unbinding a
/// plugin and defining tiers forget it when they commit (see [`crate::cache`]).
pub async fn config(db: &Db, tenant: TenantId) -> AppResult<Arc<PipelineConfig>> {
    db.caches()
        .pipeline
        .get_or_load(&tenant, async {
            let conn = db.reader();
            let rules = plugin_repo::bound_versions(conn, tenant, Some(PluginKind::PointRule))
                .await?
                .into_iter()
                .filter(|(b, _)| b.enabled)
                .collect();
            let ladder = crate::tiers::repo::current_ladder(conn, tenant).await?;
            Ok(Arc::new(PipelineConfig { rules, ladder }))
        })
        .await
}

/// Longest reason code a rule may give (the ledger's column).
pub const REASON_CODE_CHARS_MAX: usize = 64;
/// The ledger stores plugin versions up to this length.
const LEDGER_VERSION_CHARS_MAX: usize = 32;

/// An award's expiry: `None` the programme's default, `Some(None)` never, `Some(Some(t))` at t.
pub(crate) type ExpiryOverride = Option<Option<DateTime<Utc>>>;

/// A rule's award, checked, before it is written.
#[derive(Clone, Debug)]
pub struct Proposed {
    pub binding: Binding,
    pub version: PluginVersion,
    pub award: sdk::Award,
    pub expires_at: ExpiryOverride,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The member as plugins see them, just before the event.
pub fn snapshot(
    member: &Member,
    balances: &Balances,
    stats: &MemberStats,
    currency: &str,
    tier: sdk::Tier,
) -> sdk::MemberSnapshot {
    sdk::MemberSnapshot {
        id: member.id.to_string(),
        tier,
        balances: sdk::Balances {
            available: balances.available,
            pending: balances.pending,
            held: balances.held,
        },
        lifetime_spend: sdk::Money {
            amount_minor: stats.lifetime_spend,
            currency: currency.to_string(),
        },
        purchase_count: u32::try_from(stats.purchase_count).unwrap_or(u32::MAX),
        tags: member.tags.clone(),
        attributes_json: serde_json::Value::Object(member.attributes.clone()).to_string(),
        enrolled_at_ms: ms(member.enrolled_at),
        birthday: member.birthday.map(|d| sdk::CalendarDate {
            year: u16::try_from(d.year()).ok(),
            month: d.month() as u8,
            day: d.day() as u8,
        }),
    }
}

/// The member's balances and snapshot as they are, without a lock (simulations, quotes, the
/// other members of a referral).
pub async fn read_snapshot(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    member: &Member,
) -> AppResult<(Balances, sdk::MemberSnapshot)> {
    let balances = ledger_repo::balances(conn, tenant.id, member.id).await?;
    let stats = super::repo::stats(conn, tenant.id, member.id).await?;
    let tier = crate::tiers::service::snapshot_tier(conn, tenant.id, member.id).await?;
    let snap = snapshot(member, &balances, &stats, &tenant.currency, tier);
    Ok((balances, snap))
}

/// [`read_snapshot`] on the ladder of `env`, without a lock: what a purchase's point rules
/// are evaluated on before its write transaction begins, and what a simulation shows.
pub async fn read_snapshot_in(
    conn: &impl ConnectionTrait,
    env: Env<'_>,
    member: &Member,
) -> AppResult<sdk::MemberSnapshot> {
    let balances = ledger_repo::balances(conn, env.tenant.id, member.id).await?;
    Ok(snapshot_with(conn, env, member, balances).await?.2)
}

/// The member and the snapshot plugins see, and whether `order_id` is already recorded, from
/// one query without a lock (`NOT_FOUND` when there is no such member): what a purchase's
/// point rules are evaluated on before its write transaction begins.
pub async fn read_state(
    conn: &impl ConnectionTrait,
    env: Env<'_>,
    who: &MemberRef,
    order_id: &str,
) -> AppResult<(MemberState, sdk::MemberSnapshot, bool)> {
    let (state, recorded) =
        super::repo::member_state_and_order(conn, env.tenant.id, who, Some(order_id))
            .await?
            .ok_or(AppError::not_found("member"))?;
    let balances = state.balances.unwrap_or_default();
    let snap = state_snapshot(env, &state, &balances);
    Ok((state, snap, recorded))
}

/// [`read_state`] under the members' locks, held for the rest of the transaction, for several
/// members of the tenant of `env` at once (the purchase writer's group). Returns each member's
/// state, balances and snapshot; a member who does not exist is missing from the map.
///
/// SQLite: one query. The transaction began `IMMEDIATE`, so it holds the one write lock and
/// its first read already sees every committed event of the members.
/// PostgreSQL: the balance rows are locked first (`FOR UPDATE`, one statement, id order), then
/// the states are read in a statement of their own, whose snapshot is taken after the locks
/// were granted and so includes what a concurrent event of a member committed while we waited
/// (READ COMMITTED).
pub async fn lock_states(
    conn: &impl ConnectionTrait,
    env: Env<'_>,
    members: &[MemberId],
    now: DateTime<Utc>,
) -> AppResult<HashMap<MemberId, (MemberState, Balances, sdk::MemberSnapshot)>> {
    let tenant = env.tenant.id;
    let locked = match conn.get_database_backend() {
        sea_orm::DbBackend::Sqlite => None,
        _ => Some(ledger_repo::lock_balances_of(conn, tenant, members).await?),
    };
    let states = super::repo::member_states(conn, tenant, members).await?;
    states_with_balances(conn, env, members, locked, states, now).await
}

/// [`lock_states`] on SQLite with the states already read in the write transaction
/// (`repo::recorded_and_member_states`): `BEGIN IMMEDIATE` is the lock there, so nothing is
/// locked first.
pub async fn sqlite_states(
    conn: &impl ConnectionTrait,
    env: Env<'_>,
    states: HashMap<MemberId, MemberState>,
    now: DateTime<Utc>,
) -> AppResult<HashMap<MemberId, (MemberState, Balances, sdk::MemberSnapshot)>> {
    let members: Vec<MemberId> = states.keys().copied().collect();
    states_with_balances(conn, env, &members, None, states, now).await
}

/// The rest of [`lock_states`]: each member's balances (the locked row on PostgreSQL, the
/// joined one on SQLite, a new row for a member's first entry) and snapshot.
async fn states_with_balances(
    conn: &impl ConnectionTrait,
    env: Env<'_>,
    members: &[MemberId],
    mut locked: Option<HashMap<MemberId, Balances>>,
    mut states: HashMap<MemberId, MemberState>,
    now: DateTime<Utc>,
) -> AppResult<HashMap<MemberId, (MemberState, Balances, sdk::MemberSnapshot)>> {
    let tenant = env.tenant.id;
    let mut out = HashMap::with_capacity(states.len());
    // In id order, as the rows were locked: creating the missing ones takes locks too.
    let mut ids = members.to_vec();
    ids.sort();
    for id in ids {
        let Some(state) = states.remove(&id) else {
            continue;
        };
        let balances = match (locked.as_mut().map(|l| l.remove(&id)), &state.balances) {
            (Some(Some(b)), _) => b,
            (None, Some(b)) => *b,
            // The member's first entry: create the row (and lock it).
            _ => ledger_repo::lock_balances(conn, tenant, id, now).await?,
        };
        let snap = state_snapshot(env, &state, &balances);
        out.insert(id, (state, balances, snap));
    }
    Ok(out)
}

fn state_snapshot(env: Env<'_>, state: &MemberState, balances: &Balances) -> sdk::MemberSnapshot {
    let tier =
        crate::tiers::service::snapshot_tier_of(env.config.ladder.as_ref(), state.tier.as_ref());
    snapshot(
        &state.member,
        balances,
        &state.stats,
        &env.tenant.currency,
        tier,
    )
}

/// Loads the member's balances (locking the member for the rest of the transaction) and
/// statistics, and builds the snapshot.
pub async fn lock_member(
    conn: &impl ConnectionTrait,
    env: Env<'_>,
    member: &Member,
    now: DateTime<Utc>,
) -> AppResult<(Balances, MemberStats, sdk::MemberSnapshot)> {
    let balances = ledger_repo::lock_balances(conn, env.tenant.id, member.id, now).await?;
    snapshot_with(conn, env, member, balances).await
}

async fn snapshot_with(
    conn: &impl ConnectionTrait,
    env: Env<'_>,
    member: &Member,
    balances: Balances,
) -> AppResult<(Balances, MemberStats, sdk::MemberSnapshot)> {
    let stats = super::repo::stats(conn, env.tenant.id, member.id).await?;
    let tier = crate::tiers::service::snapshot_tier_on(
        conn,
        env.config.ladder.as_ref(),
        env.tenant.id,
        member.id,
    )
    .await?;
    let snap = snapshot(member, &balances, &stats, &env.tenant.currency, tier);
    Ok((balances, stats, snap))
}

fn plugin_error(version: &PluginVersion, code: &str, message: impl Into<String>) -> PluginError {
    PluginError {
        plugin_name: version.name.clone(),
        plugin_version: version.version.clone(),
        code: code.into(),
        message: message.into(),
    }
}

/// An award's expiry as the ledger takes it: days count from the event.
fn expiry_override(
    expiry: Option<sdk::Expiry>,
    occurred_at: DateTime<Utc>,
) -> Result<ExpiryOverride, String> {
    Ok(match expiry {
        None => None,
        Some(sdk::Expiry::Never) => Some(None),
        Some(sdk::Expiry::AfterDays(d)) => Some(Some(occurred_at + Duration::days(i64::from(d)))),
        Some(sdk::Expiry::AtMs(at)) => Some(Some(
            DateTime::<Utc>::from_timestamp_millis(at)
                .ok_or_else(|| format!("expiry at {at} ms is not a valid time"))?,
        )),
    })
}

/// Checks one plugin's answer (`lines`: the event's line count); any bad award makes the whole
/// answer invalid. Returns each award with its expiry as the ledger takes it.
pub(crate) fn check_awards(
    awards: Vec<sdk::Award>,
    lines: usize,
    occurred_at: DateTime<Utc>,
    awards_max: usize,
) -> Result<Vec<(sdk::Award, ExpiryOverride)>, String> {
    if awards.len() > awards_max {
        return Err(format!(
            "{} awards for one event, over the limit of {awards_max} (api.plugin_awards_max)",
            awards.len()
        ));
    }
    awards
        .into_iter()
        .map(|a| {
            if !(1..=POINTS_PER_ENTRY_MAX).contains(&a.points) {
                return Err(format!(
                    "award of {} points: points must be between 1 and {POINTS_PER_ENTRY_MAX} \
                     (returns are clawed back by the host)",
                    a.points
                ));
            }
            let code = a.reason_code.trim();
            if code.is_empty()
                || code.chars().count() > REASON_CODE_CHARS_MAX
                || code.chars().any(char::is_control)
            {
                return Err(format!(
                    "reason code {:?} must be 1 to {REASON_CODE_CHARS_MAX} characters",
                    a.reason_code
                ));
            }
            if let Some(i) = a.line_index
                && i as usize >= lines
            {
                return Err(format!(
                    "award for line {i}, but the event has {lines} lines"
                ));
            }
            let expires_at = expiry_override(a.expiry, occurred_at)?;
            Ok((a, expires_at))
        })
        .collect()
}

/// Runs the tenant's enabled point rules, in order, on one event. Failures are collected, not
/// raised: a broken rule never blocks a purchase. All rules of the event run in one task on
/// the blocking pool (one hand-off per event, not per rule).
pub async fn evaluate(
    env: Env<'_>,
    event: &sdk::MemberEvent,
    member: &sdk::MemberSnapshot,
    lines: usize,
    occurred_at: DateTime<Utc>,
) -> AppResult<(Vec<Proposed>, Vec<PluginError>)> {
    let rules = &env.config.rules;
    if rules.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut calls = Vec::with_capacity(rules.len());
    for (binding, version) in rules {
        let plugin = env.runtime.version(env.db, version.id).await?;
        calls.push((
            plugin,
            sdk::PointRuleInput {
                event: event.clone(),
                member: member.clone(),
                config: binding.config.clone(),
            },
        ));
    }
    let answers = env.runtime.evaluate_point_rules(calls).await?;
    let mut proposed = Vec::new();
    let mut errors = Vec::new();
    for ((binding, version), answer) in rules.iter().zip(answers) {
        let answer = match answer {
            Err(failure) => Err(plugin_error(
                version,
                failure.kind.code(),
                failure.kind.to_string(),
            )),
            Ok(outcome) => match outcome.output {
                Err(message) => Err(plugin_error(version, "plugin-error", message)),
                Ok(awards) => check_awards(awards, lines, occurred_at, env.awards_max)
                    .map_err(|m| plugin_error(version, "invalid-output", m)),
            },
        };
        match answer {
            Ok(awards) => proposed.extend(awards.into_iter().map(|(award, expires_at)| Proposed {
                binding: binding.clone(),
                version: version.clone(),
                award,
                expires_at,
            })),
            Err(e) => {
                tracing::warn!(
                    tenant = %env.tenant.id, plugin = %e.plugin_name, version = %e.plugin_version,
                    code = %e.code, message = %e.message, "point rule failed; event goes on without it"
                );
                errors.push(e);
            }
        }
    }
    Ok((proposed, errors))
}

/// Credits the proposed awards and stores them against `source` (the purchase or member
/// event, created in this transaction). The caller holds the member's lock ([`lock_member`]
/// gave `balances`) and announces the awards with [`announce`] after its own domain event.
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    conn: &impl ConnectionTrait,
    env: Env<'_>,
    member: MemberId,
    balances: Balances,
    source: Uuid,
    event_ref: &str,
    proposed: Vec<Proposed>,
    now: DateTime<Utc>,
) -> AppResult<Vec<Award>> {
    let mut batch = Batch::on(conn);
    let (awards, _) = apply_into(
        &mut batch, env, member, balances, source, event_ref, proposed, now,
    )?;
    batch.run(conn).await?;
    Ok(awards)
}

/// [`apply`] as part of a [`Batch`]: the awards' lots, entries, lines, the member's balances
/// and the awards themselves, in that order. Returns the awards and the balances saved.
#[allow(clippy::too_many_arguments)]
pub fn apply_into(
    batch: &mut Batch,
    env: Env<'_>,
    member: MemberId,
    balances: Balances,
    source: Uuid,
    event_ref: &str,
    proposed: Vec<Proposed>,
    now: DateTime<Utc>,
) -> AppResult<(Vec<Award>, Balances)> {
    // One ledger entry (and lot) per rule, reason and expiry, not per award: a rule that
    // awards line by line credits the event's points in one entry, and each award keeps its
    // line and points (what a return claws back, from that entry's lot) and points at it.
    let mut per_binding: HashMap<Uuid, u32> = HashMap::new();
    let mut specs: Vec<EarnSpec> = Vec::with_capacity(proposed.len());
    let mut keys: Vec<(Uuid, &str, ExpiryOverride)> = Vec::with_capacity(proposed.len());
    let mut spec_of = Vec::with_capacity(proposed.len());
    for p in &proposed {
        let reason = p.award.reason_code.trim();
        let key = (p.binding.id.0, reason, p.expires_at);
        let joined = keys
            .iter()
            .zip(&specs)
            .position(|(k, s)| *k == key && s.points + p.award.points <= POINTS_PER_ENTRY_MAX);
        if let Some(i) = joined {
            specs[i].points += p.award.points;
            spec_of.push(i);
            continue;
        }
        let n = per_binding.entry(p.binding.id.0).or_default();
        let natural_key = format!("award:{source}:{}:{n}", p.binding.id.0);
        *n += 1;
        spec_of.push(specs.len());
        keys.push(key);
        specs.push(EarnSpec {
            points: p.award.points,
            pending_until: None,
            expires_at: p.expires_at,
            natural_key: Some(natural_key),
            source: Source {
                reason: None,
                reason_code: Some(reason.to_string()),
                event_id: Some(event_ref.to_string()),
                plugin_id: Some(p.version.name.clone()),
                plugin_version: Some(
                    p.version
                        .version
                        .chars()
                        .take(LEDGER_VERSION_CHARS_MAX)
                        .collect(),
                ),
            },
        });
    }
    // A few multi-row INSERTs and one balance update for all of the event's awards.
    let (entries, balances) = earn_fresh_into(batch, env.tenant, member, balances, specs, now)?;
    let awards: Vec<Award> = proposed
        .into_iter()
        .zip(spec_of)
        .map(|(p, i)| Award {
            id: Uuid::now_v7(),
            points: p.award.points,
            reason_code: p.award.reason_code.trim().to_string(),
            plugin_name: p.version.name.clone(),
            plugin_version: p.version.version.clone(),
            binding_id: p.binding.id.0,
            line_index: p.award.line_index.map(|i| i as i32),
            entry_id: Some(entries[i].id),
            clawed_back: 0,
        })
        .collect();
    super::repo::insert_awards_into(batch, env.tenant.id, member, source, &awards, now)?;
    Ok((awards, balances))
}

/// Appends `points.earned` for each ledger entry the awards credited (each award's line and
/// points in it) and `plugin.failed` for each failed rule, after the event's own domain event
/// (cause first, then effects).
pub async fn announce(
    conn: &impl ConnectionTrait,
    env: Env<'_>,
    member: MemberId,
    event_ref: &str,
    awards: &[Award],
    errors: &[PluginError],
    now: DateTime<Utc>,
) -> AppResult<()> {
    let events = announcements(event_ref, awards, errors);
    outbox::append_all(conn, env.tenant.id, Some(member), events, now).await
}

/// The outbox records [`announce`] appends, for a caller that appends them together with its
/// own domain event in one statement.
pub fn announcements(
    event_ref: &str,
    awards: &[Award],
    errors: &[PluginError],
) -> Vec<(&'static str, serde_json::Value)> {
    // One per ledger entry, in the order of the entries' first awards: the awards of an entry
    // share its rule, reason and expiry; each keeps its line and points in `awards`.
    let mut entries: Vec<(&Award, Vec<&Award>)> = Vec::new();
    for award in awards {
        match entries
            .iter_mut()
            .find(|(first, _)| award.entry_id.is_some() && first.entry_id == award.entry_id)
        {
            Some((_, shared)) => shared.push(award),
            None => entries.push((award, vec![award])),
        }
    }
    let mut events: Vec<(&str, serde_json::Value)> = entries
        .into_iter()
        .map(|(first, shared)| {
            let lines: Vec<serde_json::Value> = shared
                .iter()
                .map(|a| json!({"lineIndex": a.line_index, "points": a.points}))
                .collect();
            (
                "points.earned",
                json!({
                    "entryId": first.entry_id,
                    "points": shared.iter().map(|a| a.points).sum::<i64>(),
                    "reason": first.reason_code,
                    "plugin": first.plugin_name,
                    "pluginVersion": first.plugin_version,
                    "eventId": event_ref,
                    "awards": lines,
                }),
            )
        })
        .collect();
    events.extend(errors.iter().map(|e| {
        (
            "plugin.failed",
            json!({
                "plugin": e.plugin_name,
                "pluginVersion": e.plugin_version,
                "code": e.code,
                "message": e.message,
                "eventId": event_ref,
            }),
        )
    }));
    events
}

/// The awards a simulation reports: what `apply` would write, without entries.
pub fn preview(proposed: &[Proposed]) -> Vec<Award> {
    proposed
        .iter()
        .map(|p| Award {
            id: Uuid::nil(),
            points: p.award.points,
            reason_code: p.award.reason_code.trim().to_string(),
            plugin_name: p.version.name.clone(),
            plugin_version: p.version.version.clone(),
            binding_id: p.binding.id.0,
            line_index: p.award.line_index.map(|i| i as i32),
            entry_id: None,
            clawed_back: 0,
        })
        .collect()
}

/// An erased or deactivated member takes part in no event.
pub fn check_active(member: &Member) -> AppResult<()> {
    if member.status != crate::members::MemberStatus::Active {
        return Err(AppError::validation(
            "memberId",
            format!(
                "the member is {}; only active members earn",
                member.status.as_str().to_lowercase()
            ),
        ));
    }
    Ok(())
}
