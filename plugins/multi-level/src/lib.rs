//! Multi-level referral: points for the referrer and, decreasing level by level, for whoever
//! referred them, up a bounded number of levels; optionally fixed points for the referee.
//!
//! Config (JSON):
//!
//! ```json
//! { "levels": [{ "points": 300 }, { "points": 100 }, { "points": 50 }],
//!   "referee_points": 200 }
//! ```
//!
//! - `levels` (required): 1..=5 levels, nearest first. Level 1 is the referrer, level 2 the
//!   member who referred the referrer, level 3 the member who referred them, and so on. Each
//!   level's `points` is 1..=10 000 000 and strictly less than the previous level's.
//! - `referee_points` (default 0): fixed points for the referee, 0..=10 000 000.
//! - `min_order_minor` (default 0): the purchase's `total_minor` (after discounts) must be at
//!   least this, in minor units of the purchase's currency, 0..=10^15 (2000 = 20.00 EUR).
//! - `within_days` (optional): the purchase must happen at most this many days after the
//!   referee enrolled, 1..=3 650; a purchase exactly `within_days` days (to the millisecond)
//!   after the enrollment still qualifies, one millisecond later does not. A purchase dated
//!   before the enrollment is within the window. Without it there is no time limit.
//! - `first_purchase_only` (default `true`): only the referee's first purchase can qualify;
//!   if it misses `min_order_minor` or `within_days`, the referral never qualifies. With
//!   `false`, the first purchase that meets them qualifies.
//! - `expiry_days` (optional): the awarded points expire this many days after the purchase,
//!   1..=3 650, instead of after the programme's default.
//!
//! # Awards
//!
//! The host calls the scheme for each event of a referee whose referral is still pending,
//! with the referrer's and the referee's snapshots as they were just before the event and
//! the upline (who referred the referrer, and so on up, nearest first, as many levels as
//! the host allows). A purchase that qualifies (see above: only
//! [`EventKind::Purchase`](loyalty_sdk::EventKind::Purchase) events can) returns `Some`,
//! which qualifies the referral: the host credits the awards and never calls the scheme for
//! this referee again. The awards, each without line index and expiring after
//! `expiry_days` when set:
//!
//! - the referrer: `levels[0].points`, reason code `referral-referrer`;
//! - `upline[i]`: `levels[i + 1].points`, reason code `referral-level-{i + 2}` (so
//!   `referral-level-2` for the member who referred the referrer); the output's `upline`
//!   has one list, of one award, per upline member that has a configured level, in the
//!   input's order. Levels beyond the upline the host sent (a short referral chain, or a
//!   host bound below the configured levels) are not awarded, and upline members beyond
//!   the configured levels get nothing (no list);
//! - the referee: `referee_points`, reason code `referral-referee`, none when 0.
//!
//! Any other event returns `None`: the referral stays pending.
//!
//! Build the component with
//! `cargo build --release --target wasm32-unknown-unknown -p multi-level`.

use loyalty_sdk::{PluginMetadata, ReferralAwards, ReferralInput, ReferralScheme};
use serde::Deserialize;

use loyalty_sdk::referral::{Qualification, award, check_expiry_days};

/// Most levels, the referrer included.
pub const LEVELS_MAX: usize = 5;
/// Upper bound of a level's points and of `referee_points`.
const POINTS_MAX: i64 = 10_000_000;
/// The reason code of the referrer's award (level 1).
const REFERRER_REASON: &str = "referral-referrer";
/// The reason code of the referee's award.
const REFEREE_REASON: &str = "referral-referee";

/// The multi-level referral scheme.
pub struct MultiLevel;

/// One level's award.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Points for the member at this level.
    pub points: i64,
}

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The levels, nearest (the referrer) first.
    pub levels: Vec<Level>,
    /// Fixed points for the referee; 0: none.
    #[serde(default)]
    pub referee_points: i64,
    /// Smallest qualifying purchase total, in minor units.
    #[serde(default)]
    pub min_order_minor: i64,
    /// Days after the referee's enrollment within which the purchase must happen; `None`: no
    /// limit.
    #[serde(default)]
    pub within_days: Option<u32>,
    /// Only the referee's first purchase can qualify.
    #[serde(default = "loyalty_sdk::referral::default_first_purchase_only")]
    pub first_purchase_only: bool,
    /// Days until the awarded points expire; `None`: the programme's default.
    #[serde(default)]
    pub expiry_days: Option<u32>,
}

impl Config {
    /// Parses and checks a config, with messages for the tenant's admin.
    pub fn parse(config: &str) -> Result<Self, String> {
        let config: Self = loyalty_sdk::parse_config(config)?;
        if config.levels.is_empty() || config.levels.len() > LEVELS_MAX {
            return Err(format!(
                "levels must list 1 to {LEVELS_MAX} levels (the referrer first), got {}",
                config.levels.len()
            ));
        }
        let mut previous: Option<i64> = None;
        for (index, level) in config.levels.iter().enumerate() {
            let points = level.points;
            if !(1..=POINTS_MAX).contains(&points) {
                return Err(format!(
                    "levels[{index}].points must be between 1 and {POINTS_MAX}, got {points}"
                ));
            }
            if let Some(previous) = previous
                && points >= previous
            {
                return Err(format!(
                    "levels[{index}].points must be less than levels[{}].points ({previous}), \
                     got {points}: points decrease level by level",
                    index - 1
                ));
            }
            previous = Some(points);
        }
        if !(0..=POINTS_MAX).contains(&config.referee_points) {
            return Err(format!(
                "referee_points must be between 0 and {POINTS_MAX}, got {}",
                config.referee_points
            ));
        }
        config.qualification().check()?;
        check_expiry_days(config.expiry_days)?;
        Ok(config)
    }

    fn qualification(&self) -> Qualification {
        Qualification {
            min_order_minor: self.min_order_minor,
            within_days: self.within_days,
            first_purchase_only: self.first_purchase_only,
        }
    }
}

impl ReferralScheme for MultiLevel {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "multi-level".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Awards the referrer and, with decreasing points, whoever referred \
                          them, up to 5 levels, when the referee makes a qualifying purchase; \
                          the referee may get fixed points."
                .into(),
            config_schema: r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["levels"],
  "properties": {
    "levels": {
      "description": "Nearest first: the referrer, then who referred them, and so on; points strictly decrease.",
      "type": "array",
      "minItems": 1,
      "maxItems": 5,
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["points"],
        "properties": {"points": {"type": "integer", "minimum": 1, "maximum": 10000000}}
      }
    },
    "referee_points": {"type": "integer", "minimum": 0, "maximum": 10000000, "default": 0},
    "min_order_minor": {"type": "integer", "minimum": 0, "maximum": 1000000000000000, "default": 0},
    "within_days": {"type": "integer", "minimum": 1, "maximum": 3650},
    "first_purchase_only": {"type": "boolean", "default": true},
    "expiry_days": {"type": "integer", "minimum": 1, "maximum": 3650}
  }
}"#
            .into(),
            config_example: r#"{"levels": [{"points": 300}, {"points": 100}, {"points": 50}], "referee_points": 200}"#
                .into(),
        }
    }

    fn validate_config(config: &str) -> Result<(), String> {
        Config::parse(config).map(drop)
    }

    fn evaluate(input: ReferralInput) -> Result<Option<ReferralAwards>, String> {
        let config = Config::parse(&input.config)?;
        if config.qualification().qualifying_purchase(&input).is_none() {
            return Ok(None);
        }
        let (referrer_level, upper_levels) = config
            .levels
            .split_first()
            .ok_or("levels must list at least one level")?;
        // zip stops at the shorter: levels beyond the upline, or upline beyond the levels.
        let upline = upper_levels
            .iter()
            .zip(&input.upline)
            .enumerate()
            .map(|(index, (level, _member))| {
                let reason = format!("referral-level-{}", index + 2);
                award(level.points, &reason, config.expiry_days)
            })
            .collect();
        Ok(Some(ReferralAwards {
            referrer: award(referrer_level.points, REFERRER_REASON, config.expiry_days),
            referee: award(config.referee_points, REFEREE_REASON, config.expiry_days),
            upline,
        }))
    }
}

loyalty_sdk::export_plugin!(MultiLevel: referral_scheme);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{
        self, RunError, TEST_TIME_MS, birthday, custom, enrollment, member, purchase,
        purchase_return,
    };
    use loyalty_sdk::{
        Award, Expiry, MemberEvent, MemberSnapshot, ReferralAwards, ReferralInput, ReferralScheme,
    };

    use super::MultiLevel;

    const DAY_MS: i64 = 24 * 60 * 60 * 1_000;
    const CONFIG: &str =
        r#"{"levels": [{"points": 300}, {"points": 100}, {"points": 50}], "referee_points": 200}"#;

    /// A purchase with this total, at [`TEST_TIME_MS`].
    fn order(total_minor: i64) -> MemberEvent {
        purchase().line("SKU-1", "shoes", 1, total_minor).build()
    }

    /// `n` upline members, nearest first.
    fn upline(n: usize) -> Vec<MemberSnapshot> {
        (0..n)
            .map(|i| {
                let mut m = member();
                m.id = format!("upline-{i}");
                m
            })
            .collect()
    }

    /// The referee (enrolled a year before [`TEST_TIME_MS`], like every testing member) had
    /// `purchase_count` purchases before `event`; the referrer has `upline_len` members above.
    fn input(
        config: &str,
        purchase_count: u32,
        event: MemberEvent,
        upline_len: usize,
    ) -> ReferralInput {
        let mut referrer = member();
        referrer.id = "referrer".into();
        let mut referee = member();
        referee.id = "referee".into();
        referee.purchase_count = purchase_count;
        ReferralInput {
            referrer,
            referee,
            event,
            config: config.into(),
            upline: upline(upline_len),
        }
    }

    fn run(
        config: &str,
        purchase_count: u32,
        event: MemberEvent,
        upline_len: usize,
    ) -> Result<Option<ReferralAwards>, RunError> {
        testing::run_referral_scheme::<MultiLevel>(input(config, purchase_count, event, upline_len))
    }

    /// The awards of [`CONFIG`] with `upline_points` for the upline.
    fn paid(upline_points: &[(i64, &str)]) -> Option<ReferralAwards> {
        Some(ReferralAwards {
            referrer: vec![Award::new(300, "referral-referrer")],
            referee: vec![Award::new(200, "referral-referee")],
            upline: upline_points
                .iter()
                .map(|&(points, reason)| vec![Award::new(points, reason)])
                .collect(),
        })
    }

    #[test]
    fn the_first_purchase_pays_every_level_present() -> Result<(), RunError> {
        assert_eq!(
            run(CONFIG, 0, order(1_000), 2)?,
            paid(&[(100, "referral-level-2"), (50, "referral-level-3")])
        );
        Ok(())
    }

    #[test]
    fn a_short_upline_gets_only_its_levels() -> Result<(), RunError> {
        assert_eq!(run(CONFIG, 0, order(1_000), 0)?, paid(&[]));
        assert_eq!(
            run(CONFIG, 0, order(1_000), 1)?,
            paid(&[(100, "referral-level-2")])
        );
        Ok(())
    }

    #[test]
    fn an_upline_longer_than_the_levels_is_cut() -> Result<(), RunError> {
        assert_eq!(
            run(CONFIG, 0, order(1_000), 4)?,
            paid(&[(100, "referral-level-2"), (50, "referral-level-3")])
        );
        // One level: the referrer alone, whatever the upline.
        let single = r#"{"levels": [{"points": 300}]}"#;
        assert_eq!(
            run(single, 0, order(1_000), 3)?,
            Some(ReferralAwards {
                referrer: vec![Award::new(300, "referral-referrer")],
                referee: Vec::new(),
                upline: Vec::new(),
            })
        );
        Ok(())
    }

    #[test]
    fn five_levels_pay_up_to_level_five() -> Result<(), RunError> {
        let config = r#"{"levels": [{"points": 500}, {"points": 400}, {"points": 300},
            {"points": 200}, {"points": 100}], "expiry_days": 180}"#;
        let expiry = Expiry::AfterDays(180);
        let awards = run(config, 0, order(1_000), 5)?.expect("qualified");
        assert_eq!(
            awards.referrer,
            vec![Award::new(500, "referral-referrer").expiring(expiry)]
        );
        assert_eq!(awards.referee, Vec::new());
        assert_eq!(
            awards.upline,
            vec![
                vec![Award::new(400, "referral-level-2").expiring(expiry)],
                vec![Award::new(300, "referral-level-3").expiring(expiry)],
                vec![Award::new(200, "referral-level-4").expiring(expiry)],
                vec![Award::new(100, "referral-level-5").expiring(expiry)],
            ]
        );
        Ok(())
    }

    #[test]
    fn a_later_purchase_does_not_qualify_by_default() -> Result<(), RunError> {
        assert_eq!(run(CONFIG, 1, order(1_000), 2)?, None);
        let any = r#"{"levels": [{"points": 300}, {"points": 100}], "first_purchase_only": false}"#;
        assert_eq!(
            run(any, 3, order(1_000), 1)?,
            Some(ReferralAwards {
                referrer: vec![Award::new(300, "referral-referrer")],
                referee: Vec::new(),
                upline: vec![vec![Award::new(100, "referral-level-2")]],
            })
        );
        Ok(())
    }

    #[test]
    fn min_order_minor_and_within_days_are_inclusive() -> Result<(), RunError> {
        let config = r#"{"levels": [{"points": 300}, {"points": 100}, {"points": 50}],
            "referee_points": 200, "min_order_minor": 2500, "within_days": 7}"#;
        let at = |total_minor: i64, enrolled_at_ms: i64| {
            let mut input = input(config, 0, order(total_minor), 1);
            input.referee.enrolled_at_ms = enrolled_at_ms;
            testing::run_referral_scheme::<MultiLevel>(input)
        };
        let week_ago = TEST_TIME_MS - 7 * DAY_MS;
        assert_eq!(at(2_500, week_ago)?, paid(&[(100, "referral-level-2")]));
        assert_eq!(at(2_499, week_ago)?, None);
        assert_eq!(at(2_500, week_ago - 1)?, None);
        // The testing member enrolled a year ago.
        assert_eq!(run(config, 0, order(2_500), 1)?, None);
        Ok(())
    }

    #[test]
    fn other_events_do_not_qualify() -> Result<(), RunError> {
        for event in [
            purchase_return().line("SKU-1", "shoes", 1, 5_000).build(),
            enrollment("web"),
            birthday(1990),
            custom("purchase", &serde_json::json!({"total_minor": 5000})),
        ] {
            assert_eq!(run(CONFIG, 0, event.clone(), 2)?, None, "{event:?}");
        }
        Ok(())
    }

    #[test]
    fn bad_configs_are_refused_with_a_clear_message() {
        let cases = [
            (r#"{"referee_points": 10}"#, "missing field `levels`"),
            (
                r#"{"levels": []}"#,
                "levels must list 1 to 5 levels (the referrer first), got 0",
            ),
            (
                r#"{"levels": [{"points": 6}, {"points": 5}, {"points": 4}, {"points": 3},
                    {"points": 2}, {"points": 1}]}"#,
                "levels must list 1 to 5 levels (the referrer first), got 6",
            ),
            (
                r#"{"levels": [{"points": 0}]}"#,
                "levels[0].points must be between 1 and 10000000, got 0",
            ),
            (
                r#"{"levels": [{"points": 300}, {"points": 0}]}"#,
                "levels[1].points must be between 1 and 10000000, got 0",
            ),
            (
                r#"{"levels": [{"points": 10000001}]}"#,
                "levels[0].points must be between 1 and 10000000",
            ),
            (
                r#"{"levels": [{"points": 300}, {"points": 300}]}"#,
                "levels[1].points must be less than levels[0].points (300), got 300: points \
                 decrease level by level",
            ),
            (
                r#"{"levels": [{"points": 300}, {"points": 100}, {"points": 150}]}"#,
                "levels[2].points must be less than levels[1].points (100), got 150",
            ),
            (
                r#"{"levels": [{"points": 300, "share_bp": 10}]}"#,
                "unknown field `share_bp`",
            ),
            (r#"{"levels": [300, 100]}"#, "invalid type: integer `300`"),
            (
                r#"{"levels": [{"points": 300}], "referee_points": -1}"#,
                "referee_points must be between 0 and 10000000, got -1",
            ),
            (
                r#"{"levels": [{"points": 300}], "min_order_minor": -1}"#,
                "min_order_minor must be between 0 and 1000000000000000",
            ),
            (
                r#"{"levels": [{"points": 300}], "within_days": 0}"#,
                "within_days must be between 1 and 3650; omit it for no time limit, got 0",
            ),
            (
                r#"{"levels": [{"points": 300}], "expiry_days": 0}"#,
                "expiry_days must be between 1 and 3650",
            ),
            (
                r#"{"levels": [{"points": 300}], "depth": 3}"#,
                "unknown field `depth`",
            ),
            ("not json", "invalid config"),
        ];
        for (config, expected) in cases {
            match run(config, 0, order(5_000), 2) {
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
    fn metadata_is_complete() -> Result<(), String> {
        let metadata = MultiLevel::metadata();
        assert_eq!(metadata.name, env!("CARGO_PKG_NAME"));
        assert_eq!(metadata.version, env!("CARGO_PKG_VERSION"));
        assert!(!metadata.description.is_empty());
        testing::check_metadata(&metadata, MultiLevel::validate_config)
    }
}
