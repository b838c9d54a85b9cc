//! Records shared by every plugin kind: events, member snapshots, awards.
//!
//! Each type mirrors one record or variant of the `loyalty:plugin/types` WIT
//! interface field for field, so the host can convert with plain `From` impls.
//! Conventions: money is an integer of minor units plus an ISO 4217 code, time is
//! milliseconds since the Unix epoch (UTC), free-form data is JSON text.

use serde::{Deserialize, Serialize};

/// An amount of money.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Integer minor units, e.g. 1999 for 19.99 EUR.
    pub amount_minor: i64,
    /// ISO 4217 code, e.g. `"EUR"`.
    pub currency: String,
}

/// A calendar date without a time zone (used for birthdays).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CalendarDate {
    /// Year, when known.
    pub year: Option<u16>,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
}

/// One line of a purchase, a return or a cart.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PurchaseLine {
    /// Position of the line in its order; awards refer to lines by this index.
    pub line_index: u32,
    /// Stock keeping unit.
    pub sku: String,
    /// Product category as the tenant names it.
    pub category: String,
    /// Number of units.
    pub quantity: u32,
    /// Price of one unit in minor units of the order's currency.
    pub unit_price_minor: i64,
}

impl PurchaseLine {
    /// `quantity * unit_price_minor`, or `None` on overflow.
    pub fn amount_minor(&self) -> Option<i64> {
        self.unit_price_minor.checked_mul(i64::from(self.quantity))
    }
}

/// A completed purchase.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Purchase {
    /// The tenant's order id.
    pub order_id: String,
    /// ISO 4217 code of every amount in the order.
    pub currency: String,
    /// The order's lines.
    pub lines: Vec<PurchaseLine>,
    /// Order total in minor units, after discounts.
    pub total_minor: i64,
}

/// Goods returned from an earlier purchase.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PurchaseReturn {
    /// The order the goods came from.
    pub order_id: String,
    /// ISO 4217 code of every amount in the return.
    pub currency: String,
    /// Returned lines; `line_index` refers to the original order.
    pub lines: Vec<PurchaseLine>,
    /// Refunded amount in minor units.
    pub total_minor: i64,
}

/// The member joined the programme.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Enrollment {
    /// Where the member signed up, e.g. `"web"`; empty when unknown.
    pub channel: String,
}

/// The member's birthday came round (sent by the host's scheduler).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Birthday {
    /// The calendar year being celebrated.
    pub year: u16,
}

/// How many events of one name the member had before this one, counted by the host in the
/// calendar periods (of the programme's time zone) that contain this event. Plugins keep no
/// state: a cap per period is computed from these counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventCounts {
    /// On the same day.
    pub day: u32,
    /// In the same ISO week (Monday to Sunday).
    pub week: u32,
    /// In the same calendar month.
    pub month: u32,
    /// In the same calendar year.
    pub year: u32,
    /// Ever.
    pub total: u32,
}

/// A tenant-defined event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CustomEvent {
    /// The event's name, e.g. `"review-written"`.
    pub name: String,
    /// JSON object as text.
    pub properties_json: String,
    /// The member's earlier events with this name.
    #[serde(default)]
    pub prior: EventCounts,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A completed purchase.
    Purchase(Purchase),
    /// Goods returned (WIT case `return`).
    Return(PurchaseReturn),
    /// The member joined.
    Enrollment(Enrollment),
    /// The member's birthday.
    Birthday(Birthday),
    /// A tenant-defined event.
    Custom(CustomEvent),
}

/// One event about one member.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberEvent {
    /// Unique per tenant; the host's idempotency key.
    pub id: String,
    /// When it happened, ms since the Unix epoch (UTC). Plugins have no clock: this
    /// is "now" for them.
    pub occurred_at_ms: i64,
    /// What happened.
    pub kind: EventKind,
}

/// The member's tier at the time of the event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tier {
    /// The tier's name, e.g. `"gold"`.
    pub name: String,
    /// Earning multiplier in basis points: 10 000 = 1x, 15 000 = 1.5x.
    pub multiplier_bp: u32,
}

/// Point balances, in points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Balances {
    /// Spendable now.
    pub available: i64,
    /// Earned but not yet available (e.g. within the return window).
    pub pending: i64,
    /// Reserved by redemptions in progress.
    pub held: i64,
}

/// The member as the host saw them just before the event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberSnapshot {
    /// The member's id.
    pub id: String,
    /// Current tier.
    pub tier: Tier,
    /// Current balances.
    pub balances: Balances,
    /// Lifetime spend in the programme's currency.
    pub lifetime_spend: Money,
    /// Number of purchases so far.
    pub purchase_count: u32,
    /// Tags set by the tenant.
    pub tags: Vec<String>,
    /// JSON object as text.
    pub attributes_json: String,
    /// ms since the Unix epoch (UTC).
    pub enrolled_at_ms: i64,
    /// The member's birthday, when known.
    pub birthday: Option<CalendarDate>,
}

impl MemberSnapshot {
    /// Whether the member carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// When awarded points expire, overriding the programme default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expiry {
    /// The points never expire.
    Never,
    /// The points expire this many days after the event.
    AfterDays(u32),
    /// The points expire at this instant, ms since the Unix epoch (UTC).
    AtMs(i64),
}

/// Points to credit (or debit, when negative) to one member.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Award {
    /// Points; negative to take points back (e.g. on a return).
    pub points: i64,
    /// Short machine-readable code shown in the ledger, e.g. `"base-rate"`.
    pub reason_code: String,
    /// The purchase or return line this award belongs to.
    pub line_index: Option<u32>,
    /// `None`: the programme's default expiry.
    pub expiry: Option<Expiry>,
}

impl Award {
    /// An award with the programme's default expiry, not tied to a line.
    pub fn new(points: i64, reason_code: impl Into<String>) -> Self {
        Self {
            points,
            reason_code: reason_code.into(),
            line_index: None,
            expiry: None,
        }
    }

    /// Ties the award to a purchase or return line.
    #[must_use]
    pub fn for_line(mut self, line_index: u32) -> Self {
        self.line_index = Some(line_index);
        self
    }

    /// Overrides the programme's default expiry.
    #[must_use]
    pub fn expiring(mut self, expiry: Expiry) -> Self {
        self.expiry = Some(expiry);
        self
    }
}

/// Describes a plugin to the host and to tenant admins.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PluginMetadata {
    /// Machine name, e.g. `"base-rate"`.
    pub name: String,
    /// Semantic version of the plugin, e.g. `"1.2.0"`.
    pub version: String,
    /// One or two sentences for humans.
    pub description: String,
    /// JSON Schema of the config, as text; empty when the plugin takes no config.
    pub config_schema: String,
    /// A valid example config as JSON text.
    pub config_example: String,
}
