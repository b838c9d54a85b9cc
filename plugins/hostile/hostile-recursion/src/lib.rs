//! Hostile test plugin `hostile-recursion`: Recurses to a depth taken from the config (default: unbounded) until the host's stack limit stops it.
//!
//! It exists for the host's sandbox tests (the host must contain it: skip the
//! award, record the failure, keep working). Do not use it as an example.
//!
//! Build: `cargo build --release --target wasm32-unknown-unknown -p hostile-recursion`.

use loyalty_sdk::{Award, PluginMetadata, PointRule, PointRuleInput};
use std::hint::black_box;

/// The hostile point rule.
pub struct Hostile;

impl PointRule for Hostile {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "hostile-recursion".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Sandbox test: Recurses to a depth taken from the config (default: unbounded) until the host's stack limit stops it.".into(),
            config_schema: String::new(),
            config_example: "{}".into(),
        }
    }

    fn validate_config(_config: &str) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(input: PointRuleInput) -> Result<Vec<Award>, String> {
        // The depth comes from the input, so the compiler cannot bound or remove
        // the recursion. `{"depth": N}`; any other config means "no bound".
        let depth = serde_json::from_str::<serde_json::Value>(&input.config)
            .ok()
            .and_then(|v| v.get("depth").and_then(serde_json::Value::as_u64))
            .unwrap_or(u64::MAX);
        let points = i64::try_from(recurse(depth) % 1_000).unwrap_or(0);
        Ok(vec![Award::new(points, "hostile-recursion")])
    }
}

/// Not a tail call (the result is used after the call) and each frame holds a
/// buffer, so every level really costs stack. This is the recursion with
/// input-controlled depth that the style guide forbids everywhere else.
fn recurse(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    let frame = black_box([depth as u8; 128]);
    recurse(depth - 1)
        .wrapping_add(u64::from(frame[0]))
        .wrapping_add(1)
}

loyalty_sdk::export_plugin!(Hostile: point_rule);
