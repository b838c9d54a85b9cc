//! Queries of the ledger. Every function takes the tenant (or a row already scoped by it).

use super::{Account, Balances, EntryKind, Line, LotState};
use crate::db::Batch;
use crate::db::entities::{
    ledger_allocations, ledger_balances, ledger_entries, ledger_holds, ledger_lines, ledger_lots,
};
use crate::error::{AppError, AppResult};
use crate::ids::{MemberId, TenantId};
use crate::pagination::{Page, PageRequest};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

/// A journal entry as the service returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub member_id: MemberId,
    pub kind: EntryKind,
    /// Change of the member's spendable points (available + pending).
    pub points: i64,
    pub reason: Option<String>,
    pub reason_code: Option<String>,
    pub natural_key: Option<String>,
    pub reverses_entry_id: Option<Uuid>,
    pub hold_id: Option<Uuid>,
    pub event_id: Option<String>,
    pub plugin_id: Option<String>,
    pub plugin_version: Option<String>,
    pub created_at: DateTime<Utc>,
}

fn entry_from(m: ledger_entries::Model) -> AppResult<Entry> {
    Ok(Entry {
        id: m.id,
        tenant_id: TenantId(m.tenant_id),
        member_id: MemberId(m.member_id),
        kind: EntryKind::parse(&m.kind)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("bad entry kind {:?}", m.kind)))?,
        points: m.points,
        reason: m.reason,
        reason_code: m.reason_code,
        natural_key: m.natural_key,
        reverses_entry_id: m.reverses_entry_id,
        hold_id: m.hold_id,
        event_id: m.event_id,
        plugin_id: m.plugin_id,
        plugin_version: m.plugin_version,
        created_at: m.created_at,
    })
}

/// Creates the member's balance row if it is missing (no-op when it exists).
pub async fn ensure_balances(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let row = ledger_balances::Model {
        member_id: member.0,
        tenant_id: tenant.0,
        available: 0,
        pending: 0,
        held: 0,
        lifetime_earned: 0,
        lifetime_redeemed: 0,
        lifetime_expired: 0,
        updated_at: now,
    };
    ledger_balances::Entity::insert(row.into_active_model())
        .on_conflict(
            OnConflict::column(ledger_balances::Column::MemberId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub(crate) fn balances_from(m: &ledger_balances::Model) -> Balances {
    Balances {
        available: m.available,
        pending: m.pending,
        held: m.held,
        lifetime_earned: m.lifetime_earned,
        lifetime_redeemed: m.lifetime_redeemed,
        lifetime_expired: m.lifetime_expired,
    }
}

/// The member's balances, locked for the rest of the transaction (`FOR UPDATE` on
/// PostgreSQL; SQLite's single writer already serialises).
pub async fn lock_balances(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
    now: DateTime<Utc>,
) -> AppResult<Balances> {
    let lock = || {
        ledger_balances::Entity::find_by_id(member.0)
            .filter(ledger_balances::Column::TenantId.eq(tenant.0))
            .lock_exclusive()
            .one(conn)
    };
    // A member who has a row (nearly every one) is locked in one statement; the first entry
    // of a member creates the row, then locks it.
    if let Some(row) = lock().await? {
        return Ok(balances_from(&row));
    }
    ensure_balances(conn, tenant, member, now).await?;
    let row = lock()
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("balance row vanished")))?;
    Ok(balances_from(&row))
}

/// Locks the balance rows of several members of `tenant` (`FOR UPDATE`, in id order so that
/// two such transactions cannot deadlock on each other) and returns them. A member without a
/// row yet is missing from the map: [`lock_balances`] creates theirs.
pub async fn lock_balances_of(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    members: &[MemberId],
) -> AppResult<std::collections::HashMap<MemberId, Balances>> {
    Ok(ledger_balances::Entity::find()
        .filter(ledger_balances::Column::TenantId.eq(tenant.0))
        .filter(ledger_balances::Column::MemberId.is_in(crate::db::padded(members).map(|m| m.0)))
        .order_by_asc(ledger_balances::Column::MemberId)
        .lock_exclusive()
        .all(conn)
        .await?
        .iter()
        .map(|row| (MemberId(row.member_id), balances_from(row)))
        .collect())
}

/// Reads balances without locking (zero when the member never had an entry).
pub async fn balances(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
) -> AppResult<Balances> {
    Ok(ledger_balances::Entity::find_by_id(member.0)
        .filter(ledger_balances::Column::TenantId.eq(tenant.0))
        .one(conn)
        .await?
        .map(|m| balances_from(&m))
        .unwrap_or_default())
}

pub async fn save_balances(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
    b: &Balances,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut batch = Batch::on(conn);
    save_balances_into(&mut batch, tenant, member, b, now);
    Ok(batch.run(conn).await?)
}

/// [`save_balances`] as part of a [`Batch`].
pub fn save_balances_into(
    batch: &mut Batch,
    tenant: TenantId,
    member: MemberId,
    b: &Balances,
    now: DateTime<Utc>,
) {
    use ledger_balances::Column as C;
    // An upsert, not an UPDATE, so that the balances of a group's members go in one
    // statement (`Batch::merge`). The row exists (the caller holds its lock); the guard keeps
    // a row of another tenant out of reach all the same.
    let row = ledger_balances::Model {
        member_id: member.0,
        tenant_id: tenant.0,
        available: b.available,
        pending: b.pending,
        held: b.held,
        lifetime_earned: b.lifetime_earned,
        lifetime_redeemed: b.lifetime_redeemed,
        lifetime_expired: b.lifetime_expired,
        updated_at: now,
    };
    let same_tenant = Expr::col((ledger_balances::Entity, C::TenantId)).eq(Expr::col((
        sea_orm::sea_query::Alias::new("excluded"),
        C::TenantId,
    )));
    batch.insert(
        ledger_balances::Entity::insert(row.into_active_model()).on_conflict(
            OnConflict::column(C::MemberId)
                .update_columns([
                    C::Available,
                    C::Pending,
                    C::Held,
                    C::LifetimeEarned,
                    C::LifetimeRedeemed,
                    C::LifetimeExpired,
                    C::UpdatedAt,
                ])
                .action_and_where(same_tenant)
                .to_owned(),
        ),
    );
}

pub async fn insert_entry(conn: &impl ConnectionTrait, e: &Entry, lines: &[Line]) -> AppResult<()> {
    insert_entries(conn, &[(e.clone(), lines.to_vec())]).await
}

pub async fn find_entry(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> AppResult<Option<Entry>> {
    ledger_entries::Entity::find_by_id(id)
        .filter(ledger_entries::Column::TenantId.eq(tenant.0))
        .one(conn)
        .await?
        .map(entry_from)
        .transpose()
}

pub async fn find_by_natural_key(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    key: &str,
) -> AppResult<Option<Entry>> {
    ledger_entries::Entity::find()
        .filter(ledger_entries::Column::TenantId.eq(tenant.0))
        .filter(ledger_entries::Column::NaturalKey.eq(key))
        .one(conn)
        .await?
        .map(entry_from)
        .transpose()
}

pub async fn find_reversal_of(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> AppResult<Option<Entry>> {
    reversal_query(tenant, id)
        .one(conn)
        .await?
        .map(entry_from)
        .transpose()
}

/// The select of [`find_reversal_of`], by the partial unique index
/// `ux_ledger_entries_reverses` (`tests/tests/query_plans.rs`).
pub fn reversal_query(tenant: TenantId, id: Uuid) -> sea_orm::Select<ledger_entries::Entity> {
    ledger_entries::Entity::find()
        .filter(ledger_entries::Column::TenantId.eq(tenant.0))
        .filter(ledger_entries::Column::ReversesEntryId.eq(id))
}

/// Newest first.
pub async fn history(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
    page: PageRequest,
) -> AppResult<Page<Entry>> {
    let mut q = ledger_entries::Entity::find()
        .filter(ledger_entries::Column::TenantId.eq(tenant.0))
        .filter(ledger_entries::Column::MemberId.eq(member.0))
        .order_by_desc(ledger_entries::Column::Id);
    if let Some(after) = page.after {
        q = q.filter(ledger_entries::Column::Id.lt(after));
    }
    let rows = q.limit(page.limit + 1).all(conn).await?;
    let rows = rows
        .into_iter()
        .map(entry_from)
        .collect::<AppResult<Vec<_>>>()?;
    Ok(Page::from_overfetch(rows, page.limit))
}

/// A lot row.
pub type Lot = ledger_lots::Model;

pub const BUCKET_PENDING: &str = "pending";
pub const BUCKET_AVAILABLE: &str = "available";

/// Rows per multi-row INSERT: at most 14 columns a row keeps a statement far below SQLite's
/// and PostgreSQL's bind limits.
const ROWS_PER_INSERT: usize = 500;

/// Inserts several lots in as few statements as the bind limits allow.
pub async fn insert_lots(conn: &impl ConnectionTrait, lots: Vec<Lot>) -> AppResult<()> {
    let mut batch = Batch::on(conn);
    insert_lots_into(&mut batch, lots);
    Ok(batch.run(conn).await?)
}

/// [`insert_lots`] as part of a [`Batch`].
pub fn insert_lots_into(batch: &mut Batch, lots: Vec<Lot>) {
    let rows: Vec<_> = lots
        .into_iter()
        .map(IntoActiveModel::into_active_model)
        .collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        batch.insert(ledger_lots::Entity::insert_many(chunk.to_vec()));
    }
}

/// Inserts several entries and their lines (a few statements, whatever their number).
pub async fn insert_entries(
    conn: &impl ConnectionTrait,
    entries: &[(Entry, Vec<Line>)],
) -> AppResult<()> {
    let mut batch = Batch::on(conn);
    insert_entries_into(&mut batch, entries);
    Ok(batch.run(conn).await?)
}

/// [`insert_entries`] as part of a [`Batch`]: each entry's lines after it.
pub fn insert_entries_into(batch: &mut Batch, entries: &[(Entry, Vec<Line>)]) {
    for chunk in entries.chunks(ROWS_PER_INSERT / 2) {
        batch.insert(ledger_entries::Entity::insert_many(chunk.iter().map(
            |(e, _)| {
                ledger_entries::Model {
                    id: e.id,
                    tenant_id: e.tenant_id.0,
                    member_id: e.member_id.0,
                    kind: e.kind.as_str().into(),
                    points: e.points,
                    reason: e.reason.clone(),
                    reason_code: e.reason_code.clone(),
                    natural_key: e.natural_key.clone(),
                    reverses_entry_id: e.reverses_entry_id,
                    hold_id: e.hold_id,
                    event_id: e.event_id.clone(),
                    plugin_id: e.plugin_id.clone(),
                    plugin_version: e.plugin_version.clone(),
                    created_at: e.created_at,
                }
                .into_active_model()
            },
        )));
        let lines: Vec<_> = chunk
            .iter()
            .flat_map(|(e, lines)| {
                lines.iter().map(|l| ledger_lines::ActiveModel {
                    entry_id: Set(e.id),
                    tenant_id: Set(e.tenant_id.0),
                    member_id: Set(l.account.is_member().then_some(e.member_id.0)),
                    account: Set(l.account.as_str().into()),
                    amount: Set(l.amount),
                    lot_id: Set(l.lot),
                    ..Default::default()
                })
            })
            .collect();
        if !lines.is_empty() {
            batch.insert(ledger_lines::Entity::insert_many(lines));
        }
    }
}

/// True when any of `keys` is already an entry's natural key in the tenant.
pub async fn any_natural_key(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    keys: &[String],
) -> AppResult<bool> {
    if keys.is_empty() {
        return Ok(false);
    }
    Ok(ledger_entries::Entity::find()
        .select_only()
        .column(ledger_entries::Column::Id)
        .filter(ledger_entries::Column::TenantId.eq(tenant.0))
        .filter(ledger_entries::Column::NaturalKey.is_in(keys.iter().cloned()))
        .into_tuple::<Uuid>()
        .one(conn)
        .await?
        .is_some())
}

pub async fn insert_lot(conn: &impl ConnectionTrait, lot: Lot) -> AppResult<()> {
    ledger_lots::Entity::insert(lot.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn find_lot(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> AppResult<Option<Lot>> {
    Ok(ledger_lots::Entity::find_by_id(id)
        .filter(ledger_lots::Column::TenantId.eq(tenant.0))
        .one(conn)
        .await?)
}

pub async fn lot_of_entry(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    entry: Uuid,
) -> AppResult<Option<Lot>> {
    Ok(ledger_lots::Entity::find()
        .filter(ledger_lots::Column::TenantId.eq(tenant.0))
        .filter(ledger_lots::Column::EntryId.eq(entry))
        .one(conn)
        .await?)
}

pub async fn save_lot(conn: &impl ConnectionTrait, lot: &Lot) -> AppResult<()> {
    ledger_lots::Entity::update_many()
        .col_expr(ledger_lots::Column::Remaining, lot.remaining.into())
        .col_expr(ledger_lots::Column::ClawedBack, lot.clawed_back.into())
        .col_expr(ledger_lots::Column::Bucket, lot.bucket.clone().into())
        .filter(ledger_lots::Column::Id.eq(lot.id))
        .exec(conn)
        .await?;
    Ok(())
}

/// The member's spendable lots (available bucket, something left).
pub async fn spendable_lots(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
) -> AppResult<Vec<LotState>> {
    let rows = ledger_lots::Entity::find()
        .filter(ledger_lots::Column::TenantId.eq(tenant.0))
        .filter(ledger_lots::Column::MemberId.eq(member.0))
        .filter(ledger_lots::Column::Bucket.eq(BUCKET_AVAILABLE))
        .filter(ledger_lots::Column::Remaining.gt(0))
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|l| LotState {
            id: l.id,
            remaining: l.remaining,
            expires_at: l.expires_at,
            created_at: l.created_at,
        })
        .collect())
}

/// Adds `delta` to each lot's `remaining` (negative: consumed; positive: restored).
pub async fn change_lots(conn: &impl ConnectionTrait, changes: &[(Uuid, i64)]) -> AppResult<()> {
    let mut batch = Batch::on(conn);
    change_lots_into(&mut batch, changes);
    Ok(batch.run(conn).await?)
}

/// [`change_lots`] as part of a [`Batch`] (distinct lots: no row written twice).
pub fn change_lots_into(batch: &mut Batch, changes: &[(Uuid, i64)]) {
    for (lot, delta) in changes {
        batch.update(
            ledger_lots::Entity::update_many()
                .col_expr(
                    ledger_lots::Column::Remaining,
                    sea_orm::sea_query::Expr::col(ledger_lots::Column::Remaining).add(*delta),
                )
                .filter(ledger_lots::Column::Id.eq(*lot)),
        );
    }
}

pub async fn insert_allocations(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    entry: Uuid,
    allocations: &[(Uuid, i64)],
) -> AppResult<()> {
    let mut batch = Batch::on(conn);
    insert_allocations_into(&mut batch, tenant, entry, allocations);
    Ok(batch.run(conn).await?)
}

/// [`insert_allocations`] as part of a [`Batch`].
pub fn insert_allocations_into(
    batch: &mut Batch,
    tenant: TenantId,
    entry: Uuid,
    allocations: &[(Uuid, i64)],
) {
    if allocations.is_empty() {
        return;
    }
    let rows = allocations
        .iter()
        .map(|(lot, points)| ledger_allocations::ActiveModel {
            tenant_id: Set(tenant.0),
            entry_id: Set(entry),
            lot_id: Set(*lot),
            points: Set(*points),
            ..Default::default()
        });
    batch.insert(ledger_allocations::Entity::insert_many(rows));
}

/// The lots an entry consumed, in the order it consumed them.
pub async fn allocations_of(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    entry: Uuid,
) -> AppResult<Vec<(Uuid, i64)>> {
    Ok(ledger_allocations::Entity::find()
        .filter(ledger_allocations::Column::TenantId.eq(tenant.0))
        .filter(ledger_allocations::Column::EntryId.eq(entry))
        .order_by_asc(ledger_allocations::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|a| (a.lot_id, a.points))
        .collect())
}

pub type Hold = ledger_holds::Model;

pub async fn insert_hold(conn: &impl ConnectionTrait, hold: Hold) -> AppResult<()> {
    let mut batch = Batch::on(conn);
    insert_hold_into(&mut batch, hold);
    Ok(batch.run(conn).await?)
}

/// [`insert_hold`] as part of a [`Batch`].
pub fn insert_hold_into(batch: &mut Batch, hold: Hold) {
    batch.insert(ledger_holds::Entity::insert(hold.into_active_model()));
}

pub async fn find_hold(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> AppResult<Option<Hold>> {
    Ok(ledger_holds::Entity::find_by_id(id)
        .filter(ledger_holds::Column::TenantId.eq(tenant.0))
        .one(conn)
        .await?)
}

pub async fn resolve_hold(conn: &impl ConnectionTrait, hold: &Hold) -> AppResult<()> {
    ledger_holds::Entity::update_many()
        .col_expr(ledger_holds::Column::Status, hold.status.clone().into())
        .col_expr(
            ledger_holds::Column::CapturedPoints,
            hold.captured_points.into(),
        )
        .col_expr(
            ledger_holds::Column::ResolveEntryId,
            hold.resolve_entry_id.into(),
        )
        .col_expr(ledger_holds::Column::ResolvedAt, hold.resolved_at.into())
        .filter(ledger_holds::Column::Id.eq(hold.id))
        .exec(conn)
        .await?;
    Ok(())
}

#[derive(Debug, FromQueryResult)]
struct ExpiringRow {
    expires_at: Option<DateTime<Utc>>,
    points: Option<i64>,
}

/// Points in available lots expiring before `until`, summed per expiry instant.
pub async fn expiring(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
    until: DateTime<Utc>,
) -> AppResult<Vec<(DateTime<Utc>, i64)>> {
    let rows = ledger_lots::Entity::find()
        .select_only()
        .column(ledger_lots::Column::ExpiresAt)
        .column_as(
            // PostgreSQL sums bigints as numeric; cast back so both backends return i64.
            sea_orm::sea_query::Expr::cust("CAST(SUM(remaining) AS BIGINT)"),
            "points",
        )
        .filter(ledger_lots::Column::TenantId.eq(tenant.0))
        .filter(ledger_lots::Column::MemberId.eq(member.0))
        .filter(ledger_lots::Column::Bucket.eq(BUCKET_AVAILABLE))
        .filter(ledger_lots::Column::Remaining.gt(0))
        .filter(ledger_lots::Column::ExpiresAt.lte(until))
        .group_by(ledger_lots::Column::ExpiresAt)
        .order_by_asc(ledger_lots::Column::ExpiresAt)
        .into_model::<ExpiringRow>()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.expires_at?, r.points?)))
        .filter(|(_, p)| *p > 0)
        .collect())
}

/// Pending lots whose lock has ended, oldest first, at most `limit`.
pub async fn due_unlocks(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> AppResult<Vec<Lot>> {
    Ok(due_unlocks_query(now, limit).all(conn).await?)
}

/// The select of [`due_unlocks`]: `bucket = 'pending'` is a literal, the predicate of the
/// partial index `ix_ledger_lots_unlock` (`tests/tests/query_plans.rs` holds it to it).
pub fn due_unlocks_query(now: DateTime<Utc>, limit: u64) -> sea_orm::Select<ledger_lots::Entity> {
    ledger_lots::Entity::find()
        .filter(
            Expr::col(ledger_lots::Column::Bucket).eq(Expr::cust(format!("'{BUCKET_PENDING}'"))),
        )
        .filter(ledger_lots::Column::AvailableAt.lte(now))
        .order_by_asc(ledger_lots::Column::AvailableAt)
        .limit(limit)
}

/// Available lots past their expiry with points left, soonest first, at most `limit`.
pub async fn due_expiries(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> AppResult<Vec<Lot>> {
    Ok(due_expiries_query(now, limit).all(conn).await?)
}

/// The select of [`due_expiries`]: `remaining > 0` is a literal, the predicate of the partial
/// index `ix_ledger_lots_expiring` (a bound value would not prove it to the planner), which
/// `tests/tests/query_plans.rs` holds it to.
pub fn due_expiries_query(now: DateTime<Utc>, limit: u64) -> sea_orm::Select<ledger_lots::Entity> {
    ledger_lots::Entity::find()
        .filter(ledger_lots::Column::Bucket.eq(BUCKET_AVAILABLE))
        .filter(ledger_lots::Column::ExpiresAt.lte(now))
        .filter(Expr::col(ledger_lots::Column::Remaining).gt(Expr::cust("0")))
        .order_by_asc(ledger_lots::Column::ExpiresAt)
        .limit(limit)
}

pub fn account_of(s: &str) -> AppResult<Account> {
    Account::parse(s).ok_or_else(|| AppError::internal(anyhow::anyhow!("bad account {s:?}")))
}
