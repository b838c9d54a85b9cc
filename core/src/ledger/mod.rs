//! Points ledger: double entry, immutable, with lots.
//!
//! ## Accounts
//! Each member has three accounts, `available`, `pending` (earned, locked until a date) and
//! `held` (reserved by a redemption in progress); their balances are kept in one row per member
//! (`ledger_balances`), which is also the lock a write takes, so one member's writes are
//! serialised and two members never contend. Each tenant has four system accounts:
//! `issuance` (goes negative by what was issued), `redemption`, `breakage` (expired) and
//! `shortfall` (clawed-back points that had already been spent). System accounts have **no
//! cached balance**: they are the sum of their lines, so no write ever locks them.
//!
//! ## Entries, lines, lots
//! An entry has two or more lines that sum to zero and is never changed. Every credit to
//! `available` or `pending` creates a *lot* (`original`, `remaining`, `available_at`,
//! `expires_at`); every debit consumes lots soonest-expiring first and records *allocations*,
//! so a void or a reversal puts points back into the very lots they came from, with their
//! original expiry.
//!
//! ## Invariants (checked by `loyalty ledger audit` and the property tests)
//! 1. Per tenant, the sum of all account balances is 0.
//! 2. Every entry has >= 2 lines, sums to 0, has no zero line.
//! 3. Cached balance == sum of the account's lines.
//! 4. `pending` and `held` never go negative; `available` only under the allow-negative
//!    shortfall policy; 0 <= lot.remaining <= lot.original.
//! 5. Sum of remaining of available lots == max(available, 0) (likewise pending).
//! 6. A hold resolves once; capture <= hold; an entry is reversed at most once.
//! 7. -issuance == outstanding + redeemed + expired + shortfall.
//!
//! This file holds the plain rules; `repo.rs` the queries; `service.rs` the operations.

pub mod audit;
pub mod jobs;
pub mod repo;
pub mod seed;
pub mod service;

use crate::error::{AppError, AppResult};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use uuid::Uuid;

/// An account of the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Account {
    Available,
    Pending,
    Held,
    Issuance,
    Redemption,
    Breakage,
    Shortfall,
}

impl Account {
    pub const ALL: [Account; 7] = [
        Account::Available,
        Account::Pending,
        Account::Held,
        Account::Issuance,
        Account::Redemption,
        Account::Breakage,
        Account::Shortfall,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Account::Available => "available",
            Account::Pending => "pending",
            Account::Held => "held",
            Account::Issuance => "issuance",
            Account::Redemption => "redemption",
            Account::Breakage => "breakage",
            Account::Shortfall => "shortfall",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Member accounts carry the member's id on their lines; system accounts do not.
    pub fn is_member(self) -> bool {
        matches!(self, Account::Available | Account::Pending | Account::Held)
    }
}

/// What an entry did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Earn,
    Unlock,
    Adjust,
    Hold,
    Capture,
    Void,
    Expire,
    Clawback,
    Reversal,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Earn => "EARN",
            EntryKind::Unlock => "UNLOCK",
            EntryKind::Adjust => "ADJUST",
            EntryKind::Hold => "HOLD",
            EntryKind::Capture => "CAPTURE",
            EntryKind::Void => "VOID",
            EntryKind::Expire => "EXPIRE",
            EntryKind::Clawback => "CLAWBACK",
            EntryKind::Reversal => "REVERSAL",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            EntryKind::Earn,
            EntryKind::Unlock,
            EntryKind::Adjust,
            EntryKind::Hold,
            EntryKind::Capture,
            EntryKind::Void,
            EntryKind::Expire,
            EntryKind::Clawback,
            EntryKind::Reversal,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One line of an entry: `amount` (never 0) to `account`, optionally touching a lot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub account: Account,
    pub amount: i64,
    pub lot: Option<Uuid>,
}

impl Line {
    pub fn new(account: Account, amount: i64) -> Self {
        Self {
            account,
            amount,
            lot: None,
        }
    }

    pub fn with_lot(account: Account, amount: i64, lot: Uuid) -> Self {
        Self {
            account,
            amount,
            lot: Some(lot),
        }
    }
}

/// Invariant 2, asserted before every write: >= 2 lines, no zero line, sum 0.
pub fn check_lines(lines: &[Line]) -> AppResult<()> {
    let sum = lines
        .iter()
        .try_fold(0i64, |acc, l| acc.checked_add(l.amount));
    if lines.len() < 2 || lines.iter().any(|l| l.amount == 0) || sum != Some(0) {
        return Err(AppError::internal(anyhow::anyhow!(
            "unbalanced entry refused: {lines:?}"
        )));
    }
    Ok(())
}

/// A member's cached balances and lifetime counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balances {
    pub available: i64,
    pub pending: i64,
    pub held: i64,
    pub lifetime_earned: i64,
    pub lifetime_redeemed: i64,
    pub lifetime_expired: i64,
}

impl Balances {
    /// Applies the member lines of an entry with checked arithmetic.
    pub fn apply(mut self, lines: &[Line]) -> AppResult<Self> {
        for l in lines {
            let slot = match l.account {
                Account::Available => &mut self.available,
                Account::Pending => &mut self.pending,
                Account::Held => &mut self.held,
                _ => continue,
            };
            *slot = slot.checked_add(l.amount).ok_or_else(overflow)?;
        }
        Ok(self)
    }

    /// Invariant 4 for the cached balances.
    pub fn check(&self, allow_negative: bool) -> AppResult<()> {
        if self.pending < 0 || self.held < 0 || (!allow_negative && self.available < 0) {
            return Err(AppError::internal(anyhow::anyhow!(
                "balances would break invariant 4: {self:?}"
            )));
        }
        Ok(())
    }
}

pub fn overflow() -> AppError {
    AppError::validation("points", "the amount overflows a 64-bit points balance")
}

/// When points expire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryPolicy {
    Never,
    /// N days after they were earned.
    DaysAfterEarn(u32),
    /// At the end of the month, N months after the month they were earned in (tenant's zone).
    EndOfMonthAfter(u32),
}

impl ExpiryPolicy {
    /// Longest expiry horizon accepted (about 10 years), so dates stay in range.
    pub const DAYS_MAX: u32 = 3660;
    pub const MONTHS_MAX: u32 = 120;

    pub fn as_db(&self) -> String {
        match self {
            ExpiryPolicy::Never => "never".into(),
            ExpiryPolicy::DaysAfterEarn(d) => format!("days:{d}"),
            ExpiryPolicy::EndOfMonthAfter(m) => format!("end_of_month:{m}"),
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s.split_once(':') {
            None if s == "never" => Some(ExpiryPolicy::Never),
            Some(("days", n)) => n.parse().ok().map(ExpiryPolicy::DaysAfterEarn),
            Some(("end_of_month", n)) => n.parse().ok().map(ExpiryPolicy::EndOfMonthAfter),
            _ => None,
        }
    }

    pub fn validate(self) -> AppResult<Self> {
        match self {
            ExpiryPolicy::DaysAfterEarn(d) if d == 0 || d > Self::DAYS_MAX => {
                Err(AppError::validation(
                    "expiry.value",
                    format!("days must be between 1 and {}", Self::DAYS_MAX),
                ))
            }
            ExpiryPolicy::EndOfMonthAfter(m) if m > Self::MONTHS_MAX => Err(AppError::validation(
                "expiry.value",
                format!("months must be between 0 and {}", Self::MONTHS_MAX),
            )),
            p => Ok(p),
        }
    }

    /// When points earned at `earned_at` expire, computed in the tenant's zone.
    pub fn expires_at(self, earned_at: DateTime<Utc>, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
        match self {
            ExpiryPolicy::Never => None,
            ExpiryPolicy::DaysAfterEarn(d) => Some(earned_at + Duration::days(i64::from(d))),
            ExpiryPolicy::EndOfMonthAfter(months) => {
                let local = earned_at.with_timezone(&tz).date_naive();
                let total = local.year() * 12 + local.month0() as i32 + months as i32 + 1;
                let first_of_next = NaiveDate::from_ymd_opt(
                    total.div_euclid(12),
                    total.rem_euclid(12) as u32 + 1,
                    1,
                )?;
                // The first instant of the next month in the tenant's zone; midnight always
                // exists in practice, and `earliest` picks the first of an ambiguous pair.
                let start = tz
                    .from_local_datetime(&first_of_next.and_hms_opt(0, 0, 0)?)
                    .earliest()?;
                Some(start.with_timezone(&Utc) - Duration::microseconds(1))
            }
        }
    }
}

/// What happens when a return claws back points that were already spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShortfallPolicy {
    /// The member's available balance goes negative; later earnings repay it first.
    AllowNegative,
    /// The spent part is written off to the tenant's `shortfall` account.
    RecordShortfall,
}

impl ShortfallPolicy {
    pub fn as_db(self) -> &'static str {
        match self {
            ShortfallPolicy::AllowNegative => "negative",
            ShortfallPolicy::RecordShortfall => "record",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "negative" => Some(ShortfallPolicy::AllowNegative),
            "record" => Some(ShortfallPolicy::RecordShortfall),
            _ => None,
        }
    }
}

/// A lot as the allocator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LotState {
    pub id: Uuid,
    pub remaining: i64,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Takes `amount` from `lots` soonest-expiring first (never-expiring last, then oldest first).
/// `None` when the lots hold less than `amount`.
pub fn allocate_fifo(lots: &[LotState], amount: i64) -> Option<Vec<(Uuid, i64)>> {
    let mut order: Vec<&LotState> = lots.iter().filter(|l| l.remaining > 0).collect();
    order.sort_by_key(|l| (l.expires_at.is_none(), l.expires_at, l.created_at, l.id));
    let mut left = amount;
    let mut out = Vec::new();
    for lot in order {
        if left == 0 {
            break;
        }
        let take = lot.remaining.min(left);
        out.push((lot.id, take));
        left -= take;
    }
    (left == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn fifo_takes_soonest_expiring_first_and_never_expiring_last() {
        let lots = vec![
            LotState {
                id: Uuid::from_u128(1),
                remaining: 5,
                expires_at: None,
                created_at: at("2026-01-01T00:00:00Z"),
            },
            LotState {
                id: Uuid::from_u128(2),
                remaining: 5,
                expires_at: Some(at("2026-12-01T00:00:00Z")),
                created_at: at("2026-02-01T00:00:00Z"),
            },
            LotState {
                id: Uuid::from_u128(3),
                remaining: 5,
                expires_at: Some(at("2026-06-01T00:00:00Z")),
                created_at: at("2026-03-01T00:00:00Z"),
            },
        ];
        assert_eq!(
            allocate_fifo(&lots, 12),
            Some(vec![
                (Uuid::from_u128(3), 5),
                (Uuid::from_u128(2), 5),
                (Uuid::from_u128(1), 2)
            ])
        );
        assert_eq!(allocate_fifo(&lots, 16), None);
        assert_eq!(allocate_fifo(&lots, 0), Some(vec![]));
    }

    #[test]
    fn entries_must_balance() {
        assert!(
            check_lines(&[
                Line::new(Account::Issuance, -5),
                Line::new(Account::Available, 5)
            ])
            .is_ok()
        );
        assert!(check_lines(&[Line::new(Account::Available, 5)]).is_err());
        assert!(
            check_lines(&[
                Line::new(Account::Issuance, -5),
                Line::new(Account::Available, 4)
            ])
            .is_err()
        );
        assert!(
            check_lines(&[
                Line::new(Account::Issuance, 0),
                Line::new(Account::Available, 0)
            ])
            .is_err()
        );
    }

    #[test]
    fn end_of_month_expiry_uses_the_tenant_zone() {
        let tz: chrono_tz::Tz = "Europe/Amsterdam".parse().expect("tz");
        // 31 Jan 23:30 UTC is already 1 Feb in Amsterdam: the earning month is February.
        let p = ExpiryPolicy::EndOfMonthAfter(0);
        assert_eq!(
            p.expires_at(at("2026-01-31T23:30:00Z"), tz),
            Some(at("2026-02-28T22:59:59.999999Z"))
        );
        // 12 months after March 2026 is March 2027; summer time has begun by then (UTC+2).
        let p = ExpiryPolicy::EndOfMonthAfter(12);
        assert_eq!(
            p.expires_at(at("2026-03-10T12:00:00Z"), tz),
            Some(at("2027-03-31T21:59:59.999999Z"))
        );
        assert_eq!(
            ExpiryPolicy::DaysAfterEarn(30).expires_at(at("2026-01-01T00:00:00Z"), tz),
            Some(at("2026-01-31T00:00:00Z"))
        );
        assert_eq!(
            ExpiryPolicy::Never.expires_at(at("2026-01-01T00:00:00Z"), tz),
            None
        );
        for p in [
            ExpiryPolicy::Never,
            ExpiryPolicy::DaysAfterEarn(365),
            ExpiryPolicy::EndOfMonthAfter(12),
        ] {
            assert_eq!(ExpiryPolicy::from_db(&p.as_db()), Some(p));
        }
    }

    #[test]
    fn balances_apply_member_lines_only() {
        let b = Balances::default()
            .apply(&[
                Line::new(Account::Issuance, -10),
                Line::new(Account::Available, 10),
            ])
            .expect("apply");
        assert_eq!(b.available, 10);
        let b = b
            .apply(&[
                Line::new(Account::Available, -11),
                Line::new(Account::Held, 11),
            ])
            .expect("apply");
        assert!(b.check(false).is_err());
        assert!(b.check(true).is_ok());
    }
}
