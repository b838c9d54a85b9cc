//! The in-process caches (API keys, tenants, the pipeline's rules and ladder) on both
//! backends: a change made through a server applies to its next request, and a second
//! replica on the same database sees it within `cache.ttl_ms` (at once with `ttl_ms = 0`).
//! The long TTL here stands for "not expired yet"; nothing waits for one to pass.

use loyalty_tests::{Backend, PLATFORM_KEY, TestServer, both_backends, code};
use serde_json::{Value, json};

both_backends!(
    a_revoked_key_stops_here_at_once_and_on_replicas_within_the_ttl,
    a_new_binding_applies_here_at_once_and_on_replicas_within_the_ttl,
);

/// An hour: longer than any test, so an entry loaded in a test is still fresh at its end.
const HOUR_MS: u64 = 3_600_000;

const MEMBER: &str = "query($id: ID!) { member(id: $id) { id } }";
const REVOKE: &str =
    "mutation($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) { apiKey { id revokedAt } } }";
const KEYS: &str = "query($t: ID!) { apiKeys(tenantId: $t) { id role } }";
const RECORD: &str = "mutation($i: RecordPurchaseInput!) { recordPurchase(input: $i) { awards { \
                      points plugin } pluginErrors { code } } }";
const BIND: &str = "mutation($i: BindPluginInput!) { bindPlugin(input: $i) { binding { id } } }";

async fn a_revoked_key_stops_here_at_once_and_on_replicas_within_the_ttl(b: Backend) {
    let a = TestServer::start_with(b, |s| s.cache.ttl_ms = HOUR_MS).await;
    let replica = a.replica(|s| s.cache.ttl_ms = HOUR_MS).await;
    let uncached = a.replica(|s| s.cache.ttl_ms = 0).await;
    let (tenant, admin) = a.tenant("cache-keys").await;
    let reader = a.key(PLATFORM_KEY, &tenant, "READ_ONLY").await;
    let member = a.enroll(&admin, json!({"externalId": "k-1"})).await;
    for s in [&a, &replica, &uncached] {
        s.ok(&reader, MEMBER, json!({"id": member})).await;
    }
    let keys = a.ok(&admin, KEYS, json!({"t": tenant})).await;
    let id = keys["apiKeys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["role"] == "READ_ONLY")
        .and_then(|k| k["id"].as_str())
        .expect("read-only key")
        .to_string();
    a.ok(&admin, REVOKE, json!({"i": {"id": id}})).await;

    let refused = |v: &Value| code(v) == "UNAUTHENTICATED" || code(v) == "FORBIDDEN";
    let v = a.gql(Some(&reader), MEMBER, json!({"id": member})).await;
    assert!(
        refused(&v),
        "the server that revoked refuses at once: {v:#}"
    );
    let v = uncached
        .gql(Some(&reader), MEMBER, json!({"id": member}))
        .await;
    assert!(
        refused(&v),
        "a replica without a cache refuses at once: {v:#}"
    );
    let v = replica
        .gql(Some(&reader), MEMBER, json!({"id": member}))
        .await;
    assert_eq!(
        code(&v),
        "OK",
        "a caching replica accepts until its entry expires (cache.ttl_ms): {v:#}"
    );
    replica.finish().await;
    uncached.finish().await;
    a.finish().await;
}

async fn a_new_binding_applies_here_at_once_and_on_replicas_within_the_ttl(b: Backend) {
    let a = TestServer::start_with(b, |s| s.cache.ttl_ms = HOUR_MS).await;
    let replica = a.replica(|s| s.cache.ttl_ms = HOUR_MS).await;
    let uncached = a.replica(|s| s.cache.ttl_ms = 0).await;
    let (_, admin) = a.tenant("cache-rules").await;
    let member = a.enroll(&admin, json!({"externalId": "r-1"})).await;
    let buy = |order: &str| {
        json!({"i": {"orderId": order, "memberId": member, "currency": "EUR", "total": 1000,
                     "channel": "ONLINE",
                     "lines": [{"sku": "A", "quantity": 1, "unitPrice": 1000}]}})
    };
    let points = |v: &Value| -> i64 {
        v["recordPurchase"]["awards"]
            .as_array()
            .expect("awards")
            .iter()
            .map(|a| a["points"].as_i64().expect("points"))
            .sum()
    };
    // Every server has read the tenant's (empty) rules.
    for (s, order) in [(&a, "o-1"), (&replica, "o-2"), (&uncached, "o-3")] {
        assert_eq!(points(&s.ok(&admin, RECORD, buy(order)).await), 0);
    }
    let plugins = a.ok(&admin, "{ plugins { id name } }", json!({})).await;
    let base_rate = plugins["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .find(|p| p["name"] == "base-rate")
        .and_then(|p| p["id"].as_str())
        .expect("base-rate")
        .to_string();
    let config = json!({"points_per_unit": 1, "unit_minor": 100, "rounding": "floor"});
    a.ok(
        &admin,
        BIND,
        json!({"i": {"pluginVersionId": base_rate, "config": config, "priority": 0,
                     "enabled": true}}),
    )
    .await;

    assert_eq!(
        points(&a.ok(&admin, RECORD, buy("o-4")).await),
        10,
        "the server that bound applies the rule to its next purchase"
    );
    assert_eq!(
        points(&uncached.ok(&admin, RECORD, buy("o-5")).await),
        10,
        "a replica without a cache applies it at once"
    );
    assert_eq!(
        points(&replica.ok(&admin, RECORD, buy("o-6")).await),
        0,
        "a caching replica runs the rules it loaded until the entry expires (cache.ttl_ms)"
    );
    replica.finish().await;
    uncached.finish().await;
    a.assert_audit_clean().await;
    a.finish().await;
}
