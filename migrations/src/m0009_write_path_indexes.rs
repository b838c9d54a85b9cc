//! Fewer index entries a point written: three indexes that every ledger write paid for and
//! almost no read used.
//!
//! - `ix_ledger_lines_account` (tenant, account, member) was read by no statement: the ledger
//!   audit sums lines by member over the whole table, and no plan of it chose the index (its
//!   tenant comes first and it lacks the amount). Every line of every entry added an entry to
//!   it, half of them at a member's random place in the tree: a page of its own for the
//!   commit to write.
//! - `ux_ledger_entries_reverses` held a row for every entry, though only a reversal has the
//!   column set. It is now partial (`reverses_entry_id IS NOT NULL`): still unique, still
//!   the index of `reverses_entry_id = ?` (both planners prove `IS NOT NULL` from the
//!   equality), and written by reversals only.
//! - `ix_ledger_lots_due` (bucket, available_at) held every lot, though only the unlock job
//!   reads it, for pending lots. `ix_ledger_lots_unlock` (available_at) holds the pending
//!   ones (`bucket = 'pending'`, a literal in the job's select as well): an available lot
//!   is in no index for it, and a pending one leaves it when it unlocks.

use crate::index;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum LedgerLines {
    Table,
    TenantId,
    Account,
    MemberId,
}

#[derive(DeriveIden)]
enum LedgerEntries {
    Table,
    ReversesEntryId,
}

#[derive(DeriveIden)]
enum LedgerLots {
    Table,
    Bucket,
    AvailableAt,
}

async fn drop(manager: &SchemaManager<'_>, name: &str, table: DynIden) -> Result<(), DbErr> {
    manager
        .drop_index(Index::drop().name(name).table(table).to_owned())
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(
            manager,
            "ix_ledger_lines_account",
            LedgerLines::Table.into_iden(),
        )
        .await?;
        drop(
            manager,
            "ux_ledger_entries_reverses",
            LedgerEntries::Table.into_iden(),
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_ledger_entries_reverses")
                    .table(LedgerEntries::Table)
                    .col(LedgerEntries::ReversesEntryId)
                    .unique()
                    .and_where(Expr::col(LedgerEntries::ReversesEntryId).is_not_null())
                    .to_owned(),
            )
            .await?;
        drop(manager, "ix_ledger_lots_due", LedgerLots::Table.into_iden()).await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_ledger_lots_unlock")
                    .table(LedgerLots::Table)
                    .col(LedgerLots::AvailableAt)
                    .and_where(Expr::col(LedgerLots::Bucket).eq(Expr::cust("'pending'")))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(
            manager,
            "ix_ledger_lots_unlock",
            LedgerLots::Table.into_iden(),
        )
        .await?;
        index(
            manager,
            "ix_ledger_lots_due",
            LedgerLots::Table.into_iden(),
            vec![
                LedgerLots::Bucket.into_iden(),
                LedgerLots::AvailableAt.into_iden(),
            ],
            false,
        )
        .await?;
        drop(
            manager,
            "ux_ledger_entries_reverses",
            LedgerEntries::Table.into_iden(),
        )
        .await?;
        index(
            manager,
            "ux_ledger_entries_reverses",
            LedgerEntries::Table.into_iden(),
            vec![LedgerEntries::ReversesEntryId.into_iden()],
            true,
        )
        .await?;
        index(
            manager,
            "ix_ledger_lines_account",
            LedgerLines::Table.into_iden(),
            vec![
                LedgerLines::TenantId.into_iden(),
                LedgerLines::Account.into_iden(),
                LedgerLines::MemberId.into_iden(),
            ],
            false,
        )
        .await
    }
}
