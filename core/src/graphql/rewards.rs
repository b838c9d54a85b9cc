//! Rewards over GraphQL: the catalogue, offers for a member, redemptions and their codes.

use super::members::MemberObject;
use super::plugins::PluginVersionObject;
use super::{patch, principal, state};
use crate::error::AppError;
use crate::events::LineInput;
use crate::ids::MemberId;
use crate::members;
use crate::pagination::{PageRequest, encode_cursor};
use crate::plugins::repo as plugin_repo;
use crate::rewards::service::{self, CartRequest, Offer};
use crate::rewards::{NewReward, Redemption, Reward, RewardPatch, Status};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{
    Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, Result, SimpleObject,
};
use chrono::{DateTime, Utc};
use loyalty_sdk as sdk;
use uuid::Uuid;

fn uuid_of(id: &ID, what: &'static str) -> Result<Uuid, AppError> {
    Uuid::parse_str(id).map_err(|_| AppError::not_found(what))
}

fn member_of(id: &ID) -> Result<MemberId, AppError> {
    MemberId::parse(id).ok_or(AppError::not_found("member"))
}

pub(crate) struct RewardObject(Reward);

#[Object(name = "Reward")]
impl RewardObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn image_url(&self) -> Option<&str> {
        self.0.image_url.as_deref()
    }
    /// Catalogue price of one unit (the reward type computes the final cost).
    async fn points_cost(&self) -> i64 {
        self.0.points_cost
    }
    /// The reward-type plugin version that prices it and says what the member gets.
    async fn plugin(&self, ctx: &Context<'_>) -> Result<PluginVersionObject> {
        let st = state(ctx);
        let v = plugin_repo::find_version(st.db.reader(), self.0.plugin_version_id)
            .await?
            .ok_or(AppError::not_found("plugin version"))?;
        Ok(PluginVersionObject(v))
    }
    async fn config(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.config).unwrap_or_default())
    }
    /// Units left; null: unlimited.
    async fn stock(&self) -> Option<i64> {
        self.0.stock
    }
    /// Units one member may hold (cancelled redemptions do not count); null: unlimited.
    async fn per_member_limit(&self) -> Option<i64> {
        self.0.per_member_limit
    }
    async fn valid_from(&self) -> Option<DateTime<Utc>> {
        self.0.valid_from
    }
    async fn valid_until(&self) -> Option<DateTime<Utc>> {
        self.0.valid_until
    }
    async fn min_tier(&self) -> Option<&str> {
        self.0.min_tier.as_deref()
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    /// Days an issued code stays usable.
    async fn code_valid_days(&self) -> i32 {
        self.0.code_valid_days
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Redemptions by their status now, and the share used.
    async fn stats(&self, ctx: &Context<'_>) -> Result<RewardStatsObject> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let s = service::stats(&st.db, &p, self.0.id).await?;
        Ok(RewardStatsObject {
            issued: s.issued,
            used: s.used,
            expired: s.expired,
            cancelled: s.cancelled,
            redemption_rate: s.redemption_rate(),
        })
    }
}

#[derive(SimpleObject)]
#[graphql(name = "RewardStats")]
struct RewardStatsObject {
    /// Codes issued and not yet used, expired or cancelled.
    issued: i64,
    used: i64,
    expired: i64,
    cancelled: i64,
    /// used / all redemptions; 0 when there are none.
    redemption_rate: f64,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "RewardUnavailableReason")]
enum ReasonEnum {
    NotEnoughPoints,
    TierTooLow,
    OutOfStock,
    LimitReached,
    OutsideDates,
    Inactive,
    Rejected,
}

impl From<crate::rewards::Unavailable> for ReasonEnum {
    fn from(u: crate::rewards::Unavailable) -> Self {
        use crate::rewards::Unavailable as U;
        match u {
            U::NotEnoughPoints => Self::NotEnoughPoints,
            U::TierTooLow => Self::TierTooLow,
            U::OutOfStock => Self::OutOfStock,
            U::LimitReached => Self::LimitReached,
            U::OutsideDates => Self::OutsideDates,
            U::Inactive => Self::Inactive,
            U::Rejected => Self::Rejected,
        }
    }
}

struct OfferObject(Offer);

#[Object(name = "RewardOffer")]
impl OfferObject {
    async fn reward(&self) -> RewardObject {
        RewardObject(self.0.reward.clone())
    }
    async fn can_redeem(&self) -> bool {
        self.0.unavailable.is_none()
    }
    async fn reason(&self) -> Option<ReasonEnum> {
        self.0.unavailable.as_ref().map(|(u, _)| (*u).into())
    }
    async fn message(&self) -> Option<&str> {
        self.0.unavailable.as_ref().map(|(_, m)| m.as_str())
    }
    /// The reward type's price of one unit for this member (null when it refused).
    async fn points_cost(&self) -> Option<i64> {
        self.0.points_cost
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "RedemptionStatus")]
enum StatusEnum {
    Issued,
    Used,
    Expired,
    Cancelled,
}

impl From<Status> for StatusEnum {
    fn from(s: Status) -> Self {
        match s {
            Status::Issued => Self::Issued,
            Status::Used => Self::Used,
            Status::Expired => Self::Expired,
            Status::Cancelled => Self::Cancelled,
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "EffectKind")]
enum EffectKindEnum {
    FixedDiscount,
    PercentDiscount,
    FreeItem,
    FreeShipping,
    Coupon,
    CustomPerk,
}

/// What the member receives; the fields that apply to its `kind` are set.
#[derive(SimpleObject)]
#[graphql(name = "RedemptionEffect")]
struct EffectObject {
    kind: EffectKindEnum,
    /// FIXED_DISCOUNT: minor units off.
    amount: Option<i64>,
    currency: Option<String>,
    /// PERCENT_DISCOUNT: 1000 = 10 %.
    basis_points: Option<u32>,
    /// PERCENT_DISCOUNT: the largest discount, minor units.
    cap: Option<i64>,
    /// FREE_ITEM: the SKU.
    sku: Option<String>,
    /// COUPON: the code to give the shop (the plugin's prefix plus this redemption's code).
    coupon_code: Option<String>,
    /// CUSTOM_PERK: its name and details.
    name: Option<String>,
    details: Option<Json<serde_json::Value>>,
}

impl From<&sdk::Effect> for EffectObject {
    fn from(e: &sdk::Effect) -> Self {
        let mut o = EffectObject {
            kind: EffectKindEnum::FreeShipping,
            amount: None,
            currency: None,
            basis_points: None,
            cap: None,
            sku: None,
            coupon_code: None,
            name: None,
            details: None,
        };
        match e {
            sdk::Effect::FixedDiscount(m) => {
                o.kind = EffectKindEnum::FixedDiscount;
                o.amount = Some(m.amount_minor);
                o.currency = Some(m.currency.clone());
            }
            sdk::Effect::PercentDiscount(p) => {
                o.kind = EffectKindEnum::PercentDiscount;
                o.basis_points = Some(p.basis_points);
                o.cap = p.cap.as_ref().map(|c| c.amount_minor);
                o.currency = p.cap.as_ref().map(|c| c.currency.clone());
            }
            sdk::Effect::FreeItem(sku) => {
                o.kind = EffectKindEnum::FreeItem;
                o.sku = Some(sku.clone());
            }
            sdk::Effect::FreeShipping => o.kind = EffectKindEnum::FreeShipping,
            sdk::Effect::Coupon(code) => {
                o.kind = EffectKindEnum::Coupon;
                o.coupon_code = Some(code.clone());
            }
            sdk::Effect::CustomPerk(p) => {
                o.kind = EffectKindEnum::CustomPerk;
                o.name = Some(p.name.clone());
                o.details = Some(Json(
                    serde_json::from_str(&p.details_json).unwrap_or_default(),
                ));
            }
        }
        o
    }
}

pub(crate) struct RedemptionObject(Redemption);

#[Object(name = "Redemption")]
impl RedemptionObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Show it at the till or enter it at checkout; unique and unguessable.
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn status(&self) -> StatusEnum {
        self.0.status.into()
    }
    async fn quantity(&self) -> i32 {
        self.0.quantity
    }
    /// Points debited.
    async fn points_cost(&self) -> i64 {
        self.0.points_cost
    }
    async fn effects(&self) -> Vec<EffectObject> {
        self.0.effects.iter().map(Into::into).collect()
    }
    async fn reward(&self, ctx: &Context<'_>) -> Result<RewardObject> {
        let st = state(ctx);
        let p = principal(ctx)?;
        Ok(RewardObject(
            service::get(&st.db, &p, self.0.reward_id).await?,
        ))
    }
    async fn member_id(&self) -> ID {
        ID(self.0.member_id.to_string())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// After this the code can no longer be used.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    async fn used_at(&self) -> Option<DateTime<Utc>> {
        self.0.used_at
    }
    async fn cancelled_at(&self) -> Option<DateTime<Utc>> {
        self.0.cancelled_at
    }
    async fn expired_at(&self) -> Option<DateTime<Utc>> {
        self.0.expired_at
    }
}

pub(crate) async fn member_redemptions(
    ctx: &Context<'_>,
    member: MemberId,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, RedemptionObject>> {
    let st = state(ctx);
    let p = principal(ctx)?;
    let page = PageRequest::new(first, after.as_deref(), &st.settings.api)?;
    let result = service::member_redemptions(&st.db, &p, member, page).await?;
    let mut conn = Connection::new(page.after.is_some(), result.has_next_page);
    conn.edges.extend(
        result
            .items
            .into_iter()
            .map(|r| Edge::new(encode_cursor(r.id), RedemptionObject(r))),
    );
    Ok(conn)
}

#[derive(Default)]
pub(super) struct RewardsQuery;

#[Object]
impl RewardsQuery {
    /// Every reward of the tenant, active or not.
    async fn catalogue(&self, ctx: &Context<'_>) -> Result<Vec<RewardObject>> {
        let st = state(ctx);
        let p = principal(ctx)?;
        Ok(service::catalogue(&st.db, &p, &st.settings.api)
            .await?
            .into_iter()
            .map(RewardObject)
            .collect())
    }

    /// The active rewards with, for this member, whether they can redeem one now and if not
    /// why.
    async fn rewards(&self, ctx: &Context<'_>, member_id: ID) -> Result<Vec<OfferObject>> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let member = member_of(&member_id)?;
        Ok(
            service::offers(&st.db, &st.plugins, &st.settings.api, &p, member)
                .await?
                .into_iter()
                .map(OfferObject)
                .collect(),
        )
    }
}

#[derive(InputObject)]
struct CreateRewardInput {
    name: String,
    description: Option<String>,
    image_url: Option<String>,
    /// Catalogue price of one unit, passed to the reward type.
    points_cost: i64,
    /// A REWARD_TYPE plugin version (see `plugins(kind: REWARD_TYPE)`).
    plugin_version_id: ID,
    /// The plugin's config; it must accept it.
    config: Option<Json<serde_json::Value>>,
    /// Units available; null: unlimited.
    stock: Option<i64>,
    /// Units one member may hold; null: unlimited.
    per_member_limit: Option<i64>,
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
    /// Only members of this tier may redeem it.
    min_tier: Option<String>,
    /// Default true.
    active: Option<bool>,
    /// Days an issued code stays usable; default 30.
    code_valid_days: Option<i32>,
    idempotency_key: Option<String>,
}

#[derive(SimpleObject)]
struct CreateRewardPayload {
    reward: RewardObject,
}

#[derive(InputObject)]
struct UpdateRewardInput {
    reward_id: ID,
    name: Option<String>,
    description: MaybeUndefined<String>,
    image_url: MaybeUndefined<String>,
    points_cost: Option<i64>,
    config: Option<Json<serde_json::Value>>,
    /// Null: unlimited from now on.
    stock: MaybeUndefined<i64>,
    per_member_limit: MaybeUndefined<i64>,
    valid_from: MaybeUndefined<DateTime<Utc>>,
    valid_until: MaybeUndefined<DateTime<Utc>>,
    min_tier: MaybeUndefined<String>,
    active: Option<bool>,
    code_valid_days: Option<i32>,
}

#[derive(SimpleObject)]
struct UpdateRewardPayload {
    reward: RewardObject,
}

#[derive(InputObject)]
struct CartLineInput {
    sku: String,
    category: Option<String>,
    quantity: i64,
    unit_price: i64,
}

#[derive(InputObject)]
struct CartInput {
    /// Minor units.
    total: i64,
    lines: Vec<CartLineInput>,
}

#[derive(InputObject)]
struct RedeemRewardInput {
    member_id: ID,
    reward_id: ID,
    /// Default 1.
    quantity: Option<i64>,
    /// Required: a retry with the same key returns the same redemption.
    idempotency_key: String,
    /// At checkout: reward types may look at it (minimum spend, qualifying items).
    cart: Option<CartInput>,
}

#[derive(SimpleObject)]
struct RedeemRewardPayload {
    redemption: RedemptionObject,
    member: MemberObject,
}

#[derive(InputObject)]
struct UseRedemptionCodeInput {
    code: String,
}

#[derive(SimpleObject)]
struct UseRedemptionCodePayload {
    redemption: RedemptionObject,
}

#[derive(InputObject)]
struct CancelRedemptionInput {
    redemption_id: ID,
}

#[derive(SimpleObject)]
struct CancelRedemptionPayload {
    redemption: RedemptionObject,
    member: MemberObject,
}

async fn load_member(ctx: &Context<'_>, id: MemberId) -> Result<MemberObject> {
    let st = state(ctx);
    let p = principal(ctx)?;
    Ok(MemberObject::from(
        members::service::get(&st.db, &p, id).await?,
    ))
}

#[derive(Default)]
pub(super) struct RewardsMutation;

#[Object]
impl RewardsMutation {
    /// Adds a reward to the catalogue (ADMIN).
    async fn create_reward(
        &self,
        ctx: &Context<'_>,
        input: CreateRewardInput,
    ) -> Result<CreateRewardPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let new = NewReward {
            name: input.name,
            description: input.description,
            image_url: input.image_url,
            points_cost: input.points_cost,
            plugin_version_id: input.plugin_version_id.to_string(),
            config: input.config.map(|j| j.0),
            stock: input.stock,
            per_member_limit: input.per_member_limit,
            valid_from: input.valid_from,
            valid_until: input.valid_until,
            min_tier: input.min_tier,
            active: input.active,
            code_valid_days: input.code_valid_days,
        };
        let r = service::create(
            &st.db,
            &st.plugins,
            &st.settings.api,
            &p,
            new,
            input.idempotency_key.as_deref(),
        )
        .await?;
        Ok(CreateRewardPayload {
            reward: RewardObject(r),
        })
    }

    /// Changes a reward (ADMIN): absent fields stay, null clears.
    async fn update_reward(
        &self,
        ctx: &Context<'_>,
        input: UpdateRewardInput,
    ) -> Result<UpdateRewardPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let id = uuid_of(&input.reward_id, "reward")?;
        let r = service::update(
            &st.db,
            &st.plugins,
            &p,
            id,
            RewardPatch {
                name: input.name,
                description: patch(input.description),
                image_url: patch(input.image_url),
                points_cost: input.points_cost,
                config: input.config.map(|j| j.0),
                stock: patch(input.stock),
                per_member_limit: patch(input.per_member_limit),
                valid_from: patch(input.valid_from),
                valid_until: patch(input.valid_until),
                min_tier: patch(input.min_tier),
                active: input.active,
                code_valid_days: input.code_valid_days,
            },
        )
        .await?;
        Ok(UpdateRewardPayload {
            reward: RewardObject(r),
        })
    }

    /// Redeems a reward for a member (ADMIN or INTEGRATION): the reward type prices it, the
    /// points are debited and a code is issued, all or nothing.
    async fn redeem_reward(
        &self,
        ctx: &Context<'_>,
        input: RedeemRewardInput,
    ) -> Result<RedeemRewardPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let member = member_of(&input.member_id)?;
        let reward = uuid_of(&input.reward_id, "reward")?;
        let cart = input.cart.map(|c| CartRequest {
            total: c.total,
            lines: c
                .lines
                .into_iter()
                .map(|l| LineInput {
                    sku: l.sku,
                    category: l.category,
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                })
                .collect(),
        });
        let r = service::redeem(
            &st.db,
            &st.plugins,
            &st.settings.api,
            &p,
            member,
            reward,
            input.quantity.unwrap_or(1),
            &input.idempotency_key,
            cart,
        )
        .await?;
        let member = load_member(ctx, r.member_id).await?;
        Ok(RedeemRewardPayload {
            redemption: RedemptionObject(r),
            member,
        })
    }

    /// Marks a code used (ADMIN or INTEGRATION): exactly once.
    async fn use_redemption_code(
        &self,
        ctx: &Context<'_>,
        input: UseRedemptionCodeInput,
    ) -> Result<UseRedemptionCodePayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let r = service::use_code(&st.db, &p, &input.code).await?;
        Ok(UseRedemptionCodePayload {
            redemption: RedemptionObject(r),
        })
    }

    /// Cancels an issued redemption: points back to their lots, units back to the stock.
    async fn cancel_redemption(
        &self,
        ctx: &Context<'_>,
        input: CancelRedemptionInput,
    ) -> Result<CancelRedemptionPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let id = uuid_of(&input.redemption_id, "redemption")?;
        let r = service::cancel(&st.db, &p, id).await?;
        let member = load_member(ctx, r.member_id).await?;
        Ok(CancelRedemptionPayload {
            redemption: RedemptionObject(r),
            member,
        })
    }
}
