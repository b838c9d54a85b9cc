//! Registry operations: register the bundled plugins, install a tenant's component, bind,
//! change and unbind. Installing and binding need an ADMIN key; listing any key.

use super::runtime::PluginRuntime;
use super::{
    BindRequest, Binding, BindingPatch, PluginKind, PluginVersion, check_priority, config_text,
    repo,
};
use crate::auth::{Access, Principal, TenantPrincipal};
use crate::db::Db;
use crate::error::{AppError, AppResult, is_unique_violation};
use crate::idempotency::{self, IdempotencyKey};
use crate::ids::{PluginBindingId, PluginVersionId, TenantId};
use base64::Engine as _;
use loyalty_plugin_host::{FailureKind, LoadError, LoadedPlugin};

/// Registers every first-party plugin carried by this binary, so all tenants can bind it.
/// Safe to run on every start and from several replicas at once.
pub async fn register_bundled(db: &Db, runtime: &PluginRuntime) -> anyhow::Result<usize> {
    let mut count = 0;
    for (crate_name, bytes) in loyalty_bundled_plugins::COMPONENTS {
        let plugin = runtime
            .load_bytes(bytes.to_vec())
            .await?
            .map_err(|e| anyhow::anyhow!("bundled plugin {crate_name} does not load: {e}"))?;
        let version = describe(&plugin, None, bytes.len());
        let stored = match repo::find_by_name(db.reader(), None, &version.name, &version.version)
            .await?
        {
            Some(existing) if existing.digest == version.digest => existing,
            Some(existing) => {
                // Same name and version, other code: the binary is the source of truth.
                let replaced = PluginVersion {
                    id: existing.id,
                    created_at: existing.created_at,
                    ..version
                };
                let txn = db.begin_write().await?;
                repo::replace_bundled(&txn, &replaced, bytes.to_vec()).await?;
                txn.commit().await?;
                tracing::info!(plugin = %replaced.name, version = %replaced.version, "bundled plugin code updated");
                replaced
            }
            None => {
                let txn = db.begin_write().await?;
                match repo::insert_version(&txn, &version, bytes.to_vec()).await {
                    Ok(()) => {
                        txn.commit().await?;
                        version
                    }
                    // Another replica registered it first.
                    Err(e) if is_unique_violation(&e) => {
                        drop(txn);
                        repo::find_by_name(db.reader(), None, &version.name, &version.version)
                            .await?
                            .ok_or_else(|| anyhow::anyhow!("bundled plugin vanished"))?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        runtime.remember(stored.id, plugin);
        count += 1;
    }
    Ok(count)
}

/// The registry's description of a loaded component.
fn describe(plugin: &LoadedPlugin, tenant: Option<TenantId>, size: usize) -> PluginVersion {
    let meta = plugin.metadata();
    PluginVersion {
        id: PluginVersionId::new(),
        tenant_id: tenant,
        name: meta.name.clone(),
        version: meta.version.clone(),
        kind: plugin.kind(),
        description: meta.description.clone(),
        config_schema: meta.config_schema.clone(),
        config_example: meta.config_example.clone(),
        digest: plugin.digest().to_owned(),
        size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
        created_at: crate::clock::now(),
    }
}

/// Installs a tenant's own component (base64 of the `.wasm` file). Installing the same code
/// again returns the stored version; other code under an installed name and version is a
/// CONFLICT, because a version never changes once installed.
pub async fn install(
    db: &Db,
    runtime: &PluginRuntime,
    principal: &Principal,
    wasm_base64: &str,
    versions_max: u32,
) -> AppResult<PluginVersion> {
    let t = principal.require_tenant(Access::Manage)?;
    let bytes_max = runtime.limits().component_bytes_max;
    let text = wasm_base64.trim();
    if text.len() / 4 * 3 > bytes_max.saturating_add(3) {
        return Err(too_large(text.len() / 4 * 3, bytes_max));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| AppError::validation("wasmBase64", format!("not valid base64: {e}")))?;
    let size = bytes.len();
    let plugin = match runtime.load_bytes(bytes.clone()).await? {
        Ok(p) => p,
        Err(LoadError::TooLarge { bytes, bytes_max }) => return Err(too_large(bytes, bytes_max)),
        Err(e @ LoadError::Metadata(_)) => {
            return Err(AppError::Plugin(format!("the component was refused: {e}")));
        }
        Err(e) => {
            return Err(AppError::validation(
                "wasmBase64",
                format!("the component was refused: {e}"),
            ));
        }
    };
    let version = describe(&plugin, Some(t.tenant_id), size);

    let txn = db.begin_write().await?;
    if let Some(existing) =
        repo::find_by_name(&txn, Some(t.tenant_id), &version.name, &version.version).await?
    {
        return same_or_conflict(existing, &version);
    }
    if repo::count_versions(&txn, t.tenant_id).await? >= u64::from(versions_max) {
        return Err(AppError::validation(
            "wasmBase64",
            format!(
                "this tenant already has {versions_max} plugin versions (api.plugin_versions_max)"
            ),
        ));
    }
    if let Err(e) = repo::insert_version(&txn, &version, bytes).await {
        drop(txn);
        if !is_unique_violation(&e) {
            return Err(e.into());
        }
        // A concurrent install of the same name and version won.
        let existing = repo::find_by_name(
            db.reader(),
            Some(t.tenant_id),
            &version.name,
            &version.version,
        )
        .await?
        .ok_or_else(|| AppError::internal(e))?;
        return same_or_conflict(existing, &version);
    }
    txn.commit().await?;
    runtime.remember(version.id, plugin);
    Ok(version)
}

fn too_large(bytes: usize, bytes_max: usize) -> AppError {
    AppError::validation(
        "wasmBase64",
        format!(
            "the component is about {bytes} bytes; the limit is {bytes_max} (plugins.component_bytes_max)"
        ),
    )
}

fn same_or_conflict(existing: PluginVersion, new: &PluginVersion) -> AppResult<PluginVersion> {
    if existing.digest == new.digest {
        return Ok(existing);
    }
    Err(AppError::Conflict(format!(
        "{} {} is already installed with different code; a version never changes: raise the \
         version in the plugin's metadata and install again",
        new.name, new.version
    )))
}

/// The version `id` if the caller's tenant may see it; another tenant's is NOT_FOUND.
async fn visible_version(
    db: &Db,
    t: TenantPrincipal,
    id: PluginVersionId,
) -> AppResult<PluginVersion> {
    repo::find_version(db.reader(), id)
        .await?
        .filter(|v| v.visible_to(t.tenant_id))
        .ok_or(AppError::not_found("plugin version"))
}

/// Runs the plugin's own config validation; its refusal becomes a VALIDATION error on
/// `config` with the plugin's message.
pub(crate) async fn check_config(
    db: &Db,
    runtime: &PluginRuntime,
    version: &PluginVersion,
    config: &str,
) -> AppResult<()> {
    let plugin = runtime.version(db, version.id).await?;
    match runtime.validate_config(&plugin, config.to_owned()).await? {
        Ok(_) => Ok(()),
        Err(f) => Err(match f.kind {
            FailureKind::BadConfig(message) => AppError::validation(
                "config",
                format!("{} refused this config: {message}", version.name),
            ),
            kind @ FailureKind::InputTooLarge { .. } => {
                AppError::validation("config", kind.to_string())
            }
            kind => AppError::Plugin(format!(
                "{} {} failed while checking its config ({}): {kind}",
                version.name,
                version.version,
                kind.code()
            )),
        }),
    }
}

/// Binds a plugin version for the caller's tenant with a config the plugin accepts.
pub async fn bind(
    db: &Db,
    runtime: &PluginRuntime,
    principal: &Principal,
    req: BindRequest,
    idempotency_key: Option<&str>,
    bindings_max: u32,
) -> AppResult<(Binding, PluginVersion)> {
    let t = principal.require_tenant(Access::Manage)?;
    let key = idempotency_key
        .map(|k| IdempotencyKey::new(t.tenant_id.to_string(), k, "bindPlugin", &req))
        .transpose()?;
    if let Some(k) = &key
        && let Some(id) = idempotency::lookup(db.reader(), k).await?
    {
        return stored_binding(db, t, &id).await;
    }
    check_priority(req.priority)?;
    let config = config_text(req.config.as_ref(), runtime.limits().config_bytes_max)?;
    let version = visible_version(db, t, req.plugin_version_id).await?;
    check_config(db, runtime, &version, &config).await?;

    let now = db.now();
    let binding = Binding {
        id: PluginBindingId::new(),
        tenant_id: t.tenant_id,
        plugin_version_id: version.id,
        config,
        priority: req.priority,
        enabled: req.enabled,
        created_at: now,
        updated_at: now,
        removed_at: None,
    };
    let txn = db.begin_write().await?;
    if let Some(k) = &key {
        // The key goes in first: a concurrent twin waits on it, then fails on the primary key
        // and answers with the winner's binding.
        if let Err(e) = idempotency::record(&txn, k, &binding.id.to_string()).await {
            drop(txn);
            if is_unique_violation(&e) {
                return match idempotency::lookup(db.reader(), k).await? {
                    Some(id) => stored_binding(db, t, &id).await,
                    None => Err(AppError::internal(e)),
                };
            }
            return Err(e.into());
        }
    }
    if repo::count_active_bindings(&txn, t.tenant_id).await? >= u64::from(bindings_max) {
        return Err(AppError::validation(
            "pluginVersionId",
            format!(
                "this tenant already has {bindings_max} plugin bindings (api.plugin_bindings_max); \
                 unbind one first"
            ),
        ));
    }
    repo::insert_binding(&txn, &binding).await?;
    txn.commit().await?;
    db.caches().forget_tenant(t.tenant_id);
    Ok((binding, version))
}

async fn stored_binding(
    db: &Db,
    t: TenantPrincipal,
    id: &str,
) -> AppResult<(Binding, PluginVersion)> {
    let id = uuid::Uuid::parse_str(id)
        .map(PluginBindingId)
        .map_err(|_| {
            AppError::internal(anyhow::anyhow!("idempotency record holds bad id {id:?}"))
        })?;
    let binding = repo::find_binding(db.reader(), t.tenant_id, id)
        .await?
        .ok_or(AppError::not_found("plugin binding"))?;
    let version = visible_version(db, t, binding.plugin_version_id).await?;
    Ok((binding, version))
}

/// Changes a binding's config, priority or switch. The same change twice leaves the same state.
pub async fn update_binding(
    db: &Db,
    runtime: &PluginRuntime,
    principal: &Principal,
    id: PluginBindingId,
    patch: BindingPatch,
) -> AppResult<(Binding, PluginVersion)> {
    let t = principal.require_tenant(Access::Manage)?;
    let current = repo::find_binding(db.reader(), t.tenant_id, id)
        .await?
        .filter(|b| b.removed_at.is_none())
        .ok_or(AppError::not_found("plugin binding"))?;
    let version = visible_version(db, t, current.plugin_version_id).await?;
    if let Some(p) = patch.priority {
        check_priority(p)?;
    }
    let config = match &patch.config {
        Some(c) => {
            let text = config_text(Some(c), runtime.limits().config_bytes_max)?;
            check_config(db, runtime, &version, &text).await?;
            Some(text)
        }
        None => None,
    };
    let txn = db.begin_write().await?;
    let mut binding = repo::lock_binding(&txn, t.tenant_id, id)
        .await?
        .filter(|b| b.removed_at.is_none())
        .ok_or(AppError::not_found("plugin binding"))?;
    if let Some(c) = config {
        binding.config = c;
    }
    if let Some(p) = patch.priority {
        binding.priority = p;
    }
    if let Some(e) = patch.enabled {
        binding.enabled = e;
    }
    binding.updated_at = db.now();
    repo::save_binding(&txn, &binding).await?;
    txn.commit().await?;
    db.caches().forget_tenant(t.tenant_id);
    Ok((binding, version))
}

/// Removes a binding. Unbinding a removed binding answers with it again.
pub async fn unbind(
    db: &Db,
    principal: &Principal,
    id: PluginBindingId,
) -> AppResult<(Binding, PluginVersion)> {
    let t = principal.require_tenant(Access::Manage)?;
    let txn = db.begin_write().await?;
    let mut binding = repo::lock_binding(&txn, t.tenant_id, id)
        .await?
        .ok_or(AppError::not_found("plugin binding"))?;
    if binding.removed_at.is_none() {
        let now = db.now();
        binding.removed_at = Some(now);
        binding.updated_at = now;
        repo::save_binding(&txn, &binding).await?;
    }
    txn.commit().await?;
    db.caches().forget_tenant(t.tenant_id);
    let version = visible_version(db, t, binding.plugin_version_id).await?;
    Ok((binding, version))
}

/// The versions the caller's tenant can bind: bundled ones first, then its own.
pub async fn versions(
    db: &Db,
    principal: &Principal,
    kind: Option<PluginKind>,
) -> AppResult<Vec<PluginVersion>> {
    let t = principal.require_tenant(Access::Read)?;
    repo::list_versions(db.reader(), t.tenant_id, kind).await
}

/// The caller's tenant's bindings that are not removed, in run order, with their versions.
pub async fn bindings(db: &Db, principal: &Principal) -> AppResult<Vec<(Binding, PluginVersion)>> {
    let t = principal.require_tenant(Access::Read)?;
    repo::bound_versions(db.reader(), t.tenant_id, None).await
}
