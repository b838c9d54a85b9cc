//! The daily birthday job: on a member's birthday, in the tenant's time zone, a `birthday`
//! event runs through the tenant's point rules (e.g. `birthday-bonus`).
//!
//! Idempotent by event id (`birthday:<member>:<year>`), so a restart or a second server never
//! pays twice. Members are scanned by an indexed `birthday_md` in keyset pages of
//! `jobs.batch_max`, each member in its own short transaction. Members born on 29 February
//! celebrate on 28 February in other years.

use super::pipeline::Env;
use super::{repo, service};
use crate::AppState;
use crate::error::AppResult;
use crate::ids::{MemberId, TenantId};
use crate::pagination::PageRequest;
use crate::tenants::{self, Tenant};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use loyalty_sdk as sdk;
use std::collections::HashMap;

/// Month * 100 + day values that celebrate on `date`.
pub fn month_days(date: NaiveDate) -> Vec<i32> {
    let md = date.month() as i32 * 100 + date.day() as i32;
    let leap = NaiveDate::from_ymd_opt(date.year(), 2, 29).is_some();
    if md == 228 && !leap {
        vec![228, 229]
    } else {
        vec![md]
    }
}

/// Tenants whose local date was already fully processed, so the job does not rescan them.
pub type Done = HashMap<TenantId, NaiveDate>;

/// One pass over every tenant as of `now`. Returns the number of birthday events recorded.
pub async fn run(app: &AppState, done: &mut Done, now: DateTime<Utc>) -> AppResult<u64> {
    let mut recorded = 0;
    let mut after = None;
    loop {
        let page = PageRequest { limit: 100, after };
        let tenants = tenants::repo::list(app.db.reader(), page).await?;
        for t in &tenants.items {
            let today = now.with_timezone(&t.timezone).date_naive();
            if done.get(&t.id) == Some(&today) {
                continue;
            }
            recorded += run_tenant(app, t, today, now).await?;
            done.insert(t.id, today);
        }
        if !tenants.has_next_page {
            return Ok(recorded);
        }
        after = tenants.items.last().map(|t| t.id.0);
    }
}

async fn run_tenant(
    app: &AppState,
    tenant: &Tenant,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let mds = month_days(today);
    let config = super::pipeline::config(&app.db, tenant.id).await?;
    let env = Env {
        db: &app.db,
        runtime: &app.plugins,
        tenant,
        config: &config,
        awards_max: app.settings.api.plugin_awards_max,
    };
    let mut recorded = 0;
    let mut after: Option<MemberId> = None;
    loop {
        let batch = crate::members::repo::with_birthday(
            app.db.reader(),
            tenant.id,
            &mds,
            after,
            app.settings.jobs.batch_max,
        )
        .await?;
        for member in &batch {
            let event_id = service::birthday_event_id(member.id, today.year());
            if repo::find_event(app.db.reader(), tenant.id, &event_id)
                .await?
                .is_some()
            {
                continue;
            }
            let txn = app.db.begin_write().await?;
            let outcome = service::member_event_in(
                &txn,
                env,
                member,
                &event_id,
                sdk::EventKind::Birthday(sdk::Birthday {
                    year: u16::try_from(today.year()).unwrap_or(u16::MAX),
                }),
                "",
                now,
                now,
            )
            .await?;
            txn.commit().await?;
            if !outcome.replayed {
                recorded += 1;
            }
        }
        if (batch.len() as u64) < app.settings.jobs.batch_max {
            return Ok(recorded);
        }
        after = batch.last().map(|m| m.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leap_day_birthdays_are_celebrated_on_the_28th_in_other_years() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).expect("date");
        assert_eq!(month_days(d(2026, 2, 28)), vec![228, 229]);
        assert_eq!(month_days(d(2028, 2, 28)), vec![228]);
        assert_eq!(month_days(d(2028, 2, 29)), vec![229]);
        assert_eq!(month_days(d(2026, 12, 1)), vec![1201]);
    }
}
