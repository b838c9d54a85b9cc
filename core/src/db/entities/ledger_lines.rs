use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_lines")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub entry_id: Uuid,
    pub tenant_id: Uuid,
    pub member_id: Option<Uuid>,
    pub account: String,
    pub amount: i64,
    pub lot_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
