//! End-to-end test harness: the real server on `127.0.0.1:0` over a fresh database.
//!
//! Every scenario is an `async fn(Backend)`; [`both_backends!`] turns a list of them into
//! `sqlite::name` and `postgres::name` tests. PostgreSQL is found at
//! `LOYALTY_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`); each
//! test creates its own database with a unique name and drops it at the end. PostgreSQL
//! missing is a failure, never a skip.

use anyhow::Context as _;
use loyalty_core::config::{Secret, Settings};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The platform key every test server is started with.
pub const PLATFORM_KEY: &str = "lp_test_platform_key_0123456789abcdef";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one test per scenario and backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
}

fn postgres_admin_url() -> String {
    std::env::var("LOYALTY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test.
pub enum TestDb {
    Sqlite { dir: PathBuf },
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    pub async fn create(backend: Backend) -> anyhow::Result<Self> {
        let unique = uuid::Uuid::now_v7().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("loyalty-test-{unique}"));
                std::fs::create_dir_all(&dir)?;
                Ok(Self::Sqlite { dir })
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("loyalty_test_{unique}");
                let admin = Database::connect(&admin_url).await.with_context(|| {
                    format!(
                        "PostgreSQL is required for the tests and is not reachable at {admin_url} \
                         (set LOYALTY_TEST_POSTGRES_URL)"
                    )
                })?;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await?;
                admin.close().await?;
                Ok(Self::Postgres { admin_url, name })
            }
        }
    }

    pub fn url(&self) -> String {
        match self {
            Self::Sqlite { dir } => format!("sqlite://{}/loyalty.db?mode=rwc", dir.display()),
            Self::Postgres { admin_url, name } => match admin_url.rsplit_once('/') {
                Some((base, _)) => format!("{base}/{name}"),
                None => format!("{admin_url}/{name}"),
            },
        }
    }

    pub async fn drop_db(&self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite { dir } => {
                std::fs::remove_dir_all(dir).ok();
            }
            Self::Postgres { admin_url, name } => {
                let admin = Database::connect(admin_url).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                admin.close().await?;
            }
        }
        Ok(())
    }
}

/// Settings for a test server on `db`, with the test platform key.
pub fn settings_for(db: &TestDb) -> Settings {
    let mut s = Settings::default();
    s.database.url = Secret::new(db.url());
    s.database.connections_max = 8;
    s.auth.platform_key = Some(Secret::new(PLATFORM_KEY));
    s.server.listen = "127.0.0.1:0".into();
    s.server.shutdown_grace_s = 5;
    s
}

/// A running server and a client for it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    app: loyalty_core::AppState,
    db: Option<TestDb>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a server whose settings `adjust` may change (limits, for instance).
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::launch(backend, loyalty_core::clock::Clock::system(), adjust).await
    }

    /// A server on a manual clock standing at `at`, with the background jobs off: the test
    /// moves the clock ([`clock`](Self::clock)) and runs the jobs ([`run_jobs`](Self::run_jobs)).
    pub async fn start_clocked(backend: Backend, at: chrono::DateTime<chrono::Utc>) -> Self {
        Self::start_clocked_with(backend, at, |_| {}).await
    }

    pub async fn start_clocked_with(
        backend: Backend,
        at: chrono::DateTime<chrono::Utc>,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        Self::launch(backend, loyalty_core::clock::Clock::manual(at), |s| {
            s.jobs.enabled = false;
            adjust(s);
        })
        .await
    }

    async fn launch(
        backend: Backend,
        clock: loyalty_core::clock::Clock,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        let db = TestDb::create(backend).await.expect("test database");
        let mut settings = settings_for(&db);
        adjust(&mut settings);
        Self::serve(settings, clock, Some(db)).await
    }

    /// A second server on this server's database (another replica behind a load balancer),
    /// with this server's settings as `adjust` leaves them. Its database is dropped with this
    /// server, not with the replica.
    pub async fn replica(&self, adjust: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = (*self.app.settings).clone();
        adjust(&mut settings);
        Self::serve(settings, self.app.db.clock().clone(), None).await
    }

    async fn serve(
        settings: Settings,
        clock: loyalty_core::clock::Clock,
        db: Option<TestDb>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let launched =
            loyalty_core::http::launch_with_clock(settings, clock, listener, async move {
                let _ = rx.await;
            })
            .await
            .expect("server starts");
        Self {
            addr: launched.addr,
            http: reqwest::Client::new(),
            app: launched.app,
            db,
            stop: Some(tx),
            task: Some(launched.task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server's state (its database, settings and clock).
    pub fn app(&self) -> &loyalty_core::AppState {
        &self.app
    }

    /// The server's clock: manual for [`start_clocked`](Self::start_clocked) servers.
    pub fn clock(&self) -> &loyalty_core::clock::Clock {
        self.app.db.clock()
    }

    /// Runs every background job until nothing is due at the clock's time.
    pub async fn run_jobs(&self) -> loyalty_core::jobs::JobsSummary {
        loyalty_core::jobs::run_once(&self.app, self.app.db.now())
            .await
            .expect("jobs run")
    }

    /// Asserts the ledger audit finds nothing.
    pub async fn assert_audit_clean(&self) {
        let v = loyalty_core::ledger::audit::audit(&self.app.db)
            .await
            .expect("audit runs");
        assert!(v.is_empty(), "ledger audit violations: {v:#?}");
    }

    /// Sends a GraphQL request and returns the whole JSON response.
    pub async fn gql(&self, key: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.expect("request sent");
        resp.json().await.expect("JSON response")
    }

    /// Sends one request per element of `variables`, all at once (each from its own task),
    /// and returns the responses in the same order.
    pub async fn gql_at_once(&self, key: &str, query: &str, variables: Vec<Value>) -> Vec<Value> {
        let tasks: Vec<_> = variables
            .into_iter()
            .map(|vars| {
                let req = self
                    .http
                    .post(self.url("/graphql"))
                    .bearer_auth(key)
                    .json(&json!({ "query": query, "variables": vars }));
                tokio::spawn(async move {
                    let resp = req.send().await.expect("request sent");
                    resp.json::<Value>().await.expect("JSON response")
                })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await.expect("request task"));
        }
        out
    }

    /// Like [`gql`](Self::gql) but panics on errors and returns `data`.
    pub async fn ok(&self, key: &str, query: &str, variables: Value) -> Value {
        let v = self.gql(Some(key), query, variables).await;
        assert!(v.get("errors").is_none(), "unexpected errors: {v:#}");
        v["data"].clone()
    }

    /// Creates a tenant and an ADMIN key for it: `(tenant id, admin key)`.
    pub async fn tenant(&self, slug: &str) -> (String, String) {
        let data = self
            .ok(
                PLATFORM_KEY,
                "mutation($i: CreateTenantInput!) { createTenant(input: $i) { tenant { id slug } } }",
                json!({ "i": { "slug": slug, "name": format!("Brand {slug}"), "timezone": "Europe/Amsterdam" } }),
            )
            .await;
        let id = data["createTenant"]["tenant"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let key = self.key(PLATFORM_KEY, &id, "ADMIN").await;
        (id, key)
    }

    /// Issues a key with `role` for `tenant` using `as_key`.
    pub async fn key(&self, as_key: &str, tenant: &str, role: &str) -> String {
        let data = self
            .ok(
                as_key,
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { id role } } }",
                json!({ "i": { "tenantId": tenant, "role": role, "name": format!("{role} key") } }),
            )
            .await;
        assert_eq!(data["createApiKey"]["apiKey"]["role"], role);
        data["createApiKey"]["secret"]
            .as_str()
            .expect("secret")
            .to_string()
    }

    /// Enrols a member and returns its id.
    pub async fn enroll(&self, key: &str, input: Value) -> String {
        let data = self
            .ok(
                key,
                "mutation($i: EnrollMemberInput!) { enrollMember(input: $i) { member { id } } }",
                json!({ "i": input }),
            )
            .await;
        data["enrollMember"]["member"]["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Stops the server (graceful shutdown) and drops the database.
    pub async fn finish(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
        if let Some(db) = self.db.take() {
            db.drop_db().await.expect("drop test database");
        }
    }
}

impl Drop for TestServer {
    /// A failed test still removes its database.
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(db) = self.db.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Runtime::new() {
                    let _ = rt.block_on(db.drop_db());
                }
            })
            .join();
        }
    }
}

/// The `extensions.code` of the first error, or "OK".
pub fn code(v: &Value) -> String {
    v["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("OK")
        .to_string()
}

/// The `extensions.field` of the first error.
pub fn field(v: &Value) -> String {
    v["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The server's state without HTTP, for service-level tests (ledger operations, jobs, audit).
pub struct TestApp {
    pub app: loyalty_core::AppState,
    db: Option<TestDb>,
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        let db = TestDb::create(backend).await.expect("test database");
        let (app, _) = loyalty_core::AppState::start(settings_for(&db))
            .await
            .expect("state starts");
        Self { app, db: Some(db) }
    }

    /// A tenant with the given policy, and a member in it.
    pub async fn tenant_and_member(
        &self,
        slug: &str,
        policy: loyalty_core::tenants::PointsPolicy,
    ) -> (loyalty_core::tenants::Tenant, loyalty_core::ids::MemberId) {
        use loyalty_core::auth::Principal;
        use loyalty_core::tenants::{self, Branding, NewTenant};
        let db = &self.app.db;
        let t = tenants::service::create(
            db,
            &Principal::Platform,
            NewTenant {
                slug: slug.into(),
                name: slug.into(),
                timezone: chrono_tz_utc(),
                points_name: "points".into(),
                currency: "EUR".into(),
                branding: Branding::default(),
            },
        )
        .await
        .expect("tenant");
        let txn = db.begin_write().await.expect("txn");
        let t = tenants::repo::set_points_policy(&txn, t.id, policy)
            .await
            .expect("policy")
            .expect("tenant exists");
        txn.commit().await.expect("commit");
        let (_, secret) = loyalty_core::auth::service::create_api_key(
            db,
            &Principal::Platform,
            t.id,
            loyalty_core::auth::Role::Admin,
            "test",
        )
        .await
        .expect("key");
        let admin =
            loyalty_core::auth::service::authenticate(db, &self.app.platform_key_hash, &secret)
                .await
                .expect("auth");
        let m = loyalty_core::members::service::enroll(
            db,
            &self.app.plugins,
            &admin,
            loyalty_core::members::EnrollRequest {
                external_id: format!("{slug}-member"),
                ..Default::default()
            },
            None,
            loyalty_core::members::MemberLimits {
                attributes_bytes_max: 1024,
                tags_max: 10,
                plugin_awards_max: 10,
            },
        )
        .await
        .expect("member");
        (t, m.id)
    }

    /// Asserts the ledger audit finds nothing.
    pub async fn assert_audit_clean(&self) {
        let v = loyalty_core::ledger::audit::audit(&self.app.db)
            .await
            .expect("audit runs");
        assert!(v.is_empty(), "ledger audit violations: {v:#?}");
    }

    pub async fn finish(mut self) {
        if let Some(db) = self.db.take() {
            self.app.db.clone().close().await;
            db.drop_db().await.expect("drop test database");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Runtime::new() {
                    let _ = rt.block_on(db.drop_db());
                }
            })
            .join();
        }
    }
}

fn chrono_tz_utc() -> chrono_tz::Tz {
    chrono_tz::UTC
}

/// Components built from the repository's plugin crates, for tests that install them.
///
/// Built once per test binary (`OnceLock`) with the author tooling, into `<target>/plugin-wasm`
/// (shared with the host crate's tests), so the nested cargo never waits on the outer build's lock.
pub mod components {
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::OnceLock;

    /// The crates the end-to-end tests install (all encode as components).
    pub const CRATES: &[&str] = &["base-rate", "hostile-panic", "hostile-loop"];

    /// Builds each crate the way a plugin author does (`loyalty plugin build`).
    fn build() -> HashMap<String, Vec<u8>> {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        // Inside the outer build's target directory, shared with the host crate's tests.
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .map_or_else(|| workspace.join("target"), |t| workspace.join(t))
            .join("plugin-wasm");
        CRATES
            .iter()
            .map(|name| {
                let dir = if name.starts_with("hostile-") {
                    workspace.join("plugins/hostile").join(name)
                } else {
                    workspace.join("plugins").join(name)
                };
                let path = loyalty_plugin_host::build_in(&dir, Some(&target))
                    .unwrap_or_else(|e| panic!("build {name}: {e}"));
                let component =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                ((*name).to_owned(), component)
            })
            .collect()
    }

    /// The component of one of [`CRATES`].
    pub fn component(name: &str) -> &'static [u8] {
        static BUILT: OnceLock<HashMap<String, Vec<u8>>> = OnceLock::new();
        BUILT
            .get_or_init(build)
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in components::CRATES"))
    }

    /// The component of `name`, base64-encoded for `installPlugin`.
    pub fn base64(name: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(component(name))
    }
}

impl TestApp {
    /// The URL of the app's database (for a second connection of a test's own).
    pub fn database_url(&self) -> String {
        self.db
            .as_ref()
            .map(TestDb::url)
            .expect("the test database lives as long as the app")
    }
}

impl TestServer {
    /// The URL of the server's database (for tools that read it beside the server, like the
    /// bench's audit).
    pub fn database_url(&self) -> String {
        self.db
            .as_ref()
            .map(TestDb::url)
            .expect("the test database lives as long as the server")
    }
}

/// `loyalty-bench`, the load generator (`src/bin/loyalty-bench.rs`).
pub mod bench;
