//! sea-orm entities, one module per table. Only `repo.rs` files use them.

pub mod api_keys;
pub mod idempotency_records;
pub mod member_tags;
pub mod members;
pub mod platform_settings;
pub mod tenants;
