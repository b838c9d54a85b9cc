use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_awards")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub member_id: Uuid,
    pub source_id: Uuid,
    pub entry_id: Uuid,
    pub binding_id: Uuid,
    pub plugin_name: String,
    pub plugin_version: String,
    pub reason_code: String,
    pub line_index: Option<i32>,
    pub points: i64,
    pub clawed_back: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
