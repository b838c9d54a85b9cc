//! Configuration: defaults, then an optional `loyalty.toml`, then `LOYALTY__SECTION__KEY`
//! environment variables.
//!
//! This is the only module that reads the environment. Everything else receives a
//! [`Settings`] value, so tests build one in code and never touch process state.
//! Secrets are wrapped in [`Secret`], whose `Debug` and `Serialize` print `[redacted]`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The whole effective configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub api: ApiSettings,
    pub jobs: JobSettings,
    /// In-process caches of keys, tenants and the pipeline's configuration.
    pub cache: crate::cache::CacheSettings,
    /// Per-call limits of the plugin sandbox (fuel, memory, deadline, sizes).
    pub plugins: loyalty_plugin_host::Limits,
    pub log: LogSettings,
}

/// The background job runner inside the server (ledger unlocks and expiry).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct JobSettings {
    /// Run the jobs inside `loyalty serve` (turn off when a separate worker runs them).
    pub enabled: bool,
    /// Seconds between runs (a full batch runs again at once).
    pub interval_s: u64,
    /// Most lots one job handles per run.
    pub batch_max: u64,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_s: 60,
            batch_max: 500,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// Address the HTTP server binds, `host:port`.
    pub listen: String,
    /// Seconds in-flight requests get to finish after SIGINT/SIGTERM.
    pub shutdown_grace_s: u64,
    /// Seconds one request may take before it is answered with 408.
    pub request_timeout_s: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            shutdown_grace_s: 30,
            request_timeout_s: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `sqlite://path?mode=rwc` (default, a file under `./data/`) or `postgres://...`.
    pub url: Secret,
    /// PostgreSQL: pool size. (SQLite has one writer connection and `sqlite_readers`.)
    pub connections_max: u32,
    /// SQLite: reader connections, each with a thread of its own. Past about two per core
    /// they cost more in thread switches than they add: on 2 cores, balance reads with 4
    /// spent 15-17 % less CPU each than with 16 (BENCHMARKS.md).
    pub sqlite_readers: u32,
    /// Milliseconds to wait for a pooled connection.
    pub acquire_timeout_ms: u64,
    /// Milliseconds SQLite waits on a locked database before failing.
    pub sqlite_busy_timeout_ms: u64,
    /// PostgreSQL: a pooled connection idle at least this many seconds is pinged before it is
    /// handed out (0: every time). A busy connection is not: a ping is a round trip. SQLite's
    /// connections are in-process and never pinged.
    pub ping_idle_s: u64,
    /// Most purchases the writer commits in one transaction (group commit).
    pub write_batch_max: usize,
    /// PostgreSQL: purchase writer tasks (a member always on the same one). SQLite has one.
    pub purchase_writers: usize,
    /// A statement taking at least this many milliseconds is logged at WARN with its SQL
    /// (target `sqlx::query`, without its bound values); 0: never.
    pub slow_statement_ms: u64,
    /// SQLite: a background task copies the write-ahead log into the database file every so
    /// many milliseconds (a PASSIVE checkpoint on a reader connection), so that commits on the
    /// one writer connection never pay for it; 0: the writer checkpoints at commit, every
    /// 1000 pages, as SQLite does by default.
    pub sqlite_checkpoint_ms: u64,
    /// SQLite, with the background checkpoint on: the write-ahead log may grow to this many
    /// pages before the writer checkpoints at commit itself (normally never reached: the
    /// background task keeps it far below).
    pub sqlite_wal_pages_max: u32,
    /// Prepared statements each connection keeps, by their text (sqlx's cache; sqlx's own
    /// default is 100); 0 turns it off (every statement prepared, run and dropped, as a
    /// PostgreSQL pooler in transaction mode needs). A group of purchases sends one of many
    /// padded script texts (`db::batch`); with 100 the writer evicted some and prepared them
    /// again (BENCHMARKS.md, "Statement texts that repeat").
    pub statement_cache_max: usize,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("sqlite://data/loyalty.db?mode=rwc"),
            connections_max: 16,
            sqlite_readers: 4,
            acquire_timeout_ms: 5_000,
            sqlite_busy_timeout_ms: 5_000,
            ping_idle_s: 30,
            write_batch_max: 64,
            purchase_writers: 2,
            slow_statement_ms: 1_000,
            sqlite_checkpoint_ms: 250,
            sqlite_wal_pages_max: 10_000,
            statement_cache_max: 500,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// The agency's key, which manages tenants. Unset: generated on first start, printed once
    /// and stored hashed in the database.
    pub platform_key: Option<Secret>,
}

/// Limits of the GraphQL API. Every one has a number, a key and a test.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiSettings {
    /// Largest `first` a connection accepts.
    pub page_size_max: u32,
    /// Page size when `first` is omitted.
    pub page_size_default: u32,
    /// Deepest selection set a query may have.
    pub depth_max: usize,
    /// Highest complexity (roughly: fields selected, times page sizes) a query may have.
    pub complexity_max: usize,
    /// Largest request body in bytes (413 above it).
    pub body_bytes_max: usize,
    /// Largest `attributes` object of a member, serialized, in bytes.
    pub member_attributes_bytes_max: usize,
    /// Most tags a member may carry.
    pub member_tags_max: usize,
    /// Serve GraphiQL at `GET /graphql` for browsers.
    pub graphiql: bool,
    /// Most plugin versions one tenant may install (bundled ones do not count).
    pub plugin_versions_max: u32,
    /// Most active plugin bindings one tenant may have.
    pub plugin_bindings_max: u32,
    /// Most lines one purchase (or return) may have.
    pub purchase_lines_max: usize,
    /// Largest `properties` object of a custom event, serialized, in bytes.
    pub event_properties_bytes_max: usize,
    /// Most awards one point rule may return for one event; more is invalid output.
    pub plugin_awards_max: usize,
    /// Most units one redemption may ask for.
    pub redemption_quantity_max: u32,
    /// Most rewards one tenant's catalogue may hold.
    pub rewards_max: u32,
    /// Most tiers one ladder may have.
    pub tiers_max: usize,
    /// Most parsed GraphQL documents kept by query text (0: parse every request). A query of a
    /// kept document already answered without errors skips the validation rules that do not
    /// read variables (`http::documents`).
    pub document_cache_entries: usize,
    /// Longest query text, in bytes, whose parsed document is kept.
    pub document_cache_query_bytes_max: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            page_size_max: 100,
            page_size_default: 20,
            depth_max: 12,
            complexity_max: 2_000,
            body_bytes_max: 1024 * 1024,
            member_attributes_bytes_max: 16 * 1024,
            member_tags_max: 50,
            graphiql: true,
            plugin_versions_max: 100,
            plugin_bindings_max: 50,
            purchase_lines_max: 500,
            event_properties_bytes_max: 16 * 1024,
            plugin_awards_max: 100,
            redemption_quantity_max: 100,
            rewards_max: 500,
            tiers_max: 20,
            document_cache_entries: 256,
            document_cache_query_bytes_max: 16 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// A tracing `EnvFilter` directive, e.g. `info,loyalty_core=debug`.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "text".into(),
            filter: "info".into(),
        }
    }
}

/// A string that never shows in `Debug` output, logs or `loyalty config`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// Where [`Settings::load`] looks for the file when no path is given.
pub const DEFAULT_CONFIG_FILE: &str = "loyalty.toml";

impl Settings {
    /// Defaults, then the file (optional unless `path` was given), then the environment.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let defaults = config::Config::try_from(&RawDefaults(Settings::default()))?;
        let (file, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        let built = config::Config::builder()
            .add_source(defaults)
            .add_source(config::File::from(file).required(required))
            .add_source(
                config::Environment::with_prefix("LOYALTY")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?;
        let settings: Settings = built.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Relationships between values that no single field can check.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.api.page_size_default >= 1 && self.api.page_size_default <= self.api.page_size_max,
            "api.page_size_default must be between 1 and api.page_size_max"
        );
        anyhow::ensure!(self.api.depth_max >= 2, "api.depth_max must be at least 2");
        anyhow::ensure!(
            self.api.body_bytes_max >= 1024,
            "api.body_bytes_max must be at least 1024"
        );
        anyhow::ensure!(
            self.api.document_cache_entries <= 100_000,
            "api.document_cache_entries must be at most 100000"
        );
        anyhow::ensure!(
            self.api.document_cache_query_bytes_max <= 1024 * 1024,
            "api.document_cache_query_bytes_max must be at most 1048576"
        );
        anyhow::ensure!(
            (1..=100_000).contains(&self.jobs.batch_max),
            "jobs.batch_max must be between 1 and 100000"
        );
        anyhow::ensure!(
            (1..=10_000_000).contains(&self.cache.entries_max),
            "cache.entries_max must be between 1 and 10000000"
        );
        anyhow::ensure!(
            self.database.connections_max >= 1,
            "database.connections_max must be at least 1"
        );
        anyhow::ensure!(
            (1..=1024).contains(&self.database.sqlite_readers),
            "database.sqlite_readers must be between 1 and 1024"
        );
        anyhow::ensure!(
            (1..=1024).contains(&self.database.write_batch_max),
            "database.write_batch_max must be between 1 and 1024"
        );
        anyhow::ensure!(
            (1..=self.database.connections_max as usize).contains(&self.database.purchase_writers),
            "database.purchase_writers must be between 1 and database.connections_max"
        );
        anyhow::ensure!(
            self.database.slow_statement_ms <= 3_600_000,
            "database.slow_statement_ms must be at most 3600000 (an hour; 0 turns it off)"
        );
        anyhow::ensure!(
            self.database.sqlite_checkpoint_ms <= 60_000,
            "database.sqlite_checkpoint_ms must be at most 60000 (0 turns the background checkpoint off)"
        );
        anyhow::ensure!(
            (1_000..=1_000_000).contains(&self.database.sqlite_wal_pages_max),
            "database.sqlite_wal_pages_max must be between 1000 and 1000000"
        );
        anyhow::ensure!(
            self.database.statement_cache_max <= 10_000,
            "database.statement_cache_max must be at most 10000 (0 turns the cache off)"
        );
        anyhow::ensure!(
            matches!(self.log.format.as_str(), "text" | "json"),
            "log.format must be `text` or `json`"
        );
        self.plugins.check().map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            self.api.plugin_versions_max >= 1 && self.api.plugin_bindings_max >= 1,
            "api.plugin_versions_max and api.plugin_bindings_max must be at least 1"
        );
        anyhow::ensure!(
            self.api.purchase_lines_max >= 1
                && self.api.event_properties_bytes_max >= 2
                && self.api.plugin_awards_max >= 1
                && self.api.redemption_quantity_max >= 1
                && self.api.rewards_max >= 1
                && self.api.tiers_max >= 1,
            "api.purchase_lines_max, api.event_properties_bytes_max, api.plugin_awards_max, \
             api.redemption_quantity_max, api.rewards_max and api.tiers_max must be positive"
        );
        let url = self.database.url.expose();
        anyhow::ensure!(
            url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"),
            "database.url must start with sqlite: or postgres://"
        );
        Ok(())
    }

    /// The configuration as TOML with every secret redacted, for `loyalty config`.
    pub fn redacted_toml(&self) -> anyhow::Result<String> {
        toml_from(self)
    }
}

/// Serializes the defaults with their real values: `Secret`'s redaction must not become a
/// default. Only used to seed the `config` builder.
struct RawDefaults(Settings);

impl Serialize for RawDefaults {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut value = serde_json::to_value(&self.0).map_err(serde::ser::Error::custom)?;
        value["database"]["url"] = serde_json::Value::String(self.0.database.url.expose().into());
        if let Some(obj) = value["auth"].as_object_mut() {
            obj.remove("platform_key");
        }
        value.serialize(s)
    }
}

fn toml_from(settings: &Settings) -> anyhow::Result<String> {
    // `config` has no TOML writer; a small one is enough for two levels of tables.
    let value = serde_json::to_value(settings)?;
    let mut out = String::new();
    if let Some(sections) = value.as_object() {
        for (section, fields) in sections {
            out.push_str(&format!("[{section}]\n"));
            if let Some(fields) = fields.as_object() {
                for (key, v) in fields {
                    if !v.is_null() {
                        out.push_str(&format!("{key} = {v}\n"));
                    }
                }
            }
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let s = Settings::default();
        s.validate().expect("defaults validate");
        assert_eq!(s.server.listen, "127.0.0.1:8080");
        assert!(s.database.url.expose().starts_with("sqlite://data/"));
        assert!(s.auth.platform_key.is_none());
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_printout() {
        let mut s = Settings::default();
        s.auth.platform_key = Some(Secret::new("lp_supersecret"));
        s.database.url = Secret::new("postgres://u:hunter2@db/loyalty");
        let debug = format!("{s:?}");
        let toml = s.redacted_toml().expect("toml");
        for text in [debug, toml] {
            assert!(!text.contains("supersecret"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("[redacted]"), "{text}");
        }
    }

    #[test]
    fn file_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("loyalty-cfg-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("loyalty.toml");
        std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:9999\"\n[api]\npage_size_max = 7\npage_size_default = 5\n")
            .expect("write");
        let s = Settings::load(Some(&file)).expect("load");
        assert_eq!(s.server.listen, "127.0.0.1:9999");
        assert_eq!(s.api.page_size_max, 7);
        assert_eq!(s.api.depth_max, ApiSettings::default().depth_max);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn inconsistent_limits_are_refused() {
        let mut s = Settings::default();
        s.api.page_size_default = 500;
        assert!(s.validate().is_err());
    }

    #[test]
    fn group_commit_limits_are_checked() {
        let refused = |f: fn(&mut DatabaseSettings)| {
            let mut s = Settings::default();
            f(&mut s.database);
            s.validate().expect_err("refused").to_string()
        };
        assert_eq!(Settings::default().database.write_batch_max, 64);
        assert!(refused(|d| d.write_batch_max = 0).contains("database.write_batch_max"));
        assert!(refused(|d| d.write_batch_max = 1025).contains("database.write_batch_max"));
        assert!(refused(|d| d.purchase_writers = 0).contains("database.purchase_writers"));
        assert!(refused(|d| d.purchase_writers = 17).contains("database.purchase_writers"));
        assert_eq!(Settings::default().database.sqlite_readers, 4);
        assert!(refused(|d| d.sqlite_readers = 0).contains("database.sqlite_readers"));
        assert!(refused(|d| d.sqlite_readers = 1025).contains("database.sqlite_readers"));
        assert_eq!(Settings::default().database.slow_statement_ms, 1_000);
        assert!(refused(|d| d.slow_statement_ms = 3_600_001).contains("slow_statement_ms"));
        assert_eq!(Settings::default().database.sqlite_checkpoint_ms, 250);
        assert!(refused(|d| d.sqlite_checkpoint_ms = 60_001).contains("sqlite_checkpoint_ms"));
        assert_eq!(Settings::default().database.sqlite_wal_pages_max, 10_000);
        assert!(refused(|d| d.sqlite_wal_pages_max = 999).contains("sqlite_wal_pages_max"));
        assert!(refused(|d| d.sqlite_wal_pages_max = 1_000_001).contains("sqlite_wal_pages_max"));
        assert_eq!(Settings::default().database.statement_cache_max, 500);
        assert!(refused(|d| d.statement_cache_max = 10_001).contains("statement_cache_max"));
    }

    #[test]
    fn document_cache_limits_are_checked() {
        let refused = |f: fn(&mut ApiSettings)| {
            let mut s = Settings::default();
            f(&mut s.api);
            s.validate().expect_err("refused").to_string()
        };
        let mut off = Settings::default();
        off.api.document_cache_entries = 0;
        off.validate().expect("0 turns the cache off");
        assert!(refused(|a| a.document_cache_entries = 100_001).contains("document_cache_entries"));
        assert!(
            refused(|a| a.document_cache_query_bytes_max = 2 * 1024 * 1024)
                .contains("document_cache_query_bytes_max")
        );
    }
}
