//! Birthday bonus: a fixed number of points on the member's birthday.
//!
//! Config (JSON):
//!
//! ```json
//! { "points": 200, "tiers": ["gold", "platinum"], "expiry_days": 30, "min_member_days": 30 }
//! ```
//!
//! - `points` (required): the bonus, 1..=10 000 000 points.
//! - `tiers` (optional): only members in one of these tiers (by name, at the time
//!   of the event) earn the bonus; 1..=100 distinct, non-empty names, matched
//!   exactly (case and spaces count). Without it every member earns it.
//! - `expiry_days` (optional): the bonus points expire this many days after the
//!   birthday, 1..=3 650, instead of after the programme's default. Birthday
//!   points are usually meant to be spent soon.
//! - `min_member_days` (default 0): the member must have been enrolled at least
//!   this many whole days (of 24 hours) when the birthday comes round,
//!   0..=3 650. It stops a member from joining the day before their birthday
//!   just for the bonus.
//!
//! # Awards
//!
//! A [`Birthday`](loyalty_sdk::Birthday) event of an eligible member earns one
//! award of `points` with reason code `birthday-bonus`, no line index and, when
//! `expiry_days` is set, [`Expiry::AfterDays`]. Every other event earns nothing.
//!
//! The plugin has no clock: membership age is the event's `occurred_at_ms` minus
//! the member's `enrolled_at_ms`. It keeps no state either: sending one birthday
//! event per member and year, and scoring each event once, is the host's job
//! (the event id is its idempotency key).
//!
//! Build the component with
//! `cargo build --release --target wasm32-unknown-unknown -p birthday-bonus`.

use std::collections::BTreeSet;

use loyalty_sdk::{
    Award, EventKind, Expiry, MemberEvent, MemberSnapshot, PluginMetadata, PointRule,
    PointRuleInput,
};
use serde::Deserialize;

/// Upper bound of `points`.
const POINTS_MAX: i64 = 10_000_000;
/// Upper bound of the number of tiers.
const TIERS_MAX: usize = 100;
/// Upper bound of `expiry_days` and `min_member_days` (about ten years).
const DAYS_MAX: u32 = 3_650;
/// Milliseconds in a day.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// The reason code on every award.
const REASON_CODE: &str = "birthday-bonus";

/// The birthday-bonus point rule.
pub struct BirthdayBonus;

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The bonus in points.
    pub points: i64,
    /// Tier names that earn the bonus; `None`: every tier.
    #[serde(default)]
    pub tiers: Option<Vec<String>>,
    /// Days until the bonus expires; `None`: the programme's default.
    #[serde(default)]
    pub expiry_days: Option<u32>,
    /// Whole days the member must have been enrolled.
    #[serde(default)]
    pub min_member_days: u32,
}

impl Config {
    /// Parses and checks a config, with messages for the tenant's admin.
    pub fn parse(config: &str) -> Result<Self, String> {
        let config: Self = loyalty_sdk::parse_config(config)?;
        if !(1..=POINTS_MAX).contains(&config.points) {
            return Err(format!(
                "points must be between 1 and {POINTS_MAX}, got {}",
                config.points
            ));
        }
        if let Some(tiers) = &config.tiers {
            if tiers.is_empty() {
                return Err(
                    "tiers must list at least one tier name; omit it to award every member".into(),
                );
            }
            if tiers.len() > TIERS_MAX {
                return Err(format!(
                    "tiers may list at most {TIERS_MAX} tiers, got {}",
                    tiers.len()
                ));
            }
            let mut seen = BTreeSet::new();
            for (index, tier) in tiers.iter().enumerate() {
                if tier.trim().is_empty() {
                    return Err(format!("tiers[{index}] must not be empty"));
                }
                if tier.trim() != tier {
                    return Err(format!(
                        "tiers[{index}] {tier:?} starts or ends with spaces; tier names are \
                         matched exactly"
                    ));
                }
                if !seen.insert(tier.as_str()) {
                    return Err(format!("tiers[{index}] {tier:?} is listed twice"));
                }
            }
        }
        if let Some(days) = config.expiry_days
            && !(1..=DAYS_MAX).contains(&days)
        {
            return Err(format!(
                "expiry_days must be between 1 and {DAYS_MAX}; omit it for the programme's \
                 default expiry, got {days}"
            ));
        }
        if config.min_member_days > DAYS_MAX {
            return Err(format!(
                "min_member_days must be between 0 and {DAYS_MAX}, got {}",
                config.min_member_days
            ));
        }
        Ok(config)
    }

    /// Whether the member earns the bonus for this event.
    fn is_eligible(&self, event: &MemberEvent, member: &MemberSnapshot) -> Result<bool, String> {
        if let Some(tiers) = &self.tiers
            && !tiers.contains(&member.tier.name)
        {
            return Ok(false);
        }
        if self.min_member_days == 0 {
            return Ok(true);
        }
        let member_for_ms = event
            .occurred_at_ms
            .checked_sub(member.enrolled_at_ms)
            .ok_or("membership age overflows: check the event and enrollment times")?;
        let required_ms = i64::from(self.min_member_days)
            .checked_mul(DAY_MS)
            .ok_or("min_member_days overflows")?;
        Ok(member_for_ms >= required_ms)
    }
}

impl PointRule for BirthdayBonus {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "birthday-bonus".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Awards a fixed number of points on the member's birthday, optionally \
                          only for some tiers and after a minimum membership."
                .into(),
            config_schema: r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["points"],
  "properties": {
    "points": {"type": "integer", "minimum": 1, "maximum": 10000000},
    "tiers": {
      "type": "array",
      "minItems": 1,
      "maxItems": 100,
      "uniqueItems": true,
      "items": {"type": "string", "minLength": 1}
    },
    "expiry_days": {"type": "integer", "minimum": 1, "maximum": 3650},
    "min_member_days": {"type": "integer", "minimum": 0, "maximum": 3650, "default": 0}
  }
}"#
            .into(),
            config_example: r#"{"points": 200, "tiers": ["gold", "platinum"], "expiry_days": 30, "min_member_days": 30}"#
                .into(),
        }
    }

    fn validate_config(config: &str) -> Result<(), String> {
        Config::parse(config).map(drop)
    }

    fn evaluate(input: PointRuleInput) -> Result<Vec<Award>, String> {
        let config = Config::parse(&input.config)?;
        let EventKind::Birthday(_) = &input.event.kind else {
            return Ok(Vec::new());
        };
        if !config.is_eligible(&input.event, &input.member)? {
            return Ok(Vec::new());
        }
        let mut award = Award::new(config.points, REASON_CODE);
        if let Some(days) = config.expiry_days {
            award = award.expiring(Expiry::AfterDays(days));
        }
        Ok(vec![award])
    }
}

loyalty_sdk::export_plugin!(BirthdayBonus: point_rule);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{
        self, RunError, TEST_TIME_MS, birthday, custom, enrollment, member, purchase,
        purchase_return,
    };
    use loyalty_sdk::{Award, Expiry, MemberEvent, MemberSnapshot, PointRule, PointRuleInput};

    use super::{BirthdayBonus, DAY_MS};

    fn run_for(
        config: &str,
        member: MemberSnapshot,
        event: MemberEvent,
    ) -> Result<Vec<Award>, RunError> {
        testing::run_point_rule::<BirthdayBonus>(PointRuleInput {
            event,
            member,
            config: config.into(),
        })
    }

    fn run(config: &str, event: MemberEvent) -> Result<Vec<Award>, RunError> {
        run_for(config, member(), event)
    }

    fn in_tier(name: &str) -> MemberSnapshot {
        let mut member = member();
        member.tier.name = name.into();
        member
    }

    fn enrolled_days_ago(days: i64) -> MemberSnapshot {
        let mut member = member();
        member.enrolled_at_ms = TEST_TIME_MS - days * DAY_MS;
        member
    }

    #[test]
    fn birthday_earns_the_bonus() -> Result<(), RunError> {
        assert_eq!(
            run(r#"{"points": 200}"#, birthday(2025))?,
            vec![Award::new(200, "birthday-bonus")]
        );
        Ok(())
    }

    #[test]
    fn expiry_days_override_the_default_expiry() -> Result<(), RunError> {
        assert_eq!(
            run(r#"{"points": 200, "expiry_days": 30}"#, birthday(2025))?,
            vec![Award::new(200, "birthday-bonus").expiring(Expiry::AfterDays(30))]
        );
        Ok(())
    }

    #[test]
    fn tiers_filter_members() -> Result<(), RunError> {
        let config = r#"{"points": 300, "tiers": ["gold", "platinum"]}"#;
        assert_eq!(
            run_for(config, in_tier("gold"), birthday(2025))?,
            vec![Award::new(300, "birthday-bonus")]
        );
        assert_eq!(
            run_for(config, in_tier("platinum"), birthday(2025))?,
            vec![Award::new(300, "birthday-bonus")]
        );
        for tier in ["base", "Gold", "silver", ""] {
            assert_eq!(
                run_for(config, in_tier(tier), birthday(2025))?,
                Vec::new(),
                "{tier:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn min_member_days_uses_the_event_time() -> Result<(), RunError> {
        let config = r#"{"points": 100, "min_member_days": 30}"#;
        let earned = vec![Award::new(100, "birthday-bonus")];
        assert_eq!(
            run_for(config, enrolled_days_ago(30), birthday(2025))?,
            earned
        );
        assert_eq!(
            run_for(config, enrolled_days_ago(365), birthday(2025))?,
            earned
        );
        assert_eq!(
            run_for(config, enrolled_days_ago(29), birthday(2025))?,
            Vec::new()
        );
        // One millisecond short of 30 days.
        let mut member = enrolled_days_ago(30);
        member.enrolled_at_ms += 1;
        assert_eq!(run_for(config, member, birthday(2025))?, Vec::new());
        // Enrolled after the event (clock skew): not yet a member for 30 days.
        assert_eq!(
            run_for(config, enrolled_days_ago(-1), birthday(2025))?,
            Vec::new()
        );
        // Without min_member_days even a brand-new member earns it.
        assert_eq!(
            run_for(r#"{"points": 100}"#, enrolled_days_ago(0), birthday(2025))?,
            earned
        );
        Ok(())
    }

    #[test]
    fn tiers_and_min_member_days_both_apply() -> Result<(), RunError> {
        let config = r#"{"points": 100, "tiers": ["gold"], "min_member_days": 10}"#;
        let mut gold_new = enrolled_days_ago(1);
        gold_new.tier.name = "gold".into();
        let mut gold_old = enrolled_days_ago(100);
        gold_old.tier.name = "gold".into();
        assert_eq!(run_for(config, gold_new, birthday(2025))?, Vec::new());
        assert_eq!(
            run_for(config, enrolled_days_ago(100), birthday(2025))?,
            Vec::new()
        );
        assert_eq!(
            run_for(config, gold_old, birthday(2025))?,
            vec![Award::new(100, "birthday-bonus")]
        );
        Ok(())
    }

    #[test]
    fn extreme_times_fail_instead_of_wrapping() {
        let mut member = member();
        member.enrolled_at_ms = i64::MIN;
        let mut event = birthday(2025);
        event.occurred_at_ms = i64::MAX;
        assert_eq!(
            run_for(r#"{"points": 1, "min_member_days": 1}"#, member, event),
            Err(RunError::Failed(
                "membership age overflows: check the event and enrollment times".into()
            )),
        );
    }

    #[test]
    fn other_events_earn_nothing() -> Result<(), RunError> {
        for event in [
            purchase().line("A", "x", 1, 10_000).build(),
            purchase_return().line("A", "x", 1, 10_000).build(),
            enrollment("web"),
            custom("birthday", &serde_json::json!({"year": 2025})),
        ] {
            assert_eq!(run(r#"{"points": 200}"#, event)?, Vec::new());
        }
        Ok(())
    }

    #[test]
    fn bad_configs_are_refused_with_a_clear_message() {
        let cases = [
            (
                r#"{"points": 0}"#,
                "points must be between 1 and 10000000, got 0",
            ),
            (r#"{"points": -1}"#, "points must be between 1 and 10000000"),
            (
                r#"{"points": 1, "tiers": []}"#,
                "tiers must list at least one tier name; omit it to award every member",
            ),
            (
                r#"{"points": 1, "tiers": ["gold", " "]}"#,
                "tiers[1] must not be empty",
            ),
            (
                r#"{"points": 1, "tiers": [" gold"]}"#,
                "tiers[0] \" gold\" starts or ends with spaces",
            ),
            (
                r#"{"points": 1, "tiers": ["gold", "gold"]}"#,
                "tiers[1] \"gold\" is listed twice",
            ),
            (
                r#"{"points": 1, "expiry_days": 0}"#,
                "expiry_days must be between 1 and 3650; omit it for the programme's default \
                 expiry, got 0",
            ),
            (
                r#"{"points": 1, "min_member_days": 3651}"#,
                "min_member_days must be between 0 and 3650, got 3651",
            ),
            (
                r#"{"points": 1, "min_member_days": -1}"#,
                "invalid value: integer `-1`",
            ),
            (r#"{"points": 1, "tier": "gold"}"#, "unknown field `tier`"),
            (r#"{"tiers": ["gold"]}"#, "missing field `points`"),
            ("not json", "invalid config"),
        ];
        for (config, expected) in cases {
            match run(config, birthday(2025)) {
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
    fn too_many_tiers_are_refused() {
        let tiers: Vec<_> = (0..101).map(|i| format!("tier-{i}")).collect();
        let config = serde_json::json!({"points": 1, "tiers": tiers}).to_string();
        assert_eq!(
            run(&config, birthday(2025)),
            Err(RunError::InvalidConfig(
                "tiers may list at most 100 tiers, got 101".into()
            )),
        );
    }

    #[test]
    fn metadata_is_consistent() -> Result<(), String> {
        let metadata = BirthdayBonus::metadata();
        assert_eq!(metadata.name, env!("CARGO_PKG_NAME"));
        testing::check_metadata(&metadata, BirthdayBonus::validate_config)
    }
}
