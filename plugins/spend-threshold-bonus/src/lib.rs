//! Spend threshold bonus: a bonus when one purchase reaches a spend threshold,
//! either fixed points or a percentage of the base earn.
//!
//! Config (JSON):
//!
//! ```json
//! {
//!   "currency": "EUR",
//!   "basis": "total",
//!   "points_per_unit": 1,
//!   "unit_minor": 100,
//!   "thresholds": [
//!     {"min_spend_minor": 5000, "points": 100},
//!     {"min_spend_minor": 10000, "points": 250},
//!     {"min_spend_minor": 50000, "bonus_bp": 5000}
//!   ]
//! }
//! ```
//!
//! - `thresholds` (required): 1..=20 thresholds, in any order, with distinct
//!   `min_spend_minor`. Each has
//!   - `min_spend_minor`: the spend that reaches it, in minor units of the
//!     purchase's currency, 1..=1 000 000 000 000 000 (5000 = 50.00 EUR), and
//!   - exactly one of `points`, a fixed bonus of 1..=10 000 000 points, or
//!     `bonus_bp`, a bonus in basis points of the base earn on the whole spend,
//!     1..=1 000 000 (5 000 = +50 %, 10 000 = +100 %, i.e. double points).
//! - `currency` (optional): ISO 4217 code, three upper-case letters. Purchases in
//!   another currency earn nothing. Thresholds are in minor units of the
//!   purchase's currency, so set it whenever the programme takes more than one
//!   currency.
//! - `basis` (default `"total"`): what counts as the spend. `"total"` is the
//!   order's `total_minor`, after order discounts (and including whatever else the
//!   shop puts in the total, such as shipping); `"lines"` is the sum of every
//!   line's `quantity * unit_price_minor`, discount lines (negative prices)
//!   included.
//! - `points_per_unit` (required when a threshold uses `bonus_bp`, otherwise
//!   unused): the base rate, in points per unit, 1..=1 000 000. Use the same
//!   value as the `base-rate` rule.
//! - `unit_minor` (default 100): minor units in one "unit" of the base rate,
//!   1..=1 000 000 000; 100 means one whole euro or dollar.
//!
//! # Awards
//!
//! A purchase whose spend reaches at least one threshold earns the bonus of the
//! highest threshold reached (`spend >= min_spend_minor`), never the sum of
//! several. A `bonus_bp` bonus is
//!
//! ```text
//! floor(spend * points_per_unit * bonus_bp / (unit_minor * 10000))
//! ```
//!
//! computed exactly and rounded down once. The bonus is one award with reason
//! code `spend-threshold-bonus` and no line index; a bonus that rounds to zero
//! earns nothing. A purchase below every threshold, with a spend of zero or less,
//! or in another currency than `currency` earns nothing, and so do other events
//! (returns, enrollments, ...): taking points back on a return belongs to other
//! rules. An amount too large to compute is an error, never a wrapped number.
//!
//! Build the component with
//! `cargo build --release --target wasm32-unknown-unknown -p spend-threshold-bonus`.

use std::collections::BTreeSet;

use loyalty_sdk::{Award, EventKind, PluginMetadata, PointRule, PointRuleInput, Purchase};
use serde::Deserialize;

/// Upper bound of `min_spend_minor`.
const MIN_SPEND_MINOR_MAX: i64 = 1_000_000_000_000_000;
/// Upper bound of a fixed `points` bonus.
const POINTS_MAX: i64 = 10_000_000;
/// Upper bound of `bonus_bp` (+10 000 %).
const BONUS_BP_MAX: u32 = 1_000_000;
/// Upper bound of `points_per_unit`.
const POINTS_PER_UNIT_MAX: i64 = 1_000_000;
/// Upper bound of `unit_minor`.
const UNIT_MINOR_MAX: i64 = 1_000_000_000;
/// Upper bound of the number of thresholds.
const THRESHOLDS_MAX: usize = 20;
/// 100 % in basis points.
const BP_PER_UNIT: i128 = 10_000;
/// The reason code on every award.
const REASON_CODE: &str = "spend-threshold-bonus";

/// The spend-threshold-bonus point rule.
pub struct SpendThresholdBonus;

/// What counts as the spend of a purchase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The order's `total_minor` (the default).
    #[default]
    Total,
    /// The sum of the line amounts.
    Lines,
}

/// One threshold and its bonus.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// The spend, in minor units, that reaches the threshold.
    pub min_spend_minor: i64,
    /// A fixed bonus in points (exclusive with `bonus_bp`).
    #[serde(default)]
    pub points: Option<i64>,
    /// A bonus in basis points of the base earn (exclusive with `points`).
    #[serde(default)]
    pub bonus_bp: Option<u32>,
}

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The thresholds.
    pub thresholds: Vec<Threshold>,
    /// Only purchases in this currency earn the bonus; `None`: any currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// What counts as the spend.
    #[serde(default)]
    pub basis: Basis,
    /// Base points per unit, for `bonus_bp` thresholds.
    #[serde(default)]
    pub points_per_unit: Option<i64>,
    /// Minor units in one unit.
    #[serde(default = "default_unit_minor")]
    pub unit_minor: i64,
}

fn default_unit_minor() -> i64 {
    100
}

impl Config {
    /// Parses and checks a config, with messages for the tenant's admin.
    pub fn parse(config: &str) -> Result<Self, String> {
        let config: Self = loyalty_sdk::parse_config(config)?;
        if config.thresholds.is_empty() {
            return Err("thresholds must list at least one threshold, e.g. \
                 {\"min_spend_minor\": 5000, \"points\": 100}"
                .into());
        }
        if config.thresholds.len() > THRESHOLDS_MAX {
            return Err(format!(
                "thresholds may list at most {THRESHOLDS_MAX} thresholds, got {}",
                config.thresholds.len()
            ));
        }
        let mut seen = BTreeSet::new();
        for (index, threshold) in config.thresholds.iter().enumerate() {
            let min = threshold.min_spend_minor;
            if !(1..=MIN_SPEND_MINOR_MAX).contains(&min) {
                return Err(format!(
                    "thresholds[{index}].min_spend_minor must be between 1 and \
                     {MIN_SPEND_MINOR_MAX} (minor units: 5000 = 50.00 EUR), got {min}"
                ));
            }
            if !seen.insert(min) {
                return Err(format!(
                    "thresholds[{index}]: another threshold already has min_spend_minor {min}"
                ));
            }
            match (threshold.points, threshold.bonus_bp) {
                (Some(points), None) => {
                    if !(1..=POINTS_MAX).contains(&points) {
                        return Err(format!(
                            "thresholds[{index}].points must be between 1 and {POINTS_MAX}, \
                             got {points}"
                        ));
                    }
                }
                (None, Some(bonus_bp)) => {
                    if !(1..=BONUS_BP_MAX).contains(&bonus_bp) {
                        return Err(format!(
                            "thresholds[{index}].bonus_bp must be between 1 and {BONUS_BP_MAX} \
                             (5000 = +50 %), got {bonus_bp}"
                        ));
                    }
                    if config.points_per_unit.is_none() {
                        return Err(format!(
                            "thresholds[{index}] uses bonus_bp, which needs points_per_unit \
                             (the base rate the percentage applies to)"
                        ));
                    }
                }
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "thresholds[{index}] sets both points and bonus_bp; set exactly one"
                    ));
                }
                (None, None) => {
                    return Err(format!(
                        "thresholds[{index}] sets neither points nor bonus_bp; set exactly one"
                    ));
                }
            }
        }
        if let Some(currency) = &config.currency
            && !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(format!(
                "currency must be an ISO 4217 code of three upper-case letters, e.g. \"EUR\", \
                 got {currency:?}"
            ));
        }
        if let Some(points_per_unit) = config.points_per_unit
            && !(1..=POINTS_PER_UNIT_MAX).contains(&points_per_unit)
        {
            return Err(format!(
                "points_per_unit must be between 1 and {POINTS_PER_UNIT_MAX}, got {points_per_unit}"
            ));
        }
        if !(1..=UNIT_MINOR_MAX).contains(&config.unit_minor) {
            return Err(format!(
                "unit_minor must be between 1 and {UNIT_MINOR_MAX} (100 = one euro), got {}",
                config.unit_minor
            ));
        }
        Ok(config)
    }

    /// The purchase's spend in minor units, by `basis`.
    fn spend(&self, purchase: &Purchase) -> Result<i128, String> {
        match self.basis {
            Basis::Total => Ok(i128::from(purchase.total_minor)),
            Basis::Lines => purchase.lines.iter().try_fold(0_i128, |sum, line| {
                let amount = i128::from(line.unit_price_minor) * i128::from(line.quantity);
                sum.checked_add(amount)
                    .ok_or_else(|| "sum of the lines overflows".to_string())
            }),
        }
    }

    /// The bonus for a spend, or `None` when it earns nothing.
    fn bonus_for(&self, spend: i128) -> Result<Option<i64>, String> {
        if spend <= 0 {
            return Ok(None);
        }
        let Some(threshold) = self
            .thresholds
            .iter()
            .filter(|t| spend >= i128::from(t.min_spend_minor))
            .max_by_key(|t| t.min_spend_minor)
        else {
            return Ok(None);
        };
        let points = match (threshold.points, threshold.bonus_bp) {
            (Some(points), _) => points,
            (None, Some(bonus_bp)) => {
                let points_per_unit = self
                    .points_per_unit
                    .ok_or("bonus_bp needs points_per_unit")?;
                let overflow = || "bonus points overflow".to_string();
                let numerator = spend
                    .checked_mul(i128::from(points_per_unit))
                    .and_then(|n| n.checked_mul(i128::from(bonus_bp)))
                    .ok_or_else(overflow)?;
                let denominator = i128::from(self.unit_minor) * BP_PER_UNIT;
                i64::try_from(numerator / denominator).map_err(|_| overflow())?
            }
            (None, None) => return Err("threshold without a bonus".into()),
        };
        Ok((points > 0).then_some(points))
    }
}

impl PointRule for SpendThresholdBonus {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "spend-threshold-bonus".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Awards a bonus when one purchase reaches a spend threshold: fixed \
                          points or a percentage of the base earn, for the highest threshold \
                          reached."
                .into(),
            config_schema: r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["thresholds"],
  "properties": {
    "thresholds": {
      "type": "array",
      "minItems": 1,
      "maxItems": 20,
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["min_spend_minor"],
        "oneOf": [{"required": ["points"]}, {"required": ["bonus_bp"]}],
        "properties": {
          "min_spend_minor": {"type": "integer", "minimum": 1, "maximum": 1000000000000000},
          "points": {"type": "integer", "minimum": 1, "maximum": 10000000},
          "bonus_bp": {"type": "integer", "minimum": 1, "maximum": 1000000}
        }
      }
    },
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "basis": {"enum": ["total", "lines"], "default": "total"},
    "points_per_unit": {"type": "integer", "minimum": 1, "maximum": 1000000},
    "unit_minor": {"type": "integer", "minimum": 1, "maximum": 1000000000, "default": 100}
  }
}"#
            .into(),
            config_example: r#"{"currency": "EUR", "basis": "total", "points_per_unit": 1, "unit_minor": 100, "thresholds": [{"min_spend_minor": 5000, "points": 100}, {"min_spend_minor": 10000, "points": 250}, {"min_spend_minor": 50000, "bonus_bp": 5000}]}"#
                .into(),
        }
    }

    fn validate_config(config: &str) -> Result<(), String> {
        Config::parse(config).map(drop)
    }

    fn evaluate(input: PointRuleInput) -> Result<Vec<Award>, String> {
        let config = Config::parse(&input.config)?;
        let EventKind::Purchase(purchase) = &input.event.kind else {
            return Ok(Vec::new());
        };
        if let Some(currency) = &config.currency
            && *currency != purchase.currency
        {
            return Ok(Vec::new());
        }
        let spend = config.spend(purchase)?;
        Ok(config
            .bonus_for(spend)?
            .map(|points| Award::new(points, REASON_CODE))
            .into_iter()
            .collect())
    }
}

loyalty_sdk::export_plugin!(SpendThresholdBonus: point_rule);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{
        self, RunError, birthday, custom, enrollment, member, purchase, purchase_return,
    };
    use loyalty_sdk::{Award, MemberEvent, PointRule, PointRuleInput};

    use super::SpendThresholdBonus;

    const TIERED: &str = r#"{"thresholds": [
        {"min_spend_minor": 10000, "points": 250},
        {"min_spend_minor": 5000, "points": 100}
    ]}"#;

    fn run(config: &str, event: MemberEvent) -> Result<Vec<Award>, RunError> {
        testing::run_point_rule::<SpendThresholdBonus>(PointRuleInput {
            event,
            member: member(),
            config: config.into(),
        })
    }

    fn bonus(points: i64) -> Vec<Award> {
        vec![Award::new(points, "spend-threshold-bonus")]
    }

    fn spend(total_minor: i64) -> MemberEvent {
        purchase()
            .line("A", "x", 1, total_minor)
            .total_minor(total_minor)
            .build()
    }

    #[test]
    fn the_highest_threshold_reached_applies() -> Result<(), RunError> {
        assert_eq!(run(TIERED, spend(4_999))?, Vec::new());
        assert_eq!(run(TIERED, spend(5_000))?, bonus(100));
        assert_eq!(run(TIERED, spend(9_999))?, bonus(100));
        assert_eq!(run(TIERED, spend(10_000))?, bonus(250));
        assert_eq!(run(TIERED, spend(1_000_000))?, bonus(250));
        Ok(())
    }

    #[test]
    fn one_award_without_line_index() -> Result<(), RunError> {
        let event = purchase()
            .line("A", "x", 2, 3_000)
            .line("B", "y", 1, 500)
            .build();
        let awards = run(TIERED, event)?;
        assert_eq!(awards, bonus(100));
        assert_eq!(awards[0].line_index, None);
        assert_eq!(awards[0].expiry, None);
        Ok(())
    }

    #[test]
    fn bonus_bp_is_a_share_of_the_base_earn() -> Result<(), RunError> {
        let config = r#"{"points_per_unit": 2, "thresholds": [
            {"min_spend_minor": 5000, "points": 100},
            {"min_spend_minor": 20000, "bonus_bp": 5000}
        ]}"#;
        // 250.99 EUR at 2 points per euro = 501.98 base; +50 % = 250.99, floored.
        assert_eq!(run(config, spend(25_099))?, bonus(250));
        assert_eq!(run(config, spend(19_999))?, bonus(100));
        let config = r#"{"points_per_unit": 1, "unit_minor": 1000, "thresholds": [{"min_spend_minor": 1, "bonus_bp": 10000}]}"#;
        assert_eq!(run(config, spend(12_345))?, bonus(12));
        assert_eq!(run(config, spend(999))?, Vec::new());
        Ok(())
    }

    #[test]
    fn total_basis_uses_the_order_total_after_discounts() -> Result<(), RunError> {
        let event = purchase()
            .line("A", "x", 1, 6_000)
            .total_minor(4_500)
            .build();
        assert_eq!(run(TIERED, event)?, Vec::new());
        Ok(())
    }

    #[test]
    fn lines_basis_sums_the_lines() -> Result<(), RunError> {
        let config =
            r#"{"basis": "lines", "thresholds": [{"min_spend_minor": 5000, "points": 100}]}"#;
        // Lines reach 50.00 EUR although the total (e.g. after a coupon) does not.
        let event = purchase()
            .line("A", "x", 2, 2_000)
            .line("B", "y", 1, 1_000)
            .total_minor(4_000)
            .build();
        assert_eq!(run(config, event)?, bonus(100));
        // Discount lines count against the spend.
        let event = purchase()
            .line("A", "x", 1, 5_000)
            .line("COUPON", "discount", 1, -500)
            .total_minor(9_000)
            .build();
        assert_eq!(run(config, event)?, Vec::new());
        Ok(())
    }

    #[test]
    fn currency_filter() -> Result<(), RunError> {
        let config =
            r#"{"currency": "EUR", "thresholds": [{"min_spend_minor": 5000, "points": 100}]}"#;
        assert_eq!(run(config, spend(5_000))?, bonus(100));
        let usd = purchase().line("A", "x", 1, 5_000).currency("USD").build();
        assert_eq!(run(config, usd)?, Vec::new());
        // Without the filter any currency counts.
        let usd = purchase().line("A", "x", 1, 5_000).currency("USD").build();
        assert_eq!(run(TIERED, usd)?, bonus(100));
        Ok(())
    }

    #[test]
    fn empty_or_negative_spend_earns_nothing() -> Result<(), RunError> {
        let config =
            r#"{"points_per_unit": 1, "thresholds": [{"min_spend_minor": 1, "points": 5}]}"#;
        assert_eq!(run(config, purchase().build())?, Vec::new());
        assert_eq!(run(config, spend(-10_000))?, Vec::new());
        assert_eq!(run(config, spend(1))?, bonus(5));
        Ok(())
    }

    #[test]
    fn other_events_earn_nothing() -> Result<(), RunError> {
        let returned = purchase_return().line("A", "x", 1, 100_000).build();
        for event in [
            returned,
            enrollment("web"),
            birthday(2025),
            custom("purchase", &serde_json::json!({"total_minor": 100_000})),
        ] {
            assert_eq!(run(TIERED, event)?, Vec::new());
        }
        Ok(())
    }

    #[test]
    fn huge_spends_fail_instead_of_wrapping() -> Result<(), RunError> {
        let config = r#"{"points_per_unit": 1000000, "unit_minor": 1, "thresholds": [{"min_spend_minor": 1, "bonus_bp": 1000000}]}"#;
        assert_eq!(
            run(config, spend(i64::MAX)),
            Err(RunError::Failed("bonus points overflow".into())),
        );
        let lines = r#"{"basis": "lines", "points_per_unit": 1000000, "unit_minor": 1, "thresholds": [{"min_spend_minor": 1, "bonus_bp": 1000000}]}"#;
        let event = purchase()
            .line("A", "x", u32::MAX, i64::MAX)
            .line("B", "x", u32::MAX, i64::MAX)
            .build();
        assert_eq!(
            run(lines, event),
            Err(RunError::Failed("bonus points overflow".into())),
        );
        // A fixed bonus is fine whatever the spend.
        assert_eq!(run(TIERED, spend(i64::MAX))?, bonus(250));
        Ok(())
    }

    #[test]
    fn bad_configs_are_refused_with_a_clear_message() {
        let cases = [
            (
                r#"{"thresholds": []}"#,
                "thresholds must list at least one threshold",
            ),
            (r#"{}"#, "missing field `thresholds`"),
            (
                r#"{"thresholds": [{"min_spend_minor": 0, "points": 1}]}"#,
                "thresholds[0].min_spend_minor must be between 1 and 1000000000000000 \
                 (minor units: 5000 = 50.00 EUR), got 0",
            ),
            (
                r#"{"thresholds": [{"min_spend_minor": 100, "points": 1}, {"min_spend_minor": 100, "points": 2}]}"#,
                "thresholds[1]: another threshold already has min_spend_minor 100",
            ),
            (
                r#"{"thresholds": [{"min_spend_minor": 100, "points": 0}]}"#,
                "thresholds[0].points must be between 1 and 10000000, got 0",
            ),
            (
                r#"{"points_per_unit": 1, "thresholds": [{"min_spend_minor": 100, "bonus_bp": 0}]}"#,
                "thresholds[0].bonus_bp must be between 1 and 1000000 (5000 = +50 %), got 0",
            ),
            (
                r#"{"thresholds": [{"min_spend_minor": 100, "bonus_bp": 5000}]}"#,
                "thresholds[0] uses bonus_bp, which needs points_per_unit",
            ),
            (
                r#"{"points_per_unit": 1, "thresholds": [{"min_spend_minor": 100, "points": 5, "bonus_bp": 5000}]}"#,
                "thresholds[0] sets both points and bonus_bp; set exactly one",
            ),
            (
                r#"{"thresholds": [{"min_spend_minor": 100}]}"#,
                "thresholds[0] sets neither points nor bonus_bp; set exactly one",
            ),
            (
                r#"{"thresholds": [{"points": 5}]}"#,
                "missing field `min_spend_minor`",
            ),
            (
                r#"{"currency": "eur", "thresholds": [{"min_spend_minor": 100, "points": 5}]}"#,
                "currency must be an ISO 4217 code of three upper-case letters, e.g. \"EUR\", \
                 got \"eur\"",
            ),
            (
                r#"{"currency": "EURO", "thresholds": [{"min_spend_minor": 100, "points": 5}]}"#,
                "currency must be an ISO 4217 code",
            ),
            (
                r#"{"basis": "subtotal", "thresholds": [{"min_spend_minor": 100, "points": 5}]}"#,
                "unknown variant `subtotal`",
            ),
            (
                r#"{"points_per_unit": 0, "thresholds": [{"min_spend_minor": 100, "points": 5}]}"#,
                "points_per_unit must be between 1 and 1000000, got 0",
            ),
            (
                r#"{"unit_minor": 0, "thresholds": [{"min_spend_minor": 100, "points": 5}]}"#,
                "unit_minor must be between 1",
            ),
            (
                r#"{"thresholds": [{"min_spend_minor": 100, "points": 5, "sku": "A"}]}"#,
                "unknown field `sku`",
            ),
            (
                r#"{"threshold": [{"min_spend_minor": 100, "points": 5}]}"#,
                "unknown field `threshold`",
            ),
            ("not json", "invalid config"),
        ];
        for (config, expected) in cases {
            match run(config, spend(10_000)) {
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
    fn too_many_thresholds_are_refused() {
        let thresholds: Vec<_> = (1..=21)
            .map(|i| serde_json::json!({"min_spend_minor": i * 1000, "points": i}))
            .collect();
        let config = serde_json::json!({ "thresholds": thresholds }).to_string();
        assert_eq!(
            run(&config, spend(10_000)),
            Err(RunError::InvalidConfig(
                "thresholds may list at most 20 thresholds, got 21".into()
            )),
        );
    }

    #[test]
    fn metadata_is_consistent() -> Result<(), String> {
        let metadata = SpendThresholdBonus::metadata();
        assert_eq!(metadata.name, env!("CARGO_PKG_NAME"));
        testing::check_metadata(&metadata, SpendThresholdBonus::validate_config)
    }
}
