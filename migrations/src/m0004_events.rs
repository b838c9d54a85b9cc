//! Events pipeline: purchases and their lines, returns, member events (custom, enrolment,
//! birthday), the awards each event produced (which plugin, which line, which ledger entry),
//! member statistics, the domain-event outbox, and the tenant's programme currency.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::index;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Currency,
}

#[derive(DeriveIden)]
enum Members {
    Table,
    TenantId,
    /// month * 100 + day of the birthday, for the daily birthday job's indexed lookup.
    BirthdayMd,
}

#[derive(DeriveIden)]
enum MemberStats {
    Table,
    MemberId,
    TenantId,
    LifetimeSpend,
    PurchaseCount,
    FirstPurchaseAt,
    LastPurchaseAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Purchases {
    Table,
    Id,
    TenantId,
    MemberId,
    OrderId,
    RequestHash,
    OccurredAt,
    Currency,
    Total,
    Channel,
    StoreId,
    ReturnedAmount,
    PointsEarned,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PurchaseLines {
    Table,
    PurchaseId,
    LineIndex,
    TenantId,
    Sku,
    Category,
    Quantity,
    UnitPrice,
    ReturnedQuantity,
}

#[derive(DeriveIden)]
enum PurchaseReturns {
    Table,
    Id,
    TenantId,
    PurchaseId,
    MemberId,
    ReturnId,
    RequestHash,
    Amount,
    PointsClawedBack,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MemberEvents {
    Table,
    Id,
    TenantId,
    MemberId,
    EventId,
    Kind,
    Name,
    RequestHash,
    OccurredAt,
    Properties,
    CreatedAt,
}

#[derive(DeriveIden)]
enum EventAwards {
    Table,
    Id,
    TenantId,
    MemberId,
    /// The purchase or member event that produced the award.
    SourceId,
    EntryId,
    BindingId,
    PluginName,
    PluginVersion,
    ReasonCode,
    LineIndex,
    Points,
    ClawedBack,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OutboxEvents {
    Table,
    Id,
    TenantId,
    MemberId,
    Kind,
    Payload,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .add_column(string_len(Tenants::Currency, 3).default("EUR"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Members::Table)
                    .add_column(integer_null(Members::BirthdayMd))
                    .to_owned(),
            )
            .await?;
        let backfill = match manager.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                "UPDATE members SET birthday_md = CAST(EXTRACT(MONTH FROM birthday) * 100 \
                 + EXTRACT(DAY FROM birthday) AS INTEGER) WHERE birthday IS NOT NULL"
            }
            _ => {
                "UPDATE members SET birthday_md = CAST(strftime('%m', birthday) AS INTEGER) * 100 \
                 + CAST(strftime('%d', birthday) AS INTEGER) WHERE birthday IS NOT NULL"
            }
        };
        manager
            .get_connection()
            .execute_unprepared(backfill)
            .await?;
        index(
            manager,
            "ix_members_birthday",
            Members::Table.into_iden(),
            vec![
                Members::TenantId.into_iden(),
                Members::BirthdayMd.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(MemberStats::Table)
                    .col(uuid(MemberStats::MemberId).primary_key())
                    .col(uuid(MemberStats::TenantId))
                    .col(big_integer(MemberStats::LifetimeSpend))
                    .col(big_integer(MemberStats::PurchaseCount))
                    .col(timestamp_with_time_zone_null(MemberStats::FirstPurchaseAt))
                    .col(timestamp_with_time_zone_null(MemberStats::LastPurchaseAt))
                    .col(timestamp_with_time_zone(MemberStats::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Purchases::Table)
                    .col(uuid(Purchases::Id).primary_key())
                    .col(uuid(Purchases::TenantId))
                    .col(uuid(Purchases::MemberId))
                    .col(string_len(Purchases::OrderId, 128))
                    .col(string_len(Purchases::RequestHash, 64))
                    .col(timestamp_with_time_zone(Purchases::OccurredAt))
                    .col(string_len(Purchases::Currency, 3))
                    .col(big_integer(Purchases::Total))
                    .col(string_len(Purchases::Channel, 8))
                    .col(string_len_null(Purchases::StoreId, 128))
                    .col(big_integer(Purchases::ReturnedAmount))
                    .col(big_integer(Purchases::PointsEarned))
                    .col(timestamp_with_time_zone(Purchases::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_purchases_order",
            Purchases::Table.into_iden(),
            vec![
                Purchases::TenantId.into_iden(),
                Purchases::OrderId.into_iden(),
            ],
            true,
        )
        .await?;
        index(
            manager,
            "ix_purchases_member",
            Purchases::Table.into_iden(),
            vec![
                Purchases::TenantId.into_iden(),
                Purchases::MemberId.into_iden(),
                Purchases::Id.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PurchaseLines::Table)
                    .col(uuid(PurchaseLines::PurchaseId))
                    .col(integer(PurchaseLines::LineIndex))
                    .col(uuid(PurchaseLines::TenantId))
                    .col(string_len(PurchaseLines::Sku, 128))
                    .col(string_len_null(PurchaseLines::Category, 128))
                    .col(integer(PurchaseLines::Quantity))
                    .col(big_integer(PurchaseLines::UnitPrice))
                    .col(integer(PurchaseLines::ReturnedQuantity))
                    .primary_key(
                        Index::create()
                            .col(PurchaseLines::PurchaseId)
                            .col(PurchaseLines::LineIndex),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PurchaseReturns::Table)
                    .col(uuid(PurchaseReturns::Id).primary_key())
                    .col(uuid(PurchaseReturns::TenantId))
                    .col(uuid(PurchaseReturns::PurchaseId))
                    .col(uuid(PurchaseReturns::MemberId))
                    .col(string_len(PurchaseReturns::ReturnId, 128))
                    .col(string_len(PurchaseReturns::RequestHash, 64))
                    .col(big_integer(PurchaseReturns::Amount))
                    .col(big_integer(PurchaseReturns::PointsClawedBack))
                    .col(timestamp_with_time_zone(PurchaseReturns::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_purchase_returns_return",
            PurchaseReturns::Table.into_iden(),
            vec![
                PurchaseReturns::TenantId.into_iden(),
                PurchaseReturns::ReturnId.into_iden(),
            ],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(MemberEvents::Table)
                    .col(uuid(MemberEvents::Id).primary_key())
                    .col(uuid(MemberEvents::TenantId))
                    .col(uuid(MemberEvents::MemberId))
                    .col(string_len(MemberEvents::EventId, 200))
                    .col(string_len(MemberEvents::Kind, 16))
                    .col(string_len_null(MemberEvents::Name, 64))
                    .col(string_len(MemberEvents::RequestHash, 64))
                    .col(timestamp_with_time_zone(MemberEvents::OccurredAt))
                    .col(text(MemberEvents::Properties))
                    .col(timestamp_with_time_zone(MemberEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_member_events_event",
            MemberEvents::Table.into_iden(),
            vec![
                MemberEvents::TenantId.into_iden(),
                MemberEvents::EventId.into_iden(),
            ],
            true,
        )
        .await?;
        index(
            manager,
            "ix_member_events_member",
            MemberEvents::Table.into_iden(),
            vec![
                MemberEvents::MemberId.into_iden(),
                MemberEvents::Name.into_iden(),
                MemberEvents::OccurredAt.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(EventAwards::Table)
                    .col(uuid(EventAwards::Id).primary_key())
                    .col(uuid(EventAwards::TenantId))
                    .col(uuid(EventAwards::MemberId))
                    .col(uuid(EventAwards::SourceId))
                    .col(uuid(EventAwards::EntryId))
                    .col(uuid(EventAwards::BindingId))
                    .col(string_len(EventAwards::PluginName, 64))
                    .col(string_len(EventAwards::PluginVersion, 64))
                    .col(string_len(EventAwards::ReasonCode, 64))
                    .col(integer_null(EventAwards::LineIndex))
                    .col(big_integer(EventAwards::Points))
                    .col(big_integer(EventAwards::ClawedBack))
                    .col(timestamp_with_time_zone(EventAwards::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_event_awards_source",
            EventAwards::Table.into_iden(),
            vec![
                EventAwards::SourceId.into_iden(),
                EventAwards::Id.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(OutboxEvents::Table)
                    .col(uuid(OutboxEvents::Id).primary_key())
                    .col(uuid(OutboxEvents::TenantId))
                    .col(uuid_null(OutboxEvents::MemberId))
                    .col(string_len(OutboxEvents::Kind, 64))
                    .col(text(OutboxEvents::Payload))
                    .col(timestamp_with_time_zone(OutboxEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_outbox_events_tenant",
            OutboxEvents::Table.into_iden(),
            vec![
                OutboxEvents::TenantId.into_iden(),
                OutboxEvents::Id.into_iden(),
            ],
            false,
        )
        .await?;
        index(
            manager,
            "ix_outbox_events_kind",
            OutboxEvents::Table.into_iden(),
            vec![
                OutboxEvents::TenantId.into_iden(),
                OutboxEvents::Kind.into_iden(),
                OutboxEvents::Id.into_iden(),
            ],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OutboxEvents::Table.into_iden(),
            EventAwards::Table.into_iden(),
            MemberEvents::Table.into_iden(),
            PurchaseReturns::Table.into_iden(),
            PurchaseLines::Table.into_iden(),
            Purchases::Table.into_iden(),
            MemberStats::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("ix_members_birthday")
                    .table(Members::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Members::Table)
                    .drop_column(Members::BirthdayMd)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .drop_column(Tenants::Currency)
                    .to_owned(),
            )
            .await
    }
}
