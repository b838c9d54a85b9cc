//! The events pipeline over GraphQL: purchases, returns, custom events, the simulation, the
//! member's purchases and statistics, the domain-event outbox and the club templates.

use super::members::MemberObject;
use super::{principal, state};
use crate::error::AppError;
use crate::events::outbox::DomainEvent;
use crate::events::{
    Award, Channel, CustomEventRequest, LineInput, MemberRef, MemberStats, PluginError, Purchase,
    PurchaseLine, PurchaseRequest, PurchaseReturn, ReturnLine, ReturnRequest, service,
};
use crate::ids::MemberId;
use crate::members;
use crate::pagination::{PageRequest, encode_cursor};
use crate::templates;
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "PurchaseChannel")]
enum ChannelEnum {
    Online,
    Store,
    App,
}

impl From<ChannelEnum> for Channel {
    fn from(c: ChannelEnum) -> Self {
        match c {
            ChannelEnum::Online => Self::Online,
            ChannelEnum::Store => Self::Store,
            ChannelEnum::App => Self::App,
        }
    }
}

impl From<Channel> for ChannelEnum {
    fn from(c: Channel) -> Self {
        match c {
            Channel::Online => Self::Online,
            Channel::Store => Self::Store,
            Channel::App => Self::App,
        }
    }
}

fn parse_member(id: &str) -> Result<MemberId, AppError> {
    MemberId::parse(id).ok_or(AppError::not_found("member"))
}

fn member_ref(id: Option<ID>, external_id: Option<String>) -> Result<MemberRef, AppError> {
    let id = id.map(|i| parse_member(&i)).transpose()?;
    MemberRef::from_input(id, external_id)
}

async fn load_member(ctx: &Context<'_>, id: MemberId) -> Result<MemberObject> {
    let st = state(ctx);
    let p = principal(ctx)?;
    Ok(MemberObject::from(
        members::service::get(&st.db, &p, id).await?,
    ))
}

/// Points one point rule gave for an event.
pub(crate) struct AwardObject(Award);

#[Object(name = "Award")]
impl AwardObject {
    async fn points(&self) -> i64 {
        self.0.points
    }
    /// The rule's reason code, e.g. "base-rate".
    async fn reason(&self) -> &str {
        &self.0.reason_code
    }
    /// The plugin that computed it.
    async fn plugin(&self) -> &str {
        &self.0.plugin_name
    }
    async fn plugin_version(&self) -> &str {
        &self.0.plugin_version
    }
    /// The purchase line it belongs to, when the rule said so.
    async fn line_index(&self) -> Option<i32> {
        self.0.line_index
    }
    /// The ledger entry that credited it (null in a simulation).
    async fn entry_id(&self) -> Option<ID> {
        self.0.entry_id.map(|e| ID(e.to_string()))
    }
    /// Points of it taken back by returns.
    async fn clawed_back(&self) -> i64 {
        self.0.clawed_back
    }
}

/// A point rule that failed on an event; the event was recorded without it.
#[derive(SimpleObject)]
#[graphql(name = "PluginError")]
struct PluginErrorObject {
    plugin: String,
    plugin_version: String,
    /// `trap`, `out-of-fuel`, `deadline`, `out-of-memory`, `invalid-output`, `plugin-error`...
    code: String,
    message: String,
}

impl From<PluginError> for PluginErrorObject {
    fn from(e: PluginError) -> Self {
        Self {
            plugin: e.plugin_name,
            plugin_version: e.plugin_version,
            code: e.code,
            message: e.message,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "PurchaseLine")]
struct LineObject {
    line_index: i32,
    sku: String,
    category: Option<String>,
    quantity: i32,
    /// Minor units.
    unit_price: i64,
    returned_quantity: i32,
}

impl From<PurchaseLine> for LineObject {
    fn from(l: PurchaseLine) -> Self {
        Self {
            line_index: l.line_index,
            sku: l.sku,
            category: l.category,
            quantity: l.quantity,
            unit_price: l.unit_price,
            returned_quantity: l.returned_quantity,
        }
    }
}

pub(crate) struct PurchaseObject(Purchase);

#[Object(name = "Purchase")]
impl PurchaseObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn order_id(&self) -> &str {
        &self.0.order_id
    }
    async fn member_id(&self) -> ID {
        ID(self.0.member_id.to_string())
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// Minor units, after discounts.
    async fn total(&self) -> i64 {
        self.0.total
    }
    async fn channel(&self) -> ChannelEnum {
        self.0.channel.into()
    }
    async fn store_id(&self) -> Option<&str> {
        self.0.store_id.as_deref()
    }
    async fn lines(&self) -> Vec<LineObject> {
        self.0.lines.iter().cloned().map(Into::into).collect()
    }
    /// Refunded so far, minor units.
    async fn returned_amount(&self) -> i64 {
        self.0.returned_amount
    }
    /// Points the purchase earned when it was recorded.
    async fn points_earned(&self) -> i64 {
        self.0.points_earned
    }
    /// The awards, per rule and line, with what returns took back.
    async fn awards(&self, ctx: &Context<'_>) -> Result<Vec<AwardObject>> {
        let st = state(ctx);
        let p = principal(ctx)?;
        Ok(service::awards(&st.db, &p, self.0.id)
            .await?
            .into_iter()
            .map(AwardObject)
            .collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A member's purchase statistics.
#[derive(SimpleObject)]
#[graphql(name = "MemberStats")]
pub(crate) struct StatsObject {
    /// Net of refunds, minor units of `currency`.
    lifetime_spend: i64,
    currency: String,
    purchase_count: i64,
    first_purchase_at: Option<DateTime<Utc>>,
    last_purchase_at: Option<DateTime<Utc>>,
    /// lifetimeSpend / purchaseCount, rounded down; 0 before the first purchase.
    average_order_value: i64,
}

impl StatsObject {
    fn new(s: MemberStats, currency: String) -> Self {
        Self {
            lifetime_spend: s.lifetime_spend,
            currency,
            purchase_count: s.purchase_count,
            first_purchase_at: s.first_purchase_at,
            last_purchase_at: s.last_purchase_at,
            average_order_value: s.average_order_value(),
        }
    }
}

pub(crate) async fn member_stats(ctx: &Context<'_>, member: MemberId) -> Result<StatsObject> {
    let st = state(ctx);
    let p = principal(ctx)?;
    let t = p.require_tenant(crate::auth::Access::Read)?;
    let tenant = crate::tenants::service::get(&st.db, t.tenant_id).await?;
    let stats = service::stats(&st.db, &p, member).await?;
    Ok(StatsObject::new(stats, tenant.currency))
}

pub(crate) async fn member_purchases(
    ctx: &Context<'_>,
    member: MemberId,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, PurchaseObject>> {
    let st = state(ctx);
    let p = principal(ctx)?;
    let page = PageRequest::new(first, after.as_deref(), &st.settings.api)?;
    let result = service::purchases(&st.db, &p, member, page).await?;
    let mut conn = Connection::new(page.after.is_some(), result.has_next_page);
    conn.edges.extend(
        result
            .items
            .into_iter()
            .map(|x| Edge::new(encode_cursor(x.id), PurchaseObject(x))),
    );
    Ok(conn)
}

#[derive(SimpleObject)]
#[graphql(name = "PurchaseReturn")]
struct ReturnObject {
    id: ID,
    return_id: String,
    order_id: String,
    /// Refunded amount, minor units.
    amount: i64,
    points_clawed_back: i64,
    created_at: DateTime<Utc>,
}

impl From<PurchaseReturn> for ReturnObject {
    fn from(r: PurchaseReturn) -> Self {
        Self {
            id: ID(r.id.to_string()),
            return_id: r.return_id,
            order_id: r.order_id,
            amount: r.amount,
            points_clawed_back: r.points_clawed_back,
            created_at: r.created_at,
        }
    }
}

/// A fact in the outbox.
struct DomainEventObject(DomainEvent);

#[Object(name = "DomainEvent")]
impl DomainEventObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// e.g. `purchase.recorded`, `points.earned`.
    #[graphql(name = "type")]
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn member_id(&self) -> Option<ID> {
        self.0.member_id.map(|m| ID(m.to_string()))
    }
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(self.0.payload.clone())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(SimpleObject)]
#[graphql(name = "TemplatePlugin")]
struct TemplatePluginObject {
    /// A bundled plugin's name.
    name: String,
    config: Json<serde_json::Value>,
}

#[derive(SimpleObject)]
#[graphql(name = "TemplateReward")]
struct TemplateRewardObject {
    name: String,
    description: String,
    points_cost: i64,
    /// The bundled reward type.
    plugin: String,
    config: Json<serde_json::Value>,
}

#[derive(SimpleObject)]
#[graphql(name = "ClubTemplate")]
struct TemplateObject {
    slug: String,
    name: String,
    description: String,
    /// In run order.
    plugins: Vec<TemplatePluginObject>,
    /// The starting catalogue.
    rewards: Vec<TemplateRewardObject>,
}

#[derive(Default)]
pub(super) struct EventsQuery;

#[Object]
impl EventsQuery {
    /// The caller's tenant's domain events, oldest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(name = "type")] kind: Option<String>,
        member_id: Option<ID>,
    ) -> Result<Connection<String, DomainEventObject>> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let page = PageRequest::new(first, after.as_deref(), &st.settings.api)?;
        let member = member_id.map(|m| parse_member(&m)).transpose()?;
        let result = service::domain_events(&st.db, &p, kind.as_deref(), member, page).await?;
        let mut conn = Connection::new(page.after.is_some(), result.has_next_page);
        conn.edges.extend(
            result
                .items
                .into_iter()
                .map(|e| Edge::new(encode_cursor(e.id), DomainEventObject(e))),
        );
        Ok(conn)
    }

    /// Ready-made clubs for `createTenant(input: {template})` (any key).
    async fn club_templates(&self, ctx: &Context<'_>) -> Result<Vec<TemplateObject>> {
        principal(ctx)?;
        Ok(templates::all()
            .into_iter()
            .map(|t| TemplateObject {
                slug: t.slug.into(),
                name: t.name.into(),
                description: t.description.into(),
                plugins: t
                    .plugins
                    .into_iter()
                    .map(|p| TemplatePluginObject {
                        name: p.name.into(),
                        config: Json(p.config),
                    })
                    .collect(),
                rewards: t
                    .rewards
                    .into_iter()
                    .map(|r| TemplateRewardObject {
                        name: r.name.into(),
                        description: r.description.into(),
                        points_cost: r.points_cost,
                        plugin: r.plugin.into(),
                        config: Json(r.config),
                    })
                    .collect(),
            })
            .collect())
    }
}

#[derive(InputObject)]
struct PurchaseLineInput {
    sku: String,
    category: Option<String>,
    /// 1 or more.
    quantity: i64,
    /// Price of one unit, minor units.
    unit_price: i64,
}

#[derive(InputObject)]
struct RecordPurchaseInput {
    /// The shop's order id: the same order never earns twice.
    order_id: String,
    /// Our member id; or give `externalId`.
    member_id: Option<ID>,
    /// The brand's member id; or give `memberId`.
    external_id: Option<String>,
    /// Defaults to now; at most 5 minutes ahead.
    occurred_at: Option<DateTime<Utc>>,
    /// Must be the tenant's currency.
    currency: String,
    /// Minor units, after discounts.
    total: i64,
    channel: ChannelEnum,
    store_id: Option<String>,
    lines: Vec<PurchaseLineInput>,
}

impl RecordPurchaseInput {
    fn into_request(self) -> Result<PurchaseRequest, AppError> {
        Ok(PurchaseRequest {
            member: member_ref(self.member_id, self.external_id)?,
            order_id: self.order_id,
            occurred_at: self.occurred_at,
            currency: self.currency,
            total: self.total,
            channel: self.channel.into(),
            store_id: self.store_id,
            lines: self
                .lines
                .into_iter()
                .map(|l| LineInput {
                    sku: l.sku,
                    category: l.category,
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                })
                .collect(),
        })
    }
}

#[derive(SimpleObject)]
struct RecordPurchasePayload {
    purchase: PurchaseObject,
    awards: Vec<AwardObject>,
    /// Rules that failed on this purchase; it was recorded without them.
    plugin_errors: Vec<PluginErrorObject>,
    member: MemberObject,
    /// True when this order was recorded before: the stored result, nothing written.
    replayed: bool,
}

#[derive(SimpleObject)]
struct SimulatePurchasePayload {
    awards: Vec<AwardObject>,
    plugin_errors: Vec<PluginErrorObject>,
    /// The member as they are (nothing was written).
    member: MemberObject,
}

#[derive(InputObject)]
struct ReturnLineInput {
    line_index: i64,
    quantity: i64,
}

#[derive(InputObject)]
struct RecordReturnInput {
    order_id: String,
    /// The shop's return id: the same return is recorded once.
    return_id: String,
    /// Returned lines; or give `amount`.
    lines: Option<Vec<ReturnLineInput>>,
    /// Refunded amount in minor units; or give `lines`.
    amount: Option<i64>,
}

#[derive(SimpleObject)]
struct RecordReturnPayload {
    purchase_return: ReturnObject,
    member: MemberObject,
    replayed: bool,
}

#[derive(InputObject)]
struct RecordEventInput {
    member_id: Option<ID>,
    external_id: Option<String>,
    /// Lower-case, e.g. "review.written".
    #[graphql(name = "type")]
    event_type: String,
    /// Unique per tenant: the same event is recorded once.
    event_id: String,
    occurred_at: Option<DateTime<Utc>>,
    /// A JSON object the point rules see.
    properties: Option<Json<serde_json::Value>>,
}

#[derive(SimpleObject)]
struct RecordEventPayload {
    awards: Vec<AwardObject>,
    plugin_errors: Vec<PluginErrorObject>,
    member: MemberObject,
    replayed: bool,
}

fn awards(list: Vec<Award>) -> Vec<AwardObject> {
    list.into_iter().map(AwardObject).collect()
}

fn errors(list: Vec<PluginError>) -> Vec<PluginErrorObject> {
    list.into_iter().map(Into::into).collect()
}

#[derive(Default)]
pub(super) struct EventsMutation;

#[Object]
impl EventsMutation {
    /// Records a purchase and runs the point rules, in one transaction (ADMIN or INTEGRATION).
    async fn record_purchase(
        &self,
        ctx: &Context<'_>,
        input: RecordPurchaseInput,
    ) -> Result<RecordPurchasePayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let req = input.into_request()?;
        let r = service::record_purchase(&st.db, &st.plugins, &st.settings.api, &p, req).await?;
        let member = match r.member {
            Some((member, balances)) => MemberObject::with_balances(member, balances),
            None => load_member(ctx, r.purchase.member_id).await?,
        };
        Ok(RecordPurchasePayload {
            purchase: PurchaseObject(r.purchase),
            awards: awards(r.outcome.awards),
            plugin_errors: errors(r.outcome.errors),
            member,
            replayed: r.outcome.replayed,
        })
    }

    /// What `recordPurchase` would award, with each rule's reason; writes nothing.
    async fn simulate_purchase(
        &self,
        ctx: &Context<'_>,
        input: RecordPurchaseInput,
    ) -> Result<SimulatePurchasePayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let req = input.into_request()?;
        let (outcome, member) =
            service::simulate_purchase(&st.db, &st.plugins, &st.settings.api, &p, req).await?;
        Ok(SimulatePurchasePayload {
            awards: awards(outcome.awards),
            plugin_errors: errors(outcome.errors),
            member: MemberObject::from(member),
        })
    }

    /// Records returned goods and takes back the points they earned (ADMIN or INTEGRATION).
    async fn record_return(
        &self,
        ctx: &Context<'_>,
        input: RecordReturnInput,
    ) -> Result<RecordReturnPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let req = ReturnRequest {
            order_id: input.order_id,
            return_id: input.return_id,
            lines: input.lines.map(|ls| {
                ls.into_iter()
                    .map(|l| ReturnLine {
                        line_index: l.line_index,
                        quantity: l.quantity,
                    })
                    .collect()
            }),
            amount: input.amount,
        };
        let (ret, replayed) = service::record_return(&st.db, &p, req).await?;
        let member = load_member(ctx, ret.member_id).await?;
        Ok(RecordReturnPayload {
            purchase_return: ret.into(),
            member,
            replayed,
        })
    }

    /// Records a custom member action and runs the point rules (ADMIN or INTEGRATION).
    async fn record_event(
        &self,
        ctx: &Context<'_>,
        input: RecordEventInput,
    ) -> Result<RecordEventPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let req = CustomEventRequest {
            member: member_ref(input.member_id, input.external_id)?,
            event_type: input.event_type,
            event_id: input.event_id,
            occurred_at: input.occurred_at,
            properties: input.properties.map(|j| j.0),
        };
        let (outcome, member) =
            service::record_event(&st.db, &st.plugins, &st.settings.api, &p, req).await?;
        let member = load_member(ctx, member).await?;
        Ok(RecordEventPayload {
            awards: awards(outcome.awards),
            plugin_errors: errors(outcome.errors),
            member,
            replayed: outcome.replayed,
        })
    }
}
