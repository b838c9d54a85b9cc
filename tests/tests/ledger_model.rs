//! Property test: random sequences of ledger operations against a plain in-memory model, on
//! SQLite and on PostgreSQL. After every step the outcome (success or error code) and the
//! member's balances must match the model, and the audit must find the seven invariants intact.

use chrono::{DateTime, Duration, Utc};
use loyalty_core::ids::MemberId;
use loyalty_core::ledger::service::{self as ledger, EarnSpec, Source};
use loyalty_core::ledger::{ExpiryPolicy, ShortfallPolicy, jobs, repo};
use loyalty_core::tenants::{PointsPolicy, Tenant};
use loyalty_tests::{Backend, TestApp};
use proptest::prelude::*;
use uuid::Uuid;

#[derive(Clone, Debug)]
enum Op {
    Earn { points: i64, pending: bool },
    Debit { points: i64 },
    Hold { points: i64 },
    Capture { hold: usize, percent: i64 },
    Void { hold: usize },
    Clawback { credit: usize, points: i64 },
    Jobs { days: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1i64..100, any::<bool>()).prop_map(|(points, pending)| Op::Earn { points, pending }),
        2 => (1i64..80).prop_map(|points| Op::Debit { points }),
        2 => (1i64..80).prop_map(|points| Op::Hold { points }),
        1 => (0usize..6, 1i64..=100).prop_map(|(hold, percent)| Op::Capture { hold, percent }),
        1 => (0usize..6).prop_map(|hold| Op::Void { hold }),
        2 => (0usize..8, 1i64..60).prop_map(|(credit, points)| Op::Clawback { credit, points }),
        1 => (0i64..20).prop_map(|days| Op::Jobs { days }),
    ]
}

const EXPIRY_DAYS: u32 = 30;
const LOCK_DAYS: i64 = 7;

#[derive(Clone, Debug)]
struct MLot {
    original: i64,
    remaining: i64,
    clawed: i64,
    pending: bool,
    available_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    seq: usize,
}

#[derive(Clone, Debug)]
struct MHold {
    id: Uuid,
    points: i64,
    allocs: Vec<(usize, i64)>,
    open: bool,
}

#[derive(Default, Debug)]
struct Model {
    available: i64,
    pending: i64,
    held: i64,
    lots: Vec<MLot>,
    holds: Vec<MHold>,
    /// (earn entry id, lot index)
    credits: Vec<(Uuid, usize)>,
}

impl Model {
    fn take_fifo(&mut self, amount: i64) -> Option<Vec<(usize, i64)>> {
        if self.available < amount {
            return None;
        }
        let mut order: Vec<usize> = (0..self.lots.len())
            .filter(|&i| !self.lots[i].pending && self.lots[i].remaining > 0)
            .collect();
        order.sort_by_key(|&i| (self.lots[i].expires_at, self.lots[i].seq));
        let mut left = amount;
        let mut allocs = Vec::new();
        for i in order {
            if left == 0 {
                break;
            }
            let take = self.lots[i].remaining.min(left);
            self.lots[i].remaining -= take;
            allocs.push((i, take));
            left -= take;
        }
        assert_eq!(left, 0, "model: lots hold the available balance");
        self.available -= amount;
        Some(allocs)
    }

    fn restore(&mut self, allocs: &[(usize, i64)], amount: i64) {
        let mut left = amount;
        for (i, taken) in allocs.iter().rev() {
            if left == 0 {
                break;
            }
            let back = (*taken).min(left);
            self.lots[*i].remaining += back;
            left -= back;
        }
        self.available += amount;
    }
}

async fn run(backend: Backend, ops: Vec<Op>) {
    let t = TestApp::start(backend).await;
    let policy = PointsPolicy {
        expiry: ExpiryPolicy::DaysAfterEarn(EXPIRY_DAYS),
        shortfall: ShortfallPolicy::RecordShortfall,
    };
    let (tenant, member) = t.tenant_and_member("model", policy).await;
    let mut m = Model::default();
    let mut now = loyalty_core::clock::now();
    for (step, op) in ops.into_iter().enumerate() {
        now += Duration::seconds(1);
        let outcome = apply(&t, &tenant, member, &mut m, &op, now, step).await;
        let b = repo::balances(t.app.db.reader(), tenant.id, member)
            .await
            .expect("balances");
        assert_eq!(
            (b.available, b.pending, b.held),
            (m.available, m.pending, m.held),
            "step {step} {op:?} ({outcome}): database and model disagree"
        );
        t.assert_audit_clean().await;
        if let Op::Jobs { days } = op {
            now += Duration::days(days);
        }
    }
    t.finish().await;
}

/// Applies `op` to the database and the model; panics when their outcomes differ.
async fn apply(
    t: &TestApp,
    tenant: &Tenant,
    member: MemberId,
    m: &mut Model,
    op: &Op,
    now: DateTime<Utc>,
    step: usize,
) -> String {
    let db = &t.app.db;
    let txn = db.begin_write().await.expect("txn");
    let result: Result<(), &'static str> = match op {
        Op::Earn { points, pending } => {
            let spec = EarnSpec {
                points: *points,
                pending_until: pending.then(|| now + Duration::days(LOCK_DAYS)),
                ..Default::default()
            };
            let (e, _) = ledger::earn_in(&txn, tenant, member, spec, now)
                .await
                .expect("earn");
            m.lots.push(MLot {
                original: *points,
                remaining: *points,
                clawed: 0,
                pending: *pending,
                available_at: if *pending {
                    now + Duration::days(LOCK_DAYS)
                } else {
                    now
                },
                expires_at: now + Duration::days(i64::from(EXPIRY_DAYS)),
                seq: step,
            });
            m.credits.push((e.id, m.lots.len() - 1));
            if *pending {
                m.pending += points
            } else {
                m.available += points
            }
            Ok(())
        }
        Op::Debit { points } => {
            let db_result = ledger::adjust_in(&txn, tenant, member, -points, "model", now).await;
            let expected = m.take_fifo(*points);
            match (db_result, expected) {
                (Ok(_), Some(_)) => Ok(()),
                (Err(e), None) => Err(e.code()),
                (db, model) => panic!("step {step}: debit {points}: db {db:?} model {model:?}"),
            }
        }
        Op::Hold { points } => {
            let db_result =
                ledger::hold_in(&txn, tenant, member, *points, Source::default(), now).await;
            let expected = m.take_fifo(*points);
            match (db_result, expected) {
                (Ok((h, _)), Some(allocs)) => {
                    m.held += points;
                    m.holds.push(MHold {
                        id: h.id,
                        points: *points,
                        allocs,
                        open: true,
                    });
                    Ok(())
                }
                (Err(e), None) => Err(e.code()),
                (db, model) => panic!("step {step}: hold {points}: db {db:?} model {model:?}"),
            }
        }
        Op::Capture { hold, percent } => match m.holds.get(*hold).cloned() {
            None => Ok(()),
            Some(h) => {
                let amount = (h.points * percent / 100).max(1);
                let db_result = ledger::capture_in(&txn, tenant, h.id, amount, now).await;
                if h.open {
                    db_result.expect("capture of an open hold");
                    m.held -= h.points;
                    m.restore(&h.allocs, h.points - amount);
                    m.holds[*hold].open = false;
                    Ok(())
                } else {
                    Err(db_result
                        .map(|_| ())
                        .map_err(|e| e.code())
                        .expect_err("capture of a resolved hold"))
                }
            }
        },
        Op::Void { hold } => match m.holds.get(*hold).cloned() {
            None => Ok(()),
            Some(h) => {
                let db_result = ledger::void_in(&txn, tenant, h.id, now).await;
                if h.open {
                    db_result.expect("void of an open hold");
                    m.held -= h.points;
                    m.restore(&h.allocs, h.points);
                    m.holds[*hold].open = false;
                    Ok(())
                } else {
                    Err(db_result
                        .map(|_| ())
                        .map_err(|e| e.code())
                        .expect_err("void of a resolved hold"))
                }
            }
        },
        Op::Clawback { credit, points } => match m.credits.get(*credit).copied() {
            None => Ok(()),
            Some((entry, lot)) => {
                let db_result =
                    ledger::clawback_in(&txn, tenant, entry, *points, None, false, now).await;
                let l = &mut m.lots[lot];
                if *points > l.original - l.clawed {
                    assert_eq!(
                        db_result.map(|_| ()).map_err(|e| e.code()),
                        Err("VALIDATION"),
                        "step {step}"
                    );
                    Err("VALIDATION")
                } else {
                    db_result.expect("clawback");
                    let from_lot = (*points).min(l.remaining);
                    l.remaining -= from_lot;
                    l.clawed += points;
                    if l.pending {
                        m.pending -= from_lot
                    } else {
                        m.available -= from_lot
                    }
                    Ok(())
                }
            }
        },
        Op::Jobs { days } => {
            drop(txn);
            let at = now + Duration::days(*days);
            jobs::run_until_idle(db, 1000, 100, at).await.expect("jobs");
            for l in m
                .lots
                .iter_mut()
                .filter(|l| l.pending && l.available_at <= at)
            {
                l.pending = false;
                m.pending -= l.remaining;
                m.available += l.remaining;
            }
            for l in m
                .lots
                .iter_mut()
                .filter(|l| !l.pending && l.remaining > 0 && l.expires_at <= at)
            {
                m.available -= l.remaining;
                l.remaining = 0;
            }
            return "jobs".into();
        }
    };
    txn.commit().await.expect("commit");
    format!("{result:?}")
}

fn cases() -> u32 {
    // A few dozen sequences per backend keep the suite within minutes on two cores; raise with
    // PROPTEST_CASES for a longer hunt.
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn sqlite_ledger_matches_model(ops in prop::collection::vec(op(), 1..25)) {
        tokio::runtime::Runtime::new().expect("runtime").block_on(run(Backend::Sqlite, ops));
    }

    #[test]
    fn postgres_ledger_matches_model(ops in prop::collection::vec(op(), 1..25)) {
        tokio::runtime::Runtime::new().expect("runtime").block_on(run(Backend::Postgres, ops));
    }
}
