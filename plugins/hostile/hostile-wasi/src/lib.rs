//! Hostile test plugin `hostile-wasi`: imports `wasi_snapshot_preview1::clock_time_get`.
//!
//! Plugins must import nothing (no clock: time arrives in the input). This crate
//! exists for the host's sandbox tests: componentizing it or uploading it must
//! fail with a clear error. Do not use it as an example.
//!
//! Build: `cargo build --release --target wasm32-unknown-unknown -p hostile-wasi`.

use loyalty_sdk::{Award, PluginMetadata, PointRule, PointRuleInput};

/// The hostile point rule.
pub struct Hostile;

/// The WASI clock, declared by hand. Only on wasm32: natively there is no such
/// symbol and the crate must still build and test.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)] // The import itself is the point of this crate.
mod wasi {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        /// `clock_time_get(clock_id, precision, *time) -> errno`.
        fn clock_time_get(clock_id: u32, precision: u64, time: *mut u64) -> u16;
    }

    /// Nanoseconds since the Unix epoch from the host's realtime clock.
    pub(crate) fn now_ns() -> Result<u64, u16> {
        const CLOCK_REALTIME: u32 = 0;
        let mut time = 0_u64;
        // SAFETY: `time` is a valid, writable u64 for the duration of the call.
        let errno = unsafe { clock_time_get(CLOCK_REALTIME, 1, &mut time) };
        if errno == 0 { Ok(time) } else { Err(errno) }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod wasi {
    /// Natively there is no WASI; report errno 52 (`ENOSYS`).
    pub(crate) fn now_ns() -> Result<u64, u16> {
        Err(52)
    }
}

impl PointRule for Hostile {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "hostile-wasi".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Sandbox test: reads the clock through a WASI import.".into(),
            config_schema: String::new(),
            config_example: "{}".into(),
        }
    }

    fn validate_config(_config: &str) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(_input: PointRuleInput) -> Result<Vec<Award>, String> {
        let now_ns = wasi::now_ns().map_err(|errno| format!("clock_time_get: errno {errno}"))?;
        let points = i64::try_from(now_ns % 100).unwrap_or(0);
        Ok(vec![Award::new(points, "hostile-wasi")])
    }
}

loyalty_sdk::export_plugin!(Hostile: point_rule);
