//! Base rate: `points_per_unit` points per currency unit spent, per purchase line.
//!
//! Config (JSON):
//!
//! ```json
//! { "points_per_unit": 1, "unit_minor": 100, "rounding": "floor" }
//! ```
//!
//! - `points_per_unit` (required): points per unit, 1..=1 000 000.
//! - `unit_minor` (default 100): minor units in one "unit", 1..=1 000 000 000;
//!   100 means one whole euro or dollar.
//! - `rounding` (default `"floor"`): `"floor"`, `"nearest"` (half up) or `"ceil"`,
//!   applied per line.
//!
//! Every purchase line with a positive amount (`quantity * unit_price_minor`)
//! earns `amount * points_per_unit / unit_minor` points, rounded, as one award
//! with the line's index and reason code `base-rate`. Lines that round to zero
//! earn nothing. Other events (returns, enrollments, ...) earn nothing: the tier
//! multiplier and the handling of returns belong to other rules.
//!
//! Build the component with
//! `cargo build --release --target wasm32-unknown-unknown -p base-rate`.

use loyalty_sdk::{Award, EventKind, PluginMetadata, PointRule, PointRuleInput, PurchaseLine};
use serde::Deserialize;

/// Upper bound of `points_per_unit`; keeps every product far from overflow.
const POINTS_PER_UNIT_MAX: i64 = 1_000_000;
/// Upper bound of `unit_minor`.
const UNIT_MINOR_MAX: i64 = 1_000_000_000;
/// The reason code on every award.
const REASON_CODE: &str = "base-rate";

// A line amount is an i64 times a u32 (below 2^95); times a rate below 2^31 it
// stays below 2^126, so the i128 arithmetic in `points_for` cannot overflow.
const _: () = assert!(POINTS_PER_UNIT_MAX < (1 << 31));
const _: () = assert!(UNIT_MINOR_MAX < (1 << 31));

/// The base-rate point rule.
pub struct BaseRate;

/// How fractional points are rounded, per line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Down (the default).
    #[default]
    Floor,
    /// To the nearest point, halves up.
    Nearest,
    /// Up.
    Ceil,
}

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Points per unit.
    pub points_per_unit: i64,
    /// Minor units in one unit.
    #[serde(default = "default_unit_minor")]
    pub unit_minor: i64,
    /// Rounding per line.
    #[serde(default)]
    pub rounding: Rounding,
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
        Ok(config)
    }

    /// Points for one line, or `None` when the line earns nothing.
    fn points_for(&self, line: &PurchaseLine) -> Result<Option<i64>, String> {
        let amount = i128::from(line.unit_price_minor) * i128::from(line.quantity);
        if amount <= 0 {
            return Ok(None);
        }
        let numerator = amount * i128::from(self.points_per_unit);
        let unit = i128::from(self.unit_minor);
        let points = match self.rounding {
            Rounding::Floor => numerator / unit,
            Rounding::Nearest => (numerator + unit / 2) / unit,
            Rounding::Ceil => (numerator + unit - 1) / unit,
        };
        let points = i64::try_from(points)
            .map_err(|_| format!("line {}: points overflow", line.line_index))?;
        Ok((points > 0).then_some(points))
    }
}

impl PointRule for BaseRate {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "base-rate".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description:
                "Awards a fixed number of points per currency unit of every purchase line.".into(),
            config_schema: r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["points_per_unit"],
  "properties": {
    "points_per_unit": {"type": "integer", "minimum": 1, "maximum": 1000000},
    "unit_minor": {"type": "integer", "minimum": 1, "maximum": 1000000000, "default": 100},
    "rounding": {"enum": ["floor", "nearest", "ceil"], "default": "floor"}
  }
}"#
            .into(),
            config_example: r#"{"points_per_unit": 1, "unit_minor": 100, "rounding": "floor"}"#
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
        let mut awards = Vec::with_capacity(purchase.lines.len());
        for line in &purchase.lines {
            if let Some(points) = config.points_for(line)? {
                awards.push(Award::new(points, REASON_CODE).for_line(line.line_index));
            }
        }
        Ok(awards)
    }
}

loyalty_sdk::export_plugin!(BaseRate: point_rule);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{
        self, RunError, birthday, custom, enrollment, member, purchase, purchase_return,
    };
    use loyalty_sdk::{Award, MemberEvent, PointRule, PointRuleInput};

    use super::BaseRate;

    fn run(config: &str, event: MemberEvent) -> Result<Vec<Award>, RunError> {
        testing::run_point_rule::<BaseRate>(PointRuleInput {
            event,
            member: member(),
            config: config.into(),
        })
    }

    fn award(points: i64, line_index: u32) -> Award {
        Award::new(points, "base-rate").for_line(line_index)
    }

    #[test]
    fn one_award_per_line_with_its_index() -> Result<(), RunError> {
        let event = purchase()
            .line("A", "shoes", 2, 4_999)
            .line("B", "socks", 1, 500)
            .build();
        let awards = run(
            r#"{"points_per_unit": 1, "unit_minor": 100, "rounding": "floor"}"#,
            event,
        )?;
        assert_eq!(awards, vec![award(99, 0), award(5, 1)]);
        Ok(())
    }

    #[test]
    fn rounding_modes() -> Result<(), RunError> {
        let event = || {
            purchase()
                .line("A", "x", 1, 250)
                .line("B", "x", 1, 249)
                .build()
        };
        let floor = run(r#"{"points_per_unit": 1, "rounding": "floor"}"#, event())?;
        let nearest = run(r#"{"points_per_unit": 1, "rounding": "nearest"}"#, event())?;
        let ceil = run(r#"{"points_per_unit": 1, "rounding": "ceil"}"#, event())?;
        assert_eq!(floor, vec![award(2, 0), award(2, 1)]);
        assert_eq!(nearest, vec![award(3, 0), award(2, 1)]);
        assert_eq!(ceil, vec![award(3, 0), award(3, 1)]);
        Ok(())
    }

    #[test]
    fn defaults_are_one_unit_of_100_minor_and_floor() -> Result<(), RunError> {
        let event = purchase().line("A", "x", 3, 199).build();
        assert_eq!(
            run(r#"{"points_per_unit": 10}"#, event)?,
            vec![award(59, 0)]
        );
        Ok(())
    }

    #[test]
    fn lines_worth_nothing_earn_nothing() -> Result<(), RunError> {
        let event = purchase()
            .line("A", "x", 1, 99)
            .line("FREE", "x", 1, 0)
            .line("DISCOUNT", "x", 1, -500)
            .line("B", "x", 0, 1_000)
            .line("C", "x", 1, 100)
            .build();
        assert_eq!(run(r#"{"points_per_unit": 1}"#, event)?, vec![award(1, 4)]);
        Ok(())
    }

    #[test]
    fn other_events_earn_nothing() -> Result<(), RunError> {
        let config = r#"{"points_per_unit": 5}"#;
        let returned = purchase_return().line("A", "x", 1, 10_000).build();
        for event in [
            returned,
            enrollment("web"),
            birthday(2025),
            custom("review", &serde_json::json!({"stars": 5})),
        ] {
            assert_eq!(run(config, event)?, Vec::new());
        }
        Ok(())
    }

    #[test]
    fn huge_lines_fail_instead_of_wrapping() {
        let event = purchase().line("A", "x", u32::MAX, i64::MAX).build();
        assert_eq!(
            run(r#"{"points_per_unit": 1000000, "unit_minor": 1}"#, event),
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
                r#"{"points_per_unit": -3}"#,
                "points_per_unit must be between 1 and 1000000",
            ),
            (
                r#"{"points_per_unit": 1, "unit_minor": 0}"#,
                "unit_minor must be between 1",
            ),
            (
                r#"{"points_per_unit": 1, "rounding": "up"}"#,
                "unknown variant `up`",
            ),
            (
                r#"{"points_per_unit": 1, "pointz": 2}"#,
                "unknown field `pointz`",
            ),
            (r#"{"unit_minor": 100}"#, "missing field `points_per_unit`"),
            (
                r#"{"points_per_unit": 1.5}"#,
                "invalid type: floating point",
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
    fn metadata_is_consistent() -> Result<(), String> {
        testing::check_metadata(&BaseRate::metadata(), BaseRate::validate_config)
    }
}
