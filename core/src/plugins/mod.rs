//! Plugin registry: which plugin versions a tenant can use, and how it binds them.
//!
//! A **plugin version** is one immutable component (name, version, kind, code). Two sources:
//! the bundled first-party plugins (`plugins/*`, embedded in the binary and registered for every
//! tenant at start-up) and a tenant's own uploads, which only that tenant sees. A **binding** is
//! a tenant's use of a version: a JSON config the plugin itself has accepted, a priority (lower
//! runs first) and an on/off switch. Unbinding keeps the row (`removed_at`), so a retried
//! unbind answers the same and history can still name the binding.
//!
//! The sandbox itself is the `loyalty-plugin-host` crate; [`runtime::PluginRuntime`] keeps one
//! host per process and the loaded versions.
//!
//! Architecture invariant: this file has no I/O; `repo.rs` queries, `service.rs` decides.

pub mod repo;
pub mod runtime;
pub mod service;

use crate::error::{AppError, AppResult};
use crate::ids::{PluginBindingId, PluginVersionId, TenantId};
use chrono::{DateTime, Utc};
pub use loyalty_plugin_host::PluginKind;

/// Priorities run from `-PRIORITY_ABS_MAX` to `PRIORITY_ABS_MAX`; lower runs first.
pub const PRIORITY_ABS_MAX: i32 = 10_000;

/// A plugin version as the registry lists it (without its code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginVersion {
    pub id: PluginVersionId,
    /// `None` for a bundled first-party plugin, visible to every tenant.
    pub tenant_id: Option<TenantId>,
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub description: String,
    pub config_schema: String,
    pub config_example: String,
    /// SHA-256 of the component, lowercase hex.
    pub digest: String,
    pub size_bytes: i64,
    pub created_at: DateTime<Utc>,
}

impl PluginVersion {
    pub fn bundled(&self) -> bool {
        self.tenant_id.is_none()
    }

    /// True when `tenant` may see and bind this version.
    pub fn visible_to(&self, tenant: TenantId) -> bool {
        self.tenant_id.is_none_or(|owner| owner == tenant)
    }
}

/// A tenant's binding of a plugin version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub id: PluginBindingId,
    pub tenant_id: TenantId,
    pub plugin_version_id: PluginVersionId,
    /// The config as canonical JSON text (what the plugin receives).
    pub config: String,
    pub priority: i32,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
}

/// What `bindPlugin` asks for.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BindRequest {
    pub plugin_version_id: PluginVersionId,
    pub config: Option<serde_json::Value>,
    pub priority: i32,
    pub enabled: bool,
}

/// What `updatePluginBinding` changes; `None` keeps the current value.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct BindingPatch {
    pub config: Option<serde_json::Value>,
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
}

/// The config as canonical JSON text: an object (absent means `{}`), at most `bytes_max`.
pub fn config_text(config: Option<&serde_json::Value>, bytes_max: usize) -> AppResult<String> {
    let text = match config {
        None => "{}".to_string(),
        Some(value @ serde_json::Value::Object(_)) => value.to_string(),
        Some(_) => {
            return Err(AppError::validation(
                "config",
                "config must be a JSON object (see the plugin's configExample)",
            ));
        }
    };
    if text.len() > bytes_max {
        return Err(AppError::validation(
            "config",
            format!(
                "config is {} bytes; the limit is {bytes_max} (plugins.config_bytes_max)",
                text.len()
            ),
        ));
    }
    Ok(text)
}

pub fn check_priority(priority: i32) -> AppResult<()> {
    if priority.unsigned_abs() > PRIORITY_ABS_MAX.unsigned_abs() {
        return Err(AppError::validation(
            "priority",
            format!("priority must be between -{PRIORITY_ABS_MAX} and {PRIORITY_ABS_MAX}"),
        ));
    }
    Ok(())
}

/// The order in which a tenant's bindings run: priority, then the older binding first.
pub fn run_order(bindings: &mut [Binding]) {
    bindings.sort_by_key(|b| (b.priority, b.created_at, b.id.0));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_must_be_a_small_object() {
        assert_eq!(config_text(None, 10).expect("absent"), "{}");
        assert_eq!(
            config_text(Some(&json!({"a": 1})), 100).expect("object"),
            r#"{"a":1}"#
        );
        for bad in [json!([1]), json!("x"), json!(3)] {
            let err = config_text(Some(&bad), 100).expect_err("not an object");
            assert_eq!(err.code(), "VALIDATION");
        }
        let big = json!({"k": "x".repeat(100)});
        assert_eq!(
            config_text(Some(&big), 50).expect_err("too big").code(),
            "VALIDATION"
        );
    }

    #[test]
    fn priority_is_bounded() {
        assert!(check_priority(0).is_ok());
        assert!(check_priority(PRIORITY_ABS_MAX).is_ok());
        assert!(check_priority(-PRIORITY_ABS_MAX).is_ok());
        assert!(check_priority(PRIORITY_ABS_MAX + 1).is_err());
        assert!(check_priority(i32::MIN).is_err());
    }

    #[test]
    fn bindings_run_by_priority_then_age() {
        let at = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).expect("time");
        let binding = |priority, created| Binding {
            id: PluginBindingId::new(),
            tenant_id: TenantId::new(),
            plugin_version_id: PluginVersionId::new(),
            config: "{}".into(),
            priority,
            enabled: true,
            created_at: at(created),
            updated_at: at(created),
            removed_at: None,
        };
        let mut list = vec![binding(5, 1), binding(-1, 9), binding(5, 0)];
        run_order(&mut list);
        let order: Vec<_> = list
            .iter()
            .map(|b| (b.priority, b.created_at.timestamp()))
            .collect();
        assert_eq!(order, vec![(-1, 9), (5, 0), (5, 1)]);
    }
}
