//! Referrals: every member's referral code, the attributions (one per referee, ever), the
//! refused attributions and qualifications with their reason, and the tenant's cap per
//! referrer per period.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::index;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    ReferralCap,
    ReferralCapPeriod,
}

#[derive(DeriveIden)]
enum ReferralCodes {
    Table,
    MemberId,
    TenantId,
    Code,
}

#[derive(DeriveIden)]
enum Referrals {
    Table,
    Id,
    TenantId,
    ReferrerId,
    RefereeId,
    Status,
    CreatedAt,
    QualifiedAt,
    ReferrerPoints,
    RefereePoints,
    EventId,
}

#[derive(DeriveIden)]
enum ReferralRefusals {
    Table,
    Id,
    TenantId,
    ReferrerId,
    RefereeId,
    Code,
    Reason,
    Stage,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .add_column(big_integer_null(Tenants::ReferralCap))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .add_column(string_len_null(Tenants::ReferralCapPeriod, 8))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ReferralCodes::Table)
                    .col(uuid(ReferralCodes::MemberId).primary_key())
                    .col(uuid(ReferralCodes::TenantId))
                    .col(string_len(ReferralCodes::Code, 16))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_referral_codes_code",
            ReferralCodes::Table.into_iden(),
            vec![
                ReferralCodes::TenantId.into_iden(),
                ReferralCodes::Code.into_iden(),
            ],
            true,
        )
        .await?;
        // Members enrolled before referrals existed get a code too.
        let backfill = match manager.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                "INSERT INTO referral_codes (member_id, tenant_id, code) SELECT id, tenant_id, \
                 upper(substr(md5(random()::text || id::text), 1, 10)) FROM members"
            }
            _ => {
                "INSERT INTO referral_codes (member_id, tenant_id, code) SELECT id, tenant_id, \
                 upper(hex(randomblob(5))) FROM members"
            }
        };
        manager
            .get_connection()
            .execute_unprepared(backfill)
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Referrals::Table)
                    .col(uuid(Referrals::Id).primary_key())
                    .col(uuid(Referrals::TenantId))
                    .col(uuid(Referrals::ReferrerId))
                    .col(uuid(Referrals::RefereeId))
                    .col(string_len(Referrals::Status, 16))
                    .col(timestamp_with_time_zone(Referrals::CreatedAt))
                    .col(timestamp_with_time_zone_null(Referrals::QualifiedAt))
                    .col(big_integer(Referrals::ReferrerPoints))
                    .col(big_integer(Referrals::RefereePoints))
                    .col(string_len_null(Referrals::EventId, 200))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ux_referrals_referee",
            Referrals::Table.into_iden(),
            vec![
                Referrals::TenantId.into_iden(),
                Referrals::RefereeId.into_iden(),
            ],
            true,
        )
        .await?;
        index(
            manager,
            "ix_referrals_referrer",
            Referrals::Table.into_iden(),
            vec![
                Referrals::ReferrerId.into_iden(),
                Referrals::Status.into_iden(),
                Referrals::QualifiedAt.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReferralRefusals::Table)
                    .col(uuid(ReferralRefusals::Id).primary_key())
                    .col(uuid(ReferralRefusals::TenantId))
                    .col(uuid_null(ReferralRefusals::ReferrerId))
                    .col(uuid(ReferralRefusals::RefereeId))
                    .col(string_len(ReferralRefusals::Code, 64))
                    .col(string_len(ReferralRefusals::Reason, 64))
                    .col(string_len(ReferralRefusals::Stage, 16))
                    .col(timestamp_with_time_zone(ReferralRefusals::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_referral_refusals_tenant",
            ReferralRefusals::Table.into_iden(),
            vec![
                ReferralRefusals::TenantId.into_iden(),
                ReferralRefusals::Id.into_iden(),
            ],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ReferralRefusals::Table.into_iden(),
            Referrals::Table.into_iden(),
            ReferralCodes::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for col in [
            Tenants::ReferralCap.into_iden(),
            Tenants::ReferralCapPeriod.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tenants::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
