//! The reward catalogue and redemptions end to end on both backends: catalogue entries priced
//! and validated by their reward-type plugin, redemption codes issued against the ledger (hold
//! and capture), idempotency, failures that leave nothing half done, codes used exactly once,
//! cancellation that gives points and stock back, and stock and per-member limits that hold
//! under concurrency.

use chrono::{DateTime, Duration, FixedOffset, SecondsFormat, Utc};
use loyalty_tests::{Backend, TestServer, both_backends, code, field};
use serde_json::{Value, json};
use std::collections::HashSet;

both_backends!(
    catalogue_crud_and_plugin_validation,
    redeem_issues_a_code_and_debits_points,
    failures_leave_nothing_half_done,
    codes_are_used_exactly_once,
    cancel_returns_points_and_stock,
    one_key_redeems_once_under_concurrency,
    stock_holds_under_concurrency,
    per_member_limit_holds_under_concurrency,
    reward_types_give_their_effects,
    reward_limits_have_keys,
);

macro_rules! reward_fields {
    () => {
        "id name description imageUrl pointsCost plugin { id name version kind } config stock \
         perMemberLimit validFrom validUntil minTier active codeValidDays createdAt updatedAt \
         stats { issued used expired cancelled redemptionRate }"
    };
}

macro_rules! redemption_fields {
    () => {
        "id code status quantity pointsCost effects { kind amount currency basisPoints cap sku \
         couponCode name details } reward { id name } memberId createdAt expiresAt usedAt \
         cancelledAt"
    };
}

macro_rules! balance_fields {
    () => {
        "balance { available held lifetimeRedeemed }"
    };
}

const CREATE: &str = concat!(
    "mutation($i: CreateRewardInput!) { createReward(input: $i) { reward { ",
    reward_fields!(),
    " } } }"
);
const UPDATE: &str = concat!(
    "mutation($i: UpdateRewardInput!) { updateReward(input: $i) { reward { ",
    reward_fields!(),
    " } } }"
);
const CATALOGUE: &str = concat!("{ catalogue { ", reward_fields!(), " } }");
const OFFERS: &str = "query($m: ID!) { rewards(memberId: $m) { reward { id name } canRedeem \
                      reason message pointsCost } }";
const REDEEM: &str = concat!(
    "mutation($i: RedeemRewardInput!) { redeemReward(input: $i) { redemption { ",
    redemption_fields!(),
    " } member { id ",
    balance_fields!(),
    " } } }"
);
const USE: &str = concat!(
    "mutation($c: String!) { useRedemptionCode(input: {code: $c}) { redemption { ",
    redemption_fields!(),
    " } } }"
);
const CANCEL: &str = concat!(
    "mutation($r: ID!) { cancelRedemption(input: {redemptionId: $r}) { redemption { ",
    redemption_fields!(),
    " } member { id ",
    balance_fields!(),
    " } } }"
);
const REDEMPTIONS: &str = "query($id: ID!, $f: Int, $a: String) { member(id: $id) { \
                           redemptions(first: $f, after: $a) { edges { cursor node { id code \
                           status quantity pointsCost usedAt cancelledAt reward { id } } } \
                           pageInfo { hasNextPage endCursor } } } }";
const BALANCE: &str = concat!(
    "query($id: ID!) { member(id: $id) { ",
    balance_fields!(),
    " } }"
);
const HISTORY: &str = "query($id: ID!) { member(id: $id) { history(first: 50) { edges { node { \
                       id kind points } } } } }";
const EXPIRING: &str = "query($id: ID!) { member(id: $id) { expiringPoints(withinDays: 31) { \
                        points expiresAt } } }";
const ADJUST: &str = "mutation($i: AdjustPointsInput!) { adjustPoints(input: $i) { entry { id \
                      points } } }";
const POLICY: &str = "mutation { setPointsPolicy(input: {expiry: {kind: DAYS_AFTER_EARN, value: \
                      30}, shortfall: ALLOW_NEGATIVE}) { tenant { id } } }";

const UNKNOWN_ID: &str = "0190f8a0-0000-7000-8000-000000000001";

/// A fixed-discount config the plugin accepts: 5.00 EUR off per unit.
fn five_eur() -> Value {
    json!({"amount_minor": 500, "currency": "EUR"})
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

/// Gives `member` `points` (ADMIN key).
async fn fund(s: &TestServer, key: &str, member: &str, points: i64) {
    let idem = format!("fund-{}", uuid::Uuid::now_v7());
    let input = json!({"memberId": member, "points": points, "reason": "test funds",
                       "idempotencyKey": idem});
    let data = s.ok(key, ADJUST, json!({"i": input})).await;
    assert_eq!(data["adjustPoints"]["entry"]["points"], points);
}

/// A copy of `base` with the fields of `extra` set.
fn merged(base: &Value, extra: Value) -> Value {
    let mut v = base.clone();
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            o.insert(k.clone(), x.clone());
        }
    }
    v
}

/// A `CreateRewardInput` with the required fields, plus the fields of `extra`.
fn reward_input(name: &str, cost: i64, plugin: &str, config: Value, extra: Value) -> Value {
    let base = json!({"name": name, "pointsCost": cost, "pluginVersionId": plugin,
                      "config": config});
    merged(&base, extra)
}

async fn create_raw(s: &TestServer, key: &str, input: Value) -> Value {
    s.gql(Some(key), CREATE, json!({"i": input})).await
}

/// Creates a reward that must be accepted; returns it.
async fn create_reward(s: &TestServer, key: &str, input: Value) -> Value {
    s.ok(key, CREATE, json!({"i": input})).await["createReward"]["reward"].clone()
}

/// A fixed-discount reward of 5.00 EUR per unit, with the fields of `extra`.
async fn fixed_reward(s: &TestServer, key: &str, plugin: &str, cost: i64, extra: Value) -> Value {
    let name = format!("{cost} points for 5 EUR off");
    create_reward(s, key, reward_input(&name, cost, plugin, five_eur(), extra)).await
}

async fn update_raw(s: &TestServer, key: &str, input: Value) -> Value {
    s.gql(Some(key), UPDATE, json!({"i": input})).await
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap_or_else(|| panic!("no id: {v:#}"))
}

/// A `RedeemRewardInput` for the reward object `reward`.
fn redeem_input(member: &str, reward: &Value, quantity: i64, idem: &str) -> Value {
    json!({"memberId": member, "rewardId": id(reward), "quantity": quantity,
           "idempotencyKey": idem})
}

async fn redeem_raw(s: &TestServer, key: &str, input: Value) -> Value {
    s.gql(Some(key), REDEEM, json!({"i": input})).await
}

/// Redeems and returns the `redeemReward` payload; panics on errors.
async fn redeem(s: &TestServer, key: &str, input: Value) -> Value {
    s.ok(key, REDEEM, json!({"i": input})).await["redeemReward"].clone()
}

async fn use_raw(s: &TestServer, key: &str, code: &str) -> Value {
    s.gql(Some(key), USE, json!({"c": code})).await
}

async fn cancel_raw(s: &TestServer, key: &str, redemption: &str) -> Value {
    s.gql(Some(key), CANCEL, json!({"r": redemption})).await
}

/// The `extensions.reason` of the first error, or "".
fn reason(v: &Value) -> String {
    v["errors"][0]["extensions"]["reason"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn message(v: &Value) -> String {
    v["errors"][0]["message"].as_str().unwrap_or("").to_string()
}

fn expect_code(v: &Value, expected: &str) {
    assert_eq!(code(v), expected, "{v:#}");
}

fn expect_unavailable(v: &Value, why: &str) {
    assert_eq!(code(v), "REWARD_UNAVAILABLE", "{v:#}");
    assert_eq!(reason(v), why, "{v:#}");
}

/// VALIDATION on `config`.
fn expect_bad_config(v: &Value) {
    assert_eq!(code(v), "VALIDATION", "{v:#}");
    assert_eq!(field(v), "config", "{v:#}");
}

/// The fields of `v` named in `keys` (separated by spaces), as an object: to compare several
/// at once.
fn pick(v: &Value, keys: &str) -> Value {
    keys.split_whitespace()
        .map(|k| (k.to_string(), v[k].clone()))
        .collect()
}

/// `(available, held, lifetimeRedeemed)`.
fn triple(b: &Value) -> (i64, i64, i64) {
    let n = |k: &str| b[k].as_i64().unwrap_or_else(|| panic!("{k}: {b}"));
    (n("available"), n("held"), n("lifetimeRedeemed"))
}

async fn balance(s: &TestServer, key: &str, member: &str) -> (i64, i64, i64) {
    triple(&s.ok(key, BALANCE, json!({"id": member})).await["member"]["balance"])
}

async fn catalogue(s: &TestServer, key: &str) -> Vec<Value> {
    let data = s.ok(key, CATALOGUE, json!({})).await;
    data["catalogue"].as_array().expect("catalogue").clone()
}

/// One reward of the catalogue, by id.
async fn reward(s: &TestServer, key: &str, r: &Value) -> Value {
    catalogue(s, key)
        .await
        .into_iter()
        .find(|x| x["id"] == r["id"])
        .unwrap_or_else(|| panic!("reward {} is not in the catalogue", r["id"]))
}

/// `[issued, used, expired, cancelled]` of a reward.
fn stats(r: &Value) -> [i64; 4] {
    ["issued", "used", "expired", "cancelled"].map(|k| r["stats"][k].as_i64().expect("stat"))
}

fn rate(r: &Value) -> Option<f64> {
    r["stats"]["redemptionRate"].as_f64()
}

async fn offers(s: &TestServer, key: &str, member: &str) -> Vec<Value> {
    let data = s.ok(key, OFFERS, json!({"m": member})).await;
    data["rewards"].as_array().expect("rewards").clone()
}

fn offer<'a>(offers: &'a [Value], reward: &Value) -> &'a Value {
    offers
        .iter()
        .find(|o| o["reward"]["id"] == reward["id"])
        .unwrap_or_else(|| panic!("no offer for {}: {offers:#?}", reward["name"]))
}

/// Why the member cannot redeem the offer; "" when they can (and then there is no reason).
fn why_not(o: &Value) -> String {
    match o["canRedeem"].as_bool() {
        Some(true) => {
            assert_eq!(o["reason"], Value::Null, "{o:#}");
            String::new()
        }
        Some(false) => o["reason"]
            .as_str()
            .unwrap_or_else(|| panic!("{o:#}"))
            .to_string(),
        None => panic!("no canRedeem: {o:#}"),
    }
}

fn nodes(connection: &Value) -> Vec<Value> {
    let edges = connection["edges"].as_array().expect("edges");
    edges.iter().map(|e| e["node"].clone()).collect()
}

/// The member's redemptions, newest first.
async fn redemptions(s: &TestServer, key: &str, member: &str) -> Vec<Value> {
    let data = s.ok(key, REDEMPTIONS, json!({"id": member, "f": 50})).await;
    nodes(&data["member"]["redemptions"])
}

async fn history(s: &TestServer, key: &str, member: &str) -> Vec<Value> {
    nodes(&s.ok(key, HISTORY, json!({"id": member})).await["member"]["history"])
}

async fn expiring(s: &TestServer, key: &str, member: &str) -> Vec<Value> {
    let data = s.ok(key, EXPIRING, json!({"id": member})).await;
    data["member"]["expiringPoints"]
        .as_array()
        .expect("expiringPoints")
        .clone()
}

/// Sends one GraphQL request from a task of its own; the response comes out of the handle.
fn spawn_gql(
    s: &TestServer,
    key: &str,
    query: &'static str,
    variables: Value,
) -> tokio::task::JoinHandle<Value> {
    let (http, url, key) = (s.http.clone(), s.url("/graphql"), key.to_owned());
    tokio::spawn(async move {
        let body = json!({"query": query, "variables": variables});
        let resp = http.post(url).bearer_auth(key).json(&body).send().await;
        resp.expect("request sent")
            .json::<Value>()
            .await
            .expect("JSON response")
    })
}

fn time(v: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn non_empty(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
}

/// A redemption code: at least 12 characters of A-Z, 0-9 and '-'.
fn assert_code_format(code: &Value) {
    let c = code
        .as_str()
        .unwrap_or_else(|| panic!("code is not a string: {code}"));
    let allowed = |ch: char| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '-';
    assert!(
        c.len() >= 12 && c.chars().all(allowed),
        "bad redemption code {c:?}"
    );
}

async fn catalogue_crud_and_plugin_validation(b: Backend) {
    let s = TestServer::start(b).await;
    let (tenant, admin) = s.tenant("rewards-crud").await;
    let integration = s.key(&admin, &tenant, "INTEGRATION").await;
    let read_only = s.key(&admin, &tenant, "READ_ONLY").await;
    let fixed = plugin_id(&s, &admin, "fixed-discount").await;

    let config = json!({"amount_minor": 500, "currency": "EUR", "max_quantity": 4});
    let extra = json!({"description": "Five euros off", "imageUrl": "https://example.com/5.png",
                       "stock": 10, "perMemberLimit": 3, "validFrom": "2024-01-01T00:00:00Z",
                       "validUntil": "2099-12-31T23:00:00Z", "codeValidDays": 14});
    let full = reward_input("5 EUR off", 500, &fixed, config.clone(), extra);
    let r = create_reward(&s, &admin, full.clone()).await;
    assert!(non_empty(&r["id"]), "{r:#}");
    let shown = "name description imageUrl pointsCost config stock perMemberLimit minTier active \
                 codeValidDays stats";
    let expected = json!({"name": "5 EUR off", "description": "Five euros off",
        "imageUrl": "https://example.com/5.png", "pointsCost": 500, "config": config,
        "stock": 10, "perMemberLimit": 3, "minTier": null, "active": true, "codeValidDays": 14,
        "stats": {"issued": 0, "used": 0, "expired": 0, "cancelled": 0, "redemptionRate": 0.0}});
    assert_eq!(pick(&r, shown), expected);
    let plugin = json!({"id": fixed, "name": "fixed-discount", "kind": "REWARD_TYPE"});
    assert_eq!(pick(&r["plugin"], "id name kind"), plugin);
    assert_eq!(time(&r["validFrom"]), time(&json!("2024-01-01T00:00:00Z")));
    assert_eq!(time(&r["validUntil"]), time(&json!("2099-12-31T23:00:00Z")));
    assert!(time(&r["updatedAt"]) >= time(&r["createdAt"]), "{r:#}");

    // Only the required fields: the defaults.
    let minimal = fixed_reward(&s, &admin, &fixed, 100, json!({})).await;
    let optional = "description imageUrl stock perMemberLimit validFrom validUntil minTier \
                    active codeValidDays";
    let defaults = json!({"description": null, "imageUrl": null, "stock": null,
                          "perMemberLimit": null, "validFrom": null, "validUntil": null,
                          "minTier": null, "active": true, "codeValidDays": 30});
    assert_eq!(pick(&minimal, optional), defaults);

    // What the plugin or the catalogue refuses: VALIDATION, and nothing is created.
    let zero = json!({"config": {"amount_minor": 0, "currency": "EUR"}});
    expect_bad_config(&create_raw(&s, &admin, merged(&full, zero)).await);
    let base_rate = plugin_id(&s, &admin, "base-rate").await;
    let bad = [
        json!({"config": {"amount_minor": 500, "currency": "EUR", "amount": 5}}),
        json!({"pluginVersionId": base_rate,
               "config": {"points_per_unit": 1, "unit_minor": 100, "rounding": "floor"}}),
        json!({"codeValidDays": 0}),
        json!({"codeValidDays": 3651}),
        json!({"validUntil": "2023-06-01T00:00:00Z"}),
        json!({"validUntil": "2024-01-01T00:00:00Z"}),
        json!({"pointsCost": -1}),
        json!({"stock": -1}),
        json!({"perMemberLimit": 0}),
    ];
    for patch in bad {
        let v = create_raw(&s, &admin, merged(&full, patch.clone())).await;
        assert_eq!(code(&v), "VALIDATION", "{patch}: {v:#}");
    }
    // Only ADMIN keys manage the catalogue.
    expect_code(
        &create_raw(&s, &integration, full.clone()).await,
        "FORBIDDEN",
    );
    expect_code(&create_raw(&s, &read_only, full.clone()).await, "FORBIDDEN");
    assert_eq!(catalogue(&s, &admin).await.len(), 2);

    // Update: absent fields stay, explicit null clears (null stock: unlimited).
    let rid = json!({"rewardId": r["id"]});
    let upd = json!({"name": "6 EUR off", "pointsCost": 600, "stock": null, "description": null});
    let u = s.ok(&admin, UPDATE, json!({"i": merged(&rid, upd)})).await["updateReward"]["reward"]
        .clone();
    let expected = merged(
        &pick(&r, shown),
        json!({"name": "6 EUR off", "pointsCost": 600, "stock": null, "description": null}),
    );
    assert_eq!(pick(&u, shown), expected);
    assert_eq!((&u["id"], &u["validFrom"]), (&r["id"], &r["validFrom"]));
    assert_eq!(time(&u["createdAt"]), time(&r["createdAt"]));
    assert!(time(&u["updatedAt"]) >= time(&r["updatedAt"]), "{u:#}");
    // Updates are validated the same way, against what is stored.
    let negative = json!({"config": {"amount_minor": -5, "currency": "EUR"}});
    expect_bad_config(&update_raw(&s, &admin, merged(&rid, negative)).await);
    for patch in [
        json!({"validUntil": "2023-01-01T00:00:00Z"}),
        json!({"pointsCost": -5}),
        json!({"codeValidDays": 0}),
        json!({"perMemberLimit": 0}),
    ] {
        let v = update_raw(&s, &admin, merged(&rid, patch.clone())).await;
        assert_eq!(code(&v), "VALIDATION", "{patch}: {v:#}");
    }
    let renamed = merged(&rid, json!({"name": "stolen"}));
    expect_code(
        &update_raw(&s, &integration, renamed.clone()).await,
        "FORBIDDEN",
    );
    let unknown = json!({"rewardId": UNKNOWN_ID, "name": "x"});
    expect_code(&update_raw(&s, &admin, unknown).await, "NOT_FOUND");
    let (_, other) = s.tenant("rewards-crud-other").await;
    expect_code(&update_raw(&s, &other, renamed).await, "NOT_FOUND");
    assert_eq!(
        pick(&reward(&s, &admin, &r).await, shown),
        expected,
        "failed updates change nothing"
    );

    // Deactivated rewards stay in the catalogue (any key); another tenant sees none of it.
    let off = json!({"i": merged(&rid, json!({"active": false}))});
    assert_eq!(
        s.ok(&admin, UPDATE, off).await["updateReward"]["reward"]["active"],
        false
    );
    let listed = catalogue(&s, &read_only).await;
    let states: Vec<Value> = listed.iter().map(|x| pick(x, "id active")).collect();
    assert_eq!(states.len(), 2, "{listed:#?}");
    assert!(
        states.contains(&json!({"id": r["id"], "active": false})),
        "{states:?}"
    );
    assert!(
        states.contains(&json!({"id": minimal["id"], "active": true})),
        "{states:?}"
    );
    assert_eq!(catalogue(&s, &other).await, Vec::<Value>::new());
    s.finish().await;
}

async fn redeem_issues_a_code_and_debits_points(b: Backend) {
    let s = TestServer::start(b).await;
    let (tenant, admin) = s.tenant("rewards-redeem").await;
    let integration = s.key(&admin, &tenant, "INTEGRATION").await;
    let fixed = plugin_id(&s, &admin, "fixed-discount").await;
    let member = s.enroll(&admin, json!({"externalId": "r-1"})).await;
    fund(&s, &admin, &member, 1000).await;
    let r = fixed_reward(
        &s,
        &admin,
        &fixed,
        300,
        json!({"stock": 5, "codeValidDays": 7}),
    )
    .await;

    let input = redeem_input(&member, &r, 1, "redeem-1");
    let p = redeem(&s, &integration, input.clone()).await;
    let red = p["redemption"].clone();
    assert!(non_empty(&red["id"]), "{red:#}");
    assert_code_format(&red["code"]);
    let fields = "status quantity pointsCost memberId usedAt cancelledAt";
    let expected = json!({"status": "ISSUED", "quantity": 1, "pointsCost": 300,
                          "memberId": member, "usedAt": null, "cancelledAt": null});
    assert_eq!(pick(&red, fields), expected);
    assert_eq!(red["reward"]["id"], r["id"]);
    let effects = red["effects"].as_array().expect("effects");
    assert_eq!(effects.len(), 1, "{red:#}");
    let discount = json!({"kind": "FIXED_DISCOUNT", "amount": 500, "currency": "EUR"});
    assert_eq!(pick(&effects[0], "kind amount currency"), discount);
    let valid_for = time(&red["expiresAt"]) - time(&red["createdAt"]);
    let off = (valid_for - Duration::days(7)).num_seconds().abs();
    assert!(off <= 60, "expiresAt should be createdAt + 7 days: {red:#}");
    let age = Utc::now() - time(&red["createdAt"]).with_timezone(&Utc);
    assert!(age.num_seconds().abs() < 300, "{red:#}");
    assert_eq!(p["member"]["id"], member.as_str());
    assert_eq!(triple(&p["member"]["balance"]), (700, 0, 300));
    assert_eq!(balance(&s, &admin, &member).await, (700, 0, 300));
    let after = reward(&s, &admin, &r).await;
    assert_eq!(
        (&after["stock"], stats(&after), rate(&after)),
        (&json!(4), [1, 0, 0, 0], Some(0.0))
    );

    // The ledger: the points were held, then captured.
    let h = history(&s, &admin, &member).await;
    let kind = |k: &str| {
        h.iter()
            .find(|e| e["kind"] == k)
            .map(|e| e["points"].clone())
    };
    assert_eq!(h.len(), 3, "{h:#?}");
    assert_eq!(kind("HOLD"), Some(json!(-300)), "{h:#?}");
    assert_eq!(
        kind("CAPTURE"),
        Some(json!(0)),
        "a capture moves held points: {h:#?}"
    );
    let total: i64 = h
        .iter()
        .map(|e| e["points"].as_i64().expect("points"))
        .sum();
    assert_eq!(total, 700);

    // Same key, same input: the same redemption, nothing more debited.
    let again = redeem(&s, &integration, input.clone()).await["redemption"].clone();
    assert_eq!(
        pick(&again, "id code pointsCost"),
        pick(&red, "id code pointsCost")
    );
    assert_eq!(balance(&s, &admin, &member).await, (700, 0, 300));
    // Same key, other input: CONFLICT, and still nothing more.
    let v = redeem_raw(&s, &integration, merged(&input, json!({"quantity": 2}))).await;
    expect_code(&v, "CONFLICT");
    let after = reward(&s, &admin, &r).await;
    assert_eq!((&after["stock"], stats(&after)), (&json!(4), [1, 0, 0, 0]));
    assert_eq!(balance(&s, &admin, &member).await, (700, 0, 300));

    // A second redemption of two units: another code; the list is newest first.
    let p = redeem(&s, &admin, redeem_input(&member, &r, 2, "redeem-2")).await;
    let second = p["redemption"].clone();
    assert_eq!(
        pick(&second, "quantity pointsCost"),
        json!({"quantity": 2, "pointsCost": 600})
    );
    assert_eq!(second["effects"][0]["amount"], 1000);
    assert_code_format(&second["code"]);
    assert_ne!(second["code"], red["code"]);
    assert_eq!(balance(&s, &admin, &member).await, (100, 0, 900));
    assert_eq!(
        reward(&s, &admin, &r).await["stock"],
        2,
        "stock counts units"
    );
    let list = redemptions(&s, &admin, &member).await;
    assert_eq!(list.len(), 2, "{list:#?}");
    assert_eq!(list[0]["id"], second["id"]);
    let listed =
        json!({"id": red["id"], "code": red["code"], "status": "ISSUED", "pointsCost": 300});
    assert_eq!(pick(&list[1], "id code status pointsCost"), listed);
    assert_eq!(list[1]["reward"]["id"], r["id"]);
    // Relay pagination.
    let page = s
        .ok(&admin, REDEMPTIONS, json!({"id": member, "f": 1}))
        .await;
    let conn = &page["member"]["redemptions"];
    assert_eq!(conn["edges"][0]["node"]["id"], second["id"]);
    assert_eq!(conn["pageInfo"]["hasNextPage"], true);
    let vars = json!({"id": member, "f": 1, "a": conn["pageInfo"]["endCursor"]});
    let next = s.ok(&admin, REDEMPTIONS, vars).await;
    let conn = &next["member"]["redemptions"];
    let ids: Vec<Value> = nodes(conn).iter().map(|n| n["id"].clone()).collect();
    assert_eq!(ids, vec![red["id"].clone()]);
    assert_eq!(conn["pageInfo"]["hasNextPage"], false);
    s.finish().await;
}

async fn failures_leave_nothing_half_done(b: Backend) {
    let s = TestServer::start(b).await;
    let (tenant, admin) = s.tenant("rewards-fail").await;
    let read_only = s.key(&admin, &tenant, "READ_ONLY").await;
    let fixed = plugin_id(&s, &admin, "fixed-discount").await;
    let member = s.enroll(&admin, json!({"externalId": "f-1"})).await;
    fund(&s, &admin, &member, 500).await;
    let future = (Utc::now() + Duration::days(10)).to_rfc3339_opts(SecondsFormat::Secs, true);
    // Each reward has exactly one reason not to be redeemed now, except `ok`.
    let expensive = fixed_reward(&s, &admin, &fixed, 1000, json!({"stock": 5})).await;
    let sold_out = fixed_reward(&s, &admin, &fixed, 10, json!({"stock": 0})).await;
    let inactive = fixed_reward(&s, &admin, &fixed, 10, json!({"active": false})).await;
    assert_eq!(inactive["active"], false);
    let later = fixed_reward(&s, &admin, &fixed, 10, json!({"validFrom": future})).await;
    let gold = fixed_reward(&s, &admin, &fixed, 10, json!({"minTier": "gold"})).await;
    assert_eq!(gold["minTier"], "gold");
    let cart_only = json!({"amount_minor": 500, "currency": "EUR", "require_cart": true});
    let input = reward_input("checkout only", 10, &fixed, cart_only, json!({}));
    let checkout = create_reward(&s, &admin, input).await;
    let at_most_two = json!({"amount_minor": 500, "currency": "EUR", "max_quantity": 2});
    let input = reward_input("ok", 100, &fixed, at_most_two, json!({"stock": 5}));
    let ok = create_reward(&s, &admin, input).await;

    let before = catalogue(&s, &admin).await;
    let attempt = |r: &Value, q: i64, k: &str| redeem_input(&member, r, q, k);
    let v = redeem_raw(&s, &admin, attempt(&expensive, 1, "f-expensive")).await;
    expect_code(&v, "INSUFFICIENT_POINTS");
    for (r, why) in [
        (&sold_out, "OUT_OF_STOCK"),
        (&inactive, "INACTIVE"),
        (&later, "OUTSIDE_DATES"),
        (&gold, "TIER_TOO_LOW"),
        (&checkout, "REJECTED"),
    ] {
        expect_unavailable(&redeem_raw(&s, &admin, attempt(r, 1, id(r))).await, why);
    }
    // A rejection comes in the plugin's words.
    let v = redeem_raw(&s, &admin, attempt(&checkout, 1, "f-checkout")).await;
    assert!(message(&v).contains("checkout"), "{v:#}");
    let v = redeem_raw(&s, &admin, attempt(&ok, 3, "f-ok-3")).await;
    expect_unavailable(&v, "REJECTED");
    assert!(message(&v).contains("At most 2"), "{v:#}");
    // Bad input, roles, unknown ids, other tenants.
    for q in [0, 101] {
        let v = redeem_raw(&s, &admin, attempt(&ok, q, &format!("f-q{q}"))).await;
        assert_eq!(code(&v), "VALIDATION", "quantity {q}: {v:#}");
    }
    expect_code(
        &redeem_raw(&s, &read_only, attempt(&ok, 1, "f-ro")).await,
        "FORBIDDEN",
    );
    let nobody = json!({"id": UNKNOWN_ID});
    let v = redeem_raw(&s, &admin, attempt(&nobody, 1, "f-unknown-reward")).await;
    expect_code(&v, "NOT_FOUND");
    let v = redeem_raw(
        &s,
        &admin,
        redeem_input(UNKNOWN_ID, &ok, 1, "f-unknown-member"),
    )
    .await;
    expect_code(&v, "NOT_FOUND");
    let (_, other) = s.tenant("rewards-fail-other").await;
    expect_code(
        &redeem_raw(&s, &other, attempt(&ok, 1, "f-other")).await,
        "NOT_FOUND",
    );

    // Nothing moved: balance, holds, stock, stats, redemptions, ledger.
    assert_eq!(balance(&s, &admin, &member).await, (500, 0, 0));
    assert_eq!(catalogue(&s, &admin).await, before);
    assert!(redemptions(&s, &admin, &member).await.is_empty());
    assert_eq!(
        history(&s, &admin, &member).await.len(),
        1,
        "only the funding"
    );

    // What the member is offered: the active rewards, each with why not.
    let o = offers(&s, &admin, &member).await;
    assert_eq!(o.len(), 6, "the inactive reward is not offered: {o:#?}");
    assert!(o.iter().all(|x| x["reward"]["id"] != inactive["id"]));
    for (r, why) in [
        (&expensive, "NOT_ENOUGH_POINTS"),
        (&sold_out, "OUT_OF_STOCK"),
        (&later, "OUTSIDE_DATES"),
        (&gold, "TIER_TOO_LOW"),
        (&checkout, "REJECTED"),
        (&ok, ""),
    ] {
        assert_eq!(why_not(offer(&o, r)), why, "{}", r["name"]);
    }
    assert_eq!(offer(&o, &expensive)["pointsCost"], 1000);
    assert_eq!(offer(&o, &ok)["pointsCost"], 100);
    let c = offer(&o, &checkout);
    let words = c["message"].as_str().unwrap_or("");
    assert!(
        c["pointsCost"].is_null() && words.contains("checkout"),
        "{c:#}"
    );

    // And the redeemable one is: two units for twice the catalogue price.
    let p = redeem(&s, &admin, attempt(&ok, 2, "f-ok-2")).await;
    assert_eq!(p["redemption"]["pointsCost"], 200);
    assert_eq!(triple(&p["member"]["balance"]), (300, 0, 200));
    assert_eq!(reward(&s, &admin, &ok).await["stock"], 3);
    s.finish().await;
}

async fn codes_are_used_exactly_once(b: Backend) {
    let s = TestServer::start(b).await;
    let (tenant, admin) = s.tenant("rewards-use").await;
    let integration = s.key(&admin, &tenant, "INTEGRATION").await;
    let fixed = plugin_id(&s, &admin, "fixed-discount").await;
    let member = s.enroll(&admin, json!({"externalId": "u-1"})).await;
    fund(&s, &admin, &member, 1000).await;
    let r = fixed_reward(&s, &admin, &fixed, 100, json!({})).await;
    let p = redeem(&s, &integration, redeem_input(&member, &r, 1, "u-1")).await;
    let red = p["redemption"].clone();
    let the_code = red["code"].as_str().expect("code").to_string();

    let tasks: Vec<_> = (0..10)
        .map(|_| spawn_gql(&s, &integration, USE, json!({"c": the_code})))
        .collect();
    let (mut used, mut conflicts) = (Vec::new(), 0);
    for t in tasks {
        let v = t.await.expect("task");
        match code(&v).as_str() {
            "OK" => used.push(v["data"]["useRedemptionCode"]["redemption"].clone()),
            "CONFLICT" => conflicts += 1,
            other => panic!("unexpected outcome {other}: {v:#}"),
        }
    }
    assert_eq!((used.len(), conflicts), (1, 9));
    let u = &used[0];
    assert_eq!((&u["id"], &u["status"]), (&red["id"], &json!("USED")));
    assert!(time(&u["usedAt"]) >= time(&red["createdAt"]), "{u:#}");
    assert_eq!(u["cancelledAt"], Value::Null);
    assert_eq!(u["effects"], red["effects"]);

    // Once more, one at a time: still CONFLICT. Unknown and foreign codes: NOT_FOUND.
    expect_code(&use_raw(&s, &admin, &the_code).await, "CONFLICT");
    expect_code(&use_raw(&s, &admin, "UNKNOWN-CODE-0000").await, "NOT_FOUND");
    let (_, other) = s.tenant("rewards-use-other").await;
    expect_code(&use_raw(&s, &other, &the_code).await, "NOT_FOUND");
    // A used code cannot be cancelled.
    expect_code(&cancel_raw(&s, &admin, id(&red)).await, "CONFLICT");

    assert_eq!(balance(&s, &admin, &member).await, (900, 0, 100));
    let after = reward(&s, &admin, &r).await;
    assert_eq!((stats(&after), rate(&after)), ([0, 1, 0, 0], Some(1.0)));
    let list = redemptions(&s, &admin, &member).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], "USED");
    assert!(non_empty(&list[0]["usedAt"]), "{list:#?}");
    s.finish().await;
}

async fn cancel_returns_points_and_stock(b: Backend) {
    let s = TestServer::start(b).await;
    let (tenant, admin) = s.tenant("rewards-cancel").await;
    let integration = s.key(&admin, &tenant, "INTEGRATION").await;
    let fixed = plugin_id(&s, &admin, "fixed-discount").await;
    // Points expire 30 days after earning, so the lot they come back to can be seen.
    s.ok(&admin, POLICY, json!({})).await;
    let member = s.enroll(&admin, json!({"externalId": "c-1"})).await;
    fund(&s, &admin, &member, 1000).await;
    let lots = expiring(&s, &admin, &member).await;
    assert_eq!(lots.len(), 1, "{lots:#?}");
    assert_eq!(lots[0]["points"], 1000);

    let r = fixed_reward(&s, &admin, &fixed, 400, json!({"stock": 3})).await;
    let p = redeem(&s, &integration, redeem_input(&member, &r, 1, "c-1")).await;
    let red = p["redemption"].clone();
    assert_eq!(balance(&s, &admin, &member).await, (600, 0, 400));
    assert_eq!(reward(&s, &admin, &r).await["stock"], 2);
    assert_eq!(expiring(&s, &admin, &member).await[0]["points"], 600);

    let v = cancel_raw(&s, &integration, id(&red)).await;
    expect_code(&v, "OK");
    let p = &v["data"]["cancelRedemption"];
    assert_eq!(p["redemption"]["id"], red["id"]);
    assert_eq!(p["redemption"]["status"], "CANCELLED");
    assert!(non_empty(&p["redemption"]["cancelledAt"]), "{p:#}");
    assert_eq!(p["redemption"]["usedAt"], Value::Null);
    assert_eq!(triple(&p["member"]["balance"]), (1000, 0, 0));
    assert_eq!(balance(&s, &admin, &member).await, (1000, 0, 0));
    // Back into the same lot, with the same expiry.
    let back = expiring(&s, &admin, &member).await;
    assert_eq!(back.len(), 1, "{back:#?}");
    assert_eq!(back[0]["points"], 1000);
    assert_eq!(time(&back[0]["expiresAt"]), time(&lots[0]["expiresAt"]));
    let after = reward(&s, &admin, &r).await;
    assert_eq!(after["stock"], 3);
    assert_eq!((stats(&after), rate(&after)), ([0, 0, 0, 1], Some(0.0)));

    // Only once; the code is dead; another tenant cannot see it.
    expect_code(&cancel_raw(&s, &integration, id(&red)).await, "CONFLICT");
    let the_code = red["code"].as_str().expect("code");
    expect_code(&use_raw(&s, &integration, the_code).await, "CONFLICT");
    let (_, other) = s.tenant("rewards-cancel-other").await;
    expect_code(&cancel_raw(&s, &other, id(&red)).await, "NOT_FOUND");
    assert_eq!(balance(&s, &admin, &member).await, (1000, 0, 0));
    assert_eq!(reward(&s, &admin, &r).await["stock"], 3);
    let list = redemptions(&s, &admin, &member).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], "CANCELLED");
    s.finish().await;
}

/// Retries of one redemption sent at once: one hold captured across two lots, one code, the
/// last unit of stock, and every retry answered with it. Cancelled, the points go back to both lots; the ledger's
/// invariants hold throughout.
async fn one_key_redeems_once_under_concurrency(b: Backend) {
    let s = TestServer::start(b).await;
    let (tenant, admin) = s.tenant("rewards-twins").await;
    let integration = s.key(&admin, &tenant, "INTEGRATION").await;
    let fixed = plugin_id(&s, &admin, "fixed-discount").await;
    // Points expire 30 days after earning, so the lots they come back to can be seen.
    s.ok(&admin, POLICY, json!({})).await;
    let member = s.enroll(&admin, json!({"externalId": "t-1"})).await;
    fund(&s, &admin, &member, 200).await;
    fund(&s, &admin, &member, 1000).await;
    // One unit in stock: a retry that reaches the lock after the first committed finds it
    // gone, and is answered with the first's redemption all the same.
    let r = fixed_reward(&s, &admin, &fixed, 300, json!({"stock": 1})).await;

    let input = redeem_input(&member, &r, 1, "twin-1");
    let answers = s
        .gql_at_once(&integration, REDEEM, vec![json!({"i": input}); 10])
        .await;
    let ids: HashSet<String> = answers
        .iter()
        .map(|v| {
            assert_eq!(code(v), "OK", "{v:#}");
            let red = &v["data"]["redeemReward"]["redemption"];
            red["id"].as_str().expect("id").to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one redemption for ten retries: {ids:?}");
    assert_eq!(balance(&s, &admin, &member).await, (900, 0, 300));
    let after = reward(&s, &admin, &r).await;
    assert_eq!((&after["stock"], stats(&after)), (&json!(0), [1, 0, 0, 0]));
    assert_eq!(redemptions(&s, &admin, &member).await.len(), 1);
    let kinds: Vec<Value> = history(&s, &admin, &member)
        .await
        .iter()
        .map(|e| json!([e["kind"], e["points"]]))
        .collect();
    let expected = json!([
        ["CAPTURE", 0],
        ["HOLD", -300],
        ["ADJUST", 1000],
        ["ADJUST", 200]
    ]);
    assert_eq!(json!(kinds), expected);
    s.assert_audit_clean().await;

    // The hold it captured gives every point back to the lots it took them from.
    let the_id = ids.into_iter().next().expect("id");
    expect_code(&cancel_raw(&s, &integration, &the_id).await, "OK");
    assert_eq!(balance(&s, &admin, &member).await, (1200, 0, 0));
    let lots: i64 = expiring(&s, &admin, &member)
        .await
        .iter()
        .map(|l| l["points"].as_i64().expect("points"))
        .sum();
    assert_eq!(lots, 1200);
    assert_eq!(reward(&s, &admin, &r).await["stock"], 1);
    s.assert_audit_clean().await;
    s.finish().await;
}

async fn stock_holds_under_concurrency(b: Backend) {
    let s = TestServer::start(b).await;
    let (tenant, admin) = s.tenant("rewards-stock").await;
    let integration = s.key(&admin, &tenant, "INTEGRATION").await;
    let fixed = plugin_id(&s, &admin, "fixed-discount").await;
    let r = fixed_reward(&s, &admin, &fixed, 10, json!({"stock": 10})).await;
    let mut members = Vec::new();
    for i in 0..20 {
        let m = s
            .enroll(&admin, json!({"externalId": format!("s-{i}")}))
            .await;
        fund(&s, &admin, &m, 1000).await;
        members.push(m);
    }

    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let input = redeem_input(&members[i % 20], &r, 1, &format!("race-{i}"));
            spawn_gql(&s, &integration, REDEEM, json!({"i": input}))
        })
        .collect();
    let (mut codes, mut out_of_stock) = (HashSet::new(), 0);
    for t in tasks {
        let v = t.await.expect("task");
        match (code(&v).as_str(), reason(&v).as_str()) {
            ("OK", _) => {
                let red = &v["data"]["redeemReward"]["redemption"];
                assert_eq!(red["status"], "ISSUED");
                assert_code_format(&red["code"]);
                codes.insert(red["code"].as_str().expect("code").to_string());
            }
            ("REWARD_UNAVAILABLE", "OUT_OF_STOCK") => out_of_stock += 1,
            other => panic!("unexpected outcome {other:?}: {v:#}"),
        }
    }
    assert_eq!(
        (codes.len(), out_of_stock),
        (10, 90),
        "ten successes, ten distinct codes"
    );
    let after = reward(&s, &admin, &r).await;
    assert_eq!((&after["stock"], stats(&after)), (&json!(0), [10, 0, 0, 0]));

    let (mut available, mut held, mut redeemed, mut listed) = (0, 0, 0, 0);
    for m in &members {
        let (a, h, l) = balance(&s, &admin, m).await;
        assert_eq!(a + l, 1000, "{m}");
        (available, held, redeemed) = (available + a, held + h, redeemed + l);
        listed += redemptions(&s, &admin, m).await.len();
    }
    assert_eq!(
        (available, held, redeemed, listed),
        (20 * 1000 - 100, 0, 100, 10)
    );
    s.finish().await;
}

async fn per_member_limit_holds_under_concurrency(b: Backend) {
    let s = TestServer::start(b).await;
    let (tenant, admin) = s.tenant("rewards-limit").await;
    let integration = s.key(&admin, &tenant, "INTEGRATION").await;
    let fixed = plugin_id(&s, &admin, "fixed-discount").await;
    let r = fixed_reward(&s, &admin, &fixed, 10, json!({"perMemberLimit": 2})).await;
    assert_eq!(
        (&r["stock"], &r["perMemberLimit"]),
        (&Value::Null, &json!(2))
    );
    let member = s.enroll(&admin, json!({"externalId": "l-1"})).await;
    fund(&s, &admin, &member, 1000).await;

    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let input = redeem_input(&member, &r, 1, &format!("limit-{i}"));
            spawn_gql(&s, &integration, REDEEM, json!({"i": input}))
        })
        .collect();
    let (mut issued, mut limited) = (Vec::new(), 0);
    for t in tasks {
        let v = t.await.expect("task");
        match (code(&v).as_str(), reason(&v).as_str()) {
            ("OK", _) => issued.push(v["data"]["redeemReward"]["redemption"].clone()),
            ("REWARD_UNAVAILABLE", "LIMIT_REACHED") => limited += 1,
            other => panic!("unexpected outcome {other:?}: {v:#}"),
        }
    }
    assert_eq!((issued.len(), limited), (2, 8));
    assert_eq!(balance(&s, &admin, &member).await, (980, 0, 20));
    assert_eq!(stats(&reward(&s, &admin, &r).await), [2, 0, 0, 0]);
    let o = offers(&s, &admin, &member).await;
    assert_eq!(why_not(offer(&o, &r)), "LIMIT_REACHED");

    // The limit is per member, and counts units.
    let fresh = s.enroll(&admin, json!({"externalId": "l-2"})).await;
    fund(&s, &admin, &fresh, 1000).await;
    let v = redeem_raw(&s, &admin, redeem_input(&fresh, &r, 3, "fresh-3")).await;
    expect_unavailable(&v, "LIMIT_REACHED");
    redeem(&s, &admin, redeem_input(&fresh, &r, 2, "fresh-2")).await;
    assert_eq!(balance(&s, &admin, &fresh).await, (980, 0, 20));

    // Cancelled redemptions do not count; used ones do.
    expect_code(&cancel_raw(&s, &admin, id(&issued[0])).await, "OK");
    let p = redeem(
        &s,
        &admin,
        redeem_input(&member, &r, 1, "limit-after-cancel"),
    )
    .await;
    assert_eq!(p["redemption"]["status"], "ISSUED");
    let used = issued[1]["code"].as_str().expect("code");
    expect_code(&use_raw(&s, &admin, used).await, "OK");
    let v = redeem_raw(&s, &admin, redeem_input(&member, &r, 1, "limit-after-use")).await;
    expect_unavailable(&v, "LIMIT_REACHED");
    assert_eq!(balance(&s, &admin, &member).await, (980, 0, 20));
    assert_eq!(stats(&reward(&s, &admin, &r).await), [2, 1, 0, 1]);
    s.finish().await;
}

async fn reward_types_give_their_effects(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("rewards-types").await;
    let member = s.enroll(&admin, json!({"externalId": "t-1"})).await;
    fund(&s, &admin, &member, 10_000).await;
    let configs = json!({
        "fixed-discount": {"amount_minor": 250, "currency": "EUR"},
        "percent-discount": {"basis_points": 1250, "cap_minor": 2000, "currency": "EUR"},
        "free-product": {"sku": "COFFEE-REG", "qualifying_skus": ["CROISSANT"]},
        "free-shipping": {},
        "perk": {"code": "early-access", "title": "Early access to the summer sale",
                 "description": "48 hours before everyone else.", "max_quantity": 2}
    });
    let mut rewards = Vec::new();
    for (name, cost) in [
        ("fixed-discount", 100),
        ("percent-discount", 300),
        ("free-product", 150),
        ("free-shipping", 50),
        ("perk", 500),
    ] {
        let config = configs[name].clone();
        let plugin = plugin_id(&s, &admin, name).await;
        let input = reward_input(name, cost, &plugin, config.clone(), json!({}));
        let r = create_reward(&s, &admin, input).await;
        let shown = json!({"plugin": {"name": name, "kind": "REWARD_TYPE"}, "config": config});
        assert_eq!(
            json!({"plugin": pick(&r["plugin"], "name kind"), "config": r["config"]}),
            shown
        );
        rewards.push(r);
    }
    let [fixed, percent, product, shipping, perk] = &rewards[..] else {
        panic!("five rewards")
    };
    let only_effect = |p: &Value| {
        let effects = p["redemption"]["effects"].as_array().expect("effects");
        assert_eq!(effects.len(), 1, "{p:#}");
        effects[0].clone()
    };
    let rejected = |v: &Value| expect_unavailable(v, "REJECTED");

    // Fixed: one combined discount for two units.
    let p = redeem(&s, &admin, redeem_input(&member, fixed, 2, "t-fixed")).await;
    assert_eq!(p["redemption"]["pointsCost"], 200);
    let e = pick(&only_effect(&p), "kind amount currency");
    assert_eq!(
        e,
        json!({"kind": "FIXED_DISCOUNT", "amount": 500, "currency": "EUR"})
    );

    // Percent: rate and cap; percentages do not stack.
    rejected(&redeem_raw(&s, &admin, redeem_input(&member, percent, 2, "t-percent-2")).await);
    let p = redeem(&s, &admin, redeem_input(&member, percent, 1, "t-percent")).await;
    assert_eq!(p["redemption"]["pointsCost"], 300);
    let e = pick(&only_effect(&p), "kind basisPoints cap currency");
    let expected =
        json!({"kind": "PERCENT_DISCOUNT", "basisPoints": 1250, "cap": 2000, "currency": "EUR"});
    assert_eq!(e, expected);

    // Free product: only with a qualifying item in the cart.
    let with_cart = |k: &str, sku: &str, total: i64| {
        let line = json!({"sku": sku, "category": "bakery", "quantity": 1, "unitPrice": total});
        merged(
            &redeem_input(&member, product, 1, k),
            json!({"cart": {"total": total, "lines": [line]}}),
        )
    };
    rejected(&redeem_raw(&s, &admin, redeem_input(&member, product, 1, "t-product-0")).await);
    rejected(&redeem_raw(&s, &admin, with_cart("t-product-1", "BAGEL", 300)).await);
    let p = redeem(&s, &admin, with_cart("t-product-2", "CROISSANT", 350)).await;
    assert_eq!(p["redemption"]["pointsCost"], 150);
    let e = pick(&only_effect(&p), "kind sku");
    assert_eq!(e, json!({"kind": "FREE_ITEM", "sku": "COFFEE-REG"}));

    // Free shipping.
    let p = redeem(&s, &admin, redeem_input(&member, shipping, 1, "t-shipping")).await;
    assert_eq!(p["redemption"]["pointsCost"], 50);
    assert_eq!(only_effect(&p)["kind"], "FREE_SHIPPING");

    // Perk: the tenant's systems get its code and details, with the quantity.
    let p = redeem(&s, &admin, redeem_input(&member, perk, 2, "t-perk")).await;
    assert_eq!(p["redemption"]["pointsCost"], 1000);
    let e = pick(&only_effect(&p), "kind name details");
    let details = json!({"code": "early-access", "title": "Early access to the summer sale",
                         "description": "48 hours before everyone else.", "quantity": 2,
                         "reward_id": perk["id"]});
    assert_eq!(
        e,
        json!({"kind": "CUSTOM_PERK", "name": "early-access", "details": details})
    );
    rejected(&redeem_raw(&s, &admin, redeem_input(&member, perk, 3, "t-perk-3")).await);

    assert_eq!(balance(&s, &admin, &member).await, (10_000 - 1700, 0, 1700));
    assert_eq!(redemptions(&s, &admin, &member).await.len(), 5);
    s.finish().await;
}

/// `api.rewards_max` and `api.redemption_quantity_max`.
async fn reward_limits_have_keys(b: Backend) {
    let s = TestServer::start_with(b, |c| {
        c.api.rewards_max = 1;
        c.api.redemption_quantity_max = 2;
    })
    .await;
    let (_, admin) = s.tenant("reward-limits").await;
    let plugin = plugin_id(&s, &admin, "fixed-discount").await;
    let reward = fixed_reward(&s, &admin, &plugin, 10, json!({})).await;
    let second = create_raw(
        &s,
        &admin,
        reward_input("two", 10, &plugin, five_eur(), json!({})),
    )
    .await;
    expect_code(&second, "VALIDATION");
    assert!(message(&second).contains("api.rewards_max"), "{second:#}");
    let member = s.enroll(&admin, json!({"externalId": "lim-1"})).await;
    fund(&s, &admin, &member, 1000).await;
    let three = redeem_raw(&s, &admin, redeem_input(&member, &reward, 3, "q3")).await;
    expect_code(&three, "VALIDATION");
    assert!(
        message(&three).contains("api.redemption_quantity_max"),
        "{three:#}"
    );
    let two = redeem(&s, &admin, redeem_input(&member, &reward, 2, "q2")).await;
    assert_eq!(two["redemption"]["quantity"], 2);
    s.finish().await;
}
