//! Plugin host: the sandbox that runs tenants' plugins (WebAssembly components
//! of `loyalty:plugin@1.0.0`) with wasmtime.
//!
//! # Lifecycle
//!
//! 1. [`PluginHost::new`] starts one [`wasmtime::Engine`] for the process
//!    (Cranelift, fuel, epoch interruption driven by a ticker thread, pooling
//!    allocator with copy-on-write memory images).
//! 2. [`PluginHost::load`] checks a component (size, imports, world), compiles
//!    it once per SHA-256 digest, links it (`InstancePre`) and reads its
//!    `metadata()`. The [`LoadedPlugin`] is cheap to clone; keep one per plugin
//!    version.
//! 3. Each call ([`PluginHost::validate_config`],
//!    [`PluginHost::evaluate_point_rule`], [`PluginHost::quote_reward`],
//!    [`PluginHost::evaluate_referral`]) takes the SDK's plain types, runs on a
//!    fresh instance in a fresh `Store` and returns an [`Outcome`] (the
//!    plugin's answer, including its own errors, plus [`Usage`]) or a
//!    [`Failure`] (a [`FailureKind`] plus the usage until it stopped).
//!
//! # Limits
//!
//! Every [`Limits`] field maps to one mechanism:
//!
//! | limit | mechanism |
//! | --- | --- |
//! | `fuel_max` | `Config::consume_fuel`, `Store::set_fuel` per call -> `OutOfFuel` |
//! | `deadline_ms`, `epoch_tick_ms` | `Config::epoch_interruption`, a ticker thread calling `Engine::increment_epoch`, `Store::set_epoch_deadline` -> `Deadline` |
//! | `memory_bytes_max` | a `ResourceLimiter` on the store (all memories together) and the pooling allocator's `max_memory_size` -> `OutOfMemory` |
//! | `stack_bytes_max` | `Config::max_wasm_stack` -> `Trap("stack overflow")` |
//! | `input_bytes_max`, `config_bytes_max` | JSON size of the SDK input, before the call -> `InputTooLarge` |
//! | `output_bytes_max` | JSON size of the SDK output, after the call -> `InvalidOutput` |
//! | `component_bytes_max` | checked by `load` -> `LoadError::TooLarge` |
//! | `concurrent_calls_max` | pooling allocator slots; further calls wait for a slot |
//! | `memory_keep_resident_bytes` | `PoolingAllocationConfig::linear_memory_keep_resident` and `table_keep_resident`, with `pagemap_scan(Auto)`: reset in place after a call instead of `madvise` |
//!
//! # Architecture invariants
//!
//! - Nothing survives a call: no instance or global is reused, and a memory
//!   slot is reset to the module's image before its next use (in place up to
//!   `memory_keep_resident_bytes`, by `madvise` past it), so nothing leaks
//!   between events or tenants (`hostile-remember` checks it).
//! - The linker defines nothing: a plugin has no way to reach the host, the
//!   clock, the network or randomness. A component that imports anything
//!   outside `loyalty:plugin/*` is refused at load.
//! - The WIT bindings live in one private module (`bindings`); the public API
//!   speaks only `loyalty_sdk` types.
//!
//! # Authoring
//!
//! [`scaffold`], [`build`] and [`run`] back the `loyalty plugin` commands: a new
//! plugin crate, a component built from it, and a local run that reports usage.

mod author;
mod bindings;
mod call;
mod host;
mod limits;

use serde::{Deserialize, Serialize};

pub use author::{AuthorError, Report, build, build_in, encode_component, run, scaffold};
pub use call::{Failure, FailureKind, Outcome, Usage};
pub use host::{HostError, LoadError, LoadedPlugin, PluginHost};
pub use limits::Limits;

/// The three plugin worlds of `loyalty:plugin@1.0.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// World `point-rule`: event -> awards.
    PointRule,
    /// World `reward-type`: redemption request -> quote or rejection.
    RewardType,
    /// World `referral-scheme`: referee's event -> awards for both members.
    ReferralScheme,
}

impl PluginKind {
    /// Every kind.
    pub const ALL: [Self; 3] = [Self::PointRule, Self::RewardType, Self::ReferralScheme];

    /// The WIT world's name, e.g. `"point-rule"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PointRule => "point-rule",
            Self::RewardType => "reward-type",
            Self::ReferralScheme => "referral-scheme",
        }
    }

    /// The name of the instance the world exports, which identifies it.
    pub(crate) fn api_export(self) -> &'static str {
        match self {
            Self::PointRule => "loyalty:plugin/point-rule-api@1.0.0",
            Self::RewardType => "loyalty:plugin/reward-type-api@1.0.0",
            Self::ReferralScheme => "loyalty:plugin/referral-scheme-api@1.0.0",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PluginKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown plugin kind `{s}`: use point-rule, reward-type or referral-scheme")
            })
    }
}
