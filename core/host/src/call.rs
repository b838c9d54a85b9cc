//! One call into a plugin: a fresh `Store` and instance, fuel, an epoch deadline
//! and a memory limiter; then the failure, if any, classified.

use std::io;
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::component::{Instance, InstancePre};
use wasmtime::{ResourceLimiter, Store, Trap};

use crate::{Limits, PluginKind};

/// What one call cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Fuel consumed (about one unit per WebAssembly instruction).
    pub fuel_used: u64,
    /// Largest total linear memory of the instance during the call.
    pub memory_peak_bytes: usize,
    /// Times a memory of the instance grew during the call (`memory.grow`), not counting
    /// its instantiation. Each growth costs the host a change of page protections when the
    /// slot is used again (the SDK's arena allocator avoids them; BENCHMARKS.md).
    pub memory_grows: u32,
    /// Wall-clock time from instantiation to the end of the call.
    pub duration: Duration,
}

/// A call that ran to completion: the plugin's answer and what it cost.
///
/// The plugin's own error (`Err(message)`) or a reward type's rejection is a
/// normal answer, not a failure of the sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome<T> {
    /// The plugin's answer.
    pub output: T,
    /// What the call cost.
    pub usage: Usage,
}

/// A call that did not produce an answer, and what it cost until it stopped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct Failure {
    /// Why the call failed.
    pub kind: FailureKind,
    /// What the call cost until it stopped (zero when it never started).
    pub usage: Usage,
}

impl Failure {
    /// A failure found before the plugin ran.
    pub(crate) fn before_call(kind: FailureKind) -> Self {
        Self {
            kind,
            usage: Usage::default(),
        }
    }
}

/// Why a plugin call failed. Record it with [`FailureKind::code`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum FailureKind {
    /// The call used up `Limits::fuel_max`.
    #[error("the plugin ran out of fuel")]
    OutOfFuel,
    /// The call ran past `Limits::deadline_ms`.
    #[error("the plugin ran past its deadline")]
    Deadline,
    /// The plugin asked for more than `Limits::memory_bytes_max` of memory.
    #[error("the plugin ran out of memory")]
    OutOfMemory,
    /// The plugin trapped: a panic, a stack overflow, an out-of-bounds access...
    #[error("the plugin trapped: {0}")]
    Trap(String),
    /// The plugin's output could not be read or is larger than
    /// `Limits::output_bytes_max`.
    #[error("the plugin returned invalid output: {0}")]
    InvalidOutput(String),
    /// `validate_config` refused the config; the plugin's message, for the admin.
    #[error("the plugin refused its config: {0}")]
    BadConfig(String),
    /// The input or the config is over its limit; the plugin was not called.
    #[error("the {what} is {bytes} bytes, over the limit of {bytes_max}")]
    InputTooLarge {
        /// `"input"` or `"config"`.
        what: &'static str,
        /// Its size (JSON bytes).
        bytes: usize,
        /// The limit.
        bytes_max: usize,
    },
    /// The function called does not belong to the plugin's kind (a host bug).
    #[error("a {actual} plugin was called as a {expected}")]
    WrongKind {
        /// The kind the function is for.
        expected: PluginKind,
        /// The plugin's kind.
        actual: PluginKind,
    },
}

impl FailureKind {
    /// A stable, machine-readable code, e.g. for a failure log or a circuit breaker.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OutOfFuel => "out-of-fuel",
            Self::Deadline => "deadline",
            Self::OutOfMemory => "out-of-memory",
            Self::Trap(_) => "trap",
            Self::InvalidOutput(_) => "invalid-output",
            Self::BadConfig(_) => "bad-config",
            Self::InputTooLarge { .. } => "input-too-large",
            Self::WrongKind { .. } => "wrong-kind",
        }
    }
}

/// Longest failure message kept; a plugin controls its panic messages.
const MESSAGE_BYTES_MAX: usize = 1024;

/// Cuts `message` to [`MESSAGE_BYTES_MAX`] on a character boundary.
pub(crate) fn bounded(mut message: String) -> String {
    if message.len() > MESSAGE_BYTES_MAX {
        let mut end = MESSAGE_BYTES_MAX;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    message
}

/// The data of a call's `Store`.
pub(crate) struct CallState {
    limiter: MemoryLimiter,
}

/// Limits the instance's linear memories (all together) and tables, and
/// remembers whether it refused a growth so that the trap that follows (a Rust
/// guest aborts when its allocator fails) is reported as `OutOfMemory`.
struct MemoryLimiter {
    memory_bytes_max: usize,
    memory_bytes: usize,
    memory_peak_bytes: usize,
    /// Growths so far, the instantiation's included.
    grows: u32,
    refused: bool,
}

/// Elements of one table; a Rust plugin's function table has a few hundred.
pub(crate) const TABLE_ELEMENTS_MAX: usize = 10_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let others = self.memory_bytes.saturating_sub(current);
        let total = others.saturating_add(desired);
        if total > self.memory_bytes_max {
            self.refused = true;
            return Ok(false);
        }
        self.memory_bytes = total;
        self.grows = self.grows.saturating_add(1);
        self.memory_peak_bytes = self.memory_peak_bytes.max(total);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // Allowed by us but refused by the pooling allocator's slot size: the
        // same limit, reached another way.
        self.refused = true;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_MAX)
    }
}

/// Runs `f` on a fresh instance of `pre` under `limits`. Nothing survives the
/// call: the store, and with it the instance and its memory, is dropped here.
pub(crate) fn run<R>(
    limits: &Limits,
    pre: &InstancePre<CallState>,
    f: impl FnOnce(&mut Store<CallState>, &Instance) -> wasmtime::Result<R>,
) -> (Result<R, FailureKind>, Usage) {
    let state = CallState {
        limiter: MemoryLimiter {
            memory_bytes_max: limits.memory_bytes_max,
            memory_bytes: 0,
            memory_peak_bytes: 0,
            grows: 0,
            refused: false,
        },
    };
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|state| &mut state.limiter);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(limits.deadline_ticks());
    let started = Instant::now();
    let mut instantiated_grows = 0;
    let result = match store.set_fuel(limits.fuel_max) {
        Err(e) => Err(FailureKind::Trap(bounded(format!(
            "cannot set fuel: {e:#}"
        )))),
        Ok(()) => match pre.instantiate(&mut store) {
            Err(e) => {
                instantiated_grows = store.data().limiter.grows;
                Err(classify(&store, &e, Phase::Instantiate))
            }
            Ok(instance) => {
                instantiated_grows = store.data().limiter.grows;
                f(&mut store, &instance).map_err(|e| classify(&store, &e, Phase::Call))
            }
        },
    };
    let duration = started.elapsed();
    let fuel_left = store.get_fuel().unwrap_or(0);
    let usage = Usage {
        fuel_used: limits.fuel_max.saturating_sub(fuel_left),
        memory_peak_bytes: store.data().limiter.memory_peak_bytes,
        memory_grows: store
            .data()
            .limiter
            .grows
            .saturating_sub(instantiated_grows),
        duration,
    };
    (result, usage)
}

#[derive(Clone, Copy)]
enum Phase {
    Instantiate,
    Call,
}

/// Names the failure behind a wasmtime error.
fn classify(store: &Store<CallState>, error: &wasmtime::Error, phase: Phase) -> FailureKind {
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => return FailureKind::OutOfFuel,
        Some(Trap::Interrupt) => return FailureKind::Deadline,
        _ => {}
    }
    // After a refused growth a Rust guest aborts (`unreachable`); other guests
    // may fail in other ways, but the cause is the same.
    if store.data().limiter.refused {
        return FailureKind::OutOfMemory;
    }
    match (error.downcast_ref::<Trap>(), phase) {
        (Some(Trap::StackOverflow), _) => FailureKind::Trap("stack overflow".into()),
        (Some(trap), _) => FailureKind::Trap(bounded(trap.to_string())),
        (None, Phase::Instantiate) => {
            FailureKind::Trap(bounded(format!("cannot instantiate: {error:#}")))
        }
        // Not a trap during a call: the host could not lift the result
        // (invalid UTF-8, a bad discriminant, a list out of bounds...).
        (None, Phase::Call) => FailureKind::InvalidOutput(bounded(format!("{error:#}"))),
    }
}

/// Size of `value` serialized as JSON, without building the text.
pub(crate) fn json_bytes<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Counter(usize);
    impl io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Serializing plain SDK types to a writer that never fails cannot fail;
    // if it somehow did, the partial count is still a lower bound.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Checks the output size after a call.
pub(crate) fn check_output<T: Serialize>(output: &T, limits: &Limits) -> Result<(), FailureKind> {
    let bytes = json_bytes(output);
    if bytes > limits.output_bytes_max {
        return Err(FailureKind::InvalidOutput(format!(
            "output is {bytes} bytes (as JSON), over the limit of {}",
            limits.output_bytes_max
        )));
    }
    Ok(())
}
