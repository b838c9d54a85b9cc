//! Referrals: members bring friends with their referral code; a bound referral-scheme plugin
//! decides which of the friend's events qualifies the referral and what each side (and, for
//! multi-level schemes, the upline) earns.
//!
//! Guards run in the host, not in plugins: no self-referral (same member, email or phone), a
//! referee counted once ever (UNIQUE per tenant), a cap of qualified referrals per referrer
//! per period. Every refused attribution or qualification is recorded with its reason.

pub mod repo;
pub mod service;

use crate::error::{AppError, AppResult};
use crate::ids::MemberId;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How many referrers up a multi-level scheme sees at most (`upline`).
pub const UPLINE_MAX: usize = 5;
/// Largest cap per referrer.
pub const CAP_MAX: i64 = 1_000_000;

/// The period of the cap per referrer, in the tenant's time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapPeriod {
    Day,
    Week,
    Month,
    Year,
    Ever,
}

impl CapPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
            Self::Ever => "ever",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            "year" => Some(Self::Year),
            "ever" => Some(Self::Ever),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pending,
    Qualified,
    Refused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Qualified => "QUALIFIED",
            Self::Refused => "REFUSED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(Self::Pending),
            "QUALIFIED" => Some(Self::Qualified),
            "REFUSED" => Some(Self::Refused),
            _ => None,
        }
    }
}

/// One attribution: `referee` joined with `referrer`'s code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referral {
    pub id: Uuid,
    pub referrer_id: MemberId,
    pub referee_id: MemberId,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub qualified_at: Option<DateTime<Utc>>,
    pub referrer_points: i64,
    pub referee_points: i64,
    pub event_id: Option<String>,
}

/// A refused attribution (at enrolment) or qualification (at an event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub id: Uuid,
    pub referrer_id: Option<MemberId>,
    pub referee_id: MemberId,
    pub code: String,
    pub reason: String,
    /// `ATTRIBUTION` or `QUALIFICATION`.
    pub stage: &'static str,
    pub created_at: DateTime<Utc>,
}

/// A new referral code: 10 characters of Crockford base 32 (50 random bits).
pub fn new_code() -> String {
    crate::codes::random(10)
}

/// A code as a person typed it: trimmed, upper case, at most 16 characters.
pub fn normalize_code(v: &str) -> AppResult<String> {
    let c: String = v.trim().to_uppercase();
    if c.is_empty() || c.chars().count() > 16 || !c.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Err(AppError::validation(
            "referralCode",
            "referralCode must be 1 to 16 letters or digits",
        ));
    }
    Ok(c)
}

pub fn cap(n: i64) -> AppResult<i64> {
    if !(1..=CAP_MAX).contains(&n) {
        return Err(AppError::validation(
            "capPerReferrer",
            format!("capPerReferrer must be between 1 and {CAP_MAX}"),
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let a = new_code();
        assert_eq!(a.len(), 10);
        assert_ne!(a, new_code());
        assert_eq!(normalize_code(" ab12 ").expect("ok"), "AB12");
        assert!(normalize_code("a-b").is_err());
        assert!(normalize_code("").is_err());
    }
}
