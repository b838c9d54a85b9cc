//! Ledger operations. The `*_in` functions work inside a caller's transaction, so the events
//! pipeline can compose them with other writes; the others are the API's entry points with
//! permission checks, idempotency and their own transaction.
//!
//! Every operation locks the member's balance row first, then reads lots, then writes: one
//! member's operations are serialised, and no operation locks anything shared.

use super::repo::{self, BUCKET_AVAILABLE, BUCKET_PENDING, Entry, Hold, Lot};
use super::{Account, Balances, EntryKind, Line, ShortfallPolicy, allocate_fifo, check_lines};
use crate::auth::{Access, Principal};
use crate::db::{Batch, Db};
use crate::error::{AppError, AppResult, is_unique_violation};
use crate::idempotency::{self, IdempotencyKey};
use crate::ids::{MemberId, TenantId};
use crate::members::{self, MemberStatus};
use crate::pagination::{Page, PageRequest};
use crate::tenants::{self, PointsPolicy, Tenant};
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use uuid::Uuid;

/// Why an entry exists; stored on it and shown in the member's history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    pub reason: Option<String>,
    pub reason_code: Option<String>,
    pub event_id: Option<String>,
    pub plugin_id: Option<String>,
    pub plugin_version: Option<String>,
}

/// Largest amount a single operation moves; far above any real club, far below overflow.
pub const POINTS_PER_ENTRY_MAX: i64 = 1_000_000_000_000;

fn check_amount(points: i64) -> AppResult<()> {
    if points <= 0 || points > POINTS_PER_ENTRY_MAX {
        return Err(AppError::validation(
            "points",
            format!("points must be between 1 and {POINTS_PER_ENTRY_MAX}"),
        ));
    }
    Ok(())
}

#[derive(Default)]
struct Lifetime {
    earned: i64,
    redeemed: i64,
    expired: i64,
}

struct Post {
    kind: EntryKind,
    lines: Vec<Line>,
    source: Source,
    natural_key: Option<String>,
    reverses: Option<Uuid>,
    hold_id: Option<Uuid>,
    lifetime: Lifetime,
}

/// The entry `p` makes and the balances after it: checks it balances, applies it to the
/// locked balances, checks invariant 4. Writes nothing.
fn prepare(
    tenant: &Tenant,
    member: MemberId,
    before: Balances,
    id: Uuid,
    p: Post,
    now: DateTime<Utc>,
) -> AppResult<(Entry, Vec<Line>, Balances)> {
    check_lines(&p.lines)?;
    let mut after = before.apply(&p.lines)?;
    after.lifetime_earned = after
        .lifetime_earned
        .checked_add(p.lifetime.earned)
        .ok_or_else(super::overflow)?;
    after.lifetime_redeemed = after
        .lifetime_redeemed
        .checked_add(p.lifetime.redeemed)
        .ok_or_else(super::overflow)?;
    after.lifetime_expired = after
        .lifetime_expired
        .checked_add(p.lifetime.expired)
        .ok_or_else(super::overflow)?;
    after.check(tenant.points_policy.shortfall == ShortfallPolicy::AllowNegative)?;
    let points = p
        .lines
        .iter()
        .filter(|l| matches!(l.account, Account::Available | Account::Pending))
        .map(|l| l.amount)
        .sum();
    let entry = Entry {
        id,
        tenant_id: tenant.id,
        member_id: member,
        kind: p.kind,
        points,
        reason: p.source.reason,
        reason_code: p.source.reason_code,
        natural_key: p.natural_key,
        reverses_entry_id: p.reverses,
        hold_id: p.hold_id,
        event_id: p.source.event_id,
        plugin_id: p.source.plugin_id,
        plugin_version: p.source.plugin_version,
        created_at: now,
    };
    Ok((entry, p.lines, after))
}

fn duplicate_entry(e: AppError) -> AppError {
    if e.is_unique_violation() {
        AppError::Conflict(
            "this entry was already recorded (natural key or reversal exists)".into(),
        )
    } else {
        e
    }
}

/// Writes an entry: [`prepare`], then stores entry, lines and balances.
async fn post(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    member: MemberId,
    before: Balances,
    id: Uuid,
    p: Post,
    now: DateTime<Utc>,
) -> AppResult<(Entry, Balances)> {
    let (entry, lines, after) = prepare(tenant, member, before, id, p, now)?;
    repo::insert_entry(conn, &entry, &lines)
        .await
        .map_err(duplicate_entry)?;
    repo::save_balances(conn, tenant.id, member, &after, now).await?;
    Ok((entry, after))
}

/// What to earn.
#[derive(Clone, Debug, Default)]
pub struct EarnSpec {
    pub points: i64,
    /// Locked in `pending` until then (e.g. the end of the return window).
    pub pending_until: Option<DateTime<Utc>>,
    /// `Some(x)` overrides the tenant's expiry policy with `x`.
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// Permanent uniqueness key, e.g. `earn:order-1:0`: a second earn with it returns the first.
    pub natural_key: Option<String>,
    pub source: Source,
}

/// Credits points (a new lot). With a natural key that exists, returns the existing entry.
pub async fn earn_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    member: MemberId,
    spec: EarnSpec,
    now: DateTime<Utc>,
) -> AppResult<(Entry, Balances)> {
    credit(conn, tenant, member, spec, EntryKind::Earn, now).await
}

async fn credit(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    member: MemberId,
    spec: EarnSpec,
    kind: EntryKind,
    now: DateTime<Utc>,
) -> AppResult<(Entry, Balances)> {
    check_amount(spec.points)?;
    let before = repo::lock_balances(conn, tenant.id, member, now).await?;
    if let Some(key) = &spec.natural_key
        && let Some(existing) = repo::find_by_natural_key(conn, tenant.id, key).await?
    {
        return Ok((existing, before));
    }
    let (lot, entry, lines, after) = prepare_credit(tenant, member, before, spec, kind, now)?;
    repo::insert_lot(conn, lot).await?;
    repo::insert_entry(conn, &entry, &lines)
        .await
        .map_err(duplicate_entry)?;
    repo::save_balances(conn, tenant.id, member, &after, now).await?;
    Ok((entry, after))
}

/// The lot, entry, lines and balances of one credit on top of `before`, checked.
fn prepare_credit(
    tenant: &Tenant,
    member: MemberId,
    before: Balances,
    spec: EarnSpec,
    kind: EntryKind,
    now: DateTime<Utc>,
) -> AppResult<(Lot, Entry, Vec<Line>, Balances)> {
    let pending = spec.pending_until.is_some_and(|t| t > now);
    let (account, bucket) = if pending {
        (Account::Pending, BUCKET_PENDING)
    } else {
        (Account::Available, BUCKET_AVAILABLE)
    };
    // A negative available balance (allow-negative policy) is repaid first.
    let repaid = if pending {
        0
    } else {
        spec.points.min((-before.available).max(0))
    };
    let entry_id = Uuid::now_v7();
    let lot_id = Uuid::now_v7();
    let expires_at = spec
        .expires_at
        .unwrap_or_else(|| tenant.points_policy.expiry.expires_at(now, tenant.timezone));
    let lot = Lot {
        id: lot_id,
        tenant_id: tenant.id.0,
        member_id: member.0,
        entry_id,
        original: spec.points,
        remaining: spec.points - repaid,
        clawed_back: 0,
        bucket: bucket.into(),
        available_at: spec.pending_until.filter(|_| pending).unwrap_or(now),
        expires_at,
        created_at: now,
    };
    let lines = vec![
        Line::new(Account::Issuance, -spec.points),
        Line::with_lot(account, spec.points, lot_id),
    ];
    let (entry, lines, after) = prepare(
        tenant,
        member,
        before,
        entry_id,
        Post {
            kind,
            lines,
            source: spec.source,
            natural_key: spec.natural_key,
            reverses: None,
            hold_id: None,
            lifetime: Lifetime {
                earned: spec.points,
                ..Default::default()
            },
        },
        now,
    )?;
    Ok((lot, entry, lines, after))
}

/// Several earns for one member (the awards of one event) under one lock, written with
/// multi-row INSERTs and one balance update: the same rows as that many [`earn_in`] calls, in
/// the same order, at a fixed number of statements. When any natural key already exists (a
/// replay), falls back to [`earn_in`] one by one, which returns the existing entries.
pub async fn earn_many_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    member: MemberId,
    specs: Vec<EarnSpec>,
    now: DateTime<Utc>,
) -> AppResult<Vec<Entry>> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let balances = repo::lock_balances(conn, tenant.id, member, now).await?;
    let keys: Vec<String> = specs.iter().filter_map(|s| s.natural_key.clone()).collect();
    if repo::any_natural_key(conn, tenant.id, &keys).await? {
        let mut out = Vec::with_capacity(specs.len());
        for s in specs {
            out.push(
                credit(conn, tenant, member, s, EntryKind::Earn, now)
                    .await?
                    .0,
            );
        }
        return Ok(out);
    }
    earn_fresh_in(conn, tenant, member, balances, specs, now).await
}

/// [`earn_many_in`] for a caller that already holds the member's lock (`balances` were read
/// under it in this transaction) and whose natural keys are all new, because they name a
/// source created in this transaction (an event's awards). Skips the lock and the key lookup;
/// a key that exists after all fails on its UNIQUE index, and the transaction with it.
pub async fn earn_fresh_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    member: MemberId,
    balances: Balances,
    specs: Vec<EarnSpec>,
    now: DateTime<Utc>,
) -> AppResult<Vec<Entry>> {
    let mut batch = Batch::on(conn);
    let (entries, _) = earn_fresh_into(&mut batch, tenant, member, balances, specs, now)?;
    batch
        .run(conn)
        .await
        .map_err(|e| duplicate_entry(e.into()))?;
    Ok(entries)
}

/// [`earn_fresh_in`] as part of a [`Batch`]: checks and prepares the entries and adds their
/// lots, entries, lines and the member's new balances to `batch`, and returns those balances.
/// The caller runs it in the transaction that holds the member's lock.
pub fn earn_fresh_into(
    batch: &mut Batch,
    tenant: &Tenant,
    member: MemberId,
    mut balances: Balances,
    specs: Vec<EarnSpec>,
    now: DateTime<Utc>,
) -> AppResult<(Vec<Entry>, Balances)> {
    if specs.is_empty() {
        return Ok((Vec::new(), balances));
    }
    for s in &specs {
        check_amount(s.points)?;
    }
    let mut lots = Vec::with_capacity(specs.len());
    let mut entries = Vec::with_capacity(specs.len());
    for spec in specs {
        let (lot, entry, lines, after) =
            prepare_credit(tenant, member, balances, spec, EntryKind::Earn, now)?;
        lots.push(lot);
        entries.push((entry, lines));
        balances = after;
    }
    repo::insert_lots_into(batch, lots);
    repo::insert_entries_into(batch, &entries);
    repo::save_balances_into(batch, tenant.id, member, &balances, now);
    Ok((entries.into_iter().map(|(e, _)| e).collect(), balances))
}

/// What a debit reads under the member's lock: the balances (locked) and the lots it can take
/// from.
pub struct Spendable {
    before: Balances,
    lots: Vec<super::LotState>,
}

/// Locks the member's balances and reads their spendable lots, for a debit in the same
/// transaction ([`hold_captured_into`]).
pub async fn spendable_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    member: MemberId,
    now: DateTime<Utc>,
) -> AppResult<Spendable> {
    let before = repo::lock_balances(conn, tenant.id, member, now).await?;
    let lots = repo::spendable_lots(conn, tenant.id, member).await?;
    Ok(Spendable { before, lots })
}

/// Takes `d.amount` from the member's available lots (FIFO by expiry) into `d.to`.
async fn debit(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    member: MemberId,
    d: Debit,
    now: DateTime<Utc>,
) -> AppResult<(Entry, Balances)> {
    check_amount(d.amount)?;
    let spendable = spendable_in(conn, tenant, member, now).await?;
    let mut batch = Batch::on(conn);
    let (entry, lines, after) = debit_into(&mut batch, tenant, member, spendable, d, now)?;
    let entries = [(entry, lines)];
    repo::insert_entries_into(&mut batch, &entries);
    repo::save_balances_into(&mut batch, tenant.id, member, &after, now);
    batch
        .run(conn)
        .await
        .map_err(|e| duplicate_entry(e.into()))?;
    let [(entry, _)] = entries;
    Ok((entry, after))
}

/// A debit's amount and where it goes.
struct Debit {
    amount: i64,
    to: Account,
    kind: EntryKind,
    source: Source,
    hold_id: Option<Uuid>,
    lifetime: Lifetime,
}

impl Debit {
    /// A hold's debit: `points` from available to held.
    fn hold(points: i64, source: Source, hold_id: Uuid) -> Self {
        Self {
            amount: points,
            to: Account::Held,
            kind: EntryKind::Hold,
            source,
            hold_id: Some(hold_id),
            lifetime: Lifetime::default(),
        }
    }
}

/// The debit's lot changes and allocations, added to `batch`; its entry, lines and the
/// balances after it are the caller's to write (after any other entry of the same member:
/// a batch writes a balance row once). INSUFFICIENT_POINTS when `d.amount` is more than is
/// available, and nothing is added.
fn debit_into(
    batch: &mut Batch,
    tenant: &Tenant,
    member: MemberId,
    Spendable { before, lots }: Spendable,
    d: Debit,
    now: DateTime<Utc>,
) -> AppResult<(Entry, Vec<Line>, Balances)> {
    check_amount(d.amount)?;
    if before.available < d.amount {
        return Err(AppError::InsufficientPoints(format!(
            "the member has {} points available; {} are needed",
            before.available.max(0),
            d.amount
        )));
    }
    let taken = allocate_fifo(&lots, d.amount).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "invariant 5 broken: lots of member {member} hold less than the available balance"
        ))
    })?;
    let entry_id = Uuid::now_v7();
    let negated: Vec<(Uuid, i64)> = taken.iter().map(|(l, p)| (*l, -p)).collect();
    repo::change_lots_into(batch, &negated);
    repo::insert_allocations_into(batch, tenant.id, entry_id, &taken);
    let mut lines: Vec<Line> = taken
        .iter()
        .map(|(lot, p)| Line::with_lot(Account::Available, -p, *lot))
        .collect();
    lines.push(Line::new(d.to, d.amount));
    let post = Post {
        kind: d.kind,
        lines,
        source: d.source,
        natural_key: None,
        reverses: None,
        hold_id: d.hold_id,
        lifetime: d.lifetime,
    };
    prepare(tenant, member, before, entry_id, post, now)
}

/// A hold of `points` captured whole at once (a redemption), as part of a [`Batch`]: the same
/// rows as [`hold_in`] then [`capture_in`] of every point held (the hold entry with its lot
/// changes and allocations, the capture entry), with the hold row written once, already
/// `CAPTURED`, and the balances once. `spendable` was read for `points` in this transaction.
pub fn hold_captured_into(
    batch: &mut Batch,
    tenant: &Tenant,
    member: MemberId,
    spendable: Spendable,
    points: i64,
    source: Source,
    now: DateTime<Utc>,
) -> AppResult<Hold> {
    let hold_id = Uuid::now_v7();
    let debit = Debit::hold(points, source, hold_id);
    let (held, held_lines, mid) = debit_into(batch, tenant, member, spendable, debit, now)?;
    let capture = Post {
        kind: EntryKind::Capture,
        lines: vec![
            Line::new(Account::Held, -points),
            Line::new(Account::Redemption, points),
        ],
        source: Source::default(),
        natural_key: None,
        reverses: None,
        hold_id: Some(hold_id),
        lifetime: Lifetime {
            redeemed: points,
            ..Default::default()
        },
    };
    let (captured, captured_lines, after) =
        prepare(tenant, member, mid, Uuid::now_v7(), capture, now)?;
    let hold = Hold {
        id: hold_id,
        tenant_id: tenant.id.0,
        member_id: member.0,
        points,
        captured_points: points,
        status: "CAPTURED".into(),
        hold_entry_id: held.id,
        resolve_entry_id: Some(captured.id),
        created_at: now,
        resolved_at: Some(now),
    };
    repo::insert_entries_into(batch, &[(held, held_lines), (captured, captured_lines)]);
    repo::save_balances_into(batch, tenant.id, member, &after, now);
    repo::insert_hold_into(batch, hold.clone());
    Ok(hold)
}

/// An admin's correction: a credit (new lot, tenant's expiry) or a debit (FIFO).
pub async fn adjust_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    member: MemberId,
    points: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> AppResult<(Entry, Balances)> {
    let source = Source {
        reason: Some(reason.to_string()),
        reason_code: Some("adjustment".into()),
        ..Default::default()
    };
    if points > 0 {
        let spec = EarnSpec {
            points,
            source,
            ..Default::default()
        };
        credit(conn, tenant, member, spec, EntryKind::Adjust, now).await
    } else {
        let amount = points.checked_neg().ok_or_else(super::overflow)?;
        let lifetime = Lifetime {
            earned: points,
            ..Default::default()
        };
        let d = Debit {
            amount,
            to: Account::Issuance,
            kind: EntryKind::Adjust,
            source,
            hold_id: None,
            lifetime,
        };
        debit(conn, tenant, member, d, now).await
    }
}

/// Reserves points for a redemption: available -> held.
pub async fn hold_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    member: MemberId,
    points: i64,
    source: Source,
    now: DateTime<Utc>,
) -> AppResult<(Hold, Entry)> {
    let hold_id = Uuid::now_v7();
    let d = Debit::hold(points, source, hold_id);
    let (entry, _) = debit(conn, tenant, member, d, now).await?;
    let hold = Hold {
        id: hold_id,
        tenant_id: tenant.id.0,
        member_id: member.0,
        points,
        captured_points: 0,
        status: "OPEN".into(),
        hold_entry_id: entry.id,
        resolve_entry_id: None,
        created_at: now,
        resolved_at: None,
    };
    repo::insert_hold(conn, hold.clone()).await?;
    Ok((hold, entry))
}

/// Puts up to `amount` back into the lots `allocations` took from, last taken first.
/// Returns the restorations (lot, points) made.
async fn restore(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    entry: Uuid,
    allocations: &[(Uuid, i64)],
    amount: i64,
) -> AppResult<Vec<(Uuid, i64)>> {
    let mut left = amount;
    let mut restored = Vec::new();
    for (lot, taken) in allocations.iter().rev() {
        if left <= 0 {
            break;
        }
        let back = (*taken).min(left);
        if back > 0 {
            restored.push((*lot, back));
            left -= back;
        }
    }
    repo::change_lots(conn, &restored).await?;
    let negative: Vec<(Uuid, i64)> = restored.iter().map(|(l, p)| (*l, -p)).collect();
    repo::insert_allocations(conn, tenant, entry, &negative).await?;
    Ok(restored)
}

async fn open_hold(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    hold_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<(Hold, Balances)> {
    let hold = repo::find_hold(conn, tenant.id, hold_id)
        .await?
        .ok_or(AppError::not_found("hold"))?;
    let before = repo::lock_balances(conn, tenant.id, MemberId(hold.member_id), now).await?;
    // Re-read under the member's lock: a concurrent capture or void may have resolved it.
    let hold = repo::find_hold(conn, tenant.id, hold_id)
        .await?
        .ok_or(AppError::not_found("hold"))?;
    if hold.status != "OPEN" {
        return Err(AppError::Conflict(format!(
            "the hold was already {}",
            hold.status.to_lowercase()
        )));
    }
    Ok((hold, before))
}

/// Settles a hold: `amount` (<= held) goes to redemption, the rest back to the member's lots.
pub async fn capture_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    hold_id: Uuid,
    amount: i64,
    now: DateTime<Utc>,
) -> AppResult<Entry> {
    let (mut hold, before) = open_hold(conn, tenant, hold_id, now).await?;
    if amount <= 0 || amount > hold.points {
        return Err(AppError::validation(
            "points",
            format!(
                "a capture must be between 1 and the {} points held",
                hold.points
            ),
        ));
    }
    let member = MemberId(hold.member_id);
    let entry_id = Uuid::now_v7();
    let rest = hold.points - amount;
    let mut lines = vec![
        Line::new(Account::Held, -hold.points),
        Line::new(Account::Redemption, amount),
    ];
    if rest > 0 {
        let allocations = repo::allocations_of(conn, tenant.id, hold.hold_entry_id).await?;
        let restorable = rest.min((before.available + rest).max(0));
        for (lot, p) in restore(conn, tenant.id, entry_id, &allocations, restorable).await? {
            lines.push(Line::with_lot(Account::Available, p, lot));
        }
        if restorable < rest {
            lines.push(Line::new(Account::Available, rest - restorable));
        }
    }
    let (entry, _) = post(
        conn,
        tenant,
        member,
        before,
        entry_id,
        Post {
            kind: EntryKind::Capture,
            lines,
            source: Source::default(),
            natural_key: None,
            reverses: None,
            hold_id: Some(hold.id),
            lifetime: Lifetime {
                redeemed: amount,
                ..Default::default()
            },
        },
        now,
    )
    .await?;
    hold.status = "CAPTURED".into();
    hold.captured_points = amount;
    hold.resolve_entry_id = Some(entry.id);
    hold.resolved_at = Some(now);
    repo::resolve_hold(conn, &hold).await?;
    Ok(entry)
}

/// Cancels a hold: every point goes back to the lot it came from, with its original expiry.
pub async fn void_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    hold_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Entry> {
    let (mut hold, before) = open_hold(conn, tenant, hold_id, now).await?;
    let member = MemberId(hold.member_id);
    let entry_id = Uuid::now_v7();
    let allocations = repo::allocations_of(conn, tenant.id, hold.hold_entry_id).await?;
    let restorable = hold.points.min((before.available + hold.points).max(0));
    let mut lines = vec![Line::new(Account::Held, -hold.points)];
    for (lot, p) in restore(conn, tenant.id, entry_id, &allocations, restorable).await? {
        lines.push(Line::with_lot(Account::Available, p, lot));
    }
    if restorable < hold.points {
        // The member owes points (allow-negative): the part that repays the debt has no lot.
        lines.push(Line::new(Account::Available, hold.points - restorable));
    }
    let (entry, _) = post(
        conn,
        tenant,
        member,
        before,
        entry_id,
        Post {
            kind: EntryKind::Void,
            lines,
            source: Source::default(),
            natural_key: None,
            reverses: None,
            hold_id: Some(hold.id),
            lifetime: Lifetime::default(),
        },
        now,
    )
    .await?;
    hold.status = "VOIDED".into();
    hold.resolve_entry_id = Some(entry.id);
    hold.resolved_at = Some(now);
    repo::resolve_hold(conn, &hold).await?;
    Ok(entry)
}

/// Gives back a captured hold (a cancelled redemption): the captured points return to the lots
/// they were taken from, with their original expiry; the hold becomes `REFUNDED`. At most once
/// (the refund reverses the capture entry, and a reversal is unique).
pub async fn refund_capture_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    hold_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Entry> {
    let hold = repo::find_hold(conn, tenant.id, hold_id)
        .await?
        .ok_or(AppError::not_found("hold"))?;
    let member = MemberId(hold.member_id);
    let before = repo::lock_balances(conn, tenant.id, member, now).await?;
    let mut hold = repo::find_hold(conn, tenant.id, hold_id)
        .await?
        .ok_or(AppError::not_found("hold"))?;
    if hold.status != "CAPTURED" {
        return Err(AppError::Conflict(format!(
            "only a captured hold can be refunded; this one is {}",
            hold.status.to_lowercase()
        )));
    }
    let capture_entry = hold
        .resolve_entry_id
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("captured hold without its entry")))?;
    // What the hold took from each lot, less what the capture already put back.
    let mut net: Vec<(Uuid, i64)> =
        repo::allocations_of(conn, tenant.id, hold.hold_entry_id).await?;
    for (lot, p) in repo::allocations_of(conn, tenant.id, capture_entry).await? {
        if let Some(slot) = net.iter_mut().find(|(l, _)| *l == lot) {
            slot.1 += p;
        }
    }
    net.retain(|(_, p)| *p > 0);
    let amount = hold.captured_points;
    let entry_id = Uuid::now_v7();
    let restorable = amount.min((before.available + amount).max(0));
    let mut lines = vec![Line::new(Account::Redemption, -amount)];
    let mut restored = 0;
    for (lot, p) in restore(conn, tenant.id, entry_id, &net, restorable).await? {
        lines.push(Line::with_lot(Account::Available, p, lot));
        restored += p;
    }
    if restored < amount {
        // Repays a negative balance (allow-negative) or lots that no longer exist: no lot.
        lines.push(Line::new(Account::Available, amount - restored));
    }
    let (entry, _) = post(
        conn,
        tenant,
        member,
        before,
        entry_id,
        Post {
            kind: EntryKind::Reversal,
            lines,
            source: Source {
                reason_code: Some("redemption-cancelled".into()),
                ..Default::default()
            },
            natural_key: None,
            reverses: Some(capture_entry),
            hold_id: Some(hold.id),
            lifetime: Lifetime {
                redeemed: -amount,
                ..Default::default()
            },
        },
        now,
    )
    .await?;
    hold.status = "REFUNDED".into();
    repo::resolve_hold(conn, &hold).await?;
    Ok(entry)
}

/// Takes back `points` that an earn (or credit adjustment) produced, for a return: from
/// pending first, then what is left of its lot; the part already spent follows the tenant's
/// shortfall policy. At most the entry's original points in total, over all clawbacks.
pub async fn clawback_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    earn_entry: Uuid,
    points: i64,
    natural_key: Option<String>,
    reverses: bool,
    now: DateTime<Utc>,
) -> AppResult<Entry> {
    check_amount(points)?;
    let original = repo::find_entry(conn, tenant.id, earn_entry)
        .await?
        .ok_or(AppError::not_found("ledger entry"))?;
    let member = original.member_id;
    let before = repo::lock_balances(conn, tenant.id, member, now).await?;
    if let Some(key) = &natural_key
        && let Some(existing) = repo::find_by_natural_key(conn, tenant.id, key).await?
    {
        return Ok(existing);
    }
    let mut lot = repo::lot_of_entry(conn, tenant.id, earn_entry)
        .await?
        .ok_or_else(|| {
            AppError::validation(
                "entryId",
                "only an entry that credited points can be clawed back",
            )
        })?;
    let clawable = lot.original - lot.clawed_back;
    if points > clawable {
        return Err(AppError::validation(
            "points",
            format!("only {clawable} points of that entry are left to claw back"),
        ));
    }
    let entry_id = Uuid::now_v7();
    let from_lot = points.min(lot.remaining);
    let spent = points - from_lot;
    let bucket_account = if lot.bucket == BUCKET_PENDING {
        Account::Pending
    } else {
        Account::Available
    };
    let mut lines = vec![Line::new(Account::Issuance, points)];
    if from_lot > 0 {
        lines.push(Line::with_lot(bucket_account, -from_lot, lot.id));
    }
    if spent > 0 {
        match tenant.points_policy.shortfall {
            ShortfallPolicy::RecordShortfall => lines.push(Line::new(Account::Shortfall, -spent)),
            ShortfallPolicy::AllowNegative => {
                // Take what other lots hold (FIFO); only the rest makes the balance negative.
                let others: Vec<_> = repo::spendable_lots(conn, tenant.id, member)
                    .await?
                    .into_iter()
                    .filter(|l| l.id != lot.id)
                    .collect();
                let have: i64 = others.iter().map(|l| l.remaining).sum();
                let take = spent.min(have);
                let taken = allocate_fifo(&others, take).unwrap_or_default();
                let negated: Vec<(Uuid, i64)> = taken.iter().map(|(l, p)| (*l, -p)).collect();
                repo::change_lots(conn, &negated).await?;
                repo::insert_allocations(conn, tenant.id, entry_id, &taken).await?;
                for (l, p) in &taken {
                    lines.push(Line::with_lot(Account::Available, -p, *l));
                }
                if spent > take {
                    lines.push(Line::new(Account::Available, -(spent - take)));
                }
            }
        }
    }
    lot.remaining -= from_lot;
    lot.clawed_back += points;
    repo::save_lot(conn, &lot).await?;
    let (entry, _) = post(
        conn,
        tenant,
        member,
        before,
        entry_id,
        Post {
            kind: if reverses {
                EntryKind::Reversal
            } else {
                EntryKind::Clawback
            },
            lines,
            source: Source {
                reason_code: Some(if reverses { "reversal" } else { "return" }.into()),
                ..Default::default()
            },
            natural_key,
            reverses: reverses.then_some(earn_entry),
            hold_id: None,
            lifetime: Lifetime {
                earned: -points,
                ..Default::default()
            },
        },
        now,
    )
    .await?;
    Ok(entry)
}

/// Reverses an earn or an adjustment, at most once (a second call returns the first reversal).
pub async fn reverse_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    entry_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Entry> {
    let original = repo::find_entry(conn, tenant.id, entry_id)
        .await?
        .ok_or(AppError::not_found("ledger entry"))?;
    let member = original.member_id;
    let before = repo::lock_balances(conn, tenant.id, member, now).await?;
    if let Some(existing) = repo::find_reversal_of(conn, tenant.id, entry_id).await? {
        return Ok(existing);
    }
    match original.kind {
        EntryKind::Earn | EntryKind::Adjust if original.points > 0 => {
            let lot = repo::lot_of_entry(conn, tenant.id, entry_id)
                .await?
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("credit without a lot")))?;
            let left = lot.original - lot.clawed_back;
            if left <= 0 {
                return Err(AppError::validation(
                    "entryId",
                    "every point of that entry was already clawed back",
                ));
            }
            clawback_in(conn, tenant, entry_id, left, None, true, now).await
        }
        EntryKind::Adjust if original.points < 0 => {
            let amount = -original.points;
            let new_id = Uuid::now_v7();
            let allocations = repo::allocations_of(conn, tenant.id, entry_id).await?;
            let restorable = amount.min((before.available + amount).max(0));
            let mut lines = vec![Line::new(Account::Issuance, -amount)];
            for (lot, p) in restore(conn, tenant.id, new_id, &allocations, restorable).await? {
                lines.push(Line::with_lot(Account::Available, p, lot));
            }
            if restorable < amount {
                lines.push(Line::new(Account::Available, amount - restorable));
            }
            let (entry, _) = post(
                conn,
                tenant,
                member,
                before,
                new_id,
                Post {
                    kind: EntryKind::Reversal,
                    lines,
                    source: Source {
                        reason_code: Some("reversal".into()),
                        ..Default::default()
                    },
                    natural_key: None,
                    reverses: Some(entry_id),
                    hold_id: None,
                    lifetime: Lifetime {
                        earned: amount,
                        ..Default::default()
                    },
                },
                now,
            )
            .await?;
            Ok(entry)
        }
        other => Err(AppError::validation(
            "entryId",
            format!(
                "a {} entry is undone by its own operation, not reversed",
                other.as_str()
            ),
        )),
    }
}

/// Moves a pending lot whose lock ended to available. `None` when there was nothing to do.
pub async fn unlock_lot_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    lot_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Option<Entry>> {
    let Some(lot) = repo::find_lot(conn, tenant.id, lot_id).await? else {
        return Ok(None);
    };
    let member = MemberId(lot.member_id);
    let before = repo::lock_balances(conn, tenant.id, member, now).await?;
    let Some(mut lot) = repo::find_lot(conn, tenant.id, lot_id).await? else {
        return Ok(None);
    };
    if lot.bucket != BUCKET_PENDING || lot.available_at > now {
        return Ok(None);
    }
    let amount = lot.remaining;
    lot.bucket = BUCKET_AVAILABLE.into();
    lot.remaining = amount - amount.min((-before.available).max(0));
    repo::save_lot(conn, &lot).await?;
    if amount == 0 {
        return Ok(None);
    }
    let lines = vec![
        Line::with_lot(Account::Pending, -amount, lot.id),
        Line::with_lot(Account::Available, amount, lot.id),
    ];
    let (entry, _) = post(
        conn,
        tenant,
        member,
        before,
        Uuid::now_v7(),
        Post {
            kind: EntryKind::Unlock,
            lines,
            source: Source::default(),
            natural_key: None,
            reverses: None,
            hold_id: None,
            lifetime: Lifetime::default(),
        },
        now,
    )
    .await?;
    Ok(Some(entry))
}

/// Expires what is left of an available lot past its expiry: available -> breakage.
pub async fn expire_lot_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    lot_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Option<Entry>> {
    let Some(lot) = repo::find_lot(conn, tenant.id, lot_id).await? else {
        return Ok(None);
    };
    let member = MemberId(lot.member_id);
    let before = repo::lock_balances(conn, tenant.id, member, now).await?;
    let Some(mut lot) = repo::find_lot(conn, tenant.id, lot_id).await? else {
        return Ok(None);
    };
    if lot.bucket != BUCKET_AVAILABLE
        || lot.remaining <= 0
        || lot.expires_at.is_none_or(|e| e > now)
    {
        return Ok(None);
    }
    let amount = lot.remaining;
    let entry_id = Uuid::now_v7();
    lot.remaining = 0;
    repo::save_lot(conn, &lot).await?;
    repo::insert_allocations(conn, tenant.id, entry_id, &[(lot.id, amount)]).await?;
    let lines = vec![
        Line::with_lot(Account::Available, -amount, lot.id),
        Line::new(Account::Breakage, amount),
    ];
    let (entry, _) = post(
        conn,
        tenant,
        member,
        before,
        entry_id,
        Post {
            kind: EntryKind::Expire,
            lines,
            source: Source {
                reason_code: Some("expiry".into()),
                ..Default::default()
            },
            natural_key: None,
            reverses: None,
            hold_id: None,
            lifetime: Lifetime {
                expired: amount,
                ..Default::default()
            },
        },
        now,
    )
    .await?;
    Ok(Some(entry))
}

// ---- API entry points -------------------------------------------------------------------

/// What `adjustPoints` protects with its idempotency key.
#[derive(Serialize)]
struct AdjustRequest<'a> {
    member: String,
    points: i64,
    reason: &'a str,
}

/// `adjustPoints`: an ADMIN's correction with a reason, idempotent by key.
pub async fn adjust_points(
    db: &Db,
    principal: &Principal,
    member: MemberId,
    points: i64,
    reason: &str,
    idempotency_key: &str,
) -> AppResult<(Entry, Balances)> {
    let t = principal.require_tenant(Access::Manage)?;
    let reason = crate::validate::text("reason", reason, 500)?;
    if points == 0 {
        return Err(AppError::validation("points", "points must not be 0"));
    }
    if points.unsigned_abs() > POINTS_PER_ENTRY_MAX as u64 {
        return Err(AppError::validation(
            "points",
            format!("at most {POINTS_PER_ENTRY_MAX} points at once"),
        ));
    }
    let key = IdempotencyKey::new(
        t.tenant_id.to_string(),
        idempotency_key,
        "adjustPoints",
        &AdjustRequest {
            member: member.to_string(),
            points,
            reason: &reason,
        },
    )?;
    let tenant = tenants::service::get(db, t.tenant_id).await?;
    let now = db.now();
    let txn = db.begin_write().await?;
    if let Some(id) = idempotency::lookup(&txn, &key).await? {
        drop(txn);
        return stored_entry(db, t.tenant_id, &id).await;
    }
    let m = members::repo::find(&txn, t.tenant_id, member)
        .await?
        .ok_or(AppError::not_found("member"))?;
    if m.status == MemberStatus::Erased {
        return Err(AppError::validation("memberId", "the member was erased"));
    }
    let result = adjust_in(&txn, &tenant, member, points, &reason, now).await;
    let (entry, balances) = result?;
    if let Err(e) = idempotency::record(&txn, &key, &entry.id.to_string()).await {
        drop(txn);
        if is_unique_violation(&e) {
            return match idempotency::lookup(db.reader(), &key).await? {
                Some(id) => stored_entry(db, t.tenant_id, &id).await,
                None => Err(AppError::internal(e)),
            };
        }
        return Err(e.into());
    }
    txn.commit().await?;
    Ok((entry, balances))
}

async fn stored_entry(db: &Db, tenant: TenantId, id: &str) -> AppResult<(Entry, Balances)> {
    let id = Uuid::parse_str(id).map_err(AppError::internal)?;
    let entry = repo::find_entry(db.reader(), tenant, id)
        .await?
        .ok_or(AppError::not_found("ledger entry"))?;
    let balances = repo::balances(db.reader(), tenant, entry.member_id).await?;
    Ok((entry, balances))
}

/// A member's balances (any role).
pub async fn balances(db: &Db, principal: &Principal, member: MemberId) -> AppResult<Balances> {
    let t = principal.require_tenant(Access::Read)?;
    repo::balances(db.reader(), t.tenant_id, member).await
}

pub async fn history(
    db: &Db,
    principal: &Principal,
    member: MemberId,
    page: PageRequest,
) -> AppResult<Page<Entry>> {
    let t = principal.require_tenant(Access::Read)?;
    repo::history(db.reader(), t.tenant_id, member, page).await
}

/// Longest look-ahead of `expiringPoints`.
pub const EXPIRING_DAYS_MAX: i32 = 3660;

pub async fn expiring(
    db: &Db,
    principal: &Principal,
    member: MemberId,
    within_days: i32,
) -> AppResult<Vec<(DateTime<Utc>, i64)>> {
    let t = principal.require_tenant(Access::Read)?;
    if !(0..=EXPIRING_DAYS_MAX).contains(&within_days) {
        return Err(AppError::validation(
            "withinDays",
            format!("withinDays must be between 0 and {EXPIRING_DAYS_MAX}"),
        ));
    }
    let until = db.now() + chrono::Duration::days(i64::from(within_days));
    repo::expiring(db.reader(), t.tenant_id, member, until).await
}

/// Sets the caller's tenant's points policy (ADMIN).
pub async fn set_points_policy(
    db: &Db,
    principal: &Principal,
    policy: PointsPolicy,
) -> AppResult<Tenant> {
    let t = principal.require_tenant(Access::Manage)?;
    let policy = PointsPolicy {
        expiry: policy.expiry.validate()?,
        shortfall: policy.shortfall,
    };
    let txn = db.begin_write().await?;
    let tenant = tenants::repo::set_points_policy(&txn, t.tenant_id, policy)
        .await?
        .ok_or(AppError::not_found("tenant"))?;
    txn.commit().await?;
    db.caches().forget_tenant(t.tenant_id);
    Ok(tenant)
}
