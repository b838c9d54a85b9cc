//! Redemption codes expire after the reward's `codeValidDays` (the jobs runner, driven here
//! with an explicit clock), and the `coffee-stars` template's free drink is redeemable with
//! stars earned from purchases; on both backends, with the ledger audit clean after.

use chrono::Duration;
use loyalty_core::auth::{Principal, Role};
use loyalty_core::events::{Channel, LineInput, MemberRef, PurchaseRequest};
use loyalty_core::members::{EnrollRequest, MemberLimits};
use loyalty_core::rewards::{Status, service as rewards};
use loyalty_core::tenants::{Branding, NewTenant};
use loyalty_core::{auth, events, ledger, members, templates};
use loyalty_tests::{Backend, TestApp, both_backends};

both_backends!(codes_expire_and_the_template_free_drink_is_redeemable,);

async fn codes_expire_and_the_template_free_drink_is_redeemable(b: Backend) {
    let t = TestApp::start(b).await;
    let app = &t.app;
    let tenant = templates::create_tenant(
        &app.db,
        &app.plugins,
        &Principal::Platform,
        NewTenant {
            slug: "cafe".into(),
            name: "Café".into(),
            timezone: chrono_tz::Europe::Amsterdam,
            points_name: "stars".into(),
            currency: "EUR".into(),
            branding: Branding::default(),
        },
        "coffee-stars",
    )
    .await
    .expect("tenant from template");
    let (_, secret) =
        auth::service::create_api_key(&app.db, &Principal::Platform, tenant.id, Role::Admin, "t")
            .await
            .expect("key");
    let admin = auth::service::authenticate(&app.db, &app.platform_key_hash, &secret)
        .await
        .expect("auth");
    let member = members::service::enroll(
        &app.db,
        &app.plugins,
        &admin,
        EnrollRequest {
            external_id: "ann".into(),
            ..Default::default()
        },
        None,
        MemberLimits::from_api(&app.settings.api),
    )
    .await
    .expect("enrol");
    // 25 stars to welcome + 130 for a 130.00 purchase = 155.
    events::service::record_purchase(
        &app.db,
        &app.plugins,
        &app.settings.api,
        &admin,
        PurchaseRequest {
            order_id: "o-1".into(),
            member: MemberRef::Id(member.id),
            occurred_at: None,
            currency: "EUR".into(),
            total: 13_000,
            channel: Channel::Store,
            store_id: None,
            lines: vec![LineInput {
                sku: "BEANS".into(),
                category: Some("beans".into()),
                quantity: 1,
                unit_price: 13_000,
            }],
        },
    )
    .await
    .expect("purchase");
    let balance = || async {
        ledger::service::balances(&app.db, &admin, member.id)
            .await
            .expect("balance")
    };
    assert_eq!(balance().await.available, 155);

    let drink = rewards::catalogue(&app.db, &admin, &app.settings.api)
        .await
        .expect("catalogue")
        .into_iter()
        .find(|r| r.name == "Free drink")
        .expect("the template's free drink");
    let r = rewards::redeem(
        &app.db,
        &app.plugins,
        &app.settings.api,
        &admin,
        member.id,
        drink.id,
        1,
        "drink-1",
        None,
    )
    .await
    .expect("redeem");
    assert_eq!(r.status, Status::Issued);
    assert_eq!(r.points_cost, 150);
    assert_eq!(
        r.effects,
        vec![loyalty_sdk::Effect::FreeItem("DRINK-ANY".into())]
    );
    assert_eq!(balance().await.available, 5);

    // The code is valid for 30 days: nothing expires a day before, it expires after.
    let day_before = r.expires_at - Duration::days(1);
    let n = rewards::expire_due(&app.db, 100, day_before)
        .await
        .expect("job");
    assert_eq!(n, 0);
    let n = rewards::expire_due(&app.db, 100, r.expires_at)
        .await
        .expect("job");
    assert_eq!(n, 1);
    let n = rewards::expire_due(&app.db, 100, r.expires_at)
        .await
        .expect("job");
    assert_eq!(n, 0, "expired once");
    let page = rewards::member_redemptions(
        &app.db,
        &admin,
        member.id,
        loyalty_core::pagination::PageRequest {
            limit: 10,
            after: None,
        },
    )
    .await
    .expect("list");
    assert_eq!(page.items[0].status, Status::Expired);
    assert_eq!(page.items[0].expired_at, Some(r.expires_at));
    // An expired code cannot be used or cancelled; the points stay spent.
    let used = rewards::use_code(&app.db, &admin, &r.code).await;
    assert_eq!(used.expect_err("expired").code(), "CONFLICT");
    let cancelled = rewards::cancel(&app.db, &admin, r.id).await;
    assert_eq!(cancelled.expect_err("expired").code(), "CONFLICT");
    assert_eq!(balance().await.available, 5);
    let stats = rewards::stats(&app.db, &admin, drink.id)
        .await
        .expect("stats");
    assert_eq!((stats.issued, stats.expired), (0, 1));
    t.assert_audit_clean().await;
    t.finish().await;
}
