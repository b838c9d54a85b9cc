//! Database access: connection, migrations, transactions.
//!
//! SQLite (the default) gets two pools over one WAL file: a single **writer** connection, so
//! write transactions queue in the process instead of failing with `SQLITE_BUSY`, and a pool
//! of readers that never wait for the writer. Writes begin `IMMEDIATE` so that a transaction
//! which reads before it writes holds the write lock from its first statement. PostgreSQL uses
//! one pool for both roles at READ COMMITTED.

pub mod batch;
pub mod checkpoint;
pub mod entities;
mod write_thread;

pub use batch::Batch;
pub use checkpoint::CheckpointStats;

use crate::cache::{CacheSettings, Caches};
use crate::clock::Clock;
use crate::config::DatabaseSettings;
use crate::error::{AppError, AppResult};
use crate::events::writer::{WriterStats, Writers};
use loyalty_migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use write_thread::WriteThread;

/// The database handles of one server process.
#[derive(Clone, Debug)]
pub struct Db {
    reader: DatabaseConnection,
    writer: DatabaseConnection,
    /// SQLite: the thread its write transactions run on ([`Db::on_writer`]).
    write_thread: Option<Arc<WriteThread>>,
    clock: Clock,
    caches: Arc<Caches>,
    /// The purchase writers (group commit), started by the first purchase.
    writers: Arc<OnceLock<Writers>>,
    writers_count: usize,
    write_batch_max: usize,
    /// SQLite: how often the background task checkpoints the log (zero: never, the writer
    /// does at commit); what it has done.
    checkpoint_every: Duration,
    checkpoints: Arc<checkpoint::Counters>,
}

impl Db {
    /// Connects, creating the SQLite file and its folder when they do not exist yet.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Self> {
        let url = settings.url.expose().to_string();
        if url.starts_with("sqlite:") {
            ensure_sqlite_dir(&url)?;
            // With the background checkpoint, the writer checkpoints at commit only past the
            // bound; without it, every 1000 pages (SQLite's default).
            let autocheckpoint = match settings.sqlite_checkpoint_ms {
                0 => 1000,
                _ => settings.sqlite_wal_pages_max,
            };
            let writer = connect_sqlite(settings, &url, 1, autocheckpoint).await?;
            let reader = connect_sqlite(settings, &url, settings.sqlite_readers, 1000).await?;
            Ok(Self {
                reader,
                writer,
                write_thread: Some(Arc::new(WriteThread::start()?)),
                clock: Clock::system(),
                caches: Arc::new(Caches::new(&CacheSettings::default())),
                writers: Arc::default(),
                writers_count: 1,
                write_batch_max: settings.write_batch_max,
                checkpoint_every: Duration::from_millis(settings.sqlite_checkpoint_ms),
                checkpoints: Arc::default(),
            })
        } else {
            let mut opts = ConnectOptions::new(url);
            opts.max_connections(settings.connections_max)
                .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms));
            let statements = settings.statement_cache_max;
            opts.map_sqlx_postgres_opts(move |o| o.statement_cache_capacity(statements));
            slow_statements(&mut opts, settings);
            // sqlx pings on every checkout by default: a round trip before each transaction
            // and each read outside one. Only a connection idle long enough to have been
            // dropped by the server or a proxy is checked.
            match settings.ping_idle_s {
                0 => opts.test_before_acquire(true),
                s => opts.test_before_acquire_if_idle_for(Duration::from_secs(s)),
            };
            let pool = Database::connect(opts).await?;
            Ok(Self {
                reader: pool.clone(),
                writer: pool,
                write_thread: None,
                clock: Clock::system(),
                caches: Arc::new(Caches::new(&CacheSettings::default())),
                writers: Arc::default(),
                writers_count: settings.purchase_writers,
                write_batch_max: settings.write_batch_max,
                checkpoint_every: Duration::ZERO,
                checkpoints: Arc::default(),
            })
        }
    }

    /// The same connections read through another clock (tests drive a manual one).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same connections with caches of their own, sized by `settings` (`[cache]`).
    pub fn with_caches(mut self, settings: &CacheSettings) -> Self {
        self.caches = Arc::new(Caches::new(settings));
        self
    }

    /// The process's caches of keys, tenants and pipeline configurations.
    pub fn caches(&self) -> &Caches {
        &self.caches
    }

    /// The purchase writers, started on first use (on the calling tokio runtime).
    pub(crate) fn writers(&self) -> &Writers {
        self.writers
            .get_or_init(|| Writers::start(self, self.writers_count, self.write_batch_max))
    }

    /// What the purchase writers have done (all zero before the first purchase).
    pub fn writer_stats(&self) -> WriterStats {
        self.writers.get().map(Writers::stats).unwrap_or_default()
    }

    /// What the background checkpoint has done (all zero on PostgreSQL, or with it off).
    pub fn checkpoint_stats(&self) -> CheckpointStats {
        self.checkpoints.stats()
    }

    /// The same handles for a writer task: without the writers (which would otherwise keep
    /// their own queues open forever).
    pub(crate) fn detached(&self) -> Self {
        Self {
            writers: Arc::default(),
            ..self.clone()
        }
    }

    /// The server's time: every request and job reads it here.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        Migrator::up(&self.writer, None).await
    }

    /// Connection for reads outside a transaction.
    pub fn reader(&self) -> &DatabaseConnection {
        &self.reader
    }

    pub fn backend(&self) -> DbBackend {
        self.writer.get_database_backend()
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.backend() == DbBackend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        self.writer.begin_with_options(options).await
    }

    /// Runs `work`, a write transaction with what it reads and decides under its lock, on
    /// SQLite's write thread (see `db/write_thread.rs`), or in the calling task on
    /// PostgreSQL. On the thread the work runs to its end even when the caller stops waiting
    /// (a request timed out, its client went away): it commits or rolls back whole as always.
    pub async fn on_writer<T, F>(&self, work: F) -> AppResult<T>
    where
        F: Future<Output = AppResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        let Some(thread) = &self.write_thread else {
            return work.await;
        };
        match thread.spawn(work).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(AppError::internal(anyhow::anyhow!(
                "the write thread stopped: {e}"
            ))),
        }
    }

    /// Starts a task that runs write transactions (the purchase writer) where
    /// [`Db::on_writer`] runs them.
    pub(crate) fn spawn_on_writer<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match &self.write_thread {
            Some(thread) => drop(thread.spawn(task)),
            None => drop(tokio::spawn(task)),
        }
    }

    /// True when the database answers a trivial query (for `/readyz`).
    pub async fn ping(&self) -> bool {
        self.reader.ping().await.is_ok()
    }

    pub async fn close(self) {
        let _ = self.reader.close().await;
        let _ = self.writer.close().await;
    }
}

async fn connect_sqlite(
    settings: &DatabaseSettings,
    url: &str,
    connections: u32,
    autocheckpoint_pages: u32,
) -> anyhow::Result<DatabaseConnection> {
    let busy = Duration::from_millis(settings.sqlite_busy_timeout_ms);
    let statements = settings.statement_cache_max;
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(connections)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        // An in-process connection cannot have been dropped: no ping (a worker round trip)
        // before each checkout.
        .test_before_acquire(false)
        .map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(busy)
                .foreign_keys(true)
                .create_if_missing(true)
                .pragma("wal_autocheckpoint", autocheckpoint_pages.to_string())
                .statement_cache_capacity(statements)
        });
    slow_statements(&mut opts, settings);
    Ok(Database::connect(opts).await?)
}

/// Statements are not logged, except those slower than `database.slow_statement_ms` (WARN,
/// target `sqlx::query`, the SQL without its values): how a plan that scans shows up.
fn slow_statements(opts: &mut ConnectOptions, settings: &DatabaseSettings) {
    if settings.slow_statement_ms == 0 {
        opts.sqlx_logging(false);
    } else {
        opts.sqlx_logging(true)
            .sqlx_logging_level(log::LevelFilter::Off)
            .sqlx_slow_statements_logging_settings(
                log::LevelFilter::Warn,
                Duration::from_millis(settings.slow_statement_ms),
            );
    }
}

/// `sqlite://data/loyalty.db?mode=rwc` -> creates `data/`.
fn ensure_sqlite_dir(url: &str) -> anyhow::Result<()> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        return Ok(());
    }
    if let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    Ok(())
}

/// `items`, then copies of the last one up to a power of two. An `IN` list written from these
/// has one text for every count that rounds up to the same length, so the statement each
/// connection prepared for it is used again (see `batch::Padding`); a value repeated in an
/// `IN` list changes nothing it matches.
pub fn padded<T: Copy>(items: &[T]) -> impl Iterator<Item = T> + '_ {
    let pad = items.len().next_power_of_two() - items.len();
    let last = items.last().copied();
    items
        .iter()
        .copied()
        .chain(std::iter::repeat_n(last, pad).flatten())
}

/// One row of `sql`, whose parameters are `ids` in order, read straight from the pool of
/// `conn` through sqlx: for a hot read outside a transaction. Through `ConnectionTrait` the
/// same read moves sea-orm's future, which holds every driver's variant, into a box and
/// twice more (about 30 KB copied a call, 10 % of a balance read's instructions; BENCHMARKS.md).
/// The values bind as sea-orm binds a `Uuid` on each backend; a connection that is not a sqlx
/// pool takes the `ConnectionTrait` path. A transaction's reads do not come here.
pub async fn query_one_by_ids(
    conn: &DatabaseConnection,
    sql: &str,
    ids: &[uuid::Uuid],
) -> AppResult<Option<sea_orm::QueryResult>> {
    use sea_orm::DatabaseConnectionType as Pool;
    use sea_orm::sqlx;
    let failed = |e: sqlx::Error| AppError::internal(anyhow::Error::new(e).context("a read"));
    // One macro, two drivers: each backend's `Query` is its own type.
    macro_rules! query {
        () => {
            ids.iter()
                .fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, id| q.bind(*id))
        };
    }
    match &conn.inner {
        Pool::SqlxSqlitePoolConnection(_) => {
            let pool = conn.get_sqlite_connection_pool();
            let row = query!().fetch_optional(pool).await.map_err(failed)?;
            Ok(row.map(Into::into))
        }
        Pool::SqlxPostgresPoolConnection(_) => {
            let pool = conn.get_postgres_connection_pool();
            let row = query!().fetch_optional(pool).await.map_err(failed)?;
            Ok(row.map(Into::into))
        }
        _ => {
            use sea_orm::ConnectionTrait;
            let values: Vec<sea_orm::Value> = ids.iter().map(|id| (*id).into()).collect();
            let backend = conn.get_database_backend();
            let stmt = sea_orm::Statement::from_sql_and_values(backend, sql, values);
            Ok(conn.query_one_raw(stmt).await?)
        }
    }
}
