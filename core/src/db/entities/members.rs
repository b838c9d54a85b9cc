use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub external_id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub birthday: Option<Date>,
    pub locale: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub tags: Json,
    pub consent_email: bool,
    pub consent_sms: bool,
    #[sea_orm(column_type = "JsonBinary")]
    pub attributes: Json,
    pub status: String,
    pub enrolled_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub erased_at: Option<DateTimeUtc>,
    /// month * 100 + day of `birthday`, for the birthday job.
    pub birthday_md: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
