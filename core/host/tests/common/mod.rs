//! Shared by the integration tests (and the benchmark): real components built
//! from the repository's plugin crates, and inputs.
//!
//! The plugin crates are built once per test binary with a nested cargo whose
//! target directory (`target/plugin-wasm`) is not the outer cargo's, so it never
//! waits on the outer build's lock.

#![allow(dead_code, unreachable_pub)] // Each test binary uses part of it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use loyalty_plugin_host::{Limits, PluginHost, encode_component};
use loyalty_sdk::testing::{member, purchase};
use loyalty_sdk::{MemberEvent, PointRuleInput};

/// The crates the tests need, built in one cargo invocation.
pub const TEST_PLUGINS: &[&str] = &[
    "base-rate",
    "hostile-loop",
    "hostile-memory",
    "hostile-remember",
    "hostile-recursion",
    "hostile-panic",
    "hostile-output",
    "hostile-wasi",
];

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The nested cargo's target directory: `plugin-wasm` inside the outer build's target
/// directory (`CARGO_TARGET_DIR`, else the workspace's `target`).
pub fn plugin_target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| workspace().join("target"), |t| workspace().join(t));
    target.join("plugin-wasm")
}

/// Builds `crates` for wasm32 and returns their core modules by crate name.
pub fn build_modules(crates: &[&str]) -> HashMap<String, Vec<u8>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace())
        .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
        .env("CARGO_TARGET_DIR", plugin_target_dir());
    for name in crates {
        command.args(["-p", name]);
    }
    let out = command.output().expect("run cargo");
    assert!(
        out.status.success(),
        "building the plugin crates failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let release = plugin_target_dir().join("wasm32-unknown-unknown/release");
    crates
        .iter()
        .map(|name| {
            let path = release.join(format!("{}.wasm", name.replace('-', "_")));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            ((*name).to_owned(), bytes)
        })
        .collect()
}

/// Core modules of [`TEST_PLUGINS`], built once per process.
pub fn modules() -> &'static HashMap<String, Vec<u8>> {
    static MODULES: OnceLock<HashMap<String, Vec<u8>>> = OnceLock::new();
    MODULES.get_or_init(|| build_modules(TEST_PLUGINS))
}

/// The component of one of [`TEST_PLUGINS`] (all but hostile-wasi encode).
pub fn component(name: &str) -> &'static [u8] {
    static COMPONENTS: OnceLock<HashMap<String, Vec<u8>>> = OnceLock::new();
    COMPONENTS
        .get_or_init(|| {
            modules()
                .iter()
                .filter(|(name, _)| name.as_str() != "hostile-wasi")
                .map(|(name, module)| {
                    let component =
                        encode_component(module).unwrap_or_else(|e| panic!("encode {name}: {e}"));
                    (name.clone(), component)
                })
                .collect()
        })
        .get(name)
        .unwrap_or_else(|| panic!("no component {name}"))
}

/// A host with `limits`.
pub fn host_with(limits: Limits) -> PluginHost {
    PluginHost::new(limits).expect("start the plugin host")
}

/// A host with the default limits.
pub fn host() -> PluginHost {
    host_with(Limits::default())
}

/// The base-rate config of the tests: 1 point per euro, floor.
pub const BASE_RATE_CONFIG: &str = r#"{"points_per_unit": 1, "unit_minor": 100}"#;

/// A purchase of two lines: 2 x 49.99 and 1 x 5.00.
pub fn purchase_event() -> MemberEvent {
    purchase()
        .line("A", "shoes", 2, 4_999)
        .line("B", "socks", 1, 500)
        .build()
}

/// A point-rule input with `config`.
pub fn point_rule_input(config: &str) -> PointRuleInput {
    PointRuleInput {
        event: purchase_event(),
        member: member(),
        config: config.into(),
    }
}
