//! The one place the server reads the time.
//!
//! Timestamps are truncated to microseconds, the precision PostgreSQL stores, so a value read
//! back equals the value written on both backends.
//!
//! A [`Clock`] is the system clock in production and a manual one in tests that drive time
//! through period ends and grace periods (tiers, expiries, birthdays). The server reads it
//! through its database handle ([`crate::db::Db::now`]), so every request and job of one
//! server sees the same clock.

use chrono::{DateTime, SubsecRound, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// The system time, truncated to microseconds.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The system clock, or a manual clock shared by its clones.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Microseconds since the epoch when manual.
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands still at `at` until it is set or advanced.
    pub fn manual(at: DateTime<Utc>) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(at.timestamp_micros()))),
        }
    }

    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            None => now(),
            Some(m) => DateTime::from_timestamp_micros(m.load(Ordering::SeqCst))
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        }
    }

    /// Moves a manual clock to `at` (backwards too). Does nothing to the system clock.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Some(m) = &self.manual {
            m.store(at.timestamp_micros(), Ordering::SeqCst);
        }
    }

    /// Moves a manual clock by `by`. Does nothing to the system clock.
    pub fn advance(&self, by: chrono::Duration) {
        self.set(self.now() + by);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_is_shared_by_clones() {
        let at = DateTime::parse_from_rfc3339("2026-03-31T22:30:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let c = Clock::manual(at);
        let d = c.clone();
        d.advance(chrono::Duration::hours(1));
        assert_eq!(c.now(), at + chrono::Duration::hours(1));
        c.set(at);
        assert_eq!(d.now(), at);
        let s = Clock::system();
        s.set(at);
        assert!(s.now() > at);
    }
}
