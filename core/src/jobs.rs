//! Every background job in one place: the ledger's unlocks and expiries, redemption codes
//! that expire, birthday events, tier reviews and re-evaluations. The server runs them on an
//! interval ([`spawn`]); `loyalty jobs run-once` and tests run them until idle ([`run_once`]).

use crate::AppState;
use crate::error::AppResult;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// What [`run_once`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobsSummary {
    pub ledger: crate::ledger::jobs::JobReport,
    pub birthdays: u64,
    pub codes_expired: u64,
    pub tiers: crate::tiers::jobs::TierJobReport,
}

/// Runs every job until nothing is due at `now` (each bounded by 10,000 batches).
pub async fn run_once(app: &AppState, now: DateTime<Utc>) -> AppResult<JobsSummary> {
    let batch = app.settings.jobs.batch_max;
    let ledger = crate::ledger::jobs::run_until_idle(&app.db, batch, 10_000, now).await?;
    let birthdays =
        crate::events::birthdays::run(app, &mut crate::events::birthdays::Done::new(), now).await?;
    let mut codes_expired = 0;
    for _ in 0..10_000 {
        let n = crate::rewards::service::expire_due(&app.db, batch, now).await?;
        codes_expired += n;
        if n < batch {
            break;
        }
    }
    let tiers = crate::tiers::jobs::run_until_idle(&app.db, batch, 10_000, now).await?;
    Ok(JobsSummary {
        ledger,
        birthdays,
        codes_expired,
        tiers,
    })
}

/// The in-server runner: one round every `jobs.interval_s`, at once again while a batch was
/// full. Each job's failure is logged and retried next round. Stops when `shutdown` fires.
pub fn spawn(
    app: AppState,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = Duration::from_secs(app.settings.jobs.interval_s.max(1));
        let batch_max = app.settings.jobs.batch_max;
        let mut birthdays_done = crate::events::birthdays::Done::new();
        loop {
            let mut full = false;
            match crate::events::birthdays::run(&app, &mut birthdays_done, app.db.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(birthdays = n, "birthday events recorded"),
                Err(e) => {
                    tracing::error!(error = ?e, "birthday job failed; retrying next interval")
                }
            }
            match crate::rewards::service::expire_due(&app.db, batch_max, app.db.now()).await {
                Ok(0) => {}
                Ok(n) => {
                    full |= n >= batch_max;
                    tracing::info!(codes = n, "redemption codes expired")
                }
                Err(e) => tracing::error!(error = ?e, "code expiry failed; retrying next interval"),
            }
            match crate::ledger::jobs::run_batch(&app.db, batch_max, app.db.now()).await {
                Ok(r) => {
                    full |= r.unlocked >= batch_max || r.expired >= batch_max;
                    if r != crate::ledger::jobs::JobReport::default() {
                        tracing::info!(
                            unlocked = r.unlocked,
                            expired = r.expired,
                            "ledger jobs ran"
                        );
                    }
                }
                Err(e) => tracing::error!(error = ?e, "ledger jobs failed; retrying next interval"),
            }
            match crate::tiers::jobs::run_batch(&app.db, batch_max, app.db.now()).await {
                Ok(r) => {
                    full |= r.reviewed >= batch_max || r.reevaluated > 0;
                    if r != crate::tiers::jobs::TierJobReport::default() {
                        tracing::info!(
                            reviewed = r.reviewed,
                            moved = r.moved,
                            reevaluated = r.reevaluated,
                            "tier jobs ran"
                        );
                    }
                }
                Err(e) => tracing::error!(error = ?e, "tier jobs failed; retrying next interval"),
            }
            if full {
                // More is due: go again at once, but let shutdown in.
                if *shutdown.borrow() {
                    return;
                }
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    })
}
