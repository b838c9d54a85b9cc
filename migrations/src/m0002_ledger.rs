//! Points ledger: per-member balances, immutable journal entries and lines, lots, allocations,
//! holds; the tenant's expiry and shortfall policies.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    ExpiryPolicy,
    ShortfallPolicy,
}

#[derive(DeriveIden)]
enum LedgerBalances {
    Table,
    MemberId,
    TenantId,
    Available,
    Pending,
    Held,
    LifetimeEarned,
    LifetimeRedeemed,
    LifetimeExpired,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum LedgerEntries {
    Table,
    Id,
    TenantId,
    MemberId,
    Kind,
    Points,
    Reason,
    ReasonCode,
    NaturalKey,
    ReversesEntryId,
    HoldId,
    EventId,
    PluginId,
    PluginVersion,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LedgerLines {
    Table,
    Id,
    EntryId,
    TenantId,
    MemberId,
    Account,
    Amount,
    LotId,
}

#[derive(DeriveIden)]
enum LedgerLots {
    Table,
    Id,
    TenantId,
    MemberId,
    EntryId,
    Original,
    Remaining,
    ClawedBack,
    Bucket,
    AvailableAt,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LedgerAllocations {
    Table,
    Id,
    TenantId,
    EntryId,
    LotId,
    Points,
}

#[derive(DeriveIden)]
enum LedgerHolds {
    Table,
    Id,
    TenantId,
    MemberId,
    Points,
    CapturedPoints,
    Status,
    HoldEntryId,
    ResolveEntryId,
    CreatedAt,
    ResolvedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .add_column(string_len(Tenants::ExpiryPolicy, 32).default("never"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .add_column(string_len(Tenants::ShortfallPolicy, 16).default("record"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LedgerBalances::Table)
                    .col(uuid(LedgerBalances::MemberId).primary_key())
                    .col(uuid(LedgerBalances::TenantId))
                    .col(big_integer(LedgerBalances::Available))
                    .col(big_integer(LedgerBalances::Pending))
                    .col(big_integer(LedgerBalances::Held))
                    .col(big_integer(LedgerBalances::LifetimeEarned))
                    .col(big_integer(LedgerBalances::LifetimeRedeemed))
                    .col(big_integer(LedgerBalances::LifetimeExpired))
                    .col(timestamp_with_time_zone(LedgerBalances::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LedgerEntries::Table)
                    .col(uuid(LedgerEntries::Id).primary_key())
                    .col(uuid(LedgerEntries::TenantId))
                    .col(uuid(LedgerEntries::MemberId))
                    .col(string_len(LedgerEntries::Kind, 16))
                    .col(big_integer(LedgerEntries::Points))
                    .col(string_len_null(LedgerEntries::Reason, 500))
                    .col(string_len_null(LedgerEntries::ReasonCode, 64))
                    .col(string_len_null(LedgerEntries::NaturalKey, 200))
                    .col(uuid_null(LedgerEntries::ReversesEntryId))
                    .col(uuid_null(LedgerEntries::HoldId))
                    .col(string_len_null(LedgerEntries::EventId, 200))
                    .col(string_len_null(LedgerEntries::PluginId, 100))
                    .col(string_len_null(LedgerEntries::PluginVersion, 32))
                    .col(timestamp_with_time_zone(LedgerEntries::CreatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            (
                "ix_ledger_entries_member",
                vec![
                    LedgerEntries::TenantId,
                    LedgerEntries::MemberId,
                    LedgerEntries::Id,
                ],
                false,
            ),
            (
                "ux_ledger_entries_natural_key",
                vec![LedgerEntries::TenantId, LedgerEntries::NaturalKey],
                true,
            ),
            (
                "ux_ledger_entries_reverses",
                vec![LedgerEntries::ReversesEntryId],
                true,
            ),
        ] {
            let mut idx = Index::create();
            idx.name(name).table(LedgerEntries::Table);
            for c in cols {
                idx.col(c);
            }
            if unique {
                idx.unique();
            }
            manager.create_index(idx.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(LedgerLines::Table)
                    .col(big_pk_auto(LedgerLines::Id))
                    .col(uuid(LedgerLines::EntryId))
                    .col(uuid(LedgerLines::TenantId))
                    .col(uuid_null(LedgerLines::MemberId))
                    .col(string_len(LedgerLines::Account, 16))
                    .col(big_integer(LedgerLines::Amount))
                    .col(uuid_null(LedgerLines::LotId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_ledger_lines_entry")
                    .table(LedgerLines::Table)
                    .col(LedgerLines::EntryId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_ledger_lines_account")
                    .table(LedgerLines::Table)
                    .col(LedgerLines::TenantId)
                    .col(LedgerLines::Account)
                    .col(LedgerLines::MemberId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LedgerLots::Table)
                    .col(uuid(LedgerLots::Id).primary_key())
                    .col(uuid(LedgerLots::TenantId))
                    .col(uuid(LedgerLots::MemberId))
                    .col(uuid(LedgerLots::EntryId))
                    .col(big_integer(LedgerLots::Original))
                    .col(big_integer(LedgerLots::Remaining))
                    .col(big_integer(LedgerLots::ClawedBack))
                    .col(string_len(LedgerLots::Bucket, 16))
                    .col(timestamp_with_time_zone(LedgerLots::AvailableAt))
                    .col(timestamp_with_time_zone_null(LedgerLots::ExpiresAt))
                    .col(timestamp_with_time_zone(LedgerLots::CreatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "ix_ledger_lots_member",
                vec![
                    LedgerLots::MemberId,
                    LedgerLots::Bucket,
                    LedgerLots::ExpiresAt,
                ],
            ),
            ("ix_ledger_lots_entry", vec![LedgerLots::EntryId]),
            (
                "ix_ledger_lots_due",
                vec![LedgerLots::Bucket, LedgerLots::AvailableAt],
            ),
            ("ix_ledger_lots_expiry", vec![LedgerLots::ExpiresAt]),
        ] {
            let mut idx = Index::create();
            idx.name(name).table(LedgerLots::Table);
            for c in cols {
                idx.col(c);
            }
            manager.create_index(idx.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(LedgerAllocations::Table)
                    .col(big_pk_auto(LedgerAllocations::Id))
                    .col(uuid(LedgerAllocations::TenantId))
                    .col(uuid(LedgerAllocations::EntryId))
                    .col(uuid(LedgerAllocations::LotId))
                    .col(big_integer(LedgerAllocations::Points))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_ledger_allocations_entry")
                    .table(LedgerAllocations::Table)
                    .col(LedgerAllocations::EntryId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LedgerHolds::Table)
                    .col(uuid(LedgerHolds::Id).primary_key())
                    .col(uuid(LedgerHolds::TenantId))
                    .col(uuid(LedgerHolds::MemberId))
                    .col(big_integer(LedgerHolds::Points))
                    .col(big_integer(LedgerHolds::CapturedPoints))
                    .col(string_len(LedgerHolds::Status, 16))
                    .col(uuid(LedgerHolds::HoldEntryId))
                    .col(uuid_null(LedgerHolds::ResolveEntryId))
                    .col(timestamp_with_time_zone(LedgerHolds::CreatedAt))
                    .col(timestamp_with_time_zone_null(LedgerHolds::ResolvedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
