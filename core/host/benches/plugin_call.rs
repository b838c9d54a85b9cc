//! Cost of one plugin call: the component host against Extism, same rule.
//!
//! Run with:
//! `cargo bench -p loyalty-plugin-host --bench plugin_call -- --warm-up-time 1 --measurement-time 3`
//! (BENCHMARKS.md has the figures and the exact command).
//!
//! Measured, all with base-rate on a two-line purchase:
//! - component: fresh instance + call (what every event costs), and
//!   instantiation alone;
//! - Extism (`plugins/bench/extism-base-rate`, which calls base-rate's own
//!   code): a warm call on one plugin instance, a plugin created per call from
//!   a precompiled module, and a plugin created per call from the manifest.
//!
//! Before criterion runs, each case is also timed call by call to print p50,
//! p99 and calls/s, which criterion does not report.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use loyalty_plugin_host::{Limits, PluginHost, encode_component};
use loyalty_sdk::{Award, PointRuleInput};

/// Calls timed one by one for the percentiles.
const TIMED_CALLS: usize = 5_000;

type Output = Result<Vec<Award>, String>;

/// Times `calls` runs of `f` one by one and prints p50, p99 and calls/s.
fn percentiles(name: &str, calls: usize, mut f: impl FnMut()) {
    let mut times: Vec<Duration> = Vec::with_capacity(calls);
    let started = Instant::now();
    for _ in 0..calls {
        let call = Instant::now();
        f();
        times.push(call.elapsed());
    }
    let total = started.elapsed();
    times.sort_unstable();
    let at = |q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let index = ((times.len() - 1) as f64 * q).round() as usize;
        times[index]
    };
    #[allow(clippy::cast_precision_loss)]
    let per_second = calls as f64 / total.as_secs_f64();
    println!(
        "{name:<48} p50 {:>9.1} us   p99 {:>9.1} us   {per_second:>9.0} calls/s",
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
    );
}

fn extism_call(plugin: &mut extism::Plugin, input: &PointRuleInput) -> Output {
    // A host would serialize its input and parse the output: count it.
    let bytes = serde_json::to_vec(input).expect("serialize the input");
    let out: &[u8] = plugin
        .call("evaluate", bytes.as_slice())
        .expect("extism call");
    serde_json::from_slice(out).expect("parse the output")
}

fn plugin_call(c: &mut Criterion) {
    let modules = common::build_modules(&["base-rate", "extism-base-rate"]);
    let component = encode_component(&modules["base-rate"]).expect("encode base-rate");
    let input = common::point_rule_input(common::BASE_RATE_CONFIG);

    let host = PluginHost::new(Limits::default()).expect("host");
    let plugin = host.load(&component).expect("load base-rate");
    let expected = host
        .evaluate_point_rule(&plugin, &input)
        .expect("component call")
        .output;
    assert_eq!(expected.as_ref().map(Vec::len), Ok(2));

    let extism_module = &modules["extism-base-rate"];
    let builder = || {
        let manifest = extism::Manifest::new([extism::Wasm::data(extism_module.clone())]);
        extism::PluginBuilder::new(manifest)
            .with_wasi(false)
            .with_cache_disabled()
            .with_fuel_limit(Limits::default().fuel_max)
    };
    let compiled = extism::CompiledPlugin::new(builder()).expect("compile the extism plugin");
    let mut warm = extism::Plugin::new_from_compiled(&compiled).expect("extism plugin");
    assert_eq!(extism_call(&mut warm, &input), expected);

    println!("\nbase-rate, {TIMED_CALLS} calls timed one by one (manifest: 50 calls):");
    let fresh = || {
        let outcome = host.evaluate_point_rule(&plugin, &input).expect("call");
        assert!(outcome.output.is_ok());
    };
    percentiles("component: fresh instance + call", TIMED_CALLS, fresh);
    percentiles("component: instantiate only", TIMED_CALLS, || {
        host.instantiate_only(&plugin).expect("instantiate");
    });
    percentiles("extism: warm call, one plugin", TIMED_CALLS, || {
        assert!(extism_call(&mut warm, &input).is_ok());
    });
    percentiles(
        "extism: new plugin per call (precompiled)",
        TIMED_CALLS,
        || {
            let mut plugin = extism::Plugin::new_from_compiled(&compiled).expect("plugin");
            assert!(extism_call(&mut plugin, &input).is_ok());
        },
    );
    percentiles("extism: new plugin per call (from manifest)", 50, || {
        let mut plugin = builder().build().expect("plugin");
        assert!(extism_call(&mut plugin, &input).is_ok());
    });
    println!();

    let mut group = c.benchmark_group("base-rate");
    group.bench_function("component fresh instance + call", |b| {
        b.iter(|| host.evaluate_point_rule(&plugin, &input).expect("call"));
    });
    group.bench_function("component instantiate only", |b| {
        b.iter(|| host.instantiate_only(&plugin).expect("instantiate"));
    });
    group.bench_function("extism warm call", |b| {
        b.iter(|| extism_call(&mut warm, &input));
    });
    group.bench_function("extism new plugin per call (precompiled)", |b| {
        b.iter(|| {
            let mut plugin = extism::Plugin::new_from_compiled(&compiled).expect("plugin");
            extism_call(&mut plugin, &input)
        });
    });
    group.finish();
}

criterion_group!(benches, plugin_call);
criterion_main!(benches);
