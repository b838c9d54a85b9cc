//! SQLite's write-ahead log copied into the database file in the background.
//!
//! By default SQLite checkpoints on the connection that commits, once the log passes 1000
//! pages: every few groups, a purchase group's COMMIT on the one writer connection also
//! copied the log into the database file and synced it, 18-22 ms where a commit takes 1.5 ms,
//! and every purchase behind it waited. Here a task runs a PASSIVE checkpoint on a reader
//! connection every `database.sqlite_checkpoint_ms` instead: it never waits for the writer
//! or readers, and the writer only appends to the log. When the log has been copied whole,
//! the writer starts it again from the beginning at its next transaction, as after its own
//! checkpoints. Should the task fall behind, the writer still checkpoints at commit once
//! the log passes `database.sqlite_wal_pages_max` pages, so the log stays bounded.
//!
//! Durability is unchanged: with `synchronous = NORMAL` a commit was never synced by itself,
//! the checkpoint syncs the log before copying it, whichever connection runs it.
//!
//! The price is in the tail: a commit that lands while the checkpoint syncs waits for the
//! disk (measured: purchases +14 %, purchase p99 +16-20 ms; BENCHMARKS.md).
//! `database.sqlite_checkpoint_ms = 0` goes back to checkpoints at commit.

use super::Db;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    runs: AtomicU64,
    complete: AtomicU64,
    busy: AtomicU64,
    failed: AtomicU64,
}

/// What the background checkpoint has done since the server started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Checkpoints run.
    pub runs: u64,
    /// Checkpoints that found frames (pages) in the log and copied all of them into the
    /// database file.
    pub complete: u64,
    /// Checkpoints that could not copy the whole log (a reader still used an older part; the
    /// next one goes on from there).
    pub busy: u64,
    /// Checkpoints that failed (logged at WARN).
    pub failed: u64,
}

impl Counters {
    pub(crate) fn stats(&self) -> CheckpointStats {
        CheckpointStats {
            runs: self.runs.load(Ordering::Relaxed),
            complete: self.complete.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// Starts the background checkpoint of `db` (SQLite with `database.sqlite_checkpoint_ms` set;
/// `None` otherwise). It stops after one last checkpoint when `stop` turns true or its sender
/// is dropped.
pub fn spawn(db: &Db, mut stop: watch::Receiver<bool>) -> Option<tokio::task::JoinHandle<()>> {
    if db.backend() != DbBackend::Sqlite || db.checkpoint_every.is_zero() {
        return None;
    }
    let db = db.clone();
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(db.checkpoint_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Stopping: asked to, or the server that would ask is gone.
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                changed = stop.changed() => changed.is_err() || *stop.borrow(),
            };
            checkpoint(&db).await;
            if stopping {
                return;
            }
        }
    }))
}

/// One PASSIVE checkpoint on a reader connection; what it copied is counted.
pub async fn checkpoint(db: &Db) {
    let stmt = Statement::from_string(DbBackend::Sqlite, "PRAGMA wal_checkpoint(PASSIVE)");
    let c = &db.checkpoints;
    match db.reader().query_one_raw(stmt).await {
        Ok(Some(row)) => {
            // (busy, frames in the log, frames of it copied); -1 when not in WAL mode.
            let log = row.try_get_by_index::<i64>(1).unwrap_or(-1);
            let copied = row.try_get_by_index::<i64>(2).unwrap_or(-1);
            c.runs.fetch_add(1, Ordering::Relaxed);
            if copied < log {
                c.busy.fetch_add(1, Ordering::Relaxed);
            } else if log > 0 {
                c.complete.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(None) => {
            c.runs.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            c.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "WAL checkpoint failed; the writer checkpoints at commit past database.sqlite_wal_pages_max");
        }
    }
}
