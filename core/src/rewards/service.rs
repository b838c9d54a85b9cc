//! Rewards operations: the catalogue (ADMIN), offers for a member, redemption, codes.

use super::{
    NewReward, Redemption, Reward, RewardPatch, RewardStats, Status, Unavailable, repo,
    static_check,
};
use crate::auth::{Access, Principal, TenantPrincipal};
use crate::config::ApiSettings;
use crate::db::{Batch, Db};
use crate::error::{AppError, AppResult, is_unique_violation};
use crate::events::{self, outbox, pipeline};
use crate::idempotency::{self, IdempotencyKey};
use crate::ids::{MemberId, PluginVersionId};
use crate::ledger::service::{Source, refund_capture_in};
use crate::members;
use crate::pagination::{Page, PageRequest};
use crate::plugins::runtime::PluginRuntime;
use crate::plugins::{
    self, PluginKind, PluginVersion, repo as plugin_repo, service as plugin_service,
};
use crate::tenants::{self, Tenant};
use crate::validate::Patch;
use chrono::{DateTime, Duration, Utc};
use loyalty_sdk as sdk;
use sea_orm::ConnectionTrait;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

async fn reward_type_version(
    db: &Db,
    t: TenantPrincipal,
    id: PluginVersionId,
) -> AppResult<PluginVersion> {
    let v = plugin_repo::find_version(db.reader(), id)
        .await?
        .filter(|v| v.visible_to(t.tenant_id))
        .ok_or(AppError::not_found("plugin version"))?;
    if v.kind != PluginKind::RewardType {
        return Err(AppError::validation(
            "pluginVersionId",
            format!(
                "{} is a {} plugin; a reward needs a reward type",
                v.name,
                v.kind.as_str()
            ),
        ));
    }
    Ok(v)
}

/// `createReward` (ADMIN): the plugin must accept the config.
pub async fn create(
    db: &Db,
    runtime: &PluginRuntime,
    api: &ApiSettings,
    principal: &Principal,
    input: NewReward,
    idempotency_key: Option<&str>,
) -> AppResult<Reward> {
    let t = principal.require_tenant(Access::Manage)?;
    let key = idempotency_key
        .map(|k| IdempotencyKey::new(t.tenant_id.to_string(), k, "createReward", &input))
        .transpose()?;
    if let Some(k) = &key
        && let Some(id) = idempotency::lookup(db.reader(), k).await?
    {
        return stored_reward(db, t, &id).await;
    }
    let version_id = PluginVersionId::parse(&input.plugin_version_id)
        .ok_or(AppError::not_found("plugin version"))?;
    let version = reward_type_version(db, t, version_id).await?;
    let config = plugins::config_text(input.config.as_ref(), runtime.limits().config_bytes_max)?;
    let now = db.now();
    let reward = Reward {
        id: Uuid::now_v7(),
        tenant_id: t.tenant_id,
        name: super::name(&input.name)?,
        description: input
            .description
            .as_deref()
            .map(|d| crate::validate::text("description", d, 2000))
            .transpose()?,
        image_url: input
            .image_url
            .as_deref()
            .map(|u| crate::validate::url("imageUrl", u))
            .transpose()?,
        points_cost: super::points_cost(input.points_cost)?,
        plugin_version_id: version.id,
        config,
        stock: input.stock.map(super::stock).transpose()?,
        per_member_limit: input
            .per_member_limit
            .map(super::per_member_limit)
            .transpose()?,
        valid_from: input.valid_from,
        valid_until: input.valid_until,
        min_tier: input.min_tier.as_deref().map(super::min_tier).transpose()?,
        active: input.active.unwrap_or(true),
        code_valid_days: super::code_valid_days(
            input
                .code_valid_days
                .unwrap_or(super::CODE_VALID_DAYS_DEFAULT),
        )?,
        created_at: now,
        updated_at: now,
    };
    super::dates(reward.valid_from, reward.valid_until)?;
    plugin_service::check_config(db, runtime, &version, &reward.config).await?;

    let txn = db.begin_write().await?;
    if let Some(k) = &key
        && let Err(e) = idempotency::record(&txn, k, &reward.id.to_string()).await
    {
        drop(txn);
        if is_unique_violation(&e) {
            return match idempotency::lookup(db.reader(), k).await? {
                Some(id) => stored_reward(db, t, &id).await,
                None => Err(AppError::internal(e)),
            };
        }
        return Err(e.into());
    }
    if repo::count_rewards(&txn, t.tenant_id).await? >= u64::from(api.rewards_max) {
        return Err(AppError::validation(
            "name",
            format!(
                "this catalogue already has {} rewards (api.rewards_max); deactivate or reuse one",
                api.rewards_max
            ),
        ));
    }
    repo::insert_reward(&txn, &reward).await?;
    txn.commit().await?;
    Ok(reward)
}

async fn stored_reward(db: &Db, t: TenantPrincipal, id: &str) -> AppResult<Reward> {
    let id = Uuid::parse_str(id).map_err(AppError::internal)?;
    repo::find_reward(db.reader(), t.tenant_id, id)
        .await?
        .ok_or(AppError::not_found("reward"))
}

fn patch<T>(p: Patch<T>, current: Option<T>) -> Option<T> {
    match p {
        Patch::Keep => current,
        Patch::Clear => None,
        Patch::Set(v) => Some(v),
    }
}

/// `updateReward` (ADMIN). The same change twice leaves the same state.
pub async fn update(
    db: &Db,
    runtime: &PluginRuntime,
    principal: &Principal,
    id: Uuid,
    p: RewardPatch,
) -> AppResult<Reward> {
    let t = principal.require_tenant(Access::Manage)?;
    let mut r = repo::find_reward(db.reader(), t.tenant_id, id)
        .await?
        .ok_or(AppError::not_found("reward"))?;
    if let Some(n) = &p.name {
        r.name = super::name(n)?;
    }
    r.description = patch(p.description, r.description)
        .map(|d| crate::validate::text("description", &d, 2000))
        .transpose()?;
    r.image_url = patch(p.image_url, r.image_url)
        .map(|u| crate::validate::url("imageUrl", &u))
        .transpose()?;
    if let Some(c) = p.points_cost {
        r.points_cost = super::points_cost(c)?;
    }
    let stock_change = match p.stock {
        Patch::Keep => None,
        Patch::Clear => Some(None),
        Patch::Set(s) => Some(Some(super::stock(s)?)),
    };
    r.per_member_limit = patch(p.per_member_limit, r.per_member_limit)
        .map(super::per_member_limit)
        .transpose()?;
    r.valid_from = patch(p.valid_from, r.valid_from);
    r.valid_until = patch(p.valid_until, r.valid_until);
    super::dates(r.valid_from, r.valid_until)?;
    r.min_tier = patch(p.min_tier, r.min_tier)
        .map(|m| super::min_tier(&m))
        .transpose()?;
    if let Some(a) = p.active {
        r.active = a;
    }
    if let Some(d) = p.code_valid_days {
        r.code_valid_days = super::code_valid_days(d)?;
    }
    if let Some(c) = &p.config {
        let version = reward_type_version(db, t, r.plugin_version_id).await?;
        r.config = plugins::config_text(Some(c), runtime.limits().config_bytes_max)?;
        plugin_service::check_config(db, runtime, &version, &r.config).await?;
    }
    r.updated_at = db.now();
    let txn = db.begin_write().await?;
    repo::save_reward(&txn, &r).await?;
    if let Some(s) = stock_change {
        repo::set_stock(&txn, r.id, s).await?;
    }
    txn.commit().await?;
    repo::find_reward(db.reader(), t.tenant_id, id)
        .await?
        .ok_or(AppError::not_found("reward"))
}

pub async fn get(db: &Db, principal: &Principal, id: Uuid) -> AppResult<Reward> {
    let t = principal.require_tenant(Access::Read)?;
    repo::find_reward(db.reader(), t.tenant_id, id)
        .await?
        .ok_or(AppError::not_found("reward"))
}

/// Every reward of the tenant, active or not.
pub async fn catalogue(
    db: &Db,
    principal: &Principal,
    api: &ApiSettings,
) -> AppResult<Vec<Reward>> {
    let t = principal.require_tenant(Access::Read)?;
    repo::list_rewards(db.reader(), t.tenant_id, false, u64::from(api.rewards_max)).await
}

pub async fn stats(db: &Db, principal: &Principal, reward: Uuid) -> AppResult<RewardStats> {
    principal.require_tenant(Access::Read)?;
    repo::stats(db.reader(), reward).await
}

/// A cart at checkout, for reward types that look at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CartRequest {
    pub total: i64,
    pub lines: Vec<events::LineInput>,
}

/// The plugin's quote, or why it refused.
#[allow(clippy::too_many_arguments)]
async fn quote(
    db: &Db,
    runtime: &PluginRuntime,
    tenant: &Tenant,
    reward: &Reward,
    member: sdk::MemberSnapshot,
    quantity: u32,
    cart: Option<&CartRequest>,
    now: DateTime<Utc>,
) -> AppResult<Result<sdk::RedemptionQuote, (Unavailable, String)>> {
    let plugin = runtime.version(db, reward.plugin_version_id).await?;
    let input = sdk::RewardInput {
        reward: sdk::RewardDefinition {
            id: reward.id.to_string(),
            name: reward.name.clone(),
            base_points_cost: reward.points_cost,
        },
        config: reward.config.clone(),
        member,
        request: sdk::RedemptionRequest {
            quantity,
            cart: cart.map(|c| sdk::Cart {
                lines: c
                    .lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| sdk::PurchaseLine {
                        line_index: i as u32,
                        sku: l.sku.clone(),
                        category: l.category.clone().unwrap_or_default(),
                        quantity: u32::try_from(l.quantity).unwrap_or(0),
                        unit_price_minor: l.unit_price,
                    })
                    .collect(),
                total_minor: c.total,
            }),
            currency: tenant.currency.clone(),
        },
        requested_at_ms: now.timestamp_millis(),
    };
    match runtime.quote_reward(&plugin, input).await? {
        Err(f) => Err(AppError::Plugin(format!(
            "the reward type failed ({}): {}",
            f.kind.code(),
            f.kind
        ))),
        Ok(outcome) => match outcome.output {
            Err(rejection) => Ok(Err((Unavailable::Rejected, rejection.message))),
            Ok(q) => {
                if !(0..=crate::ledger::service::POINTS_PER_ENTRY_MAX).contains(&q.points_cost)
                    || q.effects.len() > super::EFFECTS_MAX
                {
                    return Err(AppError::Plugin(format!(
                        "the reward type returned invalid output: a cost of {} points and {} \
                         effects (at most {})",
                        q.points_cost,
                        q.effects.len(),
                        super::EFFECTS_MAX
                    )));
                }
                Ok(Ok(q))
            }
        },
    }
}

/// One reward as a member sees it: can they redeem one unit now, and if not why.
#[derive(Clone, Debug)]
pub struct Offer {
    pub reward: Reward,
    pub unavailable: Option<(Unavailable, String)>,
    pub points_cost: Option<i64>,
}

/// `rewards(memberId)`: the active rewards with, for each, whether the member can redeem one.
pub async fn offers(
    db: &Db,
    runtime: &PluginRuntime,
    api: &ApiSettings,
    principal: &Principal,
    member: MemberId,
) -> AppResult<Vec<Offer>> {
    let t = principal.require_tenant(Access::Read)?;
    let tenant = tenants::service::get(db, t.tenant_id).await?;
    let member = members::repo::find(db.reader(), t.tenant_id, member)
        .await?
        .ok_or(AppError::not_found("member"))?;
    let now = db.now();
    let (balances, snap) = pipeline::read_snapshot(db.reader(), &tenant, &member).await?;
    let standing = crate::tiers::service::member_rank(db.reader(), tenant.id, member.id).await?;
    let mut out = Vec::new();
    for reward in
        repo::list_rewards(db.reader(), t.tenant_id, true, u64::from(api.rewards_max)).await?
    {
        let mut unavailable =
            static_check(&reward, 1, standing.as_ref().map(|(l, r)| (l, *r)), now).err();
        if unavailable.is_none()
            && let Some(limit) = reward.per_member_limit
            && repo::units_of_member(db.reader(), reward.id, member.id).await? >= limit
        {
            unavailable = Some((
                Unavailable::LimitReached,
                format!("at most {limit} per member"),
            ));
        }
        let mut points_cost = None;
        if unavailable.is_none() {
            match quote(db, runtime, &tenant, &reward, snap.clone(), 1, None, now).await {
                Ok(Ok(q)) => {
                    points_cost = Some(q.points_cost);
                    if balances.available < q.points_cost {
                        unavailable = Some((
                            Unavailable::NotEnoughPoints,
                            format!(
                                "{} points needed, {} available",
                                q.points_cost, balances.available
                            ),
                        ));
                    }
                }
                Ok(Err(rejected)) => unavailable = Some(rejected),
                Err(AppError::Plugin(m)) => unavailable = Some((Unavailable::Rejected, m)),
                Err(e) => return Err(e),
            }
        }
        out.push(Offer {
            reward,
            unavailable,
            points_cost,
        });
    }
    Ok(out)
}

/// What a redemption's idempotency key protects.
#[derive(Serialize)]
struct RedeemHashed<'a> {
    member: String,
    reward: String,
    quantity: i64,
    cart: Option<&'a CartRequest>,
}

/// `redeemReward` (ADMIN or INTEGRATION): quote, hold, issue a code, capture; all or nothing.
#[allow(clippy::too_many_arguments)]
pub async fn redeem(
    db: &Db,
    runtime: &PluginRuntime,
    api: &ApiSettings,
    principal: &Principal,
    member_id: MemberId,
    reward_id: Uuid,
    quantity: i64,
    idempotency_key: &str,
    cart: Option<CartRequest>,
) -> AppResult<Redemption> {
    let t = principal.require_tenant(Access::Write)?;
    let max = i64::from(api.redemption_quantity_max);
    if !(1..=max).contains(&quantity) {
        return Err(AppError::validation(
            "quantity",
            format!("quantity must be between 1 and {max} (api.redemption_quantity_max)"),
        ));
    }
    if let Some(c) = &cart
        && (c.lines.len() > api.purchase_lines_max || !(0..=events::AMOUNT_MAX).contains(&c.total))
    {
        return Err(AppError::validation(
            "cart",
            format!(
                "a cart has a total between 0 and {} and at most {} lines",
                events::AMOUNT_MAX,
                api.purchase_lines_max
            ),
        ));
    }
    let key = IdempotencyKey::new(
        t.tenant_id.to_string(),
        idempotency_key,
        "redeemReward",
        &RedeemHashed {
            member: member_id.to_string(),
            reward: reward_id.to_string(),
            quantity,
            cart: cart.as_ref(),
        },
    )?;
    if let Some(id) = idempotency::lookup(db.reader(), &key).await? {
        return stored_redemption(db, t, &id).await;
    }
    let twin_key = key.clone();
    let attempt = async {
        let tenant = tenants::service::get(db, t.tenant_id).await?;
        let reward = repo::find_reward(db.reader(), t.tenant_id, reward_id)
            .await?
            .ok_or(AppError::not_found("reward"))?;
        let member = members::repo::find(db.reader(), t.tenant_id, member_id)
            .await?
            .ok_or(AppError::not_found("member"))?;
        pipeline::check_active(&member)?;
        let now = db.now();
        let standing =
            crate::tiers::service::member_rank(db.reader(), tenant.id, member.id).await?;
        static_check(
            &reward,
            quantity,
            standing.as_ref().map(|(l, r)| (l, *r)),
            now,
        )
        .map_err(|(u, m)| u.error(m))?;
        let (_, snap) = pipeline::read_snapshot(db.reader(), &tenant, &member).await?;
        let q = quantity as u32;
        let quoted = quote(db, runtime, &tenant, &reward, snap, q, cart.as_ref(), now)
            .await?
            .map_err(|(u, m)| u.error(m))?;

        let id = Uuid::now_v7();
        let code = super::new_code();
        // Under the write lock, on SQLite's write thread.
        let owned = db.clone();
        db.on_writer(async move {
            let db = owned;
            // Reads under the lock (the balances locked, with the lots when points are
            // taken), the checks, then every write in one batch: the key, the hold captured
            // whole, the redemption and its announcement.
            let txn = db.begin_write().await?;
            let spendable = match quoted.points_cost > 0 {
                true => {
                    Some(crate::ledger::service::spendable_in(&txn, &tenant, member.id, now).await?)
                }
                false => {
                    crate::ledger::repo::lock_balances(&txn, tenant.id, member.id, now).await?;
                    None
                }
            };
            if let Some(limit) = reward.per_member_limit {
                let held = repo::units_of_member(&txn, reward.id, member.id).await?;
                if held + quantity > limit {
                    return Err(Unavailable::LimitReached.error(format!(
                        "at most {limit} per member; this member has {held}"
                    )));
                }
            }
            if reward.stock.is_some() && !repo::take_stock(&txn, reward.id, quantity).await? {
                return Err(Unavailable::OutOfStock.error("out of stock"));
            }
            let mut batch = Batch::on(&txn);
            // A key used before fails the batch on its row: a twin committed first.
            idempotency::record_into(&mut batch, &key, &id.to_string());
            let hold_id = match spendable {
                Some(spendable) => {
                    let source = Source {
                        reason: Some(reward.name.clone()),
                        reason_code: Some("redemption".into()),
                        event_id: Some(format!("redemption:{id}")),
                        ..Default::default()
                    };
                    let hold = crate::ledger::service::hold_captured_into(
                        &mut batch,
                        &tenant,
                        member.id,
                        spendable,
                        quoted.points_cost,
                        source,
                        now,
                    )?;
                    Some(hold.id)
                }
                None => None,
            };
            let effects = quoted
                .effects
                .into_iter()
                .map(|e| match e {
                    sdk::Effect::Coupon(prefix) => sdk::Effect::Coupon(format!("{prefix}{code}")),
                    other => other,
                })
                .collect();
            let redemption = Redemption {
                id,
                tenant_id: tenant.id,
                reward_id: reward.id,
                member_id: member.id,
                code,
                status: Status::Issued,
                quantity: quantity as i32,
                points_cost: quoted.points_cost,
                effects,
                hold_id,
                created_at: now,
                expires_at: now + Duration::days(i64::from(reward.code_valid_days)),
                used_at: None,
                cancelled_at: None,
                expired_at: None,
            };
            repo::insert_redemption_into(&mut batch, &redemption)?;
            let announced = vec![("reward.redeemed", announcement(&redemption))];
            outbox::append_all_into(&mut batch, tenant.id, Some(member.id), announced, now);
            batch.run(&txn).await?;
            txn.commit().await?;
            Ok(redemption)
        })
        .await
    }
    .await;
    match attempt {
        Ok(redemption) => Ok(redemption),
        // A twin with the same key that passed the lookup above together with this request
        // and committed first is answered with its redemption, not with the refusal it caused
        // (the last unit of stock, the limit or the points taken, seen on the read connection
        // or under the lock) or the unique violation on the key. Read off the write thread,
        // after the rollback.
        Err(e) => match idempotency::lookup(db.reader(), &twin_key).await? {
            Some(existing) => stored_redemption(db, t, &existing).await,
            None => Err(e),
        },
    }
}

async fn announce(
    conn: &impl ConnectionTrait,
    r: &Redemption,
    kind: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    outbox::append(
        conn,
        r.tenant_id,
        Some(r.member_id),
        kind,
        announcement(r),
        now,
    )
    .await
}

/// The payload of a redemption's outbox records.
fn announcement(r: &Redemption) -> serde_json::Value {
    json!({
        "redemptionId": r.id,
        "rewardId": r.reward_id,
        "quantity": r.quantity,
        "points": r.points_cost,
        "status": r.status.as_str(),
    })
}

async fn stored_redemption(db: &Db, t: TenantPrincipal, id: &str) -> AppResult<Redemption> {
    let id = Uuid::parse_str(id).map_err(AppError::internal)?;
    repo::find_redemption(db.reader(), t.tenant_id, id)
        .await?
        .ok_or(AppError::not_found("redemption"))
}

fn not_issued(r: &Redemption) -> AppError {
    AppError::Conflict(format!(
        "this redemption is {}, not issued",
        r.status.as_str().to_lowercase()
    ))
}

/// `useRedemptionCode` (ADMIN or INTEGRATION): ISSUED -> USED, exactly once.
pub async fn use_code(db: &Db, principal: &Principal, code: &str) -> AppResult<Redemption> {
    let t = principal.require_tenant(Access::Write)?;
    let code = super::normalize_code(code);
    let now = db.now();
    let txn = db.begin_write().await?;
    let r = repo::find_by_code(&txn, t.tenant_id, &code)
        .await?
        .ok_or(AppError::not_found("redemption code"))?;
    if r.status != Status::Issued {
        return Err(not_issued(&r));
    }
    if r.expires_at <= now {
        return Err(AppError::Conflict(
            "this code has expired and can no longer be used".into(),
        ));
    }
    if !repo::transition(&txn, r.id, Status::Used, now).await? {
        return Err(AppError::Conflict("this code was already used".into()));
    }
    let used = Redemption {
        status: Status::Used,
        used_at: Some(now),
        ..r
    };
    announce(&txn, &used, "reward.used", now).await?;
    txn.commit().await?;
    Ok(used)
}

/// `cancelRedemption` (ADMIN or INTEGRATION): ISSUED -> CANCELLED; the points go back to the
/// lots they came from (original expiry), the units back to the stock.
pub async fn cancel(db: &Db, principal: &Principal, id: Uuid) -> AppResult<Redemption> {
    let t = principal.require_tenant(Access::Write)?;
    let tenant = tenants::service::get(db, t.tenant_id).await?;
    let now = db.now();
    let txn = db.begin_write().await?;
    let r = repo::find_redemption(&txn, t.tenant_id, id)
        .await?
        .ok_or(AppError::not_found("redemption"))?;
    crate::ledger::repo::lock_balances(&txn, tenant.id, r.member_id, now).await?;
    if !repo::transition(&txn, r.id, Status::Cancelled, now).await? {
        let current = repo::find_redemption(&txn, t.tenant_id, id)
            .await?
            .ok_or(AppError::not_found("redemption"))?;
        return Err(not_issued(&current));
    }
    if let Some(hold) = r.hold_id {
        refund_capture_in(&txn, &tenant, hold, now).await?;
    }
    repo::put_back_stock(&txn, r.reward_id, i64::from(r.quantity)).await?;
    let cancelled = Redemption {
        status: Status::Cancelled,
        cancelled_at: Some(now),
        ..r
    };
    announce(&txn, &cancelled, "reward.cancelled", now).await?;
    txn.commit().await?;
    Ok(cancelled)
}

pub async fn member_redemptions(
    db: &Db,
    principal: &Principal,
    member: MemberId,
    page: PageRequest,
) -> AppResult<Page<Redemption>> {
    let t = principal.require_tenant(Access::Read)?;
    repo::list_member_redemptions(db.reader(), t.tenant_id, member, page).await
}

/// Marks ISSUED redemptions whose code expired as EXPIRED (points are not returned: the member
/// had the code). One short transaction each, at most `batch_max`.
pub async fn expire_due(db: &Db, batch_max: u64, now: DateTime<Utc>) -> AppResult<u64> {
    let mut expired = 0;
    for r in repo::due_expiries(db.reader(), now, batch_max).await? {
        let txn = db.begin_write().await?;
        if repo::transition(&txn, r.id, Status::Expired, now).await? {
            let done = Redemption {
                status: Status::Expired,
                expired_at: Some(now),
                ..r
            };
            announce(&txn, &done, "reward.expired", now).await?;
            expired += 1;
        }
        txn.commit().await?;
    }
    Ok(expired)
}
