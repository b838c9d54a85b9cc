//! Welcome bonus: a fixed number of points when a member enrolls.
//!
//! Config (JSON):
//!
//! ```json
//! { "points": 500, "channels": ["web", "app"], "expiry_days": 90 }
//! ```
//!
//! - `points` (required): the bonus, 1..=10 000 000 points.
//! - `channels` (optional): only enrollments through one of these channels earn
//!   the bonus; 1..=100 distinct, non-empty names, matched exactly (case and
//!   spaces count). Without it every enrollment earns it, including those whose
//!   channel is unknown (empty). With it, an enrollment with an unknown channel
//!   earns nothing.
//! - `expiry_days` (optional): the bonus points expire this many days after the
//!   enrollment, 1..=3 650, instead of after the programme's default.
//!
//! # Awards
//!
//! An [`Enrollment`](loyalty_sdk::Enrollment) event earns one award of `points`
//! with reason code `welcome-bonus`, no line index and, when `expiry_days` is set,
//! [`Expiry::AfterDays`]. Every other event earns nothing. The plugin keeps no
//! state: that a member enrolls once, and that one event is scored once, is the
//! host's guarantee (the event id is its idempotency key).
//!
//! Build the component with
//! `cargo build --release --target wasm32-unknown-unknown -p welcome-bonus`.

use std::collections::BTreeSet;

use loyalty_sdk::{Award, EventKind, Expiry, PluginMetadata, PointRule, PointRuleInput};
use serde::Deserialize;

/// Upper bound of `points`.
const POINTS_MAX: i64 = 10_000_000;
/// Upper bound of the number of channels.
const CHANNELS_MAX: usize = 100;
/// Upper bound of `expiry_days` (about ten years).
const EXPIRY_DAYS_MAX: u32 = 3_650;
/// The reason code on every award.
const REASON_CODE: &str = "welcome-bonus";

/// The welcome-bonus point rule.
pub struct WelcomeBonus;

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The bonus in points.
    pub points: i64,
    /// Enrollment channels that earn the bonus; `None`: all of them.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// Days until the bonus expires; `None`: the programme's default.
    #[serde(default)]
    pub expiry_days: Option<u32>,
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
        if let Some(channels) = &config.channels {
            if channels.is_empty() {
                return Err(
                    "channels must list at least one channel; omit it to award every enrollment"
                        .into(),
                );
            }
            if channels.len() > CHANNELS_MAX {
                return Err(format!(
                    "channels may list at most {CHANNELS_MAX} channels, got {}",
                    channels.len()
                ));
            }
            let mut seen = BTreeSet::new();
            for (index, channel) in channels.iter().enumerate() {
                if channel.trim().is_empty() {
                    return Err(format!("channels[{index}] must not be empty"));
                }
                if channel.trim() != channel {
                    return Err(format!(
                        "channels[{index}] {channel:?} starts or ends with spaces; channels are \
                         matched exactly"
                    ));
                }
                if !seen.insert(channel.as_str()) {
                    return Err(format!("channels[{index}] {channel:?} is listed twice"));
                }
            }
        }
        if let Some(days) = config.expiry_days
            && !(1..=EXPIRY_DAYS_MAX).contains(&days)
        {
            return Err(format!(
                "expiry_days must be between 1 and {EXPIRY_DAYS_MAX}; omit it for the \
                 programme's default expiry, got {days}"
            ));
        }
        Ok(config)
    }

    /// Whether an enrollment through `channel` earns the bonus.
    fn accepts_channel(&self, channel: &str) -> bool {
        match &self.channels {
            Some(channels) => channels.iter().any(|c| c == channel),
            None => true,
        }
    }
}

impl PointRule for WelcomeBonus {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "welcome-bonus".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Awards a fixed number of points when a member enrolls, optionally only \
                          through some channels and with its own expiry."
                .into(),
            config_schema: r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["points"],
  "properties": {
    "points": {"type": "integer", "minimum": 1, "maximum": 10000000},
    "channels": {
      "type": "array",
      "minItems": 1,
      "maxItems": 100,
      "uniqueItems": true,
      "items": {"type": "string", "minLength": 1}
    },
    "expiry_days": {"type": "integer", "minimum": 1, "maximum": 3650}
  }
}"#
            .into(),
            config_example: r#"{"points": 500, "channels": ["web", "app"], "expiry_days": 90}"#
                .into(),
        }
    }

    fn validate_config(config: &str) -> Result<(), String> {
        Config::parse(config).map(drop)
    }

    fn evaluate(input: PointRuleInput) -> Result<Vec<Award>, String> {
        let config = Config::parse(&input.config)?;
        let EventKind::Enrollment(enrollment) = &input.event.kind else {
            return Ok(Vec::new());
        };
        if !config.accepts_channel(&enrollment.channel) {
            return Ok(Vec::new());
        }
        let mut award = Award::new(config.points, REASON_CODE);
        if let Some(days) = config.expiry_days {
            award = award.expiring(Expiry::AfterDays(days));
        }
        Ok(vec![award])
    }
}

loyalty_sdk::export_plugin!(WelcomeBonus: point_rule);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{
        self, RunError, birthday, custom, enrollment, member, purchase, purchase_return,
    };
    use loyalty_sdk::{Award, Expiry, MemberEvent, PointRule, PointRuleInput};

    use super::WelcomeBonus;

    fn run(config: &str, event: MemberEvent) -> Result<Vec<Award>, RunError> {
        testing::run_point_rule::<WelcomeBonus>(PointRuleInput {
            event,
            member: member(),
            config: config.into(),
        })
    }

    #[test]
    fn enrollment_earns_the_bonus() -> Result<(), RunError> {
        assert_eq!(
            run(r#"{"points": 500}"#, enrollment("web"))?,
            vec![Award::new(500, "welcome-bonus")]
        );
        Ok(())
    }

    #[test]
    fn without_channels_every_enrollment_earns_it() -> Result<(), RunError> {
        for channel in ["web", "store", ""] {
            assert_eq!(
                run(r#"{"points": 100}"#, enrollment(channel))?,
                vec![Award::new(100, "welcome-bonus")]
            );
        }
        Ok(())
    }

    #[test]
    fn channels_filter_enrollments() -> Result<(), RunError> {
        let config = r#"{"points": 250, "channels": ["web", "app"]}"#;
        assert_eq!(
            run(config, enrollment("app"))?,
            vec![Award::new(250, "welcome-bonus")]
        );
        for channel in ["store", "Web", "", "web "] {
            assert_eq!(run(config, enrollment(channel))?, Vec::new(), "{channel:?}");
        }
        Ok(())
    }

    #[test]
    fn expiry_days_override_the_default_expiry() -> Result<(), RunError> {
        assert_eq!(
            run(r#"{"points": 500, "expiry_days": 90}"#, enrollment("web"))?,
            vec![Award::new(500, "welcome-bonus").expiring(Expiry::AfterDays(90))]
        );
        Ok(())
    }

    #[test]
    fn other_events_earn_nothing() -> Result<(), RunError> {
        for event in [
            purchase().line("A", "x", 1, 10_000).build(),
            purchase_return().line("A", "x", 1, 10_000).build(),
            birthday(2025),
            custom("enrollment", &serde_json::json!({"channel": "web"})),
        ] {
            assert_eq!(run(r#"{"points": 500}"#, event)?, Vec::new());
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
            (
                r#"{"points": -100}"#,
                "points must be between 1 and 10000000",
            ),
            (
                r#"{"points": 10000001}"#,
                "points must be between 1 and 10000000",
            ),
            (
                r#"{"points": 1, "channels": []}"#,
                "channels must list at least one channel; omit it to award every enrollment",
            ),
            (
                r#"{"points": 1, "channels": ["web", ""]}"#,
                "channels[1] must not be empty",
            ),
            (
                r#"{"points": 1, "channels": ["web "]}"#,
                "channels[0] \"web \" starts or ends with spaces",
            ),
            (
                r#"{"points": 1, "channels": ["web", "app", "web"]}"#,
                "channels[2] \"web\" is listed twice",
            ),
            (
                r#"{"points": 1, "channels": "web"}"#,
                "invalid type: string \"web\", expected a sequence",
            ),
            (
                r#"{"points": 1, "expiry_days": 0}"#,
                "expiry_days must be between 1 and 3650; omit it for the programme's default \
                 expiry, got 0",
            ),
            (
                r#"{"points": 1, "expiry_days": 3651}"#,
                "expiry_days must be between 1 and 3650",
            ),
            (r#"{"points": 1, "expiry": 30}"#, "unknown field `expiry`"),
            (r#"{"channels": ["web"]}"#, "missing field `points`"),
            ("not json", "invalid config"),
        ];
        for (config, expected) in cases {
            match run(config, enrollment("web")) {
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
    fn too_many_channels_are_refused() {
        let channels: Vec<_> = (0..101).map(|i| format!("channel-{i}")).collect();
        let config = serde_json::json!({"points": 1, "channels": channels}).to_string();
        assert_eq!(
            run(&config, enrollment("web")),
            Err(RunError::InvalidConfig(
                "channels may list at most 100 channels, got 101".into()
            )),
        );
    }

    #[test]
    fn metadata_is_consistent() -> Result<(), String> {
        let metadata = WelcomeBonus::metadata();
        assert_eq!(metadata.name, env!("CARGO_PKG_NAME"));
        testing::check_metadata(&metadata, WelcomeBonus::validate_config)
    }
}
