//! Native test runner: build inputs in a line and run a plugin like the host does.
//!
//! Plugins are plain Rust, so their unit tests run with `cargo test` on the
//! build machine; no wasm runtime is involved. The runners mirror the host's
//! order of calls: the config goes through `validate_config` first and a refused
//! config never reaches `evaluate`/`quote`.
//!
//! Builders return the SDK's plain structs with fixed, deterministic defaults
//! (ids, [`TEST_TIME_MS`], EUR); change any public field afterwards.
//!
//! ```
//! use loyalty_sdk::testing::{member, purchase};
//!
//! let event = purchase().line("SKU-1", "shoes", 2, 4_999).line("SKU-2", "socks", 1, 500).build();
//! let mut gold = member();
//! gold.tier.multiplier_bp = 15_000;
//! # let _ = (event, gold);
//! ```
//!
//! What the native runner cannot show: fuel, memory and time limits, and the size
//! limits on input and output. Build the component and run it in the host for
//! those.

use crate::{
    Award, Balances, Birthday, Cart, CustomEvent, Enrollment, EventCounts, EventKind, MemberEvent,
    MemberSnapshot, Money, PluginMetadata, PointRule, PointRuleInput, Purchase, PurchaseLine,
    PurchaseReturn, RedemptionQuote, RedemptionRequest, ReferralAwards, ReferralInput,
    ReferralScheme, Rejection, RewardDefinition, RewardInput, RewardType, Tier,
};

/// The time every builder uses: 2025-01-01T00:00:00Z in ms since the Unix epoch.
pub const TEST_TIME_MS: i64 = 1_735_689_600_000;

/// The currency every builder uses.
pub const TEST_CURRENCY: &str = "EUR";

/// Why a native run did not produce the plugin's normal output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    /// `validate_config` refused the config; the host would refuse to store it.
    InvalidConfig(String),
    /// The plugin returned an error; the host would skip it for this event.
    Failed(String),
    /// A reward type refused the redemption (reward types only).
    Rejected(Rejection),
}

impl core::fmt::Display for RunError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::InvalidConfig(msg) => write!(f, "config refused: {msg}"),
            Self::Failed(msg) => write!(f, "plugin failed: {msg}"),
            Self::Rejected(r) => {
                write!(f, "redemption rejected ({}): {}", r.reason_code, r.message)
            }
        }
    }
}

impl std::error::Error for RunError {}

/// Runs a point rule like the host: `validate_config`, then `evaluate`.
pub fn run_point_rule<P: PointRule>(input: PointRuleInput) -> Result<Vec<Award>, RunError> {
    P::validate_config(&input.config).map_err(RunError::InvalidConfig)?;
    P::evaluate(input).map_err(RunError::Failed)
}

/// Runs a reward type like the host: `validate_config`, then `quote`.
pub fn run_reward_type<R: RewardType>(input: RewardInput) -> Result<RedemptionQuote, RunError> {
    R::validate_config(&input.config).map_err(RunError::InvalidConfig)?;
    R::quote(input).map_err(RunError::Rejected)
}

/// Runs a referral scheme like the host: `validate_config`, then `evaluate`.
pub fn run_referral_scheme<S: ReferralScheme>(
    input: ReferralInput,
) -> Result<Option<ReferralAwards>, RunError> {
    S::validate_config(&input.config).map_err(RunError::InvalidConfig)?;
    S::evaluate(input).map_err(RunError::Failed)
}

/// Checks what the host checks about metadata at upload: name and version are
/// set, the schema (when given) is JSON, and the example config is accepted by
/// `validate_config` (pass the plugin's `validate_config`).
pub fn check_metadata(
    metadata: &PluginMetadata,
    validate_config: fn(&str) -> Result<(), String>,
) -> Result<(), String> {
    if metadata.name.trim().is_empty() {
        return Err("metadata.name is empty".into());
    }
    if metadata.version.trim().is_empty() {
        return Err("metadata.version is empty".into());
    }
    if !metadata.config_schema.is_empty() {
        serde_json::from_str::<serde_json::Value>(&metadata.config_schema)
            .map_err(|e| format!("metadata.config_schema is not JSON: {e}"))?;
    }
    validate_config(&metadata.config_example)
        .map_err(|e| format!("metadata.config_example is refused by validate_config: {e}"))
}

/// A base-tier member (multiplier 1x) with empty balances, enrolled a year before
/// [`TEST_TIME_MS`].
pub fn member() -> MemberSnapshot {
    MemberSnapshot {
        id: "member-1".into(),
        tier: Tier {
            name: "base".into(),
            multiplier_bp: 10_000,
        },
        balances: Balances::default(),
        lifetime_spend: Money {
            amount_minor: 0,
            currency: TEST_CURRENCY.into(),
        },
        purchase_count: 0,
        tags: Vec::new(),
        attributes_json: "{}".into(),
        enrolled_at_ms: TEST_TIME_MS - 365 * 24 * 60 * 60 * 1000,
        birthday: None,
    }
}

/// Wraps an event kind with id `"event-1"` at [`TEST_TIME_MS`].
pub fn event(kind: EventKind) -> MemberEvent {
    MemberEvent {
        id: "event-1".into(),
        occurred_at_ms: TEST_TIME_MS,
        kind,
    }
}

/// An enrollment through `channel`.
pub fn enrollment(channel: &str) -> MemberEvent {
    event(EventKind::Enrollment(Enrollment {
        channel: channel.into(),
    }))
}

/// The member's birthday in `year`.
pub fn birthday(year: u16) -> MemberEvent {
    event(EventKind::Birthday(Birthday { year }))
}

/// A custom event, the member's first with this name; `properties` is serialized to JSON text.
pub fn custom(name: &str, properties: &serde_json::Value) -> MemberEvent {
    custom_after(name, properties, EventCounts::default())
}

/// A custom event after `prior` earlier ones with the same name (for caps per period).
pub fn custom_after(name: &str, properties: &serde_json::Value, prior: EventCounts) -> MemberEvent {
    event(EventKind::Custom(CustomEvent {
        name: name.into(),
        properties_json: properties.to_string(),
        prior,
    }))
}

/// Starts a purchase of order `"order-1"` in [`TEST_CURRENCY`].
pub fn purchase() -> OrderBuilder {
    OrderBuilder {
        is_return: false,
        order_id: "order-1".into(),
        currency: TEST_CURRENCY.into(),
        lines: Vec::new(),
        total_minor: None,
    }
}

/// Starts a return from order `"order-1"` in [`TEST_CURRENCY`].
pub fn purchase_return() -> OrderBuilder {
    OrderBuilder {
        is_return: true,
        ..purchase()
    }
}

/// Builds a purchase or a return line by line; see [`purchase`].
#[derive(Clone, Debug)]
pub struct OrderBuilder {
    is_return: bool,
    order_id: String,
    currency: String,
    lines: Vec<PurchaseLine>,
    total_minor: Option<i64>,
}

impl OrderBuilder {
    /// Adds a line; line indexes count from 0 in the order lines are added.
    #[must_use]
    pub fn line(mut self, sku: &str, category: &str, quantity: u32, unit_price_minor: i64) -> Self {
        let line_index = u32::try_from(self.lines.len()).unwrap_or(u32::MAX);
        self.lines.push(PurchaseLine {
            line_index,
            sku: sku.into(),
            category: category.into(),
            quantity,
            unit_price_minor,
        });
        self
    }

    /// Sets the order id.
    #[must_use]
    pub fn order_id(mut self, order_id: &str) -> Self {
        self.order_id = order_id.into();
        self
    }

    /// Sets the currency.
    #[must_use]
    pub fn currency(mut self, currency: &str) -> Self {
        self.currency = currency.into();
        self
    }

    /// Sets the total; by default it is the sum of the lines (saturating).
    #[must_use]
    pub fn total_minor(mut self, total_minor: i64) -> Self {
        self.total_minor = Some(total_minor);
        self
    }

    /// The lines as a cart for a redemption request.
    pub fn cart(self) -> Cart {
        let total_minor = self.total();
        Cart {
            lines: self.lines,
            total_minor,
        }
    }

    /// The purchase or return as an event (see [`event`] for id and time).
    pub fn build(self) -> MemberEvent {
        let total_minor = self.total();
        let (order_id, currency, lines) = (self.order_id, self.currency, self.lines);
        event(if self.is_return {
            EventKind::Return(PurchaseReturn {
                order_id,
                currency,
                lines,
                total_minor,
            })
        } else {
            EventKind::Purchase(Purchase {
                order_id,
                currency,
                lines,
                total_minor,
            })
        })
    }

    fn total(&self) -> i64 {
        self.total_minor.unwrap_or_else(|| {
            self.lines
                .iter()
                .map(|l| l.amount_minor().unwrap_or(i64::MAX))
                .fold(0_i64, i64::saturating_add)
        })
    }
}

/// A catalogue reward.
pub fn reward(id: &str, name: &str, base_points_cost: i64) -> RewardDefinition {
    RewardDefinition {
        id: id.into(),
        name: name.into(),
        base_points_cost,
    }
}

/// A request for `quantity` units in [`TEST_CURRENCY`], without a cart.
pub fn redemption(quantity: u32) -> RedemptionRequest {
    RedemptionRequest {
        quantity,
        cart: None,
        currency: TEST_CURRENCY.into(),
    }
}
