//! Rewards: the catalogue, redemptions and their codes.
//!
//! A reward names a reward-type plugin version and its config; the plugin prices each
//! redemption and says what the member gets (effects). Redeeming quotes, holds the points,
//! issues an unguessable code and captures, in one transaction; any failure leaves nothing.
//! A code is ISSUED, then USED once, EXPIRED after `code_valid_days`, or CANCELLED (points
//! back to their lots, stock back).
//!
//! This file holds the plain types and the input rules (no I/O).

pub mod repo;
pub mod service;

use crate::error::{AppError, AppResult};
use crate::ids::{MemberId, PluginVersionId, TenantId};
use crate::validate::{self, Patch};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// Longest validity of a code.
pub const CODE_VALID_DAYS_MAX: i32 = 3650;
/// Validity of a code when the reward does not say.
pub const CODE_VALID_DAYS_DEFAULT: i32 = 30;
/// Largest catalogue price of one unit.
pub const POINTS_COST_MAX: i64 = 1_000_000_000;
/// Largest stock and per-member limit.
pub const UNITS_MAX: i64 = 1_000_000_000;
/// Most effects one quote may carry.
pub const EFFECTS_MAX: usize = 20;

/// A catalogue entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reward {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub name: String,
    pub description: Option<String>,
    pub image_url: Option<String>,
    pub points_cost: i64,
    pub plugin_version_id: PluginVersionId,
    /// Canonical JSON text, accepted by the plugin.
    pub config: String,
    /// Units left; `None`: unlimited.
    pub stock: Option<i64>,
    pub per_member_limit: Option<i64>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub min_tier: Option<String>,
    pub active: bool,
    pub code_valid_days: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `createReward`'s input as received; also what its idempotency key protects.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NewReward {
    pub name: String,
    pub description: Option<String>,
    pub image_url: Option<String>,
    pub points_cost: i64,
    pub plugin_version_id: String,
    pub config: Option<serde_json::Value>,
    pub stock: Option<i64>,
    pub per_member_limit: Option<i64>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub min_tier: Option<String>,
    pub active: Option<bool>,
    pub code_valid_days: Option<i32>,
}

/// `updateReward`'s input: absent fields stay, explicit nulls clear.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RewardPatch {
    pub name: Option<String>,
    pub description: Patch<String>,
    pub image_url: Patch<String>,
    pub points_cost: Option<i64>,
    pub config: Option<serde_json::Value>,
    pub stock: Patch<i64>,
    pub per_member_limit: Patch<i64>,
    pub valid_from: Patch<DateTime<Utc>>,
    pub valid_until: Patch<DateTime<Utc>>,
    pub min_tier: Patch<String>,
    pub active: Option<bool>,
    pub code_valid_days: Option<i32>,
}

/// Where a redemption is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Status {
    Issued,
    Used,
    Expired,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "ISSUED",
            Self::Used => "USED",
            Self::Expired => "EXPIRED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ISSUED" => Some(Self::Issued),
            "USED" => Some(Self::Used),
            "EXPIRED" => Some(Self::Expired),
            "CANCELLED" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// One redemption of a reward by a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redemption {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub reward_id: Uuid,
    pub member_id: MemberId,
    pub code: String,
    pub status: Status,
    pub quantity: i32,
    pub points_cost: i64,
    pub effects: Vec<loyalty_sdk::Effect>,
    pub hold_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub expired_at: Option<DateTime<Utc>>,
}

/// Redemptions of one reward by their status now: the data for a redemption rate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RewardStats {
    pub issued: i64,
    pub used: i64,
    pub expired: i64,
    pub cancelled: i64,
}

impl RewardStats {
    /// Used over all redemptions; 0 when there are none.
    pub fn redemption_rate(&self) -> f64 {
        let all = self.issued + self.used + self.expired + self.cancelled;
        if all == 0 {
            0.0
        } else {
            self.used as f64 / all as f64
        }
    }
}

/// Why a member cannot redeem a reward now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    NotEnoughPoints,
    TierTooLow,
    OutOfStock,
    LimitReached,
    OutsideDates,
    Inactive,
    Rejected,
}

impl Unavailable {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotEnoughPoints => "NOT_ENOUGH_POINTS",
            Self::TierTooLow => "TIER_TOO_LOW",
            Self::OutOfStock => "OUT_OF_STOCK",
            Self::LimitReached => "LIMIT_REACHED",
            Self::OutsideDates => "OUTSIDE_DATES",
            Self::Inactive => "INACTIVE",
            Self::Rejected => "REJECTED",
        }
    }

    pub fn error(self, message: impl Into<String>) -> AppError {
        if self == Self::NotEnoughPoints {
            return AppError::InsufficientPoints(message.into());
        }
        AppError::RewardUnavailable {
            reason: self.as_str(),
            message: message.into(),
        }
    }
}

/// The checks that need no plugin and no balance: switch, dates, tier, stock.
pub fn static_check(
    r: &Reward,
    quantity: i64,
    member_tier: Option<(&crate::tiers::Ladder, usize)>,
    now: DateTime<Utc>,
) -> Result<(), (Unavailable, String)> {
    if !r.active {
        return Err((Unavailable::Inactive, "this reward is not active".into()));
    }
    if r.valid_from.is_some_and(|f| now < f) || r.valid_until.is_some_and(|u| now >= u) {
        return Err((
            Unavailable::OutsideDates,
            "this reward cannot be redeemed at this time".into(),
        ));
    }
    if let Some(min) = &r.min_tier
        && !member_tier
            .and_then(|(ladder, rank)| ladder.rank_of(min).map(|m| rank >= m))
            .unwrap_or(false)
    {
        return Err((
            Unavailable::TierTooLow,
            format!("this reward is for members of tier {min:?} and above"),
        ));
    }
    if let Some(stock) = r.stock
        && stock < quantity
    {
        return Err((
            Unavailable::OutOfStock,
            format!("only {stock} left in stock"),
        ));
    }
    Ok(())
}

fn non_negative(field: &'static str, v: i64, max: i64) -> AppResult<i64> {
    if !(0..=max).contains(&v) {
        return Err(AppError::validation(
            field,
            format!("{field} must be between 0 and {max}"),
        ));
    }
    Ok(v)
}

pub fn name(v: &str) -> AppResult<String> {
    validate::text("name", v, 200)
}

pub fn points_cost(v: i64) -> AppResult<i64> {
    non_negative("pointsCost", v, POINTS_COST_MAX)
}

pub fn stock(v: i64) -> AppResult<i64> {
    non_negative("stock", v, UNITS_MAX)
}

pub fn per_member_limit(v: i64) -> AppResult<i64> {
    if !(1..=UNITS_MAX).contains(&v) {
        return Err(AppError::validation(
            "perMemberLimit",
            format!("perMemberLimit must be between 1 and {UNITS_MAX}"),
        ));
    }
    Ok(v)
}

pub fn code_valid_days(v: i32) -> AppResult<i32> {
    if !(1..=CODE_VALID_DAYS_MAX).contains(&v) {
        return Err(AppError::validation(
            "codeValidDays",
            format!("codeValidDays must be between 1 and {CODE_VALID_DAYS_MAX}"),
        ));
    }
    Ok(v)
}

pub fn min_tier(v: &str) -> AppResult<String> {
    validate::text("minTier", v, 64)
}

pub fn dates(from: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> AppResult<()> {
    if let (Some(f), Some(u)) = (from, until)
        && u <= f
    {
        return Err(AppError::validation(
            "validUntil",
            "validUntil must be after validFrom",
        ));
    }
    Ok(())
}

/// A new code: 15 random characters (75 bits) in three groups, e.g. `K7QF3-M9X2T-ZA8HD`.
pub fn new_code() -> String {
    let raw = crate::codes::random(15);
    format!("{}-{}-{}", &raw[..5], &raw[5..10], &raw[10..])
}

/// A code as typed by a person: upper case, spaces removed.
pub fn normalize_code(v: &str) -> String {
    v.trim()
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_random_and_readable() {
        let a = new_code();
        let b = new_code();
        assert_ne!(a, b);
        assert_eq!(a.len(), 17);
        assert!(
            a.chars()
                .all(|c| c == '-' || crate::codes::ALPHABET.contains(&(c as u8)))
        );
        assert_eq!(normalize_code(" k7qf3-m9x2t "), "K7QF3-M9X2T");
    }

    #[test]
    fn redemption_rate() {
        let s = RewardStats {
            issued: 1,
            used: 2,
            expired: 1,
            cancelled: 0,
        };
        assert!((s.redemption_rate() - 0.5).abs() < 1e-9);
        assert_eq!(RewardStats::default().redemption_rate(), 0.0);
    }
}
