//! The process's plugin sandbox and the versions loaded into it.
//!
//! One [`PluginHost`] per process (one wasmtime engine, its epoch ticker, the pooling
//! allocator). Versions are loaded from the database on first use and kept, keyed by id: a
//! version's code never changes (bundled ones are replaced only by a new binary, which starts a
//! new process). Compiling and calling are blocking work and run on tokio's blocking pool, so a
//! slow plugin never stalls the request workers.

use super::repo;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::ids::PluginVersionId;
use loyalty_plugin_host::{Failure, Limits, LoadError, LoadedPlugin, Outcome, PluginHost};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The sandbox plus the loaded versions. Cheap to clone.
#[derive(Clone)]
pub struct PluginRuntime {
    host: PluginHost,
    loaded: Arc<Mutex<HashMap<PluginVersionId, LoadedPlugin>>>,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

fn blocking_failed(e: tokio::task::JoinError) -> AppError {
    AppError::internal(anyhow::anyhow!("plugin task failed: {e}"))
}

impl PluginRuntime {
    /// The process's sandbox for `limits`, started on first use. One engine per process, as
    /// the design asks, even when a process runs several servers (the end-to-end tests do):
    /// each component is compiled once, not once per server.
    pub fn shared(limits: &Limits) -> anyhow::Result<Self> {
        static SHARED: Mutex<Vec<(Limits, PluginRuntime)>> = Mutex::new(Vec::new());
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, runtime)) = shared.iter().find(|(l, _)| l == limits) {
            return Ok(runtime.clone());
        }
        let runtime = Self::new(limits.clone())?;
        shared.push((limits.clone(), runtime.clone()));
        Ok(runtime)
    }

    /// Starts a sandbox of its own with `limits` (the `[plugins]` settings).
    pub fn new(limits: Limits) -> anyhow::Result<Self> {
        let host = PluginHost::new(limits).map_err(|e| anyhow::anyhow!("plugin host: {e}"))?;
        Ok(Self {
            host,
            loaded: Arc::default(),
        })
    }

    pub fn limits(&self) -> &Limits {
        self.host.limits()
    }

    /// Checks and compiles a component (size, imports, world, metadata).
    pub async fn load_bytes(&self, bytes: Vec<u8>) -> AppResult<Result<LoadedPlugin, LoadError>> {
        let host = self.host.clone();
        tokio::task::spawn_blocking(move || host.load(&bytes))
            .await
            .map_err(blocking_failed)
    }

    /// The loaded version `id`, from the cache or the database.
    pub async fn version(&self, db: &Db, id: PluginVersionId) -> AppResult<LoadedPlugin> {
        if let Some(p) = self.cached(id) {
            return Ok(p);
        }
        let bytes = repo::component(db.reader(), id).await?;
        let plugin = self.load_bytes(bytes).await?.map_err(|e| {
            // Stored components were checked at install; failing now is our fault.
            AppError::internal(anyhow::anyhow!(
                "stored plugin version {id} does not load: {e}"
            ))
        })?;
        self.remember(id, plugin.clone());
        Ok(plugin)
    }

    fn cached(&self, id: PluginVersionId) -> Option<LoadedPlugin> {
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    pub(crate) fn remember(&self, id: PluginVersionId, plugin: LoadedPlugin) {
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, plugin);
    }

    /// Runs an event's point rules, in the order given, in one task on the blocking pool: one
    /// hand-off for the event instead of one per rule. Each call still gets a fresh instance
    /// and its own limits; one rule's failure does not stop the next.
    #[allow(clippy::type_complexity)]
    pub async fn evaluate_point_rules(
        &self,
        calls: Vec<(LoadedPlugin, loyalty_sdk::PointRuleInput)>,
    ) -> AppResult<Vec<Result<Outcome<Result<Vec<loyalty_sdk::Award>, String>>, Failure>>> {
        let host = self.host.clone();
        tokio::task::spawn_blocking(move || {
            calls
                .iter()
                .map(|(plugin, input)| host.evaluate_point_rule(plugin, input))
                .collect()
        })
        .await
        .map_err(blocking_failed)
    }

    /// Asks a reward type for a quote (on the blocking pool).
    pub async fn quote_reward(
        &self,
        plugin: &LoadedPlugin,
        input: loyalty_sdk::RewardInput,
    ) -> AppResult<
        Result<Outcome<Result<loyalty_sdk::RedemptionQuote, loyalty_sdk::Rejection>>, Failure>,
    > {
        let host = self.host.clone();
        let plugin = plugin.clone();
        tokio::task::spawn_blocking(move || host.quote_reward(&plugin, &input))
            .await
            .map_err(blocking_failed)
    }

    /// Runs a referral scheme on a referee's event (on the blocking pool).
    pub async fn evaluate_referral(
        &self,
        plugin: &LoadedPlugin,
        input: loyalty_sdk::ReferralInput,
    ) -> AppResult<Result<Outcome<Result<Option<loyalty_sdk::ReferralAwards>, String>>, Failure>>
    {
        let host = self.host.clone();
        let plugin = plugin.clone();
        tokio::task::spawn_blocking(move || host.evaluate_referral(&plugin, &input))
            .await
            .map_err(blocking_failed)
    }

    /// Asks the plugin whether it accepts `config` (canonical JSON text).
    pub async fn validate_config(
        &self,
        plugin: &LoadedPlugin,
        config: String,
    ) -> AppResult<Result<Outcome<()>, Failure>> {
        let host = self.host.clone();
        let plugin = plugin.clone();
        tokio::task::spawn_blocking(move || host.validate_config(&plugin, &config))
            .await
            .map_err(blocking_failed)
    }
}
