//! The server's resident memory, sampled from `/proc/PID/status` (`VmRSS`) during the load.

use anyhow::Context as _;
use std::time::Duration;

/// How often the sampler reads `/proc/PID/status`.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// Resident memory over the load phase, in MiB.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RssSummary {
    pub pid: u32,
    pub start_mib: f64,
    pub peak_mib: f64,
    pub end_mib: f64,
    pub samples: usize,
}

/// `VmRSS` of `pid` in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vm_rss(&status).with_context(|| format!("{path} has no VmRSS line"))
}

/// The `VmRSS:   12345 kB` value of a `/proc/PID/status` text, in KiB.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => Some(value),
        Some(_) => None,
    }
}

/// A task reading the RSS every [`SAMPLE_EVERY`] until stopped.
pub(crate) struct Sampler {
    pid: u32,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<u64>>,
}

impl Sampler {
    /// Takes the first sample now (an error when the process cannot be read), then samples in
    /// the background.
    pub(crate) fn start(pid: u32) -> anyhow::Result<Self> {
        let first = rss_kib(pid).context("--server-pid")?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut samples = vec![first];
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate: that sample is `first`
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {
                        // A server that exited leaves the samples it had.
                        match rss_kib(pid) {
                            Ok(kib) => samples.push(kib),
                            Err(_) => break,
                        }
                    }
                }
            }
            samples
        });
        Ok(Self { pid, stop, task })
    }

    /// Stops sampling, takes a last sample and summarises.
    pub(crate) async fn finish(self) -> anyhow::Result<RssSummary> {
        let _ = self.stop.send(());
        let mut samples = self.task.await.context("RSS sampler task")?;
        if let Ok(kib) = rss_kib(self.pid) {
            samples.push(kib);
        }
        let mib = |kib: u64| kib as f64 / 1024.0;
        let start = samples.first().copied().unwrap_or(0);
        let end = samples.last().copied().unwrap_or(0);
        let peak = samples.iter().copied().max().unwrap_or(0);
        Ok(RssSummary {
            pid: self.pid,
            start_mib: mib(start),
            peak_mib: mib(peak),
            end_mib: mib(end),
            samples: samples.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tloyalty\nVmPeak:\t  900000 kB\nVmRSS:\t   123456 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss(status), Some(123_456));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn this_process_has_a_resident_size() {
        let kib = rss_kib(std::process::id()).expect("own /proc status");
        assert!(kib > 0);
    }
}
