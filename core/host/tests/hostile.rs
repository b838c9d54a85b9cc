//! Hostile plugins are contained: the call fails with the right kind, and the
//! host keeps working.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use common::{BASE_RATE_CONFIG, component, host, host_with, modules, point_rule_input};
use loyalty_plugin_host::{
    AuthorError, FailureKind, Limits, LoadedPlugin, PluginHost, encode_component,
};

/// A normal call still succeeds after a hostile one.
fn base_rate_still_works(host: &PluginHost, base_rate: &LoadedPlugin) {
    let outcome = host
        .evaluate_point_rule(base_rate, &point_rule_input(BASE_RATE_CONFIG))
        .expect("base-rate after a hostile call");
    assert_eq!(outcome.output.expect("awards").len(), 2);
}

/// Calls hostile plugin `name` with `config` and returns its failure kind.
fn hostile_failure(host: &PluginHost, name: &str, config: &str) -> FailureKind {
    let plugin = host.load(component(name)).expect("load");
    let failure = host
        .evaluate_point_rule(&plugin, &point_rule_input(config))
        .expect_err("a hostile call fails");
    // The failure is recorded with what it cost.
    assert!(failure.usage.fuel_used > 0, "{name}: {failure:?}");
    eprintln!("{name}: {} ({:?})", failure.kind, failure.usage);
    failure.kind
}

#[test]
fn hostile_loop_runs_out_of_fuel_or_time() {
    let host = host();
    let base_rate = host.load(component("base-rate")).expect("load");
    for _ in 0..3 {
        let kind = hostile_failure(&host, "hostile-loop", "{}");
        assert!(
            matches!(kind, FailureKind::OutOfFuel | FailureKind::Deadline),
            "{kind:?}"
        );
        base_rate_still_works(&host, &base_rate);
    }
}

#[test]
fn hostile_memory_runs_out_of_memory() {
    // Under the default limits, touching every byte costs fuel: the fuel runs
    // out (at about 13 MiB) before the memory limit is reached. On a loaded
    // machine the wall-clock deadline can come first; any of the three stops it.
    let host = host();
    let base_rate = host.load(component("base-rate")).expect("load");
    let kind = hostile_failure(&host, "hostile-memory", "{}");
    assert!(
        matches!(
            kind,
            FailureKind::OutOfFuel | FailureKind::OutOfMemory | FailureKind::Deadline
        ),
        "{kind:?}"
    );
    base_rate_still_works(&host, &base_rate);

    // With fuel to spare, the memory limit stops it.
    let host = host_with(Limits {
        fuel_max: 200_000_000,
        deadline_ms: 5_000,
        ..Limits::default()
    });
    let base_rate = host.load(component("base-rate")).expect("load");
    let plugin = host.load(component("hostile-memory")).expect("load");
    let failure = host
        .evaluate_point_rule(&plugin, &point_rule_input("{}"))
        .expect_err("out of memory");
    eprintln!(
        "hostile-memory, fuel to spare: {failure}, {:?}",
        failure.usage
    );
    assert_eq!(failure.kind, FailureKind::OutOfMemory, "{failure:?}");
    // It got close to the limit, never past it.
    let limit = host.limits().memory_bytes_max;
    assert!(failure.usage.memory_peak_bytes <= limit, "{failure:?}");
    assert!(failure.usage.memory_peak_bytes > limit / 2, "{failure:?}");
    // Past the SDK's arena its allocations come from `memory.grow`, 1 MiB at a time.
    assert!(failure.usage.memory_grows > 1, "{failure:?}");
    base_rate_still_works(&host, &base_rate);
}

#[test]
fn hostile_recursion_overflows_the_stack() {
    let host = host();
    let base_rate = host.load(component("base-rate")).expect("load");
    let kind = hostile_failure(&host, "hostile-recursion", "{}");
    assert_eq!(kind, FailureKind::Trap("stack overflow".into()));
    base_rate_still_works(&host, &base_rate);
}

#[test]
fn hostile_panic_traps() {
    let host = host();
    let base_rate = host.load(component("base-rate")).expect("load");
    let kind = hostile_failure(&host, "hostile-panic", "{}");
    assert!(matches!(kind, FailureKind::Trap(_)), "{kind:?}");
    assert_eq!(kind.code(), "trap");
    base_rate_still_works(&host, &base_rate);
}

#[test]
fn hostile_output_is_invalid_output() {
    let host = host();
    let base_rate = host.load(component("base-rate")).expect("load");
    // By default (10 000 awards of 100 bytes, about 1.5 MB) building the output
    // costs more than the fuel: it never gets to return it.
    let kind = hostile_failure(&host, "hostile-output", "{}");
    assert!(
        matches!(kind, FailureKind::OutOfFuel | FailureKind::InvalidOutput(_)),
        "{kind:?}"
    );
    base_rate_still_works(&host, &base_rate);

    // 500 awards (about 65 kB) fit the fuel and break the 20 kB output limit.
    let kind = hostile_failure(&host, "hostile-output", r#"{"awards": 500}"#);
    match &kind {
        FailureKind::InvalidOutput(message) => {
            assert!(message.contains("over the limit of 20480"), "{message}");
        }
        other => panic!("expected InvalidOutput, got {other:?}"),
    }
    base_rate_still_works(&host, &base_rate);
}

#[test]
fn hostile_wasi_cannot_even_be_encoded() {
    let module = &modules()["hostile-wasi"];
    match encode_component(module) {
        Err(AuthorError::Encode(message)) => {
            assert!(message.contains("wasi_snapshot_preview1"), "{message}");
        }
        other => panic!("expected an encode error, got {other:?}"),
    }
    // And the raw core module is not a component.
    let host = host();
    assert!(host.load(module).is_err());
}

#[test]
fn base_rate_keeps_completing_while_hostile_loops_run() {
    // A generous deadline: with three busy threads on two cores a base-rate
    // call may wait for a core, and this test is about isolation, not time.
    let host = host_with(Limits {
        deadline_ms: 2_000,
        ..Limits::default()
    });
    let base_rate = host.load(component("base-rate")).expect("load");
    let hostile = host.load(component("hostile-loop")).expect("load");
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let hostile_threads: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut calls = 0_u32;
                    // At least a few calls each, until base-rate is done.
                    while calls < 3 || !done.load(Ordering::Relaxed) {
                        let failure = host
                            .evaluate_point_rule(&hostile, &point_rule_input("{}"))
                            .expect_err("hostile-loop fails");
                        assert!(matches!(
                            failure.kind,
                            FailureKind::OutOfFuel | FailureKind::Deadline
                        ));
                        calls += 1;
                    }
                    calls
                })
            })
            .collect();
        for _ in 0..200 {
            base_rate_still_works(&host, &base_rate);
        }
        done.store(true, Ordering::Relaxed);
        for thread in hostile_threads {
            assert!(thread.join().expect("hostile thread") >= 3);
        }
    });
}
