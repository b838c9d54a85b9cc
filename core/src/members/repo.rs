//! Queries for members. Every function takes the tenant first and filters by it.

use super::{Consents, Member, MemberFilter, MemberStatus};
use crate::db::Batch;
use crate::db::entities::{member_tags, members};
use crate::error::{AppError, AppResult};
use crate::ids::{MemberId, TenantId};
use crate::pagination::{Page, PageRequest};
use chrono::Datelike;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};

pub(crate) fn to_domain(m: members::Model) -> AppResult<Member> {
    let status = MemberStatus::parse(&m.status)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("bad member status {:?}", m.status)))?;
    let tags: Vec<String> = serde_json::from_value(m.tags).map_err(AppError::internal)?;
    let attributes = match m.attributes {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    Ok(Member {
        id: MemberId(m.id),
        tenant_id: TenantId(m.tenant_id),
        external_id: m.external_id,
        email: m.email,
        phone: m.phone,
        first_name: m.first_name,
        last_name: m.last_name,
        birthday: m.birthday,
        locale: m.locale,
        tags,
        consents: Consents {
            email: m.consent_email,
            sms: m.consent_sms,
        },
        attributes,
        status,
        enrolled_at: m.enrolled_at,
        updated_at: m.updated_at,
        erased_at: m.erased_at,
    })
}

fn to_model(m: &Member) -> members::Model {
    members::Model {
        id: m.id.0,
        tenant_id: m.tenant_id.0,
        external_id: m.external_id.clone(),
        email: m.email.clone(),
        phone: m.phone.clone(),
        first_name: m.first_name.clone(),
        last_name: m.last_name.clone(),
        birthday: m.birthday,
        locale: m.locale.clone(),
        tags: serde_json::Value::from(m.tags.clone()),
        consent_email: m.consents.email,
        consent_sms: m.consents.sms,
        attributes: serde_json::Value::Object(m.attributes.clone()),
        status: m.status.as_str().into(),
        enrolled_at: m.enrolled_at,
        updated_at: m.updated_at,
        erased_at: m.erased_at,
        birthday_md: m.birthday.map(|d| d.month() as i32 * 100 + d.day() as i32),
    }
}

async fn write_tags(conn: &impl ConnectionTrait, m: &Member) -> AppResult<()> {
    member_tags::Entity::delete_many()
        .filter(member_tags::Column::TenantId.eq(m.tenant_id.0))
        .filter(member_tags::Column::MemberId.eq(m.id.0))
        .exec(conn)
        .await?;
    if m.tags.is_empty() {
        return Ok(());
    }
    member_tags::Entity::insert_many(tag_rows(m))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

fn tag_rows(m: &Member) -> impl Iterator<Item = member_tags::ActiveModel> + '_ {
    m.tags.iter().map(|t| {
        member_tags::Model {
            tenant_id: m.tenant_id.0,
            member_id: m.id.0,
            tag: t.clone(),
        }
        .into_active_model()
    })
}

/// A new member's row and tags as part of a [`Batch`] (nothing to delete: the member is new).
pub fn insert_into(batch: &mut Batch, m: &Member) {
    batch.insert(members::Entity::insert(to_model(m).into_active_model()));
    if !m.tags.is_empty() {
        batch.insert(member_tags::Entity::insert_many(tag_rows(m)));
    }
}

/// Stores every field of `m` (the row must exist).
pub async fn save(conn: &impl ConnectionTrait, m: &Member) -> AppResult<()> {
    let active = to_model(m).into_active_model().reset_all();
    members::Entity::update_many()
        .set(active)
        .filter(members::Column::Id.eq(m.id.0))
        .filter(members::Column::TenantId.eq(m.tenant_id.0))
        .exec(conn)
        .await?;
    write_tags(conn, m).await
}

pub async fn find(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    id: MemberId,
) -> AppResult<Option<Member>> {
    members::Entity::find_by_id(id.0)
        .filter(members::Column::TenantId.eq(tenant.0))
        .one(conn)
        .await?
        .map(to_domain)
        .transpose()
}

pub async fn find_by_external_id(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    external_id: &str,
) -> AppResult<Option<Member>> {
    members::Entity::find()
        .filter(members::Column::TenantId.eq(tenant.0))
        .filter(members::Column::ExternalId.eq(external_id))
        .one(conn)
        .await?
        .map(to_domain)
        .transpose()
}

pub async fn find_by_email(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    email: &str,
) -> AppResult<Option<Member>> {
    members::Entity::find()
        .filter(members::Column::TenantId.eq(tenant.0))
        .filter(members::Column::Email.eq(email))
        .one(conn)
        .await?
        .map(to_domain)
        .transpose()
}

pub async fn list(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    filter: &MemberFilter,
    page: PageRequest,
) -> AppResult<Page<Member>> {
    let mut q = members::Entity::find()
        .filter(members::Column::TenantId.eq(tenant.0))
        .order_by_asc(members::Column::Id);
    if let Some(after) = page.after {
        q = q.filter(members::Column::Id.gt(after));
    }
    if let Some(tag) = &filter.tag {
        let tagged = member_tags::Entity::find()
            .select_only()
            .column(member_tags::Column::MemberId)
            .filter(member_tags::Column::TenantId.eq(tenant.0))
            .filter(member_tags::Column::Tag.eq(tag.as_str()))
            .into_query();
        q = q.filter(members::Column::Id.in_subquery(tagged));
    }
    if let Some(email) = &filter.email {
        q = q.filter(members::Column::Email.eq(email.as_str()));
    }
    if let Some(from) = filter.enrolled_from {
        q = q.filter(members::Column::EnrolledAt.gte(from));
    }
    if let Some(before) = filter.enrolled_before {
        q = q.filter(members::Column::EnrolledAt.lt(before));
    }
    if let Some(status) = filter.status {
        q = q.filter(members::Column::Status.eq(status.as_str()));
    }
    let rows = q.limit(page.limit + 1).all(conn).await?;
    let rows = rows
        .into_iter()
        .map(to_domain)
        .collect::<AppResult<Vec<_>>>()?;
    Ok(Page::from_overfetch(rows, page.limit))
}

/// Active members of `tenant` whose birthday falls on one of `month_days` (month * 100 + day),
/// after `after` in id order, at most `limit` (the daily birthday job's keyset scan).
pub async fn with_birthday(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    month_days: &[i32],
    after: Option<MemberId>,
    limit: u64,
) -> AppResult<Vec<Member>> {
    let mut q = members::Entity::find()
        .filter(members::Column::TenantId.eq(tenant.0))
        .filter(members::Column::BirthdayMd.is_in(month_days.iter().copied()))
        .filter(members::Column::Status.eq(MemberStatus::Active.as_str()))
        .order_by_asc(members::Column::Id);
    if let Some(after) = after {
        q = q.filter(members::Column::Id.gt(after.0));
    }
    q.limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}
