//! Free shipping on one order, bought with the reward's catalogue price in
//! points, optionally above a minimum cart total.
//!
//! Config (JSON; every field is optional, so `{}` is free shipping on any order):
//!
//! ```json
//! { "currency": "EUR", "min_cart_total_minor": 3000, "require_cart": false }
//! ```
//!
//! - `currency` (optional): ISO 4217 code, three upper-case letters. When set, a
//!   request in another currency is refused (the plugin never converts), which
//!   also limits the reward to the market that uses it.
//! - `min_cart_total_minor` (optional): smallest cart total, in minor units of
//!   `currency`, 1..=100 000 000 000. Requires `currency`: an amount without a
//!   currency means nothing.
//! - `require_cart` (default `false`): when `true` the reward can only be
//!   redeemed at checkout, with a cart.
//!
//! # Quote
//!
//! One unit costs `base_points_cost` points and gives one
//! [`Effect::FreeShipping`]. An order ships once, so the quantity must be 1.
//!
//! With a cart, the minimum is checked against the cart's `total_minor`. Without
//! a cart it cannot be checked; the quote is then a voucher, and an admin who
//! needs the minimum enforced must set `require_cart`.
//!
//! # Rejections (stable reason codes)
//!
//! | code | when |
//! | --- | --- |
//! | `bad-config` | the stored config no longer parses (the host validates it first) |
//! | `invalid-quantity` | quantity 0 |
//! | `quantity-too-large` | quantity above 1 |
//! | `invalid-reward-cost` | the catalogue's `base_points_cost` is negative |
//! | `currency-mismatch` | `currency` is set and the request's currency differs |
//! | `cart-required` | `require_cart` and no cart |
//! | `cart-below-minimum` | the cart total is below `min_cart_total_minor` |
//!
//! Build the component with
//! `cargo build --release --target wasm32-unknown-unknown -p free-shipping`.

use loyalty_sdk::{
    Effect, PluginMetadata, RedemptionQuote, RedemptionRequest, Rejection, RewardInput, RewardType,
};
use serde::Deserialize;

/// Upper bound of `min_cart_total_minor`.
const MIN_CART_MAX: i64 = 100_000_000_000;

/// The free-shipping reward type.
pub struct FreeShipping;

/// The plugin's config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// ISO 4217 code the reward is limited to.
    #[serde(default)]
    pub currency: Option<String>,
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
        if let Some(currency) = &config.currency
            && !is_currency_code(currency)
        {
            return Err(format!(
                "currency must be an ISO 4217 code of three upper-case letters, e.g. \"EUR\", got {currency:?}"
            ));
        }
        if let Some(min) = config.min_cart_total_minor {
            if !(1..=MIN_CART_MAX).contains(&min) {
                return Err(format!(
                    "min_cart_total_minor must be between 1 and {MIN_CART_MAX}, got {min}; \
                     leave it out for no minimum"
                ));
            }
            if config.currency.is_none() {
                return Err(
                    "min_cart_total_minor needs a currency: add \"currency\", e.g. \"EUR\"".into(),
                );
            }
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
                    "An order ships once: redeem free shipping one at a time.",
                ));
            }
        }
        if base_points_cost < 0 {
            return Err(Rejection::new(
                "invalid-reward-cost",
                "This reward has a negative points cost; please contact support.",
            ));
        }
        if let Some(currency) = &self.currency
            && request.currency != *currency
        {
            return Err(Rejection::new(
                "currency-mismatch",
                format!(
                    "This reward is for orders in {currency}; it cannot be used in {}.",
                    request.currency
                ),
            ));
        }
        match &request.cart {
            None if self.require_cart => {
                return Err(Rejection::new(
                    "cart-required",
                    "Free shipping can only be redeemed at checkout.",
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
                            request.currency, cart.total_minor
                        ),
                    ));
                }
            }
        }
        Ok(RedemptionQuote {
            points_cost: base_points_cost,
            effects: vec![Effect::FreeShipping],
        })
    }
}

/// Whether `code` looks like an ISO 4217 code: three ASCII upper-case letters.
fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

impl RewardType for FreeShipping {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "free-shipping".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Free shipping on one order, optionally above a minimum cart total."
                .into(),
            config_schema: r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "min_cart_total_minor": {"type": "integer", "minimum": 1, "maximum": 100000000000},
    "require_cart": {"type": "boolean", "default": false}
  },
  "dependentRequired": {"min_cart_total_minor": ["currency"]}
}"#
            .into(),
            config_example:
                r#"{"currency": "EUR", "min_cart_total_minor": 3000, "require_cart": false}"#.into(),
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

loyalty_sdk::export_plugin!(FreeShipping: reward_type);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{
        self, RunError, TEST_TIME_MS, member, purchase, redemption, reward,
    };
    use loyalty_sdk::{Cart, Effect, RedemptionQuote, RedemptionRequest, RewardInput, RewardType};

    use super::FreeShipping;

    const MIN_30_EUR: &str = r#"{"currency": "EUR", "min_cart_total_minor": 3000}"#;

    fn input(config: &str, base_points_cost: i64, request: RedemptionRequest) -> RewardInput {
        RewardInput {
            reward: reward("r-1", "Free shipping", base_points_cost),
            config: config.into(),
            member: member(),
            request,
            requested_at_ms: TEST_TIME_MS,
        }
    }

    fn run(config: &str, request: RedemptionRequest) -> Result<RedemptionQuote, RunError> {
        testing::run_reward_type::<FreeShipping>(input(config, 300, request))
    }

    fn with_cart(cart: Cart) -> RedemptionRequest {
        RedemptionRequest {
            cart: Some(cart),
            ..redemption(1)
        }
    }

    fn cart(total_minor: i64) -> Cart {
        purchase().line("A", "shoes", 1, total_minor).cart()
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
    fn one_unit_gives_free_shipping_for_the_catalogue_price() -> Result<(), RunError> {
        let quote = run("{}", redemption(1))?;
        assert_eq!(quote.points_cost, 300);
        assert_eq!(quote.effects, vec![Effect::FreeShipping]);
        Ok(())
    }

    #[test]
    fn more_than_one_unit_is_rejected() {
        assert_eq!(rejection(run("{}", redemption(2))), "quantity-too-large");
        assert_eq!(
            rejection(run("{}", redemption(u32::MAX))),
            "quantity-too-large"
        );
    }

    #[test]
    fn quantity_zero_is_rejected() {
        assert_eq!(rejection(run("{}", redemption(0))), "invalid-quantity");
    }

    #[test]
    fn negative_catalogue_cost_is_rejected() {
        let result = testing::run_reward_type::<FreeShipping>(input("{}", -1, redemption(1)));
        assert_eq!(rejection(result), "invalid-reward-cost");
    }

    #[test]
    fn minimum_cart_is_checked_when_a_cart_is_given() -> Result<(), RunError> {
        assert_eq!(
            rejection(run(MIN_30_EUR, with_cart(cart(2_999)))),
            "cart-below-minimum"
        );
        assert_eq!(
            run(MIN_30_EUR, with_cart(cart(3_000)))?.effects,
            vec![Effect::FreeShipping]
        );
        assert_eq!(
            run(MIN_30_EUR, redemption(1))?.effects,
            vec![Effect::FreeShipping]
        );
        Ok(())
    }

    #[test]
    fn require_cart_refuses_redemptions_without_one() -> Result<(), RunError> {
        let config = r#"{"require_cart": true}"#;
        assert_eq!(rejection(run(config, redemption(1))), "cart-required");
        assert_eq!(run(config, with_cart(cart(0)))?.points_cost, 300);
        Ok(())
    }

    #[test]
    fn currency_limits_the_reward_to_one_market() -> Result<(), RunError> {
        let usd = RedemptionRequest {
            currency: "USD".into(),
            ..redemption(1)
        };
        assert_eq!(
            rejection(run(r#"{"currency": "EUR"}"#, usd.clone())),
            "currency-mismatch"
        );
        assert_eq!(run("{}", usd)?.effects, vec![Effect::FreeShipping]);
        Ok(())
    }

    #[test]
    fn bad_configs_are_refused_with_a_clear_message() {
        let cases = [
            (
                r#"{"min_cart_total_minor": 3000}"#,
                "min_cart_total_minor needs a currency",
            ),
            (
                r#"{"currency": "EUR", "min_cart_total_minor": 0}"#,
                "min_cart_total_minor must be between 1 and 100000000000, got 0",
            ),
            (r#"{"currency": "€"}"#, "currency must be an ISO 4217 code"),
            (
                r#"{"require_cart": "yes"}"#,
                "invalid type: string \"yes\", expected a boolean",
            ),
            (r#"{"quantity": 1}"#, "unknown field `quantity`"),
            ("null", "invalid config"),
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
        let result = FreeShipping::quote(input(r#"{"x": 1}"#, 300, redemption(1)));
        assert!(matches!(result, Err(r) if r.reason_code == "bad-config"));
    }

    #[test]
    fn metadata_is_consistent() -> Result<(), String> {
        let metadata = FreeShipping::metadata();
        assert_eq!(metadata.name, "free-shipping");
        assert_eq!(metadata.version, env!("CARGO_PKG_VERSION"));
        testing::check_metadata(&metadata, FreeShipping::validate_config)
    }
}
