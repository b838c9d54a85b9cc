//! Every limit is enforced, and refused components are refused at load.

mod common;

use common::{BASE_RATE_CONFIG, component, host, host_with, point_rule_input};
use loyalty_plugin_host::{FailureKind, HostError, Limits, LoadError};
use loyalty_sdk::testing::purchase;

const KIB: usize = 1024;

#[test]
fn inconsistent_limits_are_refused_at_start() {
    let limits = Limits {
        epoch_tick_ms: 100,
        deadline_ms: 20,
        ..Limits::default()
    };
    assert!(matches!(
        loyalty_plugin_host::PluginHost::new(limits),
        Err(HostError::Limits(_))
    ));
}

#[test]
fn component_bytes_max() {
    let bytes = component("base-rate");
    assert!(bytes.len() <= Limits::default().component_bytes_max);
    let host = host_with(Limits {
        component_bytes_max: bytes.len() - 1,
        ..Limits::default()
    });
    assert_eq!(
        host.load(bytes).expect_err("too large"),
        LoadError::TooLarge {
            bytes: bytes.len(),
            bytes_max: bytes.len() - 1
        }
    );
}

#[test]
fn imports_outside_loyalty_plugin_are_refused() {
    let host = host();
    for import in [
        "loyalty:other/x@1.0.0",
        "wasi:clocks/wall-clock@0.2.0",
        "env",
    ] {
        let wat = format!(r#"(component (import "{import}" (instance (export "f" (func)))))"#);
        let bytes = wat::parse_str(&wat).expect("wat");
        assert_eq!(
            host.load(&bytes).expect_err("refused"),
            LoadError::ForbiddenImport(import.into()),
        );
    }
}

#[test]
fn components_that_are_not_plugins_are_refused() {
    let host = host();
    let core_module = wat::parse_str("(module)").expect("wat");
    assert!(matches!(
        host.load(&core_module),
        Err(LoadError::Invalid(_))
    ));
    assert!(matches!(host.load(b"not wasm"), Err(LoadError::Invalid(_))));
    let empty = wat::parse_str("(component)").expect("wat");
    assert!(matches!(host.load(&empty), Err(LoadError::UnknownWorld(_))));
}

#[test]
fn input_bytes_max() {
    let host = host();
    let plugin = host.load(component("base-rate")).expect("load");
    let mut order = purchase();
    for i in 0..2_000 {
        order = order.line(&format!("SKU-{i:05}"), "category", 1, 100);
    }
    let mut input = point_rule_input(BASE_RATE_CONFIG);
    input.event = order.build();
    let failure = host
        .evaluate_point_rule(&plugin, &input)
        .expect_err("too large");
    match failure.kind {
        FailureKind::InputTooLarge {
            what: "input",
            bytes,
            bytes_max,
        } => {
            assert_eq!(bytes_max, 128 * KIB);
            assert!(bytes > bytes_max);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(failure.usage.fuel_used, 0, "the plugin was not called");
}

#[test]
fn config_bytes_max() {
    let host = host();
    let plugin = host.load(component("base-rate")).expect("load");
    let config = format!(
        r#"{{"points_per_unit": 1, "pad": "{}"}}"#,
        "x".repeat(10 * KIB)
    );
    let too_large = FailureKind::InputTooLarge {
        what: "config",
        bytes: config.len(),
        bytes_max: 10 * KIB,
    };
    let failure = host
        .validate_config(&plugin, &config)
        .expect_err("too large");
    assert_eq!(failure.kind, too_large);
    let failure = host
        .evaluate_point_rule(&plugin, &point_rule_input(&config))
        .expect_err("too large");
    assert_eq!(failure.kind, too_large);
}

#[test]
fn output_bytes_max() {
    let host = host_with(Limits {
        output_bytes_max: 40,
        ..Limits::default()
    });
    let plugin = host.load(component("base-rate"));
    // Even metadata() is held to the output limit.
    assert!(
        matches!(
            plugin,
            Err(LoadError::Metadata(FailureKind::InvalidOutput(_)))
        ),
        "{plugin:?}"
    );
}

#[test]
fn fuel_max() {
    // Fuel runs out long before a one-minute deadline.
    let host = host_with(Limits {
        deadline_ms: 60_000,
        ..Limits::default()
    });
    let plugin = host.load(component("hostile-loop")).expect("load");
    let failure = host
        .evaluate_point_rule(&plugin, &point_rule_input("{}"))
        .expect_err("out of fuel");
    assert_eq!(failure.kind, FailureKind::OutOfFuel);
    assert_eq!(failure.usage.fuel_used, host.limits().fuel_max);

    let starved = host_with(Limits {
        fuel_max: 100,
        ..Limits::default()
    });
    assert_eq!(
        starved
            .load(component("base-rate"))
            .expect_err("no fuel for metadata()"),
        LoadError::Metadata(FailureKind::OutOfFuel)
    );
}

#[test]
fn deadline_ms() {
    // Practically unlimited fuel: only the deadline can stop the loop.
    let host = host_with(Limits {
        fuel_max: 1 << 50,
        ..Limits::default()
    });
    let plugin = host.load(component("hostile-loop")).expect("load");
    let failure = host
        .evaluate_point_rule(&plugin, &point_rule_input("{}"))
        .expect_err("deadline");
    assert_eq!(failure.kind, FailureKind::Deadline);
    assert!(failure.usage.duration.as_millis() >= 19, "{failure:?}");
}

#[test]
fn memory_bytes_max() {
    let limit = 4 * KIB * KIB;
    let host = host_with(Limits {
        memory_bytes_max: limit,
        ..Limits::default()
    });
    let plugin = host.load(component("hostile-memory")).expect("load");
    let failure = host
        .evaluate_point_rule(&plugin, &point_rule_input("{}"))
        .expect_err("out of memory");
    assert_eq!(failure.kind, FailureKind::OutOfMemory);
    assert!(failure.usage.memory_peak_bytes <= limit, "{failure:?}");

    // Below a plugin's initial memory, the pooling allocator refuses to compile
    // it at all.
    let tiny = host_with(Limits {
        memory_bytes_max: 64 * KIB,
        ..Limits::default()
    });
    match tiny.load(component("base-rate")) {
        Err(LoadError::Invalid(message)) => {
            assert!(message.contains("exceeds the limit"), "{message}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn stack_bytes_max() {
    let config = r#"{"depth": 2000}"#;
    let roomy = host();
    let plugin = roomy.load(component("hostile-recursion")).expect("load");
    let outcome = roomy
        .evaluate_point_rule(&plugin, &point_rule_input(config))
        .expect("2000 levels fit in 512 KiB");
    assert!(outcome.output.is_ok());

    let small = host_with(Limits {
        stack_bytes_max: 32 * KIB,
        ..Limits::default()
    });
    let plugin = small.load(component("hostile-recursion")).expect("load");
    let failure = small
        .evaluate_point_rule(&plugin, &point_rule_input(config))
        .expect_err("stack overflow");
    assert_eq!(failure.kind, FailureKind::Trap("stack overflow".into()));
}

#[test]
fn concurrent_calls_max() {
    // One slot: calls from four threads wait for it, and all complete.
    let host = host_with(Limits {
        concurrent_calls_max: 1,
        deadline_ms: 2_000,
        ..Limits::default()
    });
    let plugin = host.load(component("base-rate")).expect("load");
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..25 {
                    let outcome = host
                        .evaluate_point_rule(&plugin, &point_rule_input(BASE_RATE_CONFIG))
                        .expect("call");
                    assert!(outcome.output.is_ok());
                }
            });
        }
    });
}

#[test]
fn memory_keep_resident_bytes() {
    // Whatever part of the memory is reset in place (all of it, part of it and `madvise` past
    // it, none), every call starts from the module's image: hostile-remember earns 1 only when
    // it remembers no earlier call and finds its fresh heap zeroed. One slot, so every call
    // reuses the memory the previous one dirtied.
    for keep in [2 * KIB * KIB, 64 * KIB, 0] {
        let host = host_with(Limits {
            memory_keep_resident_bytes: keep,
            concurrent_calls_max: 1,
            deadline_ms: 2_000,
            ..Limits::default()
        });
        let plugin = host.load(component("hostile-remember")).expect("load");
        for call in 0..20 {
            let outcome = host
                .evaluate_point_rule(&plugin, &point_rule_input("{}"))
                .expect("call");
            let awards = outcome.output.expect("awards");
            assert_eq!(awards.len(), 1, "keep {keep}, call {call}");
            assert_eq!(
                (awards[0].points, awards[0].reason_code.as_str()),
                (1, "remembered-0-dirty-0"),
                "keep {keep}, call {call}"
            );
        }
    }
    // It is a limit like the others: more than a 32-bit memory is refused.
    let limits = Limits {
        memory_keep_resident_bytes: (4 << 30) + 1,
        ..Limits::default()
    };
    assert!(matches!(
        loyalty_plugin_host::PluginHost::new(limits),
        Err(HostError::Limits(_))
    ));
}
