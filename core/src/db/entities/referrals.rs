use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "referrals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub referrer_id: Uuid,
    pub referee_id: Uuid,
    pub status: String,
    pub created_at: DateTimeUtc,
    pub qualified_at: Option<DateTimeUtc>,
    pub referrer_points: i64,
    pub referee_points: i64,
    pub event_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
