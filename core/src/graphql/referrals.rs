//! Referrals over GraphQL: codes, who referred whom, refusals, the cap per referrer.

use super::members::MemberObject;
use super::tenants::TenantObject;
use super::{principal, state};
use crate::ids::MemberId;
use crate::members;
use crate::pagination::{PageRequest, encode_cursor};
use crate::referrals::service;
use crate::referrals::{CapPeriod, Referral, Refusal, Status};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ReferralStatus")]
enum StatusEnum {
    /// Attributed; waiting for a qualifying event.
    Pending,
    /// A referral scheme qualified it and the points were credited.
    Qualified,
    /// A guard refused its qualification (see `referralRefusals`).
    Refused,
}

impl From<Status> for StatusEnum {
    fn from(s: Status) -> Self {
        match s {
            Status::Pending => Self::Pending,
            Status::Qualified => Self::Qualified,
            Status::Refused => Self::Refused,
        }
    }
}

pub(crate) struct ReferralObject(Referral);

#[Object(name = "Referral")]
impl ReferralObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn referrer(&self, ctx: &Context<'_>) -> Result<MemberObject> {
        member(ctx, self.0.referrer_id).await
    }
    async fn referee(&self, ctx: &Context<'_>) -> Result<MemberObject> {
        member(ctx, self.0.referee_id).await
    }
    async fn status(&self) -> StatusEnum {
        self.0.status.into()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn qualified_at(&self) -> Option<DateTime<Utc>> {
        self.0.qualified_at
    }
    /// Points the referrer earned from it.
    async fn awarded_points(&self) -> i64 {
        self.0.referrer_points
    }
    /// Points the referee earned from it.
    async fn referee_points(&self) -> i64 {
        self.0.referee_points
    }
    /// The event that qualified it.
    async fn event_id(&self) -> Option<&str> {
        self.0.event_id.as_deref()
    }
}

async fn member(ctx: &Context<'_>, id: MemberId) -> Result<MemberObject> {
    let st = state(ctx);
    let p = principal(ctx)?;
    Ok(MemberObject::from(
        members::service::get(&st.db, &p, id).await?,
    ))
}

pub(crate) async fn code(ctx: &Context<'_>, member: MemberId) -> Result<String> {
    let st = state(ctx);
    let p = principal(ctx)?;
    Ok(service::code_of(&st.db, &p, member).await?)
}

pub(crate) async fn referred_by(
    ctx: &Context<'_>,
    member: MemberId,
) -> Result<Option<ReferralObject>> {
    let st = state(ctx);
    let p = principal(ctx)?;
    Ok(service::referred_by(&st.db, &p, member)
        .await?
        .map(ReferralObject))
}

pub(crate) async fn referrals(
    ctx: &Context<'_>,
    member: MemberId,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, ReferralObject>> {
    let st = state(ctx);
    let p = principal(ctx)?;
    let page = PageRequest::new(first, after.as_deref(), &st.settings.api)?;
    let result = service::referrals(&st.db, &p, member, page).await?;
    let mut conn = Connection::new(page.after.is_some(), result.has_next_page);
    conn.edges.extend(
        result
            .items
            .into_iter()
            .map(|r| Edge::new(encode_cursor(r.id), ReferralObject(r))),
    );
    Ok(conn)
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ReferralStage")]
enum StageEnum {
    Attribution,
    Qualification,
}

#[derive(SimpleObject)]
#[graphql(name = "ReferralRefusal")]
struct RefusalObject {
    id: ID,
    referrer_id: Option<ID>,
    referee_id: ID,
    /// The code the referee came with (the referrer's code).
    code: String,
    /// `unknown-code`, `self-referral`, `already-referred`, `referrer-inactive`,
    /// `referrer-cap-reached`.
    reason: String,
    stage: StageEnum,
    created_at: DateTime<Utc>,
}

impl From<Refusal> for RefusalObject {
    fn from(r: Refusal) -> Self {
        Self {
            id: ID(r.id.to_string()),
            referrer_id: r.referrer_id.map(|m| ID(m.to_string())),
            referee_id: ID(r.referee_id.to_string()),
            code: r.code,
            reason: r.reason,
            stage: if r.stage == "QUALIFICATION" {
                StageEnum::Qualification
            } else {
                StageEnum::Attribution
            },
            created_at: r.created_at,
        }
    }
}

#[derive(Default)]
pub(super) struct ReferralsQuery;

#[Object]
impl ReferralsQuery {
    /// Refused attributions and qualifications, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn referral_refusals(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, RefusalObject>> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let page = PageRequest::new(first, after.as_deref(), &st.settings.api)?;
        let result = service::refusals(&st.db, &p, page).await?;
        let mut conn = Connection::new(page.after.is_some(), result.has_next_page);
        conn.edges.extend(
            result
                .items
                .into_iter()
                .map(|r| Edge::new(encode_cursor(r.id), r.into())),
        );
        Ok(conn)
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ReferralCapPeriod")]
enum PeriodEnum {
    Day,
    Week,
    Month,
    Year,
    Ever,
}

impl From<PeriodEnum> for CapPeriod {
    fn from(p: PeriodEnum) -> Self {
        match p {
            PeriodEnum::Day => Self::Day,
            PeriodEnum::Week => Self::Week,
            PeriodEnum::Month => Self::Month,
            PeriodEnum::Year => Self::Year,
            PeriodEnum::Ever => Self::Ever,
        }
    }
}

#[derive(InputObject)]
struct SetReferralPolicyInput {
    /// Qualified referrals per referrer per period; null: no cap.
    cap_per_referrer: Option<i64>,
    /// In the tenant's time zone; default MONTH.
    cap_period: Option<PeriodEnum>,
}

#[derive(SimpleObject)]
struct SetReferralPolicyPayload {
    tenant: TenantObject,
}

#[derive(Default)]
pub(super) struct ReferralsMutation;

#[Object]
impl ReferralsMutation {
    /// Sets the cap of qualified referrals per referrer per period (ADMIN).
    async fn set_referral_policy(
        &self,
        ctx: &Context<'_>,
        input: SetReferralPolicyInput,
    ) -> Result<SetReferralPolicyPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let cap = input
            .cap_per_referrer
            .map(|n| (n, input.cap_period.map_or(CapPeriod::Month, Into::into)));
        let tenant = service::set_policy(&st.db, &p, cap).await?;
        Ok(SetReferralPolicyPayload {
            tenant: TenantObject(tenant),
        })
    }
}
