//! Group commit of purchases: the part of `recordPurchase` that holds the write lock.
//!
//! A purchase is validated, checked for a replay and evaluated by its point rules on the
//! reader, in the request's task, which also builds its writes from the member as it read
//! them ([`prepare`]); what is left (lock the member, take those writes if the member is
//! still in that state or else re-run the rules and build them again, write, lift the tier,
//! qualify a referral) waits here for a writer task. The
//! writer takes every purchase that is waiting (up to `database.write_batch_max`), and does
//! them all in one transaction: the order ids already recorded in one query, the members'
//! states in one (on PostgreSQL their balance rows locked in one before), every purchase's
//! writes in one batch, the tier metrics in one query, and one commit. Each request gets its
//! answer only after that commit, so an acknowledged purchase is durable as before.
//!
//! A group holds at most one purchase per member and per order id (a later one waits for the
//! next group), so nothing in it reads another's writes, and one tenant (its queries are the
//! tenant's). A purchase refused on its own (member gone or inactive, an award over the
//! limits) is answered with its error and writes nothing; the others go on. When the
//! transaction itself fails (PostgreSQL: a deadlock, a twin recorded by another process), it
//! rolls back whole and its purchases are done again one per transaction, as before groups.
//!
//! SQLite has one writer connection, so one writer task, on the write thread
//! ([`Db::on_writer`]). PostgreSQL gets `database.purchase_writers` of them, a member's
//! purchases always on the same one.

use super::pipeline::{self, Env, PipelineConfig, Proposed};
use super::{Award, MemberStats, PluginError, Purchase, outbox, repo};
use crate::db::{Batch, Db};
use crate::error::{AppError, AppResult};
use crate::ids::{MemberId, TenantId};
use crate::plugins::runtime::PluginRuntime;
use crate::tenants::Tenant;
use chrono::{DateTime, Utc};
use loyalty_sdk as sdk;
use serde_json::json;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// A purchase ready to be written: everything its transaction needs, read and evaluated
/// before it.
pub(crate) struct Job {
    pub tenant: Tenant,
    pub config: Arc<PipelineConfig>,
    pub runtime: PluginRuntime,
    pub awards_max: usize,
    /// Built by the request, `points_earned` still 0.
    pub purchase: Purchase,
    pub event: sdk::MemberEvent,
    /// The snapshot the rules ran on, and their answer.
    pub seen: sdk::MemberSnapshot,
    pub early: (Vec<Proposed>, Vec<PluginError>),
    pub now: DateTime<Utc>,
    /// Its writes, built by the request from the state it read ([`prepare`]).
    pub prepared: Option<Box<Prepared>>,
}

/// A purchase's writes built before the lock, and the member's state they were built on.
pub(crate) struct Prepared {
    state: repo::MemberState,
    built: Built,
}

/// A purchase's writes as a unit of the group's batch, and what they record.
struct Built {
    done: Done,
    unit: Batch,
}

/// What a purchase records, as its answer gives it.
struct Done {
    purchase: Purchase,
    awards: Vec<Award>,
    errors: Vec<PluginError>,
    /// The member's balances as this purchase leaves them.
    balances: crate::ledger::Balances,
}

/// Builds the job's writes from `state`, the member as the request read them (what its rules
/// ran on), in the request's task: under the lock the writer only checks that the member is
/// still in that state and merges them, and builds them again when not. Nothing is prepared
/// before the member's first entry (their balance row is created under the lock) or when
/// building fails (the writer builds again and answers the error).
pub(crate) fn prepare(db: &Db, job: &mut Job, state: repo::MemberState) {
    let Some(balances) = state.balances else {
        return;
    };
    let early = job.early.clone();
    if let Ok(built) = build(env(db, job), job, &state.stats, balances, early) {
        job.prepared = Some(Box::new(Prepared { state, built }));
    }
}

/// How a job ended.
#[derive(Debug)]
pub(crate) enum Written {
    /// Recorded now, with what it earned and which rules failed.
    Recorded {
        purchase: Box<Purchase>,
        awards: Vec<Award>,
        errors: Vec<PluginError>,
        /// The member and the balances the transaction committed, so that the answer needs
        /// no read; `None` when the group also qualified referrals, whose points change
        /// balances after the purchases' own writes.
        member: Option<Box<(crate::members::Member, crate::ledger::Balances)>>,
    },
    /// Its order id was recorded first by another request: the caller answers with that one.
    Twin,
}

/// The answer, and the job back: its request's task drops it. A job's allocations (the
/// rules' answer, the writes it prepared) were made on that task's thread; freed on the writer
/// thread they were 9 % of its time, much of it waiting for glibc's lock on the other thread's
/// arena (`perf`, BENCHMARKS.md), and that thread is the one that bounds the purchase rate.
type Reply = oneshot::Sender<(AppResult<Written>, Job)>;

/// The writer tasks of one [`Db`], started by the first purchase.
pub(crate) struct Writers {
    queues: Vec<mpsc::Sender<(Job, Reply)>>,
    stats: Arc<Counters>,
}

impl std::fmt::Debug for Writers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writers")
            .field("queues", &self.queues.len())
            .field("stats", &self.stats())
            .finish()
    }
}

#[derive(Default)]
struct Counters {
    groups: AtomicU64,
    purchases: AtomicU64,
    largest: AtomicU64,
    retried: AtomicU64,
    queued: AtomicU64,
    prepared: AtomicU64,
}

/// What the writers have done since the server started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions that committed a group.
    pub groups: u64,
    /// Purchases taken, in all (recorded, twins and refused).
    pub purchases: u64,
    /// The most purchases one group held.
    pub largest: u64,
    /// Groups whose transaction failed and whose purchases were done one by one.
    pub retried: u64,
    /// Purchases waiting for a writer now.
    pub queued: u64,
    /// Purchases committed with the writes their request built ([`prepare`]): the member was
    /// still in the state the request read.
    pub prepared: u64,
}

impl Writers {
    /// Starts `count` writer tasks (one on SQLite) taking up to `batch_max` purchases a group.
    pub(crate) fn start(db: &Db, count: usize, batch_max: usize) -> Self {
        let count = match db.backend() {
            sea_orm::DbBackend::Sqlite => 1,
            _ => count.max(1),
        };
        let batch_max = batch_max.max(1);
        let stats = Arc::new(Counters::default());
        let queues = (0..count)
            .map(|_| {
                let (tx, rx) = mpsc::channel(batch_max * 4);
                db.spawn_on_writer(run(db.detached(), rx, batch_max, stats.clone()));
                tx
            })
            .collect();
        Self { queues, stats }
    }

    pub(crate) fn stats(&self) -> WriterStats {
        let s = &self.stats;
        WriterStats {
            groups: s.groups.load(Ordering::Relaxed),
            purchases: s.purchases.load(Ordering::Relaxed),
            largest: s.largest.load(Ordering::Relaxed),
            retried: s.retried.load(Ordering::Relaxed),
            queued: s.queued.load(Ordering::Relaxed),
            prepared: s.prepared.load(Ordering::Relaxed),
        }
    }

    /// Queues the job and waits for its commit.
    pub(crate) async fn submit(&self, job: Job) -> AppResult<Written> {
        let shard = job.purchase.member_id.0.as_u128() as usize % self.queues.len();
        let (tx, rx) = oneshot::channel();
        let stopped = || AppError::internal(anyhow::anyhow!("the purchase writer has stopped"));
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if self.queues[shard].send((job, tx)).await.is_err() {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(stopped());
        }
        let (result, job) = rx.await.map_err(|_| stopped())?;
        drop(job);
        result
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<(Job, Reply)>, batch_max: usize, stats: Arc<Counters>) {
    let mut waiting: VecDeque<(Job, Reply)> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match rx.recv().await {
                Some(j) => waiting.push_back(j),
                None => return,
            }
        }
        while waiting.len() < batch_max * 2 {
            match rx.try_recv() {
                Ok(j) => waiting.push_back(j),
                Err(_) => break,
            }
        }
        let group = take_group(&mut waiting, batch_max, |(job, _)| {
            let p = &job.purchase;
            (job.tenant.id, p.member_id, p.order_id.as_str())
        });
        stats
            .queued
            .fetch_sub(group.len() as u64, Ordering::Relaxed);
        let n = group.len() as u64;
        stats.purchases.fetch_add(n, Ordering::Relaxed);
        stats.largest.fetch_max(n, Ordering::Relaxed);
        // Its own task, so that a panic fails this group's requests, not the writer.
        // Boxed here: the group's future is about 9 KB, under tokio's own threshold for
        // boxing (16 KB), so it was copied whole at each layer of the spawn (about 20k
        // instructions a purchase on this thread; BENCHMARKS.md).
        let task = tokio::spawn(Box::pin(commit_group(db.clone(), group, stats.clone())));
        if let Err(e) = task.await {
            tracing::error!(error = %e, "a purchase group failed");
        }
    }
}

/// The next group: the first job waiting, and after it every waiting job of the same tenant
/// whose member and order id are not in the group yet, up to `max`. The rest keep their order.
fn take_group<T>(
    waiting: &mut VecDeque<T>,
    max: usize,
    key: impl Fn(&T) -> (TenantId, MemberId, &str),
) -> Vec<T> {
    let mut group: Vec<T> = Vec::new();
    let mut tenant = None;
    let mut members: HashSet<MemberId> = HashSet::new();
    let mut orders: HashSet<String> = HashSet::new();
    let mut rest = VecDeque::with_capacity(waiting.len());
    while let Some(item) = waiting.pop_front() {
        let (t, member, order) = key(&item);
        let fits = group.len() < max
            && tenant.is_none_or(|first| first == t)
            && !members.contains(&member)
            && !orders.contains(order);
        if fits {
            tenant = Some(t);
            members.insert(member);
            orders.insert(order.to_string());
            group.push(item);
        } else {
            rest.push_back(item);
        }
    }
    *waiting = rest;
    group
}

async fn commit_group(db: Db, group: Vec<(Job, Reply)>, stats: Arc<Counters>) {
    let (mut jobs, replies): (Vec<Job>, Vec<Reply>) = group.into_iter().unzip();
    match write_group(&db, &mut jobs, &stats).await {
        Ok(results) => {
            stats.groups.fetch_add(1, Ordering::Relaxed);
            for ((reply, result), job) in replies.into_iter().zip(results).zip(jobs) {
                let _ = reply.send((result, job));
            }
        }
        Err(e) if jobs.len() == 1 => {
            stats.groups.fetch_add(1, Ordering::Relaxed);
            let result = if e.is_unique_violation() {
                Ok(Written::Twin)
            } else {
                Err(e)
            };
            if let (Some(reply), Some(job)) = (replies.into_iter().next(), jobs.pop()) {
                let _ = reply.send((result, job));
            }
        }
        Err(e) => {
            // Rolled back whole: each purchase again in a transaction of its own.
            tracing::warn!(error = %e, purchases = jobs.len(), "purchase group retried one by one");
            stats.retried.fetch_add(1, Ordering::Relaxed);
            for (mut job, reply) in jobs.into_iter().zip(replies) {
                let result = match write_group(&db, std::slice::from_mut(&mut job), &stats).await {
                    Ok(mut r) => r.pop().unwrap_or_else(|| Err(no_result())),
                    Err(e) if e.is_unique_violation() => Ok(Written::Twin),
                    Err(e) => Err(e),
                };
                stats.groups.fetch_add(1, Ordering::Relaxed);
                let _ = reply.send((result, job));
            }
        }
    }
}

/// A purchase of the group that passed its own checks, between the batch and the commit.
struct Staged<'a> {
    job: &'a Job,
    index: usize,
    done: Done,
    state: super::repo::MemberState,
    snap: sdk::MemberSnapshot,
    how: How,
}

/// How a staged purchase's writes were built.
#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    /// By its request, on the state the writer found: taken as they were.
    Prepared,
    /// Under the lock, with the rules' answer of the request (the snapshot had not moved).
    Built,
    /// Under the lock, after its rules ran again on the locked snapshot.
    Reevaluated,
}

fn env<'a>(db: &'a Db, job: &'a Job) -> Env<'a> {
    Env {
        db,
        runtime: &job.runtime,
        tenant: &job.tenant,
        config: &job.config,
        awards_max: job.awards_max,
    }
}

/// One transaction for the jobs (all of one tenant, distinct members and order ids): the
/// answer of each, or the error that rolled the whole transaction back. The writes the
/// requests prepared are used up (a retry builds them under the lock).
async fn write_group(
    db: &Db,
    jobs: &mut [Job],
    stats: &Counters,
) -> AppResult<Vec<AppResult<Written>>> {
    let mut prepared: Vec<Option<Box<Prepared>>> =
        jobs.iter_mut().map(|j| j.prepared.take()).collect();
    let jobs = &*jobs;
    let Some(first) = jobs.first() else {
        return Ok(Vec::new());
    };
    let tenant = &first.tenant;
    let mut steps = Steps::start();
    let txn = db.begin_write().await?;
    steps.mark("begin");
    let orders: Vec<&str> = jobs.iter().map(|j| j.purchase.order_id.as_str()).collect();
    let (recorded, mut states) = match db.backend() {
        // The write lock is already held: both reads in one round trip.
        sea_orm::DbBackend::Sqlite => {
            let members: Vec<MemberId> = jobs.iter().map(|j| j.purchase.member_id).collect();
            let (recorded, mut read) =
                repo::recorded_and_member_states(&txn, tenant.id, &orders, &members).await?;
            // Only the members whose purchase is not a twin.
            for job in jobs {
                if recorded.contains(&job.purchase.order_id) {
                    read.remove(&job.purchase.member_id);
                }
            }
            let states = pipeline::sqlite_states(&txn, env(db, first), read, first.now).await?;
            (recorded, states)
        }
        _ => {
            let recorded = repo::recorded_order_ids(&txn, tenant.id, &orders).await?;
            let members: Vec<MemberId> = jobs
                .iter()
                .filter(|j| !recorded.contains(&j.purchase.order_id))
                .map(|j| j.purchase.member_id)
                .collect();
            let states = match members.is_empty() {
                true => Default::default(),
                false => pipeline::lock_states(&txn, env(db, first), &members, first.now).await?,
            };
            (recorded, states)
        }
    };
    steps.mark("read");

    let mut results: Vec<Option<AppResult<Written>>> = jobs.iter().map(|_| None).collect();
    let mut staged: Vec<Staged> = Vec::with_capacity(jobs.len());
    let mut batch = Batch::on(&txn);
    for (index, job) in jobs.iter().enumerate() {
        if recorded.contains(&job.purchase.order_id) {
            results[index] = Some(Ok(Written::Twin));
            continue;
        }
        let env = env(db, job);
        let Some((state, balances, snap)) = states.remove(&job.purchase.member_id) else {
            results[index] = Some(Err(AppError::not_found("member")));
            continue;
        };
        // Built on this very state: its rules saw this snapshot, its writes start from these
        // balances and statistics.
        let built = match prepared[index].take() {
            Some(p) if p.state == state && p.state.balances == Some(balances) => {
                Ok((p.built, How::Prepared))
            }
            _ => stage(env, job, &state, balances, &snap).await,
        };
        match built {
            Ok((built, how)) => {
                batch.merge(built.unit);
                let done = built.done;
                staged.push(Staged {
                    job,
                    index,
                    done,
                    state,
                    snap,
                    how,
                });
            }
            Err(e) => results[index] = Some(Err(e)),
        }
    }
    let parts = batch.len();
    steps.mark("stage");
    // The tier metrics are read after the purchases' writes, in the same round trip on SQLite.
    let ladder = first.config.ladder.as_ref();
    let lifts: Vec<_> = staged
        .iter()
        .map(|s| (s.done.purchase.member_id, s.state.tier.clone(), s.job.now))
        .collect();
    let reads = crate::tiers::service::metric_reads(db.backend(), tenant, ladder, &lifts);
    let metrics = batch.run_then_read(&txn, reads).await?;
    steps.mark("batch");
    // After the purchases' own records: a tier.upgraded one causes follows them.
    crate::tiers::service::upgrade_all_with(&txn, tenant, ladder, lifts, &metrics).await?;
    steps.mark("tiers");
    let mut referred = false;
    for s in &mut staged {
        let job = s.job;
        let env = env(db, job);
        let referral = s.state.referral.take();
        if referral.is_none() {
            continue;
        }
        referred = true;
        let occurred_at = s.done.purchase.occurred_at;
        let referral_errors = crate::referrals::service::qualify_with(
            &txn,
            env,
            &s.state.member,
            referral,
            &s.snap,
            &job.event,
            occurred_at,
            job.now,
        )
        .await?;
        let member = s.done.purchase.member_id;
        pipeline::announce(
            &txn,
            env,
            member,
            &job.event.id,
            &[],
            &referral_errors,
            job.now,
        )
        .await?;
        s.done.errors.extend(referral_errors);
    }
    steps.mark("referrals");
    txn.commit().await?;
    steps.mark("commit");
    let count = |how| staged.iter().filter(|s| s.how == how).count();
    let used = count(How::Prepared);
    stats.prepared.fetch_add(used as u64, Ordering::Relaxed);
    tracing::debug!(
        purchases = jobs.len(),
        reevaluated = count(How::Reevaluated),
        prepared = used,
        writes = parts,
        steps = %steps,
        "purchase group committed"
    );
    for s in staged {
        let member = (!referred).then(|| Box::new((s.state.member, s.done.balances)));
        results[s.index] = Some(Ok(Written::Recorded {
            purchase: Box::new(s.done.purchase),
            awards: s.done.awards,
            errors: s.done.errors,
            member,
        }));
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(no_result())))
        .collect())
}

/// One purchase's checks and writes, built under the lock on the member's locked state.
async fn stage(
    env: Env<'_>,
    job: &Job,
    state: &super::repo::MemberState,
    balances: crate::ledger::Balances,
    snap: &sdk::MemberSnapshot,
) -> AppResult<(Built, How)> {
    pipeline::check_active(&state.member)?;
    let occurred_at = job.purchase.occurred_at;
    let lines = job.purchase.lines.len();
    // The member moved since the rules ran (an event that is not a purchase, or a purchase
    // of an earlier group): they run again on the locked snapshot.
    let (answer, how) = if *snap != job.seen {
        let answer = pipeline::evaluate(env, &job.event, snap, lines, occurred_at).await?;
        (answer, How::Reevaluated)
    } else {
        (job.early.clone(), How::Built)
    };
    Ok((build(env, job, &state.stats, balances, answer)?, how))
}

/// The purchase's writes as one unit, from the member's balances and statistics before it
/// and its rules' answer: the purchase, what it earned, the statistics, the outbox records
/// and the tier activity. No reads: the request's task or the writer can run it.
fn build(
    env: Env<'_>,
    job: &Job,
    stats: &MemberStats,
    balances: crate::ledger::Balances,
    (proposed, errors): (Vec<Proposed>, Vec<PluginError>),
) -> AppResult<Built> {
    let mut purchase = job.purchase.clone();
    let occurred_at = purchase.occurred_at;
    let member = purchase.member_id;
    let tenant = env.tenant;
    let mut own = Batch::new(env.db.backend());
    let (awards, balances) = pipeline::apply_into(
        &mut own,
        env,
        member,
        balances,
        purchase.id,
        &job.event.id,
        proposed,
        job.now,
    )?;
    purchase.points_earned = awards.iter().map(|a| a.points).sum();
    // The purchase's writes as a unit, folded into the group's statements.
    let mut unit = Batch::new(env.db.backend());
    repo::insert_purchase_into(&mut unit, tenant.id, &purchase);
    unit.append(own);
    let mut stats = stats.clone();
    add_to_stats(&mut stats, &purchase);
    repo::save_stats_into(&mut unit, tenant.id, member, &stats, job.now);
    // The purchase first, then what it earned and which rules failed.
    let mut announced = vec![(
        "purchase.recorded",
        json!({
            "purchaseId": purchase.id,
            "orderId": purchase.order_id,
            "occurredAt": purchase.occurred_at,
            "currency": purchase.currency,
            "total": purchase.total,
            "channel": purchase.channel.as_str(),
            "storeId": purchase.store_id,
            "lines": purchase.lines.len(),
            "points": purchase.points_earned,
        }),
    )];
    announced.extend(pipeline::announcements(&job.event.id, &awards, &errors));
    outbox::append_all_into(&mut unit, tenant.id, Some(member), announced, job.now);
    let activity = crate::tiers::Activity {
        points: purchase.points_earned,
        spend: purchase.total,
        purchases: 1,
    };
    crate::tiers::service::record_activity_into(&mut unit, tenant, member, occurred_at, activity);
    let done = Done {
        purchase,
        awards,
        errors,
        balances,
    };
    Ok(Built { done, unit })
}

/// How long each step of a group took (microseconds), in the debug log of every group
/// (`loyalty_core::events::writer=debug`): where a group's time goes, in production too.
struct Steps {
    last: std::time::Instant,
    took: Vec<(&'static str, u128)>,
}

impl Steps {
    fn start() -> Self {
        Self {
            last: std::time::Instant::now(),
            took: Vec::with_capacity(8),
        }
    }

    fn mark(&mut self, step: &'static str) {
        let now = std::time::Instant::now();
        self.took.push((step, (now - self.last).as_micros()));
        self.last = now;
    }
}

impl std::fmt::Display for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (step, us)) in self.took.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{step}={us}us")?;
        }
        Ok(())
    }
}

fn no_result() -> AppError {
    AppError::internal(anyhow::anyhow!("the purchase writer gave no answer"))
}

fn add_to_stats(stats: &mut MemberStats, purchase: &Purchase) {
    let at = purchase.occurred_at;
    stats.lifetime_spend = stats.lifetime_spend.saturating_add(purchase.total);
    stats.purchase_count += 1;
    stats.first_purchase_at = Some(stats.first_purchase_at.map_or(at, |f| f.min(at)));
    stats.last_purchase_at = Some(stats.last_purchase_at.map_or(at, |l| l.max(at)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    type Item = (TenantId, MemberId, String);

    fn take(waiting: &mut VecDeque<Item>, max: usize) -> Vec<String> {
        take_group(waiting, max, |(t, m, o)| (*t, *m, o.as_str()))
            .into_iter()
            .map(|i| i.2)
            .collect()
    }

    #[test]
    fn a_group_has_one_tenant_one_purchase_per_member_and_order_and_a_size_limit() {
        let (a, b) = (TenantId(id(1)), TenantId(id(2)));
        let m = |n: u128| MemberId(id(100 + n));
        let mut waiting: VecDeque<Item> = [
            (a, m(1), "o1"),
            (a, m(2), "o2"),
            (b, m(3), "o3"), // another tenant: the next group
            (a, m(1), "o4"), // the same member: the next group, still before o6
            (a, m(4), "o2"), // the same order id: the next group
            (a, m(5), "o5"),
            (a, m(1), "o6"),
            (a, m(6), "o7"), // past the limit of 3
        ]
        .into_iter()
        .map(|(t, m, o)| (t, m, o.to_string()))
        .collect();
        assert_eq!(take(&mut waiting, 3), ["o1", "o2", "o5"]);
        assert_eq!(take(&mut waiting, 3), ["o3"]);
        assert_eq!(take(&mut waiting, 3), ["o4", "o2", "o7"]);
        assert_eq!(take(&mut waiting, 3), ["o6"]);
        assert!(waiting.is_empty());
        assert!(take(&mut waiting, 3).is_empty());
    }
}
