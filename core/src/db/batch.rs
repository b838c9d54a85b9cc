//! Writes sent to the database in one round trip.
//!
//! A write transaction spends most of its time waiting for round trips, not for the database:
//! on SQLite each statement is a hand-off to sqlx's worker thread and back, and the one writer
//! connection is held meanwhile; on PostgreSQL each is a message exchange with the server
//! while the member's row is locked. A [`Batch`] collects the writes whose results nobody
//! reads (inserts, upserts, updates of known rows) and sends them together:
//!
//! - **SQLite**: one script, the statements joined by `;`, their `?` parameters bound in order
//!   across the whole script (sqlx-sqlite prepares and runs the statements one after another).
//! - **PostgreSQL**: one statement, each write a data-modifying `WITH` query, the `$n`
//!   parameters numbered across all of them.
//!
//! A multi-row insert is written with its rows padded up to a power of two ([`Padding`]), so
//! that batches of similar size have the same text: each connection keeps its prepared
//! statements by text, and a text it has seen is not parsed and planned again.
//!
//! Reads that must see a batch's writes can follow it in the same round trip on SQLite
//! ([`Batch::run_then_read`]: the purchase writer's tier metrics).
//!
//! Two rules follow from PostgreSQL running the parts of one statement on one snapshot:
//! a batch must not write the same row twice, and no part may depend on another's result
//! (a foreign key to a row inserted earlier in the batch is fine: PostgreSQL checks it at the
//! end of the statement, SQLite after the earlier statement ran). A failure fails the whole
//! batch; the caller's transaction is then rolled back, as for any failed statement.

use sea_orm::sea_query::{
    InsertStatement, PostgresQueryBuilder, QueryBuilder, SqlWriter, SqliteQueryBuilder,
    UpdateStatement, Value,
};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, QueryTrait, Statement};
use std::fmt::Write;

/// One write of a batch.
#[derive(Clone, Debug)]
enum Part {
    /// An insert that cannot take more rows (a row holds more than placeholders).
    Insert(InsertStatement),
    Update(UpdateStatement),
    /// An insert of placeholder rows, rendered once when it was added.
    Rows(Rows),
}

/// Writes collected to be sent in one round trip (see the module's documentation).
#[derive(Debug)]
pub struct Batch {
    backend: DbBackend,
    parts: Vec<Part>,
}

/// A multi-row insert as text around its rows and the rows' values: [`merge`](Batch::merge)
/// adds the rows of an insert of the same shape by appending values, and the statement is
/// written back by repeating the row, without building the insert again.
#[derive(Clone, Debug)]
struct Rows {
    shape: Shape,
    values: Vec<Value>,
}

/// What two inserts must share to become one: the SQL around their rows (table, columns,
/// `ON CONFLICT`), rows of placeholders only.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shape {
    /// Up to and including `VALUES `.
    head: String,
    /// After the last row (`ON CONFLICT ...`), without parameters.
    tail: String,
    columns: usize,
}

impl Rows {
    /// Parameters the insert is written with: its rows' and the padding rows'.
    fn params(&self) -> usize {
        self.padding()
            .map_or(self.values.len(), |p| p.rows * self.shape.columns)
    }

    /// How the insert is written with the same text as any other of its shape whose row
    /// count rounds up to the same power of two (see [`Padding`]); `None` when a column has
    /// values of two types, when every column has a NULL in some row, or when the rows are
    /// past [`MERGED_PARAMS_MAX`].
    fn padding(&self) -> Option<Padding> {
        let columns = self.shape.columns;
        let (first, rest) = self.values.split_at(columns);
        let same_types = rest
            .chunks(columns)
            .all(|row| row.iter().zip(first).all(|(v, f)| same_type(v, f)));
        if !same_types {
            return None;
        }
        let key = (0..columns).find(|&c| {
            self.values
                .iter()
                .skip(c)
                .step_by(columns)
                .all(|v| *v != v.as_null())
        })?;
        let rows = self.values.len() / columns;
        let most = MERGED_PARAMS_MAX / columns;
        if rows > most {
            return None;
        }
        Some(Padding {
            rows: rows.next_power_of_two().min(most),
            key,
        })
    }

    /// Writes the insert, its parameters numbered after those already in `out`.
    fn write(self, out: &mut Params) {
        let columns = self.shape.columns;
        let padding = self.padding();
        let head = &self.shape.head;
        match &padding {
            // `INSERT INTO t (a, b) ` + `SELECT * FROM (VALUES `.
            Some(_) => {
                out.sql.push_str(&head[..head.len() - "VALUES ".len()]);
                out.sql.push_str("SELECT * FROM (VALUES ");
            }
            None => out.sql.push_str(head),
        }
        let rows = self.values.len() / columns;
        let pad = padding.as_ref().map_or(0, |p| p.rows - rows);
        // One row of the first row's types as NULLs, built only when there is padding.
        let nulls: Vec<Value> = match pad {
            0 => Vec::new(),
            _ => self.values[..columns].iter().map(Value::as_null).collect(),
        };
        let filler = std::iter::repeat_n(&nulls, pad).flatten().cloned();
        out.values.reserve(self.values.len() + pad * columns);
        for (i, value) in self.values.into_iter().chain(filler).enumerate() {
            out.sql.push_str(match (i % columns, i) {
                (_, 0) => "(",
                (0, _) => "), (",
                _ => ", ",
            });
            out.param(value);
        }
        out.sql.push(')');
        if let Some(p) = padding {
            // The padding rows are NULL in the key column, which no real row is. A `WHERE` also
            // keeps SQLite from reading an `ON CONFLICT` that follows as part of the `SELECT`.
            write!(out.sql, ") AS v WHERE column{} IS NOT NULL", p.key + 1)
                .expect("writing to a String");
        }
        out.sql.push_str(&self.shape.tail);
    }
}

/// An insert written as `INSERT INTO t (..) SELECT * FROM (VALUES ..) AS v WHERE columnK IS NOT
/// NULL`, its rows followed by rows of NULLs up to a power of two. A statement's text is the
/// key of the prepared statements a connection keeps (sqlx's cache on both backends): written
/// with one row per row, every group of purchases sent a text never seen before, and SQLite
/// compiled each of its inserts anew, 44 % of the writer connection's instructions
/// (BENCHMARKS.md). Padded, a few texts a shape cover every group size.
#[derive(Clone, Copy, Debug)]
struct Padding {
    /// Rows written, padding included.
    rows: usize,
    /// A column no real row has NULL in (zero-based).
    key: usize,
}

/// True when `a` and `b` are values of one SQL type: a column of padded rows must not mix
/// types (PostgreSQL gives a `VALUES` column one type for all its rows).
fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Most parameters one merged insert holds: below SQLite's 32,766 and PostgreSQL's 65,535
/// per statement.
pub const MERGED_PARAMS_MAX: usize = 30_000;

impl Batch {
    pub fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            parts: Vec::new(),
        }
    }

    /// An empty batch for the database behind `conn`.
    pub fn on(conn: &impl ConnectionTrait) -> Self {
        Self::new(conn.get_database_backend())
    }

    /// Adds an insert or upsert (sea-orm's `Insert` or `InsertMany` with at least one row).
    /// It is rendered here, once: a batch built where it is cheap (a request's task) costs
    /// the writer only the concatenation.
    pub fn insert(&mut self, query: impl QueryTrait<QueryStatement = InsertStatement>) {
        let query = query.into_query();
        self.parts.push(match shape_of(&query, self.backend) {
            Some(rows) => Part::Rows(rows),
            None => Part::Insert(query),
        });
    }

    /// Adds an update (sea-orm's `UpdateMany`).
    pub fn update(&mut self, query: impl QueryTrait<QueryStatement = UpdateStatement>) {
        self.parts.push(Part::Update(query.into_query()));
    }

    /// Adds the writes of `other` after this batch's own.
    pub fn append(&mut self, other: Batch) {
        self.parts.extend(other.parts);
    }

    /// Adds the writes of `other`, an independent unit of work (another member's purchase),
    /// folding each insert into an insert of the same shape that is already here, as more
    /// rows of one multi-row statement: units that write the same tables send one statement
    /// per table, not one per table and unit.
    ///
    /// Each unit keeps its own order (a part goes after the part of its unit placed before
    /// it, so a row still follows the row it references), and a later unit's rows come after an
    /// earlier unit's rows of the same shape. The rules of a batch hold across the units: no
    /// row written twice, no unit reading another's. An insert whose rows are
    /// not all placeholders, an update and an insert that would pass [`MERGED_PARAMS_MAX`]
    /// stay statements of their own.
    pub fn merge(&mut self, other: Batch) {
        let mut at = 0;
        for part in other.parts {
            if let Part::Rows(rows) = part {
                let target = (at..self.parts.len()).find(|&i| {
                    matches!(&self.parts[i], Part::Rows(r)
                        if r.shape == rows.shape && r.values.len() + rows.values.len() <= MERGED_PARAMS_MAX)
                });
                if let Some(i) = target
                    && let Part::Rows(into) = &mut self.parts[i]
                {
                    into.values.extend(rows.values);
                    at = i + 1;
                    continue;
                }
                // A full part of the same shape: the new one goes after it, so that a later
                // unit's rows still follow an earlier unit's.
                let full = (at..self.parts.len())
                    .rev()
                    .find(|&i| matches!(&self.parts[i], Part::Rows(r) if r.shape == rows.shape));
                if let Some(i) = full {
                    at = i + 1;
                }
                self.parts.insert(at, Part::Rows(rows));
            } else {
                self.parts.insert(at, part);
            }
            at += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.parts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The statements that send the batch: one, unless PostgreSQL's limit of parameters per
    /// statement splits it ([`POSTGRES_PARAMS_MAX`]).
    pub fn statements(&self) -> Vec<Statement> {
        Self {
            backend: self.backend,
            parts: self.parts.clone(),
        }
        .into_statements()
    }

    /// [`statements`](Self::statements), the values moved into them.
    fn into_statements(self) -> Vec<Statement> {
        match self.backend {
            _ if self.parts.is_empty() => Vec::new(),
            DbBackend::Postgres => postgres(self.parts),
            _ => vec![sqlite(self.parts)],
        }
    }

    /// Sends the batch (nothing when it is empty).
    pub async fn run(self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        for stmt in self.into_statements() {
            conn.execute_raw(stmt).await?;
        }
        Ok(())
    }

    /// Sends the batch, then `reads` (selects of this batch's backend), which see its writes,
    /// and returns the rows of the reads in their order.
    ///
    /// - **SQLite**: the reads end the batch's script, so writes and reads are one round trip
    ///   (sqlx-sqlite runs a script's statements in order and returns the rows of each).
    /// - **PostgreSQL**: each read is a statement of its own after the batch. Every part of one
    ///   statement sees the snapshot from before the statement, so a read in the batch's
    ///   `WITH` statement would not see the batch's writes.
    pub async fn run_then_read(
        self,
        conn: &impl ConnectionTrait,
        reads: Vec<Statement>,
    ) -> Result<Vec<QueryResult>, DbErr> {
        if self.backend != DbBackend::Sqlite {
            self.run(conn).await?;
            let mut rows = Vec::new();
            for read in reads {
                rows.extend(conn.query_all_raw(read).await?);
            }
            return Ok(rows);
        }
        let mut script = match self.parts.is_empty() {
            true => params_for(DbBackend::Sqlite, 0),
            false => sqlite_params(self.parts),
        };
        for read in reads {
            if !script.sql.is_empty() {
                script.sql.push_str(";\n");
            }
            script.sql.push_str(&read.sql);
            script
                .values
                .extend(read.values.map(|v| v.0).unwrap_or_default());
        }
        match script.sql.is_empty() {
            true => Ok(Vec::new()),
            false => {
                conn.query_all_raw(script.into_statement(DbBackend::Sqlite))
                    .await
            }
        }
    }
}

/// The insert as placeholder rows and their values, rendered by the builder of `backend`;
/// `None` when a row holds anything but placeholders or the text is not
/// `... VALUES (?, ..), (?, ..) ...`.
fn shape_of(q: &InsertStatement, backend: DbBackend) -> Option<Rows> {
    let mut w = Params::new("?", false, 0);
    match backend {
        DbBackend::Postgres => PostgresQueryBuilder.prepare_insert_statement(q, &mut w),
        _ => SqliteQueryBuilder.prepare_insert_statement(q, &mut w),
    }
    let sql = &w.sql;
    let start = sql.find(" VALUES (")? + " VALUES ".len();
    let row = &sql[start..start + sql[start..].find(')')? + 1];
    if !row[1..row.len() - 1].split(", ").all(|p| p == "?") {
        return None;
    }
    let columns = row.len() / 3; // "(?)", "(?, ?)", ...
    let (mut end, mut rows) = (start, 0);
    loop {
        if !sql[end..].starts_with(row) {
            return None;
        }
        end += row.len();
        rows += 1;
        if sql[end..].starts_with(", (") {
            end += 2;
        } else {
            break;
        }
    }
    let tail = &sql[end..];
    if columns == 0 || tail.contains('?') || rows * columns != w.values.len() {
        return None;
    }
    let shape = Shape {
        head: sql[..start].to_string(),
        tail: tail.to_string(),
        columns,
    };
    Some(Rows {
        shape,
        values: w.values,
    })
}

/// Parameters in one PostgreSQL statement of a batch: the protocol's limit is 65,535.
pub const POSTGRES_PARAMS_MAX: usize = 30_000;

/// One part written with the builder of `backend`, its parameters numbered after `base`.
fn write_part(part: Part, backend: DbBackend, out: &mut Params) {
    match (part, backend) {
        (Part::Rows(rows), _) => rows.write(out),
        (Part::Insert(q), DbBackend::Postgres) => {
            PostgresQueryBuilder.prepare_insert_statement(&q, out)
        }
        (Part::Update(q), DbBackend::Postgres) => {
            PostgresQueryBuilder.prepare_update_statement(&q, out)
        }
        (Part::Insert(q), _) => SqliteQueryBuilder.prepare_insert_statement(&q, out),
        (Part::Update(q), _) => SqliteQueryBuilder.prepare_update_statement(&q, out),
    }
}

fn params_for(backend: DbBackend, base: usize) -> Params {
    match backend {
        DbBackend::Postgres => Params::new("$", true, base),
        _ => Params::new("?", false, base),
    }
}

fn sqlite(parts: Vec<Part>) -> Statement {
    sqlite_params(parts).into_statement(DbBackend::Sqlite)
}

/// The parts as one SQLite script, the statements joined by `;`.
fn sqlite_params(parts: Vec<Part>) -> Params {
    let mut sql = params_for(DbBackend::Sqlite, 0);
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            sql.sql.push_str(";\n");
        }
        write_part(part, DbBackend::Sqlite, &mut sql);
    }
    sql
}

/// One statement when there is one part, else each part a data-modifying `WITH` query of one
/// statement, as many statements as [`POSTGRES_PARAMS_MAX`] makes.
fn postgres(parts: Vec<Part>) -> Vec<Statement> {
    if parts.len() == 1 {
        let mut out = params_for(DbBackend::Postgres, 0);
        parts
            .into_iter()
            .for_each(|p| write_part(p, DbBackend::Postgres, &mut out));
        return vec![out.into_statement(DbBackend::Postgres)];
    }
    let build = |part: Part, base: usize| {
        let mut sql = params_for(DbBackend::Postgres, base);
        write_part(part, DbBackend::Postgres, &mut sql);
        sql
    };
    let mut out = Vec::new();
    let mut group = Params::new("$", true, 0);
    let mut queries = 0;
    for part in parts {
        let params = match &part {
            Part::Rows(rows) => rows.params(),
            other => build(other.clone(), 0).values.len(),
        };
        if queries > 0 && group.values.len() + params > POSTGRES_PARAMS_MAX {
            group.sql.push_str(" SELECT 1");
            out.push(
                std::mem::replace(&mut group, Params::new("$", true, 0))
                    .into_statement(DbBackend::Postgres),
            );
            queries = 0;
        }
        let mut one = build(part, group.values.len());
        let lead = if queries == 0 { "WITH" } else { "," };
        write!(group.sql, "{lead} w{queries} AS ({})", one.sql).expect("writing to a String");
        group.values.append(&mut one.values);
        queries += 1;
    }
    group.sql.push_str(" SELECT 1");
    out.push(group.into_statement(DbBackend::Postgres));
    out
}

/// SQL text with its parameters, numbered across every statement written into it.
struct Params {
    sql: String,
    values: Vec<Value>,
    placeholder: &'static str,
    numbered: bool,
    /// Parameters before this text's first (numbered placeholders continue from there).
    base: usize,
}

impl Params {
    fn new(placeholder: &'static str, numbered: bool, base: usize) -> Self {
        Self {
            sql: String::with_capacity(1024),
            values: Vec::new(),
            placeholder,
            numbered,
            base,
        }
    }

    /// Writes a placeholder for `value`.
    fn param(&mut self, value: Value) {
        self.sql.push_str(self.placeholder);
        self.values.push(value);
        if self.numbered {
            write!(self.sql, "{}", self.base + self.values.len()).expect("writing to a String");
        }
    }

    fn into_statement(self, backend: DbBackend) -> Statement {
        Statement::from_sql_and_values(backend, self.sql, self.values)
    }
}

impl Write for Params {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.sql.write_str(s)
    }
}

impl std::fmt::Display for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.sql)
    }
}

impl SqlWriter for Params {
    fn push_param<T: QueryBuilder>(&mut self, value: Value, _: &T) {
        self.param(value);
    }

    fn as_writer(&mut self) -> &mut dyn Write {
        self as _
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::sea_query::{Alias, Query};

    /// An insert into `t (a, b)` of `rows`.
    fn insert(rows: &[(Option<i64>, Option<&str>)]) -> InsertStatement {
        let mut q = Query::insert();
        q.into_table(Alias::new("t"))
            .columns([Alias::new("a"), Alias::new("b")]);
        for (a, b) in rows {
            q.values_panic([(*a).into(), b.map(str::to_string).into()]);
        }
        q
    }

    fn sql(backend: DbBackend, rows: &[(Option<i64>, Option<&str>)]) -> Statement {
        let mut batch = Batch::new(backend);
        batch.parts.push(Part::Rows(
            shape_of(&insert(rows), backend).expect("placeholder rows"),
        ));
        batch.statements().remove(0)
    }

    fn values(s: &Statement) -> Vec<Value> {
        s.values.as_ref().map(|v| v.0.clone()).unwrap_or_default()
    }

    #[test]
    fn row_counts_that_round_to_one_power_of_two_share_a_text() {
        let row = |i: i64| (Some(i), Some("x"));
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            let three = sql(backend, &[row(1), row(2), row(3)]);
            let four = sql(backend, &[row(1), row(2), row(3), row(4)]);
            let five = sql(backend, &[row(1), row(2), row(3), row(4), row(5)]);
            assert_eq!(three.sql, four.sql, "{backend:?}");
            assert_ne!(four.sql, five.sql, "{backend:?}");
            assert!(
                three.sql.contains("SELECT * FROM (VALUES ")
                    && three.sql.contains(") AS v WHERE column1 IS NOT NULL"),
                "{}",
                three.sql
            );
            // Three rows and one row of typed NULLs.
            let v = values(&three);
            assert_eq!(v.len(), 8);
            assert_eq!(v[..6], values(&four)[..6]);
            assert_eq!(v[6..], [Value::BigInt(None), Value::String(None)]);
        }
    }

    #[test]
    fn the_key_is_a_column_without_nulls() {
        let s = sql(
            DbBackend::Sqlite,
            &[
                (None, Some("x")),
                (Some(2), Some("y")),
                (Some(3), Some("z")),
            ],
        );
        assert!(s.sql.contains("WHERE column2 IS NOT NULL"), "{}", s.sql);
        // No such column: the rows are written as they are.
        let s = sql(
            DbBackend::Sqlite,
            &[(None, Some("x")), (Some(2), None), (Some(3), Some("z"))],
        );
        assert!(!s.sql.contains("SELECT"), "{}", s.sql);
        assert_eq!(values(&s).len(), 6);
        assert_eq!(
            s.sql.matches('(').count(),
            4,
            "columns and three rows: {}",
            s.sql
        );
    }

    #[test]
    fn a_column_of_two_types_is_not_padded() {
        let mut q = Query::insert();
        q.into_table(Alias::new("t")).columns([Alias::new("a")]);
        q.values_panic([1_i64.into()]);
        q.values_panic([1_i32.into()]);
        q.values_panic([2_i64.into()]);
        let mut batch = Batch::new(DbBackend::Postgres);
        let rows = shape_of(&q, DbBackend::Postgres).expect("placeholder rows");
        batch.parts.push(Part::Rows(rows));
        let s = batch.statements().remove(0);
        assert_eq!(s.sql, r#"INSERT INTO "t" ("a") VALUES ($1), ($2), ($3)"#);
    }

    #[test]
    fn padding_stops_at_the_merged_limit() {
        let columns = 7;
        let most = MERGED_PARAMS_MAX / columns;
        let rows = |n: usize| Rows {
            shape: Shape {
                head: String::new(),
                tail: String::new(),
                columns,
            },
            values: vec![Value::BigInt(Some(1)); n * columns],
        };
        assert_eq!(
            rows(most - 1).params(),
            most * columns,
            "not past the limit"
        );
        // 4,097 rows would round up to 8,192: the limit's 4,285 instead.
        assert_eq!(
            rows(most.next_power_of_two() / 2 + 1).params(),
            most * columns
        );
        assert_eq!(
            rows(most / 2).params(),
            (most / 2).next_power_of_two() * columns
        );
        assert_eq!(rows(most + 1).params(), (most + 1) * columns, "as it is");
    }
}
