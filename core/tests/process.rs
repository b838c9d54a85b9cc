//! The `loyalty` binary as an operator runs it: configuration layering, migrations, first-start
//! platform key, and graceful shutdown on SIGTERM that completes an in-flight request.
//! Database scenarios run on SQLite and on PostgreSQL (`LOYALTY_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`).

use sea_orm::{ConnectionTrait, Database, EntityTrait, IntoActiveModel};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn loyalty(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_loyalty"));
    c.current_dir(dir);
    // The tests' own environment must not leak into the child's configuration.
    for (k, _) in std::env::vars() {
        if k.starts_with("LOYALTY__") {
            c.env_remove(k);
        }
    }
    c
}

fn temp_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("loyalty-proc-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn config_layers_file_then_environment_and_redacts_secrets() {
    let dir = temp_dir();
    std::fs::write(
        dir.join("loyalty.toml"),
        "[server]\nlisten = \"127.0.0.1:7000\"\n[api]\npage_size_max = 50\n",
    )
    .expect("write config");
    let out = loyalty(&dir)
        .arg("config")
        .env("LOYALTY__SERVER__LISTEN", "127.0.0.1:7001")
        .env(
            "LOYALTY__AUTH__PLATFORM_KEY",
            "lp_do_not_print_me_0123456789",
        )
        .env(
            "LOYALTY__DATABASE__URL",
            "postgres://app:hunter2@db.internal/loyalty",
        )
        .output()
        .expect("run loyalty config");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("listen = \"127.0.0.1:7001\""), "{text}");
    assert!(text.contains("page_size_max = 50"), "{text}");
    assert!(text.contains("depth_max = 12"), "{text}");
    assert!(
        !text.contains("do_not_print_me") && !text.contains("hunter2"),
        "{text}"
    );

    let bad = loyalty(&dir)
        .arg("config")
        .env("LOYALTY__API__PAGE_SIZE_DEFAULT", "0")
        .output()
        .expect("run loyalty config");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("page_size_default"));
    std::fs::remove_dir_all(&dir).ok();
}

enum Db {
    Sqlite(std::path::PathBuf),
    Postgres { admin: String, name: String },
}

impl Db {
    async fn create(postgres: bool, dir: &std::path::Path) -> Self {
        if !postgres {
            return Db::Sqlite(dir.join("data/loyalty.db"));
        }
        let admin = std::env::var("LOYALTY_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("loyalty_proc_{}", uuid::Uuid::now_v7().simple());
        let conn = Database::connect(&admin)
            .await
            .expect("PostgreSQL is required for the tests");
        conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create db");
        conn.close().await.ok();
        Db::Postgres { admin, name }
    }

    fn url(&self) -> String {
        match self {
            Db::Sqlite(path) => format!("sqlite://{}?mode=rwc", path.display()),
            Db::Postgres { admin, name } => {
                format!(
                    "{}/{name}",
                    admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b)
                )
            }
        }
    }

    async fn drop_db(&self) {
        if let Db::Postgres { admin, name } = self {
            let conn = Database::connect(admin).await.expect("connect");
            conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .expect("drop db");
            conn.close().await.ok();
        }
    }
}

/// A `loyalty serve` child and the lines it prints.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start(dir: &std::path::Path, url: &str) -> Self {
        let mut child = loyalty(dir)
            .arg("serve")
            .env("LOYALTY__SERVER__LISTEN", "127.0.0.1:0")
            .env("LOYALTY__DATABASE__URL", url)
            .env("LOYALTY__LOG__FORMAT", "text")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn loyalty serve");
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Self { child, lines: rx }
    }

    /// The first printed line containing `needle` (waits at most a minute).
    fn wait_for(&self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("server never printed {needle:?}: {e}"),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig} failed");
    }
}

async fn serve_migrate_and_shut_down_gracefully(postgres: bool) {
    let dir = temp_dir();
    let db = Db::create(postgres, &dir).await;

    let migrate = loyalty(&dir)
        .arg("migrate")
        .env("LOYALTY__DATABASE__URL", db.url())
        .output()
        .expect("run migrate");
    assert!(migrate.status.success(), "{migrate:?}");

    let mut server = Server::start(&dir, &db.url());
    let addr = server
        .wait_for("GraphiQL:")
        .rsplit("http://")
        .next()
        .and_then(|s| s.strip_suffix("/graphql"))
        .expect("address")
        .to_string();
    let key_line = server.wait_for("Platform key:");
    let key = key_line.split_whitespace().nth(2).expect("key").to_string();
    assert!(key.starts_with("lp_"), "{key_line}");

    // The generated key works.
    let body = r#"{"query":"{ tenants { edges { node { id } } } }"}"#;
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(&key)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.expect("text").contains("\"tenants\""));

    // An in-flight request: the handler is reading its body (the server said 100 Continue)
    // when SIGTERM arrives; the body is sent after the server announced its shutdown.
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.flush().await.expect("flush");
    let mut interim = [0u8; 25];
    stream
        .read_exact(&mut interim)
        .await
        .expect("read 100 Continue");
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue"),
        "{:?}",
        String::from_utf8_lossy(&interim)
    );
    server.signal("-TERM");
    server.wait_for("shutting down");
    stream.write_all(body.as_bytes()).await.expect("write body");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"tenants\""), "{response}");
    let status = server.child.wait().expect("wait");
    assert!(status.success(), "{status:?}");

    // Second start: the key was stored hashed and is not printed again.
    let mut again = Server::start(&dir, &db.url());
    again.wait_for("GraphiQL:");
    let line = again.wait_for("Platform key:");
    assert!(!line.contains("lp_"), "{line}");
    again.signal("-INT");
    assert!(again.child.wait().expect("wait").success());

    // Operator tools on the same database: jobs and the ledger audit.
    let jobs = loyalty(&dir)
        .args(["jobs", "run-once"])
        .env("LOYALTY__DATABASE__URL", db.url())
        .output()
        .expect("run jobs");
    assert!(jobs.status.success(), "{jobs:?}");
    assert!(String::from_utf8_lossy(&jobs.stdout).contains("unlocked 0 lots, expired 0 lots"));
    let audit = loyalty(&dir)
        .args(["ledger", "audit"])
        .env("LOYALTY__DATABASE__URL", db.url())
        .output()
        .expect("run audit");
    assert!(audit.status.success(), "{audit:?}");
    assert!(String::from_utf8_lossy(&audit.stdout).contains("ledger audit: ok"));
    // A balance row that no line explains is reported, and the exit code says so.
    let conn = Database::connect(db.url()).await.expect("connect");
    let stray = loyalty_core::db::entities::ledger_balances::Model {
        member_id: uuid::Uuid::now_v7(),
        tenant_id: uuid::Uuid::now_v7(),
        available: 5,
        pending: 0,
        held: 0,
        lifetime_earned: 5,
        lifetime_redeemed: 0,
        lifetime_expired: 0,
        updated_at: loyalty_core::clock::now(),
    };
    loyalty_core::db::entities::ledger_balances::Entity::insert(stray.into_active_model())
        .exec_without_returning(&conn)
        .await
        .expect("tamper");
    conn.close().await.ok();
    let audit = loyalty(&dir)
        .args(["ledger", "audit"])
        .env("LOYALTY__DATABASE__URL", db.url())
        .output()
        .expect("run audit");
    let text = String::from_utf8_lossy(&audit.stdout);
    assert_eq!(audit.status.code(), Some(1), "{audit:?}");
    assert!(text.contains("invariant 3"), "{text}");

    db.drop_db().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn sqlite_serve_migrate_and_shut_down_gracefully() {
    serve_migrate_and_shut_down_gracefully(false).await;
}

#[tokio::test]
async fn postgres_serve_migrate_and_shut_down_gracefully() {
    serve_migrate_and_shut_down_gracefully(true).await;
}

/// The README's path for a plugin author: `plugin new`, `plugin build`, `plugin run` with the
/// example input, and a refused config reported with exit code 1.
#[test]
fn plugin_author_commands_scaffold_build_and_run() {
    let dir = temp_dir();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let crate_dir = dir.join("double-points");
    let out = loyalty(&dir)
        .args(["plugin", "new", "double-points", "--kind", "point-rule"])
        .output()
        .expect("plugin new");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(crate_dir.join("Cargo.toml").exists());
    // A second `new` into the same place refuses to overwrite.
    let again = loyalty(&dir)
        .args(["plugin", "new", "double-points"])
        .output()
        .expect("plugin new again");
    assert!(!again.status.success());
    let bad = loyalty(&dir)
        .args(["plugin", "new", "x", "--kind", "lottery"])
        .output()
        .expect("plugin new with a bad kind");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown plugin kind"));

    let out = loyalty(&crate_dir)
        .args(["plugin", "build", "."])
        .output()
        .expect("plugin build");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let component = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(component.ends_with(".component.wasm"), "{component}");

    let run = |config: &str| {
        let config_path = dir.join("config.json");
        std::fs::write(&config_path, config).expect("write config");
        loyalty(&dir)
            .args(["plugin", "run", &component, "--json", "--input"])
            .arg(examples.join("point-rule-input.json"))
            .arg("--config")
            .arg(&config_path)
            .output()
            .expect("plugin run")
    };
    let out = run(r#"{"points": 10}"#);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["plugin"]["name"], "double-points");
    assert_eq!(report["function"], "evaluate");
    assert_eq!(report["output"]["Ok"][0]["points"], 10, "{report:#}");
    assert!(report["usage"]["fuel_used"].as_u64().unwrap_or(0) > 0);
    assert!(report["usage"]["memory_peak_bytes"].as_u64().unwrap_or(0) > 0);
    // The SDK's arena held what the call allocated.
    assert_eq!(
        report["usage"]["memory_grows"].as_u64(),
        Some(0),
        "{report}"
    );
    assert_eq!(report["limits"]["fuel_max"], 11_000_000);
    assert!(report["failure"].is_null());

    // A config the scaffolded plugin refuses: reported, exit code 1.
    let out = run(r#"{"points": 0}"#);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["failure"]["kind"], "bad-config", "{report:#}");
    std::fs::remove_dir_all(&dir).ok();
}
