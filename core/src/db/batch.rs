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
//! Two rules follow from PostgreSQL running the parts of one statement on one snapshot:
//! a batch must not write the same row twice, and no part may depend on another's result
//! (a foreign key to a row inserted earlier in the batch is fine: PostgreSQL checks it at the
//! end of the statement, SQLite after the earlier statement ran). A failure fails the whole
//! batch; the caller's transaction is then rolled back, as for any failed statement.

use sea_orm::sea_query::{
    InsertStatement, PostgresQueryBuilder, QueryBuilder, SqlWriter, SqliteQueryBuilder,
    UpdateStatement, Value,
};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryTrait, Statement};
use std::fmt::Write;

/// One write of a batch.
#[derive(Debug)]
enum Part {
    Insert(InsertStatement),
    Update(UpdateStatement),
}

/// Writes collected to be sent in one round trip (see the module's documentation).
#[derive(Debug)]
pub struct Batch {
    backend: DbBackend,
    parts: Vec<Part>,
}

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
    pub fn insert(&mut self, query: impl QueryTrait<QueryStatement = InsertStatement>) {
        self.parts.push(Part::Insert(query.into_query()));
    }

    /// Adds an update (sea-orm's `UpdateMany`).
    pub fn update(&mut self, query: impl QueryTrait<QueryStatement = UpdateStatement>) {
        self.parts.push(Part::Update(query.into_query()));
    }

    /// Adds the writes of `other` after this batch's own.
    pub fn append(&mut self, other: Batch) {
        self.parts.extend(other.parts);
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
        match (self.parts.len(), self.backend) {
            (0, _) => Vec::new(),
            (1, _) => vec![match &self.parts[0] {
                Part::Insert(q) => self.backend.build(q),
                Part::Update(q) => self.backend.build(q),
            }],
            (_, DbBackend::Postgres) => postgres(&self.parts),
            _ => vec![sqlite(&self.parts)],
        }
    }

    /// Sends the batch (nothing when it is empty).
    pub async fn run(self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        for stmt in self.statements() {
            conn.execute_raw(stmt).await?;
        }
        Ok(())
    }
}

/// Parameters in one PostgreSQL statement of a batch: the protocol's limit is 65,535.
pub const POSTGRES_PARAMS_MAX: usize = 30_000;

fn sqlite(parts: &[Part]) -> Statement {
    let mut sql = Params::new("?", false, 0);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            sql.sql.push_str(";\n");
        }
        match part {
            Part::Insert(q) => SqliteQueryBuilder.prepare_insert_statement(q, &mut sql),
            Part::Update(q) => SqliteQueryBuilder.prepare_update_statement(q, &mut sql),
        }
    }
    sql.into_statement(DbBackend::Sqlite)
}

fn postgres(parts: &[Part]) -> Vec<Statement> {
    let build = |part: &Part, base: usize| {
        let mut sql = Params::new("$", true, base);
        match part {
            Part::Insert(q) => PostgresQueryBuilder.prepare_insert_statement(q, &mut sql),
            Part::Update(q) => PostgresQueryBuilder.prepare_update_statement(q, &mut sql),
        }
        sql
    };
    let mut out = Vec::new();
    let mut group = Params::new("$", true, 0);
    let mut queries = 0;
    for part in parts {
        let mut one = build(part, group.values.len());
        if queries > 0 && group.values.len() + one.values.len() > POSTGRES_PARAMS_MAX {
            group.sql.push_str(" SELECT 1");
            out.push(
                std::mem::replace(&mut group, Params::new("$", true, 0))
                    .into_statement(DbBackend::Postgres),
            );
            queries = 0;
            one = build(part, 0);
        }
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
        self.sql.push_str(self.placeholder);
        self.values.push(value);
        if self.numbered {
            write!(self.sql, "{}", self.base + self.values.len()).expect("writing to a String");
        }
    }

    fn as_writer(&mut self) -> &mut dyn Write {
        self as _
    }
}
