//! Tenants: the brands an agency runs on one server. Every other row belongs to one.
//!
//! This file holds the plain types and the input rules; `repo.rs` the queries and
//! `service.rs` the operations with their permission checks.

pub mod repo;
pub mod service;

use crate::error::{AppError, AppResult};
use crate::ids::TenantId;
use crate::ledger::{ExpiryPolicy, ShortfallPolicy};
use crate::validate::{self, Patch};
use chrono::{DateTime, Utc};
use regex::Regex;
use std::sync::LazyLock;

/// A brand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub timezone: chrono_tz::Tz,
    pub points_name: String,
    /// ISO 4217 code of the programme: purchases, spend statistics and tier thresholds.
    pub currency: String,
    pub branding: Branding,
    pub points_policy: PointsPolicy,
    /// At most this many qualified referrals per referrer per period; `None`: no cap.
    pub referral_cap: Option<(i64, crate::referrals::CapPeriod)>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How a tenant's points behave: when they expire, and what a return does to spent points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PointsPolicy {
    pub expiry: ExpiryPolicy,
    pub shortfall: ShortfallPolicy,
}

impl Default for PointsPolicy {
    fn default() -> Self {
        Self {
            expiry: ExpiryPolicy::Never,
            shortfall: ShortfallPolicy::RecordShortfall,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Branding {
    pub primary_color: Option<String>,
    pub logo_url: Option<String>,
}

/// Input of `createTenant`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTenant {
    pub slug: String,
    pub name: String,
    pub timezone: chrono_tz::Tz,
    pub points_name: String,
    pub currency: String,
    pub branding: Branding,
}

/// Input of `updateTenant`, validated. The slug is permanent: it is in URLs and scripts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantPatch {
    pub name: Option<String>,
    pub timezone: Option<chrono_tz::Tz>,
    pub points_name: Option<String>,
    pub primary_color: Patch<String>,
    pub logo_url: Patch<String>,
}

static SLUG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$").expect("static regex"));

pub const DEFAULT_POINTS_NAME: &str = "points";

pub fn slug(value: &str) -> AppResult<String> {
    let v = value.trim();
    if !SLUG.is_match(v) || v.contains("--") {
        return Err(AppError::validation(
            "slug",
            format!(
                "slug must be 3 to 64 lower-case letters, digits and single dashes, \
                 starting and ending with a letter or digit; got {value:?}"
            ),
        ));
    }
    Ok(v.to_string())
}

/// An ISO 4217 code: three upper-case letters (the programme's currency).
pub fn currency(value: &str) -> AppResult<String> {
    let v = value.trim();
    if v.len() != 3 || !v.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(AppError::validation(
            "currency",
            format!("currency must be an ISO 4217 code such as \"EUR\"; got {value:?}"),
        ));
    }
    Ok(v.to_string())
}

pub const DEFAULT_CURRENCY: &str = "EUR";

pub fn points_name(value: &str) -> AppResult<String> {
    validate::text("pointsName", value, 32)
}

pub fn tenant_name(value: &str) -> AppResult<String> {
    validate::text("name", value, 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["acme", "coffee-stars", "a1b"] {
            assert!(slug(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "ab", "Acme", "-acme", "acme-", "ac--me", "ac me", "acmé",
        ] {
            assert!(slug(bad).is_err(), "{bad}");
        }
    }
}
