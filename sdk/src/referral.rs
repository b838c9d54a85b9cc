//! Options referral schemes commonly share: when a referee's event qualifies the referral
//! (a minimum order, a number of days after enrolment, the first purchase only), and when the
//! awarded points expire. The first-party schemes (`double-sided`, `first-order-share`,
//! `multi-level`) use them; a scheme's `Config` lists the fields itself (so that
//! `#[serde(deny_unknown_fields)]` works, which `#[serde(flatten)]` would defeat) and hands
//! them to [`Qualification`] and [`check_expiry_days`].

use crate::{Award, EventKind, Expiry, Purchase, ReferralInput};

/// Upper bound of `min_order_minor` (10 000 000 000 000.00 in a two-decimal currency).
pub const MIN_ORDER_MINOR_MAX: i64 = 1_000_000_000_000_000;
/// Upper bound of `within_days` (about ten years).
pub const WITHIN_DAYS_MAX: u32 = 3_650;
/// Upper bound of `expiry_days` (about ten years).
pub const EXPIRY_DAYS_MAX: u32 = 3_650;
/// Milliseconds in a day.
const MS_PER_DAY: i64 = 24 * 60 * 60 * 1_000;

/// The default of `first_purchase_only` (for `#[serde(default = ...)]`).
pub fn default_first_purchase_only() -> bool {
    true
}

/// When a referee's event qualifies the referral.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Qualification {
    /// Smallest purchase total that qualifies, in minor units of the purchase's currency.
    pub min_order_minor: i64,
    /// The purchase must happen at most this many days after the referee enrolled.
    pub within_days: Option<u32>,
    /// Only the referee's first purchase qualifies.
    pub first_purchase_only: bool,
}

impl Qualification {
    /// Checks the options, with messages for the tenant's admin.
    pub fn check(&self) -> Result<(), String> {
        if !(0..=MIN_ORDER_MINOR_MAX).contains(&self.min_order_minor) {
            return Err(format!(
                "min_order_minor must be between 0 and {MIN_ORDER_MINOR_MAX} (minor units: \
                 2000 = 20.00 EUR), got {}",
                self.min_order_minor
            ));
        }
        if let Some(days) = self.within_days
            && !(1..=WITHIN_DAYS_MAX).contains(&days)
        {
            return Err(format!(
                "within_days must be between 1 and {WITHIN_DAYS_MAX}; omit it for no time \
                 limit, got {days}"
            ));
        }
        Ok(())
    }

    /// The purchase that qualifies the referral, or `None` when the event does not.
    ///
    /// The referee's snapshot is taken just before the event, so on their first purchase
    /// `purchase_count` is 0.
    pub fn qualifying_purchase<'a>(&self, input: &'a ReferralInput) -> Option<&'a Purchase> {
        let EventKind::Purchase(purchase) = &input.event.kind else {
            return None;
        };
        if self.first_purchase_only && input.referee.purchase_count > 0 {
            return None;
        }
        if purchase.total_minor < self.min_order_minor {
            return None;
        }
        if let Some(days) = self.within_days {
            // i128: two arbitrary i64 instants cannot overflow the difference.
            let elapsed_ms =
                i128::from(input.event.occurred_at_ms) - i128::from(input.referee.enrolled_at_ms);
            if elapsed_ms > i128::from(days) * i128::from(MS_PER_DAY) {
                return None;
            }
        }
        Some(purchase)
    }
}

/// Checks `expiry_days`, with a message for the tenant's admin.
pub fn check_expiry_days(expiry_days: Option<u32>) -> Result<(), String> {
    match expiry_days {
        Some(days) if !(1..=EXPIRY_DAYS_MAX).contains(&days) => Err(format!(
            "expiry_days must be between 1 and {EXPIRY_DAYS_MAX}; omit it for the programme's \
             default expiry, got {days}"
        )),
        _ => Ok(()),
    }
}

/// One award of `points` (none when `points` is 0 or less: the host refuses such awards),
/// expiring after `expiry_days` when set.
pub fn award(points: i64, reason_code: &str, expiry_days: Option<u32>) -> Vec<Award> {
    if points <= 0 {
        return Vec::new();
    }
    let award = Award::new(points, reason_code);
    vec![match expiry_days {
        Some(days) => award.expiring(Expiry::AfterDays(days)),
        None => award,
    }]
}
