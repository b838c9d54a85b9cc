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
    Expr, InsertStatement, PostgresQueryBuilder, QueryBuilder, SqlWriter, SqliteQueryBuilder,
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
    /// Beside each part: its shape when [`merge`](Self::merge) added it and it can take more
    /// rows.
    shapes: Vec<Option<Shape>>,
}

/// What two inserts must share to become one: the SQL around their rows (table, columns,
/// `ON CONFLICT`), rows of placeholders only.
#[derive(Debug)]
struct Shape {
    key: String,
    columns: usize,
    params: usize,
}

/// Most parameters one merged insert holds: below SQLite's 32,766 and PostgreSQL's 65,535
/// per statement.
pub const MERGED_PARAMS_MAX: usize = 30_000;

impl Batch {
    pub fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            parts: Vec::new(),
            shapes: Vec::new(),
        }
    }

    /// An empty batch for the database behind `conn`.
    pub fn on(conn: &impl ConnectionTrait) -> Self {
        Self::new(conn.get_database_backend())
    }

    /// Adds an insert or upsert (sea-orm's `Insert` or `InsertMany` with at least one row).
    pub fn insert(&mut self, query: impl QueryTrait<QueryStatement = InsertStatement>) {
        self.parts.push(Part::Insert(query.into_query()));
        self.shapes.push(None);
    }

    /// Adds an update (sea-orm's `UpdateMany`).
    pub fn update(&mut self, query: impl QueryTrait<QueryStatement = UpdateStatement>) {
        self.parts.push(Part::Update(query.into_query()));
        self.shapes.push(None);
    }

    /// Adds the writes of `other` after this batch's own.
    pub fn append(&mut self, other: Batch) {
        self.parts.extend(other.parts);
        self.shapes.extend(other.shapes);
    }

    /// Adds the writes of `other`, an independent unit of work (another member's purchase),
    /// folding each insert into an insert of the same shape that an earlier `merge` added,
    /// as more rows of one multi-row statement: units that write the same tables send one
    /// statement per table, not one per table and unit.
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
            let shaped = match &part {
                Part::Insert(q) => shape_of(q),
                Part::Update(_) => None,
            };
            if let Some((shape, values)) = shaped {
                let target = (at..self.parts.len()).find(|&i| {
                    self.shapes[i].as_ref().is_some_and(|s| {
                        s.key == shape.key && s.params + shape.params <= MERGED_PARAMS_MAX
                    })
                });
                if let Some(i) = target
                    && let (Part::Insert(q), Some(into)) = (&mut self.parts[i], &mut self.shapes[i])
                {
                    for row in values.chunks(shape.columns) {
                        q.values_panic(row.iter().cloned().map(Expr::val));
                    }
                    into.params += shape.params;
                    at = i + 1;
                    continue;
                }
                // A full part of the same shape: the new one goes after it, so that a later
                // unit's rows still follow an earlier unit's.
                let full = (at..self.parts.len())
                    .rev()
                    .find(|&i| self.shapes[i].as_ref().is_some_and(|s| s.key == shape.key));
                if let Some(i) = full {
                    at = i + 1;
                }
                self.parts.insert(at, part);
                self.shapes.insert(at, Some(shape));
            } else {
                self.parts.insert(at, part);
                self.shapes.insert(at, None);
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

/// The shape of an insert as SQLite's builder writes it, and its parameters; `None` when a
/// row holds anything but placeholders or the text is not `... VALUES (?, ..), (?, ..) ...`.
fn shape_of(q: &InsertStatement) -> Option<(Shape, Vec<Value>)> {
    let mut w = Params::new("?", false, 0);
    SqliteQueryBuilder.prepare_insert_statement(q, &mut w);
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
    let suffix = &sql[end..];
    if columns == 0 || suffix.contains('?') || rows * columns != w.values.len() {
        return None;
    }
    let shape = Shape {
        key: format!("{}{row}{suffix}", &sql[..start]),
        columns,
        params: w.values.len(),
    };
    Some((shape, w.values))
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
