use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "member_tiers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub member_id: Uuid,
    pub tenant_id: Uuid,
    pub tier: String,
    pub since: DateTimeUtc,
    pub source: String,
    pub manual_tier: Option<String>,
    pub manual_until: Option<DateTimeUtc>,
    pub manual_reason: Option<String>,
    pub period_end: Option<DateTimeUtc>,
    pub review_at: Option<DateTimeUtc>,
    pub ladder_version: i32,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
