//! Ledger throughput at a small and a large history, on SQLite and PostgreSQL.
//!
//! For each backend and history size: a fresh database, one tenant seeded in bulk
//! (`ledger::seed`), `ANALYZE`, then `--ops` operations of each kind by `--concurrency` tokio
//! tasks on uniformly random seeded members, each operation in its own write transaction as
//! the API runs it:
//! - `earn`: `earn_in` of 50 points with a natural key (lot, entry, two lines, balances);
//! - `debit`: `adjust_in` of -5 points (FIFO over the member's lots, allocations);
//! - `redeem`: `hold_in` of 5 points, committed, then `capture_in` of them, committed (the
//!   two calls of a redemption; the latency is both);
//! - `balance`: `repo::balances` on the reader (what `member { balance }` reads).
//!
//! Then the audit runs over the whole ledger. Figures go to stdout, last as a Markdown table.
//!
//! ```text
//! cargo bench -p loyalty-tests --bench ledger_throughput -- \
//!     --entries 10000,1000000 --members 10000 --ops 5000 --concurrency 8 --backend both
//! ```
//! PostgreSQL comes from `LOYALTY_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each database is dropped at the end.

use anyhow::{Context as _, bail};
use loyalty_core::auth::Principal;
use loyalty_core::db::Db;
use loyalty_core::error::AppError;
use loyalty_core::ids::MemberId;
use loyalty_core::ledger::seed::{self, SeedOptions};
use loyalty_core::ledger::service::{self as ledger, EarnSpec, Source};
use loyalty_core::ledger::{audit, repo};
use loyalty_core::tenants::{self, Branding, NewTenant, Tenant};
use loyalty_tests::{Backend, TestDb, settings_for};
use sea_orm::ConnectionTrait;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Args {
    entries: Vec<u64>,
    members: u64,
    ops: u64,
    concurrency: usize,
    backends: Vec<Backend>,
    redeem_every: u32,
}

const USAGE: &str = "ledger_throughput [--entries N[,N...]] [--members N] [--ops N] \
[--concurrency N] [--backend sqlite|postgres|both] [--redeem-every N]";

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        entries: vec![10_000, 1_000_000],
        members: 10_000,
        ops: 5_000,
        concurrency: 8,
        backends: vec![Backend::Sqlite, Backend::Postgres],
        redeem_every: SeedOptions::default().redeem_every,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // `cargo bench` passes `--bench`; a filter word may follow the `--`: both are ignored.
        if flag == "--bench" || !flag.starts_with("--") {
            continue;
        }
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| -> anyhow::Result<u64> {
            v.replace('_', "")
                .parse()
                .with_context(|| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--entries" => {
                a.entries = value.split(',').map(num).collect::<Result<_, _>>()?;
            }
            "--members" => a.members = num(&value)?,
            "--ops" => a.ops = num(&value)?,
            "--concurrency" => a.concurrency = usize::try_from(num(&value)?)?.max(1),
            "--redeem-every" => a.redeem_every = u32::try_from(num(&value)?)?,
            "--backend" => {
                a.backends = match value.as_str() {
                    "sqlite" => vec![Backend::Sqlite],
                    "postgres" => vec![Backend::Postgres],
                    "both" => vec![Backend::Sqlite, Backend::Postgres],
                    other => bail!("--backend: sqlite, postgres or both, not {other}"),
                }
            }
            other => bail!("unknown flag {other}\n{USAGE}"),
        }
    }
    if a.members == 0 {
        bail!("--members must be at least 1");
    }
    Ok(a)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Earn,
    Debit,
    Redeem,
    Balance,
}

impl Op {
    const ALL: [Op; 4] = [Op::Earn, Op::Debit, Op::Redeem, Op::Balance];

    fn name(self) -> &'static str {
        match self {
            Op::Earn => "earn",
            Op::Debit => "debit",
            Op::Redeem => "redeem",
            Op::Balance => "balance",
        }
    }
}

struct PhaseResult {
    op: Op,
    ok: u64,
    insufficient: u64,
    errors: u64,
    first_error: Option<String>,
    wall: Duration,
    latencies: Vec<Duration>,
}

impl PhaseResult {
    fn ops_per_s(&self) -> f64 {
        (self.ok + self.insufficient) as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)].as_secs_f64() * 1000.0
    }
}

struct CaseResult {
    backend: Backend,
    entries: u64,
    seed_time: Duration,
    size_mb: f64,
    phases: Vec<PhaseResult>,
    audit_time: Duration,
    violations: usize,
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

/// xorshift64*: a cheap per-task stream of member picks.
struct Pick(u64);

impl Pick {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

async fn run_op(
    db: &Db,
    tenant: &Tenant,
    member: MemberId,
    op: Op,
    n: u64,
) -> Result<(), AppError> {
    let now = loyalty_core::clock::now();
    match op {
        Op::Earn => {
            let txn = db.begin_write().await?;
            let spec = EarnSpec {
                points: 50,
                natural_key: Some(format!("earn:bench-{n}")),
                source: Source {
                    reason_code: Some("bench".into()),
                    ..Default::default()
                },
                ..Default::default()
            };
            ledger::earn_in(&txn, tenant, member, spec, now).await?;
            txn.commit().await?;
        }
        Op::Debit => {
            let txn = db.begin_write().await?;
            ledger::adjust_in(&txn, tenant, member, -5, "bench", now).await?;
            txn.commit().await?;
        }
        Op::Redeem => {
            let txn = db.begin_write().await?;
            let (hold, _) =
                ledger::hold_in(&txn, tenant, member, 5, Source::default(), now).await?;
            txn.commit().await?;
            let txn = db.begin_write().await?;
            ledger::capture_in(&txn, tenant, hold.id, 5, loyalty_core::clock::now()).await?;
            txn.commit().await?;
        }
        Op::Balance => {
            repo::balances(db.reader(), tenant.id, member).await?;
        }
    }
    Ok(())
}

async fn run_phase(
    db: &Db,
    tenant: &Tenant,
    members: &Arc<Vec<MemberId>>,
    op: Op,
    ops: u64,
    concurrency: usize,
) -> anyhow::Result<PhaseResult> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (db, tenant, members, next) =
            (db.clone(), tenant.clone(), members.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut pick = Pick(0x9e37_79b9_7f4a_7c15 ^ ((w as u64 + 1) << 17) ^ op as u64);
            let mut r = PhaseResult {
                op,
                ok: 0,
                insufficient: 0,
                errors: 0,
                first_error: None,
                wall: Duration::ZERO,
                latencies: Vec::new(),
            };
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= ops {
                    break;
                }
                let member = members[pick.below(members.len())];
                let t0 = Instant::now();
                match run_op(&db, &tenant, member, op, n).await {
                    Ok(()) => {
                        r.latencies.push(t0.elapsed());
                        r.ok += 1;
                    }
                    Err(AppError::InsufficientPoints(_)) => {
                        r.latencies.push(t0.elapsed());
                        r.insufficient += 1;
                    }
                    Err(e) => {
                        r.errors += 1;
                        if r.first_error.is_none() {
                            r.first_error = Some(format!("{e:?}"));
                        }
                    }
                }
            }
            r
        }));
    }
    let mut all = PhaseResult {
        op,
        ok: 0,
        insufficient: 0,
        errors: 0,
        first_error: None,
        wall: Duration::ZERO,
        latencies: Vec::new(),
    };
    for t in tasks {
        let r = t.await.context("benchmark task")?;
        all.ok += r.ok;
        all.insufficient += r.insufficient;
        all.errors += r.errors;
        all.first_error = all.first_error.or(r.first_error);
        all.latencies.extend(r.latencies);
    }
    all.wall = started.elapsed();
    all.latencies.sort_unstable();
    Ok(all)
}

async fn database_size_mb(db: &Db, test_db: &TestDb) -> f64 {
    match test_db {
        TestDb::Sqlite { dir } => {
            let bytes: u64 = std::fs::read_dir(dir)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter_map(|e| e.metadata().ok())
                        .map(|m| m.len())
                        .sum()
                })
                .unwrap_or(0);
            bytes as f64 / 1e6
        }
        TestDb::Postgres { .. } => {
            let stmt = sea_orm::Statement::from_string(
                db.backend(),
                "SELECT CAST(pg_database_size(current_database()) AS BIGINT) AS v",
            );
            match db.reader().query_one_raw(stmt).await {
                Ok(Some(row)) => row.try_get::<i64>("", "v").unwrap_or(0) as f64 / 1e6,
                _ => f64::NAN,
            }
        }
    }
}

async fn run_case(backend: Backend, entries: u64, a: &Args) -> anyhow::Result<CaseResult> {
    let test_db = TestDb::create(backend).await?;
    let result = measure(&test_db, backend, entries, a).await;
    test_db.drop_db().await?;
    result
}

async fn measure(
    test_db: &TestDb,
    backend: Backend,
    entries: u64,
    a: &Args,
) -> anyhow::Result<CaseResult> {
    let name = backend_name(backend);
    let mut settings = settings_for(test_db);
    settings.database.connections_max = (a.concurrency as u32 + 2).max(8);
    let db = Db::connect(&settings.database).await?;
    db.migrate().await?;
    let tenant = tenants::service::create(
        &db,
        &Principal::Platform,
        NewTenant {
            slug: "bench".into(),
            name: "Bench".into(),
            timezone: chrono_tz::UTC,
            points_name: "points".into(),
            currency: "EUR".into(),
            branding: Branding::default(),
        },
    )
    .await?;

    println!(
        "\n== {name}: {entries} entries over {} members ==",
        a.members
    );
    let opts = SeedOptions {
        redeem_every: a.redeem_every,
        ..Default::default()
    };
    let seeded = seed::seed(&db, &tenant, a.members, entries, &opts).await?;
    println!(
        "seeded {} entries, {} lines, {} lots, {} holds in {:.1} s ({:.0} entries/s, {} transactions)",
        seeded.entries,
        seeded.lines,
        seeded.lots,
        seeded.holds,
        seeded.elapsed.as_secs_f64(),
        seeded.entries as f64 / seeded.elapsed.as_secs_f64().max(1e-9),
        seeded.transactions,
    );
    let t = Instant::now();
    db.reader().execute_unprepared("ANALYZE").await?;
    let size_mb = database_size_mb(&db, test_db).await;
    println!(
        "ANALYZE in {:.1} s; database {size_mb:.0} MB",
        t.elapsed().as_secs_f64()
    );

    let members = Arc::new(seeded.members);
    let mut phases = Vec::new();
    for op in Op::ALL {
        let r = run_phase(&db, &tenant, &members, op, a.ops, a.concurrency).await?;
        println!(
            "{:<8} {:>6} ops  {:>8.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  insufficient {}  errors {}",
            op.name(),
            r.ok + r.insufficient,
            r.ops_per_s(),
            r.percentile(0.50),
            r.percentile(0.99),
            r.percentile(1.0),
            r.insufficient,
            r.errors,
        );
        if let Some(e) = &r.first_error {
            println!("         first error: {e}");
        }
        phases.push(r);
    }

    let t = Instant::now();
    let violations = audit::audit(&db).await?;
    let audit_time = t.elapsed();
    println!(
        "audit: {} in {:.1} s",
        if violations.is_empty() {
            "ok, no violation".to_string()
        } else {
            format!(
                "{} VIOLATIONS, first: {:?}",
                violations.len(),
                violations[0]
            )
        },
        audit_time.as_secs_f64()
    );
    db.close().await;
    Ok(CaseResult {
        backend,
        entries,
        seed_time: seeded.elapsed,
        size_mb,
        phases,
        audit_time,
        violations: violations.len(),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    println!(
        "ledger throughput: histories {:?} entries over {} members, {} ops per kind, concurrency {}, {} cores",
        a.entries,
        a.members,
        a.ops,
        a.concurrency,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let started = Instant::now();
    let mut cases = Vec::new();
    for &backend in &a.backends {
        for &entries in &a.entries {
            cases.push(run_case(backend, entries, &a).await?);
        }
    }

    println!("\n| backend | history (entries) | seed | op | ops/s | p50 ms | p99 ms | errors |");
    println!("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |");
    for c in &cases {
        for p in &c.phases {
            println!(
                "| {} | {} | {:.0} s, {:.0} MB | {} | {:.0} | {:.2} | {:.2} | {} |",
                backend_name(c.backend),
                c.entries,
                c.seed_time.as_secs_f64(),
                c.size_mb,
                p.op.name(),
                p.ops_per_s(),
                p.percentile(0.50),
                p.percentile(0.99),
                p.errors,
            );
        }
    }
    println!();
    for c in &cases {
        println!(
            "audit {} {} entries: {} in {:.1} s",
            backend_name(c.backend),
            c.entries,
            if c.violations == 0 {
                "ok".to_string()
            } else {
                format!("{} violations", c.violations)
            },
            c.audit_time.as_secs_f64()
        );
    }
    println!("total {:.0} s", started.elapsed().as_secs_f64());
    if cases
        .iter()
        .any(|c| c.violations > 0 || c.phases.iter().any(|p| p.errors > 0))
    {
        bail!("errors or audit violations");
    }
    Ok(())
}
