//! Rewards catalogue and redemptions. Stock is a remaining-units column updated with a
//! conditional decrement (no lock on unlimited rewards); statistics are counted from
//! `redemptions` by reward and status, so popular rewards get no hot counter row.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::index;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Rewards {
    Table,
    Id,
    TenantId,
    Name,
    Description,
    ImageUrl,
    PointsCost,
    PluginVersionId,
    Config,
    Stock,
    PerMemberLimit,
    ValidFrom,
    ValidUntil,
    MinTier,
    Active,
    CodeValidDays,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Redemptions {
    Table,
    Id,
    TenantId,
    RewardId,
    MemberId,
    Code,
    Status,
    Quantity,
    PointsCost,
    Effects,
    HoldId,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    CancelledAt,
    ExpiredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Rewards::Table)
                    .col(uuid(Rewards::Id).primary_key())
                    .col(uuid(Rewards::TenantId))
                    .col(string_len(Rewards::Name, 200))
                    .col(text_null(Rewards::Description))
                    .col(string_len_null(Rewards::ImageUrl, 2048))
                    .col(big_integer(Rewards::PointsCost))
                    .col(uuid(Rewards::PluginVersionId))
                    .col(text(Rewards::Config))
                    .col(big_integer_null(Rewards::Stock))
                    .col(big_integer_null(Rewards::PerMemberLimit))
                    .col(timestamp_with_time_zone_null(Rewards::ValidFrom))
                    .col(timestamp_with_time_zone_null(Rewards::ValidUntil))
                    .col(string_len_null(Rewards::MinTier, 64))
                    .col(boolean(Rewards::Active))
                    .col(integer(Rewards::CodeValidDays))
                    .col(timestamp_with_time_zone(Rewards::CreatedAt))
                    .col(timestamp_with_time_zone(Rewards::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_rewards_tenant",
            Rewards::Table.into_iden(),
            vec![Rewards::TenantId.into_iden(), Rewards::Id.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Redemptions::Table)
                    .col(uuid(Redemptions::Id).primary_key())
                    .col(uuid(Redemptions::TenantId))
                    .col(uuid(Redemptions::RewardId))
                    .col(uuid(Redemptions::MemberId))
                    .col(string_len(Redemptions::Code, 32))
                    .col(string_len(Redemptions::Status, 16))
                    .col(integer(Redemptions::Quantity))
                    .col(big_integer(Redemptions::PointsCost))
                    .col(text(Redemptions::Effects))
                    .col(uuid_null(Redemptions::HoldId))
                    .col(timestamp_with_time_zone(Redemptions::CreatedAt))
                    .col(timestamp_with_time_zone(Redemptions::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Redemptions::UsedAt))
                    .col(timestamp_with_time_zone_null(Redemptions::CancelledAt))
                    .col(timestamp_with_time_zone_null(Redemptions::ExpiredAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_redemptions_code",
            Redemptions::Table.into_iden(),
            vec![
                Redemptions::TenantId.into_iden(),
                Redemptions::Code.into_iden(),
            ],
            true,
        )
        .await?;
        index(
            manager,
            "ix_redemptions_member",
            Redemptions::Table.into_iden(),
            vec![
                Redemptions::TenantId.into_iden(),
                Redemptions::MemberId.into_iden(),
                Redemptions::Id.into_iden(),
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_redemptions_reward",
            Redemptions::Table.into_iden(),
            vec![
                Redemptions::RewardId.into_iden(),
                Redemptions::Status.into_iden(),
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_redemptions_expiry",
            Redemptions::Table.into_iden(),
            vec![
                Redemptions::Status.into_iden(),
                Redemptions::ExpiresAt.into_iden(),
            ],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [Redemptions::Table.into_iden(), Rewards::Table.into_iden()] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
