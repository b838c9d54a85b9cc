//! `loyalty-bench`: a load generator for a running server, over HTTP GraphQL.
//!
//! With the PLATFORM key it creates its own tenant from the `fashion-tiers` template, issues
//! itself an ADMIN and an INTEGRATION key, and gets `--members` members: enrolled through
//! `enrollMember`, or (`--seed`) written in bulk by `ledger::seed` straight into the server's
//! database, with `--entries` ledger entries. None of that is timed as load.
//!
//! Then `--concurrency` tokio tasks send requests for `--duration-s` seconds, each picking an
//! operation by the `--mix` weights: `purchase` (`recordPurchase`, 1-10 random lines, a unique
//! order id), `balance` (`member { balance }`), `enroll` (`enrollMember`, a new external id),
//! `redeem` (`redeemReward` of the cheapest reward; `REWARD_UNAVAILABLE` and
//! `INSUFFICIENT_POINTS` are refusals, not errors). One pooled HTTP client (keep-alive) serves
//! all tasks. With `--server-pid`, the server's resident memory is sampled every 500 ms.
//!
//! Afterwards, with `--database-url`: the ledger audit over the whole database, and every
//! acknowledged purchase looked up in the bench tenant's `purchases`. The report ends with
//! one line, `purchases_per_s=N p99_ms=M errors=E audit=ok|failed|skipped` (see
//! [`Report::final_line`]).

pub mod mix;
pub mod rss;
pub mod verify;

mod gql;
mod report;
mod stats;

pub use mix::{DEFAULT_MIX, Mix, Op};
pub use report::{AuditStatus, ErrorSample, FinalLine, Report, SeedSummary};
pub use rss::RssSummary;
pub use stats::OpSummary;
pub use verify::{AuditResult, PurchaseCheck};

use anyhow::{Context as _, bail};
use gql::{Gql, Reply};
use loyalty_core::config::{DatabaseSettings, Secret};
use loyalty_core::db::Db;
use loyalty_core::ids::TenantId;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};
use stats::{OpStats, Outcome};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The command line of `loyalty-bench`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "loyalty-bench",
    about = "Drives a running loyalty server with realistic GraphQL traffic and reports \
             throughput, latency percentiles, errors and (with --database-url) the ledger audit",
    after_help = "The last line of stdout is `purchases_per_s=N p99_ms=M errors=E \
                  audit=ok|failed|skipped`. Exit code 0: no error and the audit passed (or was \
                  skipped); 1: errors or a failed audit; 2: the bench could not run."
)]
pub struct BenchArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The server's PLATFORM key (creates the bench tenant and its keys).
    #[arg(long, env = "LOYALTY_BENCH_KEY", hide_env_values = true)]
    pub key: String,
    /// Seconds of load.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub duration_s: u64,
    /// Concurrent request loops (tokio tasks) during the load, and during enrolment.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub concurrency: u64,
    /// Members of the bench tenant before the load starts.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub members: u64,
    /// Weights of the operations: `name=weight` pairs of purchase, balance, enroll, redeem.
    #[arg(long, default_value = DEFAULT_MIX)]
    pub mix: Mix,
    /// The server's database (`sqlite://...` or `postgres://...`): for --seed and the audit.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Write the members (and --entries ledger entries) in bulk into the database instead of
    /// enrolling them through the API.
    #[arg(long, requires = "database_url")]
    pub seed: bool,
    /// Load the existing tenant with this slug (a `bench-...` tenant an earlier run made)
    /// instead of making one: its members are read from --database-url, at most --members of
    /// them, and this run's order ids carry a prefix of their own. A 1M-member tenant is
    /// seeded once and loaded again as often as wanted.
    #[arg(long, requires = "database_url", conflicts_with = "seed")]
    pub tenant: Option<String>,
    /// Ledger entries to seed over the members (with --seed).
    #[arg(long, default_value_t = 0, requires = "seed")]
    pub entries: u64,
    /// The server's process id: report its resident memory (VmRSS) over the load.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Also print the report as JSON (before the last line).
    #[arg(long)]
    pub json: bool,
}

/// Business refusals of `redeemReward`: counted as `refused`, not as errors.
const REDEEM_REFUSALS: &[&str] = &["REWARD_UNAVAILABLE", "INSUFFICIENT_POINTS"];

/// Product categories of generated purchase lines.
const CATEGORIES: &[&str] = &["shoes", "dresses", "accessories", "knitwear", "bags"];

const CHANNELS: &[&str] = &["ONLINE", "STORE", "APP"];

const CREATE_TENANT: &str = "mutation($i: CreateTenantInput!) { createTenant(input: $i) { \
                             tenant { id slug currency } } }";
const CREATE_KEY: &str = "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret \
                          apiKey { id role } } }";
const CATALOGUE: &str = "{ catalogue { id name pointsCost active } }";
const ENROLL: &str =
    "mutation($i: EnrollMemberInput!) { enrollMember(input: $i) { member { id externalId } } }";
const PURCHASE: &str = "mutation($i: RecordPurchaseInput!) { recordPurchase(input: $i) { \
                        purchase { id orderId pointsEarned } awards { points plugin } \
                        pluginErrors { plugin code message } member { balance { available } } \
                        replayed } }";
const BALANCE: &str = "query($id: ID!) { member(id: $id) { balance { available pending held } } }";
const REDEEM: &str = "mutation($i: RedeemRewardInput!) { redeemReward(input: $i) { redemption \
                      { id code pointsCost } member { balance { available } } } }";

/// The tenant's currency (`createTenant(input: {currency})`).
const CURRENCY: &str = "EUR";

/// Runs the whole bench: setup, load, verification. `progress` receives a line per setup step.
/// An `Err` means the bench could not run (setup failed); failures of the load itself are in
/// the report ([`Report::failed`]).
pub async fn run(args: &BenchArgs, progress: &(dyn Fn(&str) + Sync)) -> anyhow::Result<Report> {
    let setup_started = Instant::now();
    // The parser enforces these; a caller building `BenchArgs` in code may not have.
    if args.duration_s == 0 || args.concurrency == 0 || args.members == 0 {
        bail!("--duration-s, --concurrency and --members must be at least 1");
    }
    if args.entries > 0 && !args.seed {
        bail!("--entries needs --seed");
    }
    let concurrency = usize::try_from(args.concurrency).context("--concurrency")?;
    let gql = Gql::new(&args.url, concurrency)?;
    let db = match &args.database_url {
        Some(url) => Some(connect(url).await?),
        None => None,
    };

    // The bench tenant and its keys.
    let run_id = format!("{:08x}", rand::rng().random::<u32>());
    let (slug, tenant_id, run_prefix, found) = match (&args.tenant, &db) {
        (Some(slug), Some(db)) => {
            let t = loyalty_core::tenants::repo::find_by_slug(db.reader(), slug)
                .await
                .context("looking up --tenant")?
                .with_context(|| format!("no tenant {slug:?} in the database at --database-url"))?;
            progress(&format!("tenant {slug} ({}), loaded again", t.id.0));
            let (id, prefix) = (t.id.0.to_string(), format!("{slug}-r{run_id}"));
            (slug.clone(), id, prefix, Some(t))
        }
        (Some(_), None) => bail!("--tenant needs --database-url"),
        (None, _) => {
            let slug = format!("bench-{run_id}");
            let tenant = gql
                .must(
                    &args.key,
                    "createTenant (is --key the PLATFORM key?)",
                    CREATE_TENANT,
                    json!({"i": {"slug": slug, "name": format!("Bench {run_id}"),
                                 "timezone": "Europe/Amsterdam", "currency": CURRENCY,
                                 "template": "fashion-tiers"}}),
                )
                .await?;
            let tenant_id = str_at(&tenant, &["createTenant", "tenant", "id"])
                .context("createTenant answered without a tenant id")?
                .to_string();
            progress(&format!(
                "tenant {slug} ({tenant_id}) from template fashion-tiers"
            ));
            (slug.clone(), tenant_id, slug, None)
        }
    };
    let tenant_uuid = TenantId::parse(&tenant_id)
        .with_context(|| format!("the tenant has a malformed id {tenant_id:?}"))?;
    let admin = issue_key(&gql, &args.key, &tenant_id, "ADMIN").await?;
    let integration = issue_key(&gql, &args.key, &tenant_id, "INTEGRATION").await?;
    let reward = cheapest_reward(&gql, &admin).await?;
    if reward.is_none() && args.mix.weight(Op::Redeem) > 0 {
        bail!("the bench tenant's catalogue has no active reward: set redeem=0 in --mix");
    }
    if let Some((id, name, cost)) = &reward {
        progress(&format!("redeem: {name:?} for {cost} points ({id})"));
    }

    let tenant_row = match (found, &db) {
        (Some(t), _) => Some(t),
        (None, Some(db)) => Some(
            loyalty_core::tenants::service::get(db, tenant_uuid)
                .await
                .with_context(|| {
                    format!(
                        "the bench tenant {slug} is not in the database at --database-url: \
                         is it the server's database?"
                    )
                })?,
        ),
        (None, None) => None,
    };

    // Members.
    let (members, seed) = match (&db, tenant_row, args.seed) {
        (Some(db), Some(tenant), false) if args.tenant.is_some() => {
            use loyalty_core::db::entities::members;
            use loyalty_core::members::MemberStatus;
            use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
            let ids: Vec<String> = members::Entity::find()
                .select_only()
                .column(members::Column::Id)
                .filter(members::Column::TenantId.eq(tenant.id.0))
                .filter(members::Column::Status.eq(MemberStatus::Active.as_str()))
                .limit(args.members)
                .into_tuple::<uuid::Uuid>()
                .all(db.reader())
                .await
                .context("reading the tenant's members")?
                .iter()
                .map(ToString::to_string)
                .collect();
            if ids.is_empty() {
                bail!("the tenant {slug} has no active member to load");
            }
            progress(&format!("{} members of {slug}", ids.len()));
            (ids, None)
        }
        (Some(db), Some(tenant), true) => {
            progress(&format!(
                "seeding {} members and {} ledger entries in bulk...",
                args.members, args.entries
            ));
            let opts = loyalty_core::ledger::seed::SeedOptions {
                external_id_prefix: slug.clone(),
                ..Default::default()
            };
            let seeded =
                loyalty_core::ledger::seed::seed(db, &tenant, args.members, args.entries, &opts)
                    .await
                    .context("seeding the bench tenant")?;
            let summary = SeedSummary::from(&seeded);
            progress(&format!(
                "seeded {} members, {} entries in {:.1} s ({:.0} entries/s)",
                summary.members, summary.entries, summary.elapsed_s, summary.entries_per_s
            ));
            let ids = seeded.members.iter().map(ToString::to_string).collect();
            (ids, Some(summary))
        }
        (_, _, true) => bail!("--seed needs --database-url"),
        (_, _, false) => {
            progress(&format!(
                "enrolling {} members through enrollMember...",
                args.members
            ));
            let started = Instant::now();
            let ids = enroll_members(&gql, &integration, &slug, args.members, concurrency).await?;
            let secs = started.elapsed().as_secs_f64();
            progress(&format!(
                "enrolled {} members in {secs:.1} s ({:.0}/s)",
                ids.len(),
                ids.len() as f64 / secs.max(1e-9)
            ));
            (ids, None)
        }
    };
    let setup_s = setup_started.elapsed().as_secs_f64();

    // Load.
    let sampler = match args.server_pid {
        Some(pid) => Some(rss::Sampler::start(pid)?),
        None => None,
    };
    progress(&format!(
        "load: {} s, {} tasks, mix {}",
        args.duration_s, args.concurrency, args.mix
    ));
    let shared = Arc::new(Shared {
        gql: gql.clone(),
        key: integration.clone(),
        members: members.clone(),
        reward: reward.map(|(id, _, _)| id),
        mix: args.mix,
        slug: run_prefix.clone(),
        deadline: Instant::now() + Duration::from_secs(args.duration_s),
    });
    let load_started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|task| tokio::spawn(work(Arc::clone(&shared), task)))
        .collect();
    let mut done = Worked::default();
    for w in workers {
        done.merge(w.await.context("a load task panicked")?);
    }
    let load = load_started.elapsed();
    let rss = match sampler {
        Some(s) => Some(s.finish().await?),
        None => None,
    };

    // Verification.
    let (purchase_check, purchase_check_error, audit) = match &db {
        Some(db) => {
            progress("verifying acknowledged purchases and auditing the ledger...");
            let (check, check_error) = match verify::purchases(
                db,
                tenant_uuid,
                &done.acknowledged,
                &format!("{run_prefix}-"),
            )
            .await
            {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(format!("{e:#}"))),
            };
            let audit = verify::audit(db).await;
            (check, check_error, Some(audit))
        }
        None => (None, None, None),
    };
    if let Some(db) = db {
        db.close().await;
    }

    Ok(Report::build(report::Parts {
        url: args.url.clone(),
        tenant_id,
        tenant_slug: slug,
        members: members.len() as u64,
        seed,
        setup_s,
        concurrency: args.concurrency,
        mix: args.mix.to_string(),
        duration_s: args.duration_s,
        load,
        stats: done.stats,
        plugin_errors: done.plugin_errors,
        plugin_error_sample: done.plugin_error_sample,
        rss,
        purchase_check,
        purchase_check_error,
        audit,
    }))
}

/// Connects to the server's database (a small pool: the bench only seeds and verifies).
async fn connect(url: &str) -> anyhow::Result<Db> {
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        bail!("--database-url must start with sqlite: or postgres://");
    }
    let settings = DatabaseSettings {
        url: Secret::new(url),
        connections_max: 4,
        ..Default::default()
    };
    Db::connect(&settings)
        .await
        .context("connecting to --database-url")
}

/// The string at `path` inside `v`.
fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_str()
}

async fn issue_key(gql: &Gql, platform: &str, tenant: &str, role: &str) -> anyhow::Result<String> {
    let data = gql
        .must(
            platform,
            &format!("createApiKey {role}"),
            CREATE_KEY,
            json!({"i": {"tenantId": tenant, "role": role, "name": format!("loyalty-bench {role}")}}),
        )
        .await?;
    str_at(&data, &["createApiKey", "secret"])
        .map(str::to_string)
        .with_context(|| format!("createApiKey {role} answered without a secret"))
}

/// `(id, name, points cost)` of the cheapest active reward.
async fn cheapest_reward(gql: &Gql, admin: &str) -> anyhow::Result<Option<(String, String, i64)>> {
    let data = gql.must(admin, "catalogue", CATALOGUE, json!({})).await?;
    let rewards = data["catalogue"]
        .as_array()
        .context("catalogue answered without a list")?;
    Ok(rewards
        .iter()
        .filter(|r| r["active"] == true)
        .filter_map(|r| {
            Some((
                r["id"].as_str()?.to_string(),
                r["name"].as_str()?.to_string(),
                r["pointsCost"].as_i64()?,
            ))
        })
        .min_by_key(|(_, _, cost)| *cost))
}

/// Enrols `count` members with the external ids `{prefix}-{n}` from `concurrency` tasks;
/// returns their ids in the order of `n`.
async fn enroll_members(
    gql: &Gql,
    key: &str,
    prefix: &str,
    count: u64,
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..concurrency.min(usize::try_from(count).unwrap_or(usize::MAX)))
        .map(|_| {
            let (gql, key, prefix) = (gql.clone(), key.to_string(), prefix.to_string());
            let (next, failed) = (Arc::clone(&next), Arc::clone(&failed));
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count || failed.load(Ordering::Relaxed) {
                        return Ok::<_, anyhow::Error>(got);
                    }
                    let external = format!("{prefix}-{n}");
                    let input = json!({"externalId": external, "channel": "web",
                                       "idempotencyKey": format!("{external}-enrol")});
                    let data = gql
                        .must(
                            &key,
                            &format!("enrollMember {external}"),
                            ENROLL,
                            json!({"i": input}),
                        )
                        .await
                        .inspect_err(|_| failed.store(true, Ordering::Relaxed))?;
                    let id =
                        str_at(&data, &["enrollMember", "member", "id"]).with_context(|| {
                            format!("enrollMember {external} answered without an id")
                        })?;
                    got.push((n, id.to_string()));
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut first_error = None;
    for t in tasks {
        match t.await.context("an enrolment task panicked")? {
            Ok(got) => all.extend(got),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e.context("enrolling the bench members"));
    }
    all.sort_unstable_by_key(|(n, _)| *n);
    Ok(all.into_iter().map(|(_, id)| id).collect())
}

/// What every load task reads.
struct Shared {
    gql: Gql,
    /// The INTEGRATION key.
    key: String,
    members: Vec<String>,
    reward: Option<String>,
    mix: Mix,
    slug: String,
    deadline: Instant,
}

/// What one load task did.
#[derive(Default)]
struct Worked {
    stats: [OpStats; 4],
    /// Order ids answered with data and no errors.
    acknowledged: Vec<String>,
    /// Purchases recorded with a failed point rule (`pluginErrors`).
    plugin_errors: u64,
    plugin_error_sample: Option<String>,
}

impl Worked {
    fn merge(&mut self, other: Worked) {
        for (mine, theirs) in self.stats.iter_mut().zip(other.stats) {
            mine.merge(theirs);
        }
        self.acknowledged.extend(other.acknowledged);
        self.plugin_errors += other.plugin_errors;
        if self.plugin_error_sample.is_none() {
            self.plugin_error_sample = other.plugin_error_sample;
        }
    }
}

/// One load task: operations by the mix until the deadline.
async fn work(s: Arc<Shared>, task: usize) -> Worked {
    let mut rng = StdRng::from_os_rng();
    let mut out = Worked::default();
    let total = s.mix.total();
    let mut n = 0u64;
    while Instant::now() < s.deadline {
        n += 1;
        let op = s.mix.pick(rng.random_range(0..total));
        let started = Instant::now();
        let outcome = match op {
            Op::Purchase => purchase(&s, &mut rng, task, n, &mut out).await,
            Op::Balance => balance(&s, &mut rng).await,
            Op::Enroll => enroll(&s, task, n).await,
            Op::Redeem => redeem(&s, &mut rng, task, n).await,
        };
        out.stats[op.index()].record(started.elapsed(), outcome);
    }
    out
}

fn random_member<'a>(s: &'a Shared, rng: &mut StdRng) -> &'a str {
    &s.members[rng.random_range(0..s.members.len())]
}

/// A purchase of 1-10 random lines for a random member; `total` is the sum of the lines.
fn purchase_input(member: &str, order: &str, rng: &mut StdRng) -> Value {
    let lines: Vec<Value> = (0..rng.random_range(1..=10))
        .map(|_| {
            let category = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
            json!({"sku": format!("{}-{:03}", category.to_uppercase(), rng.random_range(0..200)),
                   "category": category,
                   "quantity": rng.random_range(1..=3i64),
                   "unitPrice": rng.random_range(500..=12_000i64)})
        })
        .collect();
    let total: i64 = lines
        .iter()
        .map(|l| l["quantity"].as_i64().unwrap_or(0) * l["unitPrice"].as_i64().unwrap_or(0))
        .sum();
    json!({"orderId": order, "memberId": member, "currency": CURRENCY, "total": total,
           "channel": CHANNELS[rng.random_range(0..CHANNELS.len())], "lines": lines})
}

async fn purchase(s: &Shared, rng: &mut StdRng, task: usize, n: u64, out: &mut Worked) -> Outcome {
    let order = format!("{}-{task}-{n}", s.slug);
    let input = purchase_input(random_member(s, rng), &order, rng);
    match s.gql.send(&s.key, PURCHASE, json!({"i": input})).await {
        Reply::Data(d) => {
            let p = &d["recordPurchase"];
            if p["purchase"]["orderId"].as_str() != Some(order.as_str()) {
                return Outcome::Error(format!("answered another order: {p}"));
            }
            out.acknowledged.push(order);
            if let Some(first) = p["pluginErrors"].as_array().and_then(|e| e.first()) {
                out.plugin_errors += 1;
                out.plugin_error_sample
                    .get_or_insert_with(|| first.to_string());
            }
            if p["replayed"] != false {
                return Outcome::Error("a new order id was answered as a replay".into());
            }
            Outcome::Ok
        }
        other => Outcome::Error(other.describe()),
    }
}

async fn balance(s: &Shared, rng: &mut StdRng) -> Outcome {
    let member = random_member(s, rng).to_string();
    match s.gql.send(&s.key, BALANCE, json!({"id": member})).await {
        Reply::Data(d) if d["member"]["balance"]["available"].is_i64() => Outcome::Ok,
        Reply::Data(d) => Outcome::Error(format!("no balance in the answer: {d}")),
        other => Outcome::Error(other.describe()),
    }
}

async fn enroll(s: &Shared, task: usize, n: u64) -> Outcome {
    let external = format!("{}-load-{task}-{n}", s.slug);
    let input = json!({"externalId": external, "channel": "web"});
    match s.gql.send(&s.key, ENROLL, json!({"i": input})).await {
        Reply::Data(d) if d["enrollMember"]["member"]["id"].is_string() => Outcome::Ok,
        Reply::Data(d) => Outcome::Error(format!("no member id in the answer: {d}")),
        other => Outcome::Error(other.describe()),
    }
}

async fn redeem(s: &Shared, rng: &mut StdRng, task: usize, n: u64) -> Outcome {
    let Some(reward) = &s.reward else {
        return Outcome::Error("no reward to redeem".into());
    };
    let member = random_member(s, rng).to_string();
    let input = json!({"memberId": member, "rewardId": reward, "quantity": 1,
                       "idempotencyKey": format!("{}-redeem-{task}-{n}", s.slug)});
    match s.gql.send(&s.key, REDEEM, json!({"i": input})).await {
        Reply::Data(d) if d["redeemReward"]["redemption"]["code"].is_string() => Outcome::Ok,
        Reply::Data(d) => Outcome::Error(format!("no redemption code in the answer: {d}")),
        Reply::Refused { code, .. } if REDEEM_REFUSALS.contains(&code.as_str()) => Outcome::Refused,
        other => Outcome::Error(other.describe()),
    }
}
