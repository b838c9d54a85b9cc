//! Tier multiplier: extra points on every purchase line from the member's tier
//! multiplier, on top of the base rate.
//!
//! Config (JSON):
//!
//! ```json
//! { "points_per_unit": 1, "unit_minor": 100, "max_multiplier_bp": 30000 }
//! ```
//!
//! - `points_per_unit` (required): the base rate the multiplier applies to, in
//!   points per unit, 1..=1 000 000. Use the same value as the `base-rate` rule.
//! - `unit_minor` (default 100): minor units in one "unit", 1..=1 000 000 000;
//!   100 means one whole euro or dollar. Use the same value as the `base-rate` rule.
//! - `max_multiplier_bp` (optional): a cap on the tier multiplier, in basis
//!   points, 10 001..=1 000 000 (30 000 = 3x). Without it the tier's multiplier
//!   applies as the host sends it.
//!
//! # Awards
//!
//! The multiplier is the member's tier at the time of the event
//! (`member.tier.multiplier_bp`, 10 000 = 1x, 15 000 = 1.5x), capped at
//! `max_multiplier_bp` when set. When it is 1x or less the rule awards nothing:
//! a multiplier below 1x never takes base points away.
//!
//! This rule awards only the *extra* points over the base rate; the base points
//! themselves come from the `base-rate` rule. For every purchase line with a
//! positive amount (`quantity * unit_price_minor`) it awards
//!
//! ```text
//! floor(amount * points_per_unit * (multiplier_bp - 10000) / (unit_minor * 10000))
//! ```
//!
//! points as one award with the line's index and reason code `tier-multiplier`.
//! The product is computed exactly and rounded down once per line. Lines worth
//! nothing (free or discount lines) and lines whose extra rounds to zero earn
//! nothing. Other events (returns, enrollments, ...) earn nothing: taking points
//! back on a return belongs to other rules. An amount too large to compute is an
//! error, never a wrapped number.
//!
//! Build the component with
//! `cargo build --release --target wasm32-unknown-unknown -p tier-multiplier`.

use loyalty_sdk::{Award, EventKind, PluginMetadata, PointRule, PointRuleInput, PurchaseLine};
use serde::Deserialize;

/// Upper bound of `points_per_unit`.
const POINTS_PER_UNIT_MAX: i64 = 1_000_000;
/// Upper bound of `unit_minor`.
const UNIT_MINOR_MAX: i64 = 1_000_000_000;
/// 1x in basis points.
const ONE_X_BP: u32 = 10_000;
/// Upper bound of `max_multiplier_bp` (100x).
const MAX_MULTIPLIER_BP_MAX: u32 = 1_000_000;
/// The reason code on every award.
const REASON_CODE: &str = "tier-multiplier";

/// The tier-multiplier point rule.
pub struct TierMultiplier;

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base points per unit.
    pub points_per_unit: i64,
    /// Minor units in one unit.
    #[serde(default = "default_unit_minor")]
    pub unit_minor: i64,
    /// Cap on the tier's multiplier, in basis points.
    #[serde(default)]
    pub max_multiplier_bp: Option<u32>,
}

fn default_unit_minor() -> i64 {
    100
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
        if let Some(cap) = config.max_multiplier_bp
            && !(ONE_X_BP + 1..=MAX_MULTIPLIER_BP_MAX).contains(&cap)
        {
            return Err(format!(
                "max_multiplier_bp must be between {} and {MAX_MULTIPLIER_BP_MAX} \
                 (10000 = 1x, which would award nothing; omit it for no cap), got {cap}",
                ONE_X_BP + 1
            ));
        }
        Ok(config)
    }

    /// The multiplier that applies to the member, after the cap.
    fn effective_multiplier_bp(&self, tier_multiplier_bp: u32) -> u32 {
        match self.max_multiplier_bp {
            Some(cap) => tier_multiplier_bp.min(cap),
            None => tier_multiplier_bp,
        }
    }

    /// Extra points for one line at `extra_bp` over 1x, or `None` when the line
    /// earns nothing.
    fn points_for(&self, line: &PurchaseLine, extra_bp: u32) -> Result<Option<i64>, String> {
        let amount = i128::from(line.unit_price_minor) * i128::from(line.quantity);
        if amount <= 0 {
            return Ok(None);
        }
        let overflow = || format!("line {}: points overflow", line.line_index);
        let numerator = amount
            .checked_mul(i128::from(self.points_per_unit))
            .and_then(|n| n.checked_mul(i128::from(extra_bp)))
            .ok_or_else(overflow)?;
        let denominator = i128::from(self.unit_minor) * i128::from(ONE_X_BP);
        let points = i64::try_from(numerator / denominator).map_err(|_| overflow())?;
        Ok((points > 0).then_some(points))
    }
}

impl PointRule for TierMultiplier {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "tier-multiplier".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Awards extra points, over the base rate, on every purchase line from \
                          the member's tier multiplier, with an optional cap."
                .into(),
            config_schema: r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["points_per_unit"],
  "properties": {
    "points_per_unit": {"type": "integer", "minimum": 1, "maximum": 1000000},
    "unit_minor": {"type": "integer", "minimum": 1, "maximum": 1000000000, "default": 100},
    "max_multiplier_bp": {"type": "integer", "minimum": 10001, "maximum": 1000000}
  }
}"#
            .into(),
            config_example:
                r#"{"points_per_unit": 1, "unit_minor": 100, "max_multiplier_bp": 30000}"#.into(),
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
        let multiplier_bp = config.effective_multiplier_bp(input.member.tier.multiplier_bp);
        let Some(extra_bp) = multiplier_bp.checked_sub(ONE_X_BP).filter(|&bp| bp > 0) else {
            return Ok(Vec::new());
        };
        let mut awards = Vec::with_capacity(purchase.lines.len());
        for line in &purchase.lines {
            if let Some(points) = config.points_for(line, extra_bp)? {
                awards.push(Award::new(points, REASON_CODE).for_line(line.line_index));
            }
        }
        Ok(awards)
    }
}

loyalty_sdk::export_plugin!(TierMultiplier: point_rule);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{
        self, RunError, birthday, custom, enrollment, member, purchase, purchase_return,
    };
    use loyalty_sdk::{Award, MemberEvent, PointRule, PointRuleInput};

    use super::TierMultiplier;

    fn run_for(
        config: &str,
        multiplier_bp: u32,
        event: MemberEvent,
    ) -> Result<Vec<Award>, RunError> {
        let mut member = member();
        member.tier.name = "gold".into();
        member.tier.multiplier_bp = multiplier_bp;
        testing::run_point_rule::<TierMultiplier>(PointRuleInput {
            event,
            member,
            config: config.into(),
        })
    }

    fn award(points: i64, line_index: u32) -> Award {
        Award::new(points, "tier-multiplier").for_line(line_index)
    }

    #[test]
    fn extra_points_per_line_from_the_tier() -> Result<(), RunError> {
        let event = purchase()
            .line("A", "shoes", 2, 4_999)
            .line("B", "socks", 1, 500)
            .build();
        // 1.5x: half the base points again; 99.98 * 0.5 = 49.99, 5 * 0.5 = 2.5.
        let awards = run_for(r#"{"points_per_unit": 1}"#, 15_000, event)?;
        assert_eq!(awards, vec![award(49, 0), award(2, 1)]);
        Ok(())
    }

    #[test]
    fn points_per_unit_and_unit_minor_scale_the_extra() -> Result<(), RunError> {
        let event = purchase().line("A", "x", 3, 1_000).build();
        let config = r#"{"points_per_unit": 5, "unit_minor": 1000}"#;
        // 3 000 minor = 3 units * 5 points = 15 base; 2x: 15 extra.
        assert_eq!(run_for(config, 20_000, event)?, vec![award(15, 0)]);
        Ok(())
    }

    #[test]
    fn base_tier_and_lower_multipliers_earn_nothing() -> Result<(), RunError> {
        for multiplier_bp in [0, 5_000, 9_999, 10_000] {
            let event = purchase().line("A", "x", 1, 100_000).build();
            assert_eq!(
                run_for(r#"{"points_per_unit": 1}"#, multiplier_bp, event)?,
                Vec::new()
            );
        }
        Ok(())
    }

    #[test]
    fn the_cap_limits_the_multiplier() -> Result<(), RunError> {
        let config = r#"{"points_per_unit": 1, "max_multiplier_bp": 30000}"#;
        let event = || purchase().line("A", "x", 1, 10_000).build();
        assert_eq!(run_for(config, 50_000, event())?, vec![award(200, 0)]);
        assert_eq!(run_for(config, 30_000, event())?, vec![award(200, 0)]);
        assert_eq!(run_for(config, 12_500, event())?, vec![award(25, 0)]);
        Ok(())
    }

    #[test]
    fn extra_is_rounded_down_once_per_line() -> Result<(), RunError> {
        let event = purchase()
            .line("A", "x", 1, 399) // 3.99 * 0.25 = 0.9975
            .line("B", "x", 1, 400) // 4.00 * 0.25 = 1
            .line("C", "x", 1, 1_199) // 11.99 * 0.25 = 2.9975
            .build();
        let awards = run_for(r#"{"points_per_unit": 1}"#, 12_500, event)?;
        assert_eq!(awards, vec![award(1, 1), award(2, 2)]);
        Ok(())
    }

    #[test]
    fn lines_worth_nothing_earn_nothing() -> Result<(), RunError> {
        let event = purchase()
            .line("FREE", "x", 1, 0)
            .line("DISCOUNT", "x", 1, -500)
            .line("NONE", "x", 0, 1_000)
            .line("OK", "x", 1, 100)
            .build();
        let awards = run_for(r#"{"points_per_unit": 1}"#, 20_000, event)?;
        assert_eq!(awards, vec![award(1, 3)]);
        Ok(())
    }

    #[test]
    fn other_events_earn_nothing() -> Result<(), RunError> {
        let returned = purchase_return().line("A", "x", 1, 10_000).build();
        for event in [
            returned,
            enrollment("web"),
            birthday(2025),
            custom("review", &serde_json::json!({"stars": 5})),
        ] {
            assert_eq!(
                run_for(r#"{"points_per_unit": 1}"#, 20_000, event)?,
                Vec::new()
            );
        }
        Ok(())
    }

    #[test]
    fn huge_lines_and_multipliers_fail_instead_of_wrapping() {
        let config = r#"{"points_per_unit": 1000000, "unit_minor": 1}"#;
        let event = purchase().line("A", "x", u32::MAX, i64::MAX).build();
        assert_eq!(
            run_for(config, u32::MAX, event),
            Err(RunError::Failed("line 0: points overflow".into())),
        );
        let event = purchase().line("A", "x", 1, i64::MAX).build();
        assert_eq!(
            run_for(config, 20_000, event),
            Err(RunError::Failed("line 0: points overflow".into())),
        );
    }

    #[test]
    fn bad_configs_are_refused_with_a_clear_message() {
        let cases = [
            (
                r#"{"points_per_unit": 0}"#,
                "points_per_unit must be between 1 and 1000000, got 0",
            ),
            (
                r#"{"points_per_unit": 1000001}"#,
                "points_per_unit must be between 1 and 1000000",
            ),
            (
                r#"{"points_per_unit": 1, "unit_minor": -1}"#,
                "unit_minor must be between 1",
            ),
            (
                r#"{"points_per_unit": 1, "max_multiplier_bp": 10000}"#,
                "max_multiplier_bp must be between 10001 and 1000000 (10000 = 1x, which would \
                 award nothing; omit it for no cap), got 10000",
            ),
            (
                r#"{"points_per_unit": 1, "max_multiplier_bp": 2000000}"#,
                "max_multiplier_bp must be between 10001 and 1000000",
            ),
            (
                r#"{"points_per_unit": 1, "max_multiplier_bp": -5}"#,
                "invalid value: integer `-5`",
            ),
            (
                r#"{"points_per_unit": 1, "multiplier_bp": 20000}"#,
                "unknown field `multiplier_bp`",
            ),
            (r#"{}"#, "missing field `points_per_unit`"),
            ("not json", "invalid config"),
        ];
        for (config, expected) in cases {
            let result = run_for(config, 20_000, purchase().line("A", "x", 1, 100).build());
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
    fn metadata_is_consistent() -> Result<(), String> {
        let metadata = TierMultiplier::metadata();
        assert_eq!(metadata.name, env!("CARGO_PKG_NAME"));
        testing::check_metadata(&metadata, TierMultiplier::validate_config)
    }
}
