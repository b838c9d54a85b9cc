//! Background work of tiers: due reviews (downgrades after the grace period, manual
//! assignments that end) and the re-evaluation of every member after a ladder change. Each
//! member is handled in its own short transaction under the member's lock, at most
//! `jobs.batch_max` members per kind and run, so purchases never wait long behind a job.

use super::{repo, service};
use crate::db::Db;
use crate::error::AppResult;
use crate::tenants;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// What one run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TierJobReport {
    /// Reviews run, and how many of them moved the member.
    pub reviewed: u64,
    pub moved: u64,
    /// Members re-evaluated after a ladder change.
    pub reevaluated: u64,
}

impl TierJobReport {
    fn add(&mut self, o: Self) {
        self.reviewed += o.reviewed;
        self.moved += o.moved;
        self.reevaluated += o.reevaluated;
    }
}

/// One batch of due reviews and one batch of each running re-evaluation, as of `now`.
pub async fn run_batch(db: &Db, batch_max: u64, now: DateTime<Utc>) -> AppResult<TierJobReport> {
    let mut report = TierJobReport::default();
    let mut cache = HashMap::new();
    for (tenant_id, member) in repo::due_reviews(db.reader(), now, batch_max).await? {
        let t = tenants::service::get_cached(db, &mut cache, tenant_id).await?;
        let txn = db.begin_write().await?;
        crate::ledger::repo::lock_balances(&txn, t.id, member, now).await?;
        let change = service::review_in(&txn, &t, member, now).await?;
        txn.commit().await?;
        report.reviewed += 1;
        report.moved += u64::from(change.is_some());
    }
    for mut job in repo::running_reevaluations(db.reader(), 16).await? {
        let t = tenants::service::get_cached(db, &mut cache, job.tenant_id).await?;
        let ladder = repo::current_ladder(db.reader(), t.id).await?;
        let Some(ladder) = ladder.filter(|l| l.version == job.ladder_version) else {
            // A newer ladder has its own job.
            let expected = job.cursor;
            job.running = false;
            job.finished_at = Some(now);
            repo::advance_reevaluation(db.reader(), &job, expected).await?;
            continue;
        };
        let members = repo::members_after(db.reader(), t.id, job.cursor, batch_max).await?;
        for &member in &members {
            let expected = job.cursor;
            let txn = db.begin_write().await?;
            crate::ledger::repo::lock_balances(&txn, t.id, member, now).await?;
            let (change, up) =
                service::reevaluate_in(&txn, &t, &ladder, member, job.rebuild, now).await?;
            let mut next = job.clone();
            next.cursor = Some(member.0);
            next.members_done += 1;
            if change.is_some() {
                if up {
                    next.upgraded += 1;
                } else {
                    next.downgraded += 1;
                }
            }
            if !repo::advance_reevaluation(&txn, &next, expected).await? {
                // Another runner moved this job on: leave it to them.
                drop(txn);
                break;
            }
            txn.commit().await?;
            job = next;
            report.reevaluated += 1;
        }
        if (members.len() as u64) < batch_max {
            let expected = job.cursor;
            job.running = false;
            job.finished_at = Some(now);
            job.members_total = job.members_total.max(job.members_done);
            let txn = db.begin_write().await?;
            repo::advance_reevaluation(&txn, &job, expected).await?;
            txn.commit().await?;
        }
    }
    Ok(report)
}

/// Runs batches until nothing is due (for `loyalty jobs run-once` and tests). Bounded: at
/// most `rounds_max` batches.
pub async fn run_until_idle(
    db: &Db,
    batch_max: u64,
    rounds_max: u32,
    now: DateTime<Utc>,
) -> AppResult<TierJobReport> {
    let mut total = TierJobReport::default();
    for _ in 0..rounds_max {
        let r = run_batch(db, batch_max, now).await?;
        total.add(r);
        let running = !repo::running_reevaluations(db.reader(), 1)
            .await?
            .is_empty();
        if r.reviewed < batch_max && !running {
            break;
        }
    }
    Ok(total)
}
