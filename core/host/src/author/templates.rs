//! The files [`scaffold`](super::scaffold) writes. `__NAME__` stands for the
//! plugin's name.

use std::path::Path;

use crate::PluginKind;

/// The plugin crate's Cargo.toml.
pub(super) fn cargo_toml(name: &str, sdk_path: &Path) -> String {
    // A TOML basic string: escape backslashes and quotes of the path.
    let sdk = sdk_path
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the wasm component; rlib: native unit tests.
crate-type = ["cdylib", "rlib"]

[dependencies]
loyalty-sdk = {{ path = "{sdk}" }}
serde = {{ version = "1", features = ["derive"] }}

# Small components: the host refuses components over 256 kB.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"

# The plugin is its own workspace, wherever it lives.
[workspace]
"#
    )
}

/// The plugin's src/lib.rs.
pub(super) fn lib_rs(name: &str, kind: PluginKind) -> String {
    let template = match kind {
        PluginKind::PointRule => POINT_RULE,
        PluginKind::RewardType => REWARD_TYPE,
        PluginKind::ReferralScheme => REFERRAL_SCHEME,
    };
    template.replace("__NAME__", name)
}

const POINT_RULE: &str = r##"//! __NAME__: a point rule that awards a fixed number of points per purchase.
//!
//! Config: `{"points": 10}`. Build the component with `loyalty plugin build`.

use loyalty_sdk::{Award, EventKind, PluginMetadata, PointRule, PointRuleInput};
use serde::Deserialize;

/// The plugin.
pub struct Plugin;

/// The plugin's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Points per purchase.
    points: i64,
}

impl Config {
    fn parse(config: &str) -> Result<Self, String> {
        let config: Self = loyalty_sdk::parse_config(config)?;
        if config.points <= 0 {
            return Err(format!("points must be positive, got {}", config.points));
        }
        Ok(config)
    }
}

impl PointRule for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "__NAME__".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Awards a fixed number of points per purchase.".into(),
            config_schema: r#"{"type":"object","required":["points"],"properties":{"points":{"type":"integer","minimum":1}}}"#.into(),
            config_example: r#"{"points": 10}"#.into(),
        }
    }

    fn validate_config(config: &str) -> Result<(), String> {
        Config::parse(config).map(drop)
    }

    fn evaluate(input: PointRuleInput) -> Result<Vec<Award>, String> {
        let config = Config::parse(&input.config)?;
        match input.event.kind {
            EventKind::Purchase(_) => Ok(vec![Award::new(config.points, "__NAME__")]),
            _ => Ok(Vec::new()),
        }
    }
}

loyalty_sdk::export_plugin!(Plugin: point_rule);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{self, RunError, enrollment, member, purchase};
    use loyalty_sdk::{Award, MemberEvent, PointRule, PointRuleInput};

    use super::Plugin;

    fn run(config: &str, event: MemberEvent) -> Result<Vec<Award>, RunError> {
        testing::run_point_rule::<Plugin>(PointRuleInput {
            event,
            member: member(),
            config: config.into(),
        })
    }

    #[test]
    fn a_purchase_earns_the_configured_points() -> Result<(), RunError> {
        let event = purchase().line("A", "shoes", 1, 5_000).build();
        assert_eq!(run(r#"{"points": 10}"#, event)?, vec![Award::new(10, "__NAME__")]);
        assert_eq!(run(r#"{"points": 10}"#, enrollment("web"))?, Vec::new());
        Ok(())
    }

    #[test]
    fn a_bad_config_is_refused() {
        let event = purchase().line("A", "shoes", 1, 5_000).build();
        assert_eq!(
            run(r#"{"points": 0}"#, event),
            Err(RunError::InvalidConfig("points must be positive, got 0".into())),
        );
    }

    #[test]
    fn metadata_is_consistent() -> Result<(), String> {
        testing::check_metadata(&Plugin::metadata(), Plugin::validate_config)
    }
}
"##;

const REWARD_TYPE: &str = r##"//! __NAME__: a reward type that gives a percentage off for its catalogue price.
//!
//! Config: `{"basis_points": 1000}` (10 %). Build the component with
//! `loyalty plugin build`.

use loyalty_sdk::{
    Effect, PercentDiscount, PluginMetadata, RedemptionQuote, Rejection, RewardInput, RewardType,
};
use serde::Deserialize;

/// The plugin.
pub struct Plugin;

/// The plugin's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Discount in basis points: 1000 = 10 %.
    basis_points: u32,
}

impl Config {
    fn parse(config: &str) -> Result<Self, String> {
        let config: Self = loyalty_sdk::parse_config(config)?;
        if !(1..=10_000).contains(&config.basis_points) {
            return Err(format!(
                "basis_points must be between 1 and 10000, got {}",
                config.basis_points
            ));
        }
        Ok(config)
    }
}

impl RewardType for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "__NAME__".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A percentage off, for the reward's catalogue price.".into(),
            config_schema: r#"{"type":"object","required":["basis_points"],"properties":{"basis_points":{"type":"integer","minimum":1,"maximum":10000}}}"#.into(),
            config_example: r#"{"basis_points": 1000}"#.into(),
        }
    }

    fn validate_config(config: &str) -> Result<(), String> {
        Config::parse(config).map(drop)
    }

    fn quote(input: RewardInput) -> Result<RedemptionQuote, Rejection> {
        let config = Config::parse(&input.config)
            .map_err(|message| Rejection::new("bad-config", message))?;
        if input.request.quantity != 1 {
            return Err(Rejection::new("one-only", "This reward is redeemed one at a time."));
        }
        Ok(RedemptionQuote {
            points_cost: input.reward.base_points_cost,
            effects: vec![Effect::PercentDiscount(PercentDiscount {
                basis_points: config.basis_points,
                cap: None,
            })],
        })
    }
}

loyalty_sdk::export_plugin!(Plugin: reward_type);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{self, RunError, TEST_TIME_MS, member, redemption, reward};
    use loyalty_sdk::{Effect, PercentDiscount, RewardInput, RewardType};

    use super::Plugin;

    fn input(config: &str, quantity: u32) -> RewardInput {
        RewardInput {
            reward: reward("r-1", "10 % off", 500),
            config: config.into(),
            member: member(),
            request: redemption(quantity),
            requested_at_ms: TEST_TIME_MS,
        }
    }

    #[test]
    fn one_unit_costs_the_catalogue_price() -> Result<(), RunError> {
        let quote = testing::run_reward_type::<Plugin>(input(r#"{"basis_points": 1000}"#, 1))?;
        assert_eq!(quote.points_cost, 500);
        assert_eq!(
            quote.effects,
            vec![Effect::PercentDiscount(PercentDiscount { basis_points: 1000, cap: None })]
        );
        Ok(())
    }

    #[test]
    fn two_units_are_rejected() {
        let result = testing::run_reward_type::<Plugin>(input(r#"{"basis_points": 1000}"#, 2));
        assert!(matches!(result, Err(RunError::Rejected(r)) if r.reason_code == "one-only"));
    }

    #[test]
    fn metadata_is_consistent() -> Result<(), String> {
        testing::check_metadata(&Plugin::metadata(), Plugin::validate_config)
    }
}
"##;

const REFERRAL_SCHEME: &str = r##"//! __NAME__: a referral scheme that rewards both members on the referee's first
//! purchase.
//!
//! Config: `{"referrer_points": 500, "referee_points": 200}`. Build the
//! component with `loyalty plugin build`.

use loyalty_sdk::{
    Award, EventKind, PluginMetadata, ReferralAwards, ReferralInput, ReferralScheme,
};
use serde::Deserialize;

/// The plugin.
pub struct Plugin;

/// The plugin's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Points for the member who referred.
    referrer_points: i64,
    /// Points for the member who was referred.
    referee_points: i64,
}

impl Config {
    fn parse(config: &str) -> Result<Self, String> {
        let config: Self = loyalty_sdk::parse_config(config)?;
        if config.referrer_points < 0 || config.referee_points < 0 {
            return Err("referrer_points and referee_points must not be negative".into());
        }
        Ok(config)
    }
}

impl ReferralScheme for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "__NAME__".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Rewards both members on the referee's first purchase.".into(),
            config_schema: r#"{"type":"object","required":["referrer_points","referee_points"]}"#.into(),
            config_example: r#"{"referrer_points": 500, "referee_points": 200}"#.into(),
        }
    }

    fn validate_config(config: &str) -> Result<(), String> {
        Config::parse(config).map(drop)
    }

    fn evaluate(input: ReferralInput) -> Result<Option<ReferralAwards>, String> {
        let config = Config::parse(&input.config)?;
        let first_purchase =
            matches!(input.event.kind, EventKind::Purchase(_)) && input.referee.purchase_count == 0;
        if !first_purchase {
            return Ok(None);
        }
        Ok(Some(ReferralAwards {
            referrer: vec![Award::new(config.referrer_points, "__NAME__")],
            referee: vec![Award::new(config.referee_points, "__NAME__")],
            upline: Vec::new(),
        }))
    }
}

loyalty_sdk::export_plugin!(Plugin: referral_scheme);

#[cfg(test)]
mod tests {
    use loyalty_sdk::testing::{self, RunError, enrollment, member, purchase};
    use loyalty_sdk::{Award, MemberEvent, ReferralAwards, ReferralInput, ReferralScheme};

    use super::Plugin;

    fn run(event: MemberEvent) -> Result<Option<ReferralAwards>, RunError> {
        testing::run_referral_scheme::<Plugin>(ReferralInput {
            referrer: member(),
            referee: member(),
            event,
            config: r#"{"referrer_points": 500, "referee_points": 200}"#.into(),
            upline: Vec::new(),
        })
    }

    #[test]
    fn the_first_purchase_rewards_both_members() -> Result<(), RunError> {
        let awards = run(purchase().line("A", "shoes", 1, 5_000).build())?;
        assert_eq!(
            awards,
            Some(ReferralAwards {
                referrer: vec![Award::new(500, "__NAME__")],
                referee: vec![Award::new(200, "__NAME__")],
                upline: Vec::new(),
            })
        );
        assert_eq!(run(enrollment("web"))?, None);
        Ok(())
    }

    #[test]
    fn metadata_is_consistent() -> Result<(), String> {
        testing::check_metadata(&Plugin::metadata(), Plugin::validate_config)
    }
}
"##;
