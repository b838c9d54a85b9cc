//! Members.

use super::ledger::{BalanceObject, EntryObject, ExpiringObject};
use super::scalars::Date;
use super::{patch, principal, state};
use crate::AppState;
use crate::auth::Principal;
use crate::error::AppError;
use crate::ids::MemberId;
use crate::ledger::Balances;
use crate::ledger::service as ledger;
use crate::members::{
    self, Consents, EnrollRequest, Member, MemberFilter, MemberLimits, MemberPatch, MemberStatus,
};
use crate::pagination::{PageRequest, encode_cursor};
use crate::validate::Patch;
use async_graphql::connection::{Connection, Edge};
use async_graphql::{
    Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, Result, SimpleObject,
};
use chrono::{DateTime, Utc};

fn limits(st: &AppState) -> MemberLimits {
    MemberLimits::from_api(&st.settings.api)
}

/// A malformed id cannot name a member of the caller's tenant: NOT_FOUND, like any other.
fn member_id(id: &ID) -> Result<MemberId, AppError> {
    MemberId::parse(id).ok_or(AppError::not_found("member"))
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "MemberStatus")]
enum StatusEnum {
    Active,
    Deactivated,
    /// Personal data removed; history kept, anonymous.
    Erased,
}

impl From<MemberStatus> for StatusEnum {
    fn from(s: MemberStatus) -> Self {
        match s {
            MemberStatus::Active => Self::Active,
            MemberStatus::Deactivated => Self::Deactivated,
            MemberStatus::Erased => Self::Erased,
        }
    }
}

impl From<StatusEnum> for MemberStatus {
    fn from(s: StatusEnum) -> Self {
        match s {
            StatusEnum::Active => Self::Active,
            StatusEnum::Deactivated => Self::Deactivated,
            StatusEnum::Erased => Self::Erased,
        }
    }
}

/// A member as the API shows it, with its balances when whatever found the member read them
/// too (`member(id) { balance }` in one statement; `recordPurchase` from its transaction);
/// otherwise `balance` reads them.
pub(crate) struct MemberObject(pub(crate) Member, Option<Balances>);

impl From<Member> for MemberObject {
    fn from(m: Member) -> Self {
        Self(m, None)
    }
}

impl MemberObject {
    pub(crate) fn with_balances(m: Member, b: Balances) -> Self {
        Self(m, Some(b))
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Consents")]
struct ConsentsObject {
    /// May receive marketing email.
    email: bool,
    /// May receive marketing text messages.
    sms: bool,
}

#[Object(name = "Member")]
impl MemberObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The brand's own id for this person (CRM or shop customer id).
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    /// E.164.
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn first_name(&self) -> Option<&str> {
        self.0.first_name.as_deref()
    }
    async fn last_name(&self) -> Option<&str> {
        self.0.last_name.as_deref()
    }
    async fn birthday(&self) -> Option<Date> {
        self.0.birthday.map(Date)
    }
    async fn locale(&self) -> Option<&str> {
        self.0.locale.as_deref()
    }
    async fn tags(&self) -> &[String] {
        &self.0.tags
    }
    async fn consents(&self) -> ConsentsObject {
        ConsentsObject {
            email: self.0.consents.email,
            sms: self.0.consents.sms,
        }
    }
    /// Brand-defined fields, a JSON object.
    async fn attributes(&self) -> Json<serde_json::Map<String, serde_json::Value>> {
        Json(self.0.attributes.clone())
    }
    async fn status(&self) -> StatusEnum {
        self.0.status.into()
    }
    async fn enrolled_at(&self) -> DateTime<Utc> {
        self.0.enrolled_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn erased_at(&self) -> Option<DateTime<Utc>> {
        self.0.erased_at
    }
    /// Points balances and lifetime totals.
    async fn balance(&self, ctx: &Context<'_>) -> Result<BalanceObject> {
        let p = principal(ctx)?;
        if let Some(b) = self.1 {
            p.require_tenant(crate::auth::Access::Read)?;
            return Ok(b.into());
        }
        let st = state(ctx);
        Ok(ledger::balances(&st.db, &p, self.0.id).await?.into())
    }
    /// Available points that expire within `withinDays`, per expiry instant, soonest first.
    async fn expiring_points(
        &self,
        ctx: &Context<'_>,
        within_days: i32,
    ) -> Result<Vec<ExpiringObject>> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let rows = ledger::expiring(&st.db, &p, self.0.id, within_days).await?;
        Ok(rows
            .into_iter()
            .map(|(at, points)| ExpiringObject::new(at, points))
            .collect())
    }
    /// Purchase statistics: lifetime spend (net of refunds), count, first and last purchase,
    /// average order value.
    async fn stats(&self, ctx: &Context<'_>) -> Result<super::events::StatsObject> {
        super::events::member_stats(ctx, self.0.id).await
    }
    /// Purchases, newest first, with their lines and awards.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn purchases(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, super::events::PurchaseObject>> {
        super::events::member_purchases(ctx, self.0.id, first, after).await
    }
    /// The code this member shares to refer friends.
    async fn referral_code(&self, ctx: &Context<'_>) -> Result<String> {
        super::referrals::code(ctx, self.0.id).await
    }
    /// Who referred this member, if anyone.
    async fn referred_by(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<super::referrals::ReferralObject>> {
        super::referrals::referred_by(ctx, self.0.id).await
    }
    /// The members this member referred, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn referrals(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, super::referrals::ReferralObject>> {
        super::referrals::referrals(ctx, self.0.id, first, after).await
    }
    /// The member's tier; null when the tenant has no tiers.
    async fn tier(&self, ctx: &Context<'_>) -> Result<Option<super::tiers::MemberTierObject>> {
        super::tiers::member_tier(ctx, self.0.id).await
    }
    /// Where the member stands on the ladder: the metric over the current window, what the
    /// next tier needs and what keeping this one needs; null when the tenant has no tiers.
    async fn tier_progress(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<super::tiers::ProgressObject>> {
        super::tiers::progress(ctx, self.0.id).await
    }
    /// The member's tier changes, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn tier_history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, super::tiers::ChangeObject>> {
        super::tiers::history(ctx, self.0.id, first, after).await
    }
    /// Redemptions, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn redemptions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, super::rewards::RedemptionObject>> {
        super::rewards::member_redemptions(ctx, self.0.id, first, after).await
    }
    /// Ledger entries, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, EntryObject>> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let page = PageRequest::new(first, after.as_deref(), &st.settings.api)?;
        let result = ledger::history(&st.db, &p, self.0.id, page).await?;
        let mut conn = Connection::new(page.after.is_some(), result.has_next_page);
        conn.edges.extend(
            result
                .items
                .into_iter()
                .map(|e| Edge::new(encode_cursor(e.id), EntryObject(e))),
        );
        Ok(conn)
    }
}

#[derive(InputObject)]
struct ConsentsInput {
    email: bool,
    sms: bool,
}

#[derive(InputObject)]
struct EnrollMemberInput {
    /// The brand's id for this person; unique in the tenant.
    external_id: String,
    /// Unique in the tenant when given; compared without case.
    email: Option<String>,
    /// E.164, e.g. +31612345678.
    phone: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    /// Not in the future (in the tenant's time zone).
    birthday: Option<Date>,
    /// BCP 47 language tag, e.g. nl-NL.
    locale: Option<String>,
    tags: Option<Vec<String>>,
    consents: Option<ConsentsInput>,
    /// A JSON object of brand-defined fields.
    attributes: Option<Json<serde_json::Value>>,
    /// Where they joined, e.g. "web", "pos", "app"; the point rules see it (welcome bonuses).
    channel: Option<String>,
    /// A member's referral code: the new member is attributed to them (guards apply).
    referral_code: Option<String>,
    /// Retrying with the same key and input returns the first result and writes nothing.
    idempotency_key: Option<String>,
}

#[derive(SimpleObject)]
struct EnrollMemberPayload {
    member: MemberObject,
}

#[derive(InputObject)]
struct ConsentsPatchInput {
    email: Option<bool>,
    sms: Option<bool>,
}

/// Absent fields stay as they are; an explicit null clears an optional field.
#[derive(InputObject)]
struct UpdateMemberInput {
    id: ID,
    external_id: Option<String>,
    email: MaybeUndefined<String>,
    phone: MaybeUndefined<String>,
    first_name: MaybeUndefined<String>,
    last_name: MaybeUndefined<String>,
    birthday: MaybeUndefined<Date>,
    locale: MaybeUndefined<String>,
    /// Replaces all tags.
    tags: Option<Vec<String>>,
    consents: Option<ConsentsPatchInput>,
    /// Replaces all attributes.
    attributes: Option<Json<serde_json::Value>>,
}

#[derive(SimpleObject)]
struct UpdateMemberPayload {
    member: MemberObject,
}

#[derive(InputObject)]
struct MemberIdInput {
    id: ID,
}

#[derive(SimpleObject)]
struct MemberPayload {
    member: MemberObject,
}

#[derive(InputObject)]
struct MemberFilterInput {
    /// Members carrying this tag.
    tag: Option<String>,
    /// Exact email (case-insensitive).
    email: Option<String>,
    /// Enrolled at or after.
    enrolled_from: Option<DateTime<Utc>>,
    /// Enrolled strictly before.
    enrolled_before: Option<DateTime<Utc>>,
    status: Option<StatusEnum>,
}

#[derive(Default)]
pub(super) struct MemberQuery;

#[Object]
impl MemberQuery {
    async fn member(&self, ctx: &Context<'_>, id: ID) -> Result<MemberObject> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let id = member_id(&id)?;
        if ctx.look_ahead().field("balance").exists() {
            let (m, b) = members::service::get_with_balances(&st.db, &p, id).await?;
            return Ok(MemberObject::with_balances(m, b));
        }
        Ok(MemberObject::from(
            members::service::get(&st.db, &p, id).await?,
        ))
    }

    async fn member_by_external_id(
        &self,
        ctx: &Context<'_>,
        external_id: String,
    ) -> Result<MemberObject> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let m = members::service::get_by_external_id(&st.db, &p, &external_id).await?;
        Ok(MemberObject::from(m))
    }

    /// Members in enrolment order, `first` at most `api.page_size_max`.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<MemberFilterInput>,
    ) -> Result<Connection<String, MemberObject>> {
        let st = state(ctx);
        let p: Principal = principal(ctx)?;
        let page = PageRequest::new(first, after.as_deref(), &st.settings.api)?;
        let filter = match filter {
            None => MemberFilter::default(),
            Some(f) => MemberFilter {
                tag: f.tag.map(|t| t.trim().to_string()),
                email: f.email.map(|e| e.trim().to_lowercase()),
                enrolled_from: f.enrolled_from,
                enrolled_before: f.enrolled_before,
                status: f.status.map(Into::into),
            },
        };
        let result = members::service::list(&st.db, &p, filter, page).await?;
        let mut conn = Connection::new(page.after.is_some(), result.has_next_page);
        conn.edges.extend(
            result
                .items
                .into_iter()
                .map(|m| Edge::new(encode_cursor(m.id.0), MemberObject::from(m))),
        );
        Ok(conn)
    }
}

#[derive(Default)]
pub(super) struct MemberMutation;

#[Object]
impl MemberMutation {
    /// Enrols a member in the caller's tenant (ADMIN or INTEGRATION key).
    async fn enroll_member(
        &self,
        ctx: &Context<'_>,
        input: EnrollMemberInput,
    ) -> Result<EnrollMemberPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let req = EnrollRequest {
            external_id: input.external_id,
            email: input.email,
            phone: input.phone,
            first_name: input.first_name,
            last_name: input.last_name,
            birthday: input.birthday.map(|d| d.0),
            locale: input.locale,
            tags: input.tags.unwrap_or_default(),
            consents: input
                .consents
                .map(|c| Consents {
                    email: c.email,
                    sms: c.sms,
                })
                .unwrap_or_default(),
            attributes: input.attributes.map(|j| j.0),
            channel: input.channel,
            referral_code: input.referral_code,
        };
        let m = members::service::enroll(
            &st.db,
            &st.plugins,
            &p,
            req,
            input.idempotency_key.as_deref(),
            limits(st),
        )
        .await?;
        Ok(EnrollMemberPayload {
            member: MemberObject::from(m),
        })
    }

    async fn update_member(
        &self,
        ctx: &Context<'_>,
        input: UpdateMemberInput,
    ) -> Result<UpdateMemberPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let id = member_id(&input.id)?;
        let consents = input.consents.unwrap_or(ConsentsPatchInput {
            email: None,
            sms: None,
        });
        let change = MemberPatch {
            external_id: input.external_id,
            email: patch(input.email),
            phone: patch(input.phone),
            first_name: patch(input.first_name),
            last_name: patch(input.last_name),
            birthday: match patch(input.birthday) {
                Patch::Keep => Patch::Keep,
                Patch::Clear => Patch::Clear,
                Patch::Set(d) => Patch::Set(d.0),
            },
            locale: patch(input.locale),
            tags: input.tags,
            consent_email: consents.email,
            consent_sms: consents.sms,
            attributes: input.attributes.map(|j| j.0),
        };
        let m = members::service::update(&st.db, &p, id, change, limits(st)).await?;
        Ok(UpdateMemberPayload {
            member: MemberObject::from(m),
        })
    }

    /// Stops a member from earning and redeeming; history stays. Idempotent.
    async fn deactivate_member(
        &self,
        ctx: &Context<'_>,
        input: MemberIdInput,
    ) -> Result<MemberPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let m = members::service::set_status(
            &st.db,
            &p,
            member_id(&input.id)?,
            MemberStatus::Deactivated,
        )
        .await?;
        Ok(MemberPayload {
            member: MemberObject::from(m),
        })
    }

    /// Undoes `deactivateMember`. Idempotent.
    async fn reactivate_member(
        &self,
        ctx: &Context<'_>,
        input: MemberIdInput,
    ) -> Result<MemberPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let m =
            members::service::set_status(&st.db, &p, member_id(&input.id)?, MemberStatus::Active)
                .await?;
        Ok(MemberPayload {
            member: MemberObject::from(m),
        })
    }

    /// Removes the member's personal data for good (right to erasure); the anonymous history
    /// stays. Idempotent.
    async fn erase_member(&self, ctx: &Context<'_>, input: MemberIdInput) -> Result<MemberPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let m = members::service::erase(&st.db, &p, member_id(&input.id)?).await?;
        Ok(MemberPayload {
            member: MemberObject::from(m),
        })
    }
}
