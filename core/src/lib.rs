//! # loyalty-core
//!
//! The server of a white-label loyalty platform: one process serves many brands (tenants),
//! each with its own members, keys and (in later modules) points ledger, tiers, rewards and
//! sandboxed plugins.
//!
//! ## Map
//! - Domains, each split into plain rules (`mod.rs`), queries (`repo.rs`) and operations with
//!   permission checks (`service.rs`): [`tenants`], [`auth`] (API keys), [`members`],
//!   [`ledger`] (points), [`plugins`] (the registry; the sandbox is `loyalty-plugin-host`).
//! - Shared plain rules: [`validate`], [`pagination`], [`idempotency`], [`ids`].
//! - Edges: [`graphql`] (the only user of async-graphql), [`http`] (axum), [`db`] (sea-orm),
//!   [`config`] (the only reader of the environment), [`cli`].
//!
//! See ARCHITECTURE.md at the repository root for the invariants.

pub mod auth;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod codes;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod jobs;
pub mod ledger;
pub mod members;
pub mod pagination;
pub mod plugins;
pub mod referrals;
pub mod rewards;
pub mod templates;
pub mod tenants;
pub mod tiers;
pub mod validate;

use std::sync::Arc;

/// What every request handler and job needs: the database and the settings.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: db::Db,
    pub settings: Arc<config::Settings>,
    /// SHA-256 of the platform key (from config, or generated and stored on first start).
    pub platform_key_hash: Arc<str>,
    /// The plugin sandbox and the loaded plugin versions.
    pub plugins: plugins::runtime::PluginRuntime,
}

impl AppState {
    /// Connects, applies migrations and makes sure a platform key exists. Returns the key
    /// when it was generated just now, so the caller can print it once.
    pub async fn start(settings: config::Settings) -> anyhow::Result<(Self, Option<String>)> {
        Self::start_with_clock(settings, clock::Clock::system()).await
    }

    /// [`start`](Self::start) with another clock (tests drive a manual one).
    pub async fn start_with_clock(
        settings: config::Settings,
        clock: clock::Clock,
    ) -> anyhow::Result<(Self, Option<String>)> {
        settings.validate()?;
        let db = db::Db::connect(&settings.database)
            .await?
            .with_clock(clock)
            .with_caches(&settings.cache);
        db.migrate().await?;
        let (hash, generated) = auth::service::platform_key_hash(&db, &settings.auth).await?;
        let plugins = plugins::runtime::PluginRuntime::shared(&settings.plugins)?;
        let bundled = plugins::service::register_bundled(&db, &plugins).await?;
        tracing::debug!(bundled, "first-party plugins registered");
        Ok((
            Self {
                db,
                settings: Arc::new(settings),
                platform_key_hash: hash.into(),
                plugins,
            },
            generated,
        ))
    }
}
