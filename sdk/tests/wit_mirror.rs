//! The SDK's types mirror the WIT records field for field (the host maps them
//! with plain `From` impls). This test reads `wit/v1/*.wit` and checks every
//! record's field names against the serde names of the SDK type with the same
//! name, so a field added on one side only fails here, natively.

use loyalty_sdk::testing::{self, member, purchase};
use loyalty_sdk::{
    Award, CalendarDate, CustomEvent, CustomPerk, Enrollment, EventCounts, EventKind, Expiry,
    MemberEvent, Money, PercentDiscount, PluginMetadata, PointRuleInput, RedemptionQuote,
    RedemptionRequest, ReferralAwards, ReferralInput, Rejection, RewardInput,
};
use serde::Serialize;
use serde_json::Value;

/// `record name { field: type, ... }` blocks of every WIT file, as
/// (record name, field names in snake_case).
fn wit_records() -> Vec<(String, Vec<String>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/wit/v1");
    let mut records = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut current: Option<(String, Vec<String>)> = None;
        for line in text.lines().map(str::trim) {
            if line.starts_with("//") {
                continue;
            }
            if let Some(rest) = line.strip_prefix("record ") {
                let name = rest.trim_end_matches('{').trim().to_owned();
                current = Some((name, Vec::new()));
            } else if line == "}" {
                if let Some(record) = current.take() {
                    records.push(record);
                }
            } else if let Some((_, fields)) = current.as_mut()
                && let Some((field, _)) = line.split_once(':')
            {
                fields.push(field.trim().trim_start_matches('%').replace('-', "_"));
            }
        }
    }
    records
}

fn keys(value: &impl Serialize) -> Vec<String> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map.keys().cloned().collect(),
        other => panic!("not a JSON object: {other:?}"),
    }
}

#[test]
fn every_wit_record_has_an_sdk_twin_with_the_same_fields() {
    let event = purchase().line("A", "x", 1, 100).build();
    let EventKind::Purchase(purchase_record) = event.kind.clone() else {
        panic!("purchase() built {:?}", event.kind);
    };
    let EventKind::Return(return_record) = testing::purchase_return().build().kind else {
        panic!("purchase_return() built something else");
    };
    let money = Money {
        amount_minor: 1,
        currency: "EUR".into(),
    };
    let mut member = member();
    member.birthday = Some(CalendarDate {
        year: None,
        month: 1,
        day: 2,
    });
    let reward_input = RewardInput {
        reward: testing::reward("r", "R", 100),
        config: "{}".into(),
        member: member.clone(),
        request: testing::redemption(1),
        requested_at_ms: testing::TEST_TIME_MS,
    };
    let samples: Vec<(&str, Vec<String>)> = vec![
        ("money", keys(&money)),
        (
            "calendar-date",
            keys(&CalendarDate {
                year: Some(1990),
                month: 1,
                day: 2,
            }),
        ),
        ("purchase-line", keys(&purchase_record.lines[0])),
        ("purchase", keys(&purchase_record)),
        ("purchase-return", keys(&return_record)),
        (
            "enrollment",
            keys(&Enrollment {
                channel: "web".into(),
            }),
        ),
        ("birthday", keys(&loyalty_sdk::Birthday { year: 2025 })),
        (
            "custom-event",
            keys(&CustomEvent {
                name: "n".into(),
                properties_json: "{}".into(),
                prior: EventCounts::default(),
            }),
        ),
        ("event-counts", keys(&EventCounts::default())),
        ("member-event", keys(&event)),
        ("tier", keys(&member.tier)),
        ("balances", keys(&member.balances)),
        ("member-snapshot", keys(&member)),
        (
            "award",
            keys(&Award::new(1, "r").expiring(Expiry::AfterDays(3))),
        ),
        ("plugin-metadata", keys(&plugin_metadata())),
        (
            "point-rule-input",
            keys(&PointRuleInput {
                event: event.clone(),
                member: member.clone(),
                config: "{}".into(),
            }),
        ),
        ("reward-definition", keys(&reward_input.reward)),
        ("cart", keys(&purchase().cart())),
        (
            "redemption-request",
            keys(&RedemptionRequest {
                cart: Some(purchase().cart()),
                ..testing::redemption(1)
            }),
        ),
        ("reward-input", keys(&reward_input)),
        (
            "percent-discount",
            keys(&PercentDiscount {
                basis_points: 1,
                cap: Some(money),
            }),
        ),
        (
            "custom-perk",
            keys(&CustomPerk {
                name: "n".into(),
                details_json: "{}".into(),
            }),
        ),
        (
            "redemption-quote",
            keys(&RedemptionQuote {
                points_cost: 1,
                effects: Vec::new(),
            }),
        ),
        ("rejection", keys(&Rejection::new("c", "m"))),
        (
            "referral-input",
            keys(&ReferralInput {
                referrer: member.clone(),
                referee: member.clone(),
                event: MemberEvent { ..event },
                config: "{}".into(),
                upline: vec![member],
            }),
        ),
        ("referral-awards", keys(&ReferralAwards::default())),
    ];

    let records = wit_records();
    assert!(
        records.len() >= 20,
        "parsed only {} WIT records",
        records.len()
    );
    for (name, fields) in &records {
        let Some((_, sdk_fields)) = samples.iter().find(|(n, _)| n == name) else {
            panic!("WIT record `{name}` has no SDK twin in this test");
        };
        let mut wit_sorted = fields.clone();
        wit_sorted.sort();
        let mut sdk_sorted = sdk_fields.clone();
        sdk_sorted.sort();
        assert_eq!(wit_sorted, sdk_sorted, "fields of `{name}`");
    }
    for (name, _) in &samples {
        assert!(
            records.iter().any(|(n, _)| n == name),
            "SDK twin `{name}` has no WIT record"
        );
    }
}

fn plugin_metadata() -> PluginMetadata {
    PluginMetadata {
        name: "n".into(),
        version: "1.0.0".into(),
        description: "d".into(),
        config_schema: String::new(),
        config_example: "{}".into(),
    }
}
