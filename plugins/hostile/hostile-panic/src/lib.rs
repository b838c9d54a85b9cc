//! Hostile test plugin `hostile-panic`: Panics on every event; on wasm32 a panic is a trap.
//!
//! It exists for the host's sandbox tests (the host must contain it: skip the
//! award, record the failure, keep working). Do not use it as an example.
//!
//! Build: `cargo build --release --target wasm32-unknown-unknown -p hostile-panic`.

use loyalty_sdk::{Award, PluginMetadata, PointRule, PointRuleInput};

/// The hostile point rule.
pub struct Hostile;

impl PointRule for Hostile {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "hostile-panic".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Sandbox test: Panics on every event; on wasm32 a panic is a trap.".into(),
            config_schema: String::new(),
            config_example: "{}".into(),
        }
    }

    fn validate_config(config: &str) -> Result<(), String> {
        // Lets the registry's tests see a plugin that traps while checking its config.
        if config.contains("panic-in-validate") {
            panic!("hostile-panic: refusing to check config {config}");
        }
        Ok(())
    }

    fn evaluate(input: PointRuleInput) -> Result<Vec<Award>, String> {
        panic!("hostile-panic: refusing event {}", input.event.id);
    }
}

loyalty_sdk::export_plugin!(Hostile: point_rule);
