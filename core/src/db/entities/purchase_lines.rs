use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "purchase_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub purchase_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub line_index: i32,
    pub tenant_id: Uuid,
    pub sku: String,
    pub category: Option<String>,
    pub quantity: i32,
    pub unit_price: i64,
    pub returned_quantity: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
