//! Loyalty plugin SDK: write point rules, reward types and referral schemes in
//! plain Rust and ship them as sandboxed WebAssembly components.
//!
//! # How a plugin works
//!
//! A plugin is a pure function. The host sends one input record (an event, a
//! member snapshot, the plugin's JSON config) and gets a list of operations
//! back. Plugins import nothing: no WASI, no clock, no randomness, no network.
//! "Now" is the event's time, so a replayed event gives the same result. The host
//! makes a fresh instance for every call and limits fuel, memory, time and the
//! size of the input and the output.
//!
//! Because an instance lives for one call, the SDK's default feature `arena`
//! makes the plugin's heap a bump allocator over a 256 KiB static arena, never
//! freed, with Rust's own allocator past it: a call that fits never grows the
//! linear memory, which saves the host a change of page protections per call.
//! A plugin with its own `#[global_allocator]` turns the feature off
//! (`default-features = false`).
//!
//! There are three kinds, one WIT world each in `loyalty:plugin@1.0.0`
//! (`sdk/wit/v1`), and one trait each here:
//!
//! | trait | WIT world | call |
//! | --- | --- | --- |
//! | [`PointRule`] | `point-rule` | event -> awards |
//! | [`RewardType`] | `reward-type` | redemption request -> quote or rejection |
//! | [`ReferralScheme`] | `referral-scheme` | referee's event -> awards for both members |
//!
//! Every kind also has `metadata()` and `validate_config(config)`: the host
//! calls the latter when a tenant binds the plugin and shows its error message
//! to the admin.
//!
//! # A complete point rule
//!
//! ```
//! use loyalty_sdk::{Award, EventKind, PluginMetadata, PointRule, PointRuleInput};
//! use serde::Deserialize;
//!
//! /// Awards a fixed bonus for every purchase line in one category.
//! pub struct CategoryBonus;
//!
//! #[derive(Deserialize)]
//! struct Config {
//!     category: String,
//!     points: i64,
//! }
//!
//! impl PointRule for CategoryBonus {
//!     fn metadata() -> PluginMetadata {
//!         PluginMetadata {
//!             name: "category-bonus".into(),
//!             version: "1.0.0".into(),
//!             description: "A fixed bonus for every line in one category.".into(),
//!             config_schema: r#"{"type":"object","required":["category","points"]}"#.into(),
//!             config_example: r#"{"category":"shoes","points":50}"#.into(),
//!         }
//!     }
//!
//!     fn validate_config(config: &str) -> Result<(), String> {
//!         let config: Config = loyalty_sdk::parse_config(config)?;
//!         if config.points <= 0 {
//!             return Err("points must be positive".into());
//!         }
//!         Ok(())
//!     }
//!
//!     fn evaluate(input: PointRuleInput) -> Result<Vec<Award>, String> {
//!         let config: Config = loyalty_sdk::parse_config(&input.config)?;
//!         let EventKind::Purchase(purchase) = input.event.kind else {
//!             return Ok(Vec::new());
//!         };
//!         Ok(purchase
//!             .lines
//!             .iter()
//!             .filter(|line| line.category == config.category)
//!             .map(|line| Award::new(config.points, "category-bonus").for_line(line.line_index))
//!             .collect())
//!     }
//! }
//!
//! // Generates the component exports when built for wasm32; on other targets it
//! // only checks that `CategoryBonus` implements `PointRule`.
//! loyalty_sdk::export_plugin!(CategoryBonus: point_rule);
//!
//! // A unit test, run natively with `cargo test`:
//! use loyalty_sdk::testing::{self, member, purchase, RunError};
//!
//! let input = PointRuleInput {
//!     event: purchase().line("S-1", "shoes", 1, 8_000).line("H-1", "hats", 1, 2_000).build(),
//!     member: member(),
//!     config: r#"{"category":"shoes","points":50}"#.into(),
//! };
//! let awards = testing::run_point_rule::<CategoryBonus>(input.clone())?;
//! assert_eq!(awards, vec![Award::new(50, "category-bonus").for_line(0)]);
//!
//! // Like the host, the runner refuses a bad config before evaluating.
//! let bad = PointRuleInput { config: r#"{"category":"shoes","points":0}"#.into(), ..input };
//! assert_eq!(
//!     testing::run_point_rule::<CategoryBonus>(bad),
//!     Err(RunError::InvalidConfig("points must be positive".into())),
//! );
//! testing::check_metadata(&CategoryBonus::metadata(), CategoryBonus::validate_config)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Building the component
//!
//! A plugin crate is a `cdylib` (the component) and an `rlib` (for its tests):
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib", "rlib"]
//!
//! [dependencies]
//! loyalty-sdk = { path = "../../sdk" }
//! ```
//!
//! ```text
//! cargo build --release --target wasm32-unknown-unknown -p my-plugin
//! ```
//!
//! turns it into a core module carrying its world in a custom section; encoding
//! it with the `wit-component` crate (`ComponentEncoder`) gives the component the
//! host accepts. Keep the component small (the host's limit is 256 kB): prefer
//! `opt-level = "s"`, `lto = true` and `panic = "abort"` for release builds.
//!
//! # Stability
//!
//! `loyalty:plugin@1.0.0` is frozen once released; a new version goes beside it
//! in `sdk/wit/`. The types here mirror the WIT records field for field.

#![warn(missing_docs)]

mod point_rule;
pub mod referral;
mod referral_scheme;
mod reward_type;
pub mod testing;
mod types;

#[cfg(target_arch = "wasm32")]
mod glue;

#[cfg(all(target_arch = "wasm32", feature = "arena"))]
mod arena;

pub use point_rule::{PointRule, PointRuleInput};
pub use referral_scheme::{ReferralAwards, ReferralInput, ReferralScheme};
pub use reward_type::{
    Cart, CustomPerk, Effect, PercentDiscount, RedemptionQuote, RedemptionRequest, Rejection,
    RewardDefinition, RewardInput, RewardType,
};
pub use types::{
    Award, Balances, Birthday, CalendarDate, CustomEvent, Enrollment, EventCounts, EventKind,
    Expiry, MemberEvent, MemberSnapshot, Money, PluginMetadata, Purchase, PurchaseLine,
    PurchaseReturn, Tier,
};

/// Parses a JSON config into `T`, with an error message fit for an admin.
///
/// Use it in both `validate_config` and `evaluate`; the host only ever passes a
/// config that `validate_config` accepted.
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, String> {
    serde_json::from_str(config).map_err(|e| format!("invalid config: {e}"))
}

/// Exports a plugin: `export_plugin!(MyType: kind)`, where `kind` is
/// `point_rule`, `reward_type` or `referral_scheme` and `MyType` implements the
/// matching trait ([`PointRule`], [`RewardType`], [`ReferralScheme`]).
///
/// Use it once per crate, at the top level. On `wasm32` it generates the
/// component's exports (`loyalty:plugin/point-rule-api@1.0.0#evaluate`, ...) and
/// the custom section describing the world. On other targets it only checks the
/// trait bound, so the same crate builds and tests natively.
///
/// ```
/// # use loyalty_sdk::{Award, PluginMetadata, PointRule, PointRuleInput};
/// pub struct Nothing;
///
/// impl PointRule for Nothing {
///     fn metadata() -> PluginMetadata {
///         PluginMetadata {
///             name: "nothing".into(),
///             version: "0.1.0".into(),
///             description: "Never awards anything.".into(),
///             config_schema: String::new(),
///             config_example: "{}".into(),
///         }
///     }
///     fn validate_config(_config: &str) -> Result<(), String> {
///         Ok(())
///     }
///     fn evaluate(_input: PointRuleInput) -> Result<Vec<Award>, String> {
///         Ok(Vec::new())
///     }
/// }
///
/// loyalty_sdk::export_plugin!(Nothing: point_rule);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty : point_rule) => {
        $crate::__export_plugin_impl!($plugin, $crate::PointRule, PointRuleAdapter, point_rule);
    };
    ($plugin:ty : reward_type) => {
        $crate::__export_plugin_impl!($plugin, $crate::RewardType, RewardTypeAdapter, reward_type);
    };
    ($plugin:ty : referral_scheme) => {
        $crate::__export_plugin_impl!(
            $plugin,
            $crate::ReferralScheme,
            ReferralSchemeAdapter,
            referral_scheme
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin_impl {
    ($plugin:ty, $bound:path, $adapter:ident, $world:ident) => {
        // Checked on every target, so a native `cargo test` reports a missing impl.
        const _: () = {
            fn __loyalty_sdk_assert_impl<T: $bound>() {}
            let _ = __loyalty_sdk_assert_impl::<$plugin>;
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            // wit-bindgen's export macro takes an identifier, not a type.
            type __LoyaltySdkGuest = $crate::__private::$adapter<$plugin>;
            $crate::__private::$world::export!(
                __LoyaltySdkGuest with_types_in $crate::__private::$world
            );
        };
    };
}

/// Implementation details of [`export_plugin!`]; not a stable API.
#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
pub mod __private {
    pub use crate::glue::{
        PointRuleAdapter, ReferralSchemeAdapter, RewardTypeAdapter, point_rule, referral_scheme,
        reward_type,
    };
    pub use wit_bindgen;
}
