//! The bulk seeder writes a sound ledger: the audit finds nothing, cached balances equal the
//! sums of lines, and the service keeps working on top of the seeded rows. Both backends.

use loyalty_core::ledger::seed::{self, SeedOptions};
use loyalty_core::ledger::service::{self as ledger, EarnSpec, Source};
use loyalty_core::ledger::{ExpiryPolicy, ShortfallPolicy, repo};
use loyalty_core::tenants::PointsPolicy;
use loyalty_tests::{Backend, TestApp, both_backends};
use sea_orm::{ConnectionTrait, Statement, Value};

both_backends!(seeded_ledger_is_sound_and_usable);

/// One `BIGINT` from a query with bound values.
async fn scalar(t: &TestApp, sql: &str, values: Vec<Value>) -> i64 {
    let conn = t.app.db.reader();
    let backend = conn.get_database_backend();
    let sql = match backend {
        // Placeholders are written `$n`; SQLite takes `?`.
        sea_orm::DbBackend::Sqlite => {
            let mut s = sql.to_string();
            for n in (1..=values.len()).rev() {
                s = s.replace(&format!("${n}"), "?");
            }
            s
        }
        _ => sql.to_string(),
    };
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .expect("query")
        .expect("a row");
    row.try_get::<i64>("", "v").expect("value")
}

async fn seeded_ledger_is_sound_and_usable(b: Backend) {
    let t = TestApp::start(b).await;
    let policy = PointsPolicy {
        expiry: ExpiryPolicy::EndOfMonthAfter(12),
        shortfall: ShortfallPolicy::RecordShortfall,
    };
    let (tenant, _) = t.tenant_and_member("seeded", policy).await;
    let db = &t.app.db;

    let out = seed::seed(db, &tenant, 50, 2_000, &SeedOptions::default())
        .await
        .expect("seed");
    assert_eq!(out.members.len(), 50);
    assert_eq!(out.entries, 2_000);
    assert!(out.holds > 0, "the default seed redeems too: {out:?}");
    t.assert_audit_clean().await;

    let tid = Value::from(tenant.id.0);
    let count = |sql: &'static str| scalar(&t, sql, vec![tid.clone()]);
    assert_eq!(
        count(
            "SELECT COUNT(*) AS v FROM ledger_entries WHERE tenant_id = $1 AND reason_code = 'seed'"
        )
        .await,
        2_000
    );
    // The enrolled member plus the seeded ones.
    assert_eq!(
        count("SELECT COUNT(*) AS v FROM members WHERE tenant_id = $1").await,
        51
    );
    assert_eq!(
        count("SELECT COUNT(*) AS v FROM ledger_lines WHERE tenant_id = $1").await,
        out.lines as i64
    );
    assert_eq!(
        count("SELECT CAST(COALESCE(SUM(available), 0) AS BIGINT) AS v FROM ledger_balances WHERE tenant_id = $1").await,
        out.points_outstanding
    );

    // A member's cached balances are the sums of its lines; its lots hold its available points.
    let member = out.members[7];
    let before = repo::balances(db.reader(), tenant.id, member)
        .await
        .expect("balances");
    let mid = Value::from(member.0);
    let line_sum = scalar(
        &t,
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS v FROM ledger_lines WHERE tenant_id = $1 AND member_id = $2 AND account = 'available'",
        vec![tid.clone(), mid.clone()],
    )
    .await;
    let earned = scalar(
        &t,
        "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) AS v FROM ledger_entries WHERE tenant_id = $1 AND member_id = $2 AND kind = 'EARN'",
        vec![tid.clone(), mid.clone()],
    )
    .await;
    let entries = scalar(
        &t,
        "SELECT COUNT(*) AS v FROM ledger_entries WHERE tenant_id = $1 AND member_id = $2",
        vec![tid.clone(), mid.clone()],
    )
    .await;
    assert_eq!(entries, 40);
    assert!(before.available > 0);
    assert_eq!(before.available, line_sum);
    assert_eq!(before.lifetime_earned, earned);
    assert_eq!(
        before.lifetime_earned - before.lifetime_redeemed,
        before.available
    );
    assert_eq!((before.pending, before.held), (0, 0));
    // Seeded members are real members, found by their external id.
    let m = loyalty_core::members::repo::find_by_external_id(db.reader(), tenant.id, "seed-7")
        .await
        .expect("find")
        .expect("seeded member exists");
    assert_eq!(m.id, member);
    // The newest history entry is the member's last seeded one, before anything new.
    let page = repo::history(
        db.reader(),
        tenant.id,
        member,
        loyalty_core::pagination::PageRequest {
            after: None,
            limit: 100,
        },
    )
    .await
    .expect("history");
    assert_eq!(page.items.len(), 40);
    assert!(
        page.items
            .windows(2)
            .all(|w| w[0].created_at > w[1].created_at)
    );

    // The service works on top: an earn, a debit, a hold captured in part.
    let now = loyalty_core::clock::now();
    let txn = db.begin_write().await.expect("txn");
    let (earn, after) = ledger::earn_in(
        &txn,
        &tenant,
        member,
        EarnSpec {
            points: 100,
            natural_key: Some("earn:after-seed".into()),
            source: Source::default(),
            ..Default::default()
        },
        now,
    )
    .await
    .expect("earn");
    txn.commit().await.expect("commit");
    assert_eq!(after.available, before.available + 100);
    assert!(earn.id > page.items[0].id, "new ids sort after seeded ones");

    let spend = before.available + 50;
    let txn = db.begin_write().await.expect("txn");
    let (_, after) = ledger::adjust_in(&txn, &tenant, member, -spend, "bench", now)
        .await
        .expect("debit across seeded lots");
    txn.commit().await.expect("commit");
    assert_eq!(after.available, 50);

    let txn = db.begin_write().await.expect("txn");
    let (hold, _) = ledger::hold_in(&txn, &tenant, member, 40, Source::default(), now)
        .await
        .expect("hold");
    ledger::capture_in(&txn, &tenant, hold.id, 30, now)
        .await
        .expect("capture");
    txn.commit().await.expect("commit");
    let last = repo::balances(db.reader(), tenant.id, member)
        .await
        .expect("balances");
    assert_eq!((last.available, last.held), (20, 0));

    // A second seed into the same tenant with another prefix adds to it.
    let opts = SeedOptions {
        external_id_prefix: "more".into(),
        redeem_every: 0,
        rng_seed: 1,
    };
    let more = seed::seed(db, &tenant, 3, 10, &opts).await.expect("seed");
    assert_eq!((more.entries, more.holds), (10, 0));
    t.assert_audit_clean().await;
    t.finish().await;
}
