//! Hostile test plugin `hostile-memory`: Allocates and touches 1 MiB chunks without bound until the host's memory limit stops it.
//!
//! It exists for the host's sandbox tests (the host must contain it: skip the
//! award, record the failure, keep working). Do not use it as an example.
//!
//! Build: `cargo build --release --target wasm32-unknown-unknown -p hostile-memory`.

use loyalty_sdk::{Award, PluginMetadata, PointRule, PointRuleInput};
use std::hint::black_box;

/// The hostile point rule.
pub struct Hostile;

impl PointRule for Hostile {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "hostile-memory".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Sandbox test: Allocates and touches 1 MiB chunks without bound until the host's memory limit stops it.".into(),
            config_schema: String::new(),
            config_example: "{}".into(),
        }
    }

    fn validate_config(_config: &str) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(input: PointRuleInput) -> Result<Vec<Award>, String> {
        const CHUNK_BYTES: usize = 1 << 20;
        let fill = u8::try_from(input.event.id.len() % 251).unwrap_or(1);
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            // Touch every page so the memory is really committed.
            let chunk = black_box(vec![fill; CHUNK_BYTES]);
            chunks.push(chunk);
            black_box(&chunks);
        }
    }
}

loyalty_sdk::export_plugin!(Hostile: point_rule);
