//! The GraphQL API: schema, resolvers, input and output types, error mapping.
//!
//! Architecture invariant: this is the only module that imports `async_graphql`. Resolvers are
//! thin: they turn inputs into domain types, call one service function, and wrap the result.
//! Permission checks live in the services, so every edge (GraphQL today, jobs and CLI
//! tomorrow) gets the same rules.

mod error;
mod events;
mod ledger;
mod members;
mod plugins;
mod referrals;
mod rewards;
mod scalars;
mod tenants;
mod tiers;

pub use error::with_error_codes;

use crate::AppState;
use crate::auth::Principal;
use crate::error::AppError;
use async_graphql::{Context, EmptySubscription, MergedObject, Schema, ValidationMode};

/// The schema type served at `/graphql`.
pub type AppSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    tenants::TenantQuery,
    members::MemberQuery,
    plugins::PluginQuery,
    events::EventsQuery,
    rewards::RewardsQuery,
    referrals::ReferralsQuery,
    tiers::TiersQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    tenants::TenantMutation,
    members::MemberMutation,
    ledger::LedgerMutation,
    plugins::PluginMutation,
    events::EventsMutation,
    rewards::RewardsMutation,
    referrals::ReferralsMutation,
    tiers::TiersMutation,
);

/// Who sent the request, resolved by the HTTP layer before execution. `None`: no key, or a
/// key that is unknown or revoked.
#[derive(Clone, Copy, Debug)]
pub struct RequestAuth(pub Option<Principal>);

/// Builds the schema with its limits. `state` is absent only when printing the SDL.
pub fn build_schema(state: Option<AppState>, api: &crate::config::ApiSettings) -> AppSchema {
    build(state, api, ValidationMode::Strict)
}

/// The same schema in async-graphql's fast validation mode: only the depth, complexity and
/// fragment-cycle checks. For requests whose document already passed the full validation
/// and whose variables were checked (`http::documents`).
pub(crate) fn build_checked_schema(state: AppState, api: &crate::config::ApiSettings) -> AppSchema {
    build(Some(state), api, ValidationMode::Fast)
}

fn build(
    state: Option<AppState>,
    api: &crate::config::ApiSettings,
    mode: ValidationMode,
) -> AppSchema {
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .limit_depth(api.depth_max)
    .limit_complexity(api.complexity_max)
    .limit_recursive_depth(api.depth_max.max(32))
    .validation_mode(mode);
    if let Some(state) = state {
        builder = builder.data(state);
    }
    builder.finish()
}

/// The SDL committed as `schema.graphql`.
pub fn sdl() -> String {
    build_schema(None, &crate::config::ApiSettings::default()).sdl()
}

/// An update input's field: absent keeps, null clears, a value sets.
fn patch<T>(v: async_graphql::MaybeUndefined<T>) -> crate::validate::Patch<T> {
    use crate::validate::Patch;
    match v {
        async_graphql::MaybeUndefined::Undefined => Patch::Keep,
        async_graphql::MaybeUndefined::Null => Patch::Clear,
        async_graphql::MaybeUndefined::Value(x) => Patch::Set(x),
    }
}

fn state<'a>(ctx: &Context<'a>) -> &'a AppState {
    ctx.data_unchecked::<AppState>()
}

fn principal(ctx: &Context<'_>) -> Result<Principal, AppError> {
    ctx.data_opt::<RequestAuth>()
        .and_then(|a| a.0)
        .ok_or(AppError::Unauthenticated)
}

#[cfg(test)]
mod tests {
    /// The committed SDL must match the code. Refresh with `UPDATE_SCHEMA=1 cargo test`.
    #[test]
    fn schema_graphql_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
        let current = super::sdl();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &current).expect("write schema.graphql");
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == current,
            "schema.graphql is out of date: run `UPDATE_SCHEMA=1 cargo test -p loyalty-core schema_graphql_is_current` and commit it"
        );
    }
}
