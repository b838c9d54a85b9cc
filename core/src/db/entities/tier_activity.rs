use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tier_activity")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub member_id: Uuid,
    /// Local month of the tenant: `year * 12 + month - 1`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub month: i32,
    pub tenant_id: Uuid,
    pub points_earned: i64,
    pub spend: i64,
    pub purchases: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
