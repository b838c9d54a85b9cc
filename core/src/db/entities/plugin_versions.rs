use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "plugin_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The nil UUID for bundled first-party plugins.
    pub tenant_id: Uuid,
    pub name: String,
    pub version: String,
    pub kind: String,
    pub description: String,
    pub config_schema: String,
    pub config_example: String,
    pub digest: String,
    pub component: Vec<u8>,
    pub size_bytes: i64,
    pub bundled: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
