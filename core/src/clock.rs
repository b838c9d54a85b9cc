//! The one place the server reads the time.
//!
//! Timestamps are truncated to microseconds, the precision PostgreSQL stores, so a value read
//! back equals the value written on both backends.

use chrono::{DateTime, SubsecRound, Utc};

pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
