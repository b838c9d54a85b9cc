//! Queries of the rewards catalogue and redemptions.

use super::{Redemption, Reward, RewardStats, Status};
use crate::db::Batch;
use crate::db::entities::{redemptions, rewards};
use crate::error::{AppError, AppResult};
use crate::ids::{MemberId, PluginVersionId, TenantId};
use crate::pagination::{Page, PageRequest};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

fn reward_from(m: rewards::Model) -> Reward {
    Reward {
        id: m.id,
        tenant_id: TenantId(m.tenant_id),
        name: m.name,
        description: m.description,
        image_url: m.image_url,
        points_cost: m.points_cost,
        plugin_version_id: PluginVersionId(m.plugin_version_id),
        config: m.config,
        stock: m.stock,
        per_member_limit: m.per_member_limit,
        valid_from: m.valid_from,
        valid_until: m.valid_until,
        min_tier: m.min_tier,
        active: m.active,
        code_valid_days: m.code_valid_days,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

fn reward_model(r: &Reward) -> rewards::Model {
    rewards::Model {
        id: r.id,
        tenant_id: r.tenant_id.0,
        name: r.name.clone(),
        description: r.description.clone(),
        image_url: r.image_url.clone(),
        points_cost: r.points_cost,
        plugin_version_id: r.plugin_version_id.0,
        config: r.config.clone(),
        stock: r.stock,
        per_member_limit: r.per_member_limit,
        valid_from: r.valid_from,
        valid_until: r.valid_until,
        min_tier: r.min_tier.clone(),
        active: r.active,
        code_valid_days: r.code_valid_days,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

pub async fn insert_reward(conn: &impl ConnectionTrait, r: &Reward) -> AppResult<()> {
    rewards::Entity::insert(reward_model(r).into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Saves every field of a reward except its stock, which only [`take_stock`] and
/// [`put_back_stock`] change (or an explicit `stock` in an update: `set_stock`).
pub async fn save_reward(conn: &impl ConnectionTrait, r: &Reward) -> AppResult<()> {
    use rewards::Column as C;
    rewards::Entity::update_many()
        .col_expr(C::Name, Expr::value(r.name.clone()))
        .col_expr(C::Description, Expr::value(r.description.clone()))
        .col_expr(C::ImageUrl, Expr::value(r.image_url.clone()))
        .col_expr(C::PointsCost, Expr::value(r.points_cost))
        .col_expr(C::Config, Expr::value(r.config.clone()))
        .col_expr(C::PerMemberLimit, Expr::value(r.per_member_limit))
        .col_expr(C::ValidFrom, Expr::value(r.valid_from))
        .col_expr(C::ValidUntil, Expr::value(r.valid_until))
        .col_expr(C::MinTier, Expr::value(r.min_tier.clone()))
        .col_expr(C::Active, Expr::value(r.active))
        .col_expr(C::CodeValidDays, Expr::value(r.code_valid_days))
        .col_expr(C::UpdatedAt, Expr::value(r.updated_at))
        .filter(C::Id.eq(r.id))
        .filter(C::TenantId.eq(r.tenant_id.0))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn set_stock(conn: &impl ConnectionTrait, id: Uuid, stock: Option<i64>) -> AppResult<()> {
    rewards::Entity::update_many()
        .col_expr(rewards::Column::Stock, Expr::value(stock))
        .filter(rewards::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Takes `quantity` units if that many are left: one conditional UPDATE, so concurrent
/// redemptions can never take more than the stock. False when too few are left.
pub async fn take_stock(conn: &impl ConnectionTrait, id: Uuid, quantity: i64) -> AppResult<bool> {
    use rewards::Column as C;
    let r = rewards::Entity::update_many()
        .col_expr(C::Stock, Expr::col(C::Stock).sub(quantity))
        .filter(C::Id.eq(id))
        .filter(C::Stock.gte(quantity))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Puts units back (a cancelled redemption) when the reward has a stock.
pub async fn put_back_stock(conn: &impl ConnectionTrait, id: Uuid, quantity: i64) -> AppResult<()> {
    use rewards::Column as C;
    rewards::Entity::update_many()
        .col_expr(C::Stock, Expr::col(C::Stock).add(quantity))
        .filter(C::Id.eq(id))
        .filter(C::Stock.is_not_null())
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn find_reward(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> AppResult<Option<Reward>> {
    Ok(rewards::Entity::find_by_id(id)
        .filter(rewards::Column::TenantId.eq(tenant.0))
        .one(conn)
        .await?
        .map(reward_from))
}

/// The tenant's rewards, oldest first; `active_only` for what members see.
pub async fn list_rewards(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    active_only: bool,
    limit: u64,
) -> AppResult<Vec<Reward>> {
    let mut q = rewards::Entity::find()
        .filter(rewards::Column::TenantId.eq(tenant.0))
        .order_by_asc(rewards::Column::Id);
    if active_only {
        q = q.filter(rewards::Column::Active.eq(true));
    }
    Ok(q.limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(reward_from)
        .collect())
}

pub async fn count_rewards(conn: &impl ConnectionTrait, tenant: TenantId) -> AppResult<u64> {
    use sea_orm::PaginatorTrait;
    Ok(rewards::Entity::find()
        .filter(rewards::Column::TenantId.eq(tenant.0))
        .count(conn)
        .await?)
}

fn redemption_from(m: redemptions::Model) -> AppResult<Redemption> {
    Ok(Redemption {
        id: m.id,
        tenant_id: TenantId(m.tenant_id),
        reward_id: m.reward_id,
        member_id: MemberId(m.member_id),
        code: m.code,
        status: Status::parse(&m.status)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("bad status {:?}", m.status)))?,
        quantity: m.quantity,
        points_cost: m.points_cost,
        effects: serde_json::from_str(&m.effects).map_err(AppError::internal)?,
        hold_id: m.hold_id,
        created_at: m.created_at,
        expires_at: m.expires_at,
        used_at: m.used_at,
        cancelled_at: m.cancelled_at,
        expired_at: m.expired_at,
    })
}

/// A new redemption's row as part of a [`Batch`].
pub fn insert_redemption_into(batch: &mut Batch, r: &Redemption) -> AppResult<()> {
    batch.insert(redemptions::Entity::insert(
        redemptions::Model {
            id: r.id,
            tenant_id: r.tenant_id.0,
            reward_id: r.reward_id,
            member_id: r.member_id.0,
            code: r.code.clone(),
            status: r.status.as_str().into(),
            quantity: r.quantity,
            points_cost: r.points_cost,
            effects: serde_json::to_string(&r.effects).map_err(AppError::internal)?,
            hold_id: r.hold_id,
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
            cancelled_at: r.cancelled_at,
            expired_at: r.expired_at,
        }
        .into_active_model(),
    ));
    Ok(())
}

pub async fn find_redemption(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> AppResult<Option<Redemption>> {
    redemptions::Entity::find_by_id(id)
        .filter(redemptions::Column::TenantId.eq(tenant.0))
        .one(conn)
        .await?
        .map(redemption_from)
        .transpose()
}

pub async fn find_by_code(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    code: &str,
) -> AppResult<Option<Redemption>> {
    redemptions::Entity::find()
        .filter(redemptions::Column::TenantId.eq(tenant.0))
        .filter(redemptions::Column::Code.eq(code))
        .one(conn)
        .await?
        .map(redemption_from)
        .transpose()
}

/// Moves an ISSUED redemption to `to`, setting `at` in that status's column. One
/// conditional UPDATE: of concurrent attempts exactly one sees `true`.
pub async fn transition(
    conn: &impl ConnectionTrait,
    id: Uuid,
    to: Status,
    at: DateTime<Utc>,
) -> AppResult<bool> {
    use redemptions::Column as C;
    let column = match to {
        Status::Used => C::UsedAt,
        Status::Cancelled => C::CancelledAt,
        Status::Expired => C::ExpiredAt,
        Status::Issued => {
            return Err(AppError::internal(anyhow::anyhow!(
                "a redemption never goes back to ISSUED"
            )));
        }
    };
    let r = redemptions::Entity::update_many()
        .col_expr(C::Status, Expr::value(to.as_str()))
        .col_expr(column, Expr::value(Some(at)))
        .filter(C::Id.eq(id))
        .filter(C::Status.eq(Status::Issued.as_str()))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Units of `reward` the member holds or used (everything but cancelled redemptions).
pub async fn units_of_member(
    conn: &impl ConnectionTrait,
    reward: Uuid,
    member: MemberId,
) -> AppResult<i64> {
    use redemptions::Column as C;
    let rows: Vec<i32> = redemptions::Entity::find()
        .select_only()
        .column(C::Quantity)
        .filter(C::RewardId.eq(reward))
        .filter(C::MemberId.eq(member.0))
        .filter(C::Status.ne(Status::Cancelled.as_str()))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(i64::from).sum())
}

pub async fn stats(conn: &impl ConnectionTrait, reward: Uuid) -> AppResult<RewardStats> {
    use redemptions::Column as C;
    use sea_orm::PaginatorTrait;
    let count = |s: Status| {
        redemptions::Entity::find()
            .filter(C::RewardId.eq(reward))
            .filter(C::Status.eq(s.as_str()))
            .count(conn)
    };
    Ok(RewardStats {
        issued: count(Status::Issued).await? as i64,
        used: count(Status::Used).await? as i64,
        expired: count(Status::Expired).await? as i64,
        cancelled: count(Status::Cancelled).await? as i64,
    })
}

pub async fn list_member_redemptions(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    member: MemberId,
    page: PageRequest,
) -> AppResult<Page<Redemption>> {
    use redemptions::Column as C;
    let mut q = redemptions::Entity::find()
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::MemberId.eq(member.0))
        .order_by_desc(C::Id);
    if let Some(after) = page.after {
        q = q.filter(C::Id.lt(after));
    }
    let rows = q
        .limit(page.limit + 1)
        .all(conn)
        .await?
        .into_iter()
        .map(redemption_from)
        .collect::<AppResult<Vec<_>>>()?;
    Ok(Page::from_overfetch(rows, page.limit))
}

/// ISSUED redemptions whose code expired at or before `now`, oldest first.
pub async fn due_expiries(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> AppResult<Vec<Redemption>> {
    use redemptions::Column as C;
    redemptions::Entity::find()
        .filter(C::Status.eq(Status::Issued.as_str()))
        .filter(C::ExpiresAt.lte(now))
        .order_by_asc(C::ExpiresAt)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(redemption_from)
        .collect()
}
