//! Event bonus: points for custom member actions (a review written, a survey answered, the app
//! installed), per event type, each with an optional cap per period.
//!
//! Config (JSON):
//!
//! ```json
//! { "events": [
//!     { "type": "review.written", "points": 50, "cap": { "per": "month", "max": 3 } },
//!     { "type": "app.installed", "points": 200, "cap": { "per": "ever", "max": 1 },
//!       "expiry_days": 365 }
//! ] }
//! ```
//!
//! - `events` (required): 1..=100 rules with distinct `type`s.
//! - `type`: the custom event's name as sent to `recordEvent`.
//! - `points`: 1..=10 000 000.
//! - `cap` (optional): at most `max` (1..=10 000) rewarded events per `per` (`day`, `week`
//!   (ISO, Monday to Sunday), `month`, `year` or `ever`), in the programme's time zone.
//! - `expiry_days` (optional): 1..=3 650 days instead of the programme's default expiry.
//! - `reason` (optional): the reason code in the ledger, 1..=64 characters; default
//!   `event-bonus`.
//!
//! # Awards
//!
//! A custom event whose name has a rule earns `points`, unless the member already had `max`
//! events of that name in the cap's period: the host counts them ([`EventCounts`] in the
//! event), so the plugin keeps no state and replaying an event gives the same answer. Other
//! events earn nothing.
//!
//! Build the component with
//! `cargo build --release --target wasm32-unknown-unknown -p event-bonus`.

use std::collections::BTreeSet;

use loyalty_sdk::{
    Award, EventCounts, EventKind, Expiry, PluginMetadata, PointRule, PointRuleInput,
};
use serde::Deserialize;

/// Upper bound of `points`.
const POINTS_MAX: i64 = 10_000_000;
/// Upper bound of the number of rules.
const RULES_MAX: usize = 100;
/// Upper bound of a cap's `max`.
const CAP_MAX: u32 = 10_000;
/// Upper bound of `expiry_days` (about ten years).
const EXPIRY_DAYS_MAX: u32 = 3_650;
/// Longest reason code (the ledger's column).
const REASON_CHARS_MAX: usize = 64;
/// The default reason code.
const REASON_CODE: &str = "event-bonus";

/// The event-bonus point rule.
pub struct EventBonus;

/// The period of a cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// A calendar day.
    Day,
    /// An ISO week, Monday to Sunday.
    Week,
    /// A calendar month.
    Month,
    /// A calendar year.
    Year,
    /// The member's whole membership.
    Ever,
}

impl Period {
    fn count(self, prior: &EventCounts) -> u32 {
        match self {
            Self::Day => prior.day,
            Self::Week => prior.week,
            Self::Month => prior.month,
            Self::Year => prior.year,
            Self::Ever => prior.total,
        }
    }
}

/// At most `max` rewarded events per `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    /// The period.
    pub per: Period,
    /// Events rewarded per period.
    pub max: u32,
}

/// One event type's rule.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The custom event's name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Points per event.
    pub points: i64,
    /// Optional cap per period.
    #[serde(default)]
    pub cap: Option<Cap>,
    /// Days until the points expire; `None`: the programme's default.
    #[serde(default)]
    pub expiry_days: Option<u32>,
    /// Reason code; `None`: `event-bonus`.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The rules, one per event type.
    pub events: Vec<Rule>,
}

impl Config {
    /// Parses and checks a config, with messages for the tenant's admin.
    pub fn parse(config: &str) -> Result<Self, String> {
        let config: Self = loyalty_sdk::parse_config(config)?;
        if config.events.is_empty() || config.events.len() > RULES_MAX {
            return Err(format!(
                "events must list 1 to {RULES_MAX} rules, got {}",
                config.events.len()
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, rule) in config.events.iter().enumerate() {
            let t = &rule.event_type;
            if t.is_empty() || t.len() > 64 || t.trim() != t {
                return Err(format!(
                    "events[{i}].type must be 1 to 64 characters without surrounding spaces"
                ));
            }
            if !seen.insert(t.as_str()) {
                return Err(format!("events[{i}].type {t:?} is listed twice"));
            }
            if !(1..=POINTS_MAX).contains(&rule.points) {
                return Err(format!(
                    "events[{i}].points must be between 1 and {POINTS_MAX}, got {}",
                    rule.points
                ));
            }
            if let Some(cap) = rule.cap
                && !(1..=CAP_MAX).contains(&cap.max)
            {
                return Err(format!(
                    "events[{i}].cap.max must be between 1 and {CAP_MAX}, got {}",
                    cap.max
                ));
            }
            if let Some(days) = rule.expiry_days
                && !(1..=EXPIRY_DAYS_MAX).contains(&days)
            {
                return Err(format!(
                    "events[{i}].expiry_days must be between 1 and {EXPIRY_DAYS_MAX}, got {days}"
                ));
            }
            if let Some(reason) = &rule.reason
                && (reason.trim().is_empty() || reason.chars().count() > REASON_CHARS_MAX)
            {
                return Err(format!(
                    "events[{i}].reason must be 1 to {REASON_CHARS_MAX} characters"
                ));
            }
        }
        Ok(config)
    }
}

impl PointRule for EventBonus {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "event-bonus".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Awards points for custom member actions (reviews, surveys, app \
                          installs), per event type, each with an optional cap per day, week, \
                          month, year or ever."
                .into(),
            config_schema: r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["events"],
  "properties": {
    "events": {
      "type": "array", "minItems": 1, "maxItems": 100,
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["type", "points"],
        "properties": {
          "type": {"type": "string", "minLength": 1, "maxLength": 64},
          "points": {"type": "integer", "minimum": 1, "maximum": 10000000},
          "cap": {
            "type": "object", "additionalProperties": false, "required": ["per", "max"],
            "properties": {
              "per": {"enum": ["day", "week", "month", "year", "ever"]},
              "max": {"type": "integer", "minimum": 1, "maximum": 10000}
            }
          },
          "expiry_days": {"type": "integer", "minimum": 1, "maximum": 3650},
          "reason": {"type": "string", "minLength": 1, "maxLength": 64}
        }
      }
    }
  }
}"#
            .into(),
            config_example: r#"{"events": [{"type": "review.written", "points": 50, "cap": {"per": "month", "max": 3}}, {"type": "app.installed", "points": 200, "cap": {"per": "ever", "max": 1}}]}"#
                .into(),
        }
    }

    fn validate_config(config: &str) -> Result<(), String> {
        Config::parse(config).map(drop)
    }

    fn evaluate(input: PointRuleInput) -> Result<Vec<Award>, String> {
        let config = Config::parse(&input.config)?;
        let EventKind::Custom(event) = &input.event.kind else {
            return Ok(Vec::new());
        };
        let Some(rule) = config.events.iter().find(|r| r.event_type == event.name) else {
            return Ok(Vec::new());
        };
        if let Some(cap) = rule.cap
            && cap.per.count(&event.prior) >= cap.max
        {
            return Ok(Vec::new());
        }
        let mut award = Award::new(rule.points, rule.reason.as_deref().unwrap_or(REASON_CODE));
        if let Some(days) = rule.expiry_days {
            award = award.expiring(Expiry::AfterDays(days));
        }
        Ok(vec![award])
    }
}

loyalty_sdk::export_plugin!(EventBonus: point_rule);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{
        self, RunError, birthday, custom, custom_after, enrollment, member, purchase,
    };
    use loyalty_sdk::{Award, EventCounts, Expiry, MemberEvent, PointRule, PointRuleInput};
    use serde_json::json;

    use super::EventBonus;

    const CONFIG: &str = r#"{"events": [
        {"type": "review.written", "points": 50, "cap": {"per": "month", "max": 3}},
        {"type": "app.installed", "points": 200, "cap": {"per": "ever", "max": 1},
         "expiry_days": 365, "reason": "app-install"},
        {"type": "survey.answered", "points": 20}
    ]}"#;

    fn run(config: &str, event: MemberEvent) -> Result<Vec<Award>, RunError> {
        testing::run_point_rule::<EventBonus>(PointRuleInput {
            event,
            member: member(),
            config: config.into(),
        })
    }

    fn after(month: u32, total: u32) -> EventCounts {
        EventCounts {
            day: 0,
            week: 0,
            month,
            year: month,
            total,
        }
    }

    #[test]
    fn a_listed_event_earns_its_points() -> Result<(), RunError> {
        assert_eq!(
            run(CONFIG, custom("review.written", &json!({"stars": 5})))?,
            vec![Award::new(50, "event-bonus")]
        );
        assert_eq!(
            run(CONFIG, custom("app.installed", &json!({})))?,
            vec![Award::new(200, "app-install").expiring(Expiry::AfterDays(365))]
        );
        Ok(())
    }

    #[test]
    fn the_cap_counts_earlier_events_in_the_period() -> Result<(), RunError> {
        for earlier in 0..3 {
            assert_eq!(
                run(
                    CONFIG,
                    custom_after("review.written", &json!({}), after(earlier, 10))
                )?,
                vec![Award::new(50, "event-bonus")],
                "{earlier} earlier this month"
            );
        }
        for earlier in [3, 4, 100] {
            assert_eq!(
                run(
                    CONFIG,
                    custom_after("review.written", &json!({}), after(earlier, 100))
                )?,
                Vec::new()
            );
        }
        // "ever": the second install earns nothing, whatever the month.
        assert_eq!(
            run(
                CONFIG,
                custom_after("app.installed", &json!({}), after(0, 1))
            )?,
            Vec::new()
        );
        // No cap: always.
        assert_eq!(
            run(
                CONFIG,
                custom_after("survey.answered", &json!({}), after(50, 500))
            )?,
            vec![Award::new(20, "event-bonus")]
        );
        Ok(())
    }

    #[test]
    fn every_period_reads_its_own_count() -> Result<(), RunError> {
        for (per, counts) in [
            (
                "day",
                EventCounts {
                    day: 1,
                    ..EventCounts::default()
                },
            ),
            (
                "week",
                EventCounts {
                    week: 1,
                    ..EventCounts::default()
                },
            ),
            (
                "month",
                EventCounts {
                    month: 1,
                    ..EventCounts::default()
                },
            ),
            (
                "year",
                EventCounts {
                    year: 1,
                    ..EventCounts::default()
                },
            ),
            (
                "ever",
                EventCounts {
                    total: 1,
                    ..EventCounts::default()
                },
            ),
        ] {
            let config = format!(
                r#"{{"events": [{{"type": "t", "points": 5, "cap": {{"per": "{per}", "max": 1}}}}]}}"#
            );
            assert_eq!(
                run(&config, custom_after("t", &json!({}), counts))?,
                Vec::new(),
                "{per}"
            );
            assert_eq!(
                run(&config, custom("t", &json!({})))?,
                vec![Award::new(5, "event-bonus")],
                "{per}"
            );
        }
        Ok(())
    }

    #[test]
    fn other_events_earn_nothing() -> Result<(), RunError> {
        for event in [
            purchase().line("A", "x", 1, 10_000).build(),
            enrollment("web"),
            birthday(2025),
            custom("review.deleted", &json!({})),
            custom("Review.Written", &json!({})),
        ] {
            assert_eq!(run(CONFIG, event)?, Vec::new());
        }
        Ok(())
    }

    #[test]
    fn bad_configs_are_refused_with_a_clear_message() {
        let cases = [
            (r#"{"events": []}"#, "events must list 1 to 100 rules"),
            (
                r#"{"events": [{"type": "", "points": 1}]}"#,
                "events[0].type",
            ),
            (
                r#"{"events": [{"type": "a", "points": 1}, {"type": "a", "points": 2}]}"#,
                "events[1].type \"a\" is listed twice",
            ),
            (
                r#"{"events": [{"type": "a", "points": 0}]}"#,
                "events[0].points",
            ),
            (
                r#"{"events": [{"type": "a", "points": 1, "cap": {"per": "month", "max": 0}}]}"#,
                "events[0].cap.max",
            ),
            (
                r#"{"events": [{"type": "a", "points": 1, "cap": {"per": "fortnight", "max": 1}}]}"#,
                "fortnight",
            ),
            (
                r#"{"events": [{"type": "a", "points": 1, "expiry_days": 0}]}"#,
                "events[0].expiry_days",
            ),
            (
                r#"{"events": [{"type": "a", "points": 1, "colour": "red"}]}"#,
                "colour",
            ),
        ];
        for (config, expected) in cases {
            let err = EventBonus::validate_config(config).expect_err(config);
            assert!(err.contains(expected), "{config}: {err}");
        }
    }

    #[test]
    fn metadata_is_complete() {
        let metadata = EventBonus::metadata();
        testing::check_metadata(&metadata, EventBonus::validate_config).expect("metadata");
        assert_eq!(metadata.name, "event-bonus");
    }
}
