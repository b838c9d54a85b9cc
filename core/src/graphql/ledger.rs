//! Points: balances, history, expiring points, adjustments, the tenant's points policy.

use super::members::MemberObject;
use super::tenants::TenantObject;
use super::{principal, state};
use crate::error::AppError;
use crate::ids::MemberId;
use crate::ledger::repo::Entry;
use crate::ledger::{Balances, EntryKind, ExpiryPolicy, ShortfallPolicy, service};
use crate::tenants::PointsPolicy;
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

/// A member's points.
#[derive(SimpleObject)]
#[graphql(name = "Balance")]
pub(crate) struct BalanceObject {
    /// Spendable now.
    available: i64,
    /// Earned, locked until the return window ends.
    pending: i64,
    /// Reserved by redemptions in progress.
    held: i64,
    lifetime_earned: i64,
    lifetime_redeemed: i64,
    lifetime_expired: i64,
}

impl From<Balances> for BalanceObject {
    fn from(b: Balances) -> Self {
        Self {
            available: b.available,
            pending: b.pending,
            held: b.held,
            lifetime_earned: b.lifetime_earned,
            lifetime_redeemed: b.lifetime_redeemed,
            lifetime_expired: b.lifetime_expired,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "ExpiringPoints")]
pub(crate) struct ExpiringObject {
    points: i64,
    expires_at: DateTime<Utc>,
}

impl ExpiringObject {
    pub(crate) fn new(expires_at: DateTime<Utc>, points: i64) -> Self {
        Self { points, expires_at }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "LedgerEntryKind")]
enum KindEnum {
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

impl From<EntryKind> for KindEnum {
    fn from(k: EntryKind) -> Self {
        match k {
            EntryKind::Earn => Self::Earn,
            EntryKind::Unlock => Self::Unlock,
            EntryKind::Adjust => Self::Adjust,
            EntryKind::Hold => Self::Hold,
            EntryKind::Capture => Self::Capture,
            EntryKind::Void => Self::Void,
            EntryKind::Expire => Self::Expire,
            EntryKind::Clawback => Self::Clawback,
            EntryKind::Reversal => Self::Reversal,
        }
    }
}

/// Where an entry came from.
#[derive(SimpleObject)]
#[graphql(name = "EntrySource")]
struct SourceObject {
    /// The event (order, return, custom event) that caused it.
    event_id: Option<String>,
    /// The plugin that computed it, and its version.
    plugin_id: Option<String>,
    plugin_version: Option<String>,
}

pub(crate) struct EntryObject(pub(crate) Entry);

#[Object(name = "LedgerEntry")]
impl EntryObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> KindEnum {
        self.0.kind.into()
    }
    /// Change of the member's spendable points (available + pending).
    async fn points(&self) -> i64 {
        self.0.points
    }
    /// A person's words (adjustments) or the rule's reason code.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref().or(self.0.reason_code.as_deref())
    }
    async fn reason_code(&self) -> Option<&str> {
        self.0.reason_code.as_deref()
    }
    async fn source(&self) -> SourceObject {
        SourceObject {
            event_id: self.0.event_id.clone(),
            plugin_id: self.0.plugin_id.clone(),
            plugin_version: self.0.plugin_version.clone(),
        }
    }
    async fn reverses_entry_id(&self) -> Option<ID> {
        self.0.reverses_entry_id.map(|id| ID(id.to_string()))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ExpiryKind")]
enum ExpiryKindEnum {
    /// Points never expire.
    Never,
    /// `value` days after they were earned.
    DaysAfterEarn,
    /// At the end of the month, `value` months after the month they were earned in.
    EndOfMonthAfter,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ShortfallPolicy")]
enum ShortfallEnum {
    /// A return of spent points makes the balance negative; later earnings repay it.
    AllowNegative,
    /// The spent part is written off to the tenant's shortfall account.
    RecordShortfall,
}

#[derive(SimpleObject, InputObject)]
#[graphql(name = "Expiry", input_name = "ExpiryInput")]
struct ExpiryObject {
    kind: ExpiryKindEnum,
    /// Days or months, per `kind`; 0 with NEVER.
    value: i32,
}

#[derive(SimpleObject)]
#[graphql(name = "PointsPolicy")]
pub(crate) struct PolicyObject {
    expiry: ExpiryObject,
    shortfall: ShortfallEnum,
}

impl From<PointsPolicy> for PolicyObject {
    fn from(p: PointsPolicy) -> Self {
        let (kind, value) = match p.expiry {
            ExpiryPolicy::Never => (ExpiryKindEnum::Never, 0),
            ExpiryPolicy::DaysAfterEarn(d) => (ExpiryKindEnum::DaysAfterEarn, d as i32),
            ExpiryPolicy::EndOfMonthAfter(m) => (ExpiryKindEnum::EndOfMonthAfter, m as i32),
        };
        Self {
            expiry: ExpiryObject { kind, value },
            shortfall: match p.shortfall {
                ShortfallPolicy::AllowNegative => ShortfallEnum::AllowNegative,
                ShortfallPolicy::RecordShortfall => ShortfallEnum::RecordShortfall,
            },
        }
    }
}

#[derive(InputObject)]
struct AdjustPointsInput {
    member_id: ID,
    /// Positive credits, negative debits (soonest-expiring points first).
    points: i64,
    /// Why, in a person's words; shown in the member's history.
    reason: String,
    /// Required: a retry with the same key and input returns the first result.
    idempotency_key: String,
}

#[derive(SimpleObject)]
struct AdjustPointsPayload {
    entry: EntryObject,
    member: MemberObject,
}

#[derive(InputObject)]
struct SetPointsPolicyInput {
    expiry: ExpiryObject,
    shortfall: ShortfallEnum,
}

#[derive(SimpleObject)]
struct SetPointsPolicyPayload {
    tenant: TenantObject,
}

#[derive(Default)]
pub(super) struct LedgerMutation;

#[Object]
impl LedgerMutation {
    /// Credits or debits a member's points with a reason (ADMIN key). A debit larger than the
    /// available balance fails with INSUFFICIENT_POINTS.
    async fn adjust_points(
        &self,
        ctx: &Context<'_>,
        input: AdjustPointsInput,
    ) -> Result<AdjustPointsPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let member = MemberId::parse(&input.member_id).ok_or(AppError::not_found("member"))?;
        let (entry, _) = service::adjust_points(
            &st.db,
            &p,
            member,
            input.points,
            &input.reason,
            &input.idempotency_key,
        )
        .await?;
        let m = crate::members::service::get(&st.db, &p, member).await?;
        Ok(AdjustPointsPayload {
            entry: EntryObject(entry),
            member: MemberObject::from(m),
        })
    }

    /// Sets when the caller's points expire and what returns do to spent points (ADMIN key).
    async fn set_points_policy(
        &self,
        ctx: &Context<'_>,
        input: SetPointsPolicyInput,
    ) -> Result<SetPointsPolicyPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let value = u32::try_from(input.expiry.value)
            .map_err(|_| AppError::validation("expiry.value", "value must not be negative"))?;
        let expiry = match input.expiry.kind {
            ExpiryKindEnum::Never => ExpiryPolicy::Never,
            ExpiryKindEnum::DaysAfterEarn => ExpiryPolicy::DaysAfterEarn(value),
            ExpiryKindEnum::EndOfMonthAfter => ExpiryPolicy::EndOfMonthAfter(value),
        };
        let shortfall = match input.shortfall {
            ShortfallEnum::AllowNegative => ShortfallPolicy::AllowNegative,
            ShortfallEnum::RecordShortfall => ShortfallPolicy::RecordShortfall,
        };
        let tenant =
            service::set_points_policy(&st.db, &p, PointsPolicy { expiry, shortfall }).await?;
        Ok(SetPointsPolicyPayload {
            tenant: TenantObject(tenant),
        })
    }
}
