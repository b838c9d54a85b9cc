//! Tiers end to end on both backends (issue 6): ladders per tenant (validated, versioned,
//! idempotent, ADMIN only); a new member in the lowest tier; upgrades in the transaction of the
//! event that crosses a threshold (that event earns at the old multiplier, the next one at the
//! new); reviews at period end plus grace in the tenant's time zone (rolling months, calendar
//! years, lifetime, a DST change, Auckland against UTC), going down at most `stepsMax` ranks;
//! the three metrics, returns lowering the value without an immediate downgrade; manual
//! assignments that are a floor until they end; ladder changes re-evaluated in bounded batches
//! while purchases go on; rewards for a minimum tier; the outbox; the fashion-tiers template.
//! A manual clock drives every period end and grace, and the jobs run only when a test says so.

use chrono::{DateTime, Duration, Utc};
use loyalty_tests::{Backend, PLATFORM_KEY, TestServer, both_backends, code, field};
use serde_json::{Value, json};

both_backends!(
    ladders_are_validated_idempotent_and_admin_only,
    a_new_member_starts_in_the_lowest_tier,
    the_crossing_purchase_upgrades_in_its_transaction,
    rolling_reviews_come_after_grace_one_step_at_a_time,
    local_months_and_grace_days_across_a_dst_change,
    calendar_years_follow_the_tenant_time_zone,
    a_calendar_year_tier_is_reviewed_on_1_january_plus_grace,
    purchase_count_falls_with_a_full_return_but_downgrades_only_at_review,
    points_earned_counts_rule_awards_and_enrolment_can_upgrade,
    manual_assignment_is_a_floor_until_it_ends,
    a_ladder_change_reevaluates_members_in_batches,
    rewards_with_a_min_tier_need_that_rank,
    fashion_tiers_template_has_a_ladder,
    the_first_ladder_counts_the_history_before_it,
    concurrent_purchases_earn_what_they_would_one_after_another,
);

/// `extensions.code` of refused input. The tiers spec says VALIDATION_FAILED; this server has one
/// code for `AppError::Validation`, `VALIDATION` (README, error.rs, every other test).
const INVALID: &str = "VALIDATION";

const TIER: &str = "name rank threshold invitationOnly benefits multiplier";
const REEVALUATION: &str = "id ladderVersion status membersTotal membersDone upgraded downgraded \
                            startedAt finishedAt";
const MEMBER_TIER: &str = "name rank benefits multiplier since source assignedUntil reviewAt";
const CHANGE: &str = "from to direction source reason metricValue ladderVersion at";

const RECORD: &str = "mutation($i: RecordPurchaseInput!) { recordPurchase(input: $i) { purchase { \
                      orderId total } awards { points plugin } pluginErrors { plugin code message \
                      } member { id tier { name source since } balance { available } } } }";
const RETURN: &str = "mutation($i: RecordReturnInput!) { recordReturn(input: $i) { purchaseReturn \
                      { amount pointsClawedBack } member { id tier { name } } } }";
const EVENTS: &str = "query($t: String, $m: ID) { events(first: 100, type: $t, memberId: $m) { \
                      edges { node { id type memberId payload createdAt } } } }";
const BIND: &str = "mutation($i: BindPluginInput!) { bindPlugin(input: $i) { binding { id plugin { \
                    name } } } }";
const CREATE_TENANT: &str =
    "mutation($i: CreateTenantInput!) { createTenant(input: $i) { tenant { id slug } } }";
const ADJUST: &str = "mutation($i: AdjustPointsInput!) { adjustPoints(input: $i) { entry { id \
                      points } } }";
const CREATE_REWARD: &str = "mutation($i: CreateRewardInput!) { createReward(input: $i) { reward { \
                             id name minTier } } }";
const REDEEM: &str = "mutation($i: RedeemRewardInput!) { redeemReward(input: $i) { redemption { \
                      status pointsCost } member { balance { available } } } }";
const OFFERS: &str = "query($m: ID!) { rewards(memberId: $m) { reward { id } canRedeem reason } }";

const UNKNOWN_ID: &str = "0190f8a0-0000-7000-8000-000000000001";

fn ladder_fields() -> String {
    format!(
        "version metric window {{ kind months }} downgrade {{ graceDays stepsMax }} tiers {{ \
         {TIER} }} definedAt reevaluation {{ {REEVALUATION} }}"
    )
}

fn define_query() -> String {
    format!(
        "mutation($i: DefineTiersInput!) {{ defineTiers(input: $i) {{ ladder {{ {} }} \
         reevaluation {{ {REEVALUATION} }} }} }}",
        ladder_fields()
    )
}

fn ladder_query() -> String {
    format!("{{ tierLadder {{ {} }} }}", ladder_fields())
}

fn standing_query() -> String {
    format!(
        "query($id: ID!, $f: Int, $a: String) {{ member(id: $id) {{ id tier {{ {MEMBER_TIER} }} \
         tierProgress {{ current {{ {TIER} }} next {{ {TIER} }} metric metricValue needed \
         periodEndsAt keepNeeded }} tierHistory(first: $f, after: $a) {{ edges {{ cursor node {{ \
         {CHANGE} }} }} pageInfo {{ hasNextPage endCursor }} }} }} }}"
    )
}

fn assign_query() -> String {
    format!(
        "mutation($i: AssignTierInput!) {{ assignTier(input: $i) {{ member {{ id tier {{ \
         {MEMBER_TIER} }} }} }} }}"
    )
}

// ---------------------------------------------------------------------------------------------
// Time and jobs

fn at(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("{t}: {e}"))
        .with_timezone(&Utc)
}

fn time(v: &Value) -> DateTime<Utc> {
    at(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
}

fn assert_time(v: &Value, expected: &str, what: &str) {
    assert_eq!(time(v), at(expected), "{what}: {v}");
}

fn set_clock(s: &TestServer, t: &str) {
    s.clock().set(at(t));
}

/// Moves the clock to `t` and runs every background job there until nothing is due.
async fn jobs_at(s: &TestServer, t: &str) {
    set_clock(s, t);
    s.run_jobs().await;
}

/// One run of the tier job at the clock's now, as the in-server runner does it: due reviews
/// and one batch of `jobs.batch_max` members of each running re-evaluation (`run_jobs` runs
/// batches until idle). Returns how many members it re-evaluated.
async fn tier_job_once(s: &TestServer) -> u64 {
    let app = s.app();
    loyalty_core::tiers::jobs::run_batch(&app.db, app.settings.jobs.batch_max, s.clock().now())
        .await
        .expect("tier job runs")
        .reevaluated
}

// ---------------------------------------------------------------------------------------------
// Tenants, plugins, ladders

/// A tenant in `timezone` (optionally from a club template) and an ADMIN key: `(id, key)`.
async fn tenant_in(
    s: &TestServer,
    slug: &str,
    timezone: &str,
    template: Option<&str>,
) -> (String, String) {
    let mut input = json!({"slug": slug, "name": format!("Club {slug}"), "timezone": timezone});
    if let Some(t) = template {
        input["template"] = json!(t);
    }
    let data = s.ok(PLATFORM_KEY, CREATE_TENANT, json!({"i": input})).await;
    let id = data["createTenant"]["tenant"]["id"]
        .as_str()
        .expect("tenant id")
        .to_string();
    let admin = s.key(PLATFORM_KEY, &id, "ADMIN").await;
    (id, admin)
}

/// The id of the plugin version called `name` that this tenant can use.
async fn plugin_id(s: &TestServer, key: &str, name: &str) -> String {
    let data = s
        .ok(key, "{ plugins { id name version kind } }", json!({}))
        .await;
    data["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["id"].as_str())
        .unwrap_or_else(|| panic!("{name} is not listed: {data:#}"))
        .to_string()
}

/// Binds the bundled plugin called `name` with `config` at `priority`.
async fn bind(s: &TestServer, key: &str, name: &str, config: Value, priority: i64) {
    let id = plugin_id(s, key, name).await;
    let input =
        json!({"pluginVersionId": id, "config": config, "priority": priority, "enabled": true});
    let data = s.ok(key, BIND, json!({"i": input})).await;
    assert_eq!(data["bindPlugin"]["binding"]["plugin"]["name"], name);
}

/// base-rate and tier-multiplier at a point per whole euro: a purchase earns its euros, plus
/// (multiplier - 1) times that from tier-multiplier.
async fn bind_euro_rules(s: &TestServer, key: &str) {
    let rate = json!({"points_per_unit": 1, "unit_minor": 100, "rounding": "floor"});
    bind(s, key, "base-rate", rate, 0).await;
    let multiplier = json!({"points_per_unit": 1, "unit_minor": 100});
    bind(s, key, "tier-multiplier", multiplier, 10).await;
}

fn tier(name: &str, threshold: Option<i64>, multiplier: f64, benefits: &[&str]) -> Value {
    json!({"name": name, "threshold": threshold, "multiplier": multiplier, "benefits": benefits})
}

/// bronze 0 (1x), silver (1.5x, free shipping), gold (2x, free shipping and early access).
fn three(silver: i64, gold: i64) -> Vec<Value> {
    vec![
        tier("bronze", Some(0), 1.0, &[]),
        tier("silver", Some(silver), 1.5, &["free shipping"]),
        tier("gold", Some(gold), 2.0, &["free shipping", "early access"]),
    ]
}

fn rolling(months: i64) -> Value {
    json!({"kind": "ROLLING_MONTHS", "months": months})
}

fn calendar_year() -> Value {
    json!({"kind": "CALENDAR_YEAR"})
}

fn lifetime() -> Value {
    json!({"kind": "LIFETIME"})
}

/// A `DefineTiersInput`; `downgrade` is `(graceDays, stepsMax)`.
fn ladder(metric: &str, window: Value, downgrade: (i64, i64), tiers: Vec<Value>) -> Value {
    json!({"metric": metric, "window": window, "tiers": tiers,
           "downgrade": {"graceDays": downgrade.0, "stepsMax": downgrade.1}})
}

/// A copy of `base` changed by `f`.
fn with(base: &Value, f: impl FnOnce(&mut Value)) -> Value {
    let mut v = base.clone();
    f(&mut v);
    v
}

async fn define_raw(s: &TestServer, key: &str, input: Value) -> Value {
    s.gql(Some(key), &define_query(), json!({"i": input})).await
}

/// Defines the tenant's ladder; the `defineTiers` payload.
async fn define(s: &TestServer, key: &str, input: Value) -> Value {
    s.ok(key, &define_query(), json!({"i": input})).await["defineTiers"].clone()
}

/// `tierLadder` (null before the first `defineTiers`).
async fn ladder_of(s: &TestServer, key: &str) -> Value {
    s.ok(key, &ladder_query(), json!({})).await["tierLadder"].clone()
}

// ---------------------------------------------------------------------------------------------
// Members, purchases, returns

fn nodes(connection: &Value) -> Vec<Value> {
    connection["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("edges: {connection}"))
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// The member with `tier`, `tierProgress` and the first 50 rows of `tierHistory`.
async fn standing(s: &TestServer, key: &str, member: &str) -> Value {
    s.ok(key, &standing_query(), json!({"id": member, "f": 50}))
        .await["member"]
        .clone()
}

/// The member's tier changes, newest first.
fn changes(m: &Value) -> Vec<Value> {
    nodes(&m["tierHistory"])
}

async fn tier_of(s: &TestServer, key: &str, member: &str) -> String {
    let m = standing(s, key, member).await;
    m["tier"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("no tier: {m:#}"))
        .to_string()
}

/// Asserts the member's tier and how many tier changes they have had; returns the member.
async fn expect_tier(
    s: &TestServer,
    key: &str,
    member: &str,
    name: &str,
    changes_len: usize,
    what: &str,
) -> Value {
    let m = standing(s, key, member).await;
    assert_eq!(m["tier"]["name"], name, "{what}: {m:#}");
    assert_eq!(changes(&m).len(), changes_len, "{what}: {m:#}");
    m
}

/// The fields of `v` named in `keys`, as an object.
fn pick(v: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .map(|k| ((*k).to_string(), v[*k].clone()))
            .collect(),
    )
}

const CHANGE_KEYS: &[&str] = &["from", "to", "direction", "source", "metricValue"];

/// A tier change as `tierHistory` shows it (the fields of [`CHANGE_KEYS`]).
fn change(from: &str, to: &str, direction: &str, source: &str, metric_value: i64) -> Value {
    json!({"from": from, "to": to, "direction": direction, "source": source,
           "metricValue": metric_value})
}

fn assert_change(c: &Value, expected: Value) {
    assert_eq!(pick(c, CHANGE_KEYS), expected, "{c:#}");
}

const MOVE_KEYS: &[&str] = &["from", "to", "source", "metricValue"];

/// A `tier.upgraded` / `tier.downgraded` payload (the fields of [`MOVE_KEYS`]).
fn moved(from: &str, to: &str, source: &str, metric_value: i64) -> Value {
    json!({"from": from, "to": to, "source": source, "metricValue": metric_value})
}

/// The payloads of the member's outbox events of `kind`, oldest first (fields of [`MOVE_KEYS`]).
async fn tier_events(s: &TestServer, key: &str, kind: &str, member: &str) -> Vec<Value> {
    let data = s.ok(key, EVENTS, json!({"t": kind, "m": member})).await;
    nodes(&data["events"])
        .iter()
        .map(|e| {
            assert_eq!(e["type"], kind, "{e:#}");
            assert_eq!(e["memberId"], member, "{e:#}");
            pick(&e["payload"], MOVE_KEYS)
        })
        .collect()
}

/// A purchase of one line worth `total`, by member id, at the clock's now.
fn purchase(member: &str, order: &str, total: i64) -> Value {
    json!({"orderId": order, "memberId": member, "currency": "EUR", "total": total,
           "channel": "ONLINE",
           "lines": [{"sku": "A", "category": null, "quantity": 1, "unitPrice": total}]})
}

/// Records a purchase that must succeed without plugin errors; the `recordPurchase` payload.
async fn buy(s: &TestServer, key: &str, member: &str, order: &str, total: i64) -> Value {
    let p = s
        .ok(key, RECORD, json!({"i": purchase(member, order, total)}))
        .await["recordPurchase"]
        .clone();
    assert_eq!(p["pluginErrors"], json!([]), "{p:#}");
    p
}

/// Returns `amount` of `order` (a refund by amount); the `recordReturn` payload.
async fn give_back(s: &TestServer, key: &str, order: &str, return_id: &str, amount: i64) -> Value {
    let input = json!({"orderId": order, "returnId": return_id, "amount": amount});
    s.ok(key, RETURN, json!({"i": input})).await["recordReturn"].clone()
}

/// All points a purchase earned.
fn points(p: &Value) -> i64 {
    p["awards"]
        .as_array()
        .unwrap_or_else(|| panic!("awards: {p:#}"))
        .iter()
        .map(|a| a["points"].as_i64().expect("points"))
        .sum()
}

/// The points a purchase earned from `plugin`.
fn points_of(p: &Value, plugin: &str) -> i64 {
    p["awards"]
        .as_array()
        .unwrap_or_else(|| panic!("awards: {p:#}"))
        .iter()
        .filter(|a| a["plugin"] == plugin)
        .map(|a| a["points"].as_i64().expect("points"))
        .sum()
}

/// Gives `member` `points` by an ADMIN correction (not a rule award).
async fn fund(s: &TestServer, key: &str, member: &str, points: i64) {
    let input = json!({"memberId": member, "points": points, "reason": "test funds",
                       "idempotencyKey": format!("fund-{member}-{points}")});
    let data = s.ok(key, ADJUST, json!({"i": input})).await;
    assert_eq!(data["adjustPoints"]["entry"]["points"], points);
}

async fn assign_raw(s: &TestServer, key: &str, input: Value) -> Value {
    s.gql(Some(key), &assign_query(), json!({"i": input})).await
}

/// Assigns a tier by hand; the member of the payload.
async fn assign(s: &TestServer, key: &str, input: Value) -> Value {
    s.ok(key, &assign_query(), json!({"i": input})).await["assignTier"]["member"].clone()
}

async fn assert_audit_clean(s: &TestServer) {
    let violations = loyalty_core::ledger::audit::audit(&s.app().db)
        .await
        .expect("audit runs");
    assert!(
        violations.is_empty(),
        "ledger audit violations: {violations:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Scenarios

async fn ladders_are_validated_idempotent_and_admin_only(b: Backend) {
    let s = TestServer::start_clocked_with(b, at("2026-05-04T10:00:00Z"), |c| {
        c.api.tiers_max = 3;
    })
    .await;
    let (tenant, admin) = s.tenant("tiers-valid").await;
    assert!(ladder_of(&s, &admin).await.is_null(), "no ladder yet");

    let base = ladder("SPEND", rolling(12), (0, 1), three(10_000, 20_000));
    let tiers = |t: Vec<Value>| with(&base, |i| i["tiers"] = json!(t));
    let bronze = || tier("bronze", Some(0), 1.0, &[]);
    let cases = [
        (
            "first threshold is not 0",
            tiers(vec![
                tier("bronze", Some(100), 1.0, &[]),
                tier("silver", Some(10_000), 1.5, &[]),
            ]),
            "tiers",
        ),
        (
            "the first tier is invitation-only",
            tiers(vec![
                tier("vip", None, 2.0, &[]),
                tier("silver", Some(10_000), 1.5, &[]),
            ]),
            "tiers",
        ),
        (
            "equal thresholds",
            tiers(vec![
                bronze(),
                tier("silver", Some(10_000), 1.5, &[]),
                tier("gold", Some(10_000), 2.0, &[]),
            ]),
            "tiers",
        ),
        (
            "decreasing thresholds",
            tiers(vec![
                bronze(),
                tier("silver", Some(20_000), 1.5, &[]),
                tier("gold", Some(10_000), 2.0, &[]),
            ]),
            "tiers",
        ),
        (
            "names equal but for case",
            tiers(vec![
                bronze(),
                tier("silver", Some(10_000), 1.5, &[]),
                tier("SILVER", Some(20_000), 2.0, &[]),
            ]),
            "tiers",
        ),
        ("no tiers", tiers(vec![]), "tiers"),
        (
            "four tiers over api.tiers_max = 3",
            tiers(vec![
                bronze(),
                tier("silver", Some(10_000), 1.5, &[]),
                tier("gold", Some(20_000), 2.0, &[]),
                tier("platinum", Some(30_000), 3.0, &[]),
            ]),
            "tiers",
        ),
        (
            "an empty name",
            tiers(vec![bronze(), tier("", Some(10_000), 1.5, &[])]),
            "tiers",
        ),
        (
            "a name of 65 characters",
            tiers(vec![
                bronze(),
                tier(&"n".repeat(65), Some(10_000), 1.5, &[]),
            ]),
            "tiers",
        ),
        (
            "a multiplier below 1.0",
            tiers(vec![bronze(), tier("silver", Some(10_000), 0.5, &[])]),
            "tiers",
        ),
        (
            "a multiplier above 10.0",
            tiers(vec![bronze(), tier("silver", Some(10_000), 10.5, &[])]),
            "tiers",
        ),
        (
            "an empty benefit",
            tiers(vec![bronze(), tier("silver", Some(10_000), 1.5, &[""])]),
            "tiers",
        ),
        (
            "21 benefits",
            tiers(vec![
                bronze(),
                tier("silver", Some(10_000), 1.5, &["perk"; 21]),
            ]),
            "tiers",
        ),
        (
            "0 months",
            with(&base, |i| i["window"] = rolling(0)),
            "window.months",
        ),
        (
            "37 months",
            with(&base, |i| i["window"] = rolling(37)),
            "window.months",
        ),
        (
            "ROLLING_MONTHS without months",
            with(&base, |i| i["window"] = json!({"kind": "ROLLING_MONTHS"})),
            "window.months",
        ),
        (
            "months with LIFETIME",
            with(&base, |i| {
                i["window"] = json!({"kind": "LIFETIME", "months": 12})
            }),
            "window.months",
        ),
        (
            "366 grace days",
            with(&base, |i| i["downgrade"]["graceDays"] = json!(366)),
            "downgrade.graceDays",
        ),
        (
            "negative grace days",
            with(&base, |i| i["downgrade"]["graceDays"] = json!(-1)),
            "downgrade.graceDays",
        ),
        (
            "stepsMax 0",
            with(&base, |i| i["downgrade"]["stepsMax"] = json!(0)),
            "downgrade.stepsMax",
        ),
        (
            "stepsMax 21",
            with(&base, |i| i["downgrade"]["stepsMax"] = json!(21)),
            "downgrade.stepsMax",
        ),
    ];
    for (what, input, expected) in cases {
        let v = define_raw(&s, &admin, input).await;
        assert_eq!(
            (code(&v), field(&v)),
            (INVALID.to_string(), expected.to_string()),
            "{what}: {v:#}"
        );
    }
    // Only ADMIN keys define ladders.
    let read_only = s.key(&admin, &tenant, "READ_ONLY").await;
    let integration = s.key(&admin, &tenant, "INTEGRATION").await;
    for key in [&read_only, &integration] {
        let v = define_raw(&s, key, base.clone()).await;
        assert_eq!(code(&v), "FORBIDDEN", "{v:#}");
    }
    assert!(
        ladder_of(&s, &admin).await.is_null(),
        "no refused request wrote a ladder"
    );

    // Three tiers (the limit), an invitation-only one, defaults for multiplier, benefits and
    // downgrade.
    let input = json!({"metric": "SPEND", "window": {"kind": "ROLLING_MONTHS", "months": 12},
    "tiers": [
        {"name": "bronze", "threshold": 0},
        {"name": "silver", "threshold": 10000, "benefits": ["free shipping"], "multiplier": 1.5},
        {"name": "vip", "threshold": null, "benefits": ["personal shopper", "previews"],
         "multiplier": 2.0}
    ]});
    let first = define(&s, &admin, input.clone()).await;
    let l = first["ladder"].clone();
    assert_eq!(l["version"], 1, "{l:#}");
    assert_eq!(l["metric"], "SPEND");
    assert_eq!(l["window"], json!({"kind": "ROLLING_MONTHS", "months": 12}));
    assert_eq!(
        l["downgrade"],
        json!({"graceDays": 0, "stepsMax": 1}),
        "the default downgrade"
    );
    assert_time(
        &l["definedAt"],
        "2026-05-04T10:00:00Z",
        "definedAt is the clock's now",
    );
    let shown: Vec<Value> = l["tiers"]
        .as_array()
        .expect("tiers")
        .iter()
        .map(|t| {
            pick(
                t,
                &[
                    "name",
                    "threshold",
                    "invitationOnly",
                    "benefits",
                    "multiplier",
                ],
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            json!({"name": "bronze", "threshold": 0, "invitationOnly": false, "benefits": [],
                   "multiplier": 1.0}),
            json!({"name": "silver", "threshold": 10000, "invitationOnly": false,
                   "benefits": ["free shipping"], "multiplier": 1.5}),
            json!({"name": "vip", "threshold": null, "invitationOnly": true,
                   "benefits": ["personal shopper", "previews"], "multiplier": 2.0}),
        ]
    );
    let ranks: Vec<i64> = l["tiers"]
        .as_array()
        .expect("tiers")
        .iter()
        .map(|t| t["rank"].as_i64().expect("rank"))
        .collect();
    assert!(
        ranks.windows(2).all(|w| w[0] < w[1]),
        "ranks rise in list order: {ranks:?}"
    );

    // The same definition again, an hour later: nothing changes, no re-evaluation.
    s.clock().advance(Duration::hours(1));
    let again = define(&s, &admin, input.clone()).await;
    assert_eq!(again["ladder"]["version"], 1, "{again:#}");
    assert!(again["reevaluation"].is_null(), "{again:#}");
    assert_eq!(again["ladder"]["definedAt"], l["definedAt"]);
    assert_eq!(again["ladder"]["tiers"], l["tiers"]);

    // Any tenant key reads the ladder; another tenant has none.
    let read = ladder_of(&s, &read_only).await;
    assert_eq!(read["version"], 1);
    assert_eq!(read["tiers"], l["tiers"]);
    let (_, other) = s.tenant("tiers-valid-other").await;
    assert!(ladder_of(&s, &other).await.is_null());

    // Another definition (vip at 2.5x) is version 2 and starts a re-evaluation (of no members).
    let changed = with(&input, |i| i["tiers"][2]["multiplier"] = json!(2.5));
    let second = define(&s, &admin, changed).await;
    assert_eq!(second["ladder"]["version"], 2, "{second:#}");
    assert_eq!(second["ladder"]["tiers"][2]["multiplier"], 2.5);
    assert_eq!(second["reevaluation"]["ladderVersion"], 2, "{second:#}");
    assert_eq!(second["reevaluation"]["membersTotal"], 0, "{second:#}");
    assert_eq!(ladder_of(&s, &admin).await["version"], 2);
    s.finish().await;
}

async fn a_new_member_starts_in_the_lowest_tier(b: Backend) {
    let s = TestServer::start_clocked(b, at("2026-03-10T12:00:00Z")).await;
    let (_, admin) = s.tenant("tiers-new").await;
    let early = s.enroll(&admin, json!({"externalId": "early"})).await;
    let m = standing(&s, &admin, &early).await;
    assert!(m["tier"].is_null(), "no ladder, no tier: {m:#}");
    assert!(m["tierProgress"].is_null(), "{m:#}");
    assert!(changes(&m).is_empty(), "{m:#}");

    define(
        &s,
        &admin,
        ladder("SPEND", rolling(12), (30, 1), three(10_000, 50_000)),
    )
    .await;
    s.run_jobs().await;
    let late = s.enroll(&admin, json!({"externalId": "late"})).await;
    // Enrolled before or after the ladder, a member without purchases is in the lowest tier.
    for member in [&early, &late] {
        let m = standing(&s, &admin, member).await;
        let t = &m["tier"];
        assert_eq!(t["name"], "bronze", "{m:#}");
        assert!(t["since"].is_null(), "never changed tier: {t}");
        assert_eq!(t["source"], "THRESHOLD");
        assert_eq!(t["multiplier"], 1.0);
        assert_eq!(t["benefits"], json!([]));
        assert!(
            t["assignedUntil"].is_null() && t["reviewAt"].is_null(),
            "{t}"
        );
        let p = &m["tierProgress"];
        assert_eq!(p["current"]["name"], "bronze");
        assert_eq!(p["next"]["name"], "silver");
        assert_eq!(p["next"]["threshold"], 10_000);
        assert_eq!(p["metric"], "SPEND");
        assert_eq!(p["metricValue"], 0);
        assert_eq!(p["needed"], 10_000);
        assert!(
            p["keepNeeded"].is_null(),
            "nothing to keep in the lowest tier: {p}"
        );
        // The current local month ends on 1 April 00:00 in Amsterdam, CEST since 29 March.
        assert_time(&p["periodEndsAt"], "2026-03-31T22:00:00Z", "periodEndsAt");
        assert!(changes(&m).is_empty(), "{m:#}");
    }

    // 25.00 spent: still bronze, 75.00 to go.
    let p = buy(&s, &admin, &late, "new-1", 2_500).await;
    assert_eq!(p["member"]["tier"]["name"], "bronze");
    let m = standing(&s, &admin, &late).await;
    assert_eq!(m["tierProgress"]["metricValue"], 2_500);
    assert_eq!(m["tierProgress"]["needed"], 7_500);
    assert!(changes(&m).is_empty());
    s.finish().await;
}

async fn the_crossing_purchase_upgrades_in_its_transaction(b: Backend) {
    let s = TestServer::start_clocked(b, at("2026-05-04T10:00:00Z")).await;
    let (_, admin) = s.tenant("tiers-up").await;
    bind_euro_rules(&s, &admin).await;
    let tiers = vec![
        tier("bronze", Some(0), 1.0, &[]),
        tier("silver", Some(10_000), 1.5, &["free shipping"]),
        tier(
            "gold",
            Some(30_000),
            2.0,
            &["free shipping", "early access"],
        ),
        tier("platinum", Some(60_000), 3.0, &["personal shopper"]),
    ];
    define(&s, &admin, ladder("SPEND", lifetime(), (0, 1), tiers)).await;
    let ann = s.enroll(&admin, json!({"externalId": "ann"})).await;

    // 60.00: bronze at 1x, 60 base points and nothing from tier-multiplier.
    let p = buy(&s, &admin, &ann, "up-1", 6_000).await;
    assert_eq!((points(&p), points_of(&p, "tier-multiplier")), (60, 0));
    assert_eq!(p["member"]["tier"]["name"], "bronze");

    // An hour later 50.00 makes 110.00 >= 100.00: silver in the purchase's own response. The
    // purchase itself earns at bronze's 1x: 50 points, nothing extra.
    s.clock().advance(Duration::hours(1));
    let p = buy(&s, &admin, &ann, "up-2", 5_000).await;
    let t = &p["member"]["tier"];
    assert_eq!(t["name"], "silver", "{p:#}");
    assert_eq!(t["source"], "THRESHOLD");
    assert_time(
        &t["since"],
        "2026-05-04T11:00:00Z",
        "since the crossing purchase",
    );
    assert_eq!((points(&p), points_of(&p, "tier-multiplier")), (50, 0));
    let m = standing(&s, &admin, &ann).await;
    assert_eq!(m["tier"]["multiplier"], 1.5);
    assert_eq!(m["tier"]["benefits"], json!(["free shipping"]));
    let h = changes(&m);
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_change(&h[0], change("bronze", "silver", "UP", "THRESHOLD", 11_000));
    assert_eq!(h[0]["ladderVersion"], 1);
    assert!(h[0]["reason"].is_null(), "{:#}", h[0]);
    assert_time(&h[0]["at"], "2026-05-04T11:00:00Z", "the change's time");
    assert_eq!(
        tier_events(&s, &admin, "tier.upgraded", &ann).await,
        vec![moved("bronze", "silver", "THRESHOLD", 11_000)]
    );
    assert!(
        tier_events(&s, &admin, "tier.downgraded", &ann)
            .await
            .is_empty()
    );

    // The next purchase sees 1.5x: 40.00 earns 40 base + floor(40 * 0.5) = 20 extra.
    let p = buy(&s, &admin, &ann, "up-3", 4_000).await;
    assert_eq!((points(&p), points_of(&p, "tier-multiplier")), (60, 20));
    assert_eq!(p["member"]["balance"]["available"], 60 + 50 + 60);
    let m = standing(&s, &admin, &ann).await;
    let progress = &m["tierProgress"];
    // 150.00 of the 300.00 gold needs; LIFETIME has no period end and nothing to keep.
    assert_eq!(progress["current"]["name"], "silver");
    assert_eq!(progress["next"]["name"], "gold");
    assert_eq!(progress["metricValue"], 15_000);
    assert_eq!(progress["needed"], 15_000);
    assert!(progress["periodEndsAt"].is_null() && progress["keepNeeded"].is_null());
    assert_eq!(changes(&m).len(), 1, "no change without a threshold");

    // 700.00 at once jumps over silver and gold straight to platinum: one change, one event,
    // earned at bronze's 1x.
    let bob = s.enroll(&admin, json!({"externalId": "bob"})).await;
    let p = buy(&s, &admin, &bob, "jump-1", 70_000).await;
    assert_eq!(p["member"]["tier"]["name"], "platinum", "{p:#}");
    assert_eq!((points(&p), points_of(&p, "tier-multiplier")), (700, 0));
    let m = standing(&s, &admin, &bob).await;
    let h = changes(&m);
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_change(
        &h[0],
        change("bronze", "platinum", "UP", "THRESHOLD", 70_000),
    );
    assert_eq!(
        tier_events(&s, &admin, "tier.upgraded", &bob).await,
        vec![moved("bronze", "platinum", "THRESHOLD", 70_000)]
    );
    // At the top: nothing next.
    assert!(m["tierProgress"]["next"].is_null() && m["tierProgress"]["needed"].is_null());
    // 10.00 at 3x: 10 base + 20 extra.
    let p = buy(&s, &admin, &bob, "jump-2", 1_000).await;
    assert_eq!((points(&p), points_of(&p, "tier-multiplier")), (30, 20));
    assert_audit_clean(&s).await;
    s.finish().await;
}

/// ROLLING_MONTHS 1, 10 grace days, one step at a time, in Amsterdam. A tier got in March is
/// reviewed at the end of March + 10 local days = 11 April 00:00 CEST = 2026-04-10T22:00:00Z,
/// on max(March's value, the value now).
async fn rolling_reviews_come_after_grace_one_step_at_a_time(b: Backend) {
    let s = TestServer::start_clocked(b, at("2026-03-05T10:00:00Z")).await;
    let (_, admin) = s.tenant("tiers-rolling").await;
    define(
        &s,
        &admin,
        ladder("SPEND", rolling(1), (10, 1), three(10_000, 20_000)),
    )
    .await;
    // ann returns most of her purchase; bob keeps it; cat returns, then requalifies in the grace.
    let ann = s.enroll(&admin, json!({"externalId": "ann"})).await;
    let bob = s.enroll(&admin, json!({"externalId": "bob"})).await;
    let cat = s.enroll(&admin, json!({"externalId": "cat"})).await;
    for (member, order) in [(&ann, "ann-1"), (&bob, "bob-1"), (&cat, "cat-1")] {
        let p = buy(&s, &admin, member, order, 25_000).await;
        assert_eq!(p["member"]["tier"]["name"], "gold", "{p:#}");
    }
    let m = standing(&s, &admin, &ann).await;
    assert_time(&m["tier"]["reviewAt"], "2026-04-10T22:00:00Z", "reviewAt");
    assert_time(
        &m["tierProgress"]["periodEndsAt"],
        "2026-03-31T22:00:00Z",
        "March ends",
    );
    assert_eq!(m["tierProgress"]["metricValue"], 25_000);
    assert_eq!(
        m["tierProgress"]["keepNeeded"], 0,
        "already enough for gold"
    );
    assert_change(
        &changes(&m)[0],
        change("bronze", "gold", "UP", "THRESHOLD", 25_000),
    );

    // 20 March: ann and cat return 200.00 of 250.00. March's value drops to 50.00, yet both
    // stay gold: a return never downgrades at once.
    set_clock(&s, "2026-03-20T10:00:00Z");
    for (member, order) in [(&ann, "ann-1"), (&cat, "cat-1")] {
        let r = give_back(&s, &admin, order, &format!("{order}-r"), 20_000).await;
        assert_eq!(r["member"]["tier"]["name"], "gold", "{r:#}");
        let m = expect_tier(&s, &admin, member, "gold", 1, "after the return").await;
        assert_eq!(m["tierProgress"]["metricValue"], 5_000);
        assert_eq!(m["tierProgress"]["keepNeeded"], 15_000, "200.00 - 50.00");
    }

    // 1 April: March has ended but the review waits for the grace.
    jobs_at(&s, "2026-04-01T08:00:00Z").await;
    let m = expect_tier(&s, &admin, &ann, "gold", 1, "1 April").await;
    assert_eq!(
        m["tierProgress"]["metricValue"], 0,
        "April has no spend yet"
    );
    assert_time(
        &m["tierProgress"]["periodEndsAt"],
        "2026-04-30T22:00:00Z",
        "April ends",
    );
    assert_time(&m["tier"]["reviewAt"], "2026-04-10T22:00:00Z", "unchanged");

    // 5 April, in the grace: cat spends 200.00 in April.
    set_clock(&s, "2026-04-05T10:00:00Z");
    buy(&s, &admin, &cat, "cat-2", 20_000).await;

    // A second before the review: everybody is still gold.
    jobs_at(&s, "2026-04-10T21:59:59Z").await;
    for member in [&ann, &bob, &cat] {
        expect_tier(&s, &admin, member, "gold", 1, "before the review").await;
    }

    // The review. ann: max(March 50.00, April 0) qualifies bronze, one step only: silver.
    jobs_at(&s, "2026-04-10T22:00:00Z").await;
    let m = expect_tier(&s, &admin, &ann, "silver", 2, "ann at the review").await;
    assert_change(
        &changes(&m)[0],
        change("gold", "silver", "DOWN", "REVIEW", 5_000),
    );
    assert_eq!(m["tier"]["source"], "REVIEW");
    assert_time(
        &m["tier"]["since"],
        "2026-04-10T22:00:00Z",
        "since the review",
    );
    // The next review: end of April (1 May 00:00 CEST) + 10 days.
    assert_time(
        &m["tier"]["reviewAt"],
        "2026-05-10T22:00:00Z",
        "next review",
    );
    assert_eq!(
        tier_events(&s, &admin, "tier.downgraded", &ann).await,
        vec![moved("gold", "silver", "REVIEW", 5_000)]
    );
    // bob: March's 250.00 still counts at this review: gold kept, no history, next review set.
    let m = expect_tier(&s, &admin, &bob, "gold", 1, "bob at the review").await;
    assert_time(
        &m["tier"]["reviewAt"],
        "2026-05-10T22:00:00Z",
        "bob's next review",
    );
    // cat: max(March 50.00, April 200.00) qualifies gold again: kept.
    let m = expect_tier(&s, &admin, &cat, "gold", 1, "cat requalified").await;
    assert_time(
        &m["tier"]["reviewAt"],
        "2026-05-10T22:00:00Z",
        "cat's next review",
    );

    // Running the jobs again at the same time changes nothing.
    s.run_jobs().await;
    expect_tier(&s, &admin, &ann, "silver", 2, "a review runs once").await;

    // The next review, 11 May 00:00 CEST. ann: max(April 0, May 0) -> bronze. bob: the same
    // value, one step from gold: silver. cat: max(April 200.00, May 0) keeps gold.
    jobs_at(&s, "2026-05-10T21:59:59Z").await;
    expect_tier(&s, &admin, &ann, "silver", 2, "before the second review").await;
    jobs_at(&s, "2026-05-10T22:00:00Z").await;
    let m = expect_tier(&s, &admin, &ann, "bronze", 3, "ann's second review").await;
    assert_change(
        &changes(&m)[0],
        change("silver", "bronze", "DOWN", "REVIEW", 0),
    );
    assert!(
        m["tier"]["reviewAt"].is_null(),
        "no review in the lowest tier"
    );
    let m = expect_tier(&s, &admin, &bob, "silver", 2, "bob's second review").await;
    assert_change(
        &changes(&m)[0],
        change("gold", "silver", "DOWN", "REVIEW", 0),
    );
    // End of May (1 June 00:00 CEST) + 10 days.
    assert_time(
        &m["tier"]["reviewAt"],
        "2026-06-10T22:00:00Z",
        "bob's next review",
    );
    let m = expect_tier(&s, &admin, &cat, "gold", 1, "cat's second review").await;
    assert_time(
        &m["tier"]["reviewAt"],
        "2026-06-10T22:00:00Z",
        "cat's next review",
    );

    assert_eq!(
        tier_events(&s, &admin, "tier.downgraded", &ann).await,
        vec![
            moved("gold", "silver", "REVIEW", 5_000),
            moved("silver", "bronze", "REVIEW", 0)
        ]
    );
    assert_eq!(
        tier_events(&s, &admin, "tier.upgraded", &ann).await,
        vec![moved("bronze", "gold", "THRESHOLD", 25_000)]
    );
    assert!(
        tier_events(&s, &admin, "tier.downgraded", &cat)
            .await
            .is_empty()
    );

    // tierHistory pages like any connection, newest first.
    let page = s
        .ok(&admin, &standing_query(), json!({"id": ann, "f": 1}))
        .await;
    let conn = &page["member"]["tierHistory"];
    assert_eq!(nodes(conn).len(), 1);
    assert_eq!(nodes(conn)[0]["to"], "bronze");
    assert_eq!(conn["pageInfo"]["hasNextPage"], true);
    let vars = json!({"id": ann, "f": 2, "a": conn["pageInfo"]["endCursor"]});
    let next = s.ok(&admin, &standing_query(), vars).await;
    let rest: Vec<Value> = nodes(&next["member"]["tierHistory"])
        .iter()
        .map(|c| c["to"].clone())
        .collect();
    assert_eq!(rest, vec![json!("silver"), json!("gold")]);
    assert_audit_clean(&s).await;
    s.finish().await;
}

/// Amsterdam changed from CET (UTC+1) to CEST (UTC+2) on 29 March 2026. Months and grace days
/// are local: February ends at 2026-02-28T23:00:00Z, March at 2026-03-31T22:00:00Z, and 30 grace
/// days after 1 March 00:00 CET end at 31 March 00:00 CEST, which is 2026-03-30T22:00:00Z (30
/// times 24 hours would be 23:00Z).
async fn local_months_and_grace_days_across_a_dst_change(b: Backend) {
    let s = TestServer::start_clocked(b, at("2026-02-10T10:00:00Z")).await;
    let (_, admin) = s.tenant("tiers-dst").await;
    define(
        &s,
        &admin,
        ladder("SPEND", rolling(1), (30, 1), three(10_000, 20_000)),
    )
    .await;
    let gus = s.enroll(&admin, json!({"externalId": "gus"})).await;
    let m = standing(&s, &admin, &gus).await;
    assert_time(
        &m["tierProgress"]["periodEndsAt"],
        "2026-02-28T23:00:00Z",
        "February ends in CET",
    );
    let p = buy(&s, &admin, &gus, "gus-1", 25_000).await;
    assert_eq!(p["member"]["tier"]["name"], "gold");
    let m = standing(&s, &admin, &gus).await;
    assert_time(
        &m["tier"]["reviewAt"],
        "2026-03-30T22:00:00Z",
        "30 local days after 1 March",
    );

    // A full return in February: February's value is 0, gus stays gold until the review.
    set_clock(&s, "2026-02-15T10:00:00Z");
    give_back(&s, &admin, "gus-1", "gus-1-r", 25_000).await;
    let m = expect_tier(&s, &admin, &gus, "gold", 1, "after the full return").await;
    assert_eq!(m["tierProgress"]["metricValue"], 0);

    set_clock(&s, "2026-03-10T10:00:00Z");
    let m = standing(&s, &admin, &gus).await;
    assert_time(
        &m["tierProgress"]["periodEndsAt"],
        "2026-03-31T22:00:00Z",
        "March ends in CEST",
    );

    jobs_at(&s, "2026-03-30T21:59:59Z").await;
    expect_tier(
        &s,
        &admin,
        &gus,
        "gold",
        1,
        "a second before local midnight",
    )
    .await;
    // Local midnight: max(February 0, March 0) qualifies bronze; one step: silver.
    jobs_at(&s, "2026-03-30T22:00:00Z").await;
    let m = expect_tier(&s, &admin, &gus, "silver", 2, "at local midnight").await;
    assert_change(
        &changes(&m)[0],
        change("gold", "silver", "DOWN", "REVIEW", 0),
    );
    // End of March (1 April 00:00 CEST) + 30 days = 1 May 00:00 CEST.
    assert_time(
        &m["tier"]["reviewAt"],
        "2026-04-30T22:00:00Z",
        "next review",
    );

    // 2026-03-31T21:30:00Z is 23:30 on 31 March in Amsterdam: March.
    set_clock(&s, "2026-03-31T21:30:00Z");
    let mar = s.enroll(&admin, json!({"externalId": "mar"})).await;
    let p = buy(&s, &admin, &mar, "mar-1", 15_000).await;
    assert_eq!(p["member"]["tier"]["name"], "silver");
    let m = standing(&s, &admin, &mar).await;
    assert_time(
        &m["tierProgress"]["periodEndsAt"],
        "2026-03-31T22:00:00Z",
        "bought in March",
    );
    assert_time(
        &m["tier"]["reviewAt"],
        "2026-04-30T22:00:00Z",
        "1 April + 30 days",
    );

    // 2026-03-31T22:30:00Z is 00:30 on 1 April in Amsterdam: April, although UTC says March.
    set_clock(&s, "2026-03-31T22:30:00Z");
    let apr = s.enroll(&admin, json!({"externalId": "apr"})).await;
    let p = buy(&s, &admin, &apr, "apr-1", 15_000).await;
    assert_eq!(p["member"]["tier"]["name"], "silver");
    let m = standing(&s, &admin, &apr).await;
    assert_time(
        &m["tierProgress"]["periodEndsAt"],
        "2026-04-30T22:00:00Z",
        "bought in April",
    );
    assert_time(
        &m["tier"]["reviewAt"],
        "2026-05-30T22:00:00Z",
        "1 May + 30 days",
    );

    // Mid-April, a one-month window holds April only: apr's purchase counts, mar's does not.
    set_clock(&s, "2026-04-15T10:00:00Z");
    let m = standing(&s, &admin, &mar).await;
    assert_eq!(m["tierProgress"]["metricValue"], 0, "mar bought in March");
    let m = standing(&s, &admin, &apr).await;
    assert_eq!(
        m["tierProgress"]["metricValue"], 15_000,
        "apr bought in April"
    );
    assert_audit_clean(&s).await;
    s.finish().await;
}

/// CALENDAR_YEAR in Pacific/Auckland (NZDT, UTC+13 in summer) against UTC. At
/// 2026-12-31T10:00:00Z it is 23:00 on 31 December in Auckland; at 12:00Z it is 01:00 on
/// 1 January 2027 there, while UTC is still in 2026.
async fn calendar_years_follow_the_tenant_time_zone(b: Backend) {
    let s = TestServer::start_clocked(b, at("2026-12-31T10:00:00Z")).await;
    let (_, kiwi) = tenant_in(&s, "kiwi-club", "Pacific/Auckland", None).await;
    let (_, utc) = tenant_in(&s, "utc-club", "UTC", None).await;
    let definition = ladder("SPEND", calendar_year(), (0, 1), three(10_000, 20_000));
    define(&s, &kiwi, definition.clone()).await;
    define(&s, &utc, definition).await;
    let k = s.enroll(&kiwi, json!({"externalId": "k-1"})).await;
    let u = s.enroll(&utc, json!({"externalId": "u-1"})).await;

    // 80.00 each on 31 December, local in both.
    buy(&s, &kiwi, &k, "k-1", 8_000).await;
    buy(&s, &utc, &u, "u-1", 8_000).await;
    let m = standing(&s, &kiwi, &k).await;
    assert_eq!(m["tierProgress"]["metricValue"], 8_000);
    assert_time(
        &m["tierProgress"]["periodEndsAt"],
        "2026-12-31T11:00:00Z",
        "1 January 2027 00:00 NZDT",
    );
    let m = standing(&s, &utc, &u).await;
    assert_time(
        &m["tierProgress"]["periodEndsAt"],
        "2027-01-01T00:00:00Z",
        "1 January 2027 UTC",
    );

    // Another 80.00 each at 12:00Z. UTC: 2026 now holds 160.00, silver. Auckland: the purchase
    // is in 2027 and does not count for 2026; 2027 holds 80.00, still bronze.
    set_clock(&s, "2026-12-31T12:00:00Z");
    let p = buy(&s, &utc, &u, "u-2", 8_000).await;
    assert_eq!(p["member"]["tier"]["name"], "silver", "{p:#}");
    let p = buy(&s, &kiwi, &k, "k-2", 8_000).await;
    assert_eq!(p["member"]["tier"]["name"], "bronze", "{p:#}");
    let m = expect_tier(&s, &kiwi, &k, "bronze", 0, "Auckland in 2027").await;
    assert_eq!(m["tierProgress"]["metricValue"], 8_000);
    assert_eq!(m["tierProgress"]["needed"], 2_000);
    assert_time(
        &m["tierProgress"]["periodEndsAt"],
        "2027-12-31T11:00:00Z",
        "1 January 2028 00:00 NZDT",
    );
    let m = expect_tier(&s, &utc, &u, "silver", 1, "UTC in 2026").await;
    assert_eq!(m["tierProgress"]["metricValue"], 16_000);
    assert_time(
        &m["tier"]["reviewAt"],
        "2027-01-01T00:00:00Z",
        "end of 2026, no grace",
    );

    // 40.00 more in Auckland makes 2027's 120.00: silver, reviewed at the end of 2027 local.
    let p = buy(&s, &kiwi, &k, "k-3", 4_000).await;
    assert_eq!(p["member"]["tier"]["name"], "silver");
    let m = standing(&s, &kiwi, &k).await;
    assert_change(
        &changes(&m)[0],
        change("bronze", "silver", "UP", "THRESHOLD", 12_000),
    );
    assert_time(
        &m["tier"]["reviewAt"],
        "2027-12-31T11:00:00Z",
        "end of 2027 in Auckland",
    );

    // 2 January 2027: UTC's review kept silver on 2026's 160.00 although 2027 holds nothing;
    // Auckland's member counts 120.00 in 2027.
    jobs_at(&s, "2027-01-02T00:00:00Z").await;
    let m = expect_tier(&s, &utc, &u, "silver", 1, "kept at the review").await;
    assert_eq!(m["tierProgress"]["metricValue"], 0);
    assert_time(
        &m["tier"]["reviewAt"],
        "2028-01-01T00:00:00Z",
        "end of 2027 UTC",
    );
    let m = expect_tier(&s, &kiwi, &k, "silver", 1, "Auckland").await;
    assert_eq!(m["tierProgress"]["metricValue"], 12_000);
    s.finish().await;
}

/// CALENDAR_YEAR, 14 grace days, in Amsterdam: a tier got in 2026 is reviewed at 1 January 2027
/// 00:00 CET + 14 days = 2027-01-14T23:00:00Z on max(2026's value, 2027's value so far).
async fn a_calendar_year_tier_is_reviewed_on_1_january_plus_grace(b: Backend) {
    let s = TestServer::start_clocked(b, at("2026-02-10T10:00:00Z")).await;
    let (_, admin) = s.tenant("tiers-year").await;
    define(
        &s,
        &admin,
        ladder("SPEND", calendar_year(), (14, 1), three(10_000, 20_000)),
    )
    .await;
    let pam = s.enroll(&admin, json!({"externalId": "pam"})).await;
    let quin = s.enroll(&admin, json!({"externalId": "quin"})).await;
    for (member, order) in [(&pam, "pam-1"), (&quin, "quin-1")] {
        let p = buy(&s, &admin, member, order, 25_000).await;
        assert_eq!(p["member"]["tier"]["name"], "gold");
        let m = standing(&s, &admin, member).await;
        assert_time(&m["tier"]["reviewAt"], "2027-01-14T23:00:00Z", "reviewAt");
        assert_time(
            &m["tierProgress"]["periodEndsAt"],
            "2026-12-31T23:00:00Z",
            "1 January 2027 00:00 CET",
        );
    }
    // pam returns 200.00 on 1 March: 2026 holds 50.00, she stays gold all year.
    set_clock(&s, "2026-03-01T10:00:00Z");
    give_back(&s, &admin, "pam-1", "pam-1-r", 20_000).await;
    for t in [
        "2026-07-01T10:00:00Z",
        "2026-12-31T22:59:59Z",
        "2027-01-05T10:00:00Z",
        "2027-01-14T22:59:59Z",
    ] {
        jobs_at(&s, t).await;
        expect_tier(&s, &admin, &pam, "gold", 1, t).await;
        expect_tier(&s, &admin, &quin, "gold", 1, t).await;
    }
    let m = standing(&s, &admin, &pam).await;
    assert_eq!(m["tierProgress"]["metricValue"], 0, "2027 has no spend");
    assert_eq!(m["tierProgress"]["keepNeeded"], 20_000);
    assert_time(
        &m["tierProgress"]["periodEndsAt"],
        "2027-12-31T23:00:00Z",
        "end of 2027",
    );

    // The review: pam's max(50.00, 0) qualifies bronze, one step: silver. quin's 250.00 of 2026
    // keeps gold for another year.
    jobs_at(&s, "2027-01-14T23:00:00Z").await;
    let m = expect_tier(&s, &admin, &pam, "silver", 2, "pam at the review").await;
    assert_change(
        &changes(&m)[0],
        change("gold", "silver", "DOWN", "REVIEW", 5_000),
    );
    assert_time(
        &m["tier"]["reviewAt"],
        "2028-01-14T23:00:00Z",
        "pam's next review",
    );
    let m = expect_tier(&s, &admin, &quin, "gold", 1, "quin at the review").await;
    assert_time(
        &m["tier"]["reviewAt"],
        "2028-01-14T23:00:00Z",
        "quin's next review",
    );

    // A year later, nothing spent in 2027: pam silver -> bronze, quin gold -> silver.
    jobs_at(&s, "2028-01-14T23:00:00Z").await;
    let m = expect_tier(&s, &admin, &pam, "bronze", 3, "pam a year later").await;
    assert_change(
        &changes(&m)[0],
        change("silver", "bronze", "DOWN", "REVIEW", 0),
    );
    let m = expect_tier(&s, &admin, &quin, "silver", 2, "quin a year later").await;
    assert_change(
        &changes(&m)[0],
        change("gold", "silver", "DOWN", "REVIEW", 0),
    );
    assert_audit_clean(&s).await;
    s.finish().await;
}

/// PURCHASE_COUNT over 12 rolling months, no grace: silver at 3 purchases, gold at 5.
async fn purchase_count_falls_with_a_full_return_but_downgrades_only_at_review(b: Backend) {
    let s = TestServer::start_clocked(b, at("2026-06-03T10:00:00Z")).await;
    let (_, admin) = s.tenant("tiers-count").await;
    let tiers = vec![
        tier("bronze", Some(0), 1.0, &[]),
        tier("silver", Some(3), 1.25, &[]),
        tier("gold", Some(5), 1.5, &[]),
    ];
    define(
        &s,
        &admin,
        ladder("PURCHASE_COUNT", rolling(12), (0, 1), tiers),
    )
    .await;
    let cleo = s.enroll(&admin, json!({"externalId": "cleo"})).await;
    buy(&s, &admin, &cleo, "c-1", 1_000).await;
    buy(&s, &admin, &cleo, "c-2", 1_000).await;
    let m = expect_tier(&s, &admin, &cleo, "bronze", 0, "two purchases").await;
    assert_eq!(m["tierProgress"]["metric"], "PURCHASE_COUNT");
    assert_eq!(m["tierProgress"]["metricValue"], 2);
    assert_eq!(m["tierProgress"]["needed"], 1);
    // The third purchase makes 3: silver.
    let p = buy(&s, &admin, &cleo, "c-3", 1_000).await;
    assert_eq!(p["member"]["tier"]["name"], "silver", "{p:#}");
    let m = expect_tier(&s, &admin, &cleo, "silver", 1, "three purchases").await;
    assert_change(
        &changes(&m)[0],
        change("bronze", "silver", "UP", "THRESHOLD", 3),
    );
    // Half of c-1 comes back: it still counts.
    give_back(&s, &admin, "c-1", "c-1-r", 500).await;
    let m = standing(&s, &admin, &cleo).await;
    assert_eq!(
        m["tierProgress"]["metricValue"], 3,
        "a partial return still counts"
    );
    // All of c-3 comes back: 2 purchases count, still silver until the review.
    let r = give_back(&s, &admin, "c-3", "c-3-r", 1_000).await;
    assert_eq!(r["member"]["tier"]["name"], "silver");
    let m = expect_tier(&s, &admin, &cleo, "silver", 1, "after the full return").await;
    assert_eq!(m["tierProgress"]["metricValue"], 2);
    assert_eq!(m["tierProgress"]["keepNeeded"], 1);
    // End of June (1 July 00:00 CEST) without grace.
    assert_time(&m["tier"]["reviewAt"], "2026-06-30T22:00:00Z", "reviewAt");

    jobs_at(&s, "2026-06-30T21:59:59Z").await;
    expect_tier(&s, &admin, &cleo, "silver", 1, "before the review").await;
    // 12 months to June hold 2 purchases, and so do 12 months to July: bronze.
    jobs_at(&s, "2026-06-30T22:00:00Z").await;
    let m = expect_tier(&s, &admin, &cleo, "bronze", 2, "at the review").await;
    assert_change(
        &changes(&m)[0],
        change("silver", "bronze", "DOWN", "REVIEW", 2),
    );
    assert_eq!(
        tier_events(&s, &admin, "tier.downgraded", &cleo).await,
        vec![moved("silver", "bronze", "REVIEW", 2)]
    );
    s.finish().await;
}

/// POINTS_EARNED over the member's lifetime: silver at 100 points, gold at 500; base-rate earns
/// a point per euro.
async fn points_earned_counts_rule_awards_and_enrolment_can_upgrade(b: Backend) {
    let s = TestServer::start_clocked(b, at("2026-05-04T10:00:00Z")).await;
    let (_, admin) = s.tenant("tiers-points").await;
    let rate = json!({"points_per_unit": 1, "unit_minor": 100, "rounding": "floor"});
    bind(&s, &admin, "base-rate", rate, 0).await;
    let tiers = vec![
        tier("bronze", Some(0), 1.0, &[]),
        tier("silver", Some(100), 1.25, &[]),
        tier("gold", Some(500), 1.5, &[]),
    ];
    define(
        &s,
        &admin,
        ladder("POINTS_EARNED", lifetime(), (0, 1), tiers),
    )
    .await;
    let pia = s.enroll(&admin, json!({"externalId": "pia"})).await;

    // 80.00 earns 80 points: bronze, 20 to silver.
    let p = buy(&s, &admin, &pia, "pe-1", 8_000).await;
    assert_eq!(points(&p), 80);
    let m = expect_tier(&s, &admin, &pia, "bronze", 0, "80 points").await;
    assert_eq!(m["tierProgress"]["metric"], "POINTS_EARNED");
    assert_eq!(m["tierProgress"]["metricValue"], 80);
    assert_eq!(m["tierProgress"]["needed"], 20);
    // 30.00 more: 110 points, silver.
    let p = buy(&s, &admin, &pia, "pe-2", 3_000).await;
    assert_eq!(p["member"]["tier"]["name"], "silver", "{p:#}");
    let m = standing(&s, &admin, &pia).await;
    assert_change(
        &changes(&m)[0],
        change("bronze", "silver", "UP", "THRESHOLD", 110),
    );
    // pe-2 comes back whole: its 30 points are clawed back, 80 earned net; still silver.
    let r = give_back(&s, &admin, "pe-2", "pe-2-r", 3_000).await;
    assert_eq!(r["purchaseReturn"]["pointsClawedBack"], 30);
    assert_eq!(r["member"]["tier"]["name"], "silver");
    // An ADMIN correction is not a rule award: the value stays 80.
    fund(&s, &admin, &pia, 1_000).await;
    let m = expect_tier(&s, &admin, &pia, "silver", 1, "after return and correction").await;
    assert_eq!(m["tierProgress"]["metricValue"], 80);
    // LIFETIME: no period end, nothing to keep, no review.
    assert!(m["tierProgress"]["periodEndsAt"].is_null(), "{m:#}");
    assert!(m["tierProgress"]["keepNeeded"].is_null(), "{m:#}");
    assert!(m["tier"]["reviewAt"].is_null(), "{m:#}");
    // Three years on, the jobs never downgrade a lifetime tier.
    jobs_at(&s, "2029-05-04T10:00:00Z").await;
    expect_tier(&s, &admin, &pia, "silver", 1, "three years later").await;

    // 150 points to welcome every new member: the enrolment itself makes them silver.
    bind(&s, &admin, "welcome-bonus", json!({"points": 150}), 10).await;
    let wes = s.enroll(&admin, json!({"externalId": "wes"})).await;
    let m = expect_tier(&s, &admin, &wes, "silver", 1, "welcomed").await;
    assert_change(
        &changes(&m)[0],
        change("bronze", "silver", "UP", "THRESHOLD", 150),
    );
    assert_eq!(m["tierProgress"]["metricValue"], 150);
    assert_eq!(
        tier_events(&s, &admin, "tier.upgraded", &wes).await,
        vec![moved("bronze", "silver", "THRESHOLD", 150)]
    );
    assert_audit_clean(&s).await;
    s.finish().await;
}

/// SPEND over 12 rolling months, no grace, one step; vip is invitation-only at the top.
async fn manual_assignment_is_a_floor_until_it_ends(b: Backend) {
    let s = TestServer::start_clocked(b, at("2026-04-02T10:00:00Z")).await;
    let (tenant, admin) = s.tenant("tiers-vip").await;
    let vic = s.enroll(&admin, json!({"externalId": "vic"})).await;
    let good = json!({"memberId": vic, "tier": "vip", "reason": "invited by the store manager",
                      "until": "2026-06-15T10:00:00Z"});
    // No ladder yet: there is no such tier.
    let v = assign_raw(&s, &admin, good.clone()).await;
    assert_eq!(
        (code(&v), field(&v)),
        (INVALID.to_string(), "tier".to_string()),
        "{v:#}"
    );

    let tiers = vec![
        tier("bronze", Some(0), 1.0, &[]),
        tier("silver", Some(10_000), 1.25, &["free shipping"]),
        tier(
            "gold",
            Some(50_000),
            1.5,
            &["free shipping", "early access"],
        ),
        tier("vip", None, 2.0, &["personal shopper"]),
    ];
    define(&s, &admin, ladder("SPEND", rolling(12), (0, 1), tiers)).await;
    // 150.00: silver by threshold.
    buy(&s, &admin, &vic, "vic-1", 15_000).await;
    expect_tier(&s, &admin, &vic, "silver", 1, "by threshold").await;

    // Refusals: nothing changes.
    let cases = [
        (
            "unknown tier",
            with(&good, |i| i["tier"] = json!("platinum")),
            "tier",
        ),
        (
            "empty reason",
            with(&good, |i| i["reason"] = json!("")),
            "reason",
        ),
        (
            "a reason of 501 characters",
            with(&good, |i| i["reason"] = json!("r".repeat(501))),
            "reason",
        ),
        (
            "until an hour ago",
            with(&good, |i| i["until"] = json!("2026-04-02T09:00:00Z")),
            "until",
        ),
    ];
    for (what, input, expected) in cases {
        let v = assign_raw(&s, &admin, input).await;
        assert_eq!(
            (code(&v), field(&v)),
            (INVALID.to_string(), expected.to_string()),
            "{what}: {v:#}"
        );
    }
    let v = assign_raw(
        &s,
        &admin,
        with(&good, |i| i["memberId"] = json!(UNKNOWN_ID)),
    )
    .await;
    assert_eq!(code(&v), "NOT_FOUND", "{v:#}");
    let integration = s.key(&admin, &tenant, "INTEGRATION").await;
    let v = assign_raw(&s, &integration, good.clone()).await;
    assert_eq!(code(&v), "FORBIDDEN", "{v:#}");
    expect_tier(&s, &admin, &vic, "silver", 1, "after the refusals").await;

    // The invitation: vip until 15 June.
    let m = assign(&s, &admin, good.clone()).await;
    let t = &m["tier"];
    assert_eq!(t["name"], "vip", "{m:#}");
    assert_eq!(t["source"], "MANUAL");
    assert_eq!(t["multiplier"], 2.0);
    assert_eq!(t["benefits"], json!(["personal shopper"]));
    assert_time(&t["assignedUntil"], "2026-06-15T10:00:00Z", "assignedUntil");
    assert_time(&t["since"], "2026-04-02T10:00:00Z", "since the assignment");
    let m = expect_tier(&s, &admin, &vic, "vip", 2, "assigned").await;
    let h = changes(&m);
    assert_change(&h[0], change("silver", "vip", "UP", "MANUAL", 15_000));
    assert_eq!(h[0]["reason"], "invited by the store manager");
    assert!(
        m["tierProgress"]["next"].is_null(),
        "nothing above vip: {m:#}"
    );
    // The same assignment again writes nothing.
    assign(&s, &admin, good.clone()).await;
    expect_tier(&s, &admin, &vic, "vip", 2, "assigned twice").await;

    // Reviews at the ends of April and May: 150.00 qualifies silver only, and without the floor
    // a review would take vip one step down to gold; the floor keeps vip.
    for t in [
        "2026-04-30T22:00:00Z",
        "2026-05-31T22:00:00Z",
        "2026-06-15T09:59:59Z",
    ] {
        jobs_at(&s, t).await;
        expect_tier(&s, &admin, &vic, "vip", 2, t).await;
    }
    // At `until` the floor ends: straight to silver, which 150.00 qualifies for, two ranks down
    // (stepsMax does not apply).
    jobs_at(&s, "2026-06-15T10:00:00Z").await;
    let m = expect_tier(&s, &admin, &vic, "silver", 3, "the invitation ended").await;
    assert_eq!(m["tier"]["source"], "MANUAL_ENDED");
    assert!(m["tier"]["assignedUntil"].is_null(), "{m:#}");
    assert_change(
        &changes(&m)[0],
        change("vip", "silver", "DOWN", "MANUAL_ENDED", 15_000),
    );
    assert_eq!(
        tier_events(&s, &admin, "tier.downgraded", &vic).await,
        vec![moved("vip", "silver", "MANUAL_ENDED", 15_000)]
    );

    // Down by hand, for good: wim is gold by 600.00 and put in bronze.
    let wim = s.enroll(&admin, json!({"externalId": "wim"})).await;
    buy(&s, &admin, &wim, "wim-1", 60_000).await;
    expect_tier(&s, &admin, &wim, "gold", 1, "by threshold").await;
    let input = json!({"memberId": wim, "tier": "bronze", "reason": "chargeback under review"});
    let m = assign(&s, &admin, input).await;
    assert_eq!(m["tier"]["name"], "bronze");
    assert_eq!(m["tier"]["source"], "MANUAL");
    assert!(m["tier"]["assignedUntil"].is_null(), "{m:#}");
    let m = expect_tier(&s, &admin, &wim, "bronze", 2, "put down").await;
    let h = changes(&m);
    assert_change(&h[0], change("gold", "bronze", "DOWN", "MANUAL", 60_000));
    assert_eq!(h[0]["reason"], "chargeback under review");
    assert_audit_clean(&s).await;
    s.finish().await;
}

/// 30 members re-evaluated 7 at a time. v1: bronze 0, silver 100.00, gold 300.00, platinum
/// 600.00. v2: bronze 0, silver 200.00 (higher), gold 250.00 (lower), platinum gone.
async fn a_ladder_change_reevaluates_members_in_batches(b: Backend) {
    let s = TestServer::start_clocked_with(b, at("2026-05-10T10:00:00Z"), |c| {
        c.jobs.batch_max = 7;
    })
    .await;
    let (_, admin) = s.tenant("tiers-change").await;
    let v1 = vec![
        tier("bronze", Some(0), 1.0, &[]),
        tier("silver", Some(10_000), 1.25, &[]),
        tier("gold", Some(30_000), 1.5, &[]),
        tier("platinum", Some(60_000), 2.0, &[]),
    ];
    let first = define(&s, &admin, ladder("SPEND", rolling(12), (0, 1), v1)).await;
    assert_eq!(first["ladder"]["version"], 1);
    s.run_jobs().await;

    // 10 x 50.00 (bronze), 8 x 150.00 (silver), 6 x 260.00 (silver under v1, gold under v2),
    // 6 x 700.00 (platinum).
    let spend = |i: usize| -> i64 {
        match i {
            0..10 => 5_000,
            10..18 => 15_000,
            18..24 => 26_000,
            _ => 70_000,
        }
    };
    let mut members = Vec::new();
    for i in 0..30 {
        let m = s
            .enroll(&admin, json!({"externalId": format!("lc-{i:02}")}))
            .await;
        let p = buy(&s, &admin, &m, &format!("lc-{i:02}"), spend(i)).await;
        let expected = match i {
            0..10 => "bronze",
            10..24 => "silver",
            _ => "platinum",
        };
        assert_eq!(p["member"]["tier"]["name"], expected, "member {i}: {p:#}");
        members.push(m);
    }

    let v2 = vec![
        tier("bronze", Some(0), 1.0, &[]),
        tier("silver", Some(20_000), 1.25, &[]),
        tier("gold", Some(25_000), 1.5, &[]),
    ];
    let second = define(&s, &admin, ladder("SPEND", rolling(12), (0, 1), v2)).await;
    assert_eq!(second["ladder"]["version"], 2, "{second:#}");
    let r = &second["reevaluation"];
    assert_eq!(
        pick(
            r,
            &[
                "ladderVersion",
                "status",
                "membersTotal",
                "membersDone",
                "upgraded",
                "downgraded"
            ]
        ),
        json!({"ladderVersion": 2, "status": "RUNNING", "membersTotal": 30, "membersDone": 0,
               "upgraded": 0, "downgraded": 0}),
        "{r:#}"
    );
    assert!(r["finishedAt"].is_null(), "{r:#}");
    let reevaluation_id = r["id"].clone();
    // Purchases go on while it runs (a bronze member stays bronze: 50.00 + 1.00).
    let p = buy(&s, &admin, &members[9], "during-start", 100).await;
    assert_eq!(p["member"]["tier"]["name"], "bronze");

    // One run of the job handles jobs.batch_max = 7 members; purchases go on between runs.
    let mut done = Vec::new();
    let mut progress = ladder_of(&s, &admin).await["reevaluation"].clone();
    assert_eq!(progress["id"], reevaluation_id);
    for (round, member) in members.iter().take(10).enumerate() {
        if progress["status"] == "DONE" {
            break;
        }
        let handled = tier_job_once(&s).await;
        progress = ladder_of(&s, &admin).await["reevaluation"].clone();
        assert_eq!(progress["id"], reevaluation_id);
        let n = progress["membersDone"].as_i64().expect("membersDone");
        assert!(
            handled <= 7,
            "a run is bounded by jobs.batch_max: {handled}"
        );
        let status = if n < 30 { "RUNNING" } else { "DONE" };
        assert_eq!(progress["status"], status, "{progress:#}");
        done.push(n);
        let p = buy(&s, &admin, member, &format!("during-{round}"), 100).await;
        assert_eq!(p["member"]["tier"]["name"], "bronze", "{p:#}");
    }
    assert_eq!(
        done,
        vec![7, 14, 21, 28, 30],
        "membersDone after each run of the tier job"
    );
    // 6 silver members qualify gold (260.00 >= 250.00): upgraded. 6 platinum members move to
    // gold, the tier 700.00 qualifies for: downgraded. 150.00 no longer qualifies silver, but
    // silver still exists: kept until the next review.
    assert_eq!(progress["upgraded"], 6, "{progress:#}");
    assert_eq!(progress["downgraded"], 6, "{progress:#}");
    assert!(!progress["finishedAt"].is_null(), "{progress:#}");
    s.run_jobs().await;
    assert_eq!(
        ladder_of(&s, &admin).await["reevaluation"],
        progress,
        "a finished re-evaluation stays as it was"
    );

    let m = expect_tier(&s, &admin, &members[0], "bronze", 0, "bronze stays").await;
    assert_eq!(m["tierProgress"]["next"]["threshold"], 20_000);
    let m = expect_tier(&s, &admin, &members[10], "silver", 1, "silver kept").await;
    assert_eq!(m["tier"]["source"], "THRESHOLD");
    let p = &m["tierProgress"];
    assert_eq!(p["current"]["threshold"], 20_000);
    assert_eq!(p["next"]["name"], "gold");
    assert_eq!(p["needed"], 10_000, "250.00 - 150.00");
    assert_eq!(p["keepNeeded"], 5_000, "200.00 - 150.00");
    let m = expect_tier(&s, &admin, &members[18], "gold", 2, "lifted to gold").await;
    assert_eq!(m["tier"]["source"], "LADDER_CHANGE");
    let h = changes(&m);
    assert_change(
        &h[0],
        change("silver", "gold", "UP", "LADDER_CHANGE", 26_000),
    );
    assert_eq!(h[0]["ladderVersion"], 2);
    let m = expect_tier(&s, &admin, &members[24], "gold", 2, "platinum is gone").await;
    assert_eq!(m["tier"]["source"], "LADDER_CHANGE");
    assert_eq!(m["tier"]["multiplier"], 1.5);
    let h = changes(&m);
    assert_change(
        &h[0],
        change("platinum", "gold", "DOWN", "LADDER_CHANGE", 70_000),
    );
    assert_eq!(h[0]["ladderVersion"], 2);
    for (i, member) in members.iter().enumerate() {
        let expected = match i {
            0..10 => "bronze",
            10..18 => "silver",
            _ => "gold",
        };
        assert_eq!(tier_of(&s, &admin, member).await, expected, "member {i}");
    }
    assert_eq!(
        tier_events(&s, &admin, "tier.upgraded", &members[18]).await,
        vec![
            moved("bronze", "silver", "THRESHOLD", 26_000),
            moved("silver", "gold", "LADDER_CHANGE", 26_000)
        ]
    );
    assert_eq!(
        tier_events(&s, &admin, "tier.downgraded", &members[29]).await,
        vec![moved("platinum", "gold", "LADDER_CHANGE", 70_000)]
    );
    assert_audit_clean(&s).await;
    s.finish().await;
}

async fn rewards_with_a_min_tier_need_that_rank(b: Backend) {
    let s = TestServer::start_clocked(b, at("2026-05-10T10:00:00Z")).await;
    let (_, admin) = s.tenant("tiers-rewards").await;
    define(
        &s,
        &admin,
        ladder("SPEND", lifetime(), (0, 1), three(10_000, 30_000)),
    )
    .await;
    let fixed = plugin_id(&s, &admin, "fixed-discount").await;
    let input = json!({"name": "Silver treat", "pointsCost": 10, "pluginVersionId": fixed,
                       "config": {"amount_minor": 500, "currency": "EUR"}, "minTier": "silver"});
    let reward =
        s.ok(&admin, CREATE_REWARD, json!({"i": input})).await["createReward"]["reward"].clone();
    assert_eq!(reward["minTier"], "silver");
    let reward_id = reward["id"].as_str().expect("reward id").to_string();

    // bronze (nothing spent), silver (150.00), gold (350.00); 100 points each to spend.
    let bea = s.enroll(&admin, json!({"externalId": "bea"})).await;
    let sil = s.enroll(&admin, json!({"externalId": "sil"})).await;
    let gil = s.enroll(&admin, json!({"externalId": "gil"})).await;
    buy(&s, &admin, &sil, "sil-1", 15_000).await;
    buy(&s, &admin, &gil, "gil-1", 35_000).await;
    for (member, expected) in [(&bea, "bronze"), (&sil, "silver"), (&gil, "gold")] {
        assert_eq!(tier_of(&s, &admin, member).await, expected);
        fund(&s, &admin, member, 100).await;
    }
    let redeem = |member: &str, idem: &str| {
        json!({"i": {"memberId": member, "rewardId": reward_id, "quantity": 1,
                     "idempotencyKey": idem}})
    };

    let v = s.gql(Some(&admin), REDEEM, redeem(&bea, "bea-1")).await;
    assert_eq!(code(&v), "REWARD_UNAVAILABLE", "{v:#}");
    assert_eq!(
        v["errors"][0]["extensions"]["reason"], "TIER_TOO_LOW",
        "{v:#}"
    );
    let offers = s.ok(&admin, OFFERS, json!({"m": bea})).await;
    let offer = offers["rewards"]
        .as_array()
        .expect("rewards")
        .iter()
        .find(|o| o["reward"]["id"] == reward["id"])
        .cloned()
        .unwrap_or_else(|| panic!("not offered: {offers:#}"));
    assert_eq!(offer["canRedeem"], false);
    assert_eq!(offer["reason"], "TIER_TOO_LOW");

    // silver is the minimum itself; gold ranks above it.
    for (member, idem) in [(&sil, "sil-1"), (&gil, "gil-1")] {
        let data = s.ok(&admin, REDEEM, redeem(member, idem)).await;
        let r = &data["redeemReward"];
        assert_eq!(r["redemption"]["status"], "ISSUED", "{r:#}");
        assert_eq!(r["member"]["balance"]["available"], 90);
    }

    // Lifted by hand, bea may redeem too.
    let input = json!({"memberId": bea, "tier": "silver", "reason": "service recovery"});
    assign(&s, &admin, input).await;
    let data = s.ok(&admin, REDEEM, redeem(&bea, "bea-2")).await;
    assert_eq!(data["redeemReward"]["redemption"]["status"], "ISSUED");
    s.finish().await;
}

async fn fashion_tiers_template_has_a_ladder(b: Backend) {
    let s = TestServer::start_clocked(b, at("2026-05-10T10:00:00Z")).await;
    let (_, admin) = tenant_in(
        &s,
        "fashion-club",
        "Europe/Amsterdam",
        Some("fashion-tiers"),
    )
    .await;
    let l = ladder_of(&s, &admin).await;
    assert_eq!(l["version"], 1, "{l:#}");
    assert_eq!(l["metric"], "SPEND");
    assert_eq!(l["window"], json!({"kind": "ROLLING_MONTHS", "months": 12}));
    assert_eq!(l["downgrade"], json!({"graceDays": 30, "stepsMax": 1}));
    let tiers = l["tiers"].as_array().expect("tiers");
    let shown: Vec<Value> = tiers
        .iter()
        .map(|t| pick(t, &["name", "threshold", "invitationOnly", "multiplier"]))
        .collect();
    assert_eq!(
        shown,
        vec![
            json!({"name": "bronze", "threshold": 0, "invitationOnly": false, "multiplier": 1.0}),
            json!({"name": "silver", "threshold": 50000, "invitationOnly": false,
                   "multiplier": 1.25}),
            json!({"name": "gold", "threshold": 150000, "invitationOnly": false,
                   "multiplier": 1.5}),
            json!({"name": "vip", "threshold": null, "invitationOnly": true, "multiplier": 2.0}),
        ]
    );
    assert!(
        tiers
            .iter()
            .all(|t| t["benefits"].as_array().is_some_and(|b| !b.is_empty())),
        "every tier has benefits: {tiers:#?}"
    );

    let fay = s.enroll(&admin, json!({"externalId": "fay"})).await;
    expect_tier(&s, &admin, &fay, "bronze", 0, "new member").await;
    // 600.00 >= 500.00: silver, earned at bronze's 1x (no tier-multiplier points).
    let p = buy(&s, &admin, &fay, "fay-1", 60_000).await;
    assert_eq!(p["member"]["tier"]["name"], "silver", "{p:#}");
    assert_eq!(points_of(&p, "tier-multiplier"), 0, "{p:#}");
    // 100.00 at 1.25x: 100 base + 25 extra; under the 150.00 basket bonus.
    let p = buy(&s, &admin, &fay, "fay-2", 10_000).await;
    assert_eq!(
        (points(&p), points_of(&p, "tier-multiplier")),
        (125, 25),
        "{p:#}"
    );
    s.finish().await;
}

/// The point rules run before the write lock, on the member as the reader sees them, and run
/// again under the lock when the member moved meanwhile. Ten purchases of 100.00 at once for
/// one member: whatever order they commit in, the five up to 500.00 earn at bronze and the
/// five after the upgrade at silver (1.25x), exactly as one after another would.
async fn concurrent_purchases_earn_what_they_would_one_after_another(b: Backend) {
    let s = TestServer::start_clocked(b, at("2026-05-10T10:00:00Z")).await;
    let (_, admin) = tenant_in(&s, "race-club", "Europe/Amsterdam", Some("fashion-tiers")).await;
    let fay = s.enroll(&admin, json!({"externalId": "race-fay"})).await;
    let orders = (0..10)
        .map(|n| json!({"i": purchase(&fay, &format!("race-{n}"), 10_000)}))
        .collect();
    let mut earned = Vec::new();
    for v in s.gql_at_once(&admin, RECORD, orders).await {
        assert_eq!(code(&v), "OK", "{v:#}");
        let p = &v["data"]["recordPurchase"];
        assert_eq!(p["pluginErrors"], json!([]), "{p:#}");
        earned.push(points(p));
    }
    earned.sort_unstable();
    assert_eq!(earned, [100, 100, 100, 100, 100, 125, 125, 125, 125, 125]);
    expect_tier(&s, &admin, &fay, "silver", 1, "after 1,000.00").await;
    s.assert_audit_clean().await;
    s.finish().await;
}

/// A club that ran without tiers gets its first ladder: the re-evaluation rebuilds every
/// member's activity from the purchases, returns and rule awards recorded before, in the
/// tenant's months, so members land where their history puts them.
async fn the_first_ladder_counts_the_history_before_it(b: Backend) {
    let s = TestServer::start_clocked(b, at("2026-01-20T10:00:00Z")).await;
    let (_, admin) = s.tenant("tiers-history").await;
    bind_euro_rules(&s, &admin).await;
    let old = s.enroll(&admin, json!({"externalId": "h-old"})).await;
    let steady = s.enroll(&admin, json!({"externalId": "h-steady"})).await;
    let returner = s.enroll(&admin, json!({"externalId": "h-returner"})).await;
    let quiet = s.enroll(&admin, json!({"externalId": "h-quiet"})).await;
    // January 2026: 250.00 by `old` (it will fall out of a 3-month window by May).
    buy(&s, &admin, &old, "h-1", 25_000).await;
    // March: 120.00 by `steady`, 300.00 by `returner`, who returns 150.00 of it in April.
    set_clock(&s, "2026-03-10T10:00:00Z");
    buy(&s, &admin, &steady, "h-2", 12_000).await;
    buy(&s, &admin, &returner, "h-3", 30_000).await;
    set_clock(&s, "2026-04-02T10:00:00Z");
    give_back(&s, &admin, "h-3", "h-3-r", 15_000).await;
    // May: 90.00 more by `steady` (210.00 in March to May).
    set_clock(&s, "2026-05-05T10:00:00Z");
    buy(&s, &admin, &steady, "h-4", 9_000).await;

    // SPEND over 3 months: silver 100.00, gold 200.00; POINTS_EARNED is rebuilt too.
    let d = define(
        &s,
        &admin,
        ladder("SPEND", rolling(3), (0, 1), three(10_000, 20_000)),
    )
    .await;
    assert_eq!(d["reevaluation"]["status"], "RUNNING", "{d:#}");
    assert_eq!(d["reevaluation"]["membersTotal"], 4, "{d:#}");
    // Nothing moves before the job runs: the history is not in the metric yet.
    assert_eq!(tier_of(&s, &admin, &steady).await, "bronze");
    s.run_jobs().await;
    let l = ladder_of(&s, &admin).await;
    assert_eq!(l["reevaluation"]["status"], "DONE", "{l:#}");
    assert_eq!(l["reevaluation"]["membersDone"], 4, "{l:#}");
    assert_eq!(l["reevaluation"]["upgraded"], 2, "{l:#}");
    assert_eq!(l["reevaluation"]["downgraded"], 0, "{l:#}");

    // March to May: steady 210.00 -> gold; returner 300.00 - 150.00 -> silver; old's January
    // is outside the window -> bronze; quiet -> bronze.
    let m = expect_tier(&s, &admin, &steady, "gold", 1, "steady").await;
    assert_change(
        &changes(&m)[0],
        change("bronze", "gold", "UP", "LADDER_CHANGE", 21_000),
    );
    assert_eq!(m["tierProgress"]["metricValue"], 21_000, "{m:#}");
    let m = expect_tier(&s, &admin, &returner, "silver", 1, "returner").await;
    assert_eq!(m["tierProgress"]["metricValue"], 15_000, "{m:#}");
    expect_tier(&s, &admin, &old, "bronze", 0, "old").await;
    expect_tier(&s, &admin, &quiet, "bronze", 0, "quiet").await;

    // The rebuilt months are the ones the events happened in: a new ladder over points
    // earned and the lifetime sees every rule award less what the return took back:
    // old 250, steady 120 + 90 = 210, returner 300 - 150 = 150.
    define(
        &s,
        &admin,
        ladder("POINTS_EARNED", lifetime(), (0, 1), three(200, 240)),
    )
    .await;
    s.run_jobs().await;
    let m = standing(&s, &admin, &old).await;
    assert_eq!(m["tierProgress"]["metricValue"], 250, "{m:#}");
    assert_eq!(m["tier"]["name"], "gold", "{m:#}");
    let m = standing(&s, &admin, &returner).await;
    assert_eq!(m["tierProgress"]["metricValue"], 150, "{m:#}");
    // steady keeps gold (ladder changes never take a tier that still exists away).
    let m = standing(&s, &admin, &steady).await;
    assert_eq!(m["tierProgress"]["metricValue"], 210, "{m:#}");
    assert_eq!(m["tier"]["name"], "gold", "{m:#}");
    assert_audit_clean(&s).await;
    s.finish().await;
}
