//! Plugin registry: the component versions a tenant can use (its own uploads and the bundled
//! first-party ones) and the tenant's bindings of them, each with a config, an order and an
//! on/off switch.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum PluginVersions {
    Table,
    Id,
    /// The owning tenant; the nil UUID for bundled first-party plugins.
    TenantId,
    Name,
    Version,
    Kind,
    Description,
    ConfigSchema,
    ConfigExample,
    Digest,
    Component,
    SizeBytes,
    Bundled,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PluginBindings {
    Table,
    Id,
    TenantId,
    PluginVersionId,
    Config,
    Priority,
    Enabled,
    CreatedAt,
    UpdatedAt,
    RemovedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PluginVersions::Table)
                    .col(uuid(PluginVersions::Id).primary_key())
                    .col(uuid(PluginVersions::TenantId))
                    .col(string_len(PluginVersions::Name, 64))
                    .col(string_len(PluginVersions::Version, 64))
                    .col(string_len(PluginVersions::Kind, 16))
                    .col(text(PluginVersions::Description))
                    .col(text(PluginVersions::ConfigSchema))
                    .col(text(PluginVersions::ConfigExample))
                    .col(string_len(PluginVersions::Digest, 64))
                    .col(blob(PluginVersions::Component))
                    .col(big_integer(PluginVersions::SizeBytes))
                    .col(boolean(PluginVersions::Bundled))
                    .col(timestamp_with_time_zone(PluginVersions::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_plugin_versions_tenant_name_version")
                    .table(PluginVersions::Table)
                    .col(PluginVersions::TenantId)
                    .col(PluginVersions::Name)
                    .col(PluginVersions::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PluginBindings::Table)
                    .col(uuid(PluginBindings::Id).primary_key())
                    .col(uuid(PluginBindings::TenantId))
                    .col(uuid(PluginBindings::PluginVersionId))
                    .col(text(PluginBindings::Config))
                    .col(integer(PluginBindings::Priority))
                    .col(boolean(PluginBindings::Enabled))
                    .col(timestamp_with_time_zone(PluginBindings::CreatedAt))
                    .col(timestamp_with_time_zone(PluginBindings::UpdatedAt))
                    .col(timestamp_with_time_zone_null(PluginBindings::RemovedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PluginBindings::Table, PluginBindings::PluginVersionId)
                            .to(PluginVersions::Table, PluginVersions::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_plugin_bindings_tenant_priority")
                    .table(PluginBindings::Table)
                    .col(PluginBindings::TenantId)
                    .col(PluginBindings::Priority)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
