//! Tiers over GraphQL: the ladder, its re-evaluation, manual assignment, and the member's
//! tier, progress and history (resolved on `Member`).

use super::members::MemberObject;
use super::{principal, state};
use crate::error::AppError;
use crate::ids::MemberId;
use crate::members;
use crate::pagination::{PageRequest, encode_cursor};
use crate::tiers::service;
use crate::tiers::{
    Downgrade, Ladder, LadderRequest, MemberTierView, Metric, Progress, Reevaluation, Source,
    TierChange, TierDef, Window, multiplier_bp,
};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TierMetric")]
enum MetricEnum {
    /// Points awarded by point rules and referral schemes, less points taken back by returns.
    PointsEarned,
    /// Purchase totals less refunds, in minor units of the tenant's currency.
    Spend,
    /// Purchases; a fully returned purchase does not count.
    PurchaseCount,
}

impl From<MetricEnum> for Metric {
    fn from(m: MetricEnum) -> Self {
        match m {
            MetricEnum::PointsEarned => Self::PointsEarned,
            MetricEnum::Spend => Self::Spend,
            MetricEnum::PurchaseCount => Self::PurchaseCount,
        }
    }
}

impl From<Metric> for MetricEnum {
    fn from(m: Metric) -> Self {
        match m {
            Metric::PointsEarned => Self::PointsEarned,
            Metric::Spend => Self::Spend,
            Metric::PurchaseCount => Self::PurchaseCount,
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TierWindowKind")]
enum WindowKindEnum {
    /// The current local month and the `months - 1` before it; reviewed at each month's end.
    RollingMonths,
    /// 1 January to 31 December in the tenant's time zone; reviewed at the year's end.
    CalendarYear,
    /// Everything ever; never reviewed.
    Lifetime,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TierSource")]
enum SourceEnum {
    /// An event brought the metric to the tier's threshold.
    Threshold,
    /// A review at a period's end plus grace.
    Review,
    /// `assignTier`.
    Manual,
    /// A manual assignment's end date passed.
    ManualEnded,
    /// A ladder change re-evaluated the member.
    LadderChange,
}

impl From<Source> for SourceEnum {
    fn from(s: Source) -> Self {
        match s {
            Source::Threshold => Self::Threshold,
            Source::Review => Self::Review,
            Source::Manual => Self::Manual,
            Source::ManualEnded => Self::ManualEnded,
            Source::LadderChange => Self::LadderChange,
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TierDirection")]
enum DirectionEnum {
    Up,
    Down,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TierReevaluationStatus")]
enum JobStatusEnum {
    Running,
    Done,
}

fn multiplier(bp: u32) -> f64 {
    f64::from(bp) / f64::from(crate::tiers::ONE_X_BP)
}

/// One tier of a ladder.
pub(crate) struct TierObject {
    rank: usize,
    def: TierDef,
}

#[Object(name = "Tier")]
impl TierObject {
    async fn name(&self) -> &str {
        &self.def.name
    }
    /// 0 for the lowest tier; higher is better.
    async fn rank(&self) -> i32 {
        self.rank as i32
    }
    /// The metric value that reaches it; null for invitation-only tiers.
    async fn threshold(&self) -> Option<i64> {
        self.def.threshold
    }
    /// Reached only by `assignTier`.
    async fn invitation_only(&self) -> bool {
        self.def.threshold.is_none()
    }
    async fn benefits(&self) -> &[String] {
        &self.def.benefits
    }
    /// Points multiplier plugins see (`member.tier.multiplier-bp` = multiplier × 10000).
    async fn multiplier(&self) -> f64 {
        multiplier(self.def.multiplier_bp)
    }
}

#[derive(SimpleObject)]
#[graphql(name = "TierWindow")]
struct WindowObject {
    kind: WindowKindEnum,
    /// For ROLLING_MONTHS.
    months: Option<i32>,
}

#[derive(SimpleObject)]
#[graphql(name = "TierDowngrade")]
struct DowngradeObject {
    /// Days after a period's end (local calendar days) before the review.
    grace_days: i32,
    /// Most ranks one review goes down.
    steps_max: i32,
}

struct LadderObject(Ladder);

#[Object(name = "TierLadder")]
impl LadderObject {
    /// 1 for the first ladder, one more for each change.
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn metric(&self) -> MetricEnum {
        self.0.metric.into()
    }
    async fn window(&self) -> WindowObject {
        WindowObject {
            kind: match self.0.window {
                Window::RollingMonths(_) => WindowKindEnum::RollingMonths,
                Window::CalendarYear => WindowKindEnum::CalendarYear,
                Window::Lifetime => WindowKindEnum::Lifetime,
            },
            months: self.0.window.months().map(|m| m as i32),
        }
    }
    async fn downgrade(&self) -> DowngradeObject {
        DowngradeObject {
            grace_days: self.0.downgrade.grace_days as i32,
            steps_max: self.0.downgrade.steps_max as i32,
        }
    }
    /// Lowest first.
    async fn tiers(&self) -> Vec<TierObject> {
        self.0
            .tiers
            .iter()
            .enumerate()
            .map(|(rank, def)| TierObject {
                rank,
                def: def.clone(),
            })
            .collect()
    }
    async fn defined_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The re-evaluation of every member this version started (null for a template's ladder).
    async fn reevaluation(&self, ctx: &Context<'_>) -> Result<Option<ReevaluationObject>> {
        let st = state(ctx);
        Ok(
            service::reevaluation_of(&st.db, self.0.tenant_id, self.0.version)
                .await?
                .map(ReevaluationObject),
        )
    }
}

struct ReevaluationObject(Reevaluation);

#[Object(name = "TierReevaluation")]
impl ReevaluationObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn ladder_version(&self) -> i32 {
        self.0.ladder_version
    }
    async fn status(&self) -> JobStatusEnum {
        if self.0.running {
            JobStatusEnum::Running
        } else {
            JobStatusEnum::Done
        }
    }
    /// Members when the job started (members enrolled since are counted as they are done).
    async fn members_total(&self) -> i64 {
        self.0.members_total
    }
    async fn members_done(&self) -> i64 {
        self.0.members_done
    }
    async fn upgraded(&self) -> i64 {
        self.0.upgraded
    }
    async fn downgraded(&self) -> i64 {
        self.0.downgraded
    }
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
}

/// The member's tier.
pub(crate) struct MemberTierObject(MemberTierView);

#[Object(name = "MemberTier")]
impl MemberTierObject {
    async fn name(&self) -> &str {
        &self.0.def.name
    }
    async fn rank(&self) -> i32 {
        self.0.rank as i32
    }
    async fn benefits(&self) -> &[String] {
        &self.0.def.benefits
    }
    async fn multiplier(&self) -> f64 {
        multiplier(self.0.def.multiplier_bp)
    }
    /// When the member got it; null for the lowest tier held since enrolment.
    async fn since(&self) -> Option<DateTime<Utc>> {
        self.0.stored.as_ref().map(|s| s.since)
    }
    async fn source(&self) -> SourceEnum {
        self.0
            .stored
            .as_ref()
            .map_or(SourceEnum::Threshold, |s| s.source.into())
    }
    /// The tier assigned by hand and kept as a floor, if an assignment is in force.
    async fn assigned_tier(&self) -> Option<&str> {
        self.0
            .stored
            .as_ref()
            .and_then(|s| s.manual_tier.as_deref())
    }
    /// The end of a manual assignment (null: for good, or none).
    async fn assigned_until(&self) -> Option<DateTime<Utc>> {
        self.0.stored.as_ref().and_then(|s| s.manual_until)
    }
    async fn assignment_reason(&self) -> Option<&str> {
        self.0
            .stored
            .as_ref()
            .and_then(|s| s.manual_reason.as_deref())
    }
    /// When the tier is next reviewed (a period's end plus grace, or an assignment's end).
    async fn review_at(&self) -> Option<DateTime<Utc>> {
        self.0.stored.as_ref().and_then(|s| s.review_at)
    }
}

pub(crate) struct ProgressObject(Progress);

#[Object(name = "TierProgress")]
impl ProgressObject {
    async fn current(&self) -> TierObject {
        TierObject {
            rank: self.0.current_rank,
            def: self.0.current.clone(),
        }
    }
    /// The next tier a threshold reaches; null at the top.
    async fn next(&self) -> Option<TierObject> {
        self.0.next.as_ref().map(|(rank, def)| TierObject {
            rank: *rank,
            def: def.clone(),
        })
    }
    async fn metric(&self) -> MetricEnum {
        self.0.metric.into()
    }
    /// The metric over the current window.
    async fn metric_value(&self) -> i64 {
        self.0.value
    }
    /// What is missing to reach `next`.
    async fn needed(&self) -> Option<i64> {
        self.0.needed
    }
    /// The end of the current qualification period; null for LIFETIME.
    async fn period_ends_at(&self) -> Option<DateTime<Utc>> {
        self.0.period_ends_at
    }
    /// What is missing, by the period's end, to keep the current tier at the next review;
    /// null for the lowest tier, invitation-only tiers and LIFETIME.
    async fn keep_needed(&self) -> Option<i64> {
        self.0.keep_needed
    }
}

#[derive(SimpleObject)]
#[graphql(name = "TierChange")]
pub(crate) struct ChangeObject {
    from: Option<String>,
    to: String,
    direction: DirectionEnum,
    source: SourceEnum,
    reason: Option<String>,
    metric_value: i64,
    ladder_version: i32,
    at: DateTime<Utc>,
}

impl From<TierChange> for ChangeObject {
    fn from(c: TierChange) -> Self {
        Self {
            from: c.from,
            to: c.to,
            direction: if c.up {
                DirectionEnum::Up
            } else {
                DirectionEnum::Down
            },
            source: c.source.into(),
            reason: c.reason,
            metric_value: c.metric_value,
            ladder_version: c.ladder_version,
            at: c.at,
        }
    }
}

pub(crate) async fn member_tier(
    ctx: &Context<'_>,
    member: MemberId,
) -> Result<Option<MemberTierObject>> {
    let st = state(ctx);
    let p = principal(ctx)?;
    Ok(service::member_tier(&st.db, &p, member)
        .await?
        .map(MemberTierObject))
}

pub(crate) async fn progress(
    ctx: &Context<'_>,
    member: MemberId,
) -> Result<Option<ProgressObject>> {
    let st = state(ctx);
    let p = principal(ctx)?;
    Ok(service::progress(&st.db, &p, member)
        .await?
        .map(ProgressObject))
}

pub(crate) async fn history(
    ctx: &Context<'_>,
    member: MemberId,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, ChangeObject>> {
    let st = state(ctx);
    let p = principal(ctx)?;
    let page = PageRequest::new(first, after.as_deref(), &st.settings.api)?;
    let result = service::history(&st.db, &p, member, page).await?;
    let mut conn = Connection::new(page.after.is_some(), result.has_next_page);
    conn.edges.extend(
        result
            .items
            .into_iter()
            .map(|c| Edge::new(encode_cursor(c.id), c.into())),
    );
    Ok(conn)
}

#[derive(Default)]
pub(super) struct TiersQuery;

#[Object]
impl TiersQuery {
    /// The tenant's tier ladder (its newest version); null before `defineTiers`.
    async fn tier_ladder(&self, ctx: &Context<'_>) -> Result<Option<LadderObject>> {
        let st = state(ctx);
        let p = principal(ctx)?;
        Ok(service::ladder(&st.db, &p).await?.map(LadderObject))
    }
}

#[derive(InputObject)]
struct TierWindowInput {
    kind: WindowKindEnum,
    /// 1 to 36, for ROLLING_MONTHS only.
    months: Option<i32>,
}

#[derive(InputObject)]
struct TierDowngradeInput {
    /// Local calendar days after a period's end before the review, 0 to 365.
    grace_days: i32,
    /// Most ranks one review goes down, at least 1.
    steps_max: i32,
}

#[derive(InputObject)]
struct TierInput {
    /// 1 to 64 characters, unique in the ladder (case-insensitive).
    name: String,
    /// The metric value that reaches it: 0 for the first (lowest) tier, rising after it;
    /// null for an invitation-only tier.
    threshold: Option<i64>,
    /// What members of the tier get, for people to read (at most 20).
    #[graphql(default)]
    benefits: Vec<String>,
    /// 1.0 to 10.0 (default 1.0); plugins see it as basis points.
    multiplier: Option<f64>,
}

#[derive(InputObject)]
struct DefineTiersInput {
    metric: MetricEnum,
    window: TierWindowInput,
    /// Lowest first.
    tiers: Vec<TierInput>,
    /// Default: no grace, one step.
    downgrade: Option<TierDowngradeInput>,
}

#[derive(SimpleObject)]
struct DefineTiersPayload {
    ladder: LadderObject,
    /// The re-evaluation of every member the change started; null when the definition is the
    /// same as the current one (nothing changed).
    reevaluation: Option<ReevaluationObject>,
}

#[derive(InputObject)]
struct AssignTierInput {
    member_id: ID,
    /// A tier of the ladder, invitation-only tiers included.
    tier: String,
    /// Why (1 to 500 characters), kept in the member's tier history.
    reason: String,
    /// When the assignment ends (then the member goes to the tier the metric reaches);
    /// null: for good.
    until: Option<DateTime<Utc>>,
}

#[derive(SimpleObject)]
struct AssignTierPayload {
    member: MemberObject,
}

#[derive(Default)]
pub(super) struct TiersMutation;

#[Object]
impl TiersMutation {
    /// Defines the tenant's tier ladder (ADMIN). A change makes a new version and starts a
    /// re-evaluation of every member in the background; the same definition again changes
    /// nothing.
    async fn define_tiers(
        &self,
        ctx: &Context<'_>,
        input: DefineTiersInput,
    ) -> Result<DefineTiersPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let window = Window::parse(
            match input.window.kind {
                WindowKindEnum::RollingMonths => "ROLLING_MONTHS",
                WindowKindEnum::CalendarYear => "CALENDAR_YEAR",
                WindowKindEnum::Lifetime => "LIFETIME",
            },
            input.window.months.map(i64::from),
        )?;
        let downgrade = match input.downgrade {
            None => Downgrade::default(),
            Some(d) => Downgrade {
                grace_days: u32::try_from(d.grace_days).map_err(|_| {
                    AppError::validation("downgrade.graceDays", "graceDays must be 0 or more")
                })?,
                steps_max: u32::try_from(d.steps_max).map_err(|_| {
                    AppError::validation("downgrade.stepsMax", "stepsMax must be 1 or more")
                })?,
            },
        };
        let tiers = input
            .tiers
            .into_iter()
            .map(|t| {
                Ok(TierDef {
                    name: t.name,
                    threshold: t.threshold,
                    benefits: t.benefits,
                    multiplier_bp: multiplier_bp(t.multiplier.unwrap_or(1.0))?,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        let (ladder, job) = service::define(
            &st.db,
            &st.settings.api,
            &p,
            LadderRequest {
                metric: input.metric.into(),
                window,
                downgrade,
                tiers,
            },
        )
        .await?;
        Ok(DefineTiersPayload {
            ladder: LadderObject(ladder),
            reevaluation: job.map(ReevaluationObject),
        })
    }

    /// Puts a member in a tier by hand (ADMIN), invitation-only tiers included. The tier is
    /// a floor until `until`: reviews never take the member below it, thresholds may lift
    /// the member higher.
    async fn assign_tier(
        &self,
        ctx: &Context<'_>,
        input: AssignTierInput,
    ) -> Result<AssignTierPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let member = MemberId::parse(&input.member_id).ok_or(AppError::not_found("member"))?;
        service::assign(
            &st.db,
            &p,
            service::AssignRequest {
                member,
                tier: input.tier,
                reason: input.reason,
                until: input.until,
            },
        )
        .await?;
        Ok(AssignTierPayload {
            member: MemberObject::from(members::service::get(&st.db, &p, member).await?),
        })
    }
}
