//! Double-sided referral: fixed points to both the referrer and the referee when the referee
//! makes a qualifying purchase.
//!
//! Config (JSON):
//!
//! ```json
//! { "referrer_points": 500, "referee_points": 250, "min_order_minor": 2000, "within_days": 30 }
//! ```
//!
//! - `referrer_points` (required): points for the member who referred, 0..=10 000 000.
//! - `referee_points` (required): points for the member who was referred, 0..=10 000 000.
//!   Either side may be 0 (that side earns nothing), but not both.
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
//! with both members' snapshots as they were just before the event. A purchase that
//! qualifies (see above: only [`EventKind::Purchase`](loyalty_sdk::EventKind::Purchase)
//! events can) returns `Some`, which qualifies the referral: the host credits the awards and
//! never calls the scheme for this referee again. The awards are one of `referrer_points`
//! with reason code `referral-referrer` to the referrer and one of `referee_points` with
//! reason code `referral-referee` to the referee, without line index, expiring after
//! `expiry_days` when set; a side configured with 0 points gets no award. The upline earns
//! nothing. Any other event returns `None`: the referral stays pending.
//!
//! Build the component with
//! `cargo build --release --target wasm32-unknown-unknown -p double-sided`.

use loyalty_sdk::{PluginMetadata, ReferralAwards, ReferralInput, ReferralScheme};
use serde::Deserialize;

use loyalty_sdk::referral::{Qualification, award, check_expiry_days};

/// Upper bound of `referrer_points` and `referee_points`.
const POINTS_MAX: i64 = 10_000_000;
/// The reason code of the referrer's award.
const REFERRER_REASON: &str = "referral-referrer";
/// The reason code of the referee's award.
const REFEREE_REASON: &str = "referral-referee";

/// The double-sided referral scheme.
pub struct DoubleSided;

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Points for the referrer; 0: none.
    pub referrer_points: i64,
    /// Points for the referee; 0: none.
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
        for (field, points) in [
            ("referrer_points", config.referrer_points),
            ("referee_points", config.referee_points),
        ] {
            if !(0..=POINTS_MAX).contains(&points) {
                return Err(format!(
                    "{field} must be between 0 and {POINTS_MAX}, got {points}"
                ));
            }
        }
        if config.referrer_points == 0 && config.referee_points == 0 {
            return Err(
                "referrer_points and referee_points are both 0; at least one must be positive"
                    .into(),
            );
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

impl ReferralScheme for DoubleSided {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "double-sided".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Awards fixed points to both the referrer and the referee when the \
                          referee makes a qualifying purchase (by default their first, \
                          optionally with a minimum total and within some days of enrolling)."
                .into(),
            config_schema: r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["referrer_points", "referee_points"],
  "properties": {
    "referrer_points": {"type": "integer", "minimum": 0, "maximum": 10000000},
    "referee_points": {"type": "integer", "minimum": 0, "maximum": 10000000},
    "min_order_minor": {"type": "integer", "minimum": 0, "maximum": 1000000000000000, "default": 0},
    "within_days": {"type": "integer", "minimum": 1, "maximum": 3650},
    "first_purchase_only": {"type": "boolean", "default": true},
    "expiry_days": {"type": "integer", "minimum": 1, "maximum": 3650}
  },
  "not": {
    "properties": {"referrer_points": {"const": 0}, "referee_points": {"const": 0}}
  }
}"#
            .into(),
            config_example: r#"{"referrer_points": 500, "referee_points": 250, "min_order_minor": 2000, "within_days": 30}"#
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
        Ok(Some(ReferralAwards {
            referrer: award(config.referrer_points, REFERRER_REASON, config.expiry_days),
            referee: award(config.referee_points, REFEREE_REASON, config.expiry_days),
            upline: Vec::new(),
        }))
    }
}

loyalty_sdk::export_plugin!(DoubleSided: referral_scheme);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{
        self, RunError, TEST_TIME_MS, birthday, custom, enrollment, member, purchase,
        purchase_return,
    };
    use loyalty_sdk::{Award, Expiry, MemberEvent, ReferralAwards, ReferralInput, ReferralScheme};

    use super::DoubleSided;

    const DAY_MS: i64 = 24 * 60 * 60 * 1_000;
    const CONFIG: &str = r#"{"referrer_points": 500, "referee_points": 250}"#;

    /// A purchase with this total, at [`TEST_TIME_MS`].
    fn order(total_minor: i64) -> MemberEvent {
        purchase().line("SKU-1", "shoes", 1, total_minor).build()
    }

    /// The referee (enrolled a year before [`TEST_TIME_MS`], like every testing member) had
    /// `purchase_count` purchases before `event`.
    fn input(config: &str, purchase_count: u32, event: MemberEvent) -> ReferralInput {
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
            upline: Vec::new(),
        }
    }

    fn run(
        config: &str,
        purchase_count: u32,
        event: MemberEvent,
    ) -> Result<Option<ReferralAwards>, RunError> {
        testing::run_referral_scheme::<DoubleSided>(input(config, purchase_count, event))
    }

    fn both(referrer: i64, referee: i64) -> Option<ReferralAwards> {
        Some(ReferralAwards {
            referrer: vec![Award::new(referrer, "referral-referrer")],
            referee: vec![Award::new(referee, "referral-referee")],
            upline: Vec::new(),
        })
    }

    #[test]
    fn the_first_purchase_pays_both_sides() -> Result<(), RunError> {
        assert_eq!(run(CONFIG, 0, order(1))?, both(500, 250));
        Ok(())
    }

    #[test]
    fn a_later_purchase_does_not_qualify_by_default() -> Result<(), RunError> {
        assert_eq!(run(CONFIG, 1, order(10_000))?, None);
        assert_eq!(run(CONFIG, 7, order(10_000))?, None);
        let explicit =
            r#"{"referrer_points": 500, "referee_points": 250, "first_purchase_only": true}"#;
        assert_eq!(run(explicit, 1, order(10_000))?, None);
        assert_eq!(run(explicit, 0, order(10_000))?, both(500, 250));
        Ok(())
    }

    #[test]
    fn without_first_purchase_only_any_qualifying_purchase_pays() -> Result<(), RunError> {
        let config = r#"{"referrer_points": 500, "referee_points": 250,
            "first_purchase_only": false, "min_order_minor": 2000}"#;
        assert_eq!(run(config, 0, order(1_999))?, None);
        assert_eq!(run(config, 1, order(1_999))?, None);
        assert_eq!(run(config, 1, order(2_000))?, both(500, 250));
        assert_eq!(run(config, 12, order(5_000))?, both(500, 250));
        Ok(())
    }

    #[test]
    fn min_order_minor_is_inclusive_and_uses_the_total() -> Result<(), RunError> {
        let config = r#"{"referrer_points": 500, "referee_points": 250, "min_order_minor": 2000}"#;
        assert_eq!(run(config, 0, order(1_999))?, None);
        assert_eq!(run(config, 0, order(2_000))?, both(500, 250));
        assert_eq!(run(config, 0, order(2_001))?, both(500, 250));
        // The total after discounts counts, not the lines.
        let discounted = purchase()
            .line("SKU-1", "shoes", 1, 2_500)
            .total_minor(1_999)
            .build();
        assert_eq!(run(config, 0, discounted)?, None);
        // Default 0: an empty order qualifies, a negative total does not.
        assert_eq!(run(CONFIG, 0, order(0))?, both(500, 250));
        assert_eq!(run(CONFIG, 0, purchase().total_minor(-1).build())?, None);
        Ok(())
    }

    #[test]
    fn within_days_counts_from_the_referee_enrollment() -> Result<(), RunError> {
        let config = r#"{"referrer_points": 500, "referee_points": 250, "within_days": 30}"#;
        let at = |enrolled_at_ms: i64| {
            let mut input = input(config, 0, order(5_000));
            input.referee.enrolled_at_ms = enrolled_at_ms;
            testing::run_referral_scheme::<DoubleSided>(input)
        };
        // Exactly 30 days after enrolling still qualifies; one millisecond later does not.
        assert_eq!(at(TEST_TIME_MS - 30 * DAY_MS)?, both(500, 250));
        assert_eq!(at(TEST_TIME_MS - 30 * DAY_MS - 1)?, None);
        assert_eq!(at(TEST_TIME_MS - DAY_MS)?, both(500, 250));
        assert_eq!(at(TEST_TIME_MS)?, both(500, 250));
        // A purchase dated before the enrollment is not late.
        assert_eq!(at(TEST_TIME_MS + DAY_MS)?, both(500, 250));
        // The referrer's enrollment plays no part.
        let mut old_referrer = input(config, 0, order(5_000));
        old_referrer.referee.enrolled_at_ms = TEST_TIME_MS - DAY_MS;
        old_referrer.referrer.enrolled_at_ms = TEST_TIME_MS - 3_000 * DAY_MS;
        assert_eq!(
            testing::run_referral_scheme::<DoubleSided>(old_referrer)?,
            both(500, 250)
        );
        // The testing member enrolled a year ago: too late. Extreme instants do not overflow.
        assert_eq!(run(config, 0, order(5_000))?, None);
        assert_eq!(at(i64::MIN)?, None);
        assert_eq!(at(i64::MAX)?, both(500, 250));
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
            assert_eq!(run(CONFIG, 0, event.clone())?, None, "{event:?}");
        }
        Ok(())
    }

    #[test]
    fn a_side_with_zero_points_gets_no_award() -> Result<(), RunError> {
        assert_eq!(
            run(
                r#"{"referrer_points": 500, "referee_points": 0}"#,
                0,
                order(100)
            )?,
            Some(ReferralAwards {
                referrer: vec![Award::new(500, "referral-referrer")],
                referee: Vec::new(),
                upline: Vec::new(),
            })
        );
        assert_eq!(
            run(
                r#"{"referrer_points": 0, "referee_points": 250}"#,
                0,
                order(100)
            )?,
            Some(ReferralAwards {
                referrer: Vec::new(),
                referee: vec![Award::new(250, "referral-referee")],
                upline: Vec::new(),
            })
        );
        Ok(())
    }

    #[test]
    fn expiry_days_apply_to_both_awards() -> Result<(), RunError> {
        let config = r#"{"referrer_points": 500, "referee_points": 250, "expiry_days": 365}"#;
        let expiry = Expiry::AfterDays(365);
        assert_eq!(
            run(config, 0, order(100))?,
            Some(ReferralAwards {
                referrer: vec![Award::new(500, "referral-referrer").expiring(expiry)],
                referee: vec![Award::new(250, "referral-referee").expiring(expiry)],
                upline: Vec::new(),
            })
        );
        Ok(())
    }

    #[test]
    fn the_upline_earns_nothing() -> Result<(), RunError> {
        let mut input = input(CONFIG, 0, order(100));
        input.upline = vec![member(), member()];
        assert_eq!(
            testing::run_referral_scheme::<DoubleSided>(input)?,
            both(500, 250)
        );
        Ok(())
    }

    #[test]
    fn bad_configs_are_refused_with_a_clear_message() {
        let cases = [
            (
                r#"{"referrer_points": 0, "referee_points": 0}"#,
                "referrer_points and referee_points are both 0; at least one must be positive",
            ),
            (
                r#"{"referrer_points": -1, "referee_points": 250}"#,
                "referrer_points must be between 0 and 10000000, got -1",
            ),
            (
                r#"{"referrer_points": 500, "referee_points": 10000001}"#,
                "referee_points must be between 0 and 10000000, got 10000001",
            ),
            (
                r#"{"referrer_points": 500}"#,
                "missing field `referee_points`",
            ),
            (
                r#"{"referee_points": 500}"#,
                "missing field `referrer_points`",
            ),
            (
                r#"{"referrer_points": 500, "referee_points": 250, "min_order_minor": -1}"#,
                "min_order_minor must be between 0 and 1000000000000000 (minor units: 2000 = \
                 20.00 EUR), got -1",
            ),
            (
                r#"{"referrer_points": 500, "referee_points": 250, "within_days": 0}"#,
                "within_days must be between 1 and 3650; omit it for no time limit, got 0",
            ),
            (
                r#"{"referrer_points": 500, "referee_points": 250, "within_days": 3651}"#,
                "within_days must be between 1 and 3650",
            ),
            (
                r#"{"referrer_points": 500, "referee_points": 250, "within_days": -5}"#,
                "invalid value: integer `-5`",
            ),
            (
                r#"{"referrer_points": 500, "referee_points": 250, "expiry_days": 0}"#,
                "expiry_days must be between 1 and 3650; omit it for the programme's default \
                 expiry, got 0",
            ),
            (
                r#"{"referrer_points": 500, "referee_points": 250, "first_purchase_only": "yes"}"#,
                "invalid type: string \"yes\", expected a boolean",
            ),
            (
                r#"{"referrer_points": 500, "referee_points": 250, "referrer_point": 1}"#,
                "unknown field `referrer_point`",
            ),
            ("not json", "invalid config"),
        ];
        for (config, expected) in cases {
            match run(config, 0, order(5_000)) {
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
        let metadata = DoubleSided::metadata();
        assert_eq!(metadata.name, env!("CARGO_PKG_NAME"));
        assert_eq!(metadata.version, env!("CARGO_PKG_VERSION"));
        assert!(!metadata.description.is_empty());
        testing::check_metadata(&metadata, DoubleSided::validate_config)
    }
}
