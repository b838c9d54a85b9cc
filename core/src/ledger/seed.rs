//! Bulk seeding: `members` real members and `entries` journal entries for one tenant, written
//! with multi-row INSERTs in large transactions instead of one service call per entry. For
//! benchmarks and load tests (millions of entries in minutes), never for production data.
//!
//! The rows have exactly the shapes the service writes, and the result is a sound ledger
//! (`audit` finds nothing):
//! - an **earn** is `issuance -x / available +x` with a lot of `x` (no lock, the tenant's
//!   expiry policy, a natural key `earn:seed-{entry id}`);
//! - after every [`SeedOptions::redeem_every`] earns of a member comes a **redemption**: a hold
//!   (`available -p` per lot it takes, soonest-expiring first, with allocations; `held +n`)
//!   and its full capture (`held -n / redemption +n`), and a `CAPTURED` hold row;
//! - the member's cached balances and lifetime counters equal the sums of its lines, and each
//!   lot's `remaining` is what the redemptions left of it.
//!
//! Entries are spread over the year before the call, interleaved across members (entry `k` of
//! member `m` is ordinal `k * members + m`), with UUIDv7 ids of their own time, so the history
//! reads like a real one: newest ids are the latest entries of every member.
//!
//! A transaction holds whole members: it is committed as soon as it holds at least
//! [`BATCH_ENTRIES`] entries, and no statement binds more than [`PARAMS_MAX`] values. Seeding
//! is not atomic: an interrupted run leaves the members it committed. Run it on a fresh tenant
//! or with a fresh [`SeedOptions::external_id_prefix`] (external ids are unique per tenant).

use super::{Account, EntryKind, ExpiryPolicy};
use crate::db::Db;
use crate::db::entities::{
    ledger_allocations, ledger_balances, ledger_entries, ledger_holds, ledger_lines, ledger_lots,
    members,
};
use crate::error::{AppError, AppResult};
use crate::ids::MemberId;
use crate::members::MemberStatus;
use crate::tenants::Tenant;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Iterable, Set};
use std::collections::VecDeque;
use std::time::Instant;
use uuid::Uuid;

/// Entries per transaction (a transaction ends after the member that reaches it).
pub const BATCH_ENTRIES: usize = 20_000;

/// Most values bound by one statement: under SQLite's 32,766 and PostgreSQL's 65,535.
pub const PARAMS_MAX: usize = 30_000;

/// How long before the call the seeded history starts (it may start earlier when there are
/// more than one entry per millisecond of it).
const HISTORY_SPAN: Duration = Duration::days(365);

/// What an earn credits: uniform in this range.
const EARN_POINTS: (i64, i64) = (10, 500);

/// Options beyond the counts.
#[derive(Clone, Debug)]
pub struct SeedOptions {
    /// Members get the external ids `{prefix}-{n}`.
    pub external_id_prefix: String,
    /// A redemption (hold + capture, two entries) after every this many earns; 0: earns only.
    pub redeem_every: u32,
    /// Seed of the pseudo-random amounts: the same seed gives the same amounts.
    pub rng_seed: u64,
}

impl Default for SeedOptions {
    fn default() -> Self {
        Self {
            external_id_prefix: "seed".into(),
            redeem_every: 3,
            rng_seed: 0x5eed,
        }
    }
}

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct Seeded {
    /// The new members, in the order of their external ids.
    pub members: Vec<MemberId>,
    pub entries: u64,
    pub lines: u64,
    pub lots: u64,
    pub allocations: u64,
    pub holds: u64,
    /// Sum of the new members' available balances.
    pub points_outstanding: i64,
    pub transactions: u64,
    pub elapsed: std::time::Duration,
}

/// Inserts `members` members into `tenant` and `entries` ledger entries spread evenly over
/// them (the first `entries % members` get one more). See the module documentation.
pub async fn seed(
    db: &Db,
    tenant: &Tenant,
    members: u64,
    entries: u64,
    opts: &SeedOptions,
) -> AppResult<Seeded> {
    if members == 0 && entries > 0 {
        return Err(AppError::validation(
            "members",
            "entries need at least one member",
        ));
    }
    let started = Instant::now();
    let per_member = entries.checked_div(members).unwrap_or(0);
    let extra = entries.checked_rem(members).unwrap_or(0);
    let rounds = per_member + u64::from(extra > 0);
    let ordinals = rounds.saturating_mul(members).max(1);
    let step_us = (HISTORY_SPAN.num_microseconds().unwrap_or(i64::MAX) / ordinals as i64).max(1000);
    let now = crate::clock::now();
    let start = now
        - Duration::microseconds(step_us.saturating_mul(ordinals as i64))
        - Duration::minutes(1);
    let clock = Timeline {
        start,
        step_us,
        members,
    };

    let mut out = Seeded::default();
    let mut batch = Batch::default();
    for m in 0..members {
        let count = per_member + u64::from(m < extra);
        let member = plan_member(tenant, opts, &clock, m, count, &mut batch)?;
        out.members.push(member.id);
        out.points_outstanding += member.available;
        if batch.entries.len() >= BATCH_ENTRIES {
            batch.flush(db, &mut out).await?;
        }
    }
    batch.flush(db, &mut out).await?;
    out.elapsed = started.elapsed();
    Ok(out)
}

/// When entry `k` of member `m` happened.
struct Timeline {
    start: DateTime<Utc>,
    step_us: i64,
    members: u64,
}

impl Timeline {
    fn at(&self, m: u64, k: u64) -> DateTime<Utc> {
        let ordinal = k.saturating_mul(self.members).saturating_add(m);
        self.start + Duration::microseconds(self.step_us.saturating_mul(ordinal as i64))
    }

    /// Members enrol a second apart, the last one just before the history starts.
    fn enrolled(&self, m: u64) -> DateTime<Utc> {
        self.start - Duration::seconds((self.members - m) as i64)
    }
}

/// A UUIDv7 of the instant `at` (random below the millisecond).
fn v7_at(at: DateTime<Utc>) -> Uuid {
    let secs = u64::try_from(at.timestamp()).unwrap_or(0);
    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        secs,
        at.timestamp_subsec_nanos(),
    ))
}

/// splitmix64: small, fast, deterministic; plenty for spreading amounts.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo + 1).max(1) as u64;
        lo + (self.next() % span) as i64
    }
}

struct PlannedMember {
    id: MemberId,
    available: i64,
}

/// One member's rows, appended to `batch`.
fn plan_member(
    tenant: &Tenant,
    opts: &SeedOptions,
    clock: &Timeline,
    m: u64,
    count: u64,
    batch: &mut Batch,
) -> AppResult<PlannedMember> {
    let tenant_id = tenant.id.0;
    let enrolled_at = clock.enrolled(m);
    let member = MemberId(v7_at(enrolled_at));
    let mut rng = Rng(opts.rng_seed ^ m.wrapping_mul(0x2545_f491_4f6c_dd1d));
    batch.members.push(members::Model {
        id: member.0,
        tenant_id,
        external_id: format!("{}-{m}", opts.external_id_prefix),
        email: None,
        phone: None,
        first_name: None,
        last_name: None,
        birthday: None,
        locale: None,
        tags: serde_json::Value::Array(Vec::new()),
        consent_email: false,
        consent_sms: false,
        attributes: serde_json::Value::Object(serde_json::Map::new()),
        status: MemberStatus::Active.as_str().into(),
        enrolled_at,
        updated_at: enrolled_at,
        erased_at: None,
        birthday_md: None,
    });

    // Lots with points left, oldest first. Seeded lots are created in time order under one
    // expiry policy, so creation order is expiry order: the front is what FIFO takes first.
    let mut open: VecDeque<(usize, Uuid, i64)> = VecDeque::new();
    let mut available = 0i64;
    let mut earned = 0i64;
    let mut redeemed = 0i64;
    let mut earns_since = 0u32;
    let mut last = enrolled_at;
    let mut k = 0u64;
    while k < count {
        let at = clock.at(m, k);
        let redeem = opts.redeem_every > 0
            && earns_since >= opts.redeem_every
            && count - k >= 2
            && available > 0;
        if !redeem {
            let points = rng.between(EARN_POINTS.0, EARN_POINTS.1);
            let entry = v7_at(at);
            let lot = v7_at(at);
            open.push_back((batch.lots.len(), lot, points));
            batch
                .lots
                .push(lot_row(tenant, member, entry, lot, points, at));
            batch.entry(
                tenant_id,
                member,
                entry,
                EntryKind::Earn,
                points,
                Some(format!("earn:seed-{}", entry.simple())),
                None,
                at,
            );
            batch.line(entry, tenant_id, member, Account::Issuance, -points, None);
            batch.line(
                entry,
                tenant_id,
                member,
                Account::Available,
                points,
                Some(lot),
            );
            available += points;
            earned += points;
            earns_since += 1;
            last = at;
            k += 1;
            continue;
        }
        // A redemption of 50-90 % of what is available, captured in full.
        let amount = (available * rng.between(50, 90) / 100).max(1);
        let hold_entry = v7_at(at);
        let hold_id = v7_at(at);
        let captured_at = clock.at(m, k + 1);
        let capture_entry = v7_at(captured_at);
        batch.entry(
            tenant_id,
            member,
            hold_entry,
            EntryKind::Hold,
            -amount,
            None,
            Some(hold_id),
            at,
        );
        let mut left = amount;
        while left > 0 {
            let (row, lot, remaining) = open.front_mut().ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("seed: lots hold less than available"))
            })?;
            let take = (*remaining).min(left);
            *remaining -= take;
            left -= take;
            let (row, lot, done) = (*row, *lot, *remaining == 0);
            batch.lots[row].remaining -= take;
            batch.line(
                hold_entry,
                tenant_id,
                member,
                Account::Available,
                -take,
                Some(lot),
            );
            batch.allocations.push(ledger_allocations::ActiveModel {
                tenant_id: Set(tenant_id),
                entry_id: Set(hold_entry),
                lot_id: Set(lot),
                points: Set(take),
                ..Default::default()
            });
            if done {
                open.pop_front();
            }
        }
        batch.line(hold_entry, tenant_id, member, Account::Held, amount, None);
        batch.entry(
            tenant_id,
            member,
            capture_entry,
            EntryKind::Capture,
            0,
            None,
            Some(hold_id),
            captured_at,
        );
        batch.line(
            capture_entry,
            tenant_id,
            member,
            Account::Held,
            -amount,
            None,
        );
        batch.line(
            capture_entry,
            tenant_id,
            member,
            Account::Redemption,
            amount,
            None,
        );
        batch.holds.push(ledger_holds::Model {
            id: hold_id,
            tenant_id,
            member_id: member.0,
            points: amount,
            captured_points: amount,
            status: "CAPTURED".into(),
            hold_entry_id: hold_entry,
            resolve_entry_id: Some(capture_entry),
            created_at: at,
            resolved_at: Some(captured_at),
        });
        available -= amount;
        redeemed += amount;
        earns_since = 0;
        last = captured_at;
        k += 2;
    }
    batch.balances.push(ledger_balances::Model {
        member_id: member.0,
        tenant_id,
        available,
        pending: 0,
        held: 0,
        lifetime_earned: earned,
        lifetime_redeemed: redeemed,
        lifetime_expired: 0,
        updated_at: last,
    });
    Ok(PlannedMember {
        id: member,
        available,
    })
}

fn lot_row(
    tenant: &Tenant,
    member: MemberId,
    entry: Uuid,
    lot: Uuid,
    points: i64,
    at: DateTime<Utc>,
) -> ledger_lots::Model {
    let expiry: ExpiryPolicy = tenant.points_policy.expiry;
    ledger_lots::Model {
        id: lot,
        tenant_id: tenant.id.0,
        member_id: member.0,
        entry_id: entry,
        original: points,
        remaining: points,
        clawed_back: 0,
        bucket: super::repo::BUCKET_AVAILABLE.into(),
        available_at: at,
        expires_at: expiry.expires_at(at, tenant.timezone),
        created_at: at,
    }
}

/// Rows waiting for the next transaction.
#[derive(Default)]
struct Batch {
    members: Vec<members::Model>,
    balances: Vec<ledger_balances::Model>,
    entries: Vec<ledger_entries::Model>,
    lines: Vec<ledger_lines::ActiveModel>,
    lots: Vec<ledger_lots::Model>,
    allocations: Vec<ledger_allocations::ActiveModel>,
    holds: Vec<ledger_holds::Model>,
}

impl Batch {
    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        tenant_id: Uuid,
        member: MemberId,
        id: Uuid,
        kind: EntryKind,
        points: i64,
        natural_key: Option<String>,
        hold_id: Option<Uuid>,
        at: DateTime<Utc>,
    ) {
        self.entries.push(ledger_entries::Model {
            id,
            tenant_id,
            member_id: member.0,
            kind: kind.as_str().into(),
            points,
            reason: None,
            reason_code: Some("seed".into()),
            natural_key,
            reverses_entry_id: None,
            hold_id,
            event_id: None,
            plugin_id: None,
            plugin_version: None,
            created_at: at,
        });
    }

    /// A line as `repo::insert_entry` writes it: system accounts carry no member.
    fn line(
        &mut self,
        entry: Uuid,
        tenant_id: Uuid,
        member: MemberId,
        account: Account,
        amount: i64,
        lot: Option<Uuid>,
    ) {
        self.lines.push(ledger_lines::ActiveModel {
            entry_id: Set(entry),
            tenant_id: Set(tenant_id),
            member_id: Set(account.is_member().then_some(member.0)),
            account: Set(account.as_str().into()),
            amount: Set(amount),
            lot_id: Set(lot),
            ..Default::default()
        });
    }

    /// Writes everything in one write transaction and empties the batch.
    async fn flush(&mut self, db: &Db, out: &mut Seeded) -> AppResult<()> {
        if self.members.is_empty() {
            return Ok(());
        }
        let b = std::mem::take(self);
        out.entries += b.entries.len() as u64;
        out.lines += b.lines.len() as u64;
        out.lots += b.lots.len() as u64;
        out.allocations += b.allocations.len() as u64;
        out.holds += b.holds.len() as u64;
        let txn = db.begin_write().await?;
        insert_all(&txn, models(b.members)).await?;
        insert_all(&txn, models(b.balances)).await?;
        insert_all(&txn, models(b.entries)).await?;
        insert_all(&txn, b.lines).await?;
        insert_all(&txn, models(b.lots)).await?;
        insert_all(&txn, b.allocations).await?;
        insert_all(&txn, models(b.holds)).await?;
        txn.commit().await?;
        out.transactions += 1;
        Ok(())
    }
}

fn models<M, A>(rows: Vec<M>) -> Vec<A>
where
    M: IntoActiveModel<A>,
    A: ActiveModelTrait,
{
    rows.into_iter()
        .map(IntoActiveModel::into_active_model)
        .collect()
}

/// Multi-row INSERTs of at most [`PARAMS_MAX`] bound values each.
async fn insert_all<A>(txn: &sea_orm::DatabaseTransaction, rows: Vec<A>) -> AppResult<()>
where
    A: ActiveModelTrait,
{
    let columns = <A::Entity as EntityTrait>::Column::iter().count().max(1);
    let per_statement = (PARAMS_MAX / columns).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(per_statement).collect();
        <A::Entity as EntityTrait>::insert_many(chunk)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_is_increasing_per_member_and_interleaved() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let t = Timeline {
            start,
            step_us: 1000,
            members: 3,
        };
        assert!(t.at(0, 1) > t.at(2, 0));
        assert!(t.at(1, 0) > t.at(0, 0));
        assert!(t.enrolled(0) < t.enrolled(2));
        assert!(t.enrolled(2) < t.at(0, 0));
        // Ids follow their instants at millisecond resolution.
        assert!(v7_at(t.at(0, 1)) > v7_at(t.at(2, 0)));
    }

    #[test]
    fn rng_stays_in_range_and_repeats() {
        let mut a = Rng(7);
        let mut b = Rng(7);
        for _ in 0..1000 {
            let x = a.between(10, 500);
            assert!((10..=500).contains(&x));
            assert_eq!(x, b.between(10, 500));
        }
    }
}
