//! Reward types: price a redemption and say what the member gets
//! (WIT world `reward-type`).

use serde::{Deserialize, Serialize};

use crate::{MemberSnapshot, Money, PluginMetadata, PurchaseLine};

/// The reward as the tenant defined it in the catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RewardDefinition {
    /// The reward's id.
    pub id: String,
    /// The reward's display name.
    pub name: String,
    /// Catalogue price of one unit, in points.
    pub base_points_cost: i64,
}

/// The member's cart, when the redemption happens at checkout.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cart {
    /// The cart's lines.
    pub lines: Vec<PurchaseLine>,
    /// Cart total in minor units of the request's currency.
    pub total_minor: i64,
}

/// What the member asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RedemptionRequest {
    /// How many units of the reward; at least 1.
    pub quantity: u32,
    /// The cart, at checkout.
    pub cart: Option<Cart>,
    /// ISO 4217 code of the cart and of money effects.
    pub currency: String,
}

/// Everything a reward type sees for one call.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RewardInput {
    /// The catalogue entry.
    pub reward: RewardDefinition,
    /// The plugin's config as JSON text, already accepted by
    /// [`RewardType::validate_config`].
    pub config: String,
    /// The member redeeming.
    pub member: MemberSnapshot,
    /// What the member asks for.
    pub request: RedemptionRequest,
    /// ms since the Unix epoch (UTC): "now" for the plugin.
    pub requested_at_ms: i64,
}

/// A percentage off.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PercentDiscount {
    /// 1000 = 10 %.
    pub basis_points: u32,
    /// Largest discount allowed, if any.
    pub cap: Option<Money>,
}

/// A perk the host does not know about, delivered by the tenant's own systems.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CustomPerk {
    /// The perk's name.
    pub name: String,
    /// JSON object as text.
    pub details_json: String,
}

/// What the member receives.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// A fixed amount off.
    FixedDiscount(Money),
    /// A percentage off.
    PercentDiscount(PercentDiscount),
    /// One unit of this SKU for free.
    FreeItem(String),
    /// Free shipping.
    FreeShipping,
    /// A coupon code; the host appends a unique suffix to this prefix.
    Coupon(String),
    /// A tenant-specific perk.
    CustomPerk(CustomPerk),
}

/// The price and the effects of a redemption.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RedemptionQuote {
    /// Total points to debit for the whole request.
    pub points_cost: i64,
    /// What the member receives.
    pub effects: Vec<Effect>,
}

/// Why a redemption is refused; shown to the member.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rejection {
    /// Short machine-readable code, e.g. `"cart-too-small"`.
    pub reason_code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl Rejection {
    /// A rejection with a code and a message.
    pub fn new(reason_code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason_code: reason_code.into(),
            message: message.into(),
        }
    }
}

/// A reward type prices a redemption or refuses it. Export it with
/// [`export_plugin!(MyReward: reward_type)`](crate::export_plugin).
pub trait RewardType {
    /// Describes the plugin.
    fn metadata() -> PluginMetadata;

    /// Checks a config before the host stores it; the error is shown to the admin.
    fn validate_config(config: &str) -> Result<(), String>;

    /// Prices a redemption, or refuses it with a reason for the member.
    fn quote(input: RewardInput) -> Result<RedemptionQuote, Rejection>;
}
