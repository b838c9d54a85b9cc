//! The native test runner: builders and the host-like order of calls, for all
//! three plugin kinds.

use loyalty_sdk::testing::{self, RunError, member, purchase, redemption, reward};
use loyalty_sdk::{
    Award, Effect, EventKind, Expiry, MemberEvent, Money, PluginMetadata, RedemptionQuote,
    ReferralAwards, ReferralInput, ReferralScheme, Rejection, RewardInput, RewardType,
};

fn metadata(name: &str) -> PluginMetadata {
    PluginMetadata {
        name: name.into(),
        version: "1.0.0".into(),
        description: "test".into(),
        config_schema: r#"{"type":"object"}"#.into(),
        config_example: r#"{"ok":true}"#.into(),
    }
}

fn require_ok(config: &str) -> Result<(), String> {
    if config.contains("\"ok\":true") {
        Ok(())
    } else {
        Err("config needs \"ok\":true".into())
    }
}

/// 10 % off, refused for carts under 20.00.
struct TenPercent;

impl RewardType for TenPercent {
    fn metadata() -> PluginMetadata {
        metadata("ten-percent")
    }

    fn validate_config(config: &str) -> Result<(), String> {
        require_ok(config)
    }

    fn quote(input: RewardInput) -> Result<RedemptionQuote, Rejection> {
        let total = input.request.cart.map_or(0, |c| c.total_minor);
        if total < 2_000 {
            return Err(Rejection::new("cart-too-small", "Spend at least 20.00"));
        }
        Ok(RedemptionQuote {
            points_cost: input.reward.base_points_cost * i64::from(input.request.quantity),
            effects: vec![Effect::PercentDiscount(loyalty_sdk::PercentDiscount {
                basis_points: 1_000,
                cap: Some(Money {
                    amount_minor: 500,
                    currency: input.request.currency,
                }),
            })],
        })
    }
}

/// 100 points each when the referee makes a first purchase.
struct FirstPurchase;

impl ReferralScheme for FirstPurchase {
    fn metadata() -> PluginMetadata {
        metadata("first-purchase")
    }

    fn validate_config(config: &str) -> Result<(), String> {
        require_ok(config)
    }

    fn evaluate(input: ReferralInput) -> Result<Option<ReferralAwards>, String> {
        let first =
            matches!(input.event.kind, EventKind::Purchase(_)) && input.referee.purchase_count == 0;
        Ok(first.then(|| ReferralAwards {
            referrer: vec![Award::new(100, "referral").expiring(Expiry::AfterDays(365))],
            referee: vec![Award::new(100, "referral")],
            upline: Vec::new(),
        }))
    }
}

fn reward_input(cart_total_minor: i64, config: &str) -> RewardInput {
    let mut request = redemption(2);
    request.cart = Some(purchase().line("A", "x", 1, cart_total_minor).cart());
    RewardInput {
        reward: reward("r-1", "Ten percent", 300),
        config: config.into(),
        member: member(),
        request,
        requested_at_ms: testing::TEST_TIME_MS,
    }
}

fn referral_input(event: MemberEvent, config: &str) -> ReferralInput {
    ReferralInput {
        referrer: member(),
        referee: member(),
        event,
        config: config.into(),
        upline: Vec::new(),
    }
}

#[test]
fn reward_type_quotes_rejects_and_refuses_bad_config() -> Result<(), RunError> {
    let quote = testing::run_reward_type::<TenPercent>(reward_input(2_500, r#"{"ok":true}"#))?;
    assert_eq!(quote.points_cost, 600);
    assert_eq!(quote.effects.len(), 1);

    let rejected = testing::run_reward_type::<TenPercent>(reward_input(1_000, r#"{"ok":true}"#));
    assert_eq!(
        rejected,
        Err(RunError::Rejected(Rejection::new(
            "cart-too-small",
            "Spend at least 20.00"
        )))
    );

    let refused = testing::run_reward_type::<TenPercent>(reward_input(2_500, "{}"));
    assert_eq!(
        refused,
        Err(RunError::InvalidConfig("config needs \"ok\":true".into()))
    );
    Ok(())
}

#[test]
fn referral_scheme_awards_both_sides_or_none() -> Result<(), RunError> {
    let config = r#"{"ok":true}"#;
    let awards = testing::run_referral_scheme::<FirstPurchase>(referral_input(
        purchase().line("A", "x", 1, 100).build(),
        config,
    ))?;
    let awards = awards.ok_or(RunError::Failed("expected awards".into()))?;
    assert_eq!(awards.referrer[0].expiry, Some(Expiry::AfterDays(365)));
    assert_eq!(awards.referee, vec![Award::new(100, "referral")]);

    let none = testing::run_referral_scheme::<FirstPurchase>(referral_input(
        testing::birthday(2025),
        config,
    ))?;
    assert_eq!(none, None);
    Ok(())
}

#[test]
fn check_metadata_catches_an_example_the_plugin_refuses() {
    assert_eq!(
        testing::check_metadata(&TenPercent::metadata(), TenPercent::validate_config),
        Ok(())
    );
    let mut bad = TenPercent::metadata();
    bad.config_example = "{}".into();
    let err = testing::check_metadata(&bad, TenPercent::validate_config);
    assert!(err.is_err_and(|e| e.contains("config_example")));
    bad = TenPercent::metadata();
    bad.config_schema = "not json".into();
    assert!(testing::check_metadata(&bad, TenPercent::validate_config).is_err());
}

#[test]
fn order_builder_numbers_lines_and_sums_the_total() {
    let event = purchase()
        .order_id("o-9")
        .currency("USD")
        .line("A", "x", 2, 150)
        .line("B", "y", 1, 5)
        .build();
    let EventKind::Purchase(p) = event.kind else {
        panic!("not a purchase: {:?}", event.kind);
    };
    assert_eq!(
        (p.order_id.as_str(), p.currency.as_str(), p.total_minor),
        ("o-9", "USD", 305)
    );
    let indexes: Vec<u32> = p.lines.iter().map(|l| l.line_index).collect();
    assert_eq!(indexes, vec![0, 1]);
    assert_eq!(event.occurred_at_ms, testing::TEST_TIME_MS);

    let overridden = purchase().line("A", "x", 1, 100).total_minor(80).cart();
    assert_eq!(overridden.total_minor, 80);
    assert!(matches!(
        testing::purchase_return().build().kind,
        EventKind::Return(_)
    ));
}

#[test]
fn events_round_trip_through_json() -> Result<(), serde_json::Error> {
    let events = [
        purchase().line("A", "x", 1, 100).build(),
        testing::enrollment("web"),
        testing::custom("review", &serde_json::json!({"stars": 5})),
    ];
    for event in events {
        let json = serde_json::to_string(&event)?;
        assert_eq!(serde_json::from_str::<MemberEvent>(&json)?, event);
    }
    let expiry: Expiry = serde_json::from_str(r#"{"after_days": 30}"#)?;
    assert_eq!(expiry, Expiry::AfterDays(30));
    Ok(())
}
