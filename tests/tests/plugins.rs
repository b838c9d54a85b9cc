//! Plugin registry over GraphQL, both backends: bundled plugins listed for every tenant,
//! installing a tenant's own component, binding with the plugin's config validation,
//! tenant isolation, roles, idempotency, limits and refusals.

use base64::Engine as _;
use loyalty_tests::{Backend, PLATFORM_KEY, TestServer, both_backends, code, components, field};
use serde_json::{Value, json};

both_backends!(
    bundled_plugins_are_listed_and_bound_with_a_validated_config,
    installed_plugins_belong_to_their_tenant,
    bad_components_are_refused_at_install,
    roles_and_limits_of_the_registry,
);

const LIST: &str = "query($k: PluginKind) { plugins(kind: $k) { id name version kind description \
                    configExample digest sizeBytes bundled } }";
const INSTALL: &str = "mutation($i: InstallPluginInput!) { installPlugin(input: $i) { plugin { \
                       id name version kind bundled digest } } }";
const BIND: &str = "mutation($i: BindPluginInput!) { bindPlugin(input: $i) { binding { id config \
                    priority enabled removedAt plugin { id name } } } }";
const UPDATE: &str = "mutation($i: UpdatePluginBindingInput!) { updatePluginBinding(input: $i) { \
                      binding { id config priority enabled } } }";
const UNBIND: &str = "mutation($i: UnbindPluginInput!) { unbindPlugin(input: $i) { binding { id \
                      removedAt } } }";
const BINDINGS: &str = "{ pluginBindings { id priority enabled plugin { name } } }";

async fn plugin_named(s: &TestServer, key: &str, name: &str) -> Option<Value> {
    let data = s.ok(key, LIST, json!({})).await;
    data["plugins"]
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
}

async fn install(s: &TestServer, key: &str, wasm: &[u8]) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD.encode(wasm);
    s.gql(Some(key), INSTALL, json!({"i": {"wasmBase64": b64}}))
        .await
}

/// A component's bytes with a custom section appended: the same plugin, other code.
fn with_custom_section(component: &[u8]) -> Vec<u8> {
    let mut bytes = component.to_vec();
    // Section id 0 (custom), size 6, name "note" (length 4), one payload byte.
    bytes.extend_from_slice(&[0, 6, 4, b'n', b'o', b't', b'e', 1]);
    bytes
}

async fn bundled_plugins_are_listed_and_bound_with_a_validated_config(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("brand-a").await;
    let (_, other_admin) = s.tenant("brand-b").await;

    // Every tenant sees the bundled base-rate, with what it needs to configure it.
    let base = plugin_named(&s, &admin, "base-rate")
        .await
        .expect("base-rate is bundled");
    assert_eq!(base["kind"], "POINT_RULE");
    assert_eq!(base["bundled"], true);
    assert_eq!(base["digest"].as_str().map(str::len), Some(64));
    assert!(base["sizeBytes"].as_i64().unwrap_or(0) > 0);
    assert!(!base["description"].as_str().unwrap_or("").is_empty());
    let same = plugin_named(&s, &other_admin, "base-rate")
        .await
        .expect("bundled for every tenant");
    assert_eq!(same["id"], base["id"]);
    // The kind filter.
    let rewards = s.ok(&admin, LIST, json!({"k": "REWARD_TYPE"})).await;
    assert!(
        rewards["plugins"]
            .as_array()
            .expect("list")
            .iter()
            .all(|p| p["kind"] == "REWARD_TYPE")
    );

    // Bound with its own example config.
    let example: Value =
        serde_json::from_str(base["configExample"].as_str().expect("example")).expect("JSON");
    let input = json!({"pluginVersionId": base["id"], "config": example, "priority": 5,
                       "idempotencyKey": "bind-1"});
    let bound = s.ok(&admin, BIND, json!({"i": input})).await;
    let binding = bound["bindPlugin"]["binding"].clone();
    assert_eq!(binding["config"], example);
    assert_eq!(binding["priority"], 5);
    assert_eq!(binding["enabled"], true);
    assert_eq!(binding["plugin"]["name"], "base-rate");
    // The same key and request: the same binding, nothing new.
    let again = s.ok(&admin, BIND, json!({"i": input})).await;
    assert_eq!(again["bindPlugin"]["binding"]["id"], binding["id"]);
    // The same key, another request: CONFLICT.
    let mut other = input.clone();
    other["priority"] = json!(6);
    let v = s.gql(Some(&admin), BIND, json!({"i": other})).await;
    assert_eq!(code(&v), "CONFLICT", "{v:#}");

    // A config the plugin refuses: VALIDATION on `config`, in the plugin's words.
    let v = s
        .gql(
            Some(&admin),
            BIND,
            json!({"i": {"pluginVersionId": base["id"], "config": {"points_per_unit": 0}}}),
        )
        .await;
    assert_eq!(code(&v), "VALIDATION", "{v:#}");
    assert_eq!(field(&v), "config");
    let message = v["errors"][0]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("base-rate") && message.contains("points_per_unit"),
        "{message}"
    );
    let v = s
        .gql(
            Some(&admin),
            BIND,
            json!({"i": {"pluginVersionId": base["id"], "config": [1, 2]}}),
        )
        .await;
    assert_eq!(code(&v), "VALIDATION", "{v:#}");
    // A malformed or unknown version id.
    for id in ["nope", "0190f8a0-0000-7000-8000-000000000001"] {
        let v = s
            .gql(Some(&admin), BIND, json!({"i": {"pluginVersionId": id}}))
            .await;
        assert_eq!(code(&v), "NOT_FOUND", "{v:#}");
    }

    // Change, list, unbind (twice), list again.
    let id = binding["id"].clone();
    let v = s
        .ok(
            &admin,
            UPDATE,
            json!({"i": {"bindingId": id, "enabled": false, "config": {"points_per_unit": 3}}}),
        )
        .await;
    assert_eq!(v["updatePluginBinding"]["binding"]["enabled"], false);
    assert_eq!(
        v["updatePluginBinding"]["binding"]["config"]["points_per_unit"],
        3
    );
    let v = s
        .gql(
            Some(&admin),
            UPDATE,
            json!({"i": {"bindingId": id, "config": {"points_per_unit": -1}}}),
        )
        .await;
    assert_eq!(code(&v), "VALIDATION", "{v:#}");
    let listed = s.ok(&admin, BINDINGS, json!({})).await;
    assert_eq!(listed["pluginBindings"][0]["id"], id);
    assert_eq!(listed["pluginBindings"][0]["enabled"], false);
    let first = s.ok(&admin, UNBIND, json!({"i": {"bindingId": id}})).await;
    let second = s.ok(&admin, UNBIND, json!({"i": {"bindingId": id}})).await;
    assert!(first["unbindPlugin"]["binding"]["removedAt"].is_string());
    assert_eq!(
        first["unbindPlugin"]["binding"]["removedAt"],
        second["unbindPlugin"]["binding"]["removedAt"]
    );
    let listed = s.ok(&admin, BINDINGS, json!({})).await;
    assert_eq!(listed["pluginBindings"], json!([]));
    // A removed binding cannot be changed; another tenant's is NOT_FOUND.
    let v = s
        .gql(
            Some(&admin),
            UPDATE,
            json!({"i": {"bindingId": id, "enabled": true}}),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND", "{v:#}");
    let v = s
        .gql(Some(&other_admin), UNBIND, json!({"i": {"bindingId": id}}))
        .await;
    assert_eq!(code(&v), "NOT_FOUND", "{v:#}");
    s.finish().await;
}

async fn installed_plugins_belong_to_their_tenant(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.tenant("owner").await;
    let (_, stranger) = s.tenant("stranger").await;
    let panic = components::component("hostile-panic");

    let v = install(&s, &admin, panic).await;
    assert_eq!(code(&v), "OK", "{v:#}");
    let plugin = v["data"]["installPlugin"]["plugin"].clone();
    assert_eq!(plugin["name"], "hostile-panic");
    assert_eq!(plugin["kind"], "POINT_RULE");
    assert_eq!(plugin["bundled"], false);
    // Installing the same code again answers with the stored version.
    let v = install(&s, &admin, panic).await;
    assert_eq!(v["data"]["installPlugin"]["plugin"]["id"], plugin["id"]);
    // Other code under the same name and version: CONFLICT.
    let v = install(&s, &admin, &with_custom_section(panic)).await;
    assert_eq!(code(&v), "CONFLICT", "{v:#}");

    // The owner sees and binds it; the other tenant neither sees nor binds it.
    assert!(plugin_named(&s, &admin, "hostile-panic").await.is_some());
    assert!(plugin_named(&s, &stranger, "hostile-panic").await.is_none());
    let v = s
        .gql(
            Some(&stranger),
            BIND,
            json!({"i": {"pluginVersionId": plugin["id"]}}),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND", "{v:#}");
    // The other tenant may install the same component: its own version, its own id.
    let v = install(&s, &stranger, panic).await;
    let theirs = v["data"]["installPlugin"]["plugin"].clone();
    assert_eq!(theirs["digest"], plugin["digest"]);
    assert_ne!(theirs["id"], plugin["id"]);

    // A plugin that traps while checking its config is a PLUGIN_ERROR, and binds nothing.
    let v = s
        .gql(
            Some(&admin),
            BIND,
            json!({"i": {"pluginVersionId": plugin["id"], "config": {"mode": "panic-in-validate"}}}),
        )
        .await;
    assert_eq!(code(&v), "PLUGIN_ERROR", "{v:#}");
    let message = v["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains("hostile-panic"), "{message}");
    assert_eq!(
        s.ok(&admin, BINDINGS, json!({})).await["pluginBindings"],
        json!([])
    );
    // With a harmless config it binds (it would trap per event; the pipeline contains that).
    let v = s
        .ok(
            &admin,
            BIND,
            json!({"i": {"pluginVersionId": plugin["id"], "config": {}}}),
        )
        .await;
    assert_eq!(
        v["bindPlugin"]["binding"]["plugin"]["name"],
        "hostile-panic"
    );
    s.finish().await;
}

async fn bad_components_are_refused_at_install(b: Backend) {
    let s = TestServer::start_with(b, |settings| {
        settings.plugins.component_bytes_max = 200 * 1024;
    })
    .await;
    let (_, admin) = s.tenant("careful").await;
    let refused = |v: &Value| {
        assert_eq!(code(v), "VALIDATION", "{v:#}");
        assert_eq!(field(v), "wasmBase64", "{v:#}");
        v["errors"][0]["message"].as_str().unwrap_or("").to_string()
    };

    let v = s
        .gql(
            Some(&admin),
            INSTALL,
            json!({"i": {"wasmBase64": "not base64!"}}),
        )
        .await;
    assert!(refused(&v).contains("base64"));
    // A component that imports WASI (or anything outside loyalty:plugin/*).
    let wasi = wat::parse_str(
        r#"(component (import "wasi:clocks/wall-clock@0.2.0" (instance (export "now" (func)))))"#,
    )
    .expect("wat");
    let message = refused(&install(&s, &admin, &wasi).await);
    assert!(message.contains("wasi:clocks/wall-clock"), "{message}");
    // A core module is not a component; garbage is not wasm.
    let module = wat::parse_str("(module)").expect("wat");
    refused(&install(&s, &admin, &module).await);
    refused(&install(&s, &admin, b"definitely not wasm").await);
    // Larger than plugins.component_bytes_max.
    let big = vec![0u8; 200 * 1024 + 1];
    let message = refused(&install(&s, &admin, &big).await);
    assert!(message.contains("plugins.component_bytes_max"), "{message}");
    // Nothing was stored.
    let data = s.ok(&admin, LIST, json!({})).await;
    assert!(
        data["plugins"]
            .as_array()
            .expect("list")
            .iter()
            .all(|p| p["bundled"] == true),
        "{data:#}"
    );
    s.finish().await;
}

async fn roles_and_limits_of_the_registry(b: Backend) {
    let s = TestServer::start_with(b, |settings| {
        settings.api.plugin_versions_max = 1;
        settings.api.plugin_bindings_max = 1;
    })
    .await;
    let (tenant, admin) = s.tenant("roles").await;
    let integration = s.key(&admin, &tenant, "INTEGRATION").await;
    let read_only = s.key(&admin, &tenant, "READ_ONLY").await;
    let base = plugin_named(&s, &read_only, "base-rate")
        .await
        .expect("READ_ONLY lists plugins");

    // Only ADMIN installs and binds.
    for key in [&integration, &read_only] {
        let v = install(&s, key, components::component("hostile-loop")).await;
        assert_eq!(code(&v), "FORBIDDEN", "{v:#}");
        let v = s
            .gql(
                Some(key),
                BIND,
                json!({"i": {"pluginVersionId": base["id"], "config": {"points_per_unit": 1}}}),
            )
            .await;
        assert_eq!(code(&v), "FORBIDDEN", "{v:#}");
    }
    // No key at all.
    let v = s.gql(None, LIST, json!({})).await;
    assert_eq!(code(&v), "UNAUTHENTICATED", "{v:#}");
    // The platform key manages tenants, not a tenant's plugins.
    let v = s.gql(Some(PLATFORM_KEY), LIST, json!({})).await;
    assert_ne!(code(&v), "OK", "{v:#}");

    // api.plugin_versions_max = 1: the second install is refused; bundled ones do not count.
    let v = install(&s, &admin, components::component("hostile-loop")).await;
    assert_eq!(code(&v), "OK", "{v:#}");
    let v = install(&s, &admin, components::component("hostile-panic")).await;
    assert_eq!(code(&v), "VALIDATION", "{v:#}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("api.plugin_versions_max")
    );
    // api.plugin_bindings_max = 1: a second active binding is refused until one is removed.
    let bind = json!({"i": {"pluginVersionId": base["id"], "config": {"points_per_unit": 1}}});
    let first = s.ok(&admin, BIND, bind.clone()).await;
    let v = s.gql(Some(&admin), BIND, bind.clone()).await;
    assert_eq!(code(&v), "VALIDATION", "{v:#}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("api.plugin_bindings_max")
    );
    s.ok(
        &admin,
        UNBIND,
        json!({"i": {"bindingId": first["bindPlugin"]["binding"]["id"]}}),
    )
    .await;
    s.ok(&admin, BIND, bind).await;
    s.finish().await;
}
