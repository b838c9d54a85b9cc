//! Tiers: a ladder per tenant, every member's place on it, and when it changes.
//!
//! - A **ladder** (`defineTiers`) names a metric (points earned, spend, purchase count), a
//!   window (rolling N months, calendar year, lifetime) in the tenant's time zone, the tiers
//!   from the lowest up (a threshold each, or none for invitation-only tiers, benefits, a
//!   multiplier) and the downgrade rule (grace days, steps at most). Every version is kept;
//!   the newest is the ladder.
//! - The metric is a sum over the member's **activity per local month** (`tier_activity`),
//!   written in the transaction of each purchase, return and award, so a window is one indexed
//!   sum and any metric or window can be computed from the same rows.
//! - **Upgrades** happen in the event's transaction, as soon as the value reaches a higher
//!   threshold. **Downgrades** only at a review: the end of the period in which the member got
//!   the tier plus the grace days (local midnight), at most `steps_max` ranks at once, never
//!   below a manual assignment still in force.
//! - A member without a `member_tiers` row is in the lowest tier (nothing to store for the
//!   many members who never move).
//!
//! This file holds the plain rules (validation, windows, periods); queries are in `repo.rs`,
//! operations in `service.rs`, background work in `jobs.rs`.

pub mod jobs;
pub mod repo;
pub mod service;

use crate::error::{AppError, AppResult};
use crate::ids::{MemberId, TenantId};
use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// 1x in basis points.
pub const ONE_X_BP: u32 = 10_000;
/// Highest multiplier a tier may carry (10x).
pub const MULTIPLIER_BP_MAX: u32 = 100_000;
/// Longest tier name.
pub const NAME_CHARS_MAX: usize = 64;
/// Benefits per tier, and the length of one.
pub const BENEFITS_MAX: usize = 20;
pub const BENEFIT_CHARS_MAX: usize = 200;
/// Rolling windows span 1 to this many months.
pub const WINDOW_MONTHS_MAX: u32 = 36;
/// Grace days after a period end, at most.
pub const GRACE_DAYS_MAX: u32 = 365;
/// `steps_max` at most.
pub const STEPS_MAX_MAX: u32 = 20;
/// Longest reason of a manual assignment.
pub const REASON_CHARS_MAX: usize = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    PointsEarned,
    Spend,
    PurchaseCount,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PointsEarned => "POINTS_EARNED",
            Self::Spend => "SPEND",
            Self::PurchaseCount => "PURCHASE_COUNT",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::PointsEarned, Self::Spend, Self::PurchaseCount]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// The qualification window, in the tenant's time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Window {
    /// The current local month and the `n - 1` before it; the period is the month.
    RollingMonths(u32),
    /// 1 January to 31 December local; the period is the year.
    CalendarYear,
    /// Everything; no period, no review.
    Lifetime,
}

impl Window {
    pub fn kind(self) -> &'static str {
        match self {
            Self::RollingMonths(_) => "ROLLING_MONTHS",
            Self::CalendarYear => "CALENDAR_YEAR",
            Self::Lifetime => "LIFETIME",
        }
    }

    pub fn months(self) -> Option<u32> {
        match self {
            Self::RollingMonths(n) => Some(n),
            _ => None,
        }
    }

    pub fn parse(kind: &str, months: Option<i64>) -> AppResult<Self> {
        let field = "window";
        match (kind, months) {
            ("ROLLING_MONTHS", Some(n)) => {
                let n = u32::try_from(n)
                    .ok()
                    .filter(|n| (1..=WINDOW_MONTHS_MAX).contains(n))
                    .ok_or_else(|| {
                        AppError::validation(
                            "window.months",
                            format!("months must be between 1 and {WINDOW_MONTHS_MAX}"),
                        )
                    })?;
                Ok(Self::RollingMonths(n))
            }
            ("ROLLING_MONTHS", None) => Err(AppError::validation(
                "window.months",
                "a rolling window needs months (1 to 36)",
            )),
            ("CALENDAR_YEAR" | "LIFETIME", Some(_)) => Err(AppError::validation(
                "window.months",
                "months applies to ROLLING_MONTHS only",
            )),
            ("CALENDAR_YEAR", None) => Ok(Self::CalendarYear),
            ("LIFETIME", None) => Ok(Self::Lifetime),
            (other, _) => Err(AppError::validation(
                field,
                format!("unknown window kind {other:?}"),
            )),
        }
    }
}

/// When and how far members go down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downgrade {
    pub grace_days: u32,
    pub steps_max: u32,
}

impl Default for Downgrade {
    fn default() -> Self {
        Self {
            grace_days: 0,
            steps_max: 1,
        }
    }
}

/// One rung of a ladder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierDef {
    pub name: String,
    /// `None`: invitation only (reached by `assignTier` alone).
    pub threshold: Option<i64>,
    pub benefits: Vec<String>,
    pub multiplier_bp: u32,
}

/// A version of a tenant's ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ladder {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub version: i32,
    pub metric: Metric,
    pub window: Window,
    pub downgrade: Downgrade,
    /// Lowest first; the index is the rank.
    pub tiers: Vec<TierDef>,
    pub definition_hash: String,
    pub created_at: DateTime<Utc>,
}

/// What `defineTiers` asks for, before validation.
#[derive(Clone, Debug, Serialize)]
pub struct LadderRequest {
    pub metric: Metric,
    pub window: Window,
    pub downgrade: Downgrade,
    pub tiers: Vec<TierDef>,
}

impl Ladder {
    /// The rank of the tier called `name` (case-insensitive).
    pub fn rank_of(&self, name: &str) -> Option<usize> {
        self.tiers
            .iter()
            .position(|t| t.name.eq_ignore_ascii_case(name))
    }

    /// The highest tier a value reaches by threshold (the lowest tier always).
    pub fn qualified(&self, value: i64) -> usize {
        self.tiers
            .iter()
            .enumerate()
            .filter(|(_, t)| t.threshold.is_some_and(|th| value >= th))
            .map(|(i, _)| i)
            .max()
            .unwrap_or(0)
    }

    /// The next tier above `rank` that a threshold reaches.
    pub fn next_above(&self, rank: usize) -> Option<usize> {
        (rank + 1..self.tiers.len()).find(|&i| self.tiers[i].threshold.is_some())
    }

    /// The end of the qualification period that contains `t`, and the review after it.
    pub fn review_after(&self, tz: Tz, t: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let end = period_end(self.window, tz, t)?;
        let local_end = end.with_timezone(&tz).date_naive();
        let review = local_midnight(
            tz,
            local_end
                .checked_add_days(Days::new(u64::from(self.downgrade.grace_days)))
                .unwrap_or(local_end),
        );
        Some((end, review))
    }
}

/// Validates a ladder request: the lowest tier has threshold 0, thresholds rise, names are
/// unique, benefits and multipliers are in range, at most `tiers_max` tiers.
pub fn validate(req: LadderRequest, tiers_max: usize) -> AppResult<LadderRequest> {
    let field = "tiers";
    if req.tiers.is_empty() {
        return Err(AppError::validation(
            field,
            "a ladder needs at least one tier",
        ));
    }
    if req.tiers.len() > tiers_max {
        return Err(AppError::validation(
            field,
            format!(
                "{} tiers is over the limit of {tiers_max} (api.tiers_max)",
                req.tiers.len()
            ),
        ));
    }
    if !(1..=STEPS_MAX_MAX).contains(&req.downgrade.steps_max) {
        return Err(AppError::validation(
            "downgrade.stepsMax",
            format!("stepsMax must be between 1 and {STEPS_MAX_MAX}"),
        ));
    }
    if req.downgrade.grace_days > GRACE_DAYS_MAX {
        return Err(AppError::validation(
            "downgrade.graceDays",
            format!("graceDays must be between 0 and {GRACE_DAYS_MAX}"),
        ));
    }
    let mut tiers = Vec::with_capacity(req.tiers.len());
    let mut last_threshold: Option<i64> = None;
    for (i, t) in req.tiers.into_iter().enumerate() {
        let name = t.name.trim().to_string();
        if name.is_empty()
            || name.chars().count() > NAME_CHARS_MAX
            || name.chars().any(char::is_control)
        {
            return Err(AppError::validation(
                field,
                format!("tier {i}: a name must be 1 to {NAME_CHARS_MAX} characters"),
            ));
        }
        if tiers
            .iter()
            .any(|o: &TierDef| o.name.eq_ignore_ascii_case(&name))
        {
            return Err(AppError::validation(
                field,
                format!("tier {i}: the name {name:?} is used twice"),
            ));
        }
        match (i, t.threshold) {
            (0, Some(0)) => {}
            (0, _) => {
                return Err(AppError::validation(
                    field,
                    "the first (lowest) tier must have threshold 0: every member starts there",
                ));
            }
            (_, Some(th)) => {
                if th <= last_threshold.unwrap_or(0) {
                    return Err(AppError::validation(
                        field,
                        format!(
                            "tier {name:?}: threshold {th} must be above the threshold of every \
                             tier below it"
                        ),
                    ));
                }
            }
            (_, None) => {}
        }
        if t.threshold.is_some() {
            last_threshold = t.threshold;
        }
        if t.benefits.len() > BENEFITS_MAX {
            return Err(AppError::validation(
                field,
                format!("tier {name:?}: at most {BENEFITS_MAX} benefits"),
            ));
        }
        let mut benefits = Vec::with_capacity(t.benefits.len());
        for b in t.benefits {
            let b = b.trim().to_string();
            if b.is_empty() || b.chars().count() > BENEFIT_CHARS_MAX {
                return Err(AppError::validation(
                    field,
                    format!("tier {name:?}: a benefit must be 1 to {BENEFIT_CHARS_MAX} characters"),
                ));
            }
            benefits.push(b);
        }
        if !(ONE_X_BP..=MULTIPLIER_BP_MAX).contains(&t.multiplier_bp) {
            return Err(AppError::validation(
                field,
                format!("tier {name:?}: the multiplier must be between 1.0 and 10.0"),
            ));
        }
        tiers.push(TierDef {
            name,
            threshold: t.threshold,
            benefits,
            multiplier_bp: t.multiplier_bp,
        });
    }
    Ok(LadderRequest { tiers, ..req })
}

/// A multiplier given as a number (1.25) in basis points (12500).
pub fn multiplier_bp(m: f64) -> AppResult<u32> {
    let bp = (m * f64::from(ONE_X_BP)).round();
    if !bp.is_finite() || bp < f64::from(ONE_X_BP) || bp > f64::from(MULTIPLIER_BP_MAX) {
        return Err(AppError::validation(
            "tiers",
            format!("multiplier {m} must be between 1.0 and 10.0"),
        ));
    }
    Ok(bp as u32)
}

/// A month as one number: `year * 12 + month0`.
pub fn month_index(d: NaiveDate) -> i32 {
    d.year() * 12 + d.month0() as i32
}

/// The tenant-local month of `t`.
pub fn local_month(tz: Tz, t: DateTime<Utc>) -> i32 {
    month_index(t.with_timezone(&tz).date_naive())
}

fn month_start(index: i32) -> NaiveDate {
    let (y, m0) = (index.div_euclid(12), index.rem_euclid(12));
    NaiveDate::from_ymd_opt(y, m0 as u32 + 1, 1).unwrap_or(NaiveDate::MIN)
}

/// The first instant of local date `d` (the earliest, where midnight repeats; the first
/// existing instant where a DST change skips midnight).
pub fn local_midnight(tz: Tz, d: NaiveDate) -> DateTime<Utc> {
    let mut at = d.and_time(chrono::NaiveTime::MIN);
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&at).earliest() {
            return t.with_timezone(&Utc);
        }
        at += chrono::Duration::minutes(30);
    }
    Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN))
}

/// The months (inclusive) the window counts as of `t`; `None` counts everything.
pub fn window_months(window: Window, tz: Tz, t: DateTime<Utc>) -> Option<(i32, i32)> {
    let m = local_month(tz, t);
    match window {
        Window::RollingMonths(n) => Some((m - (n as i32 - 1), m)),
        Window::CalendarYear => {
            let y = m.div_euclid(12);
            Some((y * 12, y * 12 + 11))
        }
        Window::Lifetime => None,
    }
}

/// The end of the period containing `t` (the next local month or year start).
pub fn period_end(window: Window, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let m = local_month(tz, t);
    let next = match window {
        Window::RollingMonths(_) => m + 1,
        Window::CalendarYear => (m.div_euclid(12) + 1) * 12,
        Window::Lifetime => return None,
    };
    Some(local_midnight(tz, month_start(next)))
}

/// Activity of one event, added to its local month.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Activity {
    pub points: i64,
    pub spend: i64,
    pub purchases: i64,
}

impl Activity {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Why a member's tier changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Threshold,
    Review,
    Manual,
    ManualEnded,
    LadderChange,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Threshold => "THRESHOLD",
            Self::Review => "REVIEW",
            Self::Manual => "MANUAL",
            Self::ManualEnded => "MANUAL_ENDED",
            Self::LadderChange => "LADDER_CHANGE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Threshold,
            Self::Review,
            Self::Manual,
            Self::ManualEnded,
            Self::LadderChange,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// A member's stored place on the ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberTier {
    pub member_id: MemberId,
    pub tenant_id: TenantId,
    pub tier: String,
    pub since: DateTime<Utc>,
    pub source: Source,
    /// A manual assignment: a floor until `manual_until` (for good when `None`).
    pub manual_tier: Option<String>,
    pub manual_until: Option<DateTime<Utc>>,
    pub manual_reason: Option<String>,
    /// The end of the period the next review looks back on.
    pub period_end: Option<DateTime<Utc>>,
    pub review_at: Option<DateTime<Utc>>,
    pub ladder_version: i32,
    pub updated_at: DateTime<Utc>,
}

/// One change of a member's tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierChange {
    pub id: Uuid,
    pub member_id: MemberId,
    pub from: Option<String>,
    pub to: String,
    pub up: bool,
    pub source: Source,
    pub reason: Option<String>,
    pub metric_value: i64,
    pub ladder_version: i32,
    pub at: DateTime<Utc>,
}

/// A ladder change's pass over every member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reevaluation {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub ladder_version: i32,
    /// The tenant's first ladder: each member's activity is rebuilt from their purchases and
    /// awards before it is evaluated.
    pub rebuild: bool,
    pub running: bool,
    pub cursor: Option<Uuid>,
    pub members_total: i64,
    pub members_done: i64,
    pub upgraded: i64,
    pub downgraded: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A member's tier as the API shows it.
#[derive(Clone, Debug)]
pub struct MemberTierView {
    pub rank: usize,
    pub def: TierDef,
    /// `None` when the member never moved (the lowest tier since enrolment).
    pub stored: Option<MemberTier>,
}

/// How far the member is from the next tier and from keeping this one.
#[derive(Clone, Debug)]
pub struct Progress {
    pub current_rank: usize,
    pub current: TierDef,
    pub next: Option<(usize, TierDef)>,
    pub metric: Metric,
    pub value: i64,
    pub needed: Option<i64>,
    pub period_ends_at: Option<DateTime<Utc>>,
    pub keep_needed: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn tier(name: &str, threshold: Option<i64>) -> TierDef {
        TierDef {
            name: name.into(),
            threshold,
            benefits: vec![],
            multiplier_bp: ONE_X_BP,
        }
    }

    fn req(tiers: Vec<TierDef>) -> LadderRequest {
        LadderRequest {
            metric: Metric::Spend,
            window: Window::RollingMonths(12),
            downgrade: Downgrade::default(),
            tiers,
        }
    }

    #[test]
    fn months_and_period_ends_follow_the_local_calendar_across_dst() {
        let ams = chrono_tz::Europe::Amsterdam;
        // 22:30 UTC on 31 March is 00:30 on 1 April in Amsterdam (CEST since 29 March).
        assert_eq!(local_month(ams, at("2026-03-31T22:30:00Z")), 2026 * 12 + 3);
        assert_eq!(
            period_end(Window::RollingMonths(1), ams, at("2026-03-15T12:00:00Z")),
            Some(at("2026-03-31T22:00:00Z"))
        );
        assert_eq!(
            period_end(Window::RollingMonths(1), ams, at("2026-02-15T12:00:00Z")),
            Some(at("2026-02-28T23:00:00Z"))
        );
        assert_eq!(
            period_end(Window::CalendarYear, ams, at("2026-07-01T00:00:00Z")),
            Some(at("2026-12-31T23:00:00Z"))
        );
        assert_eq!(
            period_end(Window::Lifetime, ams, at("2026-07-01T00:00:00Z")),
            None
        );
        assert_eq!(
            window_months(Window::RollingMonths(12), ams, at("2026-03-15T12:00:00Z")),
            Some((2025 * 12 + 3, 2026 * 12 + 2))
        );
        // Grace days are local days: 10 days after 1 March 00:00 CET is 11 March 00:00 CET,
        // 10 days after 1 April 00:00 CEST is 11 April 00:00 CEST.
        let mut l = Ladder {
            id: Uuid::nil(),
            tenant_id: TenantId(Uuid::nil()),
            version: 1,
            metric: Metric::Spend,
            window: Window::RollingMonths(1),
            downgrade: Downgrade {
                grace_days: 10,
                steps_max: 1,
            },
            tiers: vec![tier("a", Some(0))],
            definition_hash: String::new(),
            created_at: at("2026-01-01T00:00:00Z"),
        };
        assert_eq!(
            l.review_after(ams, at("2026-03-20T00:00:00Z")),
            Some((at("2026-03-31T22:00:00Z"), at("2026-04-10T22:00:00Z")))
        );
        // 30 local days after 1 March 00:00 CET is 31 March 00:00 CEST = 30 March 22:00 UTC,
        // not 30 x 24 hours (30 March 23:00 UTC).
        l.downgrade.grace_days = 30;
        assert_eq!(
            l.review_after(ams, at("2026-02-10T00:00:00Z")),
            Some((at("2026-02-28T23:00:00Z"), at("2026-03-30T22:00:00Z")))
        );
    }

    #[test]
    fn auckland_new_year_comes_before_utc() {
        let akl = chrono_tz::Pacific::Auckland;
        assert_eq!(local_month(akl, at("2026-12-31T12:00:00Z")), 2027 * 12);
        assert_eq!(
            window_months(Window::CalendarYear, akl, at("2026-12-31T12:00:00Z")),
            Some((2027 * 12, 2027 * 12 + 11))
        );
    }

    #[test]
    fn qualification_skips_invitation_only_tiers() {
        let l = Ladder {
            id: Uuid::nil(),
            tenant_id: TenantId(Uuid::nil()),
            version: 1,
            metric: Metric::Spend,
            window: Window::Lifetime,
            downgrade: Downgrade::default(),
            tiers: vec![
                tier("bronze", Some(0)),
                tier("silver", Some(100)),
                tier("gold", Some(200)),
                tier("vip", None),
            ],
            definition_hash: String::new(),
            created_at: at("2026-01-01T00:00:00Z"),
        };
        assert_eq!(l.qualified(-5), 0);
        assert_eq!(l.qualified(99), 0);
        assert_eq!(l.qualified(100), 1);
        assert_eq!(l.qualified(1_000_000), 2);
        assert_eq!(l.next_above(0), Some(1));
        assert_eq!(l.next_above(2), None);
        assert_eq!(l.rank_of("GOLD"), Some(2));
    }

    #[test]
    fn ladders_are_validated() {
        let field = |r: AppResult<LadderRequest>| match r {
            Err(AppError::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        };
        assert_eq!(field(validate(req(vec![tier("a", Some(5))]), 20)), "tiers");
        assert_eq!(
            field(validate(
                req(vec![tier("a", Some(0)), tier("b", Some(0))]),
                20
            )),
            "tiers"
        );
        assert_eq!(
            field(validate(
                req(vec![tier("a", Some(0)), tier("A ", Some(10))]),
                20
            )),
            "tiers"
        );
        assert_eq!(
            field(validate(
                req(vec![
                    tier("a", Some(0)),
                    tier("b", Some(10)),
                    tier("c", Some(20))
                ]),
                2
            )),
            "tiers"
        );
        let ok = validate(
            req(vec![
                tier("a", Some(0)),
                tier("vip", None),
                tier("b", Some(10)),
            ]),
            20,
        )
        .expect("valid");
        assert_eq!(ok.tiers.len(), 3);
        assert!(Window::parse("ROLLING_MONTHS", Some(37)).is_err());
        assert!(Window::parse("ROLLING_MONTHS", Some(0)).is_err());
        assert!(Window::parse("LIFETIME", Some(3)).is_err());
        assert_eq!(
            Window::parse("ROLLING_MONTHS", Some(12)).expect("ok"),
            Window::RollingMonths(12)
        );
        assert_eq!(multiplier_bp(1.25).expect("ok"), 12_500);
        assert!(multiplier_bp(0.5).is_err());
        assert!(multiplier_bp(f64::NAN).is_err());
    }
}
