//! Category multiplier: extra points for purchase lines of chosen categories or
//! SKUs, on top of the base rate.
//!
//! Config (JSON):
//!
//! ```json
//! {
//!   "points_per_unit": 1,
//!   "unit_minor": 100,
//!   "rules": [
//!     {"category": "coffee", "multiplier_bp": 20000},
//!     {"sku": "MUG-1", "multiplier_bp": 30000}
//!   ]
//! }
//! ```
//!
//! - `points_per_unit` (required): the base rate the multiplier applies to, in
//!   points per unit, 1..=1 000 000. Use the same value as the `base-rate` rule.
//! - `unit_minor` (default 100): minor units in one "unit", 1..=1 000 000 000;
//!   100 means one whole euro or dollar. Use the same value as the `base-rate` rule.
//! - `rules` (required): 1..=500 rules. Each has exactly one of
//!   - `category`: a product category, or
//!   - `sku`: one stock keeping unit,
//!
//!   and `multiplier_bp`, the multiplier in basis points, 10 001..=1 000 000
//!   (20 000 = 2x, 15 000 = 1.5x, at most 100x). A multiplier of 1x or less is
//!   refused: it would never award anything. Names are matched exactly (case and
//!   spaces count), so a name may not be empty nor start or end with spaces, and
//!   the same category or SKU may not appear in two rules.
//!
//! # Awards
//!
//! This rule awards only the *extra* points over the base rate; the base points
//! themselves come from the `base-rate` rule. For every purchase line with a
//! positive amount (`quantity * unit_price_minor`) whose SKU or category has a
//! rule, it awards
//!
//! ```text
//! floor(amount * points_per_unit * (multiplier_bp - 10000) / (unit_minor * 10000))
//! ```
//!
//! points as one award with the line's index and reason code
//! `category-multiplier`. The product is computed exactly and rounded down once
//! per line, so base and extra points together may be one point below
//! `amount * rate * multiplier` rounded down.
//!
//! A SKU rule wins over a category rule: a `MUG-1` line in category `coffee`
//! earns the `MUG-1` multiplier, never both. Lines with no rule, lines worth
//! nothing (free or discount lines) and lines whose extra rounds to zero earn
//! nothing. Other events (returns, enrollments, ...) earn nothing: taking points
//! back on a return belongs to other rules. An amount too large to compute is an
//! error, never a wrapped number.
//!
//! Build the component with
//! `cargo build --release --target wasm32-unknown-unknown -p category-multiplier`.

use std::collections::BTreeSet;

use loyalty_sdk::{Award, EventKind, PluginMetadata, PointRule, PointRuleInput, PurchaseLine};
use serde::Deserialize;

/// Upper bound of `points_per_unit`.
const POINTS_PER_UNIT_MAX: i64 = 1_000_000;
/// Upper bound of `unit_minor`.
const UNIT_MINOR_MAX: i64 = 1_000_000_000;
/// Upper bound of the number of rules.
const RULES_MAX: usize = 500;
/// 1x in basis points.
const ONE_X_BP: u32 = 10_000;
/// Upper bound of `multiplier_bp` (100x).
const MULTIPLIER_BP_MAX: u32 = 1_000_000;
/// The reason code on every award.
const REASON_CODE: &str = "category-multiplier";

/// The category-multiplier point rule.
pub struct CategoryMultiplier;

/// One rule: a category or a SKU and its multiplier.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The category the rule applies to (exclusive with `sku`).
    #[serde(default)]
    pub category: Option<String>,
    /// The SKU the rule applies to (exclusive with `category`).
    #[serde(default)]
    pub sku: Option<String>,
    /// The multiplier in basis points: 20 000 = 2x.
    pub multiplier_bp: u32,
}

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base points per unit.
    pub points_per_unit: i64,
    /// Minor units in one unit.
    #[serde(default = "default_unit_minor")]
    pub unit_minor: i64,
    /// The rules.
    pub rules: Vec<Rule>,
}

fn default_unit_minor() -> i64 {
    100
}

/// Checks a category or SKU name of rule `index`.
fn check_name(index: usize, field: &str, name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!("rules[{index}].{field} must not be empty"));
    }
    if name.trim() != name {
        return Err(format!(
            "rules[{index}].{field} {name:?} starts or ends with spaces; names are matched exactly"
        ));
    }
    Ok(())
}

impl Config {
    /// Parses and checks a config, with messages for the tenant's admin.
    pub fn parse(config: &str) -> Result<Self, String> {
        let config: Self = loyalty_sdk::parse_config(config)?;
        if !(1..=POINTS_PER_UNIT_MAX).contains(&config.points_per_unit) {
            return Err(format!(
                "points_per_unit must be between 1 and {POINTS_PER_UNIT_MAX}, got {}",
                config.points_per_unit
            ));
        }
        if !(1..=UNIT_MINOR_MAX).contains(&config.unit_minor) {
            return Err(format!(
                "unit_minor must be between 1 and {UNIT_MINOR_MAX} (100 = one euro), got {}",
                config.unit_minor
            ));
        }
        if config.rules.is_empty() {
            return Err("rules must list at least one rule, e.g. \
                 {\"category\": \"coffee\", \"multiplier_bp\": 20000}"
                .into());
        }
        if config.rules.len() > RULES_MAX {
            return Err(format!(
                "rules may list at most {RULES_MAX} rules, got {}",
                config.rules.len()
            ));
        }
        let mut categories = BTreeSet::new();
        let mut skus = BTreeSet::new();
        for (index, rule) in config.rules.iter().enumerate() {
            match (&rule.category, &rule.sku) {
                (Some(category), None) => {
                    check_name(index, "category", category)?;
                    if !categories.insert(category.as_str()) {
                        return Err(format!(
                            "rules[{index}]: category {category:?} already has a rule"
                        ));
                    }
                }
                (None, Some(sku)) => {
                    check_name(index, "sku", sku)?;
                    if !skus.insert(sku.as_str()) {
                        return Err(format!("rules[{index}]: sku {sku:?} already has a rule"));
                    }
                }
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "rules[{index}] sets both category and sku; set exactly one (use two rules)"
                    ));
                }
                (None, None) => {
                    return Err(format!(
                        "rules[{index}] sets neither category nor sku; set exactly one"
                    ));
                }
            }
            if !(ONE_X_BP + 1..=MULTIPLIER_BP_MAX).contains(&rule.multiplier_bp) {
                return Err(format!(
                    "rules[{index}].multiplier_bp must be between {} and {MULTIPLIER_BP_MAX} \
                     (10000 = 1x, which would award nothing), got {}",
                    ONE_X_BP + 1,
                    rule.multiplier_bp
                ));
            }
        }
        Ok(config)
    }

    /// The multiplier for a line: its SKU's rule, else its category's rule.
    fn multiplier_for(&self, line: &PurchaseLine) -> Option<u32> {
        let by_sku = self
            .rules
            .iter()
            .find(|rule| rule.sku.as_deref() == Some(line.sku.as_str()));
        let by_category = || {
            self.rules
                .iter()
                .find(|rule| rule.category.as_deref() == Some(line.category.as_str()))
        };
        by_sku.or_else(by_category).map(|rule| rule.multiplier_bp)
    }

    /// Extra points for one line, or `None` when the line earns nothing.
    fn points_for(&self, line: &PurchaseLine) -> Result<Option<i64>, String> {
        let Some(multiplier_bp) = self.multiplier_for(line) else {
            return Ok(None);
        };
        let amount = i128::from(line.unit_price_minor) * i128::from(line.quantity);
        if amount <= 0 {
            return Ok(None);
        }
        let overflow = || format!("line {}: points overflow", line.line_index);
        let extra_bp = i128::from(multiplier_bp - ONE_X_BP);
        let numerator = amount
            .checked_mul(i128::from(self.points_per_unit))
            .and_then(|n| n.checked_mul(extra_bp))
            .ok_or_else(overflow)?;
        let denominator = i128::from(self.unit_minor) * i128::from(ONE_X_BP);
        let points = i64::try_from(numerator / denominator).map_err(|_| overflow())?;
        Ok((points > 0).then_some(points))
    }
}

impl PointRule for CategoryMultiplier {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "category-multiplier".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Awards extra points, over the base rate, for purchase lines of chosen \
                          categories or SKUs."
                .into(),
            config_schema: r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["points_per_unit", "rules"],
  "properties": {
    "points_per_unit": {"type": "integer", "minimum": 1, "maximum": 1000000},
    "unit_minor": {"type": "integer", "minimum": 1, "maximum": 1000000000, "default": 100},
    "rules": {
      "type": "array",
      "minItems": 1,
      "maxItems": 500,
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["multiplier_bp"],
        "oneOf": [{"required": ["category"]}, {"required": ["sku"]}],
        "properties": {
          "category": {"type": "string", "minLength": 1},
          "sku": {"type": "string", "minLength": 1},
          "multiplier_bp": {"type": "integer", "minimum": 10001, "maximum": 1000000}
        }
      }
    }
  }
}"#
            .into(),
            config_example: r#"{"points_per_unit": 1, "unit_minor": 100, "rules": [{"category": "coffee", "multiplier_bp": 20000}, {"sku": "MUG-1", "multiplier_bp": 30000}]}"#
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
        let mut awards = Vec::new();
        for line in &purchase.lines {
            if let Some(points) = config.points_for(line)? {
                awards.push(Award::new(points, REASON_CODE).for_line(line.line_index));
            }
        }
        Ok(awards)
    }
}

loyalty_sdk::export_plugin!(CategoryMultiplier: point_rule);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{
        self, RunError, birthday, custom, enrollment, member, purchase, purchase_return,
    };
    use loyalty_sdk::{Award, MemberEvent, PointRule, PointRuleInput};

    use super::CategoryMultiplier;

    const CONFIG: &str = r#"{"points_per_unit": 1, "unit_minor": 100, "rules": [
        {"category": "coffee", "multiplier_bp": 20000},
        {"sku": "MUG-1", "multiplier_bp": 30000}
    ]}"#;

    fn run(config: &str, event: MemberEvent) -> Result<Vec<Award>, RunError> {
        testing::run_point_rule::<CategoryMultiplier>(PointRuleInput {
            event,
            member: member(),
            config: config.into(),
        })
    }

    fn award(points: i64, line_index: u32) -> Award {
        Award::new(points, "category-multiplier").for_line(line_index)
    }

    #[test]
    fn extra_points_for_matching_lines_only() -> Result<(), RunError> {
        let event = purchase()
            .line("BEANS", "coffee", 2, 1_250)
            .line("SOCK", "clothes", 1, 5_000)
            .line("MUG-2", "mugs", 1, 1_000)
            .build();
        // 25.00 EUR of coffee at 2x: 25 extra points over the base 25.
        assert_eq!(run(CONFIG, event)?, vec![award(25, 0)]);
        Ok(())
    }

    #[test]
    fn sku_rule_wins_over_category_rule() -> Result<(), RunError> {
        let event = purchase()
            .line("MUG-1", "coffee", 1, 1_000)
            .line("ESPRESSO", "coffee", 1, 1_000)
            .build();
        // MUG-1 at 3x: 20 extra; the coffee rule (2x) does not add to it.
        assert_eq!(run(CONFIG, event)?, vec![award(20, 0), award(10, 1)]);
        Ok(())
    }

    #[test]
    fn sku_rule_applies_in_any_category() -> Result<(), RunError> {
        let event = purchase().line("MUG-1", "gifts", 3, 400).build();
        assert_eq!(run(CONFIG, event)?, vec![award(24, 0)]);
        Ok(())
    }

    #[test]
    fn extra_is_rounded_down_once_per_line() -> Result<(), RunError> {
        let config =
            r#"{"points_per_unit": 3, "rules": [{"category": "tea", "multiplier_bp": 15000}]}"#;
        let event = purchase()
            .line("A", "tea", 1, 199) // 1.99 * 3 * 0.5 = 2.985
            .line("B", "tea", 1, 66) // 0.66 * 3 * 0.5 = 0.99
            .line("C", "tea", 1, 67) // 0.67 * 3 * 0.5 = 1.005
            .build();
        assert_eq!(run(config, event)?, vec![award(2, 0), award(1, 2)]);
        Ok(())
    }

    #[test]
    fn unit_minor_and_points_per_unit_scale_the_extra() -> Result<(), RunError> {
        // 10 points per 1 000 minor units (e.g. per 1 000 yen), 2.5x.
        let config = r#"{"points_per_unit": 10, "unit_minor": 1000, "rules": [{"category": "sake", "multiplier_bp": 25000}]}"#;
        let event = purchase().line("S", "sake", 2, 3_000).build();
        assert_eq!(run(config, event)?, vec![award(90, 0)]);
        Ok(())
    }

    #[test]
    fn matching_is_exact() -> Result<(), RunError> {
        let event = purchase()
            .line("mug-1", "Coffee", 1, 1_000)
            .line("MUG-1 ", "coffee ", 1, 1_000)
            .build();
        assert_eq!(run(CONFIG, event)?, Vec::new());
        Ok(())
    }

    #[test]
    fn lines_worth_nothing_earn_nothing() -> Result<(), RunError> {
        let event = purchase()
            .line("FREE", "coffee", 1, 0)
            .line("DISCOUNT", "coffee", 1, -500)
            .line("NONE", "coffee", 0, 1_000)
            .line("TINY", "coffee", 1, 99)
            .line("OK", "coffee", 1, 100)
            .build();
        assert_eq!(run(CONFIG, event)?, vec![award(1, 4)]);
        Ok(())
    }

    #[test]
    fn other_events_earn_nothing() -> Result<(), RunError> {
        let returned = purchase_return().line("B", "coffee", 1, 10_000).build();
        for event in [
            returned,
            enrollment("web"),
            birthday(2025),
            custom("review", &serde_json::json!({"category": "coffee"})),
        ] {
            assert_eq!(run(CONFIG, event)?, Vec::new());
        }
        Ok(())
    }

    #[test]
    fn huge_lines_fail_instead_of_wrapping() {
        let config = r#"{"points_per_unit": 1000000, "unit_minor": 1, "rules": [{"sku": "X", "multiplier_bp": 1000000}]}"#;
        let event = purchase().line("X", "x", u32::MAX, i64::MAX).build();
        assert_eq!(
            run(config, event),
            Err(RunError::Failed("line 0: points overflow".into())),
        );
        let event = purchase().line("X", "x", 1, i64::MAX).build();
        assert_eq!(
            run(config, event),
            Err(RunError::Failed("line 0: points overflow".into())),
        );
    }

    #[test]
    fn large_but_representable_lines_are_exact() -> Result<(), RunError> {
        let config = r#"{"points_per_unit": 1, "unit_minor": 100, "rules": [{"sku": "X", "multiplier_bp": 20000}]}"#;
        let event = purchase().line("X", "x", u32::MAX, 1_000_000).build();
        let expected = i64::from(u32::MAX) * 10_000;
        assert_eq!(run(config, event)?, vec![award(expected, 0)]);
        Ok(())
    }

    #[test]
    fn bad_configs_are_refused_with_a_clear_message() {
        let cases = [
            (
                r#"{"points_per_unit": 0, "rules": [{"sku": "A", "multiplier_bp": 20000}]}"#,
                "points_per_unit must be between 1 and 1000000, got 0",
            ),
            (
                r#"{"points_per_unit": 1, "unit_minor": 0, "rules": [{"sku": "A", "multiplier_bp": 20000}]}"#,
                "unit_minor must be between 1",
            ),
            (
                r#"{"points_per_unit": 1, "rules": []}"#,
                "rules must list at least one rule",
            ),
            (r#"{"points_per_unit": 1}"#, "missing field `rules`"),
            (
                r#"{"points_per_unit": 1, "rules": [{"sku": "A", "category": "b", "multiplier_bp": 20000}]}"#,
                "rules[0] sets both category and sku",
            ),
            (
                r#"{"points_per_unit": 1, "rules": [{"multiplier_bp": 20000}]}"#,
                "rules[0] sets neither category nor sku",
            ),
            (
                r#"{"points_per_unit": 1, "rules": [{"sku": "A", "multiplier_bp": 10000}]}"#,
                "rules[0].multiplier_bp must be between 10001 and 1000000 (10000 = 1x, which would award nothing), got 10000",
            ),
            (
                r#"{"points_per_unit": 1, "rules": [{"sku": "A", "multiplier_bp": 1000001}]}"#,
                "rules[0].multiplier_bp must be between 10001 and 1000000",
            ),
            (
                r#"{"points_per_unit": 1, "rules": [{"sku": "A", "multiplier_bp": -1}]}"#,
                "invalid value: integer `-1`",
            ),
            (
                r#"{"points_per_unit": 1, "rules": [{"sku": "A"}]}"#,
                "missing field `multiplier_bp`",
            ),
            (
                r#"{"points_per_unit": 1, "rules": [{"category": "", "multiplier_bp": 20000}]}"#,
                "rules[0].category must not be empty",
            ),
            (
                r#"{"points_per_unit": 1, "rules": [{"sku": "A", "multiplier_bp": 20000}, {"sku": " B", "multiplier_bp": 20000}]}"#,
                "rules[1].sku \" B\" starts or ends with spaces",
            ),
            (
                r#"{"points_per_unit": 1, "rules": [{"category": "tea", "multiplier_bp": 20000}, {"category": "tea", "multiplier_bp": 30000}]}"#,
                "rules[1]: category \"tea\" already has a rule",
            ),
            (
                r#"{"points_per_unit": 1, "rules": [{"sku": "A", "multiplier_bp": 20000}, {"sku": "A", "multiplier_bp": 30000}]}"#,
                "rules[1]: sku \"A\" already has a rule",
            ),
            (
                r#"{"points_per_unit": 1, "rules": [{"sku": "A", "multiplier_bp": 20000, "cap": 5}]}"#,
                "unknown field `cap`",
            ),
            (
                r#"{"points_per_unit": 1, "rules": [{"sku": "A", "multiplier_bp": 20000}], "x": 1}"#,
                "unknown field `x`",
            ),
            ("not json", "invalid config"),
        ];
        for (config, expected) in cases {
            let result = run(config, purchase().line("A", "x", 1, 100).build());
            match result {
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
    fn too_many_rules_are_refused() {
        let rules: Vec<_> = (0..501)
            .map(|i| serde_json::json!({"sku": format!("SKU-{i}"), "multiplier_bp": 20000}))
            .collect();
        let config = serde_json::json!({"points_per_unit": 1, "rules": rules}).to_string();
        assert_eq!(
            run(&config, purchase().build()),
            Err(RunError::InvalidConfig(
                "rules may list at most 500 rules, got 501".into()
            )),
        );
    }

    #[test]
    fn metadata_is_consistent() -> Result<(), String> {
        let metadata = CategoryMultiplier::metadata();
        assert_eq!(metadata.name, env!("CARGO_PKG_NAME"));
        testing::check_metadata(&metadata, CategoryMultiplier::validate_config)
    }
}
