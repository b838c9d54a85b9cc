//! Free product: one or more units of a SKU for free, bought with the reward's
//! catalogue price in points, optionally only with a qualifying purchase.
//!
//! Config (JSON):
//!
//! ```json
//! {
//!   "sku": "COFFEE-REG",
//!   "quantity": 1,
//!   "max_quantity": 5,
//!   "qualifying_skus": ["CROISSANT"],
//!   "qualifying_categories": ["bakery"]
//! }
//! ```
//!
//! - `sku` (required): the free product, 1..=128 characters, no leading or
//!   trailing spaces.
//! - `quantity` (default 1): free items per unit redeemed, 1..=100.
//! - `max_quantity` (optional): most units in one redemption, 1..=100.
//!   Whatever it says, one redemption gives at most 100 free items
//!   (`quantity * units`), which keeps the output small.
//! - `qualifying_skus`, `qualifying_categories` (default empty): at most 100
//!   non-empty entries each. When either is non-empty the reward is a "buy X,
//!   get the free product" offer: it needs a cart with at least one line of a
//!   listed SKU or of a listed category (SKUs and categories match exactly,
//!   case-sensitively, as the tenant names them; lines with quantity 0 do not
//!   count).
//!
//! # Quote
//!
//! `units` units cost `base_points_cost * units` points and give
//! `quantity * units` [`Effect::FreeItem`] effects for `sku` (the effect is one
//! unit of the SKU). The free product does not need to be in the cart: the host
//! adds it. Money plays no part, so the request's currency is not checked.
//!
//! # Rejections (stable reason codes)
//!
//! | code | when |
//! | --- | --- |
//! | `bad-config` | the stored config no longer parses (the host validates it first) |
//! | `invalid-quantity` | quantity 0 |
//! | `quantity-too-large` | above `max_quantity`, more than 100 free items, or the cost overflows |
//! | `invalid-reward-cost` | the catalogue's `base_points_cost` is negative |
//! | `cart-required` | a qualifying condition is set and no cart is given |
//! | `no-qualifying-item` | the cart has no qualifying line |
//!
//! Build the component with
//! `cargo build --release --target wasm32-unknown-unknown -p free-product`.

use loyalty_sdk::{
    Effect, PluginMetadata, RedemptionQuote, RedemptionRequest, Rejection, RewardInput, RewardType,
};
use serde::Deserialize;

/// Longest SKU, SKU or category name in the config, in characters.
const NAME_MAX_CHARS: usize = 128;
/// Most free items in one redemption, and bound of `quantity` and `max_quantity`.
const ITEMS_MAX: u32 = 100;
/// Most entries in each qualifying list.
const QUALIFYING_MAX: usize = 100;

/// The free-product reward type.
pub struct FreeProduct;

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The free product.
    pub sku: String,
    /// Free items per unit redeemed.
    #[serde(default = "default_quantity")]
    pub quantity: u32,
    /// Most units per redemption.
    #[serde(default)]
    pub max_quantity: Option<u32>,
    /// SKUs that qualify a cart.
    #[serde(default)]
    pub qualifying_skus: Vec<String>,
    /// Categories that qualify a cart.
    #[serde(default)]
    pub qualifying_categories: Vec<String>,
}

fn default_quantity() -> u32 {
    1
}

/// Checks one name (SKU or category) of the config.
fn check_name(field: &str, name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if name.trim() != name {
        return Err(format!(
            "{field} must not start or end with spaces, got {name:?}"
        ));
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(format!(
            "{field} must be at most {NAME_MAX_CHARS} characters, got {name:?}"
        ));
    }
    Ok(())
}

impl Config {
    /// Parses and checks a config, with messages for the tenant's admin.
    pub fn parse(config: &str) -> Result<Self, String> {
        let config: Self = loyalty_sdk::parse_config(config)?;
        check_name("sku", &config.sku)?;
        if !(1..=ITEMS_MAX).contains(&config.quantity) {
            return Err(format!(
                "quantity (free items per unit redeemed) must be between 1 and {ITEMS_MAX}, got {}",
                config.quantity
            ));
        }
        if let Some(max) = config.max_quantity
            && !(1..=ITEMS_MAX).contains(&max)
        {
            return Err(format!(
                "max_quantity must be between 1 and {ITEMS_MAX}, got {max}; \
                 leave it out for no limit"
            ));
        }
        for (field, list) in [
            ("qualifying_skus", &config.qualifying_skus),
            ("qualifying_categories", &config.qualifying_categories),
        ] {
            if list.len() > QUALIFYING_MAX {
                return Err(format!(
                    "{field} must have at most {QUALIFYING_MAX} entries, got {}",
                    list.len()
                ));
            }
            for name in list {
                check_name(&format!("every entry of {field}"), name)?;
            }
        }
        Ok(config)
    }

    /// Whether a cart is needed to check a qualifying condition.
    fn has_condition(&self) -> bool {
        !self.qualifying_skus.is_empty() || !self.qualifying_categories.is_empty()
    }

    /// Prices a request, or says why it is refused.
    fn quote(
        &self,
        base_points_cost: i64,
        request: &RedemptionRequest,
    ) -> Result<RedemptionQuote, Rejection> {
        let units = request.quantity;
        if units == 0 {
            return Err(Rejection::new(
                "invalid-quantity",
                "At least one unit must be redeemed.",
            ));
        }
        if let Some(max) = self.max_quantity
            && units > max
        {
            return Err(Rejection::new(
                "quantity-too-large",
                format!("At most {max} units of this reward can be redeemed at once."),
            ));
        }
        let items = units
            .checked_mul(self.quantity)
            .filter(|items| *items <= ITEMS_MAX)
            .ok_or_else(|| {
                Rejection::new(
                    "quantity-too-large",
                    format!("One redemption gives at most {ITEMS_MAX} free items."),
                )
            })?;
        if base_points_cost < 0 {
            return Err(Rejection::new(
                "invalid-reward-cost",
                "This reward has a negative points cost; please contact support.",
            ));
        }
        let points_cost = base_points_cost
            .checked_mul(i64::from(units))
            .ok_or_else(|| {
                Rejection::new(
                    "quantity-too-large",
                    format!("{units} units of this reward are too many to redeem at once."),
                )
            })?;
        if self.has_condition() {
            let Some(cart) = &request.cart else {
                return Err(Rejection::new(
                    "cart-required",
                    "This free product comes with a qualifying purchase: redeem it at checkout.",
                ));
            };
            let qualifies = cart.lines.iter().any(|line| {
                line.quantity > 0
                    && (self.qualifying_skus.contains(&line.sku)
                        || self.qualifying_categories.contains(&line.category))
            });
            if !qualifies {
                return Err(Rejection::new(
                    "no-qualifying-item",
                    "The cart has no qualifying product for this free product.",
                ));
            }
        }
        let effects = (0..items)
            .map(|_| Effect::FreeItem(self.sku.clone()))
            .collect();
        Ok(RedemptionQuote {
            points_cost,
            effects,
        })
    }
}

impl RewardType for FreeProduct {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "free-product".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "One or more units of a product for free, optionally only when the \
                          cart holds a qualifying product or category."
                .into(),
            config_schema: r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["sku"],
  "properties": {
    "sku": {"type": "string", "minLength": 1, "maxLength": 128},
    "quantity": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1},
    "max_quantity": {"type": "integer", "minimum": 1, "maximum": 100},
    "qualifying_skus": {
      "type": "array", "maxItems": 100, "default": [],
      "items": {"type": "string", "minLength": 1, "maxLength": 128}
    },
    "qualifying_categories": {
      "type": "array", "maxItems": 100, "default": [],
      "items": {"type": "string", "minLength": 1, "maxLength": 128}
    }
  }
}"#
            .into(),
            config_example: r#"{"sku": "COFFEE-REG", "quantity": 1, "max_quantity": 5, "qualifying_skus": ["CROISSANT"], "qualifying_categories": ["bakery"]}"#
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

loyalty_sdk::export_plugin!(FreeProduct: reward_type);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{
        self, RunError, TEST_TIME_MS, member, purchase, redemption, reward,
    };
    use loyalty_sdk::{Cart, Effect, RedemptionQuote, RedemptionRequest, RewardInput, RewardType};

    use super::FreeProduct;

    const CONFIG: &str = r#"{"sku": "COFFEE"}"#;
    const CONDITIONAL: &str = r#"{"sku": "COFFEE", "qualifying_skus": ["CROISSANT"], "qualifying_categories": ["bakery"]}"#;

    fn input(config: &str, base_points_cost: i64, request: RedemptionRequest) -> RewardInput {
        RewardInput {
            reward: reward("r-1", "Free coffee", base_points_cost),
            config: config.into(),
            member: member(),
            request,
            requested_at_ms: TEST_TIME_MS,
        }
    }

    fn run(config: &str, request: RedemptionRequest) -> Result<RedemptionQuote, RunError> {
        testing::run_reward_type::<FreeProduct>(input(config, 250, request))
    }

    fn with_cart(quantity: u32, cart: Cart) -> RedemptionRequest {
        RedemptionRequest {
            cart: Some(cart),
            ..redemption(quantity)
        }
    }

    fn coffees(n: usize) -> Vec<Effect> {
        vec![Effect::FreeItem("COFFEE".into()); n]
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
    fn one_unit_gives_one_item_for_the_catalogue_price() -> Result<(), RunError> {
        let quote = run(CONFIG, redemption(1))?;
        assert_eq!(quote.points_cost, 250);
        assert_eq!(quote.effects, coffees(1));
        Ok(())
    }

    #[test]
    fn several_units_of_several_items_each() -> Result<(), RunError> {
        let quote = run(r#"{"sku": "COFFEE", "quantity": 2}"#, redemption(3))?;
        assert_eq!(quote.points_cost, 750);
        assert_eq!(quote.effects, coffees(6));
        Ok(())
    }

    #[test]
    fn max_quantity_is_enforced() -> Result<(), RunError> {
        let config = r#"{"sku": "COFFEE", "max_quantity": 2}"#;
        assert_eq!(run(config, redemption(2))?.effects, coffees(2));
        assert_eq!(rejection(run(config, redemption(3))), "quantity-too-large");
        Ok(())
    }

    #[test]
    fn at_most_100_items_per_redemption() -> Result<(), RunError> {
        let config = r#"{"sku": "COFFEE", "quantity": 10}"#;
        assert_eq!(run(config, redemption(10))?.effects, coffees(100));
        assert_eq!(rejection(run(config, redemption(11))), "quantity-too-large");
        assert_eq!(
            rejection(run(config, redemption(u32::MAX))),
            "quantity-too-large"
        );
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
            rejection(testing::run_reward_type::<FreeProduct>(huge)),
            "quantity-too-large"
        );
    }

    #[test]
    fn negative_catalogue_cost_is_rejected() {
        let result = testing::run_reward_type::<FreeProduct>(input(CONFIG, -250, redemption(1)));
        assert_eq!(rejection(result), "invalid-reward-cost");
    }

    #[test]
    fn an_unconditional_product_ignores_the_cart() -> Result<(), RunError> {
        let cart = purchase().line("X", "toys", 1, 1_000).cart();
        assert_eq!(run(CONFIG, with_cart(1, cart))?.effects, coffees(1));
        Ok(())
    }

    #[test]
    fn a_qualifying_sku_or_category_unlocks_the_product() -> Result<(), RunError> {
        let by_sku = purchase()
            .line("TEA", "drinks", 1, 300)
            .line("CROISSANT", "pastry", 1, 200)
            .cart();
        assert_eq!(run(CONDITIONAL, with_cart(1, by_sku))?.effects, coffees(1));
        let by_category = purchase().line("BAGEL", "bakery", 2, 150).cart();
        assert_eq!(
            run(CONDITIONAL, with_cart(2, by_category))?.effects,
            coffees(2)
        );
        Ok(())
    }

    #[test]
    fn without_a_qualifying_line_the_product_is_refused() {
        let cart = purchase()
            .line("TEA", "drinks", 1, 300)
            .line("croissant", "Bakery", 1, 200)
            .line("CROISSANT", "pastry", 0, 200)
            .cart();
        assert_eq!(
            rejection(run(CONDITIONAL, with_cart(1, cart))),
            "no-qualifying-item"
        );
        let empty = purchase().cart();
        assert_eq!(
            rejection(run(CONDITIONAL, with_cart(1, empty))),
            "no-qualifying-item"
        );
    }

    #[test]
    fn a_condition_needs_a_cart() {
        assert_eq!(rejection(run(CONDITIONAL, redemption(1))), "cart-required");
    }

    #[test]
    fn bad_configs_are_refused_with_a_clear_message() {
        let cases = [
            (r#"{"sku": ""}"#, "sku must not be empty"),
            (r#"{"sku": "  "}"#, "sku must not be empty"),
            (
                r#"{"sku": " COFFEE"}"#,
                "sku must not start or end with spaces",
            ),
            (
                r#"{"sku": "COFFEE", "quantity": 0}"#,
                "quantity (free items per unit redeemed) must be between 1 and 100, got 0",
            ),
            (
                r#"{"sku": "COFFEE", "quantity": 101}"#,
                "must be between 1 and 100, got 101",
            ),
            (
                r#"{"sku": "COFFEE", "max_quantity": 0}"#,
                "max_quantity must be between 1 and 100, got 0",
            ),
            (
                r#"{"sku": "COFFEE", "qualifying_skus": ["A", ""]}"#,
                "every entry of qualifying_skus must not be empty",
            ),
            (
                r#"{"sku": "COFFEE", "qualifying_categories": "bakery"}"#,
                "invalid type: string \"bakery\", expected a sequence",
            ),
            (
                r#"{"sku": "COFFEE", "qualifying_sku": ["A"]}"#,
                "unknown field `qualifying_sku`",
            ),
            (r#"{"quantity": 1}"#, "missing field `sku`"),
            ("", "invalid config"),
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
    fn long_names_and_lists_are_refused() {
        let long = "X".repeat(129);
        let config = format!(r#"{{"sku": "{long}"}}"#);
        assert!(matches!(
            run(&config, redemption(1)),
            Err(RunError::InvalidConfig(msg)) if msg.contains("at most 128 characters")
        ));
        let many: Vec<String> = (0..101).map(|i| format!("S{i}")).collect();
        let config = serde_json::json!({"sku": "COFFEE", "qualifying_skus": many}).to_string();
        assert!(matches!(
            run(&config, redemption(1)),
            Err(RunError::InvalidConfig(msg))
                if msg == "qualifying_skus must have at most 100 entries, got 101"
        ));
    }

    #[test]
    fn quote_rejects_a_config_the_host_should_have_refused() {
        let result = FreeProduct::quote(input("{}", 250, redemption(1)));
        assert!(matches!(result, Err(r) if r.reason_code == "bad-config"));
    }

    #[test]
    fn metadata_is_consistent() -> Result<(), String> {
        let metadata = FreeProduct::metadata();
        assert_eq!(metadata.name, "free-product");
        assert_eq!(metadata.version, env!("CARGO_PKG_VERSION"));
        testing::check_metadata(&metadata, FreeProduct::validate_config)
    }
}
