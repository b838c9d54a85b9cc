//! Database migrations of the loyalty platform.
//!
//! One module per change, applied in order. Every migration is written with the sea-query
//! builder so that the same statements serve SQLite (the embedded default) and PostgreSQL.
//! Once a migration has been released it is never edited: a change goes into a new module.

pub use sea_orm_migration::prelude::*;

mod m0001_foundation;
mod m0002_ledger;
mod m0003_plugins;
mod m0004_events;
mod m0005_rewards;
mod m0006_referrals;
mod m0007_tiers;
mod m0008_lot_expiry_index;
mod m0009_write_path_indexes;

/// Creates index `name` on `table` over `cols` (the index helper of the migrations after
/// m0003).
pub(crate) async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: DynIden,
    cols: Vec<DynIden>,
    unique: bool,
) -> Result<(), DbErr> {
    let mut idx = Index::create();
    idx.name(name).table(table);
    for c in cols {
        idx.col(c);
    }
    if unique {
        idx.unique();
    }
    manager.create_index(idx.to_owned()).await
}

/// The ordered list of migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_foundation::Migration),
            Box::new(m0002_ledger::Migration),
            Box::new(m0003_plugins::Migration),
            Box::new(m0004_events::Migration),
            Box::new(m0005_rewards::Migration),
            Box::new(m0006_referrals::Migration),
            Box::new(m0007_tiers::Migration),
            Box::new(m0008_lot_expiry_index::Migration),
            Box::new(m0009_write_path_indexes::Migration),
        ]
    }
}
