//! Purchases, returns and custom events through the point rules, end to end on both backends:
//! awards with provenance, idempotency (also under concurrency), validation, member stats,
//! proportional clawback on returns, plugin failures contained, simulation without writes,
//! the domain-event outbox, club templates and the tenant's currency.

use chrono::{DateTime, FixedOffset};
use loyalty_tests::{Backend, PLATFORM_KEY, TestServer, both_backends, code, components};
use serde_json::{Value, json};

both_backends!(
    purchase_earns_base_rate_points_with_provenance,
    purchases_are_idempotent_by_order_id,
    purchase_input_is_validated,
    stats_and_purchase_lines_are_stored,
    returns_claw_back_the_points_of_what_came_back,
    custom_events_are_idempotent_and_validated,
    enrollment_runs_the_point_rules,
    plugin_failures_do_not_block_purchases,
    simulation_writes_nothing,
    domain_events_are_listed_in_order_per_tenant,
    club_templates_seed_a_new_tenant,
    tenant_currency_governs_purchases,
    the_demo_request_earns_stars,
    event_limits_have_keys,
    event_bonus_caps_per_local_period,
);

const AWARD: &str = "points reason plugin pluginVersion lineIndex entryId";
const ERRORS: &str = "pluginErrors { plugin pluginVersion code message }";
const LINES: &str = "lines { lineIndex sku category quantity unitPrice returnedQuantity }";
const STATS: &str = "stats { lifetimeSpend currency purchaseCount firstPurchaseAt lastPurchaseAt averageOrderValue }";

fn record_query() -> String {
    format!(
        "mutation($i: RecordPurchaseInput!) {{ recordPurchase(input: $i) {{ purchase {{ id \
         orderId occurredAt currency total channel storeId returnedAmount pointsEarned {LINES} }} \
         awards {{ {AWARD} }} {ERRORS} member {{ id balance {{ available pending }} }} replayed }} }}"
    )
}

fn simulate_query() -> String {
    format!(
        "mutation($i: RecordPurchaseInput!) {{ simulatePurchase(input: $i) {{ awards {{ {AWARD} }} \
         {ERRORS} member {{ id balance {{ available pending }} }} }} }}"
    )
}

const RETURN: &str = "mutation($i: RecordReturnInput!) { recordReturn(input: $i) { purchaseReturn \
                      { id returnId orderId amount pointsClawedBack createdAt } member { id balance \
                      { available pending } } replayed } }";
const EVENT: &str = "mutation($i: RecordEventInput!) { recordEvent(input: $i) { awards { points \
                     reason plugin pluginVersion lineIndex entryId } pluginErrors { plugin code } \
                     member { id balance { available } } replayed } }";
const BIND: &str = "mutation($i: BindPluginInput!) { bindPlugin(input: $i) { binding { id plugin { \
                    name } } } }";
const HISTORY: &str = "query($id: ID!) { member(id: $id) { history(first: 50) { edges { node { id \
                       kind points reason source { eventId pluginId pluginVersion } } } } } }";
const EVENTS: &str = "query($f: Int, $a: String, $t: String) { events(first: $f, after: $a, type: \
                      $t) { edges { cursor node { id type memberId payload createdAt } } pageInfo \
                      { hasNextPage endCursor } } }";
const CREATE_TENANT: &str = "mutation($i: CreateTenantInput!) { createTenant(input: $i) { tenant { \
                             id slug pointsName currency } } }";

/// base-rate's example config: one point per whole euro, rounded down per line.
fn base_rate() -> Value {
    json!({"points_per_unit": 1, "unit_minor": 100, "rounding": "floor"})
}

const UNKNOWN_ID: &str = "0190f8a0-0000-7000-8000-000000000001";

/// The id of the plugin version called `name` that this tenant can bind.
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

/// Binds the plugin called `name` with `config` at `priority`.
async fn bind(s: &TestServer, key: &str, name: &str, config: Value, priority: i64) {
    let id = plugin_id(s, key, name).await;
    let input =
        json!({"pluginVersionId": id, "config": config, "priority": priority, "enabled": true});
    let data = s.ok(key, BIND, json!({"i": input})).await;
    assert_eq!(data["bindPlugin"]["binding"]["plugin"]["name"], name);
}

fn line(sku: &str, category: Option<&str>, quantity: i64, unit_price: i64) -> Value {
    json!({"sku": sku, "category": category, "quantity": quantity, "unitPrice": unit_price})
}

/// A valid purchase input by member id: EUR, ONLINE, occurring now.
fn input(member: &str, order: &str, total: i64, lines: Vec<Value>) -> Value {
    json!({"orderId": order, "memberId": member, "currency": "EUR", "total": total,
           "channel": "ONLINE", "lines": lines})
}

/// A purchase of one line worth `total`.
fn single(member: &str, order: &str, total: i64) -> Value {
    input(member, order, total, vec![line("A", None, 1, total)])
}

/// A copy of `base` changed by `f`.
fn with(base: &Value, f: impl FnOnce(&mut Value)) -> Value {
    let mut v = base.clone();
    f(&mut v);
    v
}

/// Records a purchase that must succeed; returns the `recordPurchase` payload.
async fn record(s: &TestServer, key: &str, input: Value) -> Value {
    s.ok(key, &record_query(), json!({"i": input})).await["recordPurchase"].clone()
}

async fn record_raw(s: &TestServer, key: &str, input: Value) -> Value {
    s.gql(Some(key), &record_query(), json!({"i": input})).await
}

async fn return_raw(s: &TestServer, key: &str, input: Value) -> Value {
    s.gql(Some(key), RETURN, json!({"i": input})).await
}

fn total_points(awards: &Value) -> i64 {
    awards
        .as_array()
        .expect("awards")
        .iter()
        .map(|a| a["points"].as_i64().expect("points"))
        .sum()
}

/// `(available, pending)` of a member.
async fn balance(s: &TestServer, key: &str, member: &str) -> (i64, i64) {
    let q = "query($id: ID!) { member(id: $id) { balance { available pending } } }";
    let data = s.ok(key, q, json!({"id": member})).await;
    let b = &data["member"]["balance"];
    (
        b["available"].as_i64().expect("available"),
        b["pending"].as_i64().expect("pending"),
    )
}

/// The member's purchases (nodes) and stats.
async fn purchases_and_stats(s: &TestServer, key: &str, member: &str) -> (Vec<Value>, Value) {
    let q = format!(
        "query($id: ID!) {{ member(id: $id) {{ purchases(first: 10) {{ edges {{ node {{ id orderId \
         occurredAt total channel storeId returnedAmount pointsEarned {LINES} }} }} pageInfo {{ \
         hasNextPage }} }} {STATS} }} }}"
    );
    let data = s.ok(key, &q, json!({"id": member})).await;
    let m = &data["member"];
    let nodes = m["purchases"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    (nodes, m["stats"].clone())
}

/// The member's ledger history, newest first.
async fn history(s: &TestServer, key: &str, member: &str) -> Vec<Value> {
    let data = s.ok(key, HISTORY, json!({"id": member})).await;
    data["member"]["history"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// All of the caller's domain events (at most 100), oldest first.
async fn events(s: &TestServer, key: &str, kind: Option<&str>) -> Vec<Value> {
    let data = s.ok(key, EVENTS, json!({"f": 100, "t": kind})).await;
    data["events"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

fn time(v: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn non_empty(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
}

async fn purchase_earns_base_rate_points_with_provenance(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("earn").await;
    bind(&s, &admin, "base-rate", base_rate(), 0).await;
    let member = s.enroll(&admin, json!({"externalId": "e-1"})).await;

    let p = record(
        &s,
        &admin,
        input(
            &member,
            "order-1",
            2599,
            vec![line("SHOE-1", Some("shoes"), 1, 2599)],
        ),
    )
    .await;
    assert_eq!(p["replayed"], false);
    assert_eq!(p["pluginErrors"], json!([]));
    let awards = p["awards"].as_array().expect("awards");
    assert_eq!(awards.len(), 1, "{p:#}");
    let a = &awards[0];
    assert_eq!(a["points"], 25);
    assert_eq!(a["plugin"], "base-rate");
    assert_eq!(a["reason"], "base-rate");
    assert_eq!(a["lineIndex"], 0);
    assert!(non_empty(&a["pluginVersion"]), "{a}");
    assert!(non_empty(&a["entryId"]), "{a}");
    let purchase = &p["purchase"];
    assert_eq!(purchase["orderId"], "order-1");
    assert_eq!(purchase["total"], 2599);
    assert_eq!(purchase["pointsEarned"], 25);
    assert_eq!(purchase["currency"], "EUR");
    assert_eq!(purchase["channel"], "ONLINE");
    assert_eq!(purchase["returnedAmount"], 0);
    assert_eq!(p["member"]["id"], member.as_str());
    assert_eq!(p["member"]["balance"]["available"], 25);
    assert_eq!(balance(&s, &admin, &member).await, (25, 0));

    // The ledger says which plugin, which version and which event.
    let h = history(&s, &admin, &member).await;
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_eq!(h[0]["id"], a["entryId"]);
    assert_eq!(h[0]["kind"], "EARN");
    assert_eq!(h[0]["points"], 25);
    assert_eq!(h[0]["reason"], "base-rate");
    assert_eq!(h[0]["source"]["pluginId"], "base-rate");
    assert_eq!(h[0]["source"]["pluginVersion"], a["pluginVersion"]);
    assert!(non_empty(&h[0]["source"]["eventId"]), "{:#}", h[0]);

    // By external id; rounding is per line, so the 0.99 line earns nothing.
    let by_ext = json!({"orderId": "order-2", "externalId": "e-1", "currency": "EUR", "total": 2199,
                        "channel": "APP", "lines": [line("A", None, 2, 1050), line("B", None, 1, 99)]});
    let p = record(&s, &admin, by_ext).await;
    assert_eq!(p["member"]["id"], member.as_str());
    let awards = p["awards"].as_array().expect("awards");
    assert_eq!(awards.len(), 1, "{p:#}");
    assert_eq!(awards[0]["points"], 21);
    assert_eq!(awards[0]["lineIndex"], 0);
    assert_eq!(balance(&s, &admin, &member).await, (46, 0));
    s.finish().await;
}

async fn purchases_are_idempotent_by_order_id(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("idem").await;
    bind(&s, &admin, "base-rate", base_rate(), 0).await;
    let member = s.enroll(&admin, json!({"externalId": "i-1"})).await;
    let first_input = single(&member, "idem-1", 2599);
    let first = record(&s, &admin, first_input.clone()).await;
    assert_eq!(first["replayed"], false);

    // The same order again: the stored result, nothing new.
    let again = record(&s, &admin, first_input).await;
    assert_eq!(again["replayed"], true);
    assert_eq!(again["awards"], first["awards"]);
    assert_eq!(again["purchase"]["id"], first["purchase"]["id"]);
    assert_eq!(balance(&s, &admin, &member).await, (25, 0));
    // The same order id with other content: CONFLICT, nothing written.
    let other = single(&member, "idem-1", 2600);
    let v = record_raw(&s, &admin, other).await;
    assert_eq!(code(&v), "CONFLICT", "{v:#}");
    assert_eq!(balance(&s, &admin, &member).await, (25, 0));
    assert_eq!(history(&s, &admin, &member).await.len(), 1);

    // Ten identical requests at once, for a fresh member: one purchase, points once.
    let racer = s.enroll(&admin, json!({"externalId": "i-2"})).await;
    let same = vec![json!({"i": single(&racer, "race-1", 1000)}); 10];
    let mut fresh = 0;
    for v in s.gql_at_once(&admin, &record_query(), same).await {
        assert_eq!(code(&v), "OK", "{v:#}");
        let p = &v["data"]["recordPurchase"];
        assert_eq!(total_points(&p["awards"]), 10, "{p:#}");
        if p["replayed"] == false {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1, "exactly one request records the purchase");
    assert_eq!(balance(&s, &admin, &racer).await, (10, 0));
    let (purchases, stats) = purchases_and_stats(&s, &admin, &racer).await;
    assert_eq!(purchases.len(), 1, "{purchases:#?}");
    assert_eq!(purchases[0]["orderId"], "race-1");
    assert_eq!(stats["purchaseCount"], 1);
    assert_eq!(history(&s, &admin, &racer).await.len(), 1);
    s.finish().await;
}

async fn purchase_input_is_validated(b: Backend) {
    let s = TestServer::start(b).await;
    let (tenant, admin) = s.tenant("valid").await;
    bind(&s, &admin, "base-rate", base_rate(), 0).await;
    let member = s.enroll(&admin, json!({"externalId": "v-1"})).await;
    let base = input(
        &member,
        "v-order",
        1000,
        vec![line("A", Some("x"), 1, 1000)],
    );
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();

    let cases = [
        (
            "currency USD on an EUR tenant",
            with(&base, |i| i["currency"] = json!("USD")),
        ),
        (
            "quantity 0",
            with(&base, |i| i["lines"][0]["quantity"] = json!(0)),
        ),
        (
            "negative unitPrice",
            with(&base, |i| i["lines"][0]["unitPrice"] = json!(-100)),
        ),
        ("negative total", with(&base, |i| i["total"] = json!(-1))),
        ("empty orderId", with(&base, |i| i["orderId"] = json!(""))),
        (
            "no member",
            with(&base, |i| {
                if let Some(o) = i.as_object_mut() {
                    o.remove("memberId");
                }
            }),
        ),
        (
            "both member ids",
            with(&base, |i| i["externalId"] = json!("v-1")),
        ),
        (
            "an hour in the future",
            with(&base, |i| i["occurredAt"] = json!(future)),
        ),
    ];
    for (what, case) in cases {
        let v = record_raw(&s, &admin, case).await;
        assert_eq!(code(&v), "VALIDATION", "{what}: {v:#}");
    }
    // Unknown members, another tenant's member.
    let v = record_raw(
        &s,
        &admin,
        with(&base, |i| i["memberId"] = json!(UNKNOWN_ID)),
    )
    .await;
    assert_eq!(code(&v), "NOT_FOUND", "{v:#}");
    let by_ext = with(&base, |i| {
        if let Some(o) = i.as_object_mut() {
            o.remove("memberId");
        }
        i["externalId"] = json!("nobody");
    });
    let v = record_raw(&s, &admin, by_ext).await;
    assert_eq!(code(&v), "NOT_FOUND", "{v:#}");
    let (_, other) = s.tenant("valid-other").await;
    let v = record_raw(&s, &other, base.clone()).await;
    assert_eq!(code(&v), "NOT_FOUND", "{v:#}");
    // Roles: READ_ONLY may not record; INTEGRATION may.
    let read_only = s.key(&admin, &tenant, "READ_ONLY").await;
    let v = record_raw(&s, &read_only, base.clone()).await;
    assert_eq!(code(&v), "FORBIDDEN", "{v:#}");
    // Nothing was written by any refused request.
    assert_eq!(balance(&s, &admin, &member).await, (0, 0));
    assert_eq!(purchases_and_stats(&s, &admin, &member).await.0.len(), 0);
    let integration = s.key(&admin, &tenant, "INTEGRATION").await;
    let p = record(&s, &integration, base).await;
    assert_eq!(total_points(&p["awards"]), 10);
    assert_eq!(balance(&s, &admin, &member).await, (10, 0));
    s.finish().await;
}

async fn stats_and_purchase_lines_are_stored(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("stats").await;
    let member = s.enroll(&admin, json!({"externalId": "s-1"})).await;
    let data = s.ok(&admin, "{ tenant { currency } }", json!({})).await;
    assert_eq!(data["tenant"]["currency"], "EUR");
    let (none, stats) = purchases_and_stats(&s, &admin, &member).await;
    assert!(none.is_empty());
    assert_eq!(stats["lifetimeSpend"], 0);
    assert_eq!(stats["purchaseCount"], 0);
    assert_eq!(stats["averageOrderValue"], 0);
    assert!(
        stats["firstPurchaseAt"].is_null() && stats["lastPurchaseAt"].is_null(),
        "{stats}"
    );

    let (t1, t2) = ("2025-03-01T09:30:00Z", "2025-03-02T18:00:00Z");
    let first = with(
        &input(
            &member,
            "s-order-1",
            1000,
            vec![line("GIFT", None, 1, 1000)],
        ),
        |i| {
            i["occurredAt"] = json!(t1);
        },
    );
    let lines = vec![
        line("BEAN-1", Some("coffee"), 2, 1000),
        line("MUG-1", None, 1, 1000),
    ];
    let second = with(&input(&member, "s-order-2", 3000, lines), |i| {
        i["occurredAt"] = json!(t2);
        i["channel"] = json!("STORE");
        i["storeId"] = json!("ams-01");
    });
    let p = record(&s, &admin, first).await;
    // Nothing is bound: the purchase is stored, no points.
    assert_eq!(p["awards"], json!([]));
    assert_eq!(p["purchase"]["pointsEarned"], 0);
    record(&s, &admin, second).await;

    let (purchases, stats) = purchases_and_stats(&s, &admin, &member).await;
    assert_eq!(stats["lifetimeSpend"], 4000, "{stats}");
    assert_eq!(stats["purchaseCount"], 2);
    assert_eq!(stats["averageOrderValue"], 2000);
    assert_eq!(stats["currency"], "EUR");
    let (first_at, last_at) = (
        time(&stats["firstPurchaseAt"]),
        time(&stats["lastPurchaseAt"]),
    );
    assert!(first_at <= last_at, "{stats}");
    assert_eq!(
        first_at,
        time(&json!(t1)),
        "firstPurchaseAt is the earliest occurredAt"
    );
    assert_eq!(
        last_at,
        time(&json!(t2)),
        "lastPurchaseAt is the latest occurredAt"
    );

    assert_eq!(purchases.len(), 2, "{purchases:#?}");
    let find = |order: &str| {
        purchases
            .iter()
            .find(|p| p["orderId"] == order)
            .cloned()
            .unwrap_or_else(|| panic!("{order}"))
    };
    let p1 = find("s-order-1");
    assert_eq!(p1["total"], 1000);
    assert_eq!(p1["channel"], "ONLINE");
    assert!(p1["storeId"].is_null());
    assert_eq!(time(&p1["occurredAt"]), time(&json!(t1)));
    assert_eq!(
        p1["lines"],
        json!([{"lineIndex": 0, "sku": "GIFT", "category": null, "quantity": 1,
                                     "unitPrice": 1000, "returnedQuantity": 0}])
    );
    let p2 = find("s-order-2");
    assert_eq!(p2["total"], 3000);
    assert_eq!(p2["channel"], "STORE");
    assert_eq!(p2["storeId"], "ams-01");
    assert_eq!(p2["returnedAmount"], 0);
    assert_eq!(
        p2["lines"],
        json!([
            {"lineIndex": 0, "sku": "BEAN-1", "category": "coffee", "quantity": 2, "unitPrice": 1000, "returnedQuantity": 0},
            {"lineIndex": 1, "sku": "MUG-1", "category": null, "quantity": 1, "unitPrice": 1000, "returnedQuantity": 0},
        ])
    );
    s.finish().await;
}

async fn returns_claw_back_the_points_of_what_came_back(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("returns").await;
    bind(&s, &admin, "base-rate", base_rate(), 0).await;
    let multiplier = json!({"points_per_unit": 1, "unit_minor": 100,
                            "rules": [{"category": "coffee", "multiplier_bp": 20000}]});
    bind(&s, &admin, "category-multiplier", multiplier, 1).await;
    let member = s.enroll(&admin, json!({"externalId": "r-1"})).await;

    // Line 0: 2 x 15.00 coffee = 30 base + 30 extra; line 1: 20.00 merch = 20 base.
    let lines = vec![
        line("BEAN-1", Some("coffee"), 2, 1500),
        line("CAP-1", Some("merch"), 1, 2000),
    ];
    let p = record(&s, &admin, input(&member, "r-order", 5000, lines)).await;
    let awards = p["awards"].as_array().expect("awards").clone();
    let on_line = |i: i64| -> i64 {
        awards
            .iter()
            .filter(|a| a["lineIndex"] == i)
            .map(|a| a["points"].as_i64().expect("points"))
            .sum()
    };
    assert_eq!((on_line(0), on_line(1)), (60, 20), "{awards:#?}");
    assert_eq!(
        awards.len(),
        3,
        "base-rate for both lines, category-multiplier for line 0"
    );
    assert!(
        awards.iter().any(|a| a["plugin"] == "category-multiplier"
            && a["lineIndex"] == 0
            && a["points"] == 30)
    );
    assert_eq!(balance(&s, &admin, &member).await, (80, 0));
    // One ledger entry per rule: base-rate's two line awards share one (50 points), the
    // multiplier's is its own (30); each award keeps its line and points.
    let entries_of = |plugin: &str| -> Vec<Value> {
        awards
            .iter()
            .filter(|a| a["plugin"] == plugin)
            .map(|a| a["entryId"].clone())
            .collect()
    };
    let (base, extra) = (entries_of("base-rate"), entries_of("category-multiplier"));
    assert_eq!((base.len(), extra.len()), (2, 1), "{awards:#?}");
    assert_eq!(base[0], base[1], "{awards:#?}");
    assert_ne!(base[0], extra[0], "{awards:#?}");
    let h = history(&s, &admin, &member).await;
    let mut earned: Vec<(Value, Value)> = h
        .iter()
        .map(|e| (e["id"].clone(), e["points"].clone()))
        .collect();
    earned.sort_by_key(|(_, p)| p.as_i64());
    assert_eq!(
        earned,
        vec![(extra[0].clone(), json!(30)), (base[0].clone(), json!(50))],
        "{h:#?}"
    );
    // One `points.earned` per entry, with the awards it credits line by line.
    let mut announced: Vec<Value> = events(&s, &admin, Some("points.earned"))
        .await
        .into_iter()
        .filter(|e| e["memberId"] == member.as_str())
        .map(|e| e["payload"].clone())
        .collect();
    announced.sort_by_key(|p| p["points"].as_i64());
    assert_eq!(announced.len(), 2, "{announced:#?}");
    let fields = |p: &Value| {
        (
            p["entryId"].clone(),
            p["points"].clone(),
            p["plugin"].clone(),
        )
    };
    assert_eq!(
        fields(&announced[0]),
        (extra[0].clone(), json!(30), json!("category-multiplier"))
    );
    assert_eq!(
        announced[0]["awards"],
        json!([{"lineIndex": 0, "points": 30}])
    );
    assert_eq!(
        fields(&announced[1]),
        (base[0].clone(), json!(50), json!("base-rate"))
    );
    assert_eq!(
        announced[1]["awards"],
        json!([{"lineIndex": 0, "points": 30}, {"lineIndex": 1, "points": 20}])
    );
    assert!(
        announced
            .iter()
            .all(|p| p["eventId"] == announced[0]["eventId"] && non_empty(&p["eventId"])),
        "{announced:#?}"
    );

    // Line 0 comes back whole: its 60 points go (30 of base-rate's shared entry).
    let ret = json!({"orderId": "r-order", "returnId": "ret-1", "lines": [{"lineIndex": 0, "quantity": 2}]});
    let v = return_raw(&s, &admin, ret.clone()).await;
    assert_eq!(code(&v), "OK", "{v:#}");
    let r = v["data"]["recordReturn"].clone();
    assert_eq!(r["replayed"], false);
    let pr = &r["purchaseReturn"];
    assert_eq!(pr["returnId"], "ret-1");
    assert_eq!(pr["orderId"], "r-order");
    assert_eq!(pr["amount"], 3000);
    assert_eq!(pr["pointsClawedBack"], 60);
    assert!(non_empty(&pr["createdAt"]));
    assert_eq!(r["member"]["balance"]["available"], 20);
    assert_eq!(balance(&s, &admin, &member).await, (20, 0));
    let (purchases, stats) = purchases_and_stats(&s, &admin, &member).await;
    assert_eq!(purchases[0]["returnedAmount"], 3000);
    assert_eq!(purchases[0]["lines"][0]["returnedQuantity"], 2);
    assert_eq!(purchases[0]["lines"][1]["returnedQuantity"], 0);
    assert_eq!(stats["lifetimeSpend"], 2000, "{stats}");

    // The same return again: the stored result, nothing more taken.
    let again = s.ok(&admin, RETURN, json!({"i": ret})).await["recordReturn"].clone();
    assert_eq!(again["replayed"], true);
    assert_eq!(again["purchaseReturn"]["id"], pr["id"]);
    assert_eq!(again["purchaseReturn"]["pointsClawedBack"], 60);
    assert_eq!(balance(&s, &admin, &member).await, (20, 0));

    // Refusals.
    let refused = [
        (
            "line 0 again",
            json!({"orderId": "r-order", "returnId": "ret-2", "lines": [{"lineIndex": 0, "quantity": 1}]}),
            "VALIDATION",
        ),
        (
            "more than bought",
            json!({"orderId": "r-order", "returnId": "ret-3", "lines": [{"lineIndex": 1, "quantity": 2}]}),
            "VALIDATION",
        ),
        (
            "more than is left",
            json!({"orderId": "r-order", "returnId": "ret-4", "amount": 2001}),
            "VALIDATION",
        ),
        (
            "lines and amount",
            json!({"orderId": "r-order", "returnId": "ret-5", "amount": 100, "lines": [{"lineIndex": 1, "quantity": 1}]}),
            "VALIDATION",
        ),
        (
            "neither",
            json!({"orderId": "r-order", "returnId": "ret-6"}),
            "VALIDATION",
        ),
        (
            "unknown order",
            json!({"orderId": "nope", "returnId": "ret-7", "amount": 100}),
            "NOT_FOUND",
        ),
    ];
    for (what, case, expected) in refused {
        let v = return_raw(&s, &admin, case).await;
        assert_eq!(code(&v), expected, "{what}: {v:#}");
    }
    let (_, other) = s.tenant("returns-other").await;
    let v = return_raw(
        &s,
        &other,
        json!({"orderId": "r-order", "returnId": "ret-8", "amount": 100}),
    )
    .await;
    assert_eq!(code(&v), "NOT_FOUND", "{v:#}");
    assert_eq!(balance(&s, &admin, &member).await, (20, 0));

    // The rest by amount: every remaining point of the order goes; back to where we started.
    let rest = json!({"orderId": "r-order", "returnId": "ret-9", "amount": 2000});
    let r = s.ok(&admin, RETURN, json!({"i": rest})).await["recordReturn"].clone();
    assert_eq!(r["purchaseReturn"]["amount"], 2000);
    assert_eq!(r["purchaseReturn"]["pointsClawedBack"], 20);
    assert_eq!(balance(&s, &admin, &member).await, (0, 0));
    let (purchases, stats) = purchases_and_stats(&s, &admin, &member).await;
    assert_eq!(purchases[0]["returnedAmount"], 5000);
    assert_eq!(stats["lifetimeSpend"], 0, "{stats}");
    let h = history(&s, &admin, &member).await;
    let net: i64 = h
        .iter()
        .map(|e| e["points"].as_i64().expect("points"))
        .sum();
    assert_eq!(net, 0, "{h:#?}");
    assert!(
        h.iter().any(|e| e["points"].as_i64().unwrap_or(0) < 0),
        "clawbacks are in the ledger"
    );
    s.finish().await;
}

async fn custom_events_are_idempotent_and_validated(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("custom").await;
    // base-rate scores purchases only: nothing is bound for custom events.
    bind(&s, &admin, "base-rate", base_rate(), 0).await;
    let member = s.enroll(&admin, json!({"externalId": "c-1"})).await;
    let ev = json!({"memberId": member, "type": "review.written", "eventId": "rev-1",
                    "properties": {"stars": 5, "productSku": "BEAN-1"}});
    let r = s.ok(&admin, EVENT, json!({"i": ev})).await["recordEvent"].clone();
    assert_eq!(r["awards"], json!([]));
    assert_eq!(r["pluginErrors"], json!([]));
    assert_eq!(r["replayed"], false);
    assert_eq!(r["member"]["id"], member.as_str());
    let again = s.ok(&admin, EVENT, json!({"i": ev})).await["recordEvent"].clone();
    assert_eq!(again["replayed"], true);
    assert_eq!(again["awards"], json!([]));
    // By external id, another event id: a new event.
    let by_ext = json!({"externalId": "c-1", "type": "review.written", "eventId": "rev-2"});
    let r = s.ok(&admin, EVENT, json!({"i": by_ext})).await["recordEvent"].clone();
    assert_eq!(r["replayed"], false);
    assert_eq!(r["member"]["id"], member.as_str());

    let bad = json!({"memberId": member, "type": "Has Spaces", "eventId": "rev-3"});
    let v = s.gql(Some(&admin), EVENT, json!({"i": bad})).await;
    assert_eq!(code(&v), "VALIDATION", "{v:#}");
    assert_eq!(balance(&s, &admin, &member).await, (0, 0));
    assert!(history(&s, &admin, &member).await.is_empty());
    s.finish().await;
}

async fn enrollment_runs_the_point_rules(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("welcome").await;
    bind(
        &s,
        &admin,
        "welcome-bonus",
        json!({"points": 500, "channels": ["web", "app"]}),
        0,
    )
    .await;

    let web = s
        .enroll(&admin, json!({"externalId": "w-1", "channel": "web"}))
        .await;
    assert_eq!(balance(&s, &admin, &web).await, (500, 0));
    let h = history(&s, &admin, &web).await;
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_eq!(h[0]["kind"], "EARN");
    assert_eq!(h[0]["points"], 500);
    assert_eq!(h[0]["reason"], "welcome-bonus");
    assert_eq!(h[0]["source"]["pluginId"], "welcome-bonus");
    assert!(non_empty(&h[0]["source"]["pluginVersion"]));
    assert!(non_empty(&h[0]["source"]["eventId"]));
    // The channel reaches the rule: a store enrollment, or one without channel, earns nothing.
    let store = s
        .enroll(&admin, json!({"externalId": "w-2", "channel": "store"}))
        .await;
    assert_eq!(balance(&s, &admin, &store).await, (0, 0));
    let unknown = s.enroll(&admin, json!({"externalId": "w-3"})).await;
    assert_eq!(balance(&s, &admin, &unknown).await, (0, 0));
    assert!(history(&s, &admin, &unknown).await.is_empty());
    s.finish().await;
}

async fn plugin_failures_do_not_block_purchases(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("hostile").await;
    let install = "mutation($i: InstallPluginInput!) { installPlugin(input: $i) { plugin { id name kind } } }";
    let data = s
        .ok(
            &admin,
            install,
            json!({"i": {"wasmBase64": components::base64("hostile-panic")}}),
        )
        .await;
    assert_eq!(data["installPlugin"]["plugin"]["kind"], "POINT_RULE");
    bind(&s, &admin, "hostile-panic", json!({}), 0).await;
    bind(&s, &admin, "base-rate", base_rate(), 1).await;
    let member = s.enroll(&admin, json!({"externalId": "h-1"})).await;

    let p = record(&s, &admin, single(&member, "h-order", 1000)).await;
    let awards = p["awards"].as_array().expect("awards");
    assert_eq!(awards.len(), 1, "{p:#}");
    assert_eq!(awards[0]["plugin"], "base-rate");
    assert_eq!(awards[0]["points"], 10);
    let errors = p["pluginErrors"].as_array().expect("pluginErrors");
    assert_eq!(errors.len(), 1, "{p:#}");
    assert_eq!(errors[0]["plugin"], "hostile-panic");
    assert_eq!(errors[0]["code"], "trap");
    assert!(
        non_empty(&errors[0]["pluginVersion"]) && non_empty(&errors[0]["message"]),
        "{:#}",
        errors[0]
    );
    assert_eq!(p["purchase"]["pointsEarned"], 10);
    assert_eq!(balance(&s, &admin, &member).await, (10, 0));
    let h = history(&s, &admin, &member).await;
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_eq!(h[0]["source"]["pluginId"], "base-rate");
    s.finish().await;
}

async fn simulation_writes_nothing(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("simulate").await;
    bind(&s, &admin, "base-rate", base_rate(), 0).await;
    let member = s.enroll(&admin, json!({"externalId": "sim-1"})).await;
    record(&s, &admin, single(&member, "real-1", 1000)).await;
    let before = (
        balance(&s, &admin, &member).await,
        purchases_and_stats(&s, &admin, &member).await,
        events(&s, &admin, None).await,
        history(&s, &admin, &member).await,
    );
    assert_eq!(before.0, (10, 0));

    let sim_input = single(&member, "sim-order", 2599);
    let data = s
        .ok(&admin, &simulate_query(), json!({"i": sim_input}))
        .await;
    let sim = &data["simulatePurchase"];
    let awards = sim["awards"].as_array().expect("awards");
    assert_eq!(awards.len(), 1, "{sim:#}");
    assert_eq!(awards[0]["points"], 25);
    assert_eq!(awards[0]["plugin"], "base-rate");
    assert_eq!(awards[0]["lineIndex"], 0);
    assert!(
        awards[0]["entryId"].is_null(),
        "a simulation writes no entry"
    );
    assert_eq!(sim["pluginErrors"], json!([]));
    assert_eq!(sim["member"]["balance"]["available"], 10);
    let after = (
        balance(&s, &admin, &member).await,
        purchases_and_stats(&s, &admin, &member).await,
        events(&s, &admin, None).await,
        history(&s, &admin, &member).await,
    );
    assert_eq!(after, before, "simulatePurchase changed something");
    let v = s
        .gql(
            Some(&admin),
            &simulate_query(),
            json!({"i": with(&sim_input, |i| i["currency"] = json!("USD"))}),
        )
        .await;
    assert_eq!(code(&v), "VALIDATION", "{v:#}");

    // The simulated order id is still free.
    let p = record(&s, &admin, sim_input).await;
    assert_eq!(p["replayed"], false);
    assert_eq!(total_points(&p["awards"]), 25);
    assert_eq!(balance(&s, &admin, &member).await, (35, 0));
    s.finish().await;
}

async fn domain_events_are_listed_in_order_per_tenant(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("outbox").await;
    bind(&s, &admin, "base-rate", base_rate(), 0).await;
    let member = s.enroll(&admin, json!({"externalId": "o-1"})).await;
    record(&s, &admin, single(&member, "o-order", 1200)).await;

    let all = events(&s, &admin, None).await;
    let at = |kind: &str| {
        all.iter()
            .position(|e| e["type"] == kind && e["memberId"] == member.as_str())
            .unwrap_or_else(|| panic!("no {kind} for the member: {all:#?}"))
    };
    let (enrolled, recorded, earned) = (
        at("member.enrolled"),
        at("purchase.recorded"),
        at("points.earned"),
    );
    assert!(enrolled < recorded && recorded < earned, "{all:#?}");
    for pair in all.windows(2) {
        assert!(
            time(&pair[0]["createdAt"]) <= time(&pair[1]["createdAt"]),
            "oldest first: {all:#?}"
        );
        assert_ne!(pair[0]["id"], pair[1]["id"]);
    }
    assert!(
        all.iter()
            .all(|e| e["payload"].is_object() && non_empty(&e["id"])),
        "{all:#?}"
    );

    // The type filter.
    let earned_only = events(&s, &admin, Some("points.earned")).await;
    let expected: Vec<&Value> = all
        .iter()
        .filter(|e| e["type"] == "points.earned")
        .collect();
    assert!(!earned_only.is_empty());
    assert_eq!(earned_only.iter().collect::<Vec<_>>(), expected);

    // Pages of one.
    let page = s.ok(&admin, EVENTS, json!({"f": 1})).await;
    let edges = page["events"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0]["node"]["id"], all[0]["id"]);
    assert_eq!(page["events"]["pageInfo"]["hasNextPage"], true);
    let cursor = page["events"]["pageInfo"]["endCursor"].clone();
    let next = s.ok(&admin, EVENTS, json!({"f": 1, "a": cursor})).await;
    let edges = next["events"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0]["node"]["id"], all[1]["id"]);

    // Another tenant sees none of them.
    let (_, other) = s.tenant("outbox-other").await;
    let theirs = events(&s, &other, None).await;
    assert!(
        theirs
            .iter()
            .all(|e| e["memberId"] != member.as_str() && !all.iter().any(|m| m["id"] == e["id"])),
        "{theirs:#?}"
    );
    s.finish().await;
}

async fn club_templates_seed_a_new_tenant(b: Backend) {
    let s = TestServer::start(b).await;
    let q = "{ clubTemplates { slug name description plugins { name config } } }";
    let data = s.ok(PLATFORM_KEY, q, json!({})).await;
    let templates = data["clubTemplates"].as_array().expect("templates").clone();
    for slug in ["coffee-stars", "fashion-tiers"] {
        let t = templates
            .iter()
            .find(|t| t["slug"] == slug)
            .unwrap_or_else(|| panic!("{slug}: {data:#}"));
        assert!(non_empty(&t["name"]), "{t}");
        assert!(!t["plugins"].as_array().expect("plugins").is_empty(), "{t}");
    }
    let v = s.gql(None, q, json!({})).await;
    assert_eq!(code(&v), "UNAUTHENTICATED", "{v:#}");

    let tenant_input = json!({"slug": "coffee-club", "name": "Coffee Club", "timezone": "Europe/Amsterdam",
                              "pointsName": "stars", "template": "coffee-stars"});
    let data = s
        .ok(PLATFORM_KEY, CREATE_TENANT, json!({"i": tenant_input}))
        .await;
    let tenant = data["createTenant"]["tenant"].clone();
    assert_eq!(tenant["pointsName"], "stars");
    assert_eq!(tenant["currency"], "EUR");
    let tenant_id = tenant["id"].as_str().expect("id").to_string();
    let admin = s.key(PLATFORM_KEY, &tenant_id, "ADMIN").await;
    // Any tenant key may read the templates too.
    let listed = s.ok(&admin, q, json!({})).await;
    assert_eq!(
        listed["clubTemplates"].as_array().map(Vec::len),
        Some(templates.len())
    );

    let bindings = s
        .ok(&admin, "{ pluginBindings { plugin { name } } }", json!({}))
        .await;
    let bound: Vec<&str> = bindings["pluginBindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .filter_map(|b| b["plugin"]["name"].as_str())
        .collect();
    assert!(bound.contains(&"base-rate"), "{bound:?}");
    let coffee = templates
        .iter()
        .find(|t| t["slug"] == "coffee-stars")
        .expect("coffee-stars");
    for p in coffee["plugins"].as_array().expect("plugins") {
        let name = p["name"].as_str().expect("name");
        assert!(
            bound.contains(&name),
            "{name} of the template is not bound: {bound:?}"
        );
    }

    let member = s
        .enroll(&admin, json!({"externalId": "cc-1", "channel": "web"}))
        .await;
    let (a0, p0) = balance(&s, &admin, &member).await;
    let p = record(
        &s,
        &admin,
        input(
            &member,
            "cc-order",
            500,
            vec![line("LATTE", Some("coffee"), 1, 500)],
        ),
    )
    .await;
    let earned = total_points(&p["awards"]);
    assert!(earned > 0, "{p:#}");
    assert_eq!(p["purchase"]["pointsEarned"], earned);
    let (a1, p1) = balance(&s, &admin, &member).await;
    assert_eq!((a1 + p1) - (a0 + p0), earned);

    let bad = json!({"slug": "nope-club", "name": "Nope", "timezone": "Europe/Amsterdam", "template": "nope"});
    let v = s
        .gql(Some(PLATFORM_KEY), CREATE_TENANT, json!({"i": bad}))
        .await;
    assert_eq!(code(&v), "VALIDATION", "{v:#}");
    s.finish().await;
}

async fn tenant_currency_governs_purchases(b: Backend) {
    let s = TestServer::start(b).await;
    let usd = json!({"slug": "dollar-club", "name": "Dollar Club", "timezone": "America/New_York", "currency": "USD"});
    let data = s.ok(PLATFORM_KEY, CREATE_TENANT, json!({"i": usd})).await;
    let tenant = data["createTenant"]["tenant"].clone();
    assert_eq!(tenant["currency"], "USD");
    let admin = s
        .key(PLATFORM_KEY, tenant["id"].as_str().expect("id"), "ADMIN")
        .await;
    bind(&s, &admin, "base-rate", base_rate(), 0).await;
    let member = s.enroll(&admin, json!({"externalId": "d-1"})).await;

    let eur = single(&member, "d-order", 1500);
    let v = record_raw(&s, &admin, eur.clone()).await;
    assert_eq!(code(&v), "VALIDATION", "{v:#}");
    let p = record(&s, &admin, with(&eur, |i| i["currency"] = json!("USD"))).await;
    assert_eq!(p["purchase"]["currency"], "USD");
    assert_eq!(total_points(&p["awards"]), 15);
    let (_, stats) = purchases_and_stats(&s, &admin, &member).await;
    assert_eq!(stats["currency"], "USD");
    assert_eq!(stats["lifetimeSpend"], 1500);

    let bad = json!({"slug": "bad-money", "name": "Bad", "timezone": "Europe/Amsterdam", "currency": "euros"});
    let v = s
        .gql(Some(PLATFORM_KEY), CREATE_TENANT, json!({"i": bad}))
        .await;
    assert_eq!(code(&v), "VALIDATION", "{v:#}");
    s.finish().await;
}

/// The request `serve --demo` prints works as printed against a `coffee-stars` club.
async fn the_demo_request_earns_stars(b: Backend) {
    let s = TestServer::start(b).await;
    let data = s
        .ok(
            PLATFORM_KEY,
            CREATE_TENANT,
            json!({"i": {"slug": "demo-coffee", "name": "Demo", "timezone": "Europe/Amsterdam",
                         "pointsName": "stars", "template": "coffee-stars"}}),
        )
        .await;
    let tenant = data["createTenant"]["tenant"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let admin = s.key(PLATFORM_KEY, &tenant, "ADMIN").await;
    s.enroll(&admin, json!({"externalId": "demo-ann"})).await;
    for replayed in [false, true] {
        let data = s
            .ok(&admin, loyalty_core::demo::DEMO_PURCHASE, json!({}))
            .await;
        let r = &data["recordPurchase"];
        let points: i64 = r["awards"]
            .as_array()
            .expect("awards")
            .iter()
            .map(|a| a["points"].as_i64().expect("points"))
            .sum();
        // base-rate, a star per euro per line: 2 x 4.25 -> 8, 4.00 -> 4; plus 25 to welcome.
        assert_eq!(points, 12);
        assert_eq!(r["member"]["balance"]["available"], 37);
        assert_eq!(r["replayed"], replayed);
    }
    s.finish().await;
}

/// `api.purchase_lines_max`, `api.event_properties_bytes_max` and `api.plugin_awards_max`.
async fn event_limits_have_keys(b: Backend) {
    let s = TestServer::start_with(b, |c| {
        c.api.purchase_lines_max = 3;
        c.api.event_properties_bytes_max = 64;
        c.api.plugin_awards_max = 2;
    })
    .await;
    let (_, admin) = s.tenant("limits").await;
    bind(&s, &admin, "base-rate", base_rate(), 0).await;
    let member = s.enroll(&admin, json!({"externalId": "l-1"})).await;
    let lines = |n: usize| {
        (0..n)
            .map(|i| line(&format!("S{i}"), None, 1, 100))
            .collect()
    };

    // Four lines are over the limit of three: refused, nothing written.
    let r = record_raw(&s, &admin, input(&member, "l-4", 400, lines(4))).await;
    assert_eq!(code(&r), "VALIDATION", "{r:#}");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("api.purchase_lines_max")
    );

    // Three lines pass, but base-rate's three awards are over plugin_awards_max = 2: the rule's
    // answer is invalid output, the purchase is still recorded.
    let p = record(&s, &admin, input(&member, "l-3", 300, lines(3))).await;
    assert_eq!(total_points(&p["awards"]), 0);
    assert_eq!(p["pluginErrors"][0]["plugin"], "base-rate");
    assert_eq!(p["pluginErrors"][0]["code"], "invalid-output");
    // Two lines: two awards, within the limit.
    let p = record(&s, &admin, input(&member, "l-2", 200, lines(2))).await;
    assert_eq!(total_points(&p["awards"]), 2);

    // Properties over 64 bytes are refused.
    let big = json!({"text": "x".repeat(80)});
    let r = s
        .gql(
            Some(&admin),
            EVENT,
            json!({"i": {"memberId": member, "type": "review.written", "eventId": "big",
                         "properties": big}}),
        )
        .await;
    assert_eq!(code(&r), "VALIDATION", "{r:#}");
    let small = json!({"stars": 5});
    let ok = s
        .ok(
            &admin,
            EVENT,
            json!({"i": {"memberId": member, "type": "review.written", "eventId": "small",
                         "properties": small}}),
        )
        .await;
    assert_eq!(ok["recordEvent"]["replayed"], false);
    s.finish().await;
}

/// `event-bonus` with a cap of two reviews per month: the host counts the member's earlier
/// events in the month of the tenant's time zone (Europe/Amsterdam in `s.tenant`).
async fn event_bonus_caps_per_local_period(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("reviews").await;
    bind(
        &s,
        &admin,
        "event-bonus",
        json!({"events": [{"type": "review.written", "points": 50,
                           "cap": {"per": "month", "max": 2}}]}),
        0,
    )
    .await;
    let member = s.enroll(&admin, json!({"externalId": "r-1"})).await;
    let review = |id: &str, at: &str| {
        json!({"i": {"memberId": member, "type": "review.written", "eventId": id,
                     "occurredAt": at, "properties": {"stars": 4}}})
    };
    let points = |v: &Value| total_points(&v["recordEvent"]["awards"]);
    let mut earned = Vec::new();
    for (id, at) in [
        ("rv-1", "2026-10-05T10:00:00Z"),
        ("rv-2", "2026-10-12T10:00:00Z"),
        ("rv-3", "2026-10-20T10:00:00Z"),
        // 23:30 UTC on 31 October is 00:30 on 1 November in Amsterdam: a new month.
        ("rv-4", "2026-10-31T23:30:00Z"),
    ] {
        earned.push(points(&s.ok(&admin, EVENT, review(id, at)).await));
    }
    assert_eq!(earned, vec![50, 50, 0, 50]);
    // A replay neither earns nor counts again.
    let again = s
        .ok(&admin, EVENT, review("rv-2", "2026-10-12T10:00:00Z"))
        .await;
    assert_eq!(again["recordEvent"]["replayed"], true);
    assert_eq!(points(&again), 50);
    let next = s
        .ok(&admin, EVENT, review("rv-5", "2026-11-15T10:00:00Z"))
        .await;
    assert_eq!(points(&next), 50);
    let capped = s
        .ok(&admin, EVENT, review("rv-6", "2026-11-16T10:00:00Z"))
        .await;
    assert_eq!(points(&capped), 0);
    assert_eq!(balance(&s, &admin, &member).await, (200, 0));
    s.finish().await;
}
