//! First-order share: the referrer earns a share of the points the referee's first order is
//! worth, optionally with fixed points for the referee.
//!
//! Config (JSON):
//!
//! ```json
//! { "share_bp": 1000, "points_per_unit": 1, "unit_minor": 100, "referee_points": 0,
//!   "max_points": 5000 }
//! ```
//!
//! - `share_bp` (required): the referrer's share in basis points, 1..=10 000 (1000 = 10 %).
//! - `points_per_unit` (default 1): what the order is worth, in points per unit,
//!   1..=1 000 000. Use the same value as the `base-rate` rule.
//! - `unit_minor` (default 100): minor units in one "unit", 1..=1 000 000 000; 100 means one
//!   whole euro or dollar.
//! - `referee_points` (default 0): fixed points for the referee, 0..=10 000 000.
//! - `max_points` (optional): the most the referrer earns, 1..=10 000 000.
//! - `min_order_minor` (default 0): the purchase's `total_minor` (after discounts) must be at
//!   least this, in minor units of the purchase's currency, 0..=10^15 (2000 = 20.00 EUR).
//! - `within_days` (optional): the purchase must happen at most this many days after the
//!   referee enrolled, 1..=3 650; a purchase exactly `within_days` days (to the millisecond)
//!   after the enrollment still qualifies, one millisecond later does not. A purchase dated
//!   before the enrollment is within the window. Without it there is no time limit.
//! - `first_purchase_only` (default `true`): only the referee's first purchase can qualify;
//!   if it misses `min_order_minor` or `within_days`, the referral never qualifies. With
//!   `false`, the first purchase that meets them qualifies, and its total is the one shared.
//! - `expiry_days` (optional): the awarded points expire this many days after the purchase,
//!   1..=3 650, instead of after the programme's default.
//!
//! # Awards
//!
//! The host calls the scheme for each event of a referee whose referral is still pending,
//! with both members' snapshots as they were just before the event. A purchase that
//! qualifies (see above: only [`EventKind::Purchase`](loyalty_sdk::EventKind::Purchase)
//! events can) returns `Some`, which qualifies the referral: the host credits the awards and
//! never calls the scheme for this referee again. The referrer's share is
//!
//! ```text
//! min(floor(total_minor * points_per_unit * share_bp / (unit_minor * 10000)), max_points)
//! ```
//!
//! computed exactly and rounded down once (not unit by unit), from the order's `total_minor`
//! after discounts. It is one award with reason code `referral-referrer`; the referee gets
//! one award of `referee_points` with reason code `referral-referee`; both without line
//! index and expiring after `expiry_days` when set. An award that would be 0 points is left
//! out (the host refuses awards below 1 point). A qualifying order whose share rounds to 0,
//! with `referee_points` 0, still returns `Some` with no awards: the referral counts as
//! qualified (and is never looked at again) with nothing earned, rather than waiting for a
//! later, larger order that `first_purchase_only` would refuse anyway. A share too large for
//! a point count (an absurd total without `max_points`) is an error, never a wrapped number.
//! The upline earns nothing. Any other event returns `None`: the referral stays pending.
//!
//! Build the component with
//! `cargo build --release --target wasm32-unknown-unknown -p first-order-share`.

use loyalty_sdk::{PluginMetadata, ReferralAwards, ReferralInput, ReferralScheme};
use serde::Deserialize;

use loyalty_sdk::referral::{Qualification, award, check_expiry_days};

/// Upper bound of `share_bp` (100 %).
const SHARE_BP_MAX: u32 = 10_000;
/// Upper bound of `points_per_unit`.
const POINTS_PER_UNIT_MAX: i64 = 1_000_000;
/// Upper bound of `unit_minor`.
const UNIT_MINOR_MAX: i64 = 1_000_000_000;
/// Upper bound of `referee_points` and `max_points`.
const POINTS_MAX: i64 = 10_000_000;
/// 100 % in basis points.
const BP_PER_UNIT: i128 = 10_000;
/// The reason code of the referrer's award.
const REFERRER_REASON: &str = "referral-referrer";
/// The reason code of the referee's award.
const REFEREE_REASON: &str = "referral-referee";

// A total is below 2^63; times points_per_unit (below 2^20) and share_bp (below 2^14) it
// stays below 2^97, so the i128 arithmetic in `share_for` cannot overflow.
const _: () = assert!(POINTS_PER_UNIT_MAX < (1 << 20));
const _: () = assert!(SHARE_BP_MAX < (1 << 14));

/// The first-order-share referral scheme.
pub struct FirstOrderShare;

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The referrer's share, in basis points.
    pub share_bp: u32,
    /// Points per unit the order is worth.
    #[serde(default = "default_points_per_unit")]
    pub points_per_unit: i64,
    /// Minor units in one unit.
    #[serde(default = "default_unit_minor")]
    pub unit_minor: i64,
    /// Fixed points for the referee; 0: none.
    #[serde(default)]
    pub referee_points: i64,
    /// Cap on the referrer's share; `None`: no cap.
    #[serde(default)]
    pub max_points: Option<i64>,
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

fn default_points_per_unit() -> i64 {
    1
}

fn default_unit_minor() -> i64 {
    100
}

impl Config {
    /// Parses and checks a config, with messages for the tenant's admin.
    pub fn parse(config: &str) -> Result<Self, String> {
        let config: Self = loyalty_sdk::parse_config(config)?;
        if !(1..=SHARE_BP_MAX).contains(&config.share_bp) {
            return Err(format!(
                "share_bp must be between 1 and {SHARE_BP_MAX} (1000 = 10 %), got {}",
                config.share_bp
            ));
        }
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
        if !(0..=POINTS_MAX).contains(&config.referee_points) {
            return Err(format!(
                "referee_points must be between 0 and {POINTS_MAX}, got {}",
                config.referee_points
            ));
        }
        if let Some(max) = config.max_points
            && !(1..=POINTS_MAX).contains(&max)
        {
            return Err(format!(
                "max_points must be between 1 and {POINTS_MAX}; omit it for no cap, got {max}"
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

    /// The referrer's share of an order total, rounded down and capped; 0 for a total of 0
    /// or less.
    fn share_for(&self, total_minor: i64) -> Result<i64, String> {
        if total_minor <= 0 {
            return Ok(0);
        }
        let numerator =
            i128::from(total_minor) * i128::from(self.points_per_unit) * i128::from(self.share_bp);
        let mut share = numerator / (i128::from(self.unit_minor) * BP_PER_UNIT);
        if let Some(max) = self.max_points {
            share = share.min(i128::from(max));
        }
        i64::try_from(share).map_err(|_| {
            format!("the referrer's share of an order of {total_minor} minor units overflows")
        })
    }
}

impl ReferralScheme for FirstOrderShare {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "first-order-share".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "The referrer earns a share of the points the referee's first order \
                          is worth, optionally capped; the referee may get fixed points."
                .into(),
            config_schema: r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["share_bp"],
  "properties": {
    "share_bp": {"type": "integer", "minimum": 1, "maximum": 10000},
    "points_per_unit": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1},
    "unit_minor": {"type": "integer", "minimum": 1, "maximum": 1000000000, "default": 100},
    "referee_points": {"type": "integer", "minimum": 0, "maximum": 10000000, "default": 0},
    "max_points": {"type": "integer", "minimum": 1, "maximum": 10000000},
    "min_order_minor": {"type": "integer", "minimum": 0, "maximum": 1000000000000000, "default": 0},
    "within_days": {"type": "integer", "minimum": 1, "maximum": 3650},
    "first_purchase_only": {"type": "boolean", "default": true},
    "expiry_days": {"type": "integer", "minimum": 1, "maximum": 3650}
  }
}"#
            .into(),
            config_example: r#"{"share_bp": 1000, "points_per_unit": 1, "unit_minor": 100, "referee_points": 0, "max_points": 5000}"#
                .into(),
        }
    }

    fn validate_config(config: &str) -> Result<(), String> {
        Config::parse(config).map(drop)
    }

    fn evaluate(input: ReferralInput) -> Result<Option<ReferralAwards>, String> {
        let config = Config::parse(&input.config)?;
        let Some(purchase) = config.qualification().qualifying_purchase(&input) else {
            return Ok(None);
        };
        let share = config.share_for(purchase.total_minor)?;
        Ok(Some(ReferralAwards {
            referrer: award(share, REFERRER_REASON, config.expiry_days),
            referee: award(config.referee_points, REFEREE_REASON, config.expiry_days),
            upline: Vec::new(),
        }))
    }
}

loyalty_sdk::export_plugin!(FirstOrderShare: referral_scheme);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{
        self, RunError, TEST_TIME_MS, birthday, custom, enrollment, member, purchase,
        purchase_return,
    };
    use loyalty_sdk::{Award, Expiry, MemberEvent, ReferralAwards, ReferralInput, ReferralScheme};

    use super::FirstOrderShare;

    const DAY_MS: i64 = 24 * 60 * 60 * 1_000;
    /// 10 % of one point per euro.
    const CONFIG: &str = r#"{"share_bp": 1000}"#;

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
        testing::run_referral_scheme::<FirstOrderShare>(input(config, purchase_count, event))
    }

    /// The referrer's points for a first order of `total_minor`, `None` when not qualified.
    fn share(config: &str, total_minor: i64) -> Result<Option<i64>, RunError> {
        Ok(run(config, 0, order(total_minor))?.map(|awards| {
            assert!(awards.referee.is_empty(), "{awards:?}");
            awards.referrer.iter().map(|a| a.points).sum()
        }))
    }

    fn referrer_only(points: i64) -> Option<ReferralAwards> {
        Some(ReferralAwards {
            referrer: vec![Award::new(points, "referral-referrer")],
            referee: Vec::new(),
            upline: Vec::new(),
        })
    }

    #[test]
    fn the_first_order_pays_a_share_to_the_referrer() -> Result<(), RunError> {
        // 123.45 EUR at one point per euro is worth 123.45 points; 10 % of it is 12.345.
        assert_eq!(run(CONFIG, 0, order(12_345))?, referrer_only(12));
        Ok(())
    }

    #[test]
    fn a_later_order_does_not_qualify_by_default() -> Result<(), RunError> {
        assert_eq!(run(CONFIG, 1, order(12_345))?, None);
        let any = r#"{"share_bp": 1000, "first_purchase_only": false}"#;
        assert_eq!(run(any, 1, order(12_345))?, referrer_only(12));
        assert_eq!(run(any, 30, order(50_000))?, referrer_only(50));
        Ok(())
    }

    #[test]
    fn the_share_is_rounded_down_once() -> Result<(), RunError> {
        // Exact 7.5 points: rounded down to 7, not floor(1.50 EUR) * 10 * 50 % = 5.
        let config = r#"{"share_bp": 5000, "points_per_unit": 10}"#;
        assert_eq!(share(config, 150)?, Some(7));
        // 99.99 EUR * 10 % = 9.999 points -> 9; 100.00 EUR -> exactly 10.
        assert_eq!(share(CONFIG, 9_999)?, Some(9));
        assert_eq!(share(CONFIG, 10_000)?, Some(10));
        // unit_minor: one point per 1 000 minor units (e.g. yen), 25 %.
        let yen = r#"{"share_bp": 2500, "unit_minor": 1000}"#;
        assert_eq!(share(yen, 3_999)?, Some(0));
        assert_eq!(share(yen, 4_000)?, Some(1));
        assert_eq!(share(yen, 123_456)?, Some(30));
        // 100 % of 3 points per euro.
        let full = r#"{"share_bp": 10000, "points_per_unit": 3}"#;
        assert_eq!(share(full, 1_001)?, Some(30));
        Ok(())
    }

    #[test]
    fn max_points_caps_the_share() -> Result<(), RunError> {
        let config = r#"{"share_bp": 1000, "max_points": 50}"#;
        assert_eq!(share(config, 49_999)?, Some(49));
        assert_eq!(share(config, 50_000)?, Some(50));
        assert_eq!(share(config, 50_100)?, Some(50));
        assert_eq!(share(config, i64::MAX)?, Some(50));
        Ok(())
    }

    #[test]
    fn huge_totals_do_not_overflow() -> Result<(), RunError> {
        // The largest total at the smallest rate fits a point count.
        assert_eq!(
            share(r#"{"share_bp": 1, "unit_minor": 1000000000}"#, i64::MAX)?,
            Some(922_337)
        );
        // At the largest rate and no cap it does not: an error, not a wrapped number.
        let config = r#"{"share_bp": 10000, "points_per_unit": 1000000, "unit_minor": 1}"#;
        match run(config, 0, order(i64::MAX)) {
            Err(RunError::Failed(msg)) => assert!(msg.contains("overflows"), "{msg}"),
            other => panic!("expected an overflow error, got {other:?}"),
        }
        let capped = r#"{"share_bp": 10000, "points_per_unit": 1000000, "unit_minor": 1,
            "max_points": 10000000}"#;
        assert_eq!(share(capped, i64::MAX)?, Some(10_000_000));
        Ok(())
    }

    #[test]
    fn the_referee_gets_fixed_points() -> Result<(), RunError> {
        let config = r#"{"share_bp": 1000, "referee_points": 200, "expiry_days": 90}"#;
        let expiry = Expiry::AfterDays(90);
        assert_eq!(
            run(config, 0, order(12_345))?,
            Some(ReferralAwards {
                referrer: vec![Award::new(12, "referral-referrer").expiring(expiry)],
                referee: vec![Award::new(200, "referral-referee").expiring(expiry)],
                upline: Vec::new(),
            })
        );
        // A share that rounds to 0 is left out; the referee still earns.
        assert_eq!(
            run(config, 0, order(999))?,
            Some(ReferralAwards {
                referrer: Vec::new(),
                referee: vec![Award::new(200, "referral-referee").expiring(expiry)],
                upline: Vec::new(),
            })
        );
        Ok(())
    }

    #[test]
    fn a_qualifying_order_worth_nothing_still_qualifies() -> Result<(), RunError> {
        // 9.99 EUR * 10 % rounds to 0 points and the referee gets none: qualified, no awards.
        assert_eq!(run(CONFIG, 0, order(999))?, Some(ReferralAwards::default()));
        assert_eq!(run(CONFIG, 0, order(0))?, Some(ReferralAwards::default()));
        Ok(())
    }

    #[test]
    fn min_order_minor_is_inclusive_and_uses_the_total() -> Result<(), RunError> {
        let config = r#"{"share_bp": 1000, "min_order_minor": 2000}"#;
        assert_eq!(share(config, 1_999)?, None);
        assert_eq!(share(config, 2_000)?, Some(2));
        // The total after discounts is both the one checked and the one shared.
        let discounted = purchase()
            .line("SKU-1", "shoes", 1, 5_000)
            .total_minor(3_000)
            .build();
        assert_eq!(run(config, 0, discounted)?, referrer_only(3));
        let below = purchase()
            .line("SKU-1", "shoes", 1, 5_000)
            .total_minor(1_999)
            .build();
        assert_eq!(run(config, 0, below)?, None);
        Ok(())
    }

    #[test]
    fn within_days_counts_from_the_referee_enrollment() -> Result<(), RunError> {
        let config = r#"{"share_bp": 1000, "within_days": 14}"#;
        let at = |enrolled_at_ms: i64| {
            let mut input = input(config, 0, order(10_000));
            input.referee.enrolled_at_ms = enrolled_at_ms;
            testing::run_referral_scheme::<FirstOrderShare>(input)
        };
        assert_eq!(at(TEST_TIME_MS - 14 * DAY_MS)?, referrer_only(10));
        assert_eq!(at(TEST_TIME_MS - 14 * DAY_MS - 1)?, None);
        assert_eq!(at(TEST_TIME_MS + 1)?, referrer_only(10));
        assert_eq!(run(config, 0, order(10_000))?, None);
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
    fn the_upline_earns_nothing() -> Result<(), RunError> {
        let mut input = input(CONFIG, 0, order(12_345));
        input.upline = vec![member(), member()];
        assert_eq!(
            testing::run_referral_scheme::<FirstOrderShare>(input)?,
            referrer_only(12)
        );
        Ok(())
    }

    #[test]
    fn bad_configs_are_refused_with_a_clear_message() {
        let cases = [
            ("{}", "missing field `share_bp`"),
            (
                r#"{"share_bp": 0}"#,
                "share_bp must be between 1 and 10000 (1000 = 10 %), got 0",
            ),
            (
                r#"{"share_bp": 10001}"#,
                "share_bp must be between 1 and 10000",
            ),
            (r#"{"share_bp": 10.5}"#, "invalid type: floating point"),
            (
                r#"{"share_bp": 1000, "points_per_unit": 0}"#,
                "points_per_unit must be between 1 and 1000000, got 0",
            ),
            (
                r#"{"share_bp": 1000, "unit_minor": 0}"#,
                "unit_minor must be between 1 and 1000000000 (100 = one euro), got 0",
            ),
            (
                r#"{"share_bp": 1000, "referee_points": -5}"#,
                "referee_points must be between 0 and 10000000, got -5",
            ),
            (
                r#"{"share_bp": 1000, "max_points": 0}"#,
                "max_points must be between 1 and 10000000; omit it for no cap, got 0",
            ),
            (
                r#"{"share_bp": 1000, "min_order_minor": -1}"#,
                "min_order_minor must be between 0 and 1000000000000000",
            ),
            (
                r#"{"share_bp": 1000, "within_days": 0}"#,
                "within_days must be between 1 and 3650; omit it for no time limit, got 0",
            ),
            (
                r#"{"share_bp": 1000, "expiry_days": 3651}"#,
                "expiry_days must be between 1 and 3650",
            ),
            (
                r#"{"share_bp": 1000, "share_percent": 10}"#,
                "unknown field `share_percent`",
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
        let metadata = FirstOrderShare::metadata();
        assert_eq!(metadata.name, env!("CARGO_PKG_NAME"));
        assert_eq!(metadata.version, env!("CARGO_PKG_VERSION"));
        assert!(!metadata.description.is_empty());
        testing::check_metadata(&metadata, FirstOrderShare::validate_config)
    }
}
