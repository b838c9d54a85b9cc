//! `db::Batch` sends several writes in one round trip: one SQLite script, one PostgreSQL
//! statement of data-modifying `WITH` queries. These tests run real batches of the pipeline's
//! own writes and read the rows back. Both backends.

use chrono::Utc;
use loyalty_core::db::Batch;
use loyalty_core::db::batch::POSTGRES_PARAMS_MAX;
use loyalty_core::events::{Channel, MemberStats, Purchase, PurchaseLine, outbox, repo};
use loyalty_core::ids::{MemberId, TenantId};
use loyalty_core::ledger::service::{self as ledger, EarnSpec, Source};
use loyalty_core::ledger::{ExpiryPolicy, ShortfallPolicy, repo as ledger_repo};
use loyalty_core::pagination::PageRequest;
use loyalty_core::tenants::PointsPolicy;
use loyalty_core::tiers::{self, Metric};
use loyalty_tests::{Backend, TestApp, both_backends};
use sea_orm::QueryTrait;
use serde_json::json;
use uuid::Uuid;

both_backends!(
    one_batch_writes_rows_in_order_and_upserts,
    a_failing_batch_writes_nothing,
    a_batch_past_the_parameter_limit_is_split_and_complete,
    merged_units_share_statements_and_keep_their_order,
    padded_inserts_store_their_rows_once_and_share_a_text,
    reads_after_a_batch_see_its_writes,
    recorded_orders_and_states_come_in_one_read,
);

fn policy() -> PointsPolicy {
    PointsPolicy {
        expiry: ExpiryPolicy::Never,
        shortfall: ShortfallPolicy::RecordShortfall,
    }
}

fn purchase(member: MemberId, order: &str, lines: usize) -> Purchase {
    let now = Utc::now();
    Purchase {
        id: Uuid::now_v7(),
        member_id: member,
        order_id: order.into(),
        request_hash: "h".into(),
        occurred_at: now,
        currency: "EUR".into(),
        total: 1_000 * lines as i64,
        channel: Channel::Online,
        store_id: None,
        lines: (0..lines)
            .map(|i| PurchaseLine {
                line_index: i as i32,
                sku: format!("SKU-{i}"),
                category: Some("shoes".into()),
                quantity: 1,
                unit_price: 1_000,
                returned_quantity: 0,
            })
            .collect(),
        returned_amount: 0,
        points_earned: 0,
        created_at: now,
    }
}

/// Every outbox payload of `kind` in the tenant, oldest first (all pages).
async fn payloads(t: &TestApp, tenant: TenantId, kind: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = PageRequest { limit: 500, after };
        let p = outbox::list(t.app.db.reader(), tenant, Some(kind), None, page)
            .await
            .expect("events");
        out.extend(p.items.iter().map(|e| e.payload.clone()));
        after = p.items.last().map(|e| e.id);
        if !p.has_next_page {
            return out;
        }
    }
}

fn number(v: &serde_json::Value, key: &str) -> i64 {
    v[key].as_i64().expect("a number")
}

fn earn(points: i64, key: String) -> EarnSpec {
    EarnSpec {
        points,
        pending_until: None,
        expires_at: None,
        natural_key: Some(key),
        source: Source {
            reason_code: Some("test".into()),
            ..Default::default()
        },
    }
}

async fn one_batch_writes_rows_in_order_and_upserts(b: Backend) {
    let t = TestApp::start(b).await;
    let (tenant, member) = t.tenant_and_member("batch", policy()).await;
    let db = &t.app.db;
    let now = db.now();

    // Twice, so that the second batch takes the upserts' UPDATE path.
    for (round, lines) in [(1_i64, 10_usize), (2, 3)] {
        let txn = db.begin_write().await.expect("begin");
        let balances = ledger_repo::lock_balances(&txn, tenant.id, member, now)
            .await
            .expect("lock");
        let mut batch = Batch::on(&txn);
        let p = purchase(member, &format!("order-{round}"), lines);
        repo::insert_purchase_into(&mut batch, tenant.id, &p);
        let specs = (0..3)
            .map(|i| earn(10 + i, format!("batch:{round}:{i}")))
            .collect();
        let (entries, after) =
            ledger::earn_fresh_into(&mut batch, &tenant, member, balances, specs, now)
                .expect("prepared");
        let stats = MemberStats {
            lifetime_spend: 1_000 * round,
            purchase_count: round,
            first_purchase_at: Some(now),
            last_purchase_at: Some(now),
        };
        repo::save_stats_into(&mut batch, tenant.id, member, &stats, now);
        let events = (0..4)
            .map(|i| ("test.batch", json!({ "round": round, "n": i })))
            .collect();
        outbox::append_all_into(&mut batch, tenant.id, Some(member), events, now);
        let activity = tiers::Activity {
            points: 5,
            spend: 100,
            purchases: 1,
        };
        assert!(tiers::service::record_activity_into(
            &mut batch, &tenant, member, now, activity
        ));
        // purchase, its lines, lots, entries, lines, balances, stats, outbox, activity
        assert_eq!(batch.len(), 9);
        assert_eq!(batch.statements().len(), 1, "one round trip");
        batch.run(&txn).await.expect("batch runs");
        txn.commit().await.expect("commit");

        let stored = repo::find_purchase(db.reader(), tenant.id, &p.order_id)
            .await
            .expect("read")
            .expect("the purchase is stored");
        assert_eq!(stored.lines.len(), lines);
        assert_eq!(stored.lines[lines - 1].sku, format!("SKU-{}", lines - 1));
        assert_eq!(stored.total, p.total);
        for e in &entries {
            let found = ledger_repo::find_entry(db.reader(), tenant.id, e.id)
                .await
                .expect("read")
                .expect("the entry is stored");
            assert_eq!(found.points, e.points);
        }
        let b = ledger_repo::balances(db.reader(), tenant.id, member)
            .await
            .expect("balances");
        assert_eq!(b.available, 33 * round, "10 + 11 + 12 a round");
        assert_eq!(after, b, "the balances returned are the ones saved");
        let read = repo::stats(db.reader(), tenant.id, member)
            .await
            .expect("stats");
        assert_eq!(
            (read.lifetime_spend, read.purchase_count),
            (stats.lifetime_spend, stats.purchase_count)
        );
        assert!(read.last_purchase_at.is_some());
        let spend = tiers::repo::metric_value(db.reader(), tenant.id, member, Metric::Spend, None)
            .await
            .expect("activity");
        assert_eq!(spend, 100 * round, "the upsert adds to the month's row");
    }
    let order: Vec<(i64, i64)> = payloads(&t, tenant.id, "test.batch")
        .await
        .iter()
        .map(|p| (number(p, "round"), number(p, "n")))
        .collect();
    assert_eq!(
        order,
        [
            (1, 0),
            (1, 1),
            (1, 2),
            (1, 3),
            (2, 0),
            (2, 1),
            (2, 2),
            (2, 3)
        ]
    );
    t.assert_audit_clean().await;
}

async fn a_failing_batch_writes_nothing(b: Backend) {
    let t = TestApp::start(b).await;
    let (tenant, member) = t.tenant_and_member("batch-fail", policy()).await;
    let db = &t.app.db;
    let now = db.now();
    let first = purchase(member, "order-1", 2);
    let txn = db.begin_write().await.expect("begin");
    repo::insert_purchase(&txn, tenant.id, &first)
        .await
        .expect("first purchase");
    txn.commit().await.expect("commit");

    let txn = db.begin_write().await.expect("begin");
    let balances = ledger_repo::lock_balances(&txn, tenant.id, member, now)
        .await
        .expect("lock");
    let mut batch = Batch::on(&txn);
    let specs = vec![earn(50, "fail:0".into())];
    ledger::earn_fresh_into(&mut batch, &tenant, member, balances, specs, now).expect("prepared");
    outbox::append_all_into(
        &mut batch,
        tenant.id,
        Some(member),
        vec![("test.fail", json!({}))],
        now,
    );
    // The same order id again, after the earn: the batch fails on the UNIQUE index.
    repo::insert_purchase_into(&mut batch, tenant.id, &purchase(member, "order-1", 1));
    let err = batch.run(&txn).await.expect_err("the order id is taken");
    assert!(
        loyalty_core::error::is_unique_violation(&err),
        "a unique violation, as callers check: {err}"
    );
    txn.rollback().await.expect("rollback");

    let b = ledger_repo::balances(db.reader(), tenant.id, member)
        .await
        .expect("balances");
    assert_eq!(b.available, 0, "the earn before the failure is gone");
    assert!(payloads(&t, tenant.id, "test.fail").await.is_empty());
    let kept = repo::find_purchase(db.reader(), tenant.id, "order-1")
        .await
        .expect("read")
        .expect("the first purchase stays");
    assert_eq!(kept.id, first.id);
    assert_eq!(kept.lines.len(), 2);
    t.assert_audit_clean().await;
}

async fn a_batch_past_the_parameter_limit_is_split_and_complete(b: Backend) {
    let t = TestApp::start(b).await;
    let (tenant, member) = t.tenant_and_member("batch-big", policy()).await;
    let db = &t.app.db;
    let now = db.now();
    // Six parameters a record: 6,000 records are 36,000 parameters.
    let events: Vec<_> = (0..6_000)
        .map(|i| ("test.big", json!({ "n": i })))
        .collect();
    let txn = db.begin_write().await.expect("begin");
    let mut batch = Batch::on(&txn);
    outbox::append_all_into(&mut batch, tenant.id, Some(member), events, now);
    let statements = batch.statements();
    match b {
        Backend::Postgres => {
            assert_eq!(statements.len(), 2, "over {POSTGRES_PARAMS_MAX} parameters");
            for s in &statements {
                let n = s.values.as_ref().map_or(0, |v| v.0.len());
                assert!(n <= POSTGRES_PARAMS_MAX, "{n} parameters in one statement");
            }
        }
        Backend::Sqlite => assert_eq!(statements.len(), 1, "one script"),
    }
    batch.run(&txn).await.expect("batch runs");
    txn.commit().await.expect("commit");

    let seen: Vec<i64> = payloads(&t, tenant.id, "test.big")
        .await
        .iter()
        .map(|p| number(p, "n"))
        .collect();
    assert_eq!(seen, (0..6_000).collect::<Vec<i64>>(), "all, in order");
}

/// `Batch::merge`: the writes of two members' purchases (one without points, one with) become
/// one statement per table; every row lands, each unit's rows follow the rows they reference
/// (SQLite checks foreign keys statement by statement), and the outbox keeps unit order.
/// Units past `MERGED_PARAMS_MAX` in one table are split over more statements.
async fn merged_units_share_statements_and_keep_their_order(b: Backend) {
    let t = TestApp::start(b).await;
    let (tenant, first) = t.tenant_and_member("merge-a", policy()).await;
    let (other_tenant, second) = t.tenant_and_member("merge-b", policy()).await;
    let db = &t.app.db;
    let now = db.now();
    let txn = db.begin_write().await.expect("begin");
    let balances = ledger_repo::lock_balances(&txn, other_tenant.id, second, now)
        .await
        .expect("lock");
    let stats = MemberStats {
        lifetime_spend: 1_000,
        purchase_count: 1,
        first_purchase_at: Some(now),
        last_purchase_at: Some(now),
    };
    let activity = tiers::Activity {
        points: 5,
        spend: 100,
        purchases: 1,
    };

    // The first member's purchase earns nothing: no lots, entries or balances.
    let mut a = Batch::on(&txn);
    let pa = purchase(first, "merge-1", 2);
    repo::insert_purchase_into(&mut a, tenant.id, &pa);
    repo::save_stats_into(&mut a, tenant.id, first, &stats, now);
    let events = (0..2).map(|i| ("test.merge", json!({ "unit": 1, "n": i })));
    outbox::append_all_into(&mut a, tenant.id, Some(first), events.collect(), now);
    tiers::service::record_activity_into(&mut a, &tenant, first, now, activity);
    let mut u = Batch::on(&txn);
    let pb = purchase(second, "merge-2", 3);
    repo::insert_purchase_into(&mut u, other_tenant.id, &pb);
    let specs = (0..2).map(|i| earn(20 + i, format!("merge:{i}"))).collect();
    ledger::earn_fresh_into(&mut u, &other_tenant, second, balances, specs, now).expect("earn");
    repo::save_stats_into(&mut u, other_tenant.id, second, &stats, now);
    let events = (0..2).map(|i| ("test.merge", json!({ "unit": 2, "n": i })));
    outbox::append_all_into(&mut u, other_tenant.id, Some(second), events.collect(), now);
    tiers::service::record_activity_into(&mut u, &other_tenant, second, now, activity);
    let separate = a.len() + u.len();

    let mut batch = Batch::on(&txn);
    batch.merge(a);
    batch.merge(u);
    assert_eq!(separate, 5 + 9);
    assert_eq!(batch.len(), 9, "one part per table: {batch:?}");
    batch.run(&txn).await.expect("merged batch runs");
    txn.commit().await.expect("commit");

    for (tenant, p) in [(tenant.id, &pa), (other_tenant.id, &pb)] {
        let stored = repo::find_purchase(db.reader(), tenant, &p.order_id)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(stored.lines.len(), p.lines.len());
        let read = repo::stats(db.reader(), tenant, p.member_id)
            .await
            .expect("stats");
        assert_eq!(read.purchase_count, 1);
        let spend =
            tiers::repo::metric_value(db.reader(), tenant, p.member_id, Metric::Spend, None)
                .await
                .expect("activity");
        assert_eq!(spend, 100);
    }
    let b2 = ledger_repo::balances(db.reader(), other_tenant.id, second)
        .await
        .expect("balances");
    assert_eq!(b2.available, 41);
    let b1 = ledger_repo::balances(db.reader(), tenant.id, first)
        .await
        .expect("balances");
    assert_eq!(b1.available, 0);
    let app = &t;
    let units = |tenant| async move {
        payloads(app, tenant, "test.merge")
            .await
            .iter()
            .map(|p| (number(p, "unit"), number(p, "n")))
            .collect::<Vec<_>>()
    };
    assert_eq!(units(tenant.id).await, [(1, 0), (1, 1)]);
    assert_eq!(units(other_tenant.id).await, [(2, 0), (2, 1)]);

    // 300 purchases of 15 lines: their lines pass the limit of one statement.
    let txn = db.begin_write().await.expect("begin");
    let mut batch = Batch::on(&txn);
    let many: Vec<Purchase> = (0..300)
        .map(|i| purchase(first, &format!("many-{i}"), 15))
        .collect();
    for p in &many {
        let mut unit = Batch::on(&txn);
        repo::insert_purchase_into(&mut unit, tenant.id, p);
        batch.merge(unit);
    }
    assert!(
        (3..=6).contains(&batch.len()),
        "purchases in one or two statements, lines in two or more: {}",
        batch.len()
    );
    batch.run(&txn).await.expect("split batch runs");
    txn.commit().await.expect("commit");
    for p in [&many[0], &many[150], &many[299]] {
        let stored = repo::find_purchase(db.reader(), tenant.id, &p.order_id)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(stored.lines.len(), 15);
    }
    t.assert_audit_clean().await;
}

/// A multi-row insert is written with rows of NULLs up to a power of two, so that the text
/// (each connection's key to its prepared statements) repeats: 3 and 4 rows give one text.
/// Each batch stores exactly its own rows, once, in order, with and without the member column.
async fn padded_inserts_store_their_rows_once_and_share_a_text(b: Backend) {
    let t = TestApp::start(b).await;
    let (tenant, member) = t.tenant_and_member("batch-pad", policy()).await;
    let db = &t.app.db;
    let now = db.now();
    let batch_of = |round: usize, n: usize| {
        let mut batch = Batch::new(db.backend());
        let events = (0..n)
            .map(|i| ("test.pad", json!({ "round": round, "n": i })))
            .collect();
        // Odd rounds without a member: a column of NULLs is not the padding's key.
        let member = round.is_multiple_of(2).then_some(member);
        outbox::append_all_into(&mut batch, tenant.id, member, events, now);
        batch
    };
    let text = |batch: &Batch| batch.statements().remove(0).sql;
    assert_eq!(text(&batch_of(0, 3)), text(&batch_of(0, 4)));
    assert_ne!(text(&batch_of(0, 4)), text(&batch_of(0, 5)));

    let sizes = [1_usize, 2, 3, 5, 8, 9, 3];
    for (round, n) in sizes.into_iter().enumerate() {
        let txn = db.begin_write().await.expect("begin");
        batch_of(round, n).run(&txn).await.expect("batch runs");
        txn.commit().await.expect("commit");
    }
    let seen: Vec<(i64, i64)> = payloads(&t, tenant.id, "test.pad")
        .await
        .iter()
        .map(|p| (number(p, "round"), number(p, "n")))
        .collect();
    let expected: Vec<(i64, i64)> = sizes
        .into_iter()
        .enumerate()
        .flat_map(|(round, n)| (0..n as i64).map(move |i| (round as i64, i)))
        .collect();
    assert_eq!(seen, expected, "every row once, in order, no padding row");
}

/// `Batch::run_then_read`: the reads run after the writes of the same transaction and see
/// them (on SQLite in the batch's own script), their rows in the reads' order.
async fn reads_after_a_batch_see_its_writes(b: Backend) {
    let t = TestApp::start(b).await;
    let (tenant, member) = t.tenant_and_member("batch-read", policy()).await;
    let db = &t.app.db;
    let now = db.now();
    let read = |metric| {
        tiers::repo::metric_values_query(tenant.id, &[member], metric, None).build(db.backend())
    };
    let activity = tiers::Activity {
        points: 5,
        spend: 100,
        purchases: 1,
    };
    let decode = |rows: Vec<sea_orm::QueryResult>| -> Vec<(Uuid, i64)> {
        rows.iter()
            .map(|r| {
                (
                    r.try_get_by_index(0).expect("member"),
                    r.try_get_by_index(1).expect("value"),
                )
            })
            .collect()
    };
    for round in 1..=2_i64 {
        let txn = db.begin_write().await.expect("begin");
        let mut batch = Batch::on(&txn);
        assert!(tiers::service::record_activity_into(
            &mut batch, &tenant, member, now, activity
        ));
        let rows = batch
            .run_then_read(&txn, vec![read(Metric::Spend), read(Metric::PurchaseCount)])
            .await
            .expect("batch and reads");
        // Round 2's upsert adds to round 1's row before the reads run.
        assert_eq!(decode(rows), [(member.0, 100 * round), (member.0, round)]);
        txn.commit().await.expect("commit");
    }
    let txn = db.begin_write().await.expect("begin");
    // Reads alone.
    let rows = Batch::on(&txn)
        .run_then_read(&txn, vec![read(Metric::Spend)])
        .await
        .expect("reads");
    assert_eq!(decode(rows), [(member.0, 200)]);
    // Writes alone: no rows, and the write is done.
    let mut batch = Batch::on(&txn);
    tiers::service::record_activity_into(&mut batch, &tenant, member, now, activity);
    let rows = batch.run_then_read(&txn, Vec::new()).await.expect("batch");
    assert!(rows.is_empty());
    // A member without activity has no row.
    let other = tiers::repo::metric_values_query(
        tenant.id,
        &[MemberId(Uuid::now_v7())],
        Metric::Spend,
        None,
    )
    .build(db.backend());
    let rows = Batch::on(&txn)
        .run_then_read(&txn, vec![other])
        .await
        .expect("reads");
    assert!(rows.is_empty());
    txn.commit().await.expect("commit");
    let spend = tiers::repo::metric_value(db.reader(), tenant.id, member, Metric::Spend, None)
        .await
        .expect("activity");
    assert_eq!(spend, 300);
    t.assert_audit_clean().await;
}

/// `repo::recorded_and_member_states`, the first read of a purchase group (one script on
/// SQLite): the same answer as its two queries, order ids that JSON must escape included,
/// another tenant's order id and member left out.
async fn recorded_orders_and_states_come_in_one_read(b: Backend) {
    let t = TestApp::start(b).await;
    let (tenant, member) = t.tenant_and_member("one-read", policy()).await;
    let (other_tenant, other) = t.tenant_and_member("one-read-other", policy()).await;
    let db = &t.app.db;
    let odd = [
        "quote\"d",
        "back\\slash",
        "ünïcødé €",
        "tab\tline\nend",
        "[1,2]",
    ];
    let txn = db.begin_write().await.expect("begin");
    let mut batch = Batch::on(&txn);
    for order in odd {
        repo::insert_purchase_into(&mut batch, tenant.id, &purchase(member, order, 1));
    }
    repo::insert_purchase_into(&mut batch, other_tenant.id, &purchase(other, "theirs", 1));
    batch.run(&txn).await.expect("purchases");
    txn.commit().await.expect("commit");

    let orders: Vec<&str> = odd.iter().copied().chain(["missing", "theirs"]).collect();
    let members = [member, other, MemberId(Uuid::now_v7())];
    let txn = db.begin_write().await.expect("begin");
    let (recorded, states) = repo::recorded_and_member_states(&txn, tenant.id, &orders, &members)
        .await
        .expect("one read");
    let apart = repo::recorded_order_ids(&txn, tenant.id, &orders)
        .await
        .expect("order ids");
    let states_apart = repo::member_states(&txn, tenant.id, &members)
        .await
        .expect("states");
    txn.commit().await.expect("commit");
    let want: std::collections::HashSet<String> = odd.iter().map(|o| o.to_string()).collect();
    assert_eq!(recorded, want);
    assert_eq!(apart, want);
    assert_eq!(states.len(), 1, "only the tenant's member");
    assert_eq!(states[&member], states_apart[&member]);
    assert_eq!(states[&member].member.id, member);

    // Nothing recorded: an empty set, the state still read.
    let (recorded, states) =
        repo::recorded_and_member_states(db.reader(), tenant.id, &["none-1", "none-2"], &[member])
            .await
            .expect("one read");
    assert!(recorded.is_empty());
    assert_eq!(states.len(), 1);
}
