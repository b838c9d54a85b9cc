//! The foundation end to end: HTTP surface, tenants, API keys and roles, members, limits,
//! isolation between tenants. Every scenario runs on SQLite and on PostgreSQL.

use loyalty_tests::{Backend, PLATFORM_KEY, TestServer, both_backends, code, field};
use serde_json::{Value, json};

both_backends!(
    http_surface,
    tenants_are_validated_and_unique,
    keys_roles_and_revocation,
    members_enrol_validate_and_conflict,
    members_update_deactivate_erase,
    members_connection_filters_and_page_cap,
    enrol_is_idempotent_with_a_key,
    another_tenants_member_is_not_found,
    limits_are_enforced,
    a_checked_document_gets_the_errors_of_a_fresh_one,
);

const ENROLL: &str = "mutation($i: EnrollMemberInput!) { enrollMember(input: $i) { member { id externalId email phone birthday tags status } } }";
const MEMBER: &str =
    "query($id: ID!) { member(id: $id) { id externalId email firstName status tags attributes } }";

async fn http_surface(b: Backend) {
    let s = TestServer::start(b).await;
    let health = s.http.get(s.url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), 200);
    let ready = s.http.get(s.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);

    // A browser gets GraphiQL.
    let page = s
        .http
        .get(s.url("/graphql"))
        .header("Accept", "text/html")
        .send()
        .await
        .expect("graphiql");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("body").contains("graphiql"));

    // Queries over GET work; mutations over GET are refused with 405.
    let (_, admin) = s.tenant("http-surface").await;
    let get = s
        .http
        .get(s.url("/graphql"))
        .query(&[("query", "{ tenant { slug } }")])
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get query");
    assert_eq!(get.status(), 200);
    let v: Value = get.json().await.expect("json");
    assert_eq!(v["data"]["tenant"]["slug"], "http-surface");
    let get_mutation = s
        .http
        .get(s.url("/graphql"))
        .query(&[(
            "query",
            "mutation { eraseMember(input: {id: \"x\"}) { member { id } } }",
        )])
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get mutation");
    assert_eq!(get_mutation.status(), 405);

    // A body that is not a GraphQL request: 400 with a code.
    let bad = s
        .http
        .post(s.url("/graphql"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("bad body");
    assert_eq!(bad.status(), 400);
    let v: Value = bad.json().await.expect("json");
    assert_eq!(code(&v), "VALIDATION");

    // Syntax errors and unknown fields carry a code too.
    let v = s.gql(Some(&admin), "{ tenant { nope } }", json!({})).await;
    assert_eq!(code(&v), "VALIDATION");
    let v = s.gql(Some(&admin), "{ tenant ", json!({})).await;
    assert_eq!(code(&v), "VALIDATION");
    s.finish().await;
}

async fn tenants_are_validated_and_unique(b: Backend) {
    let s = TestServer::start(b).await;
    let create = "mutation($i: CreateTenantInput!) { createTenant(input: $i) { tenant { id slug timezone pointsName branding { primaryColor logoUrl } } } }";
    let good = json!({ "slug": "coffee-club", "name": "Coffee Club", "timezone": "Europe/Amsterdam",
        "pointsName": "stars", "branding": { "primaryColor": "#00704A", "logoUrl": "https://cdn.example.com/l.png" } });
    let data = s.ok(PLATFORM_KEY, create, json!({ "i": good })).await;
    let t = &data["createTenant"]["tenant"];
    assert_eq!(t["slug"], "coffee-club");
    assert_eq!(t["pointsName"], "stars");
    assert_eq!(t["branding"]["primaryColor"], "#00704a");
    let id = t["id"].as_str().expect("id").to_string();

    // The same slug again is a CONFLICT, and nothing changes.
    let v = s
        .gql(Some(PLATFORM_KEY), create, json!({ "i": good }))
        .await;
    assert_eq!(code(&v), "CONFLICT", "{v}");

    let bad_cases = [
        ("slug", json!({ "slug": "Bad Slug" })),
        ("timezone", json!({ "timezone": "Mars/Olympus" })),
        ("name", json!({ "name": "  " })),
        ("pointsName", json!({ "pointsName": "x".repeat(33) })),
        (
            "branding.primaryColor",
            json!({ "branding": { "primaryColor": "green" } }),
        ),
        (
            "branding.logoUrl",
            json!({ "branding": { "logoUrl": "ftp://x" } }),
        ),
    ];
    for (f, patch) in bad_cases {
        let mut input = json!({ "slug": "other-club", "name": "Other", "timezone": "UTC" });
        for (k, v) in patch.as_object().expect("object") {
            input[k] = v.clone();
        }
        let v = s
            .gql(Some(PLATFORM_KEY), create, json!({ "i": input }))
            .await;
        assert_eq!(
            (code(&v), field(&v)),
            ("VALIDATION".into(), f.to_string()),
            "{v}"
        );
    }

    // Update: name and timezone change, branding null clears.
    let data = s
        .ok(
            PLATFORM_KEY,
            "mutation($i: UpdateTenantInput!) { updateTenant(input: $i) { tenant { name timezone branding { primaryColor logoUrl } } } }",
            json!({ "i": { "id": id, "name": "Coffee Club NL", "timezone": "America/New_York", "branding": { "logoUrl": null } } }),
        )
        .await;
    let t = &data["updateTenant"]["tenant"];
    assert_eq!(t["name"], "Coffee Club NL");
    assert_eq!(t["timezone"], "America/New_York");
    assert_eq!(t["branding"]["primaryColor"], "#00704a");
    assert_eq!(t["branding"]["logoUrl"], Value::Null);

    // Listing pages through all tenants.
    s.tenant("second-club").await;
    s.tenant("third-club").await;
    let mut slugs = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let data = s
            .ok(
                PLATFORM_KEY,
                "query($a: String) { tenants(first: 2, after: $a) { edges { cursor node { slug } } pageInfo { hasNextPage endCursor } } }",
                json!({ "a": after }),
            )
            .await;
        let conn = &data["tenants"];
        for e in conn["edges"].as_array().expect("edges") {
            slugs.push(e["node"]["slug"].as_str().expect("slug").to_string());
        }
        if !conn["pageInfo"]["hasNextPage"].as_bool().expect("bool") {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(String::from);
    }
    assert_eq!(slugs, vec!["coffee-club", "second-club", "third-club"]);

    // Tenant keys cannot manage tenants; no key and a wrong key are UNAUTHENTICATED.
    let (_, admin) = s.tenant("fourth-club").await;
    let v = s.gql(Some(&admin), create, json!({ "i": good })).await;
    assert_eq!(code(&v), "FORBIDDEN");
    let v = s
        .gql(
            Some(&admin),
            "{ tenants { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&v), "FORBIDDEN");
    let v = s.gql(None, create, json!({ "i": good })).await;
    assert_eq!(code(&v), "UNAUTHENTICATED");
    let v = s
        .gql(
            Some("lp_wrong_platform_key_000000000000"),
            create,
            json!({ "i": good }),
        )
        .await;
    assert_eq!(code(&v), "UNAUTHENTICATED");
    s.finish().await;
}

async fn keys_roles_and_revocation(b: Backend) {
    let s = TestServer::start(b).await;
    let (a, admin_a) = s.tenant("keys-a").await;
    let (b_id, admin_b) = s.tenant("keys-b").await;

    // An ADMIN key makes keys for its own tenant, not for another (NOT_FOUND, no hint).
    let integration = s.key(&admin_a, &a, "INTEGRATION").await;
    let read_only = s.key(&admin_a, &a, "READ_ONLY").await;
    let create_key = "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }";
    let v = s
        .gql(
            Some(&admin_a),
            create_key,
            json!({ "i": { "tenantId": b_id, "role": "ADMIN", "name": "x" } }),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND");
    // INTEGRATION and READ_ONLY keys cannot manage keys.
    for k in [&integration, &read_only] {
        let v = s
            .gql(
                Some(k),
                create_key,
                json!({ "i": { "tenantId": a, "role": "ADMIN", "name": "x" } }),
            )
            .await;
        assert_eq!(code(&v), "FORBIDDEN", "{v}");
    }
    // An empty key name is refused.
    let v = s
        .gql(
            Some(&admin_a),
            create_key,
            json!({ "i": { "tenantId": a, "role": "ADMIN", "name": " " } }),
        )
        .await;
    assert_eq!((code(&v), field(&v)), ("VALIDATION".into(), "name".into()));

    // READ_ONLY reads but cannot write; INTEGRATION writes members.
    let id = s.enroll(&integration, json!({ "externalId": "c-1" })).await;
    let data = s.ok(&read_only, MEMBER, json!({ "id": id })).await;
    assert_eq!(data["member"]["externalId"], "c-1");
    let v = s
        .gql(
            Some(&read_only),
            ENROLL,
            json!({ "i": { "externalId": "c-2" } }),
        )
        .await;
    assert_eq!(code(&v), "FORBIDDEN");
    // The platform key cannot act inside a tenant.
    let v = s.gql(Some(PLATFORM_KEY), MEMBER, json!({ "id": id })).await;
    assert_eq!(code(&v), "FORBIDDEN");

    // Key listing shows no secrets; another tenant's list is NOT_FOUND.
    let data = s
        .ok(
            &admin_a,
            "query($t: ID!) { apiKeys(tenantId: $t) { id role name revokedAt } }",
            json!({ "t": a }),
        )
        .await;
    assert_eq!(data["apiKeys"].as_array().expect("keys").len(), 3);
    let v = s
        .gql(
            Some(&admin_b),
            "query($t: ID!) { apiKeys(tenantId: $t) { id } }",
            json!({ "t": a }),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND");

    // Revocation takes effect at once; revoking twice is harmless; another tenant cannot.
    let keys = s
        .ok(
            &admin_a,
            "query($t: ID!) { apiKeys(tenantId: $t) { id role } }",
            json!({ "t": a }),
        )
        .await;
    let ro_id = keys["apiKeys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["role"] == "READ_ONLY")
        .and_then(|k| k["id"].as_str())
        .expect("read-only key id")
        .to_string();
    let revoke =
        "mutation($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) { apiKey { id revokedAt } } }";
    let v = s
        .gql(Some(&admin_b), revoke, json!({ "i": { "id": ro_id } }))
        .await;
    assert_eq!(code(&v), "NOT_FOUND");
    let v = s
        .gql(Some(&integration), revoke, json!({ "i": { "id": ro_id } }))
        .await;
    assert_eq!(code(&v), "FORBIDDEN");
    let data = s
        .ok(&admin_a, revoke, json!({ "i": { "id": ro_id } }))
        .await;
    assert!(data["revokeApiKey"]["apiKey"]["revokedAt"].is_string());
    s.ok(&admin_a, revoke, json!({ "i": { "id": ro_id } }))
        .await;
    let v = s.gql(Some(&read_only), MEMBER, json!({ "id": id })).await;
    assert_eq!(code(&v), "UNAUTHENTICATED");
    // A forged secret for a real key id is refused.
    let forged = format!("{}{}", &integration[..integration.len() - 4], "AAAA");
    let v = s.gql(Some(&forged), MEMBER, json!({ "id": id })).await;
    assert_eq!(code(&v), "UNAUTHENTICATED");
    s.finish().await;
}

async fn members_enrol_validate_and_conflict(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("members-a").await;
    let full = json!({
        "externalId": "crm-42", "email": "Ann@Example.com", "phone": "+31 6 1234 5678",
        "firstName": "Ann", "lastName": "de Vries", "birthday": "1990-04-01", "locale": "nl-NL",
        "tags": ["vip", "newsletter"], "consents": { "email": true, "sms": false },
        "attributes": { "favouriteDrink": "flat white", "storeId": 7 }
    });
    let data = s.ok(&admin, ENROLL, json!({ "i": full })).await;
    let m = &data["enrollMember"]["member"];
    assert_eq!(m["email"], "ann@example.com");
    assert_eq!(m["phone"], "+31612345678");
    assert_eq!(m["birthday"], "1990-04-01");
    assert_eq!(m["tags"], json!(["vip", "newsletter"]));
    assert_eq!(m["status"], "ACTIVE");
    let id = m["id"].as_str().expect("id");
    let data = s.ok(&admin, MEMBER, json!({ "id": id })).await;
    assert_eq!(data["member"]["attributes"]["favouriteDrink"], "flat white");
    let data = s
        .ok(
            &admin,
            "{ memberByExternalId(externalId: \"crm-42\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(data["memberByExternalId"]["id"], id);

    let future = (chrono_today() + chrono::Days::new(2))
        .format("%Y-%m-%d")
        .to_string();
    let bad = [
        ("externalId", json!({ "externalId": "" })),
        (
            "email",
            json!({ "externalId": "x1", "email": "not-an-email" }),
        ),
        (
            "phone",
            json!({ "externalId": "x2", "phone": "0612345678" }),
        ),
        (
            "birthday",
            json!({ "externalId": "x3", "birthday": future }),
        ),
        (
            "locale",
            json!({ "externalId": "x4", "locale": "not a locale" }),
        ),
        ("tags", json!({ "externalId": "x5", "tags": ["has space"] })),
        (
            "attributes",
            json!({ "externalId": "x6", "attributes": [1, 2] }),
        ),
        (
            "firstName",
            json!({ "externalId": "x7", "firstName": "x".repeat(101) }),
        ),
    ];
    for (f, input) in bad {
        let v = s.gql(Some(&admin), ENROLL, json!({ "i": input })).await;
        assert_eq!(
            (code(&v), field(&v)),
            ("VALIDATION".into(), f.to_string()),
            "{v}"
        );
    }
    // A date that is not a date is refused by the scalar, with a code.
    let v = s
        .gql(
            Some(&admin),
            ENROLL,
            json!({ "i": { "externalId": "x8", "birthday": "01/04/1990" } }),
        )
        .await;
    assert_eq!(code(&v), "VALIDATION");

    // Duplicates: externalId, and email whatever its case.
    let v = s
        .gql(
            Some(&admin),
            ENROLL,
            json!({ "i": { "externalId": "crm-42" } }),
        )
        .await;
    assert_eq!(code(&v), "CONFLICT");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .expect("msg")
            .contains("externalId")
    );
    let v = s
        .gql(
            Some(&admin),
            ENROLL,
            json!({ "i": { "externalId": "crm-43", "email": "ANN@example.COM" } }),
        )
        .await;
    assert_eq!(code(&v), "CONFLICT");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .expect("msg")
            .contains("email")
    );

    // Nothing was written by the refused requests.
    let data = s
        .ok(
            &admin,
            "{ members { edges { node { externalId } } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["members"]["edges"].as_array().expect("edges").len(), 1);

    // The same externalId in another tenant is fine.
    let (_, other) = s.tenant("members-b").await;
    s.enroll(
        &other,
        json!({ "externalId": "crm-42", "email": "ann@example.com" }),
    )
    .await;
    s.finish().await;
}

fn chrono_today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

async fn members_update_deactivate_erase(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("update-club").await;
    let id = s
        .enroll(&admin, json!({ "externalId": "u-1", "email": "u1@example.com", "firstName": "Ursula", "tags": ["a"] }))
        .await;
    s.enroll(
        &admin,
        json!({ "externalId": "u-2", "email": "u2@example.com" }),
    )
    .await;
    let update = "mutation($i: UpdateMemberInput!) { updateMember(input: $i) { member { email firstName lastName tags consents { email sms } } } }";
    // Absent stays, null clears, values set.
    let data = s
        .ok(&admin, update, json!({ "i": { "id": id, "firstName": null, "lastName": "Ulm", "tags": ["b", "c"], "consents": { "sms": true } } }))
        .await;
    let m = &data["updateMember"]["member"];
    assert_eq!(m["email"], "u1@example.com");
    assert_eq!(m["firstName"], Value::Null);
    assert_eq!(m["lastName"], "Ulm");
    assert_eq!(m["tags"], json!(["b", "c"]));
    assert_eq!(m["consents"], json!({ "email": false, "sms": true }));
    // Taking another member's email or externalId is a CONFLICT.
    let v = s
        .gql(
            Some(&admin),
            update,
            json!({ "i": { "id": id, "email": "U2@example.com" } }),
        )
        .await;
    assert_eq!(code(&v), "CONFLICT", "{v}");
    let v = s
        .gql(
            Some(&admin),
            update,
            json!({ "i": { "id": id, "externalId": "u-2" } }),
        )
        .await;
    assert_eq!(code(&v), "CONFLICT", "{v}");
    let v = s
        .gql(
            Some(&admin),
            update,
            json!({ "i": { "id": id, "phone": "12" } }),
        )
        .await;
    assert_eq!((code(&v), field(&v)), ("VALIDATION".into(), "phone".into()));
    let v = s
        .gql(Some(&admin), update, json!({ "i": { "id": "not-an-id" } }))
        .await;
    assert_eq!(code(&v), "NOT_FOUND");

    // Deactivate and reactivate are idempotent.
    let deactivate =
        "mutation($i: MemberIdInput!) { deactivateMember(input: $i) { member { status } } }";
    for _ in 0..2 {
        let data = s.ok(&admin, deactivate, json!({ "i": { "id": id } })).await;
        assert_eq!(data["deactivateMember"]["member"]["status"], "DEACTIVATED");
    }
    let data = s
        .ok(
            &admin,
            "mutation($i: MemberIdInput!) { reactivateMember(input: $i) { member { status } } }",
            json!({ "i": { "id": id } }),
        )
        .await;
    assert_eq!(data["reactivateMember"]["member"]["status"], "ACTIVE");

    // Erase removes personal data, keeps the member, and frees the externalId and email.
    let erase = "mutation($i: MemberIdInput!) { eraseMember(input: $i) { member { id externalId email firstName lastName tags status erasedAt attributes } } }";
    let data = s.ok(&admin, erase, json!({ "i": { "id": id } })).await;
    let m = &data["eraseMember"]["member"];
    assert_eq!(m["id"], id);
    assert_eq!(m["status"], "ERASED");
    assert_eq!(m["email"], Value::Null);
    assert_eq!(m["lastName"], Value::Null);
    assert_eq!(m["tags"], json!([]));
    assert!(
        m["externalId"]
            .as_str()
            .expect("ext")
            .starts_with("erased:")
    );
    let again = s.ok(&admin, erase, json!({ "i": { "id": id } })).await;
    assert_eq!(again["eraseMember"]["member"]["erasedAt"], m["erasedAt"]);
    let v = s
        .gql(
            Some(&admin),
            update,
            json!({ "i": { "id": id, "lastName": "Back" } }),
        )
        .await;
    assert_eq!(code(&v), "VALIDATION");
    let v = s
        .gql(
            Some(&admin),
            "{ memberByExternalId(externalId: \"u-1\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND");
    s.enroll(
        &admin,
        json!({ "externalId": "u-1", "email": "u1@example.com" }),
    )
    .await;
    s.finish().await;
}

async fn members_connection_filters_and_page_cap(b: Backend) {
    let s = TestServer::start_with(b, |c| {
        c.api.page_size_max = 5;
        c.api.page_size_default = 3;
    })
    .await;
    let (_, admin) = s.tenant("list-club").await;
    for i in 0..7 {
        let tags = if i % 2 == 0 {
            json!(["even"])
        } else {
            json!(["odd"])
        };
        s.enroll(&admin, json!({ "externalId": format!("m-{i}"), "email": format!("m{i}@example.com"), "tags": tags }))
            .await;
    }
    let list = "query($f: Int, $a: String, $filter: MemberFilterInput) { members(first: $f, after: $a, filter: $filter) { edges { node { externalId enrolledAt } } pageInfo { hasNextPage endCursor } } }";
    // Default page size, then paging to the end.
    let data = s.ok(&admin, list, json!({})).await;
    assert_eq!(data["members"]["edges"].as_array().expect("edges").len(), 3);
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let data = s.ok(&admin, list, json!({ "f": 5, "a": after })).await;
        for e in data["members"]["edges"].as_array().expect("edges") {
            seen.push(e["node"]["externalId"].as_str().expect("ext").to_string());
        }
        if !data["members"]["pageInfo"]["hasNextPage"]
            .as_bool()
            .expect("bool")
        {
            break;
        }
        after = data["members"]["pageInfo"]["endCursor"]
            .as_str()
            .map(String::from);
    }
    assert_eq!(seen, (0..7).map(|i| format!("m-{i}")).collect::<Vec<_>>());
    // The page cap is enforced with a clear error.
    let v = s.gql(Some(&admin), list, json!({ "f": 6 })).await;
    assert_eq!((code(&v), field(&v)), ("VALIDATION".into(), "first".into()));
    let v = s
        .gql(Some(&admin), list, json!({ "f": 2, "a": "garbage!" }))
        .await;
    assert_eq!((code(&v), field(&v)), ("VALIDATION".into(), "after".into()));
    // Filters: tag, email, enrolment range.
    let data = s
        .ok(&admin, list, json!({ "f": 5, "filter": { "tag": "odd" } }))
        .await;
    let odd: Vec<_> = data["members"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["externalId"].clone())
        .collect();
    assert_eq!(odd, vec![json!("m-1"), json!("m-3"), json!("m-5")]);
    let data = s
        .ok(
            &admin,
            list,
            json!({ "filter": { "email": "M4@example.com" } }),
        )
        .await;
    assert_eq!(data["members"]["edges"][0]["node"]["externalId"], "m-4");
    assert_eq!(data["members"]["edges"].as_array().expect("edges").len(), 1);
    let all = s.ok(&admin, list, json!({ "f": 5 })).await;
    let third = all["members"]["edges"][2]["node"]["enrolledAt"].clone();
    let data = s
        .ok(
            &admin,
            list,
            json!({ "f": 5, "filter": { "enrolledBefore": third } }),
        )
        .await;
    assert_eq!(data["members"]["edges"].as_array().expect("edges").len(), 2);
    let data = s
        .ok(
            &admin,
            list,
            json!({ "f": 5, "filter": { "enrolledFrom": third, "tag": "even" } }),
        )
        .await;
    let from: Vec<_> = data["members"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["externalId"].clone())
        .collect();
    assert_eq!(from, vec![json!("m-2"), json!("m-4"), json!("m-6")]);
    s.finish().await;
}

async fn enrol_is_idempotent_with_a_key(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("idem-club").await;
    let input =
        json!({ "externalId": "i-1", "email": "i1@example.com", "idempotencyKey": "req-1" });
    let first = s.ok(&admin, ENROLL, json!({ "i": input })).await;
    let second = s.ok(&admin, ENROLL, json!({ "i": input })).await;
    assert_eq!(
        first["enrollMember"]["member"]["id"],
        second["enrollMember"]["member"]["id"]
    );
    // Same key, different request: CONFLICT.
    let v = s
        .gql(
            Some(&admin),
            ENROLL,
            json!({ "i": { "externalId": "i-2", "idempotencyKey": "req-1" } }),
        )
        .await;
    assert_eq!(code(&v), "CONFLICT");
    // Concurrent retries with one key write one member.
    let input = json!({ "externalId": "i-3", "idempotencyKey": "req-3" });
    let ids: Vec<Option<String>> = s
        .gql_at_once(&admin, ENROLL, vec![json!({ "i": input }); 10])
        .await
        .iter()
        .map(|v| {
            v["data"]["enrollMember"]["member"]["id"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert!(
        ids.iter().all(|id| id.is_some() && *id == ids[0]),
        "{ids:?}"
    );
    let data = s
        .ok(
            &admin,
            "{ members(first: 100) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["members"]["edges"].as_array().expect("edges").len(), 2);
    s.finish().await;
}

async fn another_tenants_member_is_not_found(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin_a) = s.tenant("iso-a").await;
    let (_, admin_b) = s.tenant("iso-b").await;
    let id = s
        .enroll(
            &admin_a,
            json!({ "externalId": "secret-1", "email": "s@example.com" }),
        )
        .await;
    let by_id = |q: &str| q.to_string();
    let attempts: Vec<(String, Value)> = vec![
        (by_id(MEMBER), json!({ "id": id })),
        (
            "{ memberByExternalId(externalId: \"secret-1\") { id } }".into(),
            json!({}),
        ),
        (
            "mutation($i: UpdateMemberInput!) { updateMember(input: $i) { member { id } } }".into(),
            json!({ "i": { "id": id, "firstName": "X" } }),
        ),
        (
            "mutation($i: MemberIdInput!) { deactivateMember(input: $i) { member { id } } }".into(),
            json!({ "i": { "id": id } }),
        ),
        (
            "mutation($i: MemberIdInput!) { reactivateMember(input: $i) { member { id } } }".into(),
            json!({ "i": { "id": id } }),
        ),
        (
            "mutation($i: MemberIdInput!) { eraseMember(input: $i) { member { id } } }".into(),
            json!({ "i": { "id": id } }),
        ),
    ];
    for (q, vars) in &attempts {
        let v = s.gql(Some(&admin_b), q, vars.clone()).await;
        assert_eq!(code(&v), "NOT_FOUND", "{q}: {v}");
    }
    // B's lists and filters never show A's member.
    let data = s
        .ok(
            &admin_b,
            "{ members(filter: {email: \"s@example.com\"}) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["members"]["edges"], json!([]));
    // A's member is untouched.
    let data = s.ok(&admin_a, MEMBER, json!({ "id": id })).await;
    assert_eq!(data["member"]["status"], "ACTIVE");
    assert_eq!(data["member"]["firstName"], Value::Null);
    s.finish().await;
}

async fn limits_are_enforced(b: Backend) {
    let s = TestServer::start_with(b, |c| {
        c.api.depth_max = 4;
        c.api.complexity_max = 60;
        c.api.body_bytes_max = 4096;
        c.api.member_attributes_bytes_max = 100;
        c.api.member_tags_max = 3;
    })
    .await;
    let (_, admin) = s.tenant("limits-club").await;
    // Depth: members > edges > node > consents > email is 5 deep.
    let v = s
        .gql(
            Some(&admin),
            "{ members(first: 1) { edges { node { consents { email } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&v), "VALIDATION", "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .expect("msg")
            .contains("nested too deep"),
        "{v}"
    );
    // Complexity: 100 members times their fields.
    let v = s
        .gql(
            Some(&admin),
            "{ members(first: 30) { edges { node { id email } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&v), "VALIDATION", "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .expect("msg")
            .contains("complex"),
        "{v}"
    );
    // Body size: 413 above the limit.
    let big = json!({ "query": "{ tenant { id } }", "variables": { "pad": "x".repeat(5000) } });
    let resp = s
        .http
        .post(s.url("/graphql"))
        .bearer_auth(&admin)
        .json(&big)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 413);
    // Attribute and tag limits.
    let v = s
        .gql(
            Some(&admin),
            ENROLL,
            json!({ "i": { "externalId": "l-1", "attributes": { "k": "x".repeat(200) } } }),
        )
        .await;
    assert_eq!(
        (code(&v), field(&v)),
        ("VALIDATION".into(), "attributes".into())
    );
    let v = s
        .gql(
            Some(&admin),
            ENROLL,
            json!({ "i": { "externalId": "l-2", "tags": ["a", "b", "c", "d"] } }),
        )
        .await;
    assert_eq!((code(&v), field(&v)), ("VALIDATION".into(), "tags".into()));
    s.finish().await;
}

/// A query document answered once without errors skips the rules that read the document
/// alone (`http/documents.rs`); its requests must still get every error a fresh document
/// gets, with the same code and message, and the same answers.
async fn a_checked_document_gets_the_errors_of_a_fresh_one(b: Backend) {
    let s = TestServer::start_with(b, |c| {
        c.api.complexity_max = 60;
    })
    .await;
    let (_, admin) = s.tenant("checked-docs").await;
    let id = s
        .enroll(
            &admin,
            json!({ "externalId": "cd-1", "email": "cd@example.com" }),
        )
        .await;
    // The same query in two texts: `checked` is answered first, `fresh` never without errors,
    // so it always goes through the whole validation.
    let checked = "query($id: ID!) { member(id: $id) { id externalId } }";
    let fresh = "query($id: ID!) {  member(id: $id) { id externalId } }";
    let ok = s.gql(Some(&admin), checked, json!({ "id": id })).await;
    assert_eq!(ok["data"]["member"]["externalId"], "cd-1", "{ok}");
    let again = s.gql(Some(&admin), checked, json!({ "id": id })).await;
    assert_eq!(again, ok, "a checked document answers the same");
    for vars in [
        json!({ "id": true }),
        json!({ "id": 1.5 }),
        json!({ "id": null }),
        json!({ "id": [id] }),
        json!({}),
        json!({ "id": "not-a-uuid" }),
    ] {
        let a = s.gql(Some(&admin), checked, vars.clone()).await;
        let b = s.gql(Some(&admin), fresh, vars.clone()).await;
        assert!(a["errors"][0]["message"].is_string(), "{vars}: {a}");
        assert_eq!(code(&a), code(&b), "{vars}: {a} against {b}");
        assert_eq!(
            a["errors"][0]["message"], b["errors"][0]["message"],
            "{vars}: {a} against {b}"
        );
    }
    // Without a key: refused, and never a way around the check.
    let anon = s.gql(None, checked, json!({ "id": id })).await;
    assert_eq!(code(&anon), "UNAUTHENTICATED", "{anon}");
    // The complexity limit still reads this request's variables.
    let page = "query($n: Int) { members(first: $n) { edges { node { id email } } } }";
    let small = s.gql(Some(&admin), page, json!({ "n": 1 })).await;
    assert!(small["errors"].is_null(), "{small}");
    let big = s.gql(Some(&admin), page, json!({ "n": 30 })).await;
    assert_eq!(code(&big), "VALIDATION", "{big}");
    assert!(
        big["errors"][0]["message"]
            .as_str()
            .expect("msg")
            .contains("complex"),
        "{big}"
    );
    s.finish().await;
}
