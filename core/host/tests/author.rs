//! The authoring helpers: scaffold a plugin of each kind, build it into a
//! component the host accepts, and run a component with a usage report.

mod common;

use std::path::Path;
use std::process::Command;

use common::{BASE_RATE_CONFIG, component, host, plugin_target_dir, point_rule_input, workspace};
use loyalty_plugin_host::{AuthorError, FailureKind, PluginKind, build_in, run, scaffold};

#[test]
fn scaffolded_plugins_build_test_and_load() {
    let root = plugin_target_dir().join("scaffold-test");
    // Leftovers of an earlier run; the directory is ours.
    let _ = std::fs::remove_dir_all(&root);
    let sdk = workspace().join("sdk");
    let host = host();
    for kind in PluginKind::ALL {
        let name = format!("my-{kind}");
        let dir = root.join(&name);
        scaffold(&name, kind, &dir, &sdk).expect("scaffold");
        assert!(matches!(
            scaffold(&name, kind, &dir, &sdk),
            Err(AuthorError::Exists(_))
        ));

        let path = build_in(&dir, Some(&plugin_target_dir())).expect("build");
        let bytes = std::fs::read(&path).expect("read the component");
        let plugin = host.load(&bytes).expect("load the scaffolded plugin");
        assert_eq!(plugin.kind(), kind);
        assert_eq!(plugin.metadata().name, name);
        let example = plugin.metadata().config_example.clone();
        host.validate_config(&plugin, &example)
            .expect("the example config is valid");
    }

    // The generated unit tests pass natively.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .arg("test")
        .arg("--manifest-path")
        .arg(root.join("my-point-rule/Cargo.toml"))
        .env("CARGO_TARGET_DIR", plugin_target_dir())
        .output()
        .expect("run cargo test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_names_are_refused() {
    let dir = plugin_target_dir().join("never-written");
    for name in [
        "",
        "Upper",
        "1st",
        "with space",
        "trailing-",
        &"x".repeat(65),
    ] {
        assert!(
            matches!(
                scaffold(name, PluginKind::PointRule, &dir, Path::new("sdk")),
                Err(AuthorError::Name(_))
            ),
            "{name:?}"
        );
    }
    assert!(!dir.exists());
}

#[test]
fn run_reports_output_and_usage() {
    let host = host();
    let mut input = serde_json::to_value(point_rule_input(BASE_RATE_CONFIG)).expect("json");
    input.as_object_mut().expect("object").remove("config");
    let report = run(
        &host,
        component("base-rate"),
        &input.to_string(),
        BASE_RATE_CONFIG,
    )
    .expect("run");
    assert_eq!(report.kind, PluginKind::PointRule);
    assert_eq!(report.function, "evaluate");
    assert_eq!(report.failure, None);
    let output = report.output.clone().expect("output");
    assert_eq!(output["Ok"][0]["points"], 99);
    assert!(report.usage.fuel_used > 0);
    assert!(report.usage.memory_peak_bytes > 0);
    assert!(report.output_bytes > 0);
    let text = report.to_string();
    assert!(text.contains("fuel"), "{text}");
    assert!(text.contains("base-rate"), "{text}");

    let refused = run(
        &host,
        component("base-rate"),
        &input.to_string(),
        r#"{"points_per_unit": 0}"#,
    )
    .expect("run");
    assert_eq!(refused.function, "validate-config");
    assert!(matches!(refused.failure, Some(FailureKind::BadConfig(_))));

    assert!(matches!(
        run(&host, component("base-rate"), "[]", BASE_RATE_CONFIG),
        Err(AuthorError::Input { .. })
    ));
}
