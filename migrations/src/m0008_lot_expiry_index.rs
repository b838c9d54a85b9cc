//! The expiry job's index: only the lots with points left, by bucket and expiry.
//!
//! `ix_ledger_lots_expiry` (every lot, by expiry) was never chosen for the job's
//! `bucket = ? AND expires_at <= ? AND remaining > 0 ORDER BY expires_at LIMIT n`: SQLite took
//! `ix_ledger_lots_due` for the bucket and sorted every available lot (0.8-4 s a tick with
//! 6M lots). The partial index holds the live lots only, so a tick reads the due ones and
//! stops, however many spent or expired lots the ledger has kept; every lot written pays for
//! one index fewer than before.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum LedgerLots {
    Table,
    Bucket,
    ExpiresAt,
    Remaining,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_ledger_lots_expiry")
                    .table(LedgerLots::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_ledger_lots_expiring")
                    .table(LedgerLots::Table)
                    .col(LedgerLots::Bucket)
                    .col(LedgerLots::ExpiresAt)
                    .and_where(Expr::col(LedgerLots::Remaining).gt(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_ledger_lots_expiring")
                    .table(LedgerLots::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_ledger_lots_expiry")
                    .table(LedgerLots::Table)
                    .col(LedgerLots::ExpiresAt)
                    .to_owned(),
            )
            .await
    }
}
