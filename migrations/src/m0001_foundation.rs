//! Foundation: platform settings, tenants, API keys, members, member tags, idempotency records.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum PlatformSettings {
    Table,
    Key,
    Value,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Slug,
    Name,
    Timezone,
    PointsName,
    PrimaryColor,
    LogoUrl,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    TenantId,
    Name,
    Role,
    SecretHash,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Members {
    Table,
    Id,
    TenantId,
    ExternalId,
    Email,
    Phone,
    FirstName,
    LastName,
    Birthday,
    Locale,
    Tags,
    ConsentEmail,
    ConsentSms,
    Attributes,
    Status,
    EnrolledAt,
    UpdatedAt,
    ErasedAt,
}

#[derive(DeriveIden)]
enum MemberTags {
    Table,
    TenantId,
    MemberId,
    Tag,
}

#[derive(DeriveIden)]
enum IdempotencyRecords {
    Table,
    Scope,
    Key,
    Operation,
    RequestHash,
    ResultId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PlatformSettings::Table)
                    .col(string_len(PlatformSettings::Key, 64).primary_key())
                    .col(text(PlatformSettings::Value))
                    .col(timestamp_with_time_zone(PlatformSettings::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(uuid(Tenants::Id).primary_key())
                    .col(string_len_uniq(Tenants::Slug, 64))
                    .col(string_len(Tenants::Name, 100))
                    .col(string_len(Tenants::Timezone, 64))
                    .col(string_len(Tenants::PointsName, 32))
                    .col(string_len_null(Tenants::PrimaryColor, 7))
                    .col(string_len_null(Tenants::LogoUrl, 2048))
                    .col(timestamp_with_time_zone(Tenants::CreatedAt))
                    .col(timestamp_with_time_zone(Tenants::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(uuid(ApiKeys::Id).primary_key())
                    .col(uuid(ApiKeys::TenantId))
                    .col(string_len(ApiKeys::Name, 100))
                    .col(string_len(ApiKeys::Role, 16))
                    .col(string_len(ApiKeys::SecretHash, 64))
                    .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiKeys::Table, ApiKeys::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_api_keys_tenant")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::TenantId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Members::Table)
                    .col(uuid(Members::Id).primary_key())
                    .col(uuid(Members::TenantId))
                    .col(string_len(Members::ExternalId, 128))
                    .col(string_len_null(Members::Email, 254))
                    .col(string_len_null(Members::Phone, 16))
                    .col(string_len_null(Members::FirstName, 100))
                    .col(string_len_null(Members::LastName, 100))
                    .col(date_null(Members::Birthday))
                    .col(string_len_null(Members::Locale, 35))
                    .col(json_binary(Members::Tags))
                    .col(boolean(Members::ConsentEmail))
                    .col(boolean(Members::ConsentSms))
                    .col(json_binary(Members::Attributes))
                    .col(string_len(Members::Status, 16))
                    .col(timestamp_with_time_zone(Members::EnrolledAt))
                    .col(timestamp_with_time_zone(Members::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Members::ErasedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Members::Table, Members::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The natural keys of a member within a tenant. NULL emails never collide.
        manager
            .create_index(
                Index::create()
                    .name("ux_members_tenant_external_id")
                    .table(Members::Table)
                    .col(Members::TenantId)
                    .col(Members::ExternalId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_members_tenant_email")
                    .table(Members::Table)
                    .col(Members::TenantId)
                    .col(Members::Email)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_members_tenant_enrolled")
                    .table(Members::Table)
                    .col(Members::TenantId)
                    .col(Members::EnrolledAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MemberTags::Table)
                    .col(uuid(MemberTags::TenantId))
                    .col(uuid(MemberTags::MemberId))
                    .col(string_len(MemberTags::Tag, 64))
                    .primary_key(
                        Index::create()
                            .col(MemberTags::MemberId)
                            .col(MemberTags::Tag),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(MemberTags::Table, MemberTags::MemberId)
                            .to(Members::Table, Members::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_member_tags_tenant_tag")
                    .table(MemberTags::Table)
                    .col(MemberTags::TenantId)
                    .col(MemberTags::Tag)
                    .col(MemberTags::MemberId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyRecords::Table)
                    .col(string_len(IdempotencyRecords::Scope, 64))
                    .col(string_len(IdempotencyRecords::Key, 128))
                    .col(string_len(IdempotencyRecords::Operation, 64))
                    .col(string_len(IdempotencyRecords::RequestHash, 64))
                    .col(string_len(IdempotencyRecords::ResultId, 64))
                    .col(timestamp_with_time_zone(IdempotencyRecords::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyRecords::Scope)
                            .col(IdempotencyRecords::Key),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_idempotency_created")
                    .table(IdempotencyRecords::Table)
                    .col(IdempotencyRecords::CreatedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyRecords::Table.into_iden(),
            MemberTags::Table.into_iden(),
            Members::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Tenants::Table.into_iden(),
            PlatformSettings::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
