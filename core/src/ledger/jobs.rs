//! Background work of the ledger: unlock pending lots whose lock ended, expire lots past their
//! expiry. Each lot is handled in its own short transaction (it locks one member), in batches
//! of at most `jobs.batch_max`, so the jobs never hold a lock that purchases wait on for long.

use super::{repo, service};
use crate::db::Db;
use crate::error::AppResult;
use crate::ids::TenantId;
use crate::tenants;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// What one run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobReport {
    pub unlocked: u64,
    pub expired: u64,
}

/// One batch of each job as of `now`. Returns what it did; a full batch means more may wait.
pub async fn run_batch(db: &Db, batch_max: u64, now: DateTime<Utc>) -> AppResult<JobReport> {
    let mut report = JobReport::default();
    let mut cache = HashMap::new();
    for lot in repo::due_unlocks(db.reader(), now, batch_max).await? {
        let t = tenants::service::get_cached(db, &mut cache, TenantId(lot.tenant_id))
            .await?
            .clone();
        let txn = db.begin_write().await?;
        if service::unlock_lot_in(&txn, &t, lot.id, now)
            .await?
            .is_some()
        {
            report.unlocked += 1;
        }
        txn.commit().await?;
    }
    for lot in repo::due_expiries(db.reader(), now, batch_max).await? {
        let t = tenants::service::get_cached(db, &mut cache, TenantId(lot.tenant_id))
            .await?
            .clone();
        let txn = db.begin_write().await?;
        if let Some(entry) = service::expire_lot_in(&txn, &t, lot.id, now).await? {
            crate::events::outbox::append(
                &txn,
                t.id,
                Some(entry.member_id),
                "points.expired",
                serde_json::json!({
                    "entryId": entry.id,
                    "points": -entry.points,
                    "lotId": lot.id,
                }),
                now,
            )
            .await?;
            report.expired += 1;
        }
        txn.commit().await?;
    }
    Ok(report)
}

/// Runs batches until nothing is due (for `loyalty jobs run-once`). Bounded: at most
/// `rounds_max` batches.
pub async fn run_until_idle(
    db: &Db,
    batch_max: u64,
    rounds_max: u32,
    now: DateTime<Utc>,
) -> AppResult<JobReport> {
    let mut total = JobReport::default();
    for _ in 0..rounds_max {
        let r = run_batch(db, batch_max, now).await?;
        total.unlocked += r.unlocked;
        total.expired += r.expired;
        if r.unlocked < batch_max && r.expired < batch_max {
            break;
        }
    }
    Ok(total)
}
