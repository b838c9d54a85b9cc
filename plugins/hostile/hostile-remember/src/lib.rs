//! Hostile test plugin `hostile-remember`: tries to carry something from one call to the next
//! through its linear memory.
//!
//! Every call counts itself in a zero-initialised static (`.bss`) and in one with an initial
//! value (`.data`), asks the allocator for zeroed memory past the initial heap and checks it is
//! zero, then dirties all of it. Its one award is `1 + calls remembered + dirty bytes seen`, so
//! a call into a memory that was reset to the module's image (whatever the pooling allocator
//! does to get there: `madvise`, `memset`, a `PAGEMAP_SCAN` of the dirty pages) always earns 1.
//!
//! It exists for the host's sandbox tests. Do not use it as an example.
//!
//! Build: `cargo build --release --target wasm32-unknown-unknown -p hostile-remember`.

use loyalty_sdk::{Award, PluginMetadata, PointRule, PointRuleInput};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

/// Calls seen, in `.bss`.
static CALLS: AtomicU64 = AtomicU64::new(0);
/// Calls seen, counted down from an initial value, in `.data`.
static LEFT: AtomicU64 = AtomicU64::new(1_000_000);
/// Heap checked and dirtied per call: past the initial memory, so it comes from
/// `memory.grow`, which the allocator takes to be zero.
const HEAP_BYTES: usize = 512 << 10;

/// The hostile point rule.
pub struct Hostile;

impl PointRule for Hostile {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "hostile-remember".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Sandbox test: tries to remember an earlier call through its linear memory (a static, a heap page).".into(),
            config_schema: String::new(),
            config_example: "{}".into(),
        }
    }

    fn validate_config(_config: &str) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(_input: PointRuleInput) -> Result<Vec<Award>, String> {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed);
        let left = LEFT.fetch_sub(1, Ordering::Relaxed);
        let remembered = calls + (1_000_000 - left);
        let mut heap = black_box(vec![0u8; HEAP_BYTES]);
        let dirty = heap.iter().filter(|b| **b != 0).count() as u64;
        heap.fill(0xAB);
        black_box(&heap);
        let points = 1 + remembered + dirty;
        Ok(vec![Award::new(
            i64::try_from(points).unwrap_or(i64::MAX),
            format!("remembered-{remembered}-dirty-{dirty}"),
        )])
    }
}

loyalty_sdk::export_plugin!(Hostile: point_rule);
