//! The sandbox runs a real, well-behaved plugin: base-rate.

mod common;

use common::{BASE_RATE_CONFIG, component, host, point_rule_input};
use loyalty_plugin_host::{FailureKind, PluginKind};
use loyalty_sdk::testing::{TEST_TIME_MS, member, redemption, reward};
use loyalty_sdk::{Award, RewardInput};

#[test]
fn base_rate_awards_points_per_line_and_reports_usage() {
    let host = host();
    let plugin = host.load(component("base-rate")).expect("load base-rate");
    assert_eq!(plugin.kind(), PluginKind::PointRule);
    assert_eq!(plugin.metadata().name, "base-rate");
    assert_eq!(plugin.digest().len(), 64);

    let outcome = host
        .evaluate_point_rule(&plugin, &point_rule_input(BASE_RATE_CONFIG))
        .expect("evaluate");
    assert_eq!(
        outcome.output,
        Ok(vec![
            Award::new(99, "base-rate").for_line(0),
            Award::new(5, "base-rate").for_line(1),
        ])
    );
    let usage = outcome.usage;
    assert!(usage.fuel_used > 0, "{usage:?}");
    assert!(usage.fuel_used < host.limits().fuel_max, "{usage:?}");
    assert!(usage.memory_peak_bytes > 0, "{usage:?}");
    assert!(
        usage.memory_peak_bytes <= host.limits().memory_bytes_max,
        "{usage:?}"
    );
    assert!(!usage.duration.is_zero(), "{usage:?}");
    // The SDK's arena holds what the call allocates: its memory never grew, so the host has no
    // page protections to change before the slot's next instance.
    assert_eq!(usage.memory_grows, 0, "{usage:?}");
}

#[test]
fn calls_are_independent_and_deterministic() {
    let host = host();
    let plugin = host.load(component("base-rate")).expect("load");
    let input = point_rule_input(BASE_RATE_CONFIG);
    let first = host.evaluate_point_rule(&plugin, &input).expect("first");
    for _ in 0..20 {
        let again = host.evaluate_point_rule(&plugin, &input).expect("again");
        assert_eq!(again.output, first.output);
        // A fresh instance per call: the same work costs the same fuel.
        assert_eq!(again.usage.fuel_used, first.usage.fuel_used);
    }
}

#[test]
fn the_example_config_is_accepted_and_a_bad_one_refused_with_the_plugins_message() {
    let host = host();
    let plugin = host.load(component("base-rate")).expect("load");
    let example = plugin.metadata().config_example.clone();
    let accepted = host
        .validate_config(&plugin, &example)
        .expect("example accepted");
    assert!(accepted.usage.fuel_used > 0);

    let refused = host
        .validate_config(&plugin, r#"{"points_per_unit": 0}"#)
        .expect_err("refused");
    assert_eq!(
        refused.kind,
        FailureKind::BadConfig("points_per_unit must be between 1 and 1000000, got 0".into())
    );
    assert_eq!(refused.kind.code(), "bad-config");
    assert!(refused.usage.fuel_used > 0);
}

#[test]
fn the_plugins_own_error_is_a_normal_result() {
    let host = host();
    let plugin = host.load(component("base-rate")).expect("load");
    // evaluate() re-parses its config; an unvalidated bad one is the plugin's error.
    let outcome = host
        .evaluate_point_rule(&plugin, &point_rule_input(r#"{"points_per_unit": 0}"#))
        .expect("a normal result");
    let message = outcome.output.expect_err("the plugin's error");
    assert!(message.contains("points_per_unit"), "{message}");
}

#[test]
fn loading_twice_reuses_the_compiled_component() {
    let host = host();
    let first = host.load(component("base-rate")).expect("load");
    let second = host.load(component("base-rate")).expect("load again");
    assert_eq!(first.digest(), second.digest());
    assert_eq!(first.metadata(), second.metadata());
    let clone = second.clone();
    assert_eq!(clone.digest(), first.digest());
}

#[test]
fn a_point_rule_called_as_a_reward_type_is_refused() {
    let host = host();
    let plugin = host.load(component("base-rate")).expect("load");
    let input = RewardInput {
        reward: reward("r", "r", 100),
        config: "{}".into(),
        member: member(),
        request: redemption(1),
        requested_at_ms: TEST_TIME_MS,
    };
    let failure = host.quote_reward(&plugin, &input).expect_err("wrong kind");
    assert_eq!(
        failure.kind,
        FailureKind::WrongKind {
            expected: PluginKind::RewardType,
            actual: PluginKind::PointRule
        }
    );
}

#[test]
fn a_plugin_from_another_host_is_refused_not_a_panic() {
    let one = host();
    let other = host();
    let plugin = one.load(component("base-rate")).expect("load");
    let failure = other
        .evaluate_point_rule(&plugin, &point_rule_input(BASE_RATE_CONFIG))
        .expect_err("other host");
    assert!(matches!(failure.kind, FailureKind::Trap(_)), "{failure:?}");
}
