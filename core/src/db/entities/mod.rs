//! sea-orm entities, one module per table. Only `repo.rs` files use them.

pub mod api_keys;
pub mod event_awards;
pub mod idempotency_records;
pub mod ledger_allocations;
pub mod ledger_balances;
pub mod ledger_entries;
pub mod ledger_holds;
pub mod ledger_lines;
pub mod ledger_lots;
pub mod member_events;
pub mod member_stats;
pub mod member_tags;
pub mod members;
pub mod outbox_events;
pub mod platform_settings;
pub mod plugin_bindings;
pub mod plugin_versions;
pub mod purchase_lines;
pub mod purchase_returns;
pub mod purchases;
pub mod redemptions;
pub mod referral_codes;
pub mod referral_refusals;
pub mod referrals;
pub mod rewards;
pub mod tenants;
