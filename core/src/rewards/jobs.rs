//! The rewards job: expire codes whose validity ended (see `service::expire_due`).

pub use super::service::expire_due;
