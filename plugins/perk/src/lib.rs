//! Perk: a non-monetary benefit (early access, an event invitation, a lounge
//! pass...) delivered by the tenant's own systems, bought with the reward's
//! catalogue price in points.
//!
//! Config (JSON):
//!
//! ```json
//! {
//!   "code": "summer-sale-early-access",
//!   "title": "Early access to the summer sale",
//!   "description": "Shop the summer sale 48 hours before everyone else.",
//!   "max_quantity": 1,
//!   "eligible_tiers": ["gold", "platinum"]
//! }
//! ```
//!
//! - `code` (required): the perk's machine code, which the tenant's systems key
//!   on: 1..=64 characters of `a-z`, `0-9` and `-`, starting with a letter or a
//!   digit.
//! - `title` (required): what the member sees, 1..=200 characters, not blank.
//! - `description` (default empty): at most 2000 characters.
//! - `max_quantity` (default 1): most units in one redemption, 1..=1000 (e.g. 2
//!   for an invitation with a guest). Defaults to 1 because most perks are one
//!   per member.
//! - `eligible_tiers` (default empty = every tier): tier names, as the tenant
//!   names them (exact, case-sensitive), that may redeem the perk; at most 50.
//!
//! # Quote
//!
//! `quantity` units cost `base_points_cost * quantity` points and give one
//! [`Effect::CustomPerk`] whose `name` is `code` and whose `details_json` is
//!
//! ```json
//! {"code": "...", "title": "...", "description": "...", "quantity": 2, "reward_id": "..."}
//! ```
//!
//! (one effect carrying the quantity rather than one per unit, so the tenant's
//! system sees one booking of N places). Money plays no part: the request's
//! currency and cart are not looked at.
//!
//! # Rejections (stable reason codes)
//!
//! | code | when |
//! | --- | --- |
//! | `bad-config` | the stored config no longer parses (the host validates it first) |
//! | `invalid-quantity` | quantity 0 |
//! | `quantity-too-large` | above `max_quantity`, or the cost overflows |
//! | `invalid-reward-cost` | the catalogue's `base_points_cost` is negative |
//! | `tier-not-eligible` | `eligible_tiers` is set and the member's tier is not in it |
//!
//! Build the component with
//! `cargo build --release --target wasm32-unknown-unknown -p perk`.

use loyalty_sdk::{
    CustomPerk, Effect, PluginMetadata, RedemptionQuote, Rejection, RewardInput, RewardType,
};
use serde::Deserialize;

/// Longest `code`, in characters.
const CODE_MAX_CHARS: usize = 64;
/// Longest `title`, in characters.
const TITLE_MAX_CHARS: usize = 200;
/// Longest `description`, in characters.
const DESCRIPTION_MAX_CHARS: usize = 2_000;
/// Upper bound of `max_quantity`.
const MAX_QUANTITY_MAX: u32 = 1_000;
/// Most entries in `eligible_tiers`.
const TIERS_MAX: usize = 50;
/// Longest tier name, in characters.
const TIER_MAX_CHARS: usize = 64;

/// The perk reward type.
pub struct Perk;

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Machine code of the perk.
    pub code: String,
    /// What the member sees.
    pub title: String,
    /// More words for the member.
    #[serde(default)]
    pub description: String,
    /// Most units per redemption.
    #[serde(default = "default_max_quantity")]
    pub max_quantity: u32,
    /// Tiers that may redeem; empty means every tier.
    #[serde(default)]
    pub eligible_tiers: Vec<String>,
}

fn default_max_quantity() -> u32 {
    1
}

impl Config {
    /// Parses and checks a config, with messages for the tenant's admin.
    pub fn parse(config: &str) -> Result<Self, String> {
        let config: Self = loyalty_sdk::parse_config(config)?;
        let code = &config.code;
        let code_ok = (1..=CODE_MAX_CHARS).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !code.starts_with('-');
        if !code_ok {
            return Err(format!(
                "code must be 1 to {CODE_MAX_CHARS} characters of a-z, 0-9 and '-', \
                 not starting with '-', e.g. \"early-access\"; got {code:?}"
            ));
        }
        if config.title.trim().is_empty() {
            return Err("title must not be empty: it is what the member sees".into());
        }
        if config.title.chars().count() > TITLE_MAX_CHARS {
            return Err(format!(
                "title must be at most {TITLE_MAX_CHARS} characters, got {}",
                config.title.chars().count()
            ));
        }
        if config.description.chars().count() > DESCRIPTION_MAX_CHARS {
            return Err(format!(
                "description must be at most {DESCRIPTION_MAX_CHARS} characters, got {}",
                config.description.chars().count()
            ));
        }
        if !(1..=MAX_QUANTITY_MAX).contains(&config.max_quantity) {
            return Err(format!(
                "max_quantity must be between 1 and {MAX_QUANTITY_MAX}, got {}",
                config.max_quantity
            ));
        }
        if config.eligible_tiers.len() > TIERS_MAX {
            return Err(format!(
                "eligible_tiers must have at most {TIERS_MAX} entries, got {}; \
                 leave it out for every tier",
                config.eligible_tiers.len()
            ));
        }
        for tier in &config.eligible_tiers {
            if tier.trim().is_empty() || tier.chars().count() > TIER_MAX_CHARS {
                return Err(format!(
                    "every entry of eligible_tiers must be a tier name of 1 to \
                     {TIER_MAX_CHARS} characters, got {tier:?}"
                ));
            }
        }
        Ok(config)
    }
}

/// The details handed to the tenant's systems.
#[derive(serde::Serialize)]
struct Details<'a> {
    code: &'a str,
    title: &'a str,
    description: &'a str,
    quantity: u32,
    reward_id: &'a str,
}

impl RewardType for Perk {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "perk".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A non-monetary benefit (early access, an event invitation...) \
                          delivered by the tenant's own systems, optionally for some tiers only."
                .into(),
            config_schema: r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["code", "title"],
  "properties": {
    "code": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"},
    "title": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": {"type": "string", "maxLength": 2000, "default": ""},
    "max_quantity": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1},
    "eligible_tiers": {
      "type": "array", "maxItems": 50, "default": [],
      "items": {"type": "string", "minLength": 1, "maxLength": 64}
    }
  }
}"#
            .into(),
            config_example: r#"{"code": "summer-sale-early-access", "title": "Early access to the summer sale", "description": "Shop the summer sale 48 hours before everyone else.", "max_quantity": 1, "eligible_tiers": ["gold", "platinum"]}"#
                .into(),
        }
    }

    fn validate_config(config: &str) -> Result<(), String> {
        Config::parse(config).map(drop)
    }

    fn quote(input: RewardInput) -> Result<RedemptionQuote, Rejection> {
        let config = Config::parse(&input.config)
            .map_err(|message| Rejection::new("bad-config", message))?;
        let quantity = input.request.quantity;
        if quantity == 0 {
            return Err(Rejection::new(
                "invalid-quantity",
                "At least one unit must be redeemed.",
            ));
        }
        if quantity > config.max_quantity {
            return Err(Rejection::new(
                "quantity-too-large",
                match config.max_quantity {
                    1 => "This perk is redeemed one at a time.".to_owned(),
                    max => format!("At most {max} units of this perk can be redeemed at once."),
                },
            ));
        }
        let base_points_cost = input.reward.base_points_cost;
        if base_points_cost < 0 {
            return Err(Rejection::new(
                "invalid-reward-cost",
                "This reward has a negative points cost; please contact support.",
            ));
        }
        let points_cost = base_points_cost
            .checked_mul(i64::from(quantity))
            .ok_or_else(|| {
                Rejection::new(
                    "quantity-too-large",
                    format!("{quantity} units of this perk are too many to redeem at once."),
                )
            })?;
        if !config.eligible_tiers.is_empty()
            && !config.eligible_tiers.contains(&input.member.tier.name)
        {
            return Err(Rejection::new(
                "tier-not-eligible",
                format!(
                    "This perk is for members of the {} tier(s).",
                    config.eligible_tiers.join(", ")
                ),
            ));
        }
        let details = Details {
            code: &config.code,
            title: &config.title,
            description: &config.description,
            quantity,
            reward_id: &input.reward.id,
        };
        // Serializing a struct of strings and an integer cannot fail; map the
        // error anyway rather than panic in the host.
        let details_json = serde_json::to_string(&details)
            .map_err(|e| Rejection::new("bad-config", format!("perk details: {e}")))?;
        Ok(RedemptionQuote {
            points_cost,
            effects: vec![Effect::CustomPerk(CustomPerk {
                name: config.code,
                details_json,
            })],
        })
    }
}

loyalty_sdk::export_plugin!(Perk: reward_type);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{
        self, RunError, TEST_TIME_MS, member, purchase, redemption, reward,
    };
    use loyalty_sdk::{
        Effect, MemberSnapshot, RedemptionQuote, RedemptionRequest, RewardInput, RewardType,
    };
    use serde_json::{Value, json};

    use super::Perk;

    const CONFIG: &str = r#"{"code": "vip-night", "title": "VIP night", "description": "Drinks on us.", "max_quantity": 2}"#;

    fn input(config: &str, base_points_cost: i64, request: RedemptionRequest) -> RewardInput {
        RewardInput {
            reward: reward("r-9", "VIP night invitation", base_points_cost),
            config: config.into(),
            member: member(),
            request,
            requested_at_ms: TEST_TIME_MS,
        }
    }

    fn run(config: &str, request: RedemptionRequest) -> Result<RedemptionQuote, RunError> {
        testing::run_reward_type::<Perk>(input(config, 1_000, request))
    }

    fn run_as(member: MemberSnapshot, config: &str) -> Result<RedemptionQuote, RunError> {
        testing::run_reward_type::<Perk>(RewardInput {
            member,
            ..input(config, 1_000, redemption(1))
        })
    }

    fn gold() -> MemberSnapshot {
        let mut gold = member();
        gold.tier.name = "gold".into();
        gold
    }

    /// The perk's name and parsed details.
    fn perk(quote: &RedemptionQuote) -> (String, Value) {
        match quote.effects.as_slice() {
            [Effect::CustomPerk(perk)] => (
                perk.name.clone(),
                serde_json::from_str(&perk.details_json).unwrap_or(Value::Null),
            ),
            other => panic!("expected one custom perk, got {other:?}"),
        }
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
    fn one_unit_gives_the_perk_for_the_catalogue_price() -> Result<(), RunError> {
        let quote = run(CONFIG, redemption(1))?;
        assert_eq!(quote.points_cost, 1_000);
        let (name, details) = perk(&quote);
        assert_eq!(name, "vip-night");
        assert_eq!(
            details,
            json!({
                "code": "vip-night",
                "title": "VIP night",
                "description": "Drinks on us.",
                "quantity": 1,
                "reward_id": "r-9",
            })
        );
        Ok(())
    }

    #[test]
    fn several_units_are_one_perk_with_a_quantity() -> Result<(), RunError> {
        let quote = run(CONFIG, redemption(2))?;
        assert_eq!(quote.points_cost, 2_000);
        assert_eq!(perk(&quote).1["quantity"], json!(2));
        Ok(())
    }

    #[test]
    fn quantity_limits() {
        assert_eq!(rejection(run(CONFIG, redemption(3))), "quantity-too-large");
        assert_eq!(rejection(run(CONFIG, redemption(0))), "invalid-quantity");
        // The default is one per redemption.
        let config = r#"{"code": "early-access", "title": "Early access"}"#;
        assert_eq!(rejection(run(config, redemption(2))), "quantity-too-large");
    }

    #[test]
    fn overflowing_cost_is_rejected_not_wrapped() {
        let huge = input(CONFIG, i64::MAX / 2 + 1, redemption(2));
        assert_eq!(
            rejection(testing::run_reward_type::<Perk>(huge)),
            "quantity-too-large"
        );
    }

    #[test]
    fn negative_catalogue_cost_is_rejected() {
        let result = testing::run_reward_type::<Perk>(input(CONFIG, -1, redemption(1)));
        assert_eq!(rejection(result), "invalid-reward-cost");
    }

    #[test]
    fn text_is_escaped_in_the_details() -> Result<(), RunError> {
        let config = json!({
            "code": "q",
            "title": "\"Quoted\" \\ title",
            "description": "line 1\nline 2 \u{e9}t\u{e9}",
        })
        .to_string();
        let (_, details) = perk(&run(&config, redemption(1))?);
        assert_eq!(details["title"], json!("\"Quoted\" \\ title"));
        assert_eq!(
            details["description"],
            json!("line 1\nline 2 \u{e9}t\u{e9}")
        );
        Ok(())
    }

    #[test]
    fn eligible_tiers_limit_who_can_redeem() -> Result<(), RunError> {
        let config =
            r#"{"code": "lounge", "title": "Lounge pass", "eligible_tiers": ["gold", "platinum"]}"#;
        assert_eq!(rejection(run_as(member(), config)), "tier-not-eligible");
        assert_eq!(perk(&run_as(gold(), config)?).0, "lounge");
        // Without the list every tier may redeem.
        assert_eq!(perk(&run_as(member(), CONFIG)?).0, "vip-night");
        Ok(())
    }

    #[test]
    fn cart_and_currency_are_ignored() -> Result<(), RunError> {
        let request = RedemptionRequest {
            cart: Some(purchase().line("A", "x", 1, 1).cart()),
            currency: "JPY".into(),
            ..redemption(1)
        };
        assert_eq!(run(CONFIG, request)?, run(CONFIG, redemption(1))?);
        Ok(())
    }

    #[test]
    fn bad_configs_are_refused_with_a_clear_message() {
        let long_title = "x".repeat(201);
        let long_description = "x".repeat(2_001);
        let many_tiers: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
        let cases = [
            (
                json!({"code": "", "title": "T"}),
                "code must be 1 to 64 characters",
            ),
            (
                json!({"code": "Early Access", "title": "T"}),
                "got \"Early Access\"",
            ),
            (json!({"code": "-x", "title": "T"}), "not starting with '-'"),
            (
                json!({"code": "x".repeat(65), "title": "T"}),
                "code must be 1 to 64",
            ),
            (
                json!({"code": "x", "title": "   "}),
                "title must not be empty",
            ),
            (
                json!({"code": "x", "title": long_title}),
                "title must be at most 200 characters, got 201",
            ),
            (
                json!({"code": "x", "title": "T", "description": long_description}),
                "description must be at most 2000 characters",
            ),
            (
                json!({"code": "x", "title": "T", "max_quantity": 0}),
                "max_quantity must be between 1 and 1000, got 0",
            ),
            (
                json!({"code": "x", "title": "T", "eligible_tiers": many_tiers}),
                "eligible_tiers must have at most 50 entries, got 51",
            ),
            (
                json!({"code": "x", "title": "T", "eligible_tiers": [""]}),
                "every entry of eligible_tiers must be a tier name",
            ),
            (
                json!({"code": "x", "title": "T", "name": "n"}),
                "unknown field `name`",
            ),
            (json!({"code": "x"}), "missing field `title`"),
            (json!("x"), "invalid config"),
        ];
        for (config, expected) in cases {
            let config = config.to_string();
            match run(&config, redemption(1)) {
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
        let result = Perk::quote(input("{}", 1_000, redemption(1)));
        assert!(matches!(result, Err(r) if r.reason_code == "bad-config"));
    }

    #[test]
    fn metadata_is_consistent() -> Result<(), String> {
        let metadata = Perk::metadata();
        assert_eq!(metadata.name, "perk");
        assert_eq!(metadata.version, env!("CARGO_PKG_VERSION"));
        testing::check_metadata(&metadata, Perk::validate_config)
    }
}
