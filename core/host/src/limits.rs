//! Per-call limits of the sandbox, embedded in the server settings as `[plugins]`.

use serde::{Deserialize, Serialize};

/// One KiB, in bytes.
const KIB: usize = 1024;
/// One WebAssembly page, in bytes.
pub(crate) const WASM_PAGE_BYTES: usize = 64 * KIB;

/// Limits applied to every plugin call, and to loading a plugin.
///
/// Every field can be set in the server settings; a missing field takes its
/// default. The defaults follow Shopify Functions (instruction budget, input,
/// output and module sizes), see DESIGN.md section 5.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Fuel per call; wasmtime charges about one unit per WebAssembly
    /// instruction. Exhausting it fails the call with `OutOfFuel`.
    pub fuel_max: u64,
    /// Linear memory of one instance (all its memories together), enforced by a
    /// `ResourceLimiter` and by the pooling allocator's slot size.
    pub memory_bytes_max: usize,
    /// WebAssembly stack of one call (`Config::max_wasm_stack`).
    pub stack_bytes_max: usize,
    /// Wall-clock deadline of one call, including instantiation; enforced by
    /// epoch interruption, so it is honoured to within one `epoch_tick_ms`.
    pub deadline_ms: u64,
    /// Period of the ticker thread that advances the engine's epoch.
    pub epoch_tick_ms: u64,
    /// Size of the input of one call, measured as its JSON serialization.
    pub input_bytes_max: usize,
    /// Size of a plugin config (JSON text).
    pub config_bytes_max: usize,
    /// Size of the output of one call, measured as its JSON serialization.
    pub output_bytes_max: usize,
    /// Size of a component accepted by `PluginHost::load`.
    pub component_bytes_max: usize,
    /// Calls (and loads) running at the same time; further calls wait. Sizes the
    /// pooling allocator, which reserves this many instance slots up front.
    pub concurrent_calls_max: u32,
    /// Bytes of each instance's linear memory (and of each table) that are reset in
    /// place after a call and stay mapped for the next one, instead of being handed
    /// back to the kernel with `madvise` (which, in a threaded server, interrupts the
    /// other cores to flush their TLBs). Where the kernel has `PAGEMAP_SCAN` (Linux
    /// 6.7+) only the pages the call dirtied are reset. 0: everything is `madvise`d.
    /// At most 4 GiB; more than `memory_bytes_max` counts as `memory_bytes_max`.
    /// Either way the next call starts from the module's own image: nothing
    /// survives a call.
    pub memory_keep_resident_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel_max: 11_000_000,
            memory_bytes_max: 16 * KIB * KIB,
            stack_bytes_max: 512 * KIB,
            deadline_ms: 20,
            epoch_tick_ms: 1,
            input_bytes_max: 128 * KIB,
            config_bytes_max: 10 * KIB,
            output_bytes_max: 20 * KIB,
            component_bytes_max: 256 * KIB,
            concurrent_calls_max: 32,
            memory_keep_resident_bytes: 2 * KIB * KIB,
        }
    }
}

/// Upper bound of `memory_bytes_max`: the 32-bit address space of one memory.
const MEMORY_BYTES_MAX_MAX: usize = 4 * KIB * KIB * KIB;
/// Upper bound of `concurrent_calls_max`; each slot reserves address space.
const CONCURRENT_CALLS_MAX_MAX: u32 = 1024;

impl Limits {
    /// Checks the relationships between the fields; `PluginHost::new` refuses
    /// limits that fail it.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("fuel_max", self.fuel_max),
            ("deadline_ms", self.deadline_ms),
            ("epoch_tick_ms", self.epoch_tick_ms),
            ("concurrent_calls_max", u64::from(self.concurrent_calls_max)),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("plugins.{name} must be positive"));
            }
        }
        let sizes = [
            ("stack_bytes_max", self.stack_bytes_max),
            ("input_bytes_max", self.input_bytes_max),
            ("config_bytes_max", self.config_bytes_max),
            ("output_bytes_max", self.output_bytes_max),
            ("component_bytes_max", self.component_bytes_max),
        ];
        for (name, value) in sizes {
            if value == 0 {
                return Err(format!("plugins.{name} must be positive"));
            }
        }
        if self.memory_bytes_max < WASM_PAGE_BYTES || self.memory_bytes_max > MEMORY_BYTES_MAX_MAX {
            return Err(format!(
                "plugins.memory_bytes_max must be between {WASM_PAGE_BYTES} and {MEMORY_BYTES_MAX_MAX}"
            ));
        }
        if self.epoch_tick_ms > self.deadline_ms {
            return Err("plugins.epoch_tick_ms must not exceed plugins.deadline_ms".into());
        }
        if self.concurrent_calls_max > CONCURRENT_CALLS_MAX_MAX {
            return Err(format!(
                "plugins.concurrent_calls_max must be at most {CONCURRENT_CALLS_MAX_MAX}"
            ));
        }
        if self.memory_keep_resident_bytes > MEMORY_BYTES_MAX_MAX {
            return Err(format!(
                "plugins.memory_keep_resident_bytes must be at most {MEMORY_BYTES_MAX_MAX}"
            ));
        }
        if self.config_bytes_max > self.input_bytes_max {
            // The config travels inside the input.
            return Err("plugins.config_bytes_max must not exceed plugins.input_bytes_max".into());
        }
        Ok(())
    }

    /// What is kept resident of each memory and table: at most the memory itself.
    pub(crate) fn memory_keep_resident(&self) -> usize {
        self.memory_keep_resident_bytes.min(self.memory_bytes_max)
    }

    /// Epoch ticks of one call: the deadline rounded up to whole ticks, plus one
    /// because the first tick may come at once.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        self.deadline_ms
            .div_ceil(self.epoch_tick_ms)
            .saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::Limits;

    #[test]
    fn defaults_are_valid_and_round_trip_through_toml_like_json() {
        let limits = Limits::default();
        assert_eq!(limits.check(), Ok(()));
        let text = serde_json::to_string(&limits).expect("serialize");
        let back: Limits = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, limits);
        let partial: Limits = serde_json::from_str(r#"{"fuel_max": 5}"#).expect("partial");
        assert_eq!(partial.fuel_max, 5);
        assert_eq!(partial.memory_bytes_max, 16 << 20);
        assert_eq!(limits.deadline_ticks(), 21);
        assert_eq!(partial.memory_keep_resident_bytes, 2 << 20);
        let off = Limits {
            memory_keep_resident_bytes: 0,
            ..Limits::default()
        };
        assert_eq!(off.check(), Ok(()));
        // A smaller memory keeps the default: it counts as the whole memory.
        let small = Limits {
            memory_bytes_max: 1 << 20,
            ..Limits::default()
        };
        assert_eq!(small.check(), Ok(()));
        assert_eq!(small.memory_keep_resident(), 1 << 20);
    }

    #[test]
    fn inconsistent_limits_are_refused() {
        let cases = [
            Limits {
                fuel_max: 0,
                ..Limits::default()
            },
            Limits {
                memory_bytes_max: 1000,
                ..Limits::default()
            },
            Limits {
                epoch_tick_ms: 50,
                ..Limits::default()
            },
            Limits {
                config_bytes_max: 1 << 20,
                ..Limits::default()
            },
            Limits {
                concurrent_calls_max: 0,
                ..Limits::default()
            },
            Limits {
                memory_keep_resident_bytes: (4 << 30) + 1,
                ..Limits::default()
            },
        ];
        for limits in cases {
            assert!(limits.check().is_err(), "{limits:?}");
        }
    }
}
