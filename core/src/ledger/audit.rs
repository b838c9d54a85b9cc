//! `loyalty ledger audit`: checks the ledger's seven invariants on a live database with
//! aggregate queries (plain SQL that both backends run) and lists every violation.

use crate::db::Db;
use crate::error::AppResult;
use sea_orm::{ConnectionTrait, Statement};

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: u8,
    pub detail: String,
}

const CHECKS: &[(u8, &str, &str)] = &[
    (
        1,
        "tenant's accounts do not sum to zero",
        "SELECT CAST(tenant_id AS TEXT) AS subject, SUM(amount) AS value FROM ledger_lines GROUP BY tenant_id HAVING SUM(amount) <> 0",
    ),
    (
        2,
        "entry has fewer than 2 lines, a zero line, or does not sum to zero",
        "SELECT CAST(e.id AS TEXT) AS subject, COUNT(l.id) AS value FROM ledger_entries e LEFT JOIN ledger_lines l ON l.entry_id = e.id GROUP BY e.id HAVING COUNT(l.id) < 2 OR COALESCE(SUM(l.amount), 0) <> 0 OR SUM(CASE WHEN l.amount = 0 THEN 1 ELSE 0 END) > 0",
    ),
    (
        3,
        "cached available balance differs from the sum of its lines",
        "SELECT CAST(b.member_id AS TEXT) AS subject, b.available - COALESCE(x.s, 0) AS value FROM ledger_balances b LEFT JOIN (SELECT member_id, SUM(amount) AS s FROM ledger_lines WHERE account = 'available' GROUP BY member_id) x ON x.member_id = b.member_id WHERE b.available <> COALESCE(x.s, 0)",
    ),
    (
        3,
        "cached pending balance differs from the sum of its lines",
        "SELECT CAST(b.member_id AS TEXT) AS subject, b.pending - COALESCE(x.s, 0) AS value FROM ledger_balances b LEFT JOIN (SELECT member_id, SUM(amount) AS s FROM ledger_lines WHERE account = 'pending' GROUP BY member_id) x ON x.member_id = b.member_id WHERE b.pending <> COALESCE(x.s, 0)",
    ),
    (
        3,
        "cached held balance differs from the sum of its lines",
        "SELECT CAST(b.member_id AS TEXT) AS subject, b.held - COALESCE(x.s, 0) AS value FROM ledger_balances b LEFT JOIN (SELECT member_id, SUM(amount) AS s FROM ledger_lines WHERE account = 'held' GROUP BY member_id) x ON x.member_id = b.member_id WHERE b.held <> COALESCE(x.s, 0)",
    ),
    (
        4,
        "negative balance (available only allowed under the allow-negative policy)",
        "SELECT CAST(b.member_id AS TEXT) AS subject, b.available AS value FROM ledger_balances b JOIN tenants t ON t.id = b.tenant_id WHERE b.pending < 0 OR b.held < 0 OR (b.available < 0 AND t.shortfall_policy <> 'negative')",
    ),
    (
        4,
        "lot remaining outside 0..=original",
        "SELECT CAST(id AS TEXT) AS subject, remaining AS value FROM ledger_lots WHERE remaining < 0 OR remaining > original",
    ),
    (
        5,
        "available lots do not hold the available balance",
        "SELECT CAST(b.member_id AS TEXT) AS subject, COALESCE(x.s, 0) AS value FROM ledger_balances b LEFT JOIN (SELECT member_id, SUM(remaining) AS s FROM ledger_lots WHERE bucket = 'available' GROUP BY member_id) x ON x.member_id = b.member_id WHERE COALESCE(x.s, 0) <> CASE WHEN b.available > 0 THEN b.available ELSE 0 END",
    ),
    (
        5,
        "pending lots do not hold the pending balance",
        "SELECT CAST(b.member_id AS TEXT) AS subject, COALESCE(x.s, 0) AS value FROM ledger_balances b LEFT JOIN (SELECT member_id, SUM(remaining) AS s FROM ledger_lots WHERE bucket = 'pending' GROUP BY member_id) x ON x.member_id = b.member_id WHERE COALESCE(x.s, 0) <> b.pending",
    ),
    (
        6,
        "hold resolved inconsistently or captured more than it held",
        "SELECT CAST(id AS TEXT) AS subject, captured_points AS value FROM ledger_holds WHERE captured_points > points OR captured_points < 0 OR (status = 'OPEN' AND resolve_entry_id IS NOT NULL) OR (status <> 'OPEN' AND resolve_entry_id IS NULL)",
    ),
    (
        6,
        "held balance differs from the open holds",
        "SELECT CAST(b.member_id AS TEXT) AS subject, b.held AS value FROM ledger_balances b LEFT JOIN (SELECT member_id, SUM(points) AS s FROM ledger_holds WHERE status = 'OPEN' GROUP BY member_id) x ON x.member_id = b.member_id WHERE b.held <> COALESCE(x.s, 0)",
    ),
    (
        6,
        "entry reversed more than once",
        "SELECT CAST(reverses_entry_id AS TEXT) AS subject, COUNT(*) AS value FROM ledger_entries WHERE reverses_entry_id IS NOT NULL GROUP BY reverses_entry_id HAVING COUNT(*) > 1",
    ),
    (
        7,
        "issued points differ from outstanding + redeemed + expired + shortfall",
        "SELECT CAST(tenant_id AS TEXT) AS subject, SUM(CASE WHEN account = 'issuance' THEN -amount ELSE 0 END) - SUM(CASE WHEN account <> 'issuance' THEN amount ELSE 0 END) AS value FROM ledger_lines GROUP BY tenant_id HAVING SUM(CASE WHEN account = 'issuance' THEN -amount ELSE 0 END) <> SUM(CASE WHEN account <> 'issuance' THEN amount ELSE 0 END)",
    ),
];

/// Every violation found (empty: the ledger is sound). Reads only.
pub async fn audit(db: &Db) -> AppResult<Vec<Violation>> {
    let conn = db.reader();
    let backend = conn.get_database_backend();
    let mut out = Vec::new();
    for (invariant, what, sql) in CHECKS {
        let inner = if backend == sea_orm::DbBackend::Sqlite {
            // SQLite stores UUIDs as blobs: show them as hex.
            sql.replace("CAST(", "HEX(").replace(" AS TEXT)", ")")
        } else {
            sql.to_string()
        };
        // PostgreSQL sums bigints as numeric: cast the value back for a uniform read.
        let sql = format!("SELECT subject, CAST(value AS BIGINT) AS value FROM ({inner}) q");
        let rows = conn
            .query_all_raw(Statement::from_string(backend, sql))
            .await?;
        for row in rows {
            let subject: String = row.try_get("", "subject").unwrap_or_default();
            let value: i64 = row.try_get("", "value").unwrap_or_default();
            out.push(Violation {
                invariant: *invariant,
                detail: format!("{what}: {subject} ({value})"),
            });
        }
    }
    Ok(out)
}
