//! The base-rate point rule as an Extism plugin, for the host's benchmark.
//!
//! It calls base-rate's own code, so the comparison measures the ABI and the
//! runtime, not the rule. Input: a `PointRuleInput` as JSON; output: the
//! `Result<Vec<Award>, String>` as JSON.
//!
//! Build: `cargo build --release --target wasm32-unknown-unknown -p extism-base-rate`.

use extism_pdk::{FnResult, Json, plugin_fn};
use loyalty_sdk::{Award, PointRule, PointRuleInput};

/// Evaluates base-rate.
#[plugin_fn]
pub fn evaluate(Json(input): Json<PointRuleInput>) -> FnResult<Json<Result<Vec<Award>, String>>> {
    Ok(Json(base_rate::BaseRate::evaluate(input)))
}
