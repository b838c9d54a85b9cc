//! Hostile test plugin `hostile-output`: Returns far more output than the host's 20 kB limit: by default 10 000 awards with 100-byte reason codes (about 1.5 MB).
//!
//! It exists for the host's sandbox tests (the host must contain it: skip the
//! award, record the failure, keep working). Do not use it as an example.
//!
//! Build: `cargo build --release --target wasm32-unknown-unknown -p hostile-output`.

use loyalty_sdk::{Award, PluginMetadata, PointRule, PointRuleInput};

/// The hostile point rule.
pub struct Hostile;

impl PointRule for Hostile {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "hostile-output".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Sandbox test: Returns far more output than the host's 20 kB limit: by default 10 000 awards with 100-byte reason codes (about 1.5 MB).".into(),
            config_schema: String::new(),
            config_example: "{}".into(),
        }
    }

    fn validate_config(_config: &str) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(input: PointRuleInput) -> Result<Vec<Award>, String> {
        // Configurable: `{"awards": N, "reason_len": M}`. The defaults stay well
        // inside the host's 16 MiB memory limit (100 000 awards would hit the
        // memory limit first and test the wrong thing) while the output is
        // still about 75 times the 20 kB output limit.
        let config = serde_json::from_str::<serde_json::Value>(&input.config).ok();
        let get = |key: &str, default: u64| {
            config
                .as_ref()
                .and_then(|c| c.get(key))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(default)
        };
        let count = u32::try_from(get("awards", 10_000)).unwrap_or(u32::MAX);
        let reason_len = usize::try_from(get("reason_len", 100)).unwrap_or(100);
        Ok((0..count)
            .map(|i| {
                let mut reason = format!("hostile-output-{i}-");
                reason.extend(std::iter::repeat_n(
                    'x',
                    reason_len.saturating_sub(reason.len()),
                ));
                Award::new(1, reason).for_line(i)
            })
            .collect())
    }
}

loyalty_sdk::export_plugin!(Hostile: point_rule);
