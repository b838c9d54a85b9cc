//! `loyalty-bench` against a real server on both backends: a short load through the library
//! (purchases acknowledged and all stored, no error, a clean audit, the server's memory
//! sampled), the binary itself (exit code, JSON, the final line last), `--seed` (members and
//! entries written in bulk, then used by the load), `--tenant` (the seeded tenant loaded
//! again), and the command line's refusals.

use clap::Parser as _;
use loyalty_core::db::entities::{members, purchases};
use loyalty_tests::bench::{self, AuditStatus, BenchArgs, FinalLine, Op, Report};
use loyalty_tests::{Backend, PLATFORM_KEY, TestServer, both_backends};
use sea_orm::{ColumnTrait, Database, EntityTrait, PaginatorTrait, QueryFilter};

both_backends!(
    short_load_is_clean_and_every_purchase_is_stored,
    the_binary_prints_the_final_line_last,
    seeded_members_carry_the_load,
);

/// Arguments as the command line would give them, against `s`.
fn args(s: &TestServer, extra: &[&str]) -> BenchArgs {
    let url = s.url("");
    let db = s.database_url();
    let mut argv = vec![
        "loyalty-bench",
        "--url",
        &url,
        "--key",
        PLATFORM_KEY,
        "--database-url",
        &db,
    ];
    argv.extend_from_slice(extra);
    BenchArgs::try_parse_from(argv).expect("valid arguments")
}

async fn run(args: &BenchArgs) -> Report {
    let report = bench::run(args, &|line| eprintln!("{line}"))
        .await
        .expect("the bench runs");
    eprintln!("{}", report.output(false).expect("output"));
    report
}

fn tenant_uuid(report: &Report) -> uuid::Uuid {
    uuid::Uuid::parse_str(&report.tenant_id).expect("tenant id")
}

/// Purchases and members of the bench tenant, counted in the database by the test itself.
async fn counts(s: &TestServer, report: &Report) -> (u64, u64) {
    let conn = Database::connect(s.database_url()).await.expect("database");
    let tenant = tenant_uuid(report);
    let stored = purchases::Entity::find()
        .filter(purchases::Column::TenantId.eq(tenant))
        .count(&conn)
        .await
        .expect("count purchases");
    let enrolled = members::Entity::find()
        .filter(members::Column::TenantId.eq(tenant))
        .count(&conn)
        .await
        .expect("count members");
    conn.close().await.expect("close");
    (stored, enrolled)
}

async fn short_load_is_clean_and_every_purchase_is_stored(b: Backend) {
    let s = TestServer::start(b).await;
    let pid = std::process::id().to_string();
    let a = args(
        &s,
        &[
            "--duration-s",
            "2",
            "--concurrency",
            "4",
            "--members",
            "20",
            "--server-pid",
            &pid,
        ],
    );
    let report = run(&a).await;

    assert_eq!(report.members, 20);
    assert!(report.seed.is_none());
    let purchase = report.op(Op::Purchase).expect("purchases were sent");
    assert!(purchase.ok > 0, "no purchase acknowledged: {report:#?}");
    assert_eq!(report.errors, 0, "{report}");
    assert!(report.ops.iter().all(|o| o.errors == 0), "{report}");
    assert!(
        purchase.p50_ms > 0.0 && purchase.p50_ms <= purchase.p99_ms,
        "{purchase:?}"
    );
    assert!(purchase.p99_ms <= purchase.max_ms, "{purchase:?}");
    // The default mix sends every kind in 2 s at this rate; each one answered.
    let balance = report.op(Op::Balance).expect("balances were read");
    assert_eq!(balance.ok, balance.count);

    // Every acknowledged purchase is stored exactly once, and nothing else was stored.
    let check = report.purchases.as_ref().expect("purchases verified");
    assert_eq!(check.acknowledged, purchase.ok);
    assert_eq!(check.present, check.acknowledged);
    assert_eq!((check.missing, check.duplicated), (0, 0));
    let (stored, enrolled) = counts(&s, &report).await;
    assert_eq!(stored, purchase.ok);
    let enrolled_in_load = report.op(Op::Enroll).map_or(0, |o| o.ok);
    assert_eq!(enrolled, 20 + enrolled_in_load);

    let audit = report.audit.as_ref().expect("audit ran");
    assert!(audit.ok(), "{audit:#?}");
    assert_eq!(report.audit_status, AuditStatus::Ok);
    assert!(!report.failed());

    // The test server runs in this process: its memory was sampled.
    let rss = report.rss.as_ref().expect("RSS sampled");
    assert!(rss.samples >= 3, "{rss:?}");
    assert!(rss.start_mib > 0.0 && rss.peak_mib >= rss.start_mib && rss.peak_mib >= rss.end_mib);

    let line: FinalLine = report.final_line().parse().expect("final line parses");
    assert_eq!(line.errors, 0);
    assert_eq!(line.audit, AuditStatus::Ok);
    assert_eq!(line.purchases_per_s, purchase.per_s.round() as u64);
    assert!(line.purchases_per_s > 0);
    assert!((line.p99_ms - purchase.p99_ms).abs() <= 0.05);
    let out = report.output(true).expect("output");
    assert_eq!(out.lines().last(), Some(report.final_line().as_str()));
    s.finish().await;
}

async fn the_binary_prints_the_final_line_last(b: Backend) {
    let s = TestServer::start(b).await;
    let url = s.url("");
    let db = s.database_url();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_loyalty-bench"))
        .args(["--url", &url, "--database-url", &db, "--json"])
        .args(["--duration-s", "1", "--concurrency", "2", "--members", "5"])
        .env("LOYALTY_BENCH_KEY", PLATFORM_KEY)
        .output()
        .await
        .expect("loyalty-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    let last = stdout.lines().last().expect("some output");
    let line: FinalLine = last.parse().expect("the last line is the final line");
    assert_eq!((line.errors, line.audit), (0, AuditStatus::Ok), "{stdout}");
    assert!(line.purchases_per_s > 0, "{stdout}");
    // The JSON report sits between the table and the final line.
    let json_start = stdout.find("\n{").expect("JSON report") + 1;
    let json_end = stdout.rfind("\n}").expect("JSON report end") + 2;
    let v: serde_json::Value =
        serde_json::from_str(&stdout[json_start..json_end]).expect("JSON parses");
    assert_eq!(v["errors"], 0);
    assert_eq!(v["audit_status"], "ok");
    assert_eq!(v["members"], 5);
    assert!(stderr.contains("enrolled 5 members"), "{stderr}");

    // A key that is not the platform key: the bench cannot run (exit 2) and says why.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_loyalty-bench"))
        .args(["--url", &url, "--key", "lp_not_the_platform_key"])
        .output()
        .await
        .expect("loyalty-bench runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("createTenant"), "{stderr}");
    assert!(stderr.contains("UNAUTHENTICATED"), "{stderr}");
    s.finish().await;
}

async fn seeded_members_carry_the_load(b: Backend) {
    let s = TestServer::start(b).await;
    let a = args(
        &s,
        &[
            "--seed",
            "--members",
            "50",
            "--entries",
            "500",
            "--duration-s",
            "2",
            "--concurrency",
            "4",
            "--mix",
            "purchase=50,balance=30,redeem=20",
        ],
    );
    let report = run(&a).await;

    assert_eq!(report.members, 50);
    let seed = report.seed.as_ref().expect("seeded");
    assert_eq!((seed.members, seed.entries), (50, 500));
    assert!(seed.holds > 0, "{seed:?}");
    // The seeded members are in the database and are who the load used.
    let (stored, members) = counts(&s, &report).await;
    assert_eq!(members, 50);
    let purchase = report.op(Op::Purchase).expect("purchases");
    assert!(purchase.ok > 0);
    assert_eq!(stored, purchase.ok);
    let redeem = report.op(Op::Redeem).expect("redemptions");
    assert_eq!(redeem.ok + redeem.refused, redeem.count, "{report}");
    assert!(report.op(Op::Enroll).is_none());
    assert_eq!(report.errors, 0, "{report}");
    assert_eq!(report.audit_status, AuditStatus::Ok, "{report}");
    let line: FinalLine = report.final_line().parse().expect("final line");
    assert_eq!((line.errors, line.audit), (0, AuditStatus::Ok));

    // `--tenant` loads the same tenant again, without a seed: its members, the new run's
    // purchases under order ids of their own (checked by the run), nothing of the first lost.
    let again = args(
        &s,
        &[
            "--tenant",
            &report.tenant_slug,
            "--members",
            "40",
            "--duration-s",
            "2",
            "--concurrency",
            "4",
            "--mix",
            "purchase=80,redeem=20",
        ],
    );
    let second = run(&again).await;
    assert_eq!(second.tenant_id, report.tenant_id);
    assert_eq!(second.members, 40);
    assert!(second.seed.is_none());
    let more = second.op(Op::Purchase).expect("purchases").ok;
    assert!(more > 0, "{second}");
    let check = second.purchases.as_ref().expect("checked");
    assert_eq!((check.missing, check.duplicated), (0, 0), "{second}");
    assert_eq!(check.stored_unacknowledged, 0, "{second}");
    assert_eq!((second.errors, second.audit_status), (0, AuditStatus::Ok));
    let (stored_after, members_after) = counts(&s, &second).await;
    assert_eq!((stored_after, members_after), (stored + more, 50));
    let missing = args(&s, &["--tenant", "bench-none", "--duration-s", "1"]);
    let err = bench::run(&missing, &|_| {})
        .await
        .expect_err("no such tenant");
    assert!(
        format!("{err:#}").contains("no tenant \"bench-none\""),
        "{err:#}"
    );
    s.finish().await;
}

fn parse(argv: &[&str]) -> Result<BenchArgs, String> {
    let mut all = vec!["loyalty-bench", "--key", "k"];
    all.extend_from_slice(argv);
    BenchArgs::try_parse_from(all).map_err(|e| e.to_string())
}

#[test]
fn defaults_are_the_documented_ones() {
    let a = parse(&[]).expect("defaults");
    assert_eq!(a.url, "http://127.0.0.1:8080");
    assert_eq!((a.duration_s, a.concurrency, a.members), (60, 32, 1000));
    assert_eq!(a.mix.to_string(), bench::DEFAULT_MIX);
    assert!(a.database_url.is_none() && !a.seed && a.entries == 0 && !a.json);
}

#[test]
fn bad_command_lines_are_refused() {
    let err = |argv: &[&str]| match parse(argv) {
        Ok(a) => panic!("{argv:?} accepted: {a:?}"),
        Err(e) => e,
    };
    assert!(err(&["--mix", "purchase=70,refund=5"]).contains("unknown operation \"refund\""));
    assert!(err(&["--mix", "purchase=0,balance=0"]).contains("every weight of the mix is 0"));
    assert!(err(&["--mix", "purchase=lots"]).contains("whole number"));
    assert!(err(&["--mix", ""]).contains("empty"));
    assert!(err(&["--seed"]).contains("--database-url"));
    assert!(err(&["--entries", "10"]).contains("--seed"));
    assert!(err(&["--tenant", "bench-x"]).contains("--database-url"));
    let both = [
        "--tenant",
        "bench-x",
        "--seed",
        "--database-url",
        "sqlite://x.db",
    ];
    assert!(err(&both).contains("cannot be used with"));
    assert!(err(&["--concurrency", "0"]).contains("--concurrency"));
    assert!(err(&["--duration-s", "0"]).contains("--duration-s"));
    let ok = parse(&[
        "--mix",
        "balance=1",
        "--seed",
        "--database-url",
        "sqlite://x.db",
        "--entries",
        "5",
    ])
    .expect("valid");
    assert_eq!(ok.mix.weight(Op::Balance), 1);
    assert_eq!(ok.mix.weight(Op::Purchase), 0);
}
