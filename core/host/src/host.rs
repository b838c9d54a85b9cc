//! The engine, loading plugins, and the calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use loyalty_sdk as sdk;
use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy,
};

use crate::bindings::{self, point_rule_api, referral_scheme_api, reward_type_api};
use crate::call::{
    self, CallState, Failure, FailureKind, Outcome, TABLE_ELEMENTS_MAX, bounded, json_bytes,
};
use crate::{Limits, PluginKind};

/// Core instances in one component; a Rust plugin has one, wit-component may
/// add a few shims.
const CORE_INSTANCES_PER_COMPONENT_MAX: u32 = 8;
/// Linear memories in one component; a Rust plugin has one.
const MEMORIES_PER_COMPONENT_MAX: u32 = 2;
/// Tables in one component.
const TABLES_PER_COMPONENT_MAX: u32 = 4;
/// Compiled components kept by digest; past it an arbitrary one is dropped (the
/// plugins loaded from it keep their own reference).
const COMPONENTS_CACHED_MAX: usize = 1024;
/// Import names a plugin may have. The linker defines none of them today, so in
/// effect a plugin imports nothing; the prefix only makes the error clearer.
const IMPORT_PREFIX_ALLOWED: &str = "loyalty:plugin/";

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The limits are inconsistent.
    #[error("invalid plugin limits: {0}")]
    Limits(String),
    /// wasmtime refused the configuration or the ticker thread did not start.
    #[error("cannot start the plugin engine: {0}")]
    Engine(String),
}

/// Why a component was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// Over `Limits::component_bytes_max`.
    #[error("the component is {bytes} bytes, over the limit of {bytes_max}")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        bytes_max: usize,
    },
    /// Not a valid component (a core module, a corrupt file...).
    #[error("not a valid component: {0}")]
    Invalid(String),
    /// It imports something outside `loyalty:plugin/*` (WASI, a clock...).
    #[error("the component imports `{0}`; plugins may import nothing outside loyalty:plugin/*")]
    ForbiddenImport(String),
    /// It exports none, or more than one, of the plugin worlds' APIs.
    #[error("the component does not export exactly one plugin API: {0}")]
    UnknownWorld(String),
    /// Its exports do not match the world (wrong signatures) or cannot be linked.
    #[error("the component does not fit its world: {0}")]
    Link(String),
    /// `metadata()` failed.
    #[error("metadata() failed: {0}")]
    Metadata(FailureKind),
    /// `metadata()` answered, but with an empty name or version.
    #[error("bad metadata: {0}")]
    BadMetadata(String),
}

/// The sandbox: one wasmtime engine for the process, compiled components cached
/// by digest, a fresh instance per call. Cheap to clone.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<HostInner>,
}

struct HostInner {
    engine: Engine,
    linker: Linker<CallState>,
    limits: Limits,
    components: Mutex<HashMap<String, Component>>,
    gate: Gate,
    ticker: Option<Ticker>,
}

/// Advances the engine's epoch every `epoch_tick_ms` until the host is dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for HostInner {
    fn drop(&mut self) {
        if let Some(ticker) = &mut self.ticker {
            ticker.stop.store(true, Ordering::Relaxed);
            if let Some(thread) = ticker.thread.take() {
                // The thread only sleeps and ticks; it cannot panic.
                let _ = thread.join();
            }
        }
    }
}

/// Bounds the calls in flight to the pooling allocator's slots, so a call waits
/// for a slot instead of failing. Each call is bounded by its deadline, so the
/// wait is too.
struct Gate {
    free: Mutex<u32>,
    freed: Condvar,
}

struct GateGuard<'a>(&'a Gate);

impl Gate {
    fn enter(&self) -> GateGuard<'_> {
        let mut free = lock(&self.free);
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        GateGuard(self)
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        *lock(&self.0.free) += 1;
        self.0.freed.notify_one();
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A plugin version ready to call: compiled, linked, its metadata read. Cheap to
/// clone.
#[derive(Clone)]
pub struct LoadedPlugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    kind: PluginKind,
    digest: String,
    metadata: sdk::PluginMetadata,
    pre: InstancePre<CallState>,
    api: Api,
}

/// Export indices of the plugin's API, looked up once at load.
enum Api {
    PointRule(point_rule_api::GuestIndices),
    RewardType(reward_type_api::GuestIndices),
    ReferralScheme(referral_scheme_api::GuestIndices),
}

impl LoadedPlugin {
    /// Which world the component implements.
    pub fn kind(&self) -> PluginKind {
        self.inner.kind
    }

    /// SHA-256 of the component's bytes, lowercase hex.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// What `metadata()` returned at load.
    pub fn metadata(&self) -> &sdk::PluginMetadata {
        &self.inner.metadata
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("kind", &self.inner.kind)
            .field("digest", &self.inner.digest)
            .field("name", &self.inner.metadata.name)
            .field("version", &self.inner.metadata.version)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// The engine configuration: how each limit maps to wasmtime.
fn engine_config(limits: &Limits) -> Config {
    let slots = limits.concurrent_calls_max;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_COMPONENT_MAX))
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT_MAX)
        .total_memories(slots.saturating_mul(MEMORIES_PER_COMPONENT_MAX))
        .max_memories_per_component(MEMORIES_PER_COMPONENT_MAX)
        .total_tables(slots.saturating_mul(TABLES_PER_COMPONENT_MAX))
        .max_tables_per_component(TABLES_PER_COMPONENT_MAX)
        .table_elements(TABLE_ELEMENTS_MAX)
        // A memory can never grow past its slot, whatever the limiter says.
        .max_memory_size(limits.memory_bytes_max)
        // Reset in place what a call dirtied (only those pages where the kernel can
        // say which), rather than `madvise` and a TLB shootdown per call.
        .linear_memory_keep_resident(limits.memory_keep_resident())
        .table_keep_resident(limits.memory_keep_resident())
        .pagemap_scan(Enabled::Auto);

    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(limits.stack_bytes_max)
        // Instantiation maps the memory image copy-on-write instead of copying it.
        .memory_init_cow(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

impl PluginHost {
    /// Starts the engine and its epoch ticker thread.
    pub fn new(limits: Limits) -> Result<Self, HostError> {
        limits.check().map_err(HostError::Limits)?;
        let engine = Engine::new(&engine_config(&limits))
            .map_err(|e| HostError::Engine(format!("{e:#}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let tick = Duration::from_millis(limits.epoch_tick_ms);
        let thread = {
            let engine = engine.clone();
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("plugin-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| HostError::Engine(format!("cannot start the epoch ticker: {e}")))?
        };
        Ok(Self {
            inner: Arc::new(HostInner {
                linker: Linker::new(&engine),
                engine,
                components: Mutex::new(HashMap::new()),
                gate: Gate {
                    free: Mutex::new(limits.concurrent_calls_max),
                    freed: Condvar::new(),
                },
                limits,
                ticker: Some(Ticker {
                    stop,
                    thread: Some(thread),
                }),
            }),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Checks, compiles (once per digest), links a component and reads its
    /// metadata.
    pub fn load(&self, bytes: &[u8]) -> Result<LoadedPlugin, LoadError> {
        let limits = &self.inner.limits;
        if bytes.len() > limits.component_bytes_max {
            return Err(LoadError::TooLarge {
                bytes: bytes.len(),
                bytes_max: limits.component_bytes_max,
            });
        }
        let digest = hex::encode(Sha256::digest(bytes));
        let component = self.compile(&digest, bytes)?;
        check_imports(&self.inner.engine, &component)?;
        let kind = detect_kind(&self.inner.engine, &component)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(bounded(format!("{e:#}"))))?;
        let link = |e: wasmtime::Error| LoadError::Link(bounded(format!("{e:#}")));
        let api = match kind {
            PluginKind::PointRule => {
                Api::PointRule(point_rule_api::GuestIndices::new(&pre).map_err(link)?)
            }
            PluginKind::RewardType => {
                Api::RewardType(reward_type_api::GuestIndices::new(&pre).map_err(link)?)
            }
            PluginKind::ReferralScheme => {
                Api::ReferralScheme(referral_scheme_api::GuestIndices::new(&pre).map_err(link)?)
            }
        };
        let metadata = self.read_metadata(&pre, &api)?;
        Ok(LoadedPlugin {
            inner: Arc::new(PluginInner {
                kind,
                digest,
                metadata,
                pre,
                api,
            }),
        })
    }

    /// The compiled component for `digest`, compiling it on a miss.
    fn compile(&self, digest: &str, bytes: &[u8]) -> Result<Component, LoadError> {
        if let Some(component) = lock(&self.inner.components).get(digest) {
            return Ok(component.clone());
        }
        // Compiled outside the lock: two loads of one new digest may both
        // compile, which costs time but not correctness.
        let component = Component::new(&self.inner.engine, bytes)
            .map_err(|e| LoadError::Invalid(bounded(format!("{e:#}"))))?;
        let mut components = lock(&self.inner.components);
        if components.len() >= COMPONENTS_CACHED_MAX
            && let Some(evicted) = components.keys().next().cloned()
        {
            components.remove(&evicted);
        }
        components.insert(digest.to_owned(), component.clone());
        Ok(component)
    }

    /// Calls `metadata()` on a fresh instance.
    fn read_metadata(
        &self,
        pre: &InstancePre<CallState>,
        api: &Api,
    ) -> Result<sdk::PluginMetadata, LoadError> {
        let _slot = self.inner.gate.enter();
        let (result, _usage) = call::run(&self.inner.limits, pre, |store, instance| match api {
            Api::PointRule(ix) => ix.load(&mut *store, instance)?.call_metadata(&mut *store),
            Api::RewardType(ix) => ix.load(&mut *store, instance)?.call_metadata(&mut *store),
            Api::ReferralScheme(ix) => ix.load(&mut *store, instance)?.call_metadata(&mut *store),
        });
        let metadata: sdk::PluginMetadata = result.map_err(LoadError::Metadata)?.into();
        call::check_output(&metadata, &self.inner.limits).map_err(LoadError::Metadata)?;
        if metadata.name.trim().is_empty() || metadata.version.trim().is_empty() {
            return Err(LoadError::BadMetadata(
                "metadata.name and metadata.version must not be empty".into(),
            ));
        }
        Ok(metadata)
    }

    /// Runs one call of `plugin` under the limits, after the size checks.
    fn call<W, T: Serialize>(
        &self,
        plugin: &LoadedPlugin,
        f: impl FnOnce(
            &mut wasmtime::Store<CallState>,
            &wasmtime::component::Instance,
            &Api,
        ) -> wasmtime::Result<W>,
        convert: impl FnOnce(W) -> T,
    ) -> Result<Outcome<T>, Failure> {
        if !Engine::same(plugin.inner.pre.engine(), &self.inner.engine) {
            return Err(Failure::before_call(FailureKind::Trap(
                "the plugin was loaded by another PluginHost".into(),
            )));
        }
        let _slot = self.inner.gate.enter();
        let (result, usage) =
            call::run(&self.inner.limits, &plugin.inner.pre, |store, instance| {
                f(store, instance, &plugin.inner.api)
            });
        let output = convert(result.map_err(|kind| Failure { kind, usage })?);
        call::check_output(&output, &self.inner.limits).map_err(|kind| Failure { kind, usage })?;
        Ok(Outcome { output, usage })
    }

    /// Refuses an input or config over its limit before any call.
    fn check_input<I: Serialize>(&self, input: &I, config: &str) -> Result<(), Failure> {
        let limits = &self.inner.limits;
        let too_large = |what, bytes, bytes_max| {
            Failure::before_call(FailureKind::InputTooLarge {
                what,
                bytes,
                bytes_max,
            })
        };
        if config.len() > limits.config_bytes_max {
            return Err(too_large("config", config.len(), limits.config_bytes_max));
        }
        let bytes = json_bytes(input);
        if bytes > limits.input_bytes_max {
            return Err(too_large("input", bytes, limits.input_bytes_max));
        }
        Ok(())
    }

    /// Asks the plugin whether it accepts `config_json`; a refusal is
    /// [`FailureKind::BadConfig`] with the plugin's message.
    pub fn validate_config(
        &self,
        plugin: &LoadedPlugin,
        config_json: &str,
    ) -> Result<Outcome<()>, Failure> {
        self.check_input(&config_json, config_json)?;
        let outcome = self.call(
            plugin,
            |store, instance, api| match api {
                Api::PointRule(ix) => ix
                    .load(&mut *store, instance)?
                    .call_validate_config(&mut *store, config_json),
                Api::RewardType(ix) => ix
                    .load(&mut *store, instance)?
                    .call_validate_config(&mut *store, config_json),
                Api::ReferralScheme(ix) => ix
                    .load(&mut *store, instance)?
                    .call_validate_config(&mut *store, config_json),
            },
            |result| result,
        )?;
        match outcome.output {
            Ok(()) => Ok(Outcome {
                output: (),
                usage: outcome.usage,
            }),
            Err(message) => Err(Failure {
                kind: FailureKind::BadConfig(bounded(message)),
                usage: outcome.usage,
            }),
        }
    }

    /// Awards of a point rule for one event; `Err` is the plugin's own error.
    pub fn evaluate_point_rule(
        &self,
        plugin: &LoadedPlugin,
        input: &sdk::PointRuleInput,
    ) -> Result<Outcome<Result<Vec<sdk::Award>, String>>, Failure> {
        expect_kind(plugin, PluginKind::PointRule)?;
        self.check_input(input, &input.config)?;
        let input = point_rule_api::PointRuleInput::from(input);
        self.call(
            plugin,
            |store, instance, api| match api {
                Api::PointRule(ix) => ix
                    .load(&mut *store, instance)?
                    .call_evaluate(&mut *store, &input),
                _ => Err(wasmtime::format_err!("not a point rule")),
            },
            |result| result.map(bindings::awards),
        )
    }

    /// A reward type's quote for a redemption; `Err` is the plugin's rejection.
    pub fn quote_reward(
        &self,
        plugin: &LoadedPlugin,
        input: &sdk::RewardInput,
    ) -> Result<Outcome<Result<sdk::RedemptionQuote, sdk::Rejection>>, Failure> {
        expect_kind(plugin, PluginKind::RewardType)?;
        self.check_input(input, &input.config)?;
        let input = reward_type_api::RewardInput::from(input);
        self.call(
            plugin,
            |store, instance, api| match api {
                Api::RewardType(ix) => ix
                    .load(&mut *store, instance)?
                    .call_quote(&mut *store, &input),
                _ => Err(wasmtime::format_err!("not a reward type")),
            },
            |result| result.map(Into::into).map_err(Into::into),
        )
    }

    /// A referral scheme's awards for both members (`None`: the event does not
    /// qualify); `Err` is the plugin's own error.
    pub fn evaluate_referral(
        &self,
        plugin: &LoadedPlugin,
        input: &sdk::ReferralInput,
    ) -> Result<Outcome<Result<Option<sdk::ReferralAwards>, String>>, Failure> {
        expect_kind(plugin, PluginKind::ReferralScheme)?;
        self.check_input(input, &input.config)?;
        let input = referral_scheme_api::ReferralInput::from(input);
        self.call(
            plugin,
            |store, instance, api| match api {
                Api::ReferralScheme(ix) => ix
                    .load(&mut *store, instance)?
                    .call_evaluate(&mut *store, &input),
                _ => Err(wasmtime::format_err!("not a referral scheme")),
            },
            |result| result.map(|awards| awards.map(Into::into)),
        )
    }

    /// Instantiates `plugin` without calling it; for benchmarks.
    #[doc(hidden)]
    pub fn instantiate_only(&self, plugin: &LoadedPlugin) -> Result<(), Failure> {
        let _slot = self.inner.gate.enter();
        let (result, usage) = call::run(&self.inner.limits, &plugin.inner.pre, |_, _| Ok(()));
        result.map_err(|kind| Failure { kind, usage })
    }
}

fn expect_kind(plugin: &LoadedPlugin, expected: PluginKind) -> Result<(), Failure> {
    if plugin.kind() == expected {
        return Ok(());
    }
    Err(Failure::before_call(FailureKind::WrongKind {
        expected,
        actual: plugin.kind(),
    }))
}

/// Refuses any import outside `loyalty:plugin/*`.
fn check_imports(engine: &Engine, component: &Component) -> Result<(), LoadError> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        if !name.starts_with(IMPORT_PREFIX_ALLOWED) {
            return Err(LoadError::ForbiddenImport(bounded(name.to_owned())));
        }
    }
    Ok(())
}

/// The world, from the one `loyalty:plugin/*-api@1.0.0` instance exported.
fn detect_kind(engine: &Engine, component: &Component) -> Result<PluginKind, LoadError> {
    let ty = component.component_type();
    let mut found = Vec::new();
    for (name, _) in ty.exports(engine) {
        if let Some(kind) = PluginKind::ALL.into_iter().find(|k| k.api_export() == name) {
            found.push(kind);
        }
    }
    match found.as_slice() {
        [kind] => Ok(*kind),
        [] => Err(LoadError::UnknownWorld(format!(
            "expected one of {}",
            PluginKind::ALL.map(PluginKind::api_export).join(", ")
        ))),
        _ => Err(LoadError::UnknownWorld(format!(
            "it exports {}",
            found
                .iter()
                .map(|k| k.api_export())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
