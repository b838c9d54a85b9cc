//! Per-operation counters and latencies, kept per task and merged at the end.

use super::mix::Op;
use std::time::Duration;

/// Distinct error messages kept per operation (each with a count); later ones are only counted.
const ERROR_SAMPLES_MAX: usize = 10;

/// What happened to one request.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    /// Answered with data.
    Ok,
    /// A normal business refusal (a redemption the member cannot make).
    Refused,
    /// Anything unexpected; the message says what.
    Error(String),
}

/// The raw figures of one operation.
#[derive(Clone, Debug, Default)]
pub(crate) struct OpStats {
    pub(crate) ok: u64,
    pub(crate) refused: u64,
    pub(crate) errors: u64,
    /// Latency of every request, ok or not.
    pub(crate) latencies: Vec<Duration>,
    /// Distinct error messages in the order first seen, with how often each came.
    pub(crate) error_samples: Vec<(String, u64)>,
}

impl OpStats {
    pub(crate) fn record(&mut self, latency: Duration, outcome: Outcome) {
        self.latencies.push(latency);
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Refused => self.refused += 1,
            Outcome::Error(message) => {
                self.errors += 1;
                self.sample(message, 1);
            }
        }
    }

    fn sample(&mut self, message: String, count: u64) {
        if let Some(s) = self.error_samples.iter_mut().find(|(m, _)| *m == message) {
            s.1 += count;
        } else if self.error_samples.len() < ERROR_SAMPLES_MAX {
            self.error_samples.push((message, count));
        }
    }

    pub(crate) fn merge(&mut self, other: OpStats) {
        self.ok += other.ok;
        self.refused += other.refused;
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
        for (message, count) in other.error_samples {
            self.sample(message, count);
        }
    }

    /// The figures of the report, over a load phase of `elapsed`.
    pub(crate) fn summary(mut self, op: Op, elapsed: Duration) -> OpSummary {
        self.latencies.sort_unstable();
        let secs = elapsed.as_secs_f64();
        OpSummary {
            op,
            count: self.latencies.len() as u64,
            ok: self.ok,
            refused: self.refused,
            errors: self.errors,
            per_s: if secs > 0.0 {
                (self.ok + self.refused) as f64 / secs
            } else {
                0.0
            },
            p50_ms: percentile_ms(&self.latencies, 50.0),
            p95_ms: percentile_ms(&self.latencies, 95.0),
            p99_ms: percentile_ms(&self.latencies, 99.0),
            max_ms: self.latencies.last().map_or(0.0, ms),
        }
    }
}

/// One row of the report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OpSummary {
    pub op: Op,
    /// Requests sent (ok + refused + errors).
    pub count: u64,
    pub ok: u64,
    /// Business refusals (redemptions: `REWARD_UNAVAILABLE`, `INSUFFICIENT_POINTS`).
    pub refused: u64,
    pub errors: u64,
    /// (ok + refused) per second of the load phase.
    pub per_s: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn ms(d: &Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted latencies, in milliseconds (0 when there are none).
pub(crate) fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    ms(&sorted[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(d).collect();
        assert_eq!(percentile_ms(&v, 50.0), 50.0);
        assert_eq!(percentile_ms(&v, 99.0), 99.0);
        assert_eq!(percentile_ms(&v, 100.0), 100.0);
        assert_eq!(percentile_ms(&[d(7)], 99.0), 7.0);
        assert_eq!(percentile_ms(&[], 99.0), 0.0);
    }

    #[test]
    fn merge_adds_counts_and_keeps_distinct_errors() {
        let mut a = OpStats::default();
        a.record(d(1), Outcome::Ok);
        a.record(d(2), Outcome::Error("boom".into()));
        let mut b = OpStats::default();
        b.record(d(3), Outcome::Refused);
        b.record(d(4), Outcome::Error("boom".into()));
        b.record(d(5), Outcome::Error("bang".into()));
        a.merge(b);
        let s = a.clone().summary(Op::Redeem, Duration::from_secs(1));
        assert_eq!((s.count, s.ok, s.refused, s.errors), (5, 1, 1, 3));
        assert_eq!(s.per_s, 2.0);
        assert_eq!(s.max_ms, 5.0);
        assert_eq!(
            a.error_samples,
            vec![("boom".to_string(), 2), ("bang".to_string(), 1)]
        );
    }
}
