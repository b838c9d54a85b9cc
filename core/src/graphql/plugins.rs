//! Plugin registry: installed and bundled plugin versions, and the tenant's bindings.

use super::{principal, state};
use crate::error::AppError;
use crate::ids::{PluginBindingId, PluginVersionId};
use crate::plugins::{self, BindRequest, Binding, BindingPatch, PluginKind, PluginVersion};
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "PluginKind")]
enum KindEnum {
    /// Event in, point awards out.
    PointRule,
    /// Redemption request in, quote or rejection out.
    RewardType,
    /// Referee's event in, awards for both members out.
    ReferralScheme,
}

impl From<PluginKind> for KindEnum {
    fn from(k: PluginKind) -> Self {
        match k {
            PluginKind::PointRule => Self::PointRule,
            PluginKind::RewardType => Self::RewardType,
            PluginKind::ReferralScheme => Self::ReferralScheme,
        }
    }
}

impl From<KindEnum> for PluginKind {
    fn from(k: KindEnum) -> Self {
        match k {
            KindEnum::PointRule => Self::PointRule,
            KindEnum::RewardType => Self::RewardType,
            KindEnum::ReferralScheme => Self::ReferralScheme,
        }
    }
}

/// One immutable plugin component: bundled with the server, or installed by this tenant.
pub(crate) struct PluginVersionObject(pub(crate) PluginVersion);

#[Object(name = "PluginVersion")]
impl PluginVersionObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Machine name from the plugin's metadata, e.g. `base-rate`.
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn version(&self) -> &str {
        &self.0.version
    }
    async fn kind(&self) -> KindEnum {
        self.0.kind.into()
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// JSON Schema of the config, as text (empty when the plugin takes none).
    async fn config_schema(&self) -> &str {
        &self.0.config_schema
    }
    /// A config the plugin accepts, as JSON text.
    async fn config_example(&self) -> &str {
        &self.0.config_example
    }
    /// SHA-256 of the component, lowercase hex.
    async fn digest(&self) -> &str {
        &self.0.digest
    }
    async fn size_bytes(&self) -> i64 {
        self.0.size_bytes
    }
    /// True for the first-party plugins every tenant can bind.
    async fn bundled(&self) -> bool {
        self.0.bundled()
    }
    async fn installed_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A plugin version in use by this tenant, with its config.
struct PluginBindingObject(Binding, PluginVersion);

#[Object(name = "PluginBinding")]
impl PluginBindingObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn plugin(&self) -> PluginVersionObject {
        PluginVersionObject(self.1.clone())
    }
    /// The config the plugin accepted, a JSON object.
    async fn config(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.config).unwrap_or_default())
    }
    /// Lower runs first.
    async fn priority(&self) -> i32 {
        self.0.priority
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Set once the binding is unbound.
    async fn removed_at(&self) -> Option<DateTime<Utc>> {
        self.0.removed_at
    }
}

fn binding_object((b, v): (Binding, PluginVersion)) -> PluginBindingObject {
    PluginBindingObject(b, v)
}

/// A malformed id names nothing the caller can see.
fn version_id(id: &ID) -> Result<PluginVersionId, AppError> {
    PluginVersionId::parse(id).ok_or(AppError::not_found("plugin version"))
}

fn binding_id(id: &ID) -> Result<PluginBindingId, AppError> {
    PluginBindingId::parse(id).ok_or(AppError::not_found("plugin binding"))
}

#[derive(Default)]
pub(super) struct PluginQuery;

#[Object]
impl PluginQuery {
    /// Plugin versions this tenant can bind: the bundled first-party ones, then its own.
    async fn plugins(
        &self,
        ctx: &Context<'_>,
        kind: Option<KindEnum>,
    ) -> Result<Vec<PluginVersionObject>> {
        let st = state(ctx);
        let list =
            plugins::service::versions(&st.db, &principal(ctx)?, kind.map(Into::into)).await?;
        Ok(list.into_iter().map(PluginVersionObject).collect())
    }

    /// This tenant's plugin bindings, in the order they run.
    async fn plugin_bindings(&self, ctx: &Context<'_>) -> Result<Vec<PluginBindingObject>> {
        let st = state(ctx);
        let list = plugins::service::bindings(&st.db, &principal(ctx)?).await?;
        Ok(list.into_iter().map(binding_object).collect())
    }
}

#[derive(InputObject)]
struct InstallPluginInput {
    /// The component (`.wasm`, built with `loyalty plugin build`), base64-encoded.
    wasm_base64: String,
}

#[derive(SimpleObject)]
struct InstallPluginPayload {
    plugin: PluginVersionObject,
}

#[derive(InputObject)]
struct BindPluginInput {
    plugin_version_id: ID,
    /// A JSON object the plugin validates; absent means `{}`.
    config: Option<Json<serde_json::Value>>,
    /// Lower runs first.
    #[graphql(default = 0)]
    priority: i32,
    #[graphql(default = true)]
    enabled: bool,
    idempotency_key: Option<String>,
}

#[derive(SimpleObject)]
struct BindPluginPayload {
    binding: PluginBindingObject,
}

#[derive(InputObject)]
struct UpdatePluginBindingInput {
    binding_id: ID,
    config: Option<Json<serde_json::Value>>,
    priority: Option<i32>,
    enabled: Option<bool>,
}

#[derive(SimpleObject)]
struct UpdatePluginBindingPayload {
    binding: PluginBindingObject,
}

#[derive(InputObject)]
struct UnbindPluginInput {
    binding_id: ID,
}

#[derive(SimpleObject)]
struct UnbindPluginPayload {
    binding: PluginBindingObject,
}

#[derive(Default)]
pub(super) struct PluginMutation;

#[Object]
impl PluginMutation {
    /// Installs this tenant's own plugin component (ADMIN key). Installing the same code again
    /// returns the stored version.
    async fn install_plugin(
        &self,
        ctx: &Context<'_>,
        input: InstallPluginInput,
    ) -> Result<InstallPluginPayload> {
        let st = state(ctx);
        let v = plugins::service::install(
            &st.db,
            &st.plugins,
            &principal(ctx)?,
            &input.wasm_base64,
            st.settings.api.plugin_versions_max,
        )
        .await?;
        Ok(InstallPluginPayload {
            plugin: PluginVersionObject(v),
        })
    }

    /// Binds a plugin version with a config the plugin accepts (ADMIN key).
    async fn bind_plugin(
        &self,
        ctx: &Context<'_>,
        input: BindPluginInput,
    ) -> Result<BindPluginPayload> {
        let st = state(ctx);
        let req = BindRequest {
            plugin_version_id: version_id(&input.plugin_version_id)?,
            config: input.config.map(|j| j.0),
            priority: input.priority,
            enabled: input.enabled,
        };
        let bound = plugins::service::bind(
            &st.db,
            &st.plugins,
            &principal(ctx)?,
            req,
            input.idempotency_key.as_deref(),
            st.settings.api.plugin_bindings_max,
        )
        .await?;
        Ok(BindPluginPayload {
            binding: binding_object(bound),
        })
    }

    /// Changes a binding's config, priority or on/off switch (ADMIN key).
    async fn update_plugin_binding(
        &self,
        ctx: &Context<'_>,
        input: UpdatePluginBindingInput,
    ) -> Result<UpdatePluginBindingPayload> {
        let st = state(ctx);
        let patch = BindingPatch {
            config: input.config.map(|j| j.0),
            priority: input.priority,
            enabled: input.enabled,
        };
        let bound = plugins::service::update_binding(
            &st.db,
            &st.plugins,
            &principal(ctx)?,
            binding_id(&input.binding_id)?,
            patch,
        )
        .await?;
        Ok(UpdatePluginBindingPayload {
            binding: binding_object(bound),
        })
    }

    /// Removes a binding (ADMIN key); unbinding twice answers the same.
    async fn unbind_plugin(
        &self,
        ctx: &Context<'_>,
        input: UnbindPluginInput,
    ) -> Result<UnbindPluginPayload> {
        let st = state(ctx);
        let bound =
            plugins::service::unbind(&st.db, &principal(ctx)?, binding_id(&input.binding_id)?)
                .await?;
        Ok(UnbindPluginPayload {
            binding: binding_object(bound),
        })
    }
}
