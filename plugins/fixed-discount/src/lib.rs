//! Fixed discount: a fixed amount off, bought with the reward's catalogue price in
//! points.
//!
//! Config (JSON):
//!
//! ```json
//! {
//!   "amount_minor": 500,
//!   "currency": "EUR",
//!   "min_cart_total_minor": 2500,
//!   "require_cart": false,
//!   "max_quantity": 4
//! }
//! ```
//!
//! - `amount_minor` (required): discount per unit redeemed, in minor units,
//!   1..=100 000 000 (500 = 5.00 EUR).
//! - `currency` (required): ISO 4217 code of the amount, three upper-case
//!   letters. A request in another currency is refused: the plugin never converts.
//! - `min_cart_total_minor` (optional): smallest cart total, in minor units of
//!   `currency`, 1..=100 000 000 000.
//! - `require_cart` (default `false`): when `true` the reward can only be
//!   redeemed at checkout, with a cart.
//! - `max_quantity` (optional): most units in one redemption, 1..=10 000; without
//!   it any quantity whose cost fits is accepted.
//!
//! # Quote
//!
//! `quantity` units cost `base_points_cost * quantity` points and give one
//! [`Effect::FixedDiscount`] of `amount_minor * quantity` in `currency` (one
//! combined discount, not one per unit, so the output stays small whatever the
//! quantity).
//!
//! With a cart, the minimum is checked against the cart's `total_minor`, and a
//! discount larger than the cart total is refused: the member would pay points
//! for value they cannot use. Without a cart neither can be checked; the quote
//! is then a voucher, and an admin who needs the minimum enforced must set
//! `require_cart`.
//!
//! # Rejections (stable reason codes)
//!
//! | code | when |
//! | --- | --- |
//! | `bad-config` | the stored config no longer parses (the host validates it first) |
//! | `invalid-quantity` | quantity 0 |
//! | `quantity-too-large` | above `max_quantity`, or the cost or the discount overflows |
//! | `invalid-reward-cost` | the catalogue's `base_points_cost` is negative |
//! | `currency-mismatch` | the request's currency is not `currency` |
//! | `cart-required` | `require_cart` and no cart |
//! | `cart-below-minimum` | the cart total is below `min_cart_total_minor` |
//! | `discount-exceeds-cart` | the discount is larger than the cart total |
//!
//! Build the component with
//! `cargo build --release --target wasm32-unknown-unknown -p fixed-discount`.

use loyalty_sdk::{
    Effect, Money, PluginMetadata, RedemptionQuote, RedemptionRequest, Rejection, RewardInput,
    RewardType,
};
use serde::Deserialize;

/// Upper bound of `amount_minor` (1 000 000.00 in a two-decimal currency).
const AMOUNT_MAX: i64 = 100_000_000;
/// Upper bound of `min_cart_total_minor`.
const MIN_CART_MAX: i64 = 100_000_000_000;
/// Upper bound of `max_quantity`.
const MAX_QUANTITY_MAX: u32 = 10_000;

// The largest discount, `AMOUNT_MAX * u32::MAX`, fits in an i64; only the points
// cost (a catalogue price of any size times the quantity) can overflow.
const _: () = assert!(AMOUNT_MAX.checked_mul(u32::MAX as i64).is_some());

/// The fixed-discount reward type.
pub struct FixedDiscount;

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Discount per unit, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code of the discount and of the minimum.
    pub currency: String,
    /// Smallest cart total, when the reward has one.
    #[serde(default)]
    pub min_cart_total_minor: Option<i64>,
    /// Whether a cart is required.
    #[serde(default)]
    pub require_cart: bool,
    /// Most units per redemption.
    #[serde(default)]
    pub max_quantity: Option<u32>,
}

impl Config {
    /// Parses and checks a config, with messages for the tenant's admin.
    pub fn parse(config: &str) -> Result<Self, String> {
        let config: Self = loyalty_sdk::parse_config(config)?;
        if !(1..=AMOUNT_MAX).contains(&config.amount_minor) {
            return Err(format!(
                "amount_minor must be between 1 and {AMOUNT_MAX} (500 = 5.00 EUR), got {}",
                config.amount_minor
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
        if let Some(max) = config.max_quantity
            && !(1..=MAX_QUANTITY_MAX).contains(&max)
        {
            return Err(format!(
                "max_quantity must be between 1 and {MAX_QUANTITY_MAX}, got {max}; \
                 leave it out for no limit"
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
        let quantity = request.quantity;
        if quantity == 0 {
            return Err(Rejection::new(
                "invalid-quantity",
                "At least one unit must be redeemed.",
            ));
        }
        if let Some(max) = self.max_quantity
            && quantity > max
        {
            return Err(Rejection::new(
                "quantity-too-large",
                format!("At most {max} units of this reward can be redeemed at once."),
            ));
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
        let too_large = || {
            Rejection::new(
                "quantity-too-large",
                format!("{quantity} units of this reward are too many to redeem at once."),
            )
        };
        let points_cost = base_points_cost
            .checked_mul(i64::from(quantity))
            .ok_or_else(too_large)?;
        let discount = self
            .amount_minor
            .checked_mul(i64::from(quantity))
            .ok_or_else(too_large)?;
        match &request.cart {
            None if self.require_cart => {
                return Err(Rejection::new(
                    "cart-required",
                    "This discount can only be redeemed at checkout.",
                ));
            }
            None => {}
            Some(cart) => {
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
                if discount > cart.total_minor {
                    return Err(Rejection::new(
                        "discount-exceeds-cart",
                        format!(
                            "A discount of {discount} is more than the cart total of {} \
                             (minor units of {}); redeem fewer units.",
                            cart.total_minor, self.currency
                        ),
                    ));
                }
            }
        }
        Ok(RedemptionQuote {
            points_cost,
            effects: vec![Effect::FixedDiscount(Money {
                amount_minor: discount,
                currency: self.currency.clone(),
            })],
        })
    }
}

/// Whether `code` looks like an ISO 4217 code: three ASCII upper-case letters.
fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

impl RewardType for FixedDiscount {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "fixed-discount".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A fixed amount off, optionally with a minimum cart total and a \
                          limit on the units per redemption."
                .into(),
            config_schema: r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["amount_minor", "currency"],
  "properties": {
    "amount_minor": {"type": "integer", "minimum": 1, "maximum": 100000000},
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "min_cart_total_minor": {"type": "integer", "minimum": 1, "maximum": 100000000000},
    "require_cart": {"type": "boolean", "default": false},
    "max_quantity": {"type": "integer", "minimum": 1, "maximum": 10000}
  }
}"#
            .into(),
            config_example: r#"{"amount_minor": 500, "currency": "EUR", "min_cart_total_minor": 2500, "require_cart": false, "max_quantity": 4}"#
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

loyalty_sdk::export_plugin!(FixedDiscount: reward_type);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{
        self, RunError, TEST_TIME_MS, member, purchase, redemption, reward,
    };
    use loyalty_sdk::{
        Cart, Effect, Money, RedemptionQuote, RedemptionRequest, RewardInput, RewardType,
    };

    use super::FixedDiscount;

    const CONFIG: &str = r#"{"amount_minor": 500, "currency": "EUR"}"#;

    fn input(config: &str, base_points_cost: i64, request: RedemptionRequest) -> RewardInput {
        RewardInput {
            reward: reward("r-1", "5 EUR off", base_points_cost),
            config: config.into(),
            member: member(),
            request,
            requested_at_ms: TEST_TIME_MS,
        }
    }

    fn run(config: &str, request: RedemptionRequest) -> Result<RedemptionQuote, RunError> {
        testing::run_reward_type::<FixedDiscount>(input(config, 400, request))
    }

    fn with_cart(quantity: u32, cart: Cart) -> RedemptionRequest {
        RedemptionRequest {
            cart: Some(cart),
            ..redemption(quantity)
        }
    }

    fn cart(total_minor: i64) -> Cart {
        purchase().line("A", "shoes", 1, total_minor).cart()
    }

    fn eur(amount_minor: i64) -> Effect {
        Effect::FixedDiscount(Money {
            amount_minor,
            currency: "EUR".into(),
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
    fn one_unit_costs_the_catalogue_price() -> Result<(), RunError> {
        let quote = run(CONFIG, redemption(1))?;
        assert_eq!(quote.points_cost, 400);
        assert_eq!(quote.effects, vec![eur(500)]);
        Ok(())
    }

    #[test]
    fn several_units_multiply_cost_and_discount() -> Result<(), RunError> {
        let quote = run(CONFIG, redemption(3))?;
        assert_eq!(quote.points_cost, 1_200);
        assert_eq!(quote.effects, vec![eur(1_500)]);
        Ok(())
    }

    #[test]
    fn a_free_reward_costs_nothing() -> Result<(), RunError> {
        let quote = testing::run_reward_type::<FixedDiscount>(input(CONFIG, 0, redemption(2)))?;
        assert_eq!(quote.points_cost, 0);
        assert_eq!(quote.effects, vec![eur(1_000)]);
        Ok(())
    }

    #[test]
    fn max_quantity_is_enforced() -> Result<(), RunError> {
        let config = r#"{"amount_minor": 500, "currency": "EUR", "max_quantity": 2}"#;
        assert_eq!(run(config, redemption(2))?.points_cost, 800);
        assert_eq!(rejection(run(config, redemption(3))), "quantity-too-large");
        Ok(())
    }

    #[test]
    fn quantity_zero_is_rejected() {
        assert_eq!(rejection(run(CONFIG, redemption(0))), "invalid-quantity");
    }

    #[test]
    fn overflowing_cost_is_rejected_not_wrapped() {
        let huge = input(CONFIG, i64::MAX / 2, redemption(3));
        assert_eq!(
            rejection(testing::run_reward_type::<FixedDiscount>(huge)),
            "quantity-too-large"
        );
    }

    #[test]
    fn the_largest_discount_fits_and_only_the_cost_can_overflow() -> Result<(), RunError> {
        let config = r#"{"amount_minor": 100000000, "currency": "EUR"}"#;
        let quote =
            testing::run_reward_type::<FixedDiscount>(input(config, 1, redemption(u32::MAX)))?;
        assert_eq!(quote.effects, vec![eur(100_000_000 * i64::from(u32::MAX))]);
        let costly = input(config, i64::MAX / 1_000, redemption(u32::MAX));
        assert_eq!(
            rejection(testing::run_reward_type::<FixedDiscount>(costly)),
            "quantity-too-large"
        );
        Ok(())
    }

    #[test]
    fn negative_catalogue_cost_is_rejected() {
        let result = testing::run_reward_type::<FixedDiscount>(input(CONFIG, -10, redemption(1)));
        assert_eq!(rejection(result), "invalid-reward-cost");
    }

    #[test]
    fn another_currency_is_rejected() {
        let request = RedemptionRequest {
            currency: "USD".into(),
            ..redemption(1)
        };
        assert_eq!(rejection(run(CONFIG, request)), "currency-mismatch");
    }

    #[test]
    fn minimum_cart_is_checked_when_a_cart_is_given() -> Result<(), RunError> {
        let config = r#"{"amount_minor": 500, "currency": "EUR", "min_cart_total_minor": 2500}"#;
        assert_eq!(
            rejection(run(config, with_cart(1, cart(2_499)))),
            "cart-below-minimum"
        );
        assert_eq!(
            run(config, with_cart(1, cart(2_500)))?.effects,
            vec![eur(500)]
        );
        // Without a cart the minimum cannot be checked: the quote is a voucher.
        assert_eq!(run(config, redemption(1))?.effects, vec![eur(500)]);
        Ok(())
    }

    #[test]
    fn require_cart_refuses_redemptions_without_one() -> Result<(), RunError> {
        let config = r#"{"amount_minor": 500, "currency": "EUR", "require_cart": true}"#;
        assert_eq!(rejection(run(config, redemption(1))), "cart-required");
        assert_eq!(run(config, with_cart(1, cart(1_000)))?.points_cost, 400);
        Ok(())
    }

    #[test]
    fn discount_larger_than_the_cart_is_rejected() -> Result<(), RunError> {
        assert_eq!(
            rejection(run(CONFIG, with_cart(3, cart(1_499)))),
            "discount-exceeds-cart"
        );
        assert_eq!(
            run(CONFIG, with_cart(3, cart(1_500)))?.effects,
            vec![eur(1_500)]
        );
        Ok(())
    }

    #[test]
    fn the_quote_is_deterministic() -> Result<(), RunError> {
        let request = with_cart(2, cart(5_000));
        assert_eq!(run(CONFIG, request.clone())?, run(CONFIG, request)?);
        Ok(())
    }

    #[test]
    fn bad_configs_are_refused_with_a_clear_message() {
        let cases = [
            (
                r#"{"amount_minor": 0, "currency": "EUR"}"#,
                "amount_minor must be between 1 and 100000000 (500 = 5.00 EUR), got 0",
            ),
            (
                r#"{"amount_minor": -5, "currency": "EUR"}"#,
                "amount_minor must be between 1",
            ),
            (
                r#"{"amount_minor": 500, "currency": "eur"}"#,
                "currency must be an ISO 4217 code",
            ),
            (
                r#"{"amount_minor": 500, "currency": "EURO"}"#,
                "currency must be an ISO 4217 code",
            ),
            (
                r#"{"amount_minor": 500, "currency": "EUR", "min_cart_total_minor": 0}"#,
                "min_cart_total_minor must be between 1",
            ),
            (
                r#"{"amount_minor": 500, "currency": "EUR", "max_quantity": 0}"#,
                "max_quantity must be between 1 and 10000, got 0",
            ),
            (
                r#"{"amount_minor": 500, "currency": "EUR", "max_quantity": -1}"#,
                "invalid value: integer `-1`",
            ),
            (
                r#"{"amount_minor": 500, "currency": "EUR", "amount": 5}"#,
                "unknown field `amount`",
            ),
            (r#"{"amount_minor": 500}"#, "missing field `currency`"),
            (r#"{"currency": "EUR"}"#, "missing field `amount_minor`"),
            (
                r#"{"amount_minor": 5.5, "currency": "EUR"}"#,
                "invalid type: floating point",
            ),
            ("not json", "invalid config"),
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
        let result = FixedDiscount::quote(input("{}", 400, redemption(1)));
        assert!(matches!(result, Err(r) if r.reason_code == "bad-config"));
    }

    #[test]
    fn metadata_is_consistent() -> Result<(), String> {
        let metadata = FixedDiscount::metadata();
        assert_eq!(metadata.name, "fixed-discount");
        assert_eq!(metadata.version, env!("CARGO_PKG_VERSION"));
        testing::check_metadata(&metadata, FixedDiscount::validate_config)
    }
}
