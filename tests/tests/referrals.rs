//! Referrals end to end on both backends: every member's referral code, attribution at
//! enrolment with its guards (self-referral, unknown code, a phone referred before, an inactive
//! referrer), qualification by the bound referral-scheme plugin on the referee's purchases
//! (double-sided, first-order-share, multi-level), paid once with provenance and a
//! `referral.qualified` event, the tenant's cap per referrer per period, and the coffee-stars
//! template.

use chrono::{DateTime, FixedOffset, Utc};
use loyalty_tests::{Backend, PLATFORM_KEY, TestServer, both_backends, code};
use serde_json::{Value, json};

both_backends!(
    a_referral_pays_both_sides_once,
    self_and_repeat_referrals_are_refused,
    qualification_rules_apply,
    cap_per_referrer_per_period,
    first_order_share_pays_a_share,
    multi_level_pays_the_upline,
    coffee_stars_binds_double_sided,
    referral_codes_are_unique_and_shown,
);

const BIND: &str = "mutation($i: BindPluginInput!) { bindPlugin(input: $i) { binding { id plugin { \
                    name kind } } } }";
const RECORD: &str = "mutation($i: RecordPurchaseInput!) { recordPurchase(input: $i) { purchase { \
                      id orderId total } member { id balance { available pending } } replayed } }";
const ENROLL: &str = "mutation($i: EnrollMemberInput!) { enrollMember(input: $i) { member { id \
                      referralCode } } }";
const MEMBER: &str = "query($id: ID!, $f: Int, $a: String) { member(id: $id) { id referralCode \
                      referredBy { referrer { id } status } referrals(first: $f, after: $a) { \
                      edges { node { id referee { id externalId } status qualifiedAt \
                      awardedPoints refereePoints } } pageInfo { hasNextPage endCursor } } } }";
const BALANCE: &str = "query($id: ID!) { member(id: $id) { balance { available pending } } }";
const HISTORY: &str = "query($id: ID!) { member(id: $id) { history(first: 50) { edges { node { id \
                       kind points reason reasonCode source { eventId pluginId pluginVersion } } } \
                       } } }";
const REFUSALS: &str = "query($f: Int, $a: String) { referralRefusals(first: $f, after: $a) { \
                        edges { node { referrerId refereeId code reason stage createdAt } } } }";
const EVENTS: &str = "query($t: String) { events(first: 100, type: $t) { edges { node { id type \
                      memberId payload createdAt } } } }";
const POLICY: &str = "mutation($cap: Int, $period: ReferralCapPeriod!) { setReferralPolicy(input: \
                      { capPerReferrer: $cap, capPeriod: $period }) { tenant { id } } }";
const DEACTIVATE: &str =
    "mutation($i: MemberIdInput!) { deactivateMember(input: $i) { member { id status } } }";
const CREATE_TENANT: &str =
    "mutation($i: CreateTenantInput!) { createTenant(input: $i) { tenant { id slug } } }";
const BINDINGS: &str = "{ pluginBindings { plugin { name kind } config enabled } }";
/// The phone of the referrer in `self_and_repeat_referrals_are_refused`.
const ANN_PHONE: &str = "+31612345678";

/// double-sided as the brief's example: 500 to the referrer, 250 to the referee, for a first
/// purchase of at least 20.00 within 30 days of enrolling.
fn double_sided() -> Value {
    json!({"referrer_points": 500, "referee_points": 250, "min_order_minor": 2000,
           "within_days": 30})
}

/// The id of the bundled plugin called `name`.
async fn plugin_id(s: &TestServer, key: &str, name: &str) -> String {
    let data = s
        .ok(key, "{ plugins { id name version kind } }", json!({}))
        .await;
    let p = data["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {data:#}"))
        .clone();
    assert_eq!(p["kind"], "REFERRAL_SCHEME", "{p}");
    p["id"].as_str().expect("id").to_string()
}

/// Binds the referral scheme called `name` with `config`.
async fn bind_scheme(s: &TestServer, key: &str, name: &str, config: Value) {
    let id = plugin_id(s, key, name).await;
    let input = json!({"pluginVersionId": id, "config": config, "priority": 0, "enabled": true});
    let data = s.ok(key, BIND, json!({"i": input})).await;
    let bound = &data["bindPlugin"]["binding"]["plugin"];
    assert_eq!(bound["name"], name);
    assert_eq!(bound["kind"], "REFERRAL_SCHEME");
}

/// Enrols `external_id` with `referral_code` (and `extra` fields); the member's id.
async fn enroll_with(
    s: &TestServer,
    key: &str,
    external_id: &str,
    referral_code: &str,
    extra: Value,
) -> String {
    let mut input = json!({"externalId": external_id, "referralCode": referral_code});
    if let (Some(o), Some(x)) = (input.as_object_mut(), extra.as_object()) {
        o.extend(x.clone());
    }
    let data = s.ok(key, ENROLL, json!({"i": input})).await;
    let m = &data["enrollMember"]["member"];
    assert!(is_code(&m["referralCode"]), "{m}");
    m["id"].as_str().expect("id").to_string()
}

/// A purchase of one line worth `total`, by member id, now.
fn purchase(member: &str, order: &str, total: i64) -> Value {
    json!({"orderId": order, "memberId": member, "currency": "EUR", "total": total,
           "channel": "ONLINE",
           "lines": [{"sku": "A", "category": null, "quantity": 1, "unitPrice": total}]})
}

/// Records a purchase that must succeed; the `recordPurchase` payload.
async fn record(s: &TestServer, key: &str, input: Value) -> Value {
    s.ok(key, RECORD, json!({"i": input})).await["recordPurchase"].clone()
}

/// The member, with the first 50 of its referrals.
async fn member(s: &TestServer, key: &str, id: &str) -> Value {
    s.ok(key, MEMBER, json!({"id": id, "f": 50})).await["member"].clone()
}

async fn referral_code(s: &TestServer, key: &str, id: &str) -> String {
    let m = member(s, key, id).await;
    assert!(is_code(&m["referralCode"]), "{m}");
    m["referralCode"].as_str().expect("code").to_string()
}

async fn referred_by(s: &TestServer, key: &str, id: &str) -> Value {
    member(s, key, id).await["referredBy"].clone()
}

/// The member's referrals (nodes), newest first.
async fn referrals(s: &TestServer, key: &str, id: &str) -> Vec<Value> {
    nodes(&member(s, key, id).await["referrals"])
}

fn nodes(connection: &Value) -> Vec<Value> {
    connection["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("edges: {connection}"))
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// The members' available points, in order; nothing is ever pending here.
async fn points(s: &TestServer, key: &str, ids: &[&str]) -> Vec<i64> {
    let mut out = Vec::new();
    for id in ids {
        let data = s.ok(key, BALANCE, json!({"id": id})).await;
        let b = &data["member"]["balance"];
        assert_eq!(b["pending"], 0, "{b}");
        out.push(b["available"].as_i64().expect("available"));
    }
    out
}

/// The member's referrals, newest first, as `[referee id, status, awarded, referee points]`.
async fn rows(s: &TestServer, key: &str, id: &str) -> Value {
    let list = referrals(s, key, id).await;
    for node in &list {
        assert!(non_empty(&node["id"]), "{node:#}");
        let qualified = node["status"] == "QUALIFIED";
        assert_eq!(!node["qualifiedAt"].is_null(), qualified, "{node:#}");
        if qualified {
            let _at = time(&node["qualifiedAt"]);
        }
    }
    list.iter()
        .map(|n| {
            json!([
                n["referee"]["id"],
                n["status"],
                n["awardedPoints"],
                n["refereePoints"]
            ])
        })
        .collect()
}

/// The member's ledger entries, newest first.
async fn history(s: &TestServer, key: &str, id: &str) -> Vec<Value> {
    nodes(&s.ok(key, HISTORY, json!({"id": id})).await["member"]["history"])
}

/// The member's ledger entries made by the plugin called `plugin`, newest first.
async fn entries_of(s: &TestServer, key: &str, id: &str, plugin: &str) -> Vec<Value> {
    let h = history(s, key, id).await;
    h.into_iter()
        .filter(|e| e["source"]["pluginId"] == plugin)
        .collect()
}

/// The tenant's refusals, newest first, as `[referrer, referee, code, reason, stage]`.
async fn refusals(s: &TestServer, key: &str) -> Vec<Value> {
    let data = s.ok(key, REFUSALS, json!({"f": 100})).await;
    let list = nodes(&data["referralRefusals"]);
    for pair in list.windows(2) {
        let (newer, older) = (time(&pair[0]["createdAt"]), time(&pair[1]["createdAt"]));
        assert!(newer >= older, "newest first: {list:#?}");
    }
    list.iter()
        .map(|r| {
            json!([
                r["referrerId"],
                r["refereeId"],
                r["code"],
                r["reason"],
                r["stage"]
            ])
        })
        .collect()
}

/// The tenant's `referral.qualified` events, oldest first.
async fn qualified_events(s: &TestServer, key: &str) -> Vec<Value> {
    let data = s.ok(key, EVENTS, json!({"t": "referral.qualified"})).await;
    let events = nodes(&data["events"]);
    for e in &events {
        assert_eq!(e["type"], "referral.qualified", "{e:#}");
        assert!(e["payload"].is_object() && non_empty(&e["id"]), "{e:#}");
    }
    events
}

/// The referees of the tenant's `referral.qualified` events, oldest first.
async fn qualified(s: &TestServer, key: &str) -> Vec<String> {
    let events = qualified_events(s, key).await;
    events
        .iter()
        .map(|e| e["memberId"].as_str().expect("memberId").to_string())
        .collect()
}

/// `setReferralPolicy` as sent, errors and all.
async fn set_policy(s: &TestServer, key: &str, cap: Option<i64>, period: &str) -> Value {
    let vars = json!({"cap": cap, "period": period});
    s.gql(Some(key), POLICY, vars).await
}

/// Everything a referral can change for these members: balances, referrals, who referred
/// them, their ledger history, and the tenant's `referral.qualified` events and refusals.
async fn snapshot(s: &TestServer, key: &str, ids: &[&str]) -> Value {
    let mut per_member = Vec::new();
    for id in ids {
        let m = member(s, key, id).await;
        let h = history(s, key, id).await;
        per_member.push(json!([m["referredBy"], m["referrals"], h]));
    }
    json!({"members": per_member, "points": points(s, key, ids).await,
           "events": qualified_events(s, key).await, "refusals": refusals(s, key).await})
}

/// A referral code as the API shows it: non-empty, digits, capitals and hyphens only.
fn is_code(v: &Value) -> bool {
    v.as_str().is_some_and(|c| {
        !c.is_empty()
            && c.chars()
                .all(|ch| ch.is_ascii_digit() || ch.is_ascii_uppercase() || ch == '-')
    })
}

fn non_empty(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
}

fn time(v: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// Asserts the only entry of `entries`: an EARN of `points` by `plugin` with `reason_code`
/// (`None`: any `referral-…` code).
fn assert_entry(entries: &[Value], points: i64, plugin: &str, reason_code: Option<&str>) {
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let e = &entries[0];
    assert_eq!(e["kind"], "EARN", "{e:#}");
    assert_eq!(e["points"], points, "{e:#}");
    assert_eq!(e["source"]["pluginId"], plugin, "{e:#}");
    assert!(non_empty(&e["source"]["pluginVersion"]), "{e:#}");
    let rc = e["reasonCode"].as_str().unwrap_or_default();
    match reason_code {
        Some(want) => assert_eq!(rc, want, "{e:#}"),
        None => assert!(rc.starts_with("referral-"), "{e:#}"),
    }
}

async fn a_referral_pays_both_sides_once(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("refer").await;
    bind_scheme(&s, &admin, "double-sided", double_sided()).await;
    let a = s.enroll(&admin, json!({"externalId": "ann"})).await;
    let a_code = referral_code(&s, &admin, &a).await;
    let bob = enroll_with(&s, &admin, "bob", &a_code, json!({})).await;

    // Attributed and pending; nothing paid yet.
    let by = referred_by(&s, &admin, &bob).await;
    assert_eq!(by, json!({"referrer": {"id": a}, "status": "PENDING"}));
    assert!(referred_by(&s, &admin, &a).await.is_null());
    let list = referrals(&s, &admin, &a).await;
    assert_eq!(list[0]["referee"]["externalId"], "bob");
    assert_eq!(rows(&s, &admin, &a).await, json!([[bob, "PENDING", 0, 0]]));
    assert_eq!(rows(&s, &admin, &bob).await, json!([]));
    assert!(refusals(&s, &admin).await.is_empty());
    assert!(qualified(&s, &admin).await.is_empty());
    assert_eq!(points(&s, &admin, &[&a, &bob]).await, [0, 0]);

    // Bob's first purchase, 30.00 within the window: both sides are paid.
    let first = purchase(&bob, "bob-1", 3000);
    let before = Utc::now();
    let p = record(&s, &admin, first.clone()).await;
    let after = Utc::now();
    assert_eq!(p["replayed"], false);
    let first_id = p["purchase"]["id"].clone();
    // The answer's balance counts the referee's points, paid after the purchase's own writes.
    assert_eq!(p["member"]["balance"]["available"], 250, "{p}");
    assert_eq!(points(&s, &admin, &[&a, &bob]).await, [500, 250]);
    let want = json!([[bob, "QUALIFIED", 500, 250]]);
    assert_eq!(rows(&s, &admin, &a).await, want);
    let at = referrals(&s, &admin, &a).await[0]["qualifiedAt"].clone();
    let at = time(&at).with_timezone(&Utc);
    let slack = chrono::Duration::seconds(5);
    assert!(
        at >= before - slack && at <= after + slack,
        "{at} not in {before}..{after}"
    );
    assert_eq!(referred_by(&s, &admin, &bob).await["status"], "QUALIFIED");

    // Provenance: the scheme's name and the reason codes; one domain event.
    let h = history(&s, &admin, &a).await;
    assert_entry(&h, 500, "double-sided", Some("referral-referrer"));
    let h = history(&s, &admin, &bob).await;
    assert_entry(&h, 250, "double-sided", Some("referral-referee"));
    assert_eq!(qualified(&s, &admin).await, [bob.as_str()]);
    let paid = snapshot(&s, &admin, &[&a, &bob]).await;

    // A second purchase pays nothing more.
    let p = record(&s, &admin, purchase(&bob, "bob-2", 5000)).await;
    assert_eq!(p["replayed"], false);
    assert_eq!(snapshot(&s, &admin, &[&a, &bob]).await, paid);

    // Replaying the first purchase changes nothing either.
    let again = record(&s, &admin, first).await;
    assert_eq!(again["replayed"], true);
    assert_eq!(again["purchase"]["id"], first_id);
    assert_eq!(snapshot(&s, &admin, &[&a, &bob]).await, paid);
    assert_eq!(points(&s, &admin, &[&a, &bob]).await, [500, 250]);
    s.finish().await;
}

async fn self_and_repeat_referrals_are_refused(b: Backend) {
    let s = TestServer::start(b).await;
    let (tenant, admin) = s.tenant("guards").await;
    bind_scheme(&s, &admin, "double-sided", double_sided()).await;
    let ann = json!({"externalId": "ann", "email": "ann@example.com", "phone": ANN_PHONE});
    let a = s.enroll(&admin, ann).await;
    let a_code = referral_code(&s, &admin, &a).await;

    // The referrer's phone: enrolled, not referred.
    let same = json!({"phone": ANN_PHONE});
    let bob = enroll_with(&s, &admin, "bob", &a_code, same).await;
    assert!(referred_by(&s, &admin, &bob).await.is_null());
    let want = json!([a, bob, a_code, "self-referral", "ATTRIBUTION"]);
    assert_eq!(refusals(&s, &admin).await, [want]);

    // An unknown code: enrolled, not referred, no referrer.
    let u = enroll_with(&s, &admin, "uma", "NOSUCHCODE", json!({})).await;
    assert!(referred_by(&s, &admin, &u).await.is_null());
    let want = json!([null, u, "NOSUCHCODE", "unknown-code", "ATTRIBUTION"]);
    assert_eq!(refusals(&s, &admin).await[0], want);

    // Carl is referred; Dora with Carl's phone is not: that phone was referred before.
    let c_phone = json!({"phone": "+31611111111"});
    let c = enroll_with(&s, &admin, "carl", &a_code, c_phone.clone()).await;
    let by = referred_by(&s, &admin, &c).await;
    assert_eq!(by, json!({"referrer": {"id": a}, "status": "PENDING"}));
    let d = enroll_with(&s, &admin, "dora", &a_code, c_phone).await;
    assert!(referred_by(&s, &admin, &d).await.is_null());
    let want = json!([a, d, a_code, "already-referred", "ATTRIBUTION"]);
    assert_eq!(refusals(&s, &admin).await[0], want);

    // A deactivated referrer refers nobody.
    let e = s.enroll(&admin, json!({"externalId": "eve"})).await;
    let e_code = referral_code(&s, &admin, &e).await;
    let data = s.ok(&admin, DEACTIVATE, json!({"i": {"id": e}})).await;
    assert_eq!(data["deactivateMember"]["member"]["status"], "DEACTIVATED");
    let f = enroll_with(&s, &admin, "fred", &e_code, json!({})).await;
    assert!(referred_by(&s, &admin, &f).await.is_null());
    assert_eq!(rows(&s, &admin, &e).await, json!([]));
    let want = json!([e, f, e_code, "referrer-inactive", "ATTRIBUTION"]);
    assert_eq!(refusals(&s, &admin).await[0], want);

    // Ann's only referral is Carl.
    assert_eq!(rows(&s, &admin, &a).await, json!([[c, "PENDING", 0, 0]]));
    assert_eq!(
        referrals(&s, &admin, &a).await[0]["referee"]["externalId"],
        "carl"
    );

    // All refusals, newest first, for any key of the tenant and no other tenant.
    let all = refusals(&s, &admin).await;
    let reasons: Vec<&Value> = all.iter().map(|r| &r[3]).collect();
    let want = [
        "referrer-inactive",
        "already-referred",
        "unknown-code",
        "self-referral",
    ];
    assert_eq!(reasons, want, "{all:#?}");
    assert!(all.iter().all(|r| r[4] == "ATTRIBUTION"), "{all:#?}");
    let read_only = s.key(&admin, &tenant, "READ_ONLY").await;
    assert_eq!(refusals(&s, &read_only).await, all);
    let (_, other) = s.tenant("guards-other").await;
    assert!(refusals(&s, &other).await.is_empty());

    // Refused attributions pay nothing when the refused members buy.
    record(&s, &admin, purchase(&bob, "bob-1", 3000)).await;
    record(&s, &admin, purchase(&d, "dora-1", 3000)).await;
    assert_eq!(points(&s, &admin, &[&a, &bob, &d]).await, [0, 0, 0]);
    assert!(qualified(&s, &admin).await.is_empty());
    s.finish().await;
}

async fn qualification_rules_apply(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("qualify").await;
    bind_scheme(&s, &admin, "double-sided", double_sided()).await;
    let a = s.enroll(&admin, json!({"externalId": "ann"})).await;
    let a_code = referral_code(&s, &admin, &a).await;
    let bob = enroll_with(&s, &admin, "bob", &a_code, json!({})).await;

    // 10.00 is below min_order_minor: still pending, nothing paid.
    record(&s, &admin, purchase(&bob, "bob-1", 1000)).await;
    assert_eq!(referred_by(&s, &admin, &bob).await["status"], "PENDING");
    assert_eq!(points(&s, &admin, &[&a, &bob]).await, [0, 0]);
    // 50.00 would do, but it is not the first purchase (first_purchase_only by default).
    record(&s, &admin, purchase(&bob, "bob-2", 5000)).await;
    assert_eq!(referred_by(&s, &admin, &bob).await["status"], "PENDING");
    assert_eq!(rows(&s, &admin, &a).await, json!([[bob, "PENDING", 0, 0]]));
    assert_eq!(points(&s, &admin, &[&a, &bob]).await, [0, 0]);
    assert!(history(&s, &admin, &a).await.is_empty());
    assert!(history(&s, &admin, &bob).await.is_empty());
    assert!(qualified(&s, &admin).await.is_empty());

    // Exactly min_order_minor qualifies.
    let cleo = enroll_with(&s, &admin, "cleo", &a_code, json!({})).await;
    record(&s, &admin, purchase(&cleo, "cleo-1", 2000)).await;
    assert_eq!(referred_by(&s, &admin, &cleo).await["status"], "QUALIFIED");
    assert_eq!(points(&s, &admin, &[&a, &bob, &cleo]).await, [500, 0, 250]);
    let want = json!([[cleo, "QUALIFIED", 500, 250], [bob, "PENDING", 0, 0]]);
    assert_eq!(rows(&s, &admin, &a).await, want);
    assert_eq!(qualified(&s, &admin).await, [cleo.as_str()]);
    s.finish().await;
}

async fn cap_per_referrer_per_period(b: Backend) {
    let s = TestServer::start(b).await;
    let (tenant, admin) = s.tenant("capped").await;
    bind_scheme(&s, &admin, "double-sided", double_sided()).await;
    let v = set_policy(&s, &admin, Some(1), "MONTH").await;
    assert_eq!(code(&v), "OK", "{v:#}");
    let set = &v["data"]["setReferralPolicy"];
    assert_eq!(set["tenant"]["id"], tenant.as_str());
    // Only ADMIN sets the policy; a cap is at least 1.
    let integration = s.key(&admin, &tenant, "INTEGRATION").await;
    let v = set_policy(&s, &integration, None, "MONTH").await;
    assert_eq!(code(&v), "FORBIDDEN", "{v:#}");
    let v = set_policy(&s, &admin, Some(0), "MONTH").await;
    assert_eq!(code(&v), "VALIDATION", "{v:#}");

    let a = s.enroll(&admin, json!({"externalId": "ann"})).await;
    let a_code = referral_code(&s, &admin, &a).await;
    let bob = enroll_with(&s, &admin, "bob", &a_code, json!({})).await;
    let cleo = enroll_with(&s, &admin, "cleo", &a_code, json!({})).await;

    // Bob qualifies: Ann's one qualified referral this month.
    record(&s, &admin, purchase(&bob, "bob-1", 3000)).await;
    assert_eq!(points(&s, &admin, &[&a, &bob]).await, [500, 250]);

    // Cleo would qualify, but Ann is at the cap: refused, nobody paid.
    record(&s, &admin, purchase(&cleo, "cleo-1", 3000)).await;
    assert_eq!(points(&s, &admin, &[&a, &bob, &cleo]).await, [500, 250, 0]);
    assert!(history(&s, &admin, &cleo).await.is_empty());
    assert_eq!(history(&s, &admin, &a).await.len(), 1);
    assert_eq!(referred_by(&s, &admin, &cleo).await["status"], "REFUSED");
    let want = json!([[cleo, "REFUSED", 0, 0], [bob, "QUALIFIED", 500, 250]]);
    assert_eq!(rows(&s, &admin, &a).await, want);
    let r = json!([a, cleo, a_code, "referrer-cap-reached", "QUALIFICATION"]);
    assert_eq!(refusals(&s, &admin).await, std::slice::from_ref(&r));
    assert_eq!(qualified(&s, &admin).await, [bob.as_str()]);
    // A refused referral stays refused.
    record(&s, &admin, purchase(&cleo, "cleo-2", 3000)).await;
    assert_eq!(referred_by(&s, &admin, &cleo).await["status"], "REFUSED");
    assert_eq!(points(&s, &admin, &[&a, &cleo]).await, [500, 0]);
    assert_eq!(refusals(&s, &admin).await, [r]);

    // Without a cap, Dan's referral pays again.
    let v = set_policy(&s, &admin, None, "MONTH").await;
    assert_eq!(code(&v), "OK", "{v:#}");
    let dan = enroll_with(&s, &admin, "dan", &a_code, json!({})).await;
    record(&s, &admin, purchase(&dan, "dan-1", 3000)).await;
    assert_eq!(points(&s, &admin, &[&a, &dan]).await, [1000, 250]);
    assert_eq!(qualified(&s, &admin).await, [bob.as_str(), dan.as_str()]);

    // Ann's referrals in pages of two, newest first.
    let page = s.ok(&admin, MEMBER, json!({"id": a, "f": 2})).await;
    let conn = &page["member"]["referrals"];
    let ids: Vec<Value> = nodes(conn)
        .iter()
        .map(|n| n["referee"]["id"].clone())
        .collect();
    assert_eq!(ids, [json!(dan), json!(cleo)], "{conn:#}");
    assert_eq!(conn["pageInfo"]["hasNextPage"], true);
    let cursor = conn["pageInfo"]["endCursor"].clone();
    let vars = json!({"id": a, "f": 2, "a": cursor});
    let page = s.ok(&admin, MEMBER, vars).await;
    let conn = &page["member"]["referrals"];
    let ids: Vec<Value> = nodes(conn)
        .iter()
        .map(|n| n["referee"]["id"].clone())
        .collect();
    assert_eq!(ids, [json!(bob)], "{conn:#}");
    assert_eq!(conn["pageInfo"]["hasNextPage"], false);
    s.finish().await;
}

async fn first_order_share_pays_a_share(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("share").await;
    let config =
        json!({"share_bp": 1000, "points_per_unit": 1, "unit_minor": 100, "referee_points": 0});
    bind_scheme(&s, &admin, "first-order-share", config).await;
    let a = s.enroll(&admin, json!({"externalId": "ann"})).await;
    let a_code = referral_code(&s, &admin, &a).await;
    let bob = enroll_with(&s, &admin, "bob", &a_code, json!({})).await;

    // 123.45 -> 123.45 points -> 10% -> 12 (rounded down); nothing for Bob.
    record(&s, &admin, purchase(&bob, "bob-1", 12345)).await;
    assert_eq!(points(&s, &admin, &[&a, &bob]).await, [12, 0]);
    assert_eq!(
        rows(&s, &admin, &a).await,
        json!([[bob, "QUALIFIED", 12, 0]])
    );
    let h = history(&s, &admin, &a).await;
    assert_entry(&h, 12, "first-order-share", None);
    assert_eq!(qualified(&s, &admin).await, [bob.as_str()]);

    // Only the first order counts.
    record(&s, &admin, purchase(&bob, "bob-2", 50000)).await;
    assert_eq!(points(&s, &admin, &[&a, &bob]).await, [12, 0]);
    assert_eq!(
        rows(&s, &admin, &a).await,
        json!([[bob, "QUALIFIED", 12, 0]])
    );

    // 200.00 -> 20.
    let cleo = enroll_with(&s, &admin, "cleo", &a_code, json!({})).await;
    record(&s, &admin, purchase(&cleo, "cleo-1", 20000)).await;
    assert_eq!(points(&s, &admin, &[&a, &cleo]).await, [32, 0]);
    let want = json!([[cleo, "QUALIFIED", 20, 0], [bob, "QUALIFIED", 12, 0]]);
    assert_eq!(rows(&s, &admin, &a).await, want);
    s.finish().await;
}

async fn multi_level_pays_the_upline(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("levels").await;
    let config = json!({"levels": [{"points": 300}, {"points": 100}], "referee_points": 200});
    bind_scheme(&s, &admin, "multi-level", config).await;
    let a = s.enroll(&admin, json!({"externalId": "ann"})).await;
    let a_code = referral_code(&s, &admin, &a).await;
    let bob = enroll_with(&s, &admin, "bob", &a_code, json!({})).await;
    let b_code = referral_code(&s, &admin, &bob).await;
    let cleo = enroll_with(&s, &admin, "cleo", &b_code, json!({})).await;
    let by = referred_by(&s, &admin, &cleo).await;
    assert_eq!(by, json!({"referrer": {"id": bob}, "status": "PENDING"}));

    // Cleo's first purchase: Bob (level 1) 300, Ann (level 2) 100, Cleo 200.
    record(&s, &admin, purchase(&cleo, "cleo-1", 1500)).await;
    assert_eq!(
        points(&s, &admin, &[&a, &bob, &cleo]).await,
        [100, 300, 200]
    );
    let h = history(&s, &admin, &a).await;
    assert_entry(&h, 100, "multi-level", Some("referral-level-2"));
    assert_entry(&history(&s, &admin, &bob).await, 300, "multi-level", None);
    assert_entry(&history(&s, &admin, &cleo).await, 200, "multi-level", None);
    assert_eq!(
        rows(&s, &admin, &bob).await,
        json!([[cleo, "QUALIFIED", 300, 200]])
    );
    // Bob's own referral is still pending: he has not bought anything.
    assert_eq!(referred_by(&s, &admin, &bob).await["status"], "PENDING");
    assert_eq!(referrals(&s, &admin, &a).await[0]["status"], "PENDING");

    // Bob's first purchase: Ann is his level 1; she has no referrer, so no level 2.
    record(&s, &admin, purchase(&bob, "bob-1", 1500)).await;
    assert_eq!(
        points(&s, &admin, &[&a, &bob, &cleo]).await,
        [400, 500, 200]
    );
    assert_eq!(
        rows(&s, &admin, &a).await,
        json!([[bob, "QUALIFIED", 300, 200]])
    );
    let ann = history(&s, &admin, &a).await;
    let ann: Vec<(&Value, &Value)> = ann
        .iter()
        .map(|e| (&e["points"], &e["reasonCode"]))
        .collect();
    assert_eq!(ann.len(), 2, "{ann:#?}");
    assert_eq!(ann[0].0, 300);
    assert_eq!(ann[1], (&json!(100), &json!("referral-level-2")));
    assert_eq!(qualified(&s, &admin).await, [cleo.as_str(), bob.as_str()]);

    // Nothing more for later purchases.
    record(&s, &admin, purchase(&cleo, "cleo-2", 1500)).await;
    record(&s, &admin, purchase(&bob, "bob-2", 1500)).await;
    assert_eq!(
        points(&s, &admin, &[&a, &bob, &cleo]).await,
        [400, 500, 200]
    );
    assert_eq!(qualified(&s, &admin).await.len(), 2);
    s.finish().await;
}

async fn coffee_stars_binds_double_sided(b: Backend) {
    let s = TestServer::start(b).await;
    let input = json!({"slug": "coffee-refer", "name": "Coffee Refer",
                       "timezone": "Europe/Amsterdam", "template": "coffee-stars"});
    let data = s.ok(PLATFORM_KEY, CREATE_TENANT, json!({"i": input})).await;
    let tenant = data["createTenant"]["tenant"]["id"].as_str().expect("id");
    let admin = s.key(PLATFORM_KEY, tenant, "ADMIN").await;

    let data = s.ok(&admin, BINDINGS, json!({})).await;
    let bindings = data["pluginBindings"].as_array().expect("bindings");
    let binding = bindings
        .iter()
        .find(|b| b["plugin"]["name"] == "double-sided")
        .unwrap_or_else(|| panic!("double-sided is not bound: {data:#}"));
    assert_eq!(binding["plugin"]["kind"], "REFERRAL_SCHEME");
    assert_eq!(binding["enabled"], true);
    let c = &binding["config"];
    let got = [
        &c["referrer_points"],
        &c["referee_points"],
        &c["min_order_minor"],
        &c["within_days"],
    ];
    assert_eq!(got, [100, 50, 500, 60], "{binding:#}");

    let a = s.enroll(&admin, json!({"externalId": "ann"})).await;
    let a_code = referral_code(&s, &admin, &a).await;
    let bob = enroll_with(&s, &admin, "bob", &a_code, json!({})).await;
    let a_before = points(&s, &admin, &[&a]).await[0];
    let latte = json!([{"sku": "LATTE", "category": "coffee", "quantity": 1, "unitPrice": 600}]);
    let order = json!({"orderId": "bob-latte", "memberId": bob, "currency": "EUR", "total": 600,
                       "channel": "STORE", "lines": latte});
    record(&s, &admin, order).await;

    // Only the referral entries: base-rate and welcome-bonus run too.
    let h = entries_of(&s, &admin, &a, "double-sided").await;
    assert_entry(&h, 100, "double-sided", Some("referral-referrer"));
    let h = entries_of(&s, &admin, &bob, "double-sided").await;
    assert_entry(&h, 50, "double-sided", Some("referral-referee"));
    assert_eq!(points(&s, &admin, &[&a]).await[0] - a_before, 100);
    assert_eq!(referred_by(&s, &admin, &bob).await["status"], "QUALIFIED");
    assert_eq!(
        rows(&s, &admin, &a).await,
        json!([[bob, "QUALIFIED", 100, 50]])
    );
    // base-rate still ran for Bob's purchase: 6 stars.
    let base = entries_of(&s, &admin, &bob, "base-rate").await;
    let base: i64 = base.iter().filter_map(|e| e["points"].as_i64()).sum();
    assert_eq!(base, 6);
    s.finish().await;
}

async fn referral_codes_are_unique_and_shown(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("codes").await;
    let mut codes = Vec::new();
    for i in 0..20 {
        let input = json!({"i": {"externalId": format!("m-{i}")}});
        let data = s.ok(&admin, ENROLL, input).await;
        let m = &data["enrollMember"]["member"];
        assert!(is_code(&m["referralCode"]), "{m}");
        // The member shows the same code.
        let id = m["id"].as_str().expect("id");
        assert_eq!(referral_code(&s, &admin, id).await, m["referralCode"]);
        codes.push(m["referralCode"].as_str().expect("code").to_string());
    }
    let mut distinct = codes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 20, "{codes:?}");

    // Another tenant's member's code means nothing here.
    let (_, other) = s.tenant("codes-other").await;
    let x = s.enroll(&other, json!({"externalId": "xavier"})).await;
    let x_code = referral_code(&s, &other, &x).await;
    assert!(!codes.contains(&x_code), "{x_code} collides with {codes:?}");
    let n = enroll_with(&s, &admin, "newbie", &x_code, json!({})).await;
    assert!(referred_by(&s, &admin, &n).await.is_null());
    let want = json!([null, n, x_code, "unknown-code", "ATTRIBUTION"]);
    assert_eq!(refusals(&s, &admin).await, [want]);
    assert_eq!(rows(&s, &other, &x).await, json!([]));
    assert!(refusals(&s, &other).await.is_empty());
    s.finish().await;
}
