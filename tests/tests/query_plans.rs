//! The plans of the statements whose cost must not grow with a tenant: each looks its rows up
//! by key, on both backends. SQLite plans without statistics (the server never runs ANALYZE),
//! so the plan on this small database is the plan on a 1M-member one; PostgreSQL plans by
//! statistics, so it is asked with sequential scans off whether the index serves the
//! statement at all. Both backends.

use chrono::{Duration, Utc};
use loyalty_core::events::repo as events_repo;
use loyalty_core::ledger::seed::{self, SeedOptions};
use loyalty_core::ledger::service::{self as ledger, EarnSpec};
use loyalty_core::ledger::{ExpiryPolicy, ShortfallPolicy, repo as ledger_repo};
use loyalty_core::tenants::PointsPolicy;
use loyalty_core::tiers::{Metric, repo as tiers_repo};
use loyalty_tests::{Backend, TestApp, both_backends};
use sea_orm::{ConnectionTrait, DbBackend, QueryTrait, Statement, TransactionTrait};

both_backends!(
    write_path_statements_look_rows_up_by_key,
    the_write_path_index_migration_goes_down_and_up_again,
);

/// The plan of `stmt`, one line per node.
async fn plan(t: &TestApp, stmt: Statement) -> Vec<String> {
    let conn = t.app.db.reader();
    let backend = conn.get_database_backend();
    let txn = conn.begin().await.expect("txn");
    let (prefix, column) = match backend {
        DbBackend::Sqlite => ("EXPLAIN QUERY PLAN ", "detail"),
        _ => {
            txn.execute_unprepared("SET LOCAL enable_seqscan = off")
                .await
                .expect("seqscan off");
            ("EXPLAIN ", "QUERY PLAN")
        }
    };
    let explain = Statement::from_sql_and_values(
        backend,
        format!("{prefix}{}", stmt.sql),
        stmt.values.map(|v| v.0).unwrap_or_default(),
    );
    let lines = txn
        .query_all_raw(explain)
        .await
        .expect("explain")
        .iter()
        .map(|row| row.try_get::<String>("", column).expect("plan line"))
        .collect();
    txn.rollback().await.expect("rollback");
    lines
}

/// `lines` name `index` and never scan a whole table or sort rows in a temporary tree.
fn assert_keyed(what: &str, lines: &[String], index: &str) {
    let text = lines.join("\n");
    assert!(text.contains(index), "{what}: not by {index}:\n{text}");
    for bad in ["SCAN ", "Seq Scan", "TEMP B-TREE"] {
        assert!(!text.contains(bad), "{what}: {bad}:\n{text}");
    }
}

async fn write_path_statements_look_rows_up_by_key(b: Backend) {
    let t = TestApp::start(b).await;
    let policy = PointsPolicy {
        expiry: ExpiryPolicy::EndOfMonthAfter(1),
        shortfall: ShortfallPolicy::RecordShortfall,
    };
    let (tenant, member) = t.tenant_and_member("plans", policy).await;
    let (other, stranger) = t.tenant_and_member("plans-other", policy).await;
    let db = &t.app.db;
    let seeded = seed::seed(db, &tenant, 40, 400, &SeedOptions::default())
        .await
        .expect("seed");
    let backend = db.backend();
    let pg = backend == DbBackend::Postgres;
    let mut ids = seeded.members.clone();
    ids.push(member);

    // The purchase group's member states: by id, not by the tenant's range of members.
    let lines = plan(&t, backend.build(&events_repo::member_states_query(&ids))).await;
    let by_id = if pg {
        "members_pkey"
    } else {
        "sqlite_autoindex_members_1 (id=?)"
    };
    assert_keyed("member states", &lines, by_id);
    assert!(
        !lines.join("\n").contains("ix_members"),
        "member states by a tenant index:\n{}",
        lines.join("\n")
    );
    // The tenant is still checked: another tenant's member is not among the states.
    let states = events_repo::member_states(db.reader(), tenant.id, &[member, stranger])
        .await
        .expect("states");
    assert!(states.contains_key(&member) && !states.contains_key(&stranger));
    let states = events_repo::member_states(db.reader(), other.id, &ids)
        .await
        .expect("states");
    assert!(states.is_empty(), "{} of another tenant", states.len());
    let states = events_repo::member_states(db.reader(), tenant.id, &ids)
        .await
        .expect("states");
    assert_eq!(states.len(), ids.len());

    // The group's tier metrics: by the activity's key (member, month).
    let q = tiers_repo::metric_values_query(tenant.id, &ids, Metric::PointsEarned, Some((1, 12)));
    let lines = plan(&t, q.build(backend)).await;
    let key = if pg {
        "tier_activity_pkey"
    } else {
        "sqlite_autoindex_tier_activity_1 (member_id=?"
    };
    let text = lines.join("\n");
    assert!(text.contains(key), "metric values not by {key}:\n{text}");
    assert!(
        !text.contains("SCAN ") && !text.contains("Seq Scan"),
        "{text}"
    );

    // The expiry job: the due live lots in expiry order, not every available lot sorted.
    let later = Utc::now() + Duration::days(3_650);
    let lines = plan(
        &t,
        ledger_repo::due_expiries_query(later, 100).build(backend),
    )
    .await;
    assert_keyed("due expiries", &lines, "ix_ledger_lots_expiring");
    let due = ledger_repo::due_expiries(db.reader(), later, 10_000)
        .await
        .expect("due");
    assert!(
        !due.is_empty(),
        "the seed leaves lots with points that expire"
    );
    assert!(
        due.iter()
            .all(|l| l.remaining > 0 && l.expires_at.is_some())
    );
    assert!(due.windows(2).all(|w| w[0].expires_at <= w[1].expires_at));

    // The unlock job: the pending lots that are due, by the partial index of pending lots.
    // Two pending earns (one due within the window asked for, one after it) among the
    // seed's available lots.
    let now = Utc::now();
    let txn = db.begin_write().await.expect("txn");
    let mut earned = Vec::new();
    for days in [1, 30] {
        let spec = EarnSpec {
            points: 10,
            pending_until: Some(now + Duration::days(days)),
            ..Default::default()
        };
        let (entry, _) = ledger::earn_in(&txn, &tenant, member, spec, now)
            .await
            .expect("pending earn");
        earned.push(entry.id);
    }
    txn.commit().await.expect("commit");
    let within = now + Duration::days(7);
    let lines = plan(
        &t,
        ledger_repo::due_unlocks_query(within, 100).build(backend),
    )
    .await;
    assert_keyed("due unlocks", &lines, "ix_ledger_lots_unlock");
    let due = ledger_repo::due_unlocks(db.reader(), within, 10_000)
        .await
        .expect("due unlocks");
    assert_eq!(
        due.iter().map(|l| l.entry_id).collect::<Vec<_>>(),
        vec![earned[0]],
        "the one pending lot due by then, none of the seed's available ones"
    );

    // A reversal is found by the partial unique index, which only reversals are in, and an
    // entry is still reversed at most once.
    let lines = plan(
        &t,
        ledger_repo::reversal_query(tenant.id, earned[1]).build(backend),
    )
    .await;
    assert_keyed("reversal", &lines, "ux_ledger_entries_reverses");
    let txn = db.begin_write().await.expect("txn");
    let reversal = ledger::reverse_in(&txn, &tenant, earned[1], now)
        .await
        .expect("reverse");
    let again = ledger::reverse_in(&txn, &tenant, earned[1], now)
        .await
        .expect("reverse again");
    txn.commit().await.expect("commit");
    assert_eq!(reversal.id, again.id, "the first reversal, not a second");
    let found = ledger_repo::find_reversal_of(db.reader(), tenant.id, earned[1])
        .await
        .expect("find")
        .expect("the reversal");
    assert_eq!(found.id, reversal.id);
    let twice = db
        .reader()
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n FROM ledger_entries WHERE reverses_entry_id IS NOT NULL",
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("n");
    assert_eq!(twice, 1);
    t.finish().await;
}

/// The index names of the ledger's tables, sorted.
async fn ledger_indexes(conn: &sea_orm::DatabaseConnection) -> Vec<String> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name LIKE 'ledger_%' ORDER BY name"
        }
        _ => {
            "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema() AND tablename LIKE 'ledger_%' ORDER BY indexname"
        }
    };
    conn.query_all_raw(Statement::from_string(backend, sql))
        .await
        .expect("indexes")
        .iter()
        .map(|r| r.try_get::<String>("", "name").expect("name"))
        .collect()
}

/// `m0009_write_path_indexes` goes down to the indexes m0008 left and up again, on a ledger
/// with rows, and the ledger still audits clean.
async fn the_write_path_index_migration_goes_down_and_up_again(b: Backend) {
    use loyalty_migrations::{Migrator, MigratorTrait};
    let t = TestApp::start(b).await;
    let policy = PointsPolicy {
        expiry: ExpiryPolicy::EndOfMonthAfter(1),
        shortfall: ShortfallPolicy::RecordShortfall,
    };
    let (tenant, _) = t.tenant_and_member("migrate", policy).await;
    seed::seed(&t.app.db, &tenant, 20, 200, &SeedOptions::default())
        .await
        .expect("seed");
    let conn = sea_orm::Database::connect(t.database_url())
        .await
        .expect("a connection of the test's own");
    let up = ledger_indexes(&conn).await;
    for name in ["ix_ledger_lots_unlock", "ux_ledger_entries_reverses"] {
        assert!(up.iter().any(|n| n == name), "{name} in {up:?}");
    }
    for name in ["ix_ledger_lines_account", "ix_ledger_lots_due"] {
        assert!(!up.iter().any(|n| n == name), "{name} in {up:?}");
    }
    Migrator::down(&conn, Some(1)).await.expect("down");
    let down = ledger_indexes(&conn).await;
    for name in [
        "ix_ledger_lines_account",
        "ix_ledger_lots_due",
        "ux_ledger_entries_reverses",
    ] {
        assert!(down.iter().any(|n| n == name), "{name} in {down:?}");
    }
    assert!(
        !down.iter().any(|n| n == "ix_ledger_lots_unlock"),
        "{down:?}"
    );
    Migrator::up(&conn, None).await.expect("up again");
    assert_eq!(ledger_indexes(&conn).await, up);
    conn.close().await.expect("close");
    let violations = loyalty_core::ledger::audit::audit(&t.app.db)
        .await
        .expect("audit");
    assert!(violations.is_empty(), "{violations:?}");
    t.finish().await;
}
