//! SQLite's write-ahead log is checkpointed by a background task rather than by the writer's
//! commits (`database.sqlite_checkpoint_ms`, `database.sqlite_wal_pages_max`), on the real
//! server and database file. Both backends: on PostgreSQL the task never starts. And the
//! connections: SQLite's readers (`database.sqlite_readers`) beside its one writer,
//! PostgreSQL's one pool (`database.connections_max`), and the prepared statements each
//! connection keeps (`database.statement_cache_max`).

use loyalty_core::db::CheckpointStats;
use loyalty_tests::{Backend, TestServer, both_backends};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use std::time::Duration;

both_backends!(
    the_log_is_checkpointed_in_the_background_not_at_commit,
    with_the_background_checkpoint_off_the_writer_checkpoints_as_sqlite_does,
    the_pools_are_the_size_their_settings_give,
    a_connection_keeps_at_most_statement_cache_max_statements,
);

/// `PRAGMA wal_autocheckpoint` of the writer connection (inside a write transaction, which
/// only the writer runs) and of a reader.
async fn autocheckpoint(s: &TestServer) -> (i64, i64) {
    let db = &s.app().db;
    let pragma = || Statement::from_string(DbBackend::Sqlite, "PRAGMA wal_autocheckpoint");
    let read = |row: Option<sea_orm::QueryResult>| -> i64 {
        row.expect("a row")
            .try_get_by_index::<i64>(0)
            .expect("an integer")
    };
    let txn = db.begin_write().await.expect("begin");
    let writer = read(txn.query_one_raw(pragma()).await.expect("writer pragma"));
    txn.commit().await.expect("commit");
    let reader = read(
        db.reader()
            .query_one_raw(pragma())
            .await
            .expect("reader pragma"),
    );
    (writer, reader)
}

/// Writes enough to put pages in the log: a tenant and `n` enrolments.
async fn write_some(s: &TestServer, slug: &str, n: usize) {
    let (_, admin) = s.tenant(slug).await;
    for i in 0..n {
        s.enroll(&admin, json!({"externalId": format!("{slug}-{i}")}))
            .await;
    }
}

async fn the_log_is_checkpointed_in_the_background_not_at_commit(b: Backend) {
    let s = TestServer::start_with(b, |c| {
        c.database.sqlite_checkpoint_ms = 20;
        c.database.sqlite_wal_pages_max = 5_000;
    })
    .await;
    write_some(&s, "ckpt-on", 10).await;
    let db = &s.app().db;
    if b == Backend::Postgres {
        // Nothing to checkpoint: the task never starts.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(db.checkpoint_stats(), CheckpointStats::default());
        return;
    }
    // The writer checkpoints at commit only past the bound; readers keep SQLite's default
    // (they never commit a write).
    assert_eq!(autocheckpoint(&s).await, (5_000, 1_000));
    // The task copies the whole log into the database file (a liveness bound, not a timing:
    // it runs every 20 ms).
    let mut stats = db.checkpoint_stats();
    for _ in 0..500 {
        if stats.complete > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stats = db.checkpoint_stats();
    }
    assert!(stats.complete > 0, "no complete checkpoint: {stats:?}");
    assert!(stats.runs >= stats.complete + stats.busy, "{stats:?}");
    assert_eq!(stats.failed, 0, "{stats:?}");
    // Writes after a checkpoint are there, and so is what came before.
    write_some(&s, "ckpt-on-2", 3).await;
    let members = db
        .reader()
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT COUNT(*) FROM members",
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get_by_index::<i64>(0)
        .expect("count");
    assert_eq!(members, 13);
}

async fn with_the_background_checkpoint_off_the_writer_checkpoints_as_sqlite_does(b: Backend) {
    let s = TestServer::start_with(b, |c| c.database.sqlite_checkpoint_ms = 0).await;
    write_some(&s, "ckpt-off", 5).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.app().db.checkpoint_stats(), CheckpointStats::default());
    if b == Backend::Sqlite {
        assert_eq!(autocheckpoint(&s).await, (1_000, 1_000));
    }
}

async fn the_pools_are_the_size_their_settings_give(b: Backend) {
    let s = TestServer::start_with(b, |c| {
        c.database.sqlite_readers = 2;
        c.database.connections_max = 5;
    })
    .await;
    let db = &s.app().db;
    match b {
        Backend::Sqlite => {
            let pool = db.reader().get_sqlite_connection_pool();
            assert_eq!(pool.options().get_max_connections(), 2);
        }
        Backend::Postgres => {
            let pool = db.reader().get_postgres_connection_pool();
            assert_eq!(pool.options().get_max_connections(), 5);
        }
    }
    // Four times as many balance reads at once as there are SQLite readers: each waits its
    // turn for a connection and every one is answered.
    let (_, admin) = s.tenant("pools").await;
    let member = s.enroll(&admin, json!({"externalId": "pools-1"})).await;
    let query = "query($id: ID!) { member(id: $id) { balance { available held } } }";
    let answers = s
        .gql_at_once(&admin, query, vec![json!({ "id": member }); 8])
        .await;
    for a in answers {
        assert_eq!(
            a["data"]["member"]["balance"],
            json!({"available": 0, "held": 0}),
            "{a:#}"
        );
    }
}

/// `database.statement_cache_max`: a connection keeps at most that many prepared statements;
/// five different texts run on one connection leave three prepared.
async fn a_connection_keeps_at_most_statement_cache_max_statements(b: Backend) {
    let s = TestServer::start_with(b, |c| c.database.statement_cache_max = 3).await;
    let db = s.app().db.reader();
    use sea_orm::sqlx::{self, Connection};
    let texts = ["SELECT 1", "SELECT 2", "SELECT 3", "SELECT 4", "SELECT 5"];
    macro_rules! cached_after_five {
        ($pool:expr) => {{
            let mut conn = $pool.acquire().await.expect("a connection");
            for text in texts {
                sqlx::query(text).execute(&mut *conn).await.expect("runs");
            }
            conn.cached_statements_size()
        }};
    }
    let cached = match b {
        Backend::Sqlite => cached_after_five!(db.get_sqlite_connection_pool()),
        Backend::Postgres => cached_after_five!(db.get_postgres_connection_pool()),
    };
    assert_eq!(cached, 3);
}
