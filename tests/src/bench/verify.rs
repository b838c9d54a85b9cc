//! After the load: the ledger audit, and every acknowledged purchase stored exactly once.

use loyalty_core::db::Db;
use loyalty_core::db::entities::purchases;
use loyalty_core::ids::TenantId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// Missing or duplicated order ids listed in the report (all are counted).
const LISTED_MAX: usize = 10;

/// The acknowledged purchases against the `purchases` table of the bench tenant.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PurchaseCheck {
    /// Purchases the server answered with data and no errors.
    pub acknowledged: u64,
    /// Acknowledged purchases found exactly once.
    pub present: u64,
    /// Acknowledged purchases not found.
    pub missing: u64,
    /// Acknowledged purchases found more than once.
    pub duplicated: u64,
    /// This run's purchases that are stored but were not acknowledged (an error or timeout
    /// after the commit): not a failure, the client just never heard.
    pub stored_unacknowledged: u64,
    /// The first missing or duplicated order ids.
    pub examples: Vec<String>,
}

/// What the ledger audit found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct AuditResult {
    /// Each violation as `invariant N: detail` (at most 50 listed; `violation_count` has all).
    pub violations: Vec<String>,
    pub violation_count: u64,
    /// The audit could not run (a query failed).
    pub error: Option<String>,
    pub elapsed_s: f64,
}

impl AuditResult {
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.violation_count == 0
    }
}

/// Runs `ledger::audit::audit` over the whole database.
pub(crate) async fn audit(db: &Db) -> AuditResult {
    let started = Instant::now();
    let mut out = AuditResult::default();
    match loyalty_core::ledger::audit::audit(db).await {
        Ok(violations) => {
            out.violation_count = violations.len() as u64;
            out.violations = violations
                .iter()
                .take(50)
                .map(|v| format!("invariant {}: {}", v.invariant, v.detail))
                .collect();
        }
        Err(e) => out.error = Some(format!("the audit did not run: {e}")),
    }
    out.elapsed_s = started.elapsed().as_secs_f64();
    out
}

/// Looks up every order id of `tenant` and compares with `acknowledged`. Order ids starting
/// with `run_prefix` that were not acknowledged are counted as `stored_unacknowledged`.
pub(crate) async fn purchases(
    db: &Db,
    tenant: TenantId,
    acknowledged: &[String],
    run_prefix: &str,
) -> anyhow::Result<PurchaseCheck> {
    let stored: Vec<String> = purchases::Entity::find()
        .select_only()
        .column(purchases::Column::OrderId)
        .filter(purchases::Column::TenantId.eq(tenant.0))
        .into_tuple()
        .all(db.reader())
        .await
        .map_err(|e| anyhow::anyhow!("reading the bench tenant's purchases: {e}"))?;
    let mut counts: HashMap<&str, u64> = HashMap::with_capacity(stored.len());
    for order in &stored {
        *counts.entry(order.as_str()).or_default() += 1;
    }
    let acked: HashSet<&str> = acknowledged.iter().map(String::as_str).collect();
    let mut check = PurchaseCheck {
        acknowledged: acknowledged.len() as u64,
        ..Default::default()
    };
    for order in acknowledged {
        match counts.get(order.as_str()).copied().unwrap_or(0) {
            1 => check.present += 1,
            0 => {
                check.missing += 1;
                if check.examples.len() < LISTED_MAX {
                    check.examples.push(format!("missing: {order}"));
                }
            }
            n => {
                check.duplicated += 1;
                if check.examples.len() < LISTED_MAX {
                    check.examples.push(format!("stored {n} times: {order}"));
                }
            }
        }
    }
    check.stored_unacknowledged = counts
        .keys()
        .filter(|o| o.starts_with(run_prefix) && !acked.contains(*o))
        .count() as u64;
    Ok(check)
}
