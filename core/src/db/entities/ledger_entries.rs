use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub member_id: Uuid,
    pub kind: String,
    pub points: i64,
    pub reason: Option<String>,
    pub reason_code: Option<String>,
    pub natural_key: Option<String>,
    pub reverses_entry_id: Option<Uuid>,
    pub hold_id: Option<Uuid>,
    pub event_id: Option<String>,
    pub plugin_id: Option<String>,
    pub plugin_version: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
