//! The daily birthday job on both backends: the birthday event runs through the point rules on
//! the member's birthday in the tenant's time zone (not UTC's), once per year however often the
//! job runs, and 29 February birthdays are paid on 28 February in other years.

use chrono::{DateTime, NaiveDate, Utc};
use loyalty_core::auth::{Principal, Role};
use loyalty_core::events::birthdays::{self, Done};
use loyalty_core::members::{EnrollRequest, MemberLimits};
use loyalty_core::plugins::{BindRequest, PluginKind};
use loyalty_core::tenants::{Branding, NewTenant};
use loyalty_core::{auth, ledger, members, plugins, tenants};
use loyalty_tests::{Backend, TestApp, both_backends};

both_backends!(birthdays_pay_once_on_the_local_date,);

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

async fn birthdays_pay_once_on_the_local_date(b: Backend) {
    let t = TestApp::start(b).await;
    let app = &t.app;
    let tenant = tenants::service::create(
        &app.db,
        &Principal::Platform,
        NewTenant {
            slug: "kiwi-club".into(),
            name: "Kiwi Club".into(),
            timezone: chrono_tz::Pacific::Auckland,
            points_name: "points".into(),
            currency: "NZD".into(),
            branding: Branding::default(),
        },
    )
    .await
    .expect("tenant");
    let (_, secret) =
        auth::service::create_api_key(&app.db, &Principal::Platform, tenant.id, Role::Admin, "t")
            .await
            .expect("key");
    let admin = auth::service::authenticate(&app.db, &app.platform_key_hash, &secret)
        .await
        .expect("auth");
    let version = plugins::service::versions(&app.db, &admin, Some(PluginKind::PointRule))
        .await
        .expect("versions")
        .into_iter()
        .find(|v| v.name == "birthday-bonus")
        .expect("birthday-bonus is bundled");
    plugins::service::bind(
        &app.db,
        &app.plugins,
        &admin,
        BindRequest {
            plugin_version_id: version.id,
            config: Some(serde_json::json!({"points": 200})),
            priority: 0,
            enabled: true,
        },
        None,
        10,
    )
    .await
    .expect("bind");
    let limits = MemberLimits::from_api(&app.settings.api);
    let enroll = |external: &'static str, birthday: NaiveDate| async move {
        members::service::enroll(
            &app.db,
            &app.plugins,
            &admin,
            EnrollRequest {
                external_id: external.into(),
                birthday: Some(birthday),
                ..Default::default()
            },
            None,
            limits,
        )
        .await
        .expect("enrol")
    };
    let june = enroll("june", NaiveDate::from_ymd_opt(1990, 6, 15).expect("date")).await;
    let leap = enroll("leap", NaiveDate::from_ymd_opt(1996, 2, 29).expect("date")).await;
    let balance = |id| async move {
        ledger::service::balances(&app.db, &admin, id)
            .await
            .expect("balance")
            .available
    };

    // 23:00 on 14 June in Auckland (11:00 UTC): not yet.
    let mut done = Done::new();
    let n = birthdays::run(app, &mut done, at("2027-06-14T11:00:00Z"))
        .await
        .expect("run");
    assert_eq!(n, 0);
    assert_eq!(balance(june.id).await, 0);

    // 01:00 on 15 June in Auckland is still 14 June in UTC: the birthday.
    let n = birthdays::run(app, &mut done, at("2027-06-14T13:00:00Z"))
        .await
        .expect("run");
    assert_eq!(n, 1);
    assert_eq!(balance(june.id).await, 200);

    // Again the same day, by this runner and by a fresh one (another server): nothing more.
    for mut d in [done.clone(), Done::new()] {
        let n = birthdays::run(app, &mut d, at("2027-06-15T08:00:00Z"))
            .await
            .expect("run");
        assert_eq!(n, 0);
    }
    assert_eq!(balance(june.id).await, 200);

    // 2027 is not a leap year: the 29 February member celebrates on 28 February.
    let n = birthdays::run(app, &mut Done::new(), at("2027-02-28T00:00:00Z"))
        .await
        .expect("run");
    assert_eq!(n, 1);
    assert_eq!(balance(leap.id).await, 200);
    // In 2028 (a leap year) on the 29th, not the 28th.
    let n = birthdays::run(app, &mut Done::new(), at("2028-02-27T12:00:00Z"))
        .await
        .expect("run");
    assert_eq!(n, 0, "28 February 2028 in Auckland is not the birthday");
    let n = birthdays::run(app, &mut Done::new(), at("2028-02-28T12:00:00Z"))
        .await
        .expect("run");
    assert_eq!(n, 1);
    assert_eq!(balance(leap.id).await, 400);

    // The history names the plugin and the birthday event.
    let history = ledger::service::history(
        &app.db,
        &admin,
        june.id,
        loyalty_core::pagination::PageRequest {
            limit: 10,
            after: None,
        },
    )
    .await
    .expect("history");
    let entry = &history.items[0];
    assert_eq!(entry.plugin_id.as_deref(), Some("birthday-bonus"));
    assert_eq!(
        entry.event_id.as_deref(),
        Some(format!("birthday:{}:2027", june.id).as_str())
    );
    t.assert_audit_clean().await;
    t.finish().await;
}
