//! The points ledger end to end (GraphQL) and at the service level (holds, returns, expiry,
//! jobs), with the audit run after each scenario. Every scenario runs on SQLite and PostgreSQL.

use chrono::Duration;
use loyalty_core::ledger::service::{self as ledger, EarnSpec, Source};
use loyalty_core::ledger::{ExpiryPolicy, ShortfallPolicy, jobs, repo};
use loyalty_core::tenants::PointsPolicy;
use loyalty_tests::{Backend, TestApp, TestServer, both_backends, code, field};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

both_backends!(
    adjust_points_over_graphql,
    concurrent_debits_never_overspend,
    same_key_at_once_writes_one_entry,
    holds_capture_and_void_restore_lots,
    returns_claw_back_pending_then_available_then_shortfall,
    negative_policy_takes_other_lots_then_goes_negative,
    pending_unlocks_and_lots_expire_by_policy,
    reversal_happens_at_most_once,
    audit_reports_tampering,
    earn_many_writes_what_one_earn_each_would,
);

const ADJUST: &str = "mutation($i: AdjustPointsInput!) { adjustPoints(input: $i) { entry { id points kind reason } member { balance { available pending held lifetimeEarned lifetimeRedeemed lifetimeExpired } } } }";

fn adjust(member: &str, points: i64, key: &str) -> Value {
    json!({ "i": { "memberId": member, "points": points, "reason": "goodwill", "idempotencyKey": key } })
}

async fn adjust_points_over_graphql(b: Backend) {
    let s = TestServer::start(b).await;
    let (tenant, admin) = s.tenant("ledger-gql").await;
    let member = s.enroll(&admin, json!({ "externalId": "l-1" })).await;

    let data = s.ok(&admin, ADJUST, adjust(&member, 120, "k1")).await;
    let p = &data["adjustPoints"];
    assert_eq!(p["entry"]["points"], 120);
    assert_eq!(p["entry"]["kind"], "ADJUST");
    assert_eq!(p["entry"]["reason"], "goodwill");
    assert_eq!(p["member"]["balance"]["available"], 120);
    // Same key, same request: the stored result, nothing new.
    let again = s.ok(&admin, ADJUST, adjust(&member, 120, "k1")).await;
    assert_eq!(again["adjustPoints"]["entry"]["id"], p["entry"]["id"]);
    assert_eq!(again["adjustPoints"]["member"]["balance"]["available"], 120);
    // Same key, other request: CONFLICT.
    let v = s
        .gql(Some(&admin), ADJUST, adjust(&member, 121, "k1"))
        .await;
    assert_eq!(code(&v), "CONFLICT");
    // A debit.
    let data = s.ok(&admin, ADJUST, adjust(&member, -20, "k2")).await;
    assert_eq!(data["adjustPoints"]["member"]["balance"]["available"], 100);
    assert_eq!(
        data["adjustPoints"]["member"]["balance"]["lifetimeEarned"],
        100
    );
    // Too large a debit: INSUFFICIENT_POINTS, nothing written.
    let v = s
        .gql(Some(&admin), ADJUST, adjust(&member, -101, "k3"))
        .await;
    assert_eq!(code(&v), "INSUFFICIENT_POINTS", "{v}");
    // Bad input.
    let v = s.gql(Some(&admin), ADJUST, adjust(&member, 0, "k4")).await;
    assert_eq!(
        (code(&v), field(&v)),
        ("VALIDATION".into(), "points".into())
    );
    let v = s
        .gql(Some(&admin), ADJUST, json!({ "i": { "memberId": member, "points": 5, "reason": " ", "idempotencyKey": "k5" } }))
        .await;
    assert_eq!(
        (code(&v), field(&v)),
        ("VALIDATION".into(), "reason".into())
    );
    let v = s
        .gql(Some(&admin), ADJUST, json!({ "i": { "memberId": member, "points": 5, "reason": "x", "idempotencyKey": "" } }))
        .await;
    assert_eq!(
        (code(&v), field(&v)),
        ("VALIDATION".into(), "idempotencyKey".into())
    );
    // Roles: INTEGRATION and READ_ONLY may not adjust; another tenant cannot see the member.
    let integration = s.key(&admin, &tenant, "INTEGRATION").await;
    let v = s
        .gql(Some(&integration), ADJUST, adjust(&member, 5, "k6"))
        .await;
    assert_eq!(code(&v), "FORBIDDEN");
    let (_, other) = s.tenant("ledger-gql-other").await;
    let v = s.gql(Some(&other), ADJUST, adjust(&member, 5, "k7")).await;
    assert_eq!(code(&v), "NOT_FOUND");
    let v = s
        .gql(
            Some(&other),
            "query($id: ID!) { member(id: $id) { balance { available } } }",
            json!({ "id": member }),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND");

    // History, newest first, paginated.
    let data = s
        .ok(&admin, "query($id: ID!) { member(id: $id) { history(first: 1) { edges { node { kind points reason createdAt source { eventId pluginId } } } pageInfo { hasNextPage endCursor } } } }", json!({ "id": member }))
        .await;
    let h = &data["member"]["history"];
    assert_eq!(h["edges"][0]["node"]["points"], -20);
    assert_eq!(h["pageInfo"]["hasNextPage"], true);
    let next = s
        .ok(&admin, "query($id: ID!, $a: String) { member(id: $id) { history(first: 5, after: $a) { edges { node { points } } pageInfo { hasNextPage } } } }", json!({ "id": member, "a": h["pageInfo"]["endCursor"] }))
        .await;
    assert_eq!(
        next["member"]["history"]["edges"],
        json!([{ "node": { "points": 120 } }])
    );

    // Policy: points now expire 30 days after earning; the next credit shows as expiring.
    let data = s
        .ok(&admin, "mutation { setPointsPolicy(input: {expiry: {kind: DAYS_AFTER_EARN, value: 30}, shortfall: ALLOW_NEGATIVE}) { tenant { pointsPolicy { expiry { kind value } shortfall } } } }", json!({}))
        .await;
    assert_eq!(
        data["setPointsPolicy"]["tenant"]["pointsPolicy"]["expiry"]["value"],
        30
    );
    s.ok(&admin, ADJUST, adjust(&member, 7, "k8")).await;
    let data = s
        .ok(&admin, "query($id: ID!) { member(id: $id) { expiringPoints(withinDays: 31) { points expiresAt } } }", json!({ "id": member }))
        .await;
    assert_eq!(data["member"]["expiringPoints"][0]["points"], 7);
    let data = s
        .ok(
            &admin,
            "query($id: ID!) { member(id: $id) { expiringPoints(withinDays: 29) { points } } }",
            json!({ "id": member }),
        )
        .await;
    assert_eq!(data["member"]["expiringPoints"], json!([]));
    let v = s
        .gql(Some(&admin), "mutation { setPointsPolicy(input: {expiry: {kind: DAYS_AFTER_EARN, value: 0}, shortfall: RECORD_SHORTFALL}) { tenant { id } } }", json!({}))
        .await;
    assert_eq!(code(&v), "VALIDATION");
    s.finish().await;
}

async fn concurrent_debits_never_overspend(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("ledger-race").await;
    let member = s.enroll(&admin, json!({ "externalId": "race" })).await;
    s.ok(&admin, ADJUST, adjust(&member, 100, "seed")).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (http, url, admin, member) = (
            s.http.clone(),
            s.url("/graphql"),
            admin.clone(),
            member.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let body = json!({ "query": ADJUST, "variables": adjust(&member, -10, &format!("debit-{i}")) });
            let v: Value = http.post(url).bearer_auth(admin).json(&body).send().await.expect("send").json().await.expect("json");
            code(&v)
        }));
    }
    let mut ok = 0;
    let mut insufficient = 0;
    for t in tasks {
        match t.await.expect("task").as_str() {
            "OK" => ok += 1,
            "INSUFFICIENT_POINTS" => insufficient += 1,
            other => panic!("unexpected outcome {other}"),
        }
    }
    assert_eq!((ok, insufficient), (10, 40));
    let data = s.ok(&admin, "query($id: ID!) { member(id: $id) { balance { available } history(first: 100) { edges { node { id } } } } }", json!({ "id": member })).await;
    assert_eq!(data["member"]["balance"]["available"], 0);
    assert_eq!(
        data["member"]["history"]["edges"]
            .as_array()
            .expect("edges")
            .len(),
        11
    );
    s.finish().await;
}

async fn same_key_at_once_writes_one_entry(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("ledger-idem").await;
    let member = s.enroll(&admin, json!({ "externalId": "idem" })).await;
    let ids: Vec<Option<String>> = s
        .gql_at_once(&admin, ADJUST, vec![adjust(&member, 25, "same-key"); 20])
        .await
        .iter()
        .map(|v| {
            v["data"]["adjustPoints"]["entry"]["id"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert!(ids.iter().all(|i| i.is_some() && *i == ids[0]), "{ids:?}");
    let data = s.ok(&admin, "query($id: ID!) { member(id: $id) { balance { available } history { edges { node { id } } } } }", json!({ "id": member })).await;
    assert_eq!(data["member"]["balance"]["available"], 25);
    assert_eq!(
        data["member"]["history"]["edges"]
            .as_array()
            .expect("edges")
            .len(),
        1
    );
    s.finish().await;
}

fn policy(expiry: ExpiryPolicy, shortfall: ShortfallPolicy) -> PointsPolicy {
    PointsPolicy { expiry, shortfall }
}

async fn earn(
    t: &TestApp,
    tenant: &loyalty_core::tenants::Tenant,
    m: loyalty_core::ids::MemberId,
    points: i64,
    spec: EarnSpec,
) -> repo::Entry {
    let txn = t.app.db.begin_write().await.expect("txn");
    let (e, _) = ledger::earn_in(
        &txn,
        tenant,
        m,
        EarnSpec { points, ..spec },
        loyalty_core::clock::now(),
    )
    .await
    .expect("earn");
    txn.commit().await.expect("commit");
    e
}

async fn balances(
    t: &TestApp,
    tenant: &loyalty_core::tenants::Tenant,
    m: loyalty_core::ids::MemberId,
) -> (i64, i64, i64) {
    let b = repo::balances(t.app.db.reader(), tenant.id, m)
        .await
        .expect("balances");
    (b.available, b.pending, b.held)
}

async fn holds_capture_and_void_restore_lots(b: Backend) {
    let t = TestApp::start(b).await;
    let (tenant, m) = t
        .tenant_and_member(
            "holds",
            policy(ExpiryPolicy::Never, ShortfallPolicy::RecordShortfall),
        )
        .await;
    let soon = loyalty_core::clock::now() + Duration::days(10);
    let later = loyalty_core::clock::now() + Duration::days(100);
    earn(
        &t,
        &tenant,
        m,
        50,
        EarnSpec {
            expires_at: Some(Some(later)),
            ..Default::default()
        },
    )
    .await;
    earn(
        &t,
        &tenant,
        m,
        30,
        EarnSpec {
            expires_at: Some(Some(soon)),
            ..Default::default()
        },
    )
    .await;
    let now = loyalty_core::clock::now();

    // Hold 40: the 30 expiring soon go first, then 10 of the later lot.
    let txn = t.app.db.begin_write().await.expect("txn");
    let (hold, _) = ledger::hold_in(&txn, &tenant, m, 40, Source::default(), now)
        .await
        .expect("hold");
    txn.commit().await.expect("commit");
    assert_eq!(balances(&t, &tenant, m).await, (40, 0, 40));
    let expiring = repo::expiring(t.app.db.reader(), tenant.id, m, soon)
        .await
        .expect("expiring");
    assert_eq!(expiring, vec![]);

    // Void: both lots are whole again, with their own expiry.
    let txn = t.app.db.begin_write().await.expect("txn");
    ledger::void_in(&txn, &tenant, hold.id, now)
        .await
        .expect("void");
    txn.commit().await.expect("commit");
    assert_eq!(balances(&t, &tenant, m).await, (80, 0, 0));
    let expiring = repo::expiring(t.app.db.reader(), tenant.id, m, later)
        .await
        .expect("expiring");
    assert_eq!(expiring, vec![(soon, 30), (later, 50)]);
    // A resolved hold cannot be resolved again.
    let txn = t.app.db.begin_write().await.expect("txn");
    let again = ledger::capture_in(&txn, &tenant, hold.id, 10, now).await;
    assert_eq!(again.map(|_| ()).map_err(|e| e.code()), Err("CONFLICT"));
    drop(txn);

    // Partial capture: 25 of 40 redeemed, 15 back (to the later lot, taken last).
    let txn = t.app.db.begin_write().await.expect("txn");
    let (hold, _) = ledger::hold_in(&txn, &tenant, m, 40, Source::default(), now)
        .await
        .expect("hold");
    ledger::capture_in(&txn, &tenant, hold.id, 25, now)
        .await
        .expect("capture");
    txn.commit().await.expect("commit");
    assert_eq!(balances(&t, &tenant, m).await, (55, 0, 0));
    let expiring = repo::expiring(t.app.db.reader(), tenant.id, m, later)
        .await
        .expect("expiring");
    assert_eq!(expiring, vec![(soon, 5), (later, 50)]);
    let b2 = repo::balances(t.app.db.reader(), tenant.id, m)
        .await
        .expect("b");
    assert_eq!(b2.lifetime_redeemed, 25);
    // Capturing more than held is refused.
    let txn = t.app.db.begin_write().await.expect("txn");
    let (hold, _) = ledger::hold_in(&txn, &tenant, m, 10, Source::default(), now)
        .await
        .expect("hold");
    let over = ledger::capture_in(&txn, &tenant, hold.id, 11, now).await;
    assert_eq!(over.map(|_| ()).map_err(|e| e.code()), Err("VALIDATION"));
    drop(txn);
    let txn = t.app.db.begin_write().await.expect("txn");
    let too_much = ledger::hold_in(&txn, &tenant, m, 56, Source::default(), now).await;
    assert_eq!(
        too_much.map(|_| ()).map_err(|e| e.code()),
        Err("INSUFFICIENT_POINTS")
    );
    drop(txn);
    t.assert_audit_clean().await;
    t.finish().await;
}

async fn returns_claw_back_pending_then_available_then_shortfall(b: Backend) {
    let t = TestApp::start(b).await;
    let (tenant, m) = t
        .tenant_and_member(
            "returns",
            policy(ExpiryPolicy::Never, ShortfallPolicy::RecordShortfall),
        )
        .await;
    let now = loyalty_core::clock::now();
    // A pending earn (return window) is clawed back from pending.
    let pending = earn(
        &t,
        &tenant,
        m,
        40,
        EarnSpec {
            pending_until: Some(now + Duration::days(14)),
            natural_key: Some("earn:o-1:0".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(balances(&t, &tenant, m).await, (0, 40, 0));
    // The natural key makes a second earn of the same line return the first.
    let dup = earn(
        &t,
        &tenant,
        m,
        40,
        EarnSpec {
            pending_until: Some(now + Duration::days(14)),
            natural_key: Some("earn:o-1:0".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(dup.id, pending.id);
    let txn = t.app.db.begin_write().await.expect("txn");
    ledger::clawback_in(
        &txn,
        &tenant,
        pending.id,
        15,
        Some("return:r-1".into()),
        false,
        now,
    )
    .await
    .expect("clawback");
    // The same return again: no second clawback.
    ledger::clawback_in(
        &txn,
        &tenant,
        pending.id,
        15,
        Some("return:r-1".into()),
        false,
        now,
    )
    .await
    .expect("same return");
    txn.commit().await.expect("commit");
    assert_eq!(balances(&t, &tenant, m).await, (0, 25, 0));

    // An available earn, partly spent, then returned in full: 30 from the lot, 20 shortfall.
    let avail = earn(&t, &tenant, m, 50, EarnSpec::default()).await;
    let txn = t.app.db.begin_write().await.expect("txn");
    let (hold, _) = ledger::hold_in(&txn, &tenant, m, 20, Source::default(), now)
        .await
        .expect("hold");
    ledger::capture_in(&txn, &tenant, hold.id, 20, now)
        .await
        .expect("capture");
    txn.commit().await.expect("commit");
    assert_eq!(balances(&t, &tenant, m).await, (30, 25, 0));
    let txn = t.app.db.begin_write().await.expect("txn");
    let over = ledger::clawback_in(&txn, &tenant, avail.id, 51, None, false, now).await;
    assert_eq!(over.map(|_| ()).map_err(|e| e.code()), Err("VALIDATION"));
    drop(txn);
    let txn = t.app.db.begin_write().await.expect("txn");
    ledger::clawback_in(
        &txn,
        &tenant,
        avail.id,
        50,
        Some("return:r-2".into()),
        false,
        now,
    )
    .await
    .expect("clawback");
    txn.commit().await.expect("commit");
    assert_eq!(balances(&t, &tenant, m).await, (0, 25, 0));
    t.assert_audit_clean().await;
    t.finish().await;
}

async fn negative_policy_takes_other_lots_then_goes_negative(b: Backend) {
    let t = TestApp::start(b).await;
    let (tenant, m) = t
        .tenant_and_member(
            "negative",
            policy(ExpiryPolicy::Never, ShortfallPolicy::AllowNegative),
        )
        .await;
    let now = loyalty_core::clock::now();
    let first = earn(&t, &tenant, m, 50, EarnSpec::default()).await;
    earn(&t, &tenant, m, 10, EarnSpec::default()).await;
    let txn = t.app.db.begin_write().await.expect("txn");
    let (hold, _) = ledger::hold_in(&txn, &tenant, m, 55, Source::default(), now)
        .await
        .expect("hold");
    ledger::capture_in(&txn, &tenant, hold.id, 55, now)
        .await
        .expect("capture");
    txn.commit().await.expect("commit");
    assert_eq!(balances(&t, &tenant, m).await, (5, 0, 0));
    // Returning the first earn: nothing left in its lot, 5 from the other lot, 45 negative.
    let txn = t.app.db.begin_write().await.expect("txn");
    ledger::clawback_in(&txn, &tenant, first.id, 50, None, false, now)
        .await
        .expect("clawback");
    txn.commit().await.expect("commit");
    assert_eq!(balances(&t, &tenant, m).await, (-45, 0, 0));
    t.assert_audit_clean().await;
    // The next earn repays the debt first.
    earn(&t, &tenant, m, 60, EarnSpec::default()).await;
    assert_eq!(balances(&t, &tenant, m).await, (15, 0, 0));
    let txn = t.app.db.begin_write().await.expect("txn");
    let (hold, _) = ledger::hold_in(&txn, &tenant, m, 15, Source::default(), now)
        .await
        .expect("the repaid balance is spendable");
    ledger::void_in(&txn, &tenant, hold.id, now)
        .await
        .expect("void");
    txn.commit().await.expect("commit");
    t.assert_audit_clean().await;
    t.finish().await;
}

async fn pending_unlocks_and_lots_expire_by_policy(b: Backend) {
    let t = TestApp::start(b).await;
    let (tenant, m) = t
        .tenant_and_member(
            "expiry",
            policy(
                ExpiryPolicy::DaysAfterEarn(30),
                ShortfallPolicy::RecordShortfall,
            ),
        )
        .await;
    let now = loyalty_core::clock::now();
    earn(
        &t,
        &tenant,
        m,
        20,
        EarnSpec {
            pending_until: Some(now + Duration::days(7)),
            ..Default::default()
        },
    )
    .await;
    earn(&t, &tenant, m, 5, EarnSpec::default()).await;
    assert_eq!(balances(&t, &tenant, m).await, (5, 20, 0));
    // Nothing is due yet.
    let r = jobs::run_until_idle(&t.app.db, 1, 100, now)
        .await
        .expect("jobs");
    assert_eq!(r, jobs::JobReport::default());
    // After the return window: unlocked (batches of one, so two rounds would be needed for two).
    let r = jobs::run_until_idle(&t.app.db, 1, 100, now + Duration::days(8))
        .await
        .expect("jobs");
    assert_eq!(r.unlocked, 1);
    assert_eq!(balances(&t, &tenant, m).await, (25, 0, 0));
    // After 31 days both lots expired (30 days after they were earned).
    let r = jobs::run_until_idle(&t.app.db, 1, 100, now + Duration::days(31))
        .await
        .expect("jobs");
    assert_eq!(r.expired, 2);
    let b2 = repo::balances(t.app.db.reader(), tenant.id, m)
        .await
        .expect("b");
    assert_eq!(
        (b2.available, b2.lifetime_expired, b2.lifetime_earned),
        (0, 25, 25)
    );
    // Running again does nothing more.
    let r = jobs::run_until_idle(&t.app.db, 10, 100, now + Duration::days(31))
        .await
        .expect("jobs");
    assert_eq!(r, jobs::JobReport::default());
    t.assert_audit_clean().await;
    t.finish().await;
}

async fn reversal_happens_at_most_once(b: Backend) {
    let t = TestApp::start(b).await;
    let (tenant, m) = t
        .tenant_and_member(
            "reversal",
            policy(ExpiryPolicy::Never, ShortfallPolicy::RecordShortfall),
        )
        .await;
    let now = loyalty_core::clock::now();
    let e = earn(&t, &tenant, m, 30, EarnSpec::default()).await;
    let txn = t.app.db.begin_write().await.expect("txn");
    let r1 = ledger::reverse_in(&txn, &tenant, e.id, now)
        .await
        .expect("reverse");
    let r2 = ledger::reverse_in(&txn, &tenant, e.id, now)
        .await
        .expect("reverse again");
    txn.commit().await.expect("commit");
    assert_eq!(r1.id, r2.id);
    assert_eq!(r1.reverses_entry_id, Some(e.id));
    assert_eq!(balances(&t, &tenant, m).await, (0, 0, 0));
    // A debit adjustment reversed puts the points back into their lot.
    earn(&t, &tenant, m, 10, EarnSpec::default()).await;
    let txn = t.app.db.begin_write().await.expect("txn");
    let (debit, _) = ledger::adjust_in(&txn, &tenant, m, -4, "typo", now)
        .await
        .expect("debit");
    ledger::reverse_in(&txn, &tenant, debit.id, now)
        .await
        .expect("reverse debit");
    txn.commit().await.expect("commit");
    assert_eq!(balances(&t, &tenant, m).await, (10, 0, 0));
    t.assert_audit_clean().await;
    t.finish().await;
}

async fn audit_reports_tampering(b: Backend) {
    let t = TestApp::start(b).await;
    let (tenant, m) = t
        .tenant_and_member(
            "tamper",
            policy(ExpiryPolicy::Never, ShortfallPolicy::RecordShortfall),
        )
        .await;
    earn(&t, &tenant, m, 30, EarnSpec::default()).await;
    t.assert_audit_clean().await;
    // Someone edits a cached balance behind the ledger's back.
    let txn = t.app.db.begin_write().await.expect("txn");
    txn.execute_unprepared("UPDATE ledger_balances SET available = available + 7")
        .await
        .expect("tamper");
    txn.commit().await.expect("commit");
    let v = loyalty_core::ledger::audit::audit(&t.app.db)
        .await
        .expect("audit");
    let broken: Vec<u8> = v.iter().map(|v| v.invariant).collect();
    assert!(broken.contains(&3) && broken.contains(&5), "{v:#?}");
    // And a lot that claims more than it ever held.
    let txn = t.app.db.begin_write().await.expect("txn");
    txn.execute_unprepared("UPDATE ledger_lots SET remaining = original + 1")
        .await
        .expect("tamper");
    txn.commit().await.expect("commit");
    let v = loyalty_core::ledger::audit::audit(&t.app.db)
        .await
        .expect("audit");
    assert!(v.iter().any(|v| v.invariant == 4), "{v:#?}");
    t.finish().await;
}

/// `earn_many_in` (all awards of one event at once) writes what one `earn_in` per spec would:
/// one entry and lot each, in order, the balance and lifetime total of their sum; and a second
/// call with the same natural keys (a replay) writes nothing and returns the same entries.
async fn earn_many_writes_what_one_earn_each_would(b: Backend) {
    let t = TestApp::start(b).await;
    let (tenant, m) = t
        .tenant_and_member(
            "many",
            policy(ExpiryPolicy::Never, ShortfallPolicy::RecordShortfall),
        )
        .await;
    let later = loyalty_core::clock::now() + Duration::days(30);
    let specs = |keys: &str| {
        [(10, None), (25, Some(Some(later))), (7, Some(None))]
            .into_iter()
            .enumerate()
            .map(|(i, (points, expires_at))| EarnSpec {
                points,
                expires_at,
                natural_key: Some(format!("{keys}:{i}")),
                source: Source {
                    reason_code: Some("test".into()),
                    ..Default::default()
                },
                ..Default::default()
            })
            .collect::<Vec<_>>()
    };
    let write = |specs: Vec<EarnSpec>| {
        let t = &t;
        let tenant = &tenant;
        async move {
            let txn = t.app.db.begin_write().await.expect("txn");
            let entries = ledger::earn_many_in(&txn, tenant, m, specs, loyalty_core::clock::now())
                .await
                .expect("earn many");
            txn.commit().await.expect("commit");
            entries
        }
    };
    let first = write(specs("batch")).await;
    assert_eq!(
        first.iter().map(|e| e.points).collect::<Vec<_>>(),
        vec![10, 25, 7]
    );
    assert!(first.windows(2).all(|w| w[0].id < w[1].id), "in order");
    assert_eq!(balances(&t, &tenant, m).await, (42, 0, 0));
    let b = repo::balances(t.app.db.reader(), tenant.id, m)
        .await
        .expect("balances");
    assert_eq!(b.lifetime_earned, 42);
    // Each entry has its own lot with its own expiry.
    let lots = repo::spendable_lots(t.app.db.reader(), tenant.id, m)
        .await
        .expect("lots");
    assert_eq!(lots.len(), 3);
    assert!(
        lots.iter()
            .any(|l| l.remaining == 25 && l.expires_at == Some(later))
    );
    assert!(
        lots.iter()
            .any(|l| l.remaining == 7 && l.expires_at.is_none())
    );

    // The same natural keys again: the stored entries, nothing new.
    let again = write(specs("batch")).await;
    assert_eq!(
        again.iter().map(|e| e.id).collect::<Vec<_>>(),
        first.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    assert_eq!(balances(&t, &tenant, m).await, (42, 0, 0));
    // An empty batch writes nothing.
    assert!(write(Vec::new()).await.is_empty());
    t.assert_audit_clean().await;
    t.finish().await;
}
