//! Percent discount: a percentage off the cart, capped at an amount of money,
//! bought with the reward's catalogue price in points.
//!
//! Config (JSON):
//!
//! ```json
//! {
//!   "basis_points": 1000,
//!   "cap_minor": 2000,
//!   "currency": "EUR",
//!   "min_cart_total_minor": 5000,
//!   "require_cart": false
//! }
//! ```
//!
//! - `basis_points` (required): the discount in basis points (hundredths of a
//!   percent), 1..=10 000: 1000 = 10 %, 1250 = 12.5 %, 10 000 = 100 %. Basis
//!   points, not percent, so fractional rates stay integers and match the SDK's
//!   [`loyalty_sdk::PercentDiscount::basis_points`].
//! - `cap_minor` (required): the largest discount, in minor units of `currency`,
//!   1..=100 000 000 (2000 = 20.00 EUR). A percentage without a cap is an
//!   unbounded liability on a large cart, so the cap is mandatory.
//! - `currency` (required): ISO 4217 code of the cap and of the minimum, three
//!   upper-case letters. A request in another currency is refused: the plugin
//!   never converts.
//! - `min_cart_total_minor` (optional): smallest cart total, in minor units of
//!   `currency`, 1..=100 000 000 000.
//! - `require_cart` (default `false`): when `true` the reward can only be
//!   redeemed at checkout, with a cart.
//!
//! # Quote
//!
//! One unit costs `base_points_cost` points and gives one
//! [`Effect::PercentDiscount`] with the configured rate and cap; the host applies
//! it to the order. Percentages do not stack, so the quantity must be 1.
//!
//! With a cart, the minimum is checked against the cart's `total_minor`, and a
//! cart worth nothing (total zero or less) is refused, since the discount would be
//! zero. Without a cart neither can be checked; the quote is then a voucher, and
//! an admin who needs the minimum enforced must set `require_cart`.
//!
//! # Rejections (stable reason codes)
//!
//! | code | when |
//! | --- | --- |
//! | `bad-config` | the stored config no longer parses (the host validates it first) |
//! | `invalid-quantity` | quantity 0 |
//! | `quantity-too-large` | quantity above 1 |
//! | `invalid-reward-cost` | the catalogue's `base_points_cost` is negative |
//! | `currency-mismatch` | the request's currency is not `currency` |
//! | `cart-required` | `require_cart` and no cart |
//! | `cart-empty` | the cart total is zero or less |
//! | `cart-below-minimum` | the cart total is below `min_cart_total_minor` |
//!
//! Build the component with
//! `cargo build --release --target wasm32-unknown-unknown -p percent-discount`.

use loyalty_sdk::{
    Effect, Money, PercentDiscount as PercentEffect, PluginMetadata, RedemptionQuote,
    RedemptionRequest, Rejection, RewardInput, RewardType,
};
use serde::Deserialize;

/// 100 %, in basis points.
const BASIS_POINTS_MAX: u32 = 10_000;
/// Upper bound of `cap_minor` (1 000 000.00 in a two-decimal currency).
const CAP_MAX: i64 = 100_000_000;
/// Upper bound of `min_cart_total_minor`.
const MIN_CART_MAX: i64 = 100_000_000_000;

/// The percent-discount reward type.
pub struct PercentDiscount;

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The rate: 1000 = 10 %.
    pub basis_points: u32,
    /// Largest discount, in minor units.
    pub cap_minor: i64,
    /// ISO 4217 code of the cap and of the minimum.
    pub currency: String,
    /// Smallest cart total, when the reward has one.
    #[serde(default)]
    pub min_cart_total_minor: Option<i64>,
    /// Whether a cart is required.
    #[serde(default)]
    pub require_cart: bool,
}

impl Config {
    /// Parses and checks a config, with messages for the tenant's admin.
    pub fn parse(config: &str) -> Result<Self, String> {
        let config: Self = loyalty_sdk::parse_config(config)?;
        if !(1..=BASIS_POINTS_MAX).contains(&config.basis_points) {
            return Err(format!(
                "basis_points must be between 1 and {BASIS_POINTS_MAX} \
                 (1000 = 10 %, 10000 = 100 %), got {}",
                config.basis_points
            ));
        }
        if !(1..=CAP_MAX).contains(&config.cap_minor) {
            return Err(format!(
                "cap_minor must be between 1 and {CAP_MAX} (2000 = 20.00 EUR), got {}",
                config.cap_minor
            ));
        }
        if !is_currency_code(&config.currency) {
            return Err(format!(
                "currency must be an ISO 4217 code of three upper-case letters, e.g. \"EUR\", got {:?}",
                config.currency
            ));
        }
        if let Some(min) = config.min_cart_total_minor
            && !(1..=MIN_CART_MAX).contains(&min)
        {
            return Err(format!(
                "min_cart_total_minor must be between 1 and {MIN_CART_MAX}, got {min}; \
                 leave it out for no minimum"
            ));
        }
        Ok(config)
    }

    /// Prices a request, or says why it is refused.
    fn quote(
        &self,
        base_points_cost: i64,
        request: &RedemptionRequest,
    ) -> Result<RedemptionQuote, Rejection> {
        match request.quantity {
            0 => {
                return Err(Rejection::new(
                    "invalid-quantity",
                    "At least one unit must be redeemed.",
                ));
            }
            1 => {}
            _ => {
                return Err(Rejection::new(
                    "quantity-too-large",
                    "Percentage discounts do not stack: redeem one at a time.",
                ));
            }
        }
        if base_points_cost < 0 {
            return Err(Rejection::new(
                "invalid-reward-cost",
                "This reward has a negative points cost; please contact support.",
            ));
        }
        if request.currency != self.currency {
            return Err(Rejection::new(
                "currency-mismatch",
                format!(
                    "This discount is in {}; it cannot be used in {}.",
                    self.currency, request.currency
                ),
            ));
        }
        match &request.cart {
            None if self.require_cart => {
                return Err(Rejection::new(
                    "cart-required",
                    "This discount can only be redeemed at checkout.",
                ));
            }
            None => {}
            Some(cart) => {
                if cart.total_minor <= 0 {
                    return Err(Rejection::new(
                        "cart-empty",
                        "The cart is worth nothing, so there is nothing to discount.",
                    ));
                }
                if let Some(min) = self.min_cart_total_minor
                    && cart.total_minor < min
                {
                    return Err(Rejection::new(
                        "cart-below-minimum",
                        format!(
                            "The cart total must be at least {min} (minor units of {}); it is {}.",
                            self.currency, cart.total_minor
                        ),
                    ));
                }
            }
        }
        Ok(RedemptionQuote {
            points_cost: base_points_cost,
            effects: vec![Effect::PercentDiscount(PercentEffect {
                basis_points: self.basis_points,
                cap: Some(Money {
                    amount_minor: self.cap_minor,
                    currency: self.currency.clone(),
                }),
            })],
        })
    }
}

/// Whether `code` looks like an ISO 4217 code: three ASCII upper-case letters.
fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

impl RewardType for PercentDiscount {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "percent-discount".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A percentage off the order, capped at an amount of money, \
                          optionally with a minimum cart total."
                .into(),
            config_schema: r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["basis_points", "cap_minor", "currency"],
  "properties": {
    "basis_points": {"type": "integer", "minimum": 1, "maximum": 10000},
    "cap_minor": {"type": "integer", "minimum": 1, "maximum": 100000000},
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "min_cart_total_minor": {"type": "integer", "minimum": 1, "maximum": 100000000000},
    "require_cart": {"type": "boolean", "default": false}
  }
}"#
            .into(),
            config_example: r#"{"basis_points": 1000, "cap_minor": 2000, "currency": "EUR", "min_cart_total_minor": 5000, "require_cart": false}"#
                .into(),
        }
    }

    fn validate_config(config: &str) -> Result<(), String> {
        Config::parse(config).map(drop)
    }

    fn quote(input: RewardInput) -> Result<RedemptionQuote, Rejection> {
        let config = Config::parse(&input.config)
            .map_err(|message| Rejection::new("bad-config", message))?;
        config.quote(input.reward.base_points_cost, &input.request)
    }
}

loyalty_sdk::export_plugin!(PercentDiscount: reward_type);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{
        self, RunError, TEST_TIME_MS, member, purchase, redemption, reward,
    };
    use loyalty_sdk::{
        Cart, Effect, Money, PercentDiscount as PercentEffect, RedemptionQuote, RedemptionRequest,
        RewardInput, RewardType,
    };

    use super::PercentDiscount;

    const CONFIG: &str = r#"{"basis_points": 1000, "cap_minor": 2000, "currency": "EUR"}"#;

    fn input(config: &str, base_points_cost: i64, request: RedemptionRequest) -> RewardInput {
        RewardInput {
            reward: reward("r-1", "10 % off", base_points_cost),
            config: config.into(),
            member: member(),
            request,
            requested_at_ms: TEST_TIME_MS,
        }
    }

    fn run(config: &str, request: RedemptionRequest) -> Result<RedemptionQuote, RunError> {
        testing::run_reward_type::<PercentDiscount>(input(config, 700, request))
    }

    fn with_cart(cart: Cart) -> RedemptionRequest {
        RedemptionRequest {
            cart: Some(cart),
            ..redemption(1)
        }
    }

    fn cart(total_minor: i64) -> Cart {
        purchase()
            .line("A", "shoes", 1, total_minor)
            .total_minor(total_minor)
            .cart()
    }

    fn percent(basis_points: u32, cap_minor: i64) -> Effect {
        Effect::PercentDiscount(PercentEffect {
            basis_points,
            cap: Some(Money {
                amount_minor: cap_minor,
                currency: "EUR".into(),
            }),
        })
    }

    /// The reason code of a rejection, or a panic naming what came instead.
    fn rejection(result: Result<RedemptionQuote, RunError>) -> String {
        match result {
            Err(RunError::Rejected(r)) => {
                assert!(!r.message.is_empty(), "{} has no message", r.reason_code);
                r.reason_code
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn one_unit_gives_the_capped_percentage_for_the_catalogue_price() -> Result<(), RunError> {
        let quote = run(CONFIG, redemption(1))?;
        assert_eq!(quote.points_cost, 700);
        assert_eq!(quote.effects, vec![percent(1000, 2000)]);
        Ok(())
    }

    #[test]
    fn fractional_and_full_rates_are_basis_points() -> Result<(), RunError> {
        let config = r#"{"basis_points": 1250, "cap_minor": 500, "currency": "EUR"}"#;
        assert_eq!(
            run(config, redemption(1))?.effects,
            vec![percent(1250, 500)]
        );
        let config = r#"{"basis_points": 10000, "cap_minor": 500, "currency": "EUR"}"#;
        assert_eq!(
            run(config, redemption(1))?.effects,
            vec![percent(10_000, 500)]
        );
        Ok(())
    }

    #[test]
    fn more_than_one_unit_is_rejected() {
        assert_eq!(rejection(run(CONFIG, redemption(2))), "quantity-too-large");
        assert_eq!(
            rejection(run(CONFIG, redemption(u32::MAX))),
            "quantity-too-large"
        );
    }

    #[test]
    fn quantity_zero_is_rejected() {
        assert_eq!(rejection(run(CONFIG, redemption(0))), "invalid-quantity");
    }

    #[test]
    fn the_largest_catalogue_price_is_charged_as_is() -> Result<(), RunError> {
        let quote =
            testing::run_reward_type::<PercentDiscount>(input(CONFIG, i64::MAX, redemption(1)))?;
        assert_eq!(quote.points_cost, i64::MAX);
        Ok(())
    }

    #[test]
    fn negative_catalogue_cost_is_rejected() {
        let result = testing::run_reward_type::<PercentDiscount>(input(CONFIG, -1, redemption(1)));
        assert_eq!(rejection(result), "invalid-reward-cost");
    }

    #[test]
    fn another_currency_is_rejected() {
        let request = RedemptionRequest {
            currency: "GBP".into(),
            ..redemption(1)
        };
        assert_eq!(rejection(run(CONFIG, request)), "currency-mismatch");
    }

    #[test]
    fn minimum_cart_is_checked_when_a_cart_is_given() -> Result<(), RunError> {
        let config = r#"{"basis_points": 1000, "cap_minor": 2000, "currency": "EUR", "min_cart_total_minor": 5000}"#;
        assert_eq!(
            rejection(run(config, with_cart(cart(4_999)))),
            "cart-below-minimum"
        );
        assert_eq!(
            run(config, with_cart(cart(5_000)))?.effects,
            vec![percent(1000, 2000)]
        );
        assert_eq!(
            run(config, redemption(1))?.effects,
            vec![percent(1000, 2000)]
        );
        Ok(())
    }

    #[test]
    fn require_cart_refuses_redemptions_without_one() -> Result<(), RunError> {
        let config =
            r#"{"basis_points": 1000, "cap_minor": 2000, "currency": "EUR", "require_cart": true}"#;
        assert_eq!(rejection(run(config, redemption(1))), "cart-required");
        assert_eq!(run(config, with_cart(cart(100)))?.points_cost, 700);
        Ok(())
    }

    #[test]
    fn a_cart_worth_nothing_is_rejected() {
        assert_eq!(rejection(run(CONFIG, with_cart(cart(0)))), "cart-empty");
        assert_eq!(rejection(run(CONFIG, with_cart(cart(-100)))), "cart-empty");
    }

    #[test]
    fn bad_configs_are_refused_with_a_clear_message() {
        let cases = [
            (
                r#"{"basis_points": 0, "cap_minor": 2000, "currency": "EUR"}"#,
                "basis_points must be between 1 and 10000 (1000 = 10 %, 10000 = 100 %), got 0",
            ),
            (
                r#"{"basis_points": 10001, "cap_minor": 2000, "currency": "EUR"}"#,
                "basis_points must be between 1 and 10000",
            ),
            (
                r#"{"basis_points": 1000, "cap_minor": 0, "currency": "EUR"}"#,
                "cap_minor must be between 1 and 100000000 (2000 = 20.00 EUR), got 0",
            ),
            (
                r#"{"basis_points": 1000, "currency": "EUR"}"#,
                "missing field `cap_minor`",
            ),
            (
                r#"{"basis_points": 1000, "cap_minor": 2000, "currency": "Eur"}"#,
                "currency must be an ISO 4217 code",
            ),
            (
                r#"{"basis_points": 1000, "cap_minor": 2000, "currency": "EUR", "min_cart_total_minor": -1}"#,
                "min_cart_total_minor must be between 1",
            ),
            (
                r#"{"percent": 10, "cap_minor": 2000, "currency": "EUR"}"#,
                "unknown field `percent`",
            ),
            (
                r#"{"basis_points": 12.5, "cap_minor": 2000, "currency": "EUR"}"#,
                "invalid type: floating point",
            ),
            ("[]", "invalid config"),
        ];
        for (config, expected) in cases {
            match run(config, redemption(1)) {
                Err(RunError::InvalidConfig(msg)) => {
                    assert!(
                        msg.contains(expected),
                        "{config}: {msg:?} lacks {expected:?}"
                    );
                }
                other => panic!("{config}: expected InvalidConfig, got {other:?}"),
            }
        }
    }

    #[test]
    fn quote_rejects_a_config_the_host_should_have_refused() {
        let result = PercentDiscount::quote(input("{}", 700, redemption(1)));
        assert!(matches!(result, Err(r) if r.reason_code == "bad-config"));
    }

    #[test]
    fn metadata_is_consistent() -> Result<(), String> {
        let metadata = PercentDiscount::metadata();
        assert_eq!(metadata.name, "percent-discount");
        assert_eq!(metadata.version, env!("CARGO_PKG_VERSION"));
        testing::check_metadata(&metadata, PercentDiscount::validate_config)
    }
}
