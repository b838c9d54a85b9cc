//! Every bundled first-party plugin, as the server runs it: the embedded component loads in the
//! production sandbox, names itself after its crate, accepts its own example config, refuses a
//! config that is not even JSON with its own message, and answers sample inputs of its kind
//! with its example config, without a sandbox failure.

use loyalty_plugin_host::{FailureKind, Limits, PluginHost, PluginKind};
use loyalty_sdk::testing::{birthday, custom, enrollment, member, purchase, redemption, reward};
use loyalty_sdk::{MemberEvent, PointRuleInput, ReferralInput, RewardInput};

fn events() -> Vec<MemberEvent> {
    vec![
        purchase()
            .line("LATTE", "coffee", 2, 450)
            .line("MUG-1", "merchandise", 1, 1_500)
            .build(),
        enrollment("app"),
        birthday(1990),
        custom("review-written", &serde_json::json!({"stars": 5})),
    ]
}

#[test]
fn every_bundled_plugin_runs_in_the_sandbox() {
    let host = PluginHost::new(Limits::default()).expect("host");
    let mut names = Vec::new();
    for (crate_name, bytes) in loyalty_bundled_plugins::COMPONENTS {
        let plugin = host
            .load(bytes)
            .unwrap_or_else(|e| panic!("{crate_name} does not load: {e}"));
        let meta = plugin.metadata().clone();
        assert_eq!(&meta.name, crate_name);
        assert!(!meta.description.is_empty(), "{crate_name}: no description");
        host.validate_config(&plugin, &meta.config_example)
            .unwrap_or_else(|f| panic!("{crate_name} refuses its own example: {f}"));
        match host.validate_config(&plugin, "not json") {
            Err(f) => assert!(
                matches!(f.kind, FailureKind::BadConfig(ref m) if !m.is_empty()),
                "{crate_name}: {f:?}"
            ),
            Ok(_) => panic!("{crate_name} accepts a config that is not JSON"),
        }
        match plugin.kind() {
            PluginKind::PointRule => {
                for event in events() {
                    let input = PointRuleInput {
                        event,
                        member: member(),
                        config: meta.config_example.clone(),
                    };
                    let out = host
                        .evaluate_point_rule(&plugin, &input)
                        .unwrap_or_else(|f| panic!("{crate_name}: sandbox failure {f}"));
                    let awards = out
                        .output
                        .unwrap_or_else(|e| panic!("{crate_name} fails on {input:?}: {e}"));
                    assert!(
                        awards.iter().all(|a| !a.reason_code.is_empty()),
                        "{crate_name}: {awards:?}"
                    );
                }
            }
            PluginKind::RewardType => {
                let input = RewardInput {
                    reward: reward("r-1", "Sample", 100),
                    config: meta.config_example.clone(),
                    member: member(),
                    request: redemption(1),
                    requested_at_ms: events()[0].occurred_at_ms,
                };
                host.quote_reward(&plugin, &input)
                    .unwrap_or_else(|f| panic!("{crate_name}: sandbox failure {f}"));
            }
            PluginKind::ReferralScheme => {
                let input = ReferralInput {
                    referrer: member(),
                    referee: member(),
                    event: events().remove(0),
                    config: meta.config_example.clone(),
                    upline: vec![member(), member()],
                };
                host.evaluate_referral(&plugin, &input)
                    .unwrap_or_else(|f| panic!("{crate_name}: sandbox failure {f}"))
                    .output
                    .unwrap_or_else(|e| panic!("{crate_name}: {e}"));
            }
        }
        names.push(*crate_name);
    }
    assert!(names.contains(&"base-rate"), "{names:?}");
}
