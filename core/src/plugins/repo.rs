//! Queries of the plugin registry. Version lookups by id are global (ids are unique); the
//! service checks that the caller's tenant may see the version.

use super::{Binding, PluginKind, PluginVersion};
use crate::db::entities::{plugin_bindings, plugin_versions};
use crate::error::{AppError, AppResult};
use crate::ids::{PluginBindingId, PluginVersionId, TenantId};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

/// The owner column of a bundled version.
const BUNDLED_OWNER: Uuid = Uuid::nil();

/// A version row without its component bytes, which only the runtime reads.
#[derive(FromQueryResult)]
struct VersionRow {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    version: String,
    kind: String,
    description: String,
    config_schema: String,
    config_example: String,
    digest: String,
    size_bytes: i64,
    created_at: DateTime<Utc>,
}

fn version_from(r: VersionRow) -> AppResult<PluginVersion> {
    Ok(PluginVersion {
        id: PluginVersionId(r.id),
        tenant_id: (r.tenant_id != BUNDLED_OWNER).then_some(TenantId(r.tenant_id)),
        kind: r
            .kind
            .parse::<PluginKind>()
            .map_err(|e| AppError::internal(anyhow::anyhow!("plugin version {}: {e}", r.id)))?,
        name: r.name,
        version: r.version,
        description: r.description,
        config_schema: r.config_schema,
        config_example: r.config_example,
        digest: r.digest,
        size_bytes: r.size_bytes,
        created_at: r.created_at,
    })
}

fn versions() -> sea_orm::Select<plugin_versions::Entity> {
    use plugin_versions::Column as C;
    plugin_versions::Entity::find().select_only().columns([
        C::Id,
        C::TenantId,
        C::Name,
        C::Version,
        C::Kind,
        C::Description,
        C::ConfigSchema,
        C::ConfigExample,
        C::Digest,
        C::SizeBytes,
        C::CreatedAt,
    ])
}

fn owner(tenant: Option<TenantId>) -> Uuid {
    tenant.map_or(BUNDLED_OWNER, |t| t.0)
}

pub async fn find_version(
    conn: &impl ConnectionTrait,
    id: PluginVersionId,
) -> AppResult<Option<PluginVersion>> {
    versions()
        .filter(plugin_versions::Column::Id.eq(id.0))
        .into_model::<VersionRow>()
        .one(conn)
        .await?
        .map(version_from)
        .transpose()
}

/// The version named `name@version` of `tenant` (`None`: the bundled one).
pub async fn find_by_name(
    conn: &impl ConnectionTrait,
    tenant: Option<TenantId>,
    name: &str,
    version: &str,
) -> AppResult<Option<PluginVersion>> {
    use plugin_versions::Column as C;
    versions()
        .filter(C::TenantId.eq(owner(tenant)))
        .filter(C::Name.eq(name))
        .filter(C::Version.eq(version))
        .into_model::<VersionRow>()
        .one(conn)
        .await?
        .map(version_from)
        .transpose()
}

/// The component bytes of a version.
pub async fn component(conn: &impl ConnectionTrait, id: PluginVersionId) -> AppResult<Vec<u8>> {
    plugin_versions::Entity::find_by_id(id.0)
        .select_only()
        .column(plugin_versions::Column::Component)
        .into_tuple::<Vec<u8>>()
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("plugin version"))
}

fn version_model(v: &PluginVersion, component: Vec<u8>) -> plugin_versions::Model {
    plugin_versions::Model {
        id: v.id.0,
        tenant_id: owner(v.tenant_id),
        name: v.name.clone(),
        version: v.version.clone(),
        kind: v.kind.as_str().into(),
        description: v.description.clone(),
        config_schema: v.config_schema.clone(),
        config_example: v.config_example.clone(),
        digest: v.digest.clone(),
        component,
        size_bytes: v.size_bytes,
        bundled: v.bundled(),
        created_at: v.created_at,
    }
}

pub async fn insert_version(
    conn: &impl ConnectionTrait,
    v: &PluginVersion,
    component: Vec<u8>,
) -> Result<(), sea_orm::DbErr> {
    plugin_versions::Entity::insert(version_model(v, component).into_active_model())
        .exec_without_returning(conn)
        .await
        .map(drop)
}

/// Replaces the code and metadata of a bundled version (same id, name and version): the
/// binary is the source of truth for the first-party plugins it carries.
pub async fn replace_bundled(
    conn: &impl ConnectionTrait,
    v: &PluginVersion,
    component: Vec<u8>,
) -> AppResult<()> {
    let model = version_model(v, component).into_active_model().reset_all();
    plugin_versions::Entity::update_many()
        .set(model)
        .filter(plugin_versions::Column::Id.eq(v.id.0))
        .filter(plugin_versions::Column::TenantId.eq(BUNDLED_OWNER))
        .exec(conn)
        .await?;
    Ok(())
}

/// The bundled versions and `tenant`'s own, bundled first, then by name and version.
pub async fn list_versions(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    kind: Option<PluginKind>,
) -> AppResult<Vec<PluginVersion>> {
    use plugin_versions::Column as C;
    let mut q = versions().filter(C::TenantId.is_in([BUNDLED_OWNER, tenant.0]));
    if let Some(kind) = kind {
        q = q.filter(C::Kind.eq(kind.as_str()));
    }
    q.order_by_desc(C::Bundled)
        .order_by_asc(C::Name)
        .order_by_asc(C::CreatedAt)
        .into_model::<VersionRow>()
        .all(conn)
        .await?
        .into_iter()
        .map(version_from)
        .collect()
}

pub async fn count_versions(conn: &impl ConnectionTrait, tenant: TenantId) -> AppResult<u64> {
    Ok(plugin_versions::Entity::find()
        .filter(plugin_versions::Column::TenantId.eq(tenant.0))
        .count(conn)
        .await?)
}

fn binding_from(m: plugin_bindings::Model) -> Binding {
    Binding {
        id: PluginBindingId(m.id),
        tenant_id: TenantId(m.tenant_id),
        plugin_version_id: PluginVersionId(m.plugin_version_id),
        config: m.config,
        priority: m.priority,
        enabled: m.enabled,
        created_at: m.created_at,
        updated_at: m.updated_at,
        removed_at: m.removed_at,
    }
}

fn binding_model(b: &Binding) -> plugin_bindings::Model {
    plugin_bindings::Model {
        id: b.id.0,
        tenant_id: b.tenant_id.0,
        plugin_version_id: b.plugin_version_id.0,
        config: b.config.clone(),
        priority: b.priority,
        enabled: b.enabled,
        created_at: b.created_at,
        updated_at: b.updated_at,
        removed_at: b.removed_at,
    }
}

pub async fn insert_binding(conn: &impl ConnectionTrait, b: &Binding) -> AppResult<()> {
    plugin_bindings::Entity::insert(binding_model(b).into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn save_binding(conn: &impl ConnectionTrait, b: &Binding) -> AppResult<()> {
    let model = binding_model(b).into_active_model().reset_all();
    plugin_bindings::Entity::update_many()
        .set(model)
        .filter(plugin_bindings::Column::Id.eq(b.id.0))
        .filter(plugin_bindings::Column::TenantId.eq(b.tenant_id.0))
        .exec(conn)
        .await?;
    Ok(())
}

/// A binding of `tenant`, removed or not.
pub async fn find_binding(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    id: PluginBindingId,
) -> AppResult<Option<Binding>> {
    Ok(plugin_bindings::Entity::find_by_id(id.0)
        .filter(plugin_bindings::Column::TenantId.eq(tenant.0))
        .one(conn)
        .await?
        .map(binding_from))
}

/// A binding of `tenant`, locked for the rest of the transaction (`FOR UPDATE` on
/// PostgreSQL; SQLite's single writer already serialises).
pub async fn lock_binding(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    id: PluginBindingId,
) -> AppResult<Option<Binding>> {
    Ok(plugin_bindings::Entity::find_by_id(id.0)
        .filter(plugin_bindings::Column::TenantId.eq(tenant.0))
        .lock_exclusive()
        .one(conn)
        .await?
        .map(binding_from))
}

/// `tenant`'s bindings that are not removed, in run order.
pub async fn active_bindings(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
) -> AppResult<Vec<Binding>> {
    use plugin_bindings::Column as C;
    let mut list: Vec<Binding> = plugin_bindings::Entity::find()
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::RemovedAt.is_null())
        .order_by_asc(C::Priority)
        .order_by_asc(C::CreatedAt)
        .all(conn)
        .await?
        .into_iter()
        .map(binding_from)
        .collect();
    super::run_order(&mut list);
    Ok(list)
}

/// The tenant's bindings that are not removed, in run order, each with its version. With
/// `kind`, only the bindings of plugins of that kind; without, a binding whose version is
/// missing is an internal error (the registry never removes a bound version).
pub async fn bound_versions(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    kind: Option<PluginKind>,
) -> AppResult<Vec<(Binding, PluginVersion)>> {
    let bindings = active_bindings(conn, tenant).await?;
    let versions: std::collections::HashMap<PluginVersionId, PluginVersion> =
        list_versions(conn, tenant, kind)
            .await?
            .into_iter()
            .map(|v| (v.id, v))
            .collect();
    let mut out = Vec::with_capacity(bindings.len());
    for b in bindings {
        match versions.get(&b.plugin_version_id) {
            Some(v) => out.push((b, v.clone())),
            None if kind.is_some() => {} // A plugin of another kind.
            None => {
                return Err(AppError::internal(anyhow::anyhow!(
                    "binding {} has no version",
                    b.id
                )));
            }
        }
    }
    Ok(out)
}

pub async fn count_active_bindings(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
) -> AppResult<u64> {
    use plugin_bindings::Column as C;
    Ok(plugin_bindings::Entity::find()
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::RemovedAt.is_null())
        .count(conn)
        .await?)
}
