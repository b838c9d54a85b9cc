//! Tiers: each tenant's ladders (every version kept), every member's tier with its review and
//! manual assignment, the history of tier changes, the members' activity per local month (the
//! qualification metrics are sums of it), and the re-evaluation jobs that follow a ladder change.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::index;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum TierLadders {
    Table,
    Id,
    TenantId,
    Version,
    Metric,
    WindowKind,
    WindowMonths,
    GraceDays,
    StepsMax,
    Tiers,
    DefinitionHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MemberTiers {
    Table,
    MemberId,
    TenantId,
    Tier,
    Since,
    Source,
    ManualTier,
    ManualUntil,
    ManualReason,
    PeriodEnd,
    ReviewAt,
    LadderVersion,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TierHistory {
    Table,
    Id,
    TenantId,
    MemberId,
    FromTier,
    ToTier,
    Direction,
    Source,
    Reason,
    MetricValue,
    LadderVersion,
    At,
}

#[derive(DeriveIden)]
enum TierActivity {
    Table,
    MemberId,
    Month,
    TenantId,
    PointsEarned,
    Spend,
    Purchases,
}

#[derive(DeriveIden)]
enum TierReevaluations {
    Table,
    Id,
    TenantId,
    LadderVersion,
    Rebuild,
    Status,
    Cursor,
    MembersTotal,
    MembersDone,
    Upgraded,
    Downgraded,
    StartedAt,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TierLadders::Table)
                    .col(uuid(TierLadders::Id).primary_key())
                    .col(uuid(TierLadders::TenantId))
                    .col(integer(TierLadders::Version))
                    .col(string_len(TierLadders::Metric, 16))
                    .col(string_len(TierLadders::WindowKind, 16))
                    .col(integer_null(TierLadders::WindowMonths))
                    .col(integer(TierLadders::GraceDays))
                    .col(integer(TierLadders::StepsMax))
                    .col(text(TierLadders::Tiers))
                    .col(string_len(TierLadders::DefinitionHash, 64))
                    .col(timestamp_with_time_zone(TierLadders::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_tier_ladders_version",
            TierLadders::Table.into_iden(),
            vec![
                TierLadders::TenantId.into_iden(),
                TierLadders::Version.into_iden(),
            ],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(MemberTiers::Table)
                    .col(uuid(MemberTiers::MemberId).primary_key())
                    .col(uuid(MemberTiers::TenantId))
                    .col(string_len(MemberTiers::Tier, 64))
                    .col(timestamp_with_time_zone(MemberTiers::Since))
                    .col(string_len(MemberTiers::Source, 16))
                    .col(string_len_null(MemberTiers::ManualTier, 64))
                    .col(timestamp_with_time_zone_null(MemberTiers::ManualUntil))
                    .col(string_len_null(MemberTiers::ManualReason, 500))
                    .col(timestamp_with_time_zone_null(MemberTiers::PeriodEnd))
                    .col(timestamp_with_time_zone_null(MemberTiers::ReviewAt))
                    .col(integer(MemberTiers::LadderVersion))
                    .col(timestamp_with_time_zone(MemberTiers::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_member_tiers_review",
            MemberTiers::Table.into_iden(),
            vec![MemberTiers::ReviewAt.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(TierHistory::Table)
                    .col(uuid(TierHistory::Id).primary_key())
                    .col(uuid(TierHistory::TenantId))
                    .col(uuid(TierHistory::MemberId))
                    .col(string_len_null(TierHistory::FromTier, 64))
                    .col(string_len(TierHistory::ToTier, 64))
                    .col(string_len(TierHistory::Direction, 4))
                    .col(string_len(TierHistory::Source, 16))
                    .col(string_len_null(TierHistory::Reason, 500))
                    .col(big_integer(TierHistory::MetricValue))
                    .col(integer(TierHistory::LadderVersion))
                    .col(timestamp_with_time_zone(TierHistory::At))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_tier_history_member",
            TierHistory::Table.into_iden(),
            vec![
                TierHistory::MemberId.into_iden(),
                TierHistory::Id.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(TierActivity::Table)
                    .col(uuid(TierActivity::MemberId))
                    .col(integer(TierActivity::Month))
                    .col(uuid(TierActivity::TenantId))
                    .col(big_integer(TierActivity::PointsEarned))
                    .col(big_integer(TierActivity::Spend))
                    .col(big_integer(TierActivity::Purchases))
                    .primary_key(
                        Index::create()
                            .col(TierActivity::MemberId)
                            .col(TierActivity::Month),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TierReevaluations::Table)
                    .col(uuid(TierReevaluations::Id).primary_key())
                    .col(uuid(TierReevaluations::TenantId))
                    .col(integer(TierReevaluations::LadderVersion))
                    .col(boolean(TierReevaluations::Rebuild))
                    .col(string_len(TierReevaluations::Status, 8))
                    .col(uuid_null(TierReevaluations::Cursor))
                    .col(big_integer(TierReevaluations::MembersTotal))
                    .col(big_integer(TierReevaluations::MembersDone))
                    .col(big_integer(TierReevaluations::Upgraded))
                    .col(big_integer(TierReevaluations::Downgraded))
                    .col(timestamp_with_time_zone(TierReevaluations::StartedAt))
                    .col(timestamp_with_time_zone_null(TierReevaluations::FinishedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_tier_reevaluations_status",
            TierReevaluations::Table.into_iden(),
            vec![
                TierReevaluations::Status.into_iden(),
                TierReevaluations::StartedAt.into_iden(),
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_tier_reevaluations_tenant",
            TierReevaluations::Table.into_iden(),
            vec![
                TierReevaluations::TenantId.into_iden(),
                TierReevaluations::LadderVersion.into_iden(),
            ],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            TierReevaluations::Table.into_iden(),
            TierActivity::Table.into_iden(),
            TierHistory::Table.into_iden(),
            MemberTiers::Table.into_iden(),
            TierLadders::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
