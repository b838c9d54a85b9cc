//! The report: a table for people, JSON for scripts, and one last line for CI.

use super::mix::Op;
use super::rss::RssSummary;
use super::stats::{OpStats, OpSummary};
use super::verify::{AuditResult, PurchaseCheck};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Error lines shown in the table (the JSON report has every sample).
const ERRORS_SHOWN: usize = 8;

/// What `--seed` wrote.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SeedSummary {
    pub members: u64,
    pub entries: u64,
    pub lines: u64,
    pub lots: u64,
    pub holds: u64,
    pub transactions: u64,
    pub elapsed_s: f64,
    pub entries_per_s: f64,
}

impl From<&loyalty_core::ledger::seed::Seeded> for SeedSummary {
    fn from(s: &loyalty_core::ledger::seed::Seeded) -> Self {
        let secs = s.elapsed.as_secs_f64();
        Self {
            members: s.members.len() as u64,
            entries: s.entries,
            lines: s.lines,
            lots: s.lots,
            holds: s.holds,
            transactions: s.transactions,
            elapsed_s: secs,
            entries_per_s: if secs > 0.0 {
                s.entries as f64 / secs
            } else {
                0.0
            },
        }
    }
}

/// A distinct error message and how often it came.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ErrorSample {
    pub op: Op,
    pub message: String,
    pub count: u64,
}

/// The verdict of the verification after the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditStatus {
    /// The ledger audit found nothing (and the purchases could be looked up).
    Ok,
    /// The audit found violations, or the verification could not run.
    Failed,
    /// No `--database-url`.
    Skipped,
}

impl AuditStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditStatus::Ok => "ok",
            AuditStatus::Failed => "failed",
            AuditStatus::Skipped => "skipped",
        }
    }
}

/// Everything one run measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub url: String,
    pub tenant_id: String,
    pub tenant_slug: String,
    /// Members of the bench tenant before the load (enrolled or seeded).
    pub members: u64,
    /// Present when the members were seeded (`--seed`).
    pub seed: Option<SeedSummary>,
    /// Seconds from start to the load phase (tenant, keys, members); not in the load figures.
    pub setup_s: f64,
    pub concurrency: u64,
    pub mix: String,
    /// Seconds of load asked for (`--duration-s`).
    pub duration_s: u64,
    /// Seconds the load phase really took (until the last request in flight was answered).
    pub load_s: f64,
    /// One row per operation of the mix, in [`Op::ALL`] order.
    pub ops: Vec<OpSummary>,
    /// All operations together (`op` is the first of the mix).
    pub all: OpSummary,
    /// The first distinct error messages per operation.
    pub error_samples: Vec<ErrorSample>,
    /// Purchases recorded although a point rule failed (`pluginErrors`); not errors.
    pub plugin_errors: u64,
    pub plugin_error_sample: Option<String>,
    pub rss: Option<RssSummary>,
    pub purchases: Option<PurchaseCheck>,
    pub purchase_check_error: Option<String>,
    pub audit: Option<AuditResult>,
    pub audit_status: AuditStatus,
    /// Errors of every operation, plus acknowledged purchases missing or duplicated.
    pub errors: u64,
}

/// The inputs of [`Report::build`].
pub(crate) struct Parts {
    pub(crate) url: String,
    pub(crate) tenant_id: String,
    pub(crate) tenant_slug: String,
    pub(crate) members: u64,
    pub(crate) seed: Option<SeedSummary>,
    pub(crate) setup_s: f64,
    pub(crate) concurrency: u64,
    pub(crate) mix: String,
    pub(crate) duration_s: u64,
    pub(crate) load: Duration,
    pub(crate) stats: [OpStats; 4],
    pub(crate) plugin_errors: u64,
    pub(crate) plugin_error_sample: Option<String>,
    pub(crate) rss: Option<RssSummary>,
    pub(crate) purchase_check: Option<PurchaseCheck>,
    pub(crate) purchase_check_error: Option<String>,
    pub(crate) audit: Option<AuditResult>,
}

impl Report {
    pub(crate) fn build(p: Parts) -> Self {
        let mut all = OpStats::default();
        let mut ops = Vec::new();
        let mut error_samples = Vec::new();
        let mut first_op = None;
        for (op, stats) in Op::ALL.into_iter().zip(p.stats) {
            if stats.latencies.is_empty() {
                continue;
            }
            first_op.get_or_insert(op);
            error_samples.extend(
                stats
                    .error_samples
                    .iter()
                    .map(|(message, count)| ErrorSample {
                        op,
                        message: message.clone(),
                        count: *count,
                    }),
            );
            all.merge(stats.clone());
            ops.push(stats.summary(op, p.load));
        }
        let all = all.summary(first_op.unwrap_or(Op::Purchase), p.load);
        let verification_errors = p
            .purchase_check
            .as_ref()
            .map_or(0, |c| c.missing + c.duplicated);
        let errors = ops.iter().map(|o| o.errors).sum::<u64>() + verification_errors;
        let audit_status = match &p.audit {
            None => AuditStatus::Skipped,
            Some(a) if a.ok() && p.purchase_check_error.is_none() => AuditStatus::Ok,
            Some(_) => AuditStatus::Failed,
        };
        Self {
            url: p.url,
            tenant_id: p.tenant_id,
            tenant_slug: p.tenant_slug,
            members: p.members,
            seed: p.seed,
            setup_s: p.setup_s,
            concurrency: p.concurrency,
            mix: p.mix,
            duration_s: p.duration_s,
            load_s: p.load.as_secs_f64(),
            ops,
            all,
            error_samples,
            plugin_errors: p.plugin_errors,
            plugin_error_sample: p.plugin_error_sample,
            rss: p.rss,
            purchases: p.purchase_check,
            purchase_check_error: p.purchase_check_error,
            audit: p.audit,
            audit_status,
            errors,
        }
    }

    /// The row of `op`, when the mix sent any.
    pub fn op(&self, op: Op) -> Option<&OpSummary> {
        self.ops.iter().find(|o| o.op == op)
    }

    /// Errors, or a failed audit: the exit code is 1.
    pub fn failed(&self) -> bool {
        self.errors > 0 || self.audit_status == AuditStatus::Failed
    }

    /// The last line of stdout:
    /// `purchases_per_s=N p99_ms=M errors=E audit=ok|failed|skipped`, where N is acknowledged
    /// purchases per second of the load phase (rounded), M the 99th percentile latency of
    /// `recordPurchase` in ms (0.0 when no purchase was sent), E [`errors`](Self::errors).
    pub fn final_line(&self) -> String {
        let purchase = self.op(Op::Purchase);
        format!(
            "purchases_per_s={} p99_ms={:.1} errors={} audit={}",
            purchase.map_or(0.0, |p| p.per_s).round() as u64,
            purchase.map_or(0.0, |p| p.p99_ms),
            self.errors,
            self.audit_status.as_str()
        )
    }

    pub fn to_json(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Everything the binary prints on stdout: the table, the JSON report when asked, and the
    /// final line last.
    pub fn output(&self, json: bool) -> anyhow::Result<String> {
        let mut out = self.to_string();
        if json {
            out.push_str(&self.to_json()?);
            out.push('\n');
        }
        out.push_str(&self.final_line());
        out.push('\n');
        Ok(out)
    }
}

fn row(f: &mut fmt::Formatter<'_>, name: &str, o: &OpSummary) -> fmt::Result {
    writeln!(
        f,
        "{name:<10} {:>9} {:>9} {:>8} {:>7} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
        o.count, o.ok, o.refused, o.errors, o.per_s, o.p50_ms, o.p95_ms, o.p99_ms, o.max_ms
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "loyalty-bench against {}", self.url)?;
        let source = if self.seed.is_some() {
            "seeded in bulk"
        } else {
            "enrolled through enrollMember"
        };
        writeln!(
            f,
            "tenant    {} ({}), template fashion-tiers, {} members {source}",
            self.tenant_slug, self.tenant_id, self.members
        )?;
        if let Some(s) = &self.seed {
            writeln!(
                f,
                "seed      {} members, {} entries ({} lines, {} lots, {} holds) in {:.2} s: {:.0} \
                 entries/s",
                s.members, s.entries, s.lines, s.lots, s.holds, s.elapsed_s, s.entries_per_s
            )?;
        }
        writeln!(
            f,
            "setup     {:.1} s (tenant, keys, members; not part of the load figures)",
            self.setup_s
        )?;
        writeln!(
            f,
            "load      {:.1} s (asked {} s), {} tasks, mix {}",
            self.load_s, self.duration_s, self.concurrency, self.mix
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<10} {:>9} {:>9} {:>8} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8}",
            "op",
            "count",
            "ok",
            "refused",
            "errors",
            "ops/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms"
        )?;
        for o in &self.ops {
            row(f, o.op.name(), o)?;
        }
        row(f, "all", &self.all)?;
        writeln!(f)?;
        if let Some(r) = &self.rss {
            writeln!(
                f,
                "server    pid {}: resident {:.1} MiB at the start, {:.1} MiB peak, {:.1} MiB at \
                 the end ({} samples)",
                r.pid, r.start_mib, r.peak_mib, r.end_mib, r.samples
            )?;
        }
        match (&self.purchases, &self.purchase_check_error) {
            (Some(c), _) => {
                writeln!(
                    f,
                    "purchases {} acknowledged: {} stored once, {} missing, {} duplicated ({} more \
                     stored without an acknowledgement)",
                    c.acknowledged, c.present, c.missing, c.duplicated, c.stored_unacknowledged
                )?;
                for e in &c.examples {
                    writeln!(f, "          {e}")?;
                }
            }
            (None, Some(e)) => writeln!(f, "purchases not verified: {e}")?,
            (None, None) => writeln!(f, "purchases not verified (no --database-url)")?,
        }
        match &self.audit {
            None => writeln!(f, "audit     skipped (no --database-url)")?,
            Some(a) => {
                if let Some(e) = &a.error {
                    writeln!(f, "audit     failed: {e}")?;
                } else if a.violation_count == 0 {
                    writeln!(f, "audit     ok: no violation ({:.1} s)", a.elapsed_s)?;
                } else {
                    writeln!(
                        f,
                        "audit     failed: {} violations ({:.1} s)",
                        a.violation_count, a.elapsed_s
                    )?;
                    for v in &a.violations {
                        writeln!(f, "          {v}")?;
                    }
                }
            }
        }
        if self.plugin_errors > 0 {
            writeln!(
                f,
                "plugins   {} purchases recorded with a failed point rule, e.g. {}",
                self.plugin_errors,
                self.plugin_error_sample.as_deref().unwrap_or("?")
            )?;
        }
        if !self.error_samples.is_empty() {
            writeln!(f, "first errors:")?;
            for e in self.error_samples.iter().take(ERRORS_SHOWN) {
                writeln!(f, "  {} (x{}): {}", e.op, e.count, e.message)?;
            }
            if self.error_samples.len() > ERRORS_SHOWN {
                writeln!(
                    f,
                    "  ... {} more distinct messages (--json lists them)",
                    self.error_samples.len() - ERRORS_SHOWN
                )?;
            }
        }
        Ok(())
    }
}

/// The final line, parsed back (for scripts and tests).
#[derive(Clone, Debug, PartialEq)]
pub struct FinalLine {
    pub purchases_per_s: u64,
    pub p99_ms: f64,
    pub errors: u64,
    pub audit: AuditStatus,
}

impl FromStr for FinalLine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fields: Vec<(&str, &str)> = s
            .split(' ')
            .map(|w| {
                w.split_once('=')
                    .ok_or_else(|| format!("{w:?} is not key=value"))
            })
            .collect::<Result<_, _>>()?;
        let keys: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
        if keys != ["purchases_per_s", "p99_ms", "errors", "audit"] {
            return Err(format!(
                "expected purchases_per_s= p99_ms= errors= audit=, got {s:?}"
            ));
        }
        let bad = |what: &str| format!("bad {what} in {s:?}");
        let p99 = fields[1].1;
        // One decimal, as printed.
        if p99.split_once('.').is_none_or(|(_, d)| d.len() != 1) {
            return Err(bad("p99_ms"));
        }
        Ok(Self {
            purchases_per_s: fields[0].1.parse().map_err(|_| bad("purchases_per_s"))?,
            p99_ms: p99.parse().map_err(|_| bad("p99_ms"))?,
            errors: fields[2].1.parse().map_err(|_| bad("errors"))?,
            audit: match fields[3].1 {
                "ok" => AuditStatus::Ok,
                "failed" => AuditStatus::Failed,
                "skipped" => AuditStatus::Skipped,
                _ => return Err(bad("audit")),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_line_round_trips_and_rejects_other_shapes() {
        let l: FinalLine = "purchases_per_s=1234 p99_ms=12.5 errors=0 audit=ok"
            .parse()
            .expect("line");
        assert_eq!(
            l,
            FinalLine {
                purchases_per_s: 1234,
                p99_ms: 12.5,
                errors: 0,
                audit: AuditStatus::Ok
            }
        );
        for bad in [
            "",
            "purchases_per_s=1 p99_ms=1.0 errors=0",
            "purchases_per_s=1.5 p99_ms=1.0 errors=0 audit=ok",
            "purchases_per_s=1 p99_ms=1 errors=0 audit=ok",
            "purchases_per_s=1 p99_ms=1.0 errors=-1 audit=ok",
            "purchases_per_s=1 p99_ms=1.0 errors=0 audit=maybe",
            "errors=0 purchases_per_s=1 p99_ms=1.0 audit=ok",
        ] {
            assert!(bad.parse::<FinalLine>().is_err(), "{bad:?} parsed");
        }
    }
}
