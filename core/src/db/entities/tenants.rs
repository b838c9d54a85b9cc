use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub timezone: String,
    pub points_name: String,
    pub primary_color: Option<String>,
    pub logo_url: Option<String>,
    pub expiry_policy: String,
    pub shortfall_policy: String,
    pub currency: String,
    pub referral_cap: Option<i64>,
    pub referral_cap_period: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
