//! Hostile test plugin `hostile-loop`: Never returns: spins until the host's fuel or epoch deadline stops it.
//!
//! It exists for the host's sandbox tests (the host must contain it: skip the
//! award, record the failure, keep working). Do not use it as an example.
//!
//! Build: `cargo build --release --target wasm32-unknown-unknown -p hostile-loop`.

use loyalty_sdk::{Award, PluginMetadata, PointRule, PointRuleInput};
use std::hint::black_box;

/// The hostile point rule.
pub struct Hostile;

impl PointRule for Hostile {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "hostile-loop".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Sandbox test: Never returns: spins until the host's fuel or epoch deadline stops it.".into(),
            config_schema: String::new(),
            config_example: "{}".into(),
        }
    }

    fn validate_config(_config: &str) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(input: PointRuleInput) -> Result<Vec<Award>, String> {
        // `black_box` keeps the optimizer from reasoning the loop away.
        let mut counter = input.event.occurred_at_ms;
        loop {
            counter = black_box(counter.wrapping_add(1));
        }
    }
}

loyalty_sdk::export_plugin!(Hostile: point_rule);
