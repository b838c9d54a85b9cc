//! Authentication and authorization: API keys, roles, and who may do what.
//!
//! Two kinds of key. The **platform key** belongs to the agency that runs the server and
//! manages tenants. **Tenant keys** (`lk_<key id>_<secret>`) belong to one tenant and carry a
//! role. Secrets are 40 random alphanumerics (238 bits), so a plain SHA-256 is a sound hash:
//! there is nothing to brute-force that a slow hash would protect. Hashes are compared in
//! constant time. A key's id is part of the token, so a lookup is one primary-key read.
//!
//! Architecture invariant: this module does no I/O; `repo.rs` and `service.rs` do.

pub mod repo;
pub mod service;

use crate::error::{AppError, AppResult};
use crate::ids::{ApiKeyId, TenantId};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a tenant key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything within the tenant, including keys, plugins and the catalogue.
    Admin,
    /// Day-to-day writes from shops, POS and CRMs: members, purchases, points.
    Integration,
    /// Reads only.
    ReadOnly,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Integration => "INTEGRATION",
            Role::ReadOnly => "READ_ONLY",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ADMIN" => Some(Role::Admin),
            "INTEGRATION" => Some(Role::Integration),
            "READ_ONLY" => Some(Role::ReadOnly),
            _ => None,
        }
    }
}

/// The kind of access an operation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Any role.
    Read,
    /// ADMIN or INTEGRATION.
    Write,
    /// ADMIN only: keys, plugins, catalogue, tiers.
    Manage,
}

/// A caller acting for one tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantPrincipal {
    pub tenant_id: TenantId,
    pub key_id: ApiKeyId,
    pub role: Role,
}

/// Who is calling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    Platform,
    Tenant(TenantPrincipal),
}

impl Principal {
    /// The operation is the agency's (tenants): only the platform key may call it.
    pub fn require_platform(&self) -> AppResult<()> {
        match self {
            Principal::Platform => Ok(()),
            Principal::Tenant(_) => Err(AppError::forbidden(
                "this operation needs the platform key; tenant keys cannot manage tenants",
            )),
        }
    }

    /// The operation acts inside one tenant with the given access.
    pub fn require_tenant(&self, access: Access) -> AppResult<TenantPrincipal> {
        let Principal::Tenant(t) = self else {
            return Err(AppError::forbidden(
                "this operation acts inside a tenant: use a tenant API key (createApiKey)",
            ));
        };
        let allowed = match access {
            Access::Read => true,
            Access::Write => matches!(t.role, Role::Admin | Role::Integration),
            Access::Manage => t.role == Role::Admin,
        };
        if allowed {
            Ok(*t)
        } else {
            Err(AppError::forbidden(format!(
                "a {} key cannot do this; it needs {}",
                t.role.as_str(),
                match access {
                    Access::Manage => "an ADMIN key",
                    _ => "an ADMIN or INTEGRATION key",
                }
            )))
        }
    }

    /// Key management: the platform key for any tenant, or an ADMIN key for its own tenant.
    /// Another tenant's id is NOT_FOUND, never a hint that it exists.
    pub fn require_key_manager(&self, tenant: TenantId) -> AppResult<()> {
        match self {
            Principal::Platform => Ok(()),
            Principal::Tenant(_) => {
                let t = self.require_tenant(Access::Manage)?;
                if t.tenant_id == tenant {
                    Ok(())
                } else {
                    Err(AppError::not_found("tenant"))
                }
            }
        }
    }
}

/// Length of the random part of every secret.
pub const SECRET_LEN: usize = 40;
const PLATFORM_PREFIX: &str = "lp_";
const TENANT_PREFIX: &str = "lk_";

fn random_secret() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(SECRET_LEN)
        .map(char::from)
        .collect()
}

/// What authentication needs of a stored tenant key (cached by [`crate::cache::Caches`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub tenant_id: crate::ids::TenantId,
    pub role: Role,
    pub secret_hash: String,
    pub revoked: bool,
}

/// A new platform key, `lp_<secret>`.
pub fn new_platform_key() -> String {
    format!("{PLATFORM_PREFIX}{}", random_secret())
}

/// A new tenant key for the given id, `lk_<id as 32 hex>_<secret>`.
pub fn new_tenant_key(id: ApiKeyId) -> String {
    format!("{TENANT_PREFIX}{}_{}", id.0.simple(), random_secret())
}

/// What a bearer token claims to be, before it is checked against the database.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenKind {
    Platform,
    Tenant(ApiKeyId),
}

/// Reads the shape of a token; `None` for anything that is not one of ours.
pub fn parse_token(token: &str) -> Option<TokenKind> {
    if let Some(secret) = token.strip_prefix(PLATFORM_PREFIX) {
        return (!secret.is_empty()).then_some(TokenKind::Platform);
    }
    let rest = token.strip_prefix(TENANT_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != 32 || secret.len() != SECRET_LEN {
        return None;
    }
    ApiKeyId::parse(id).map(TokenKind::Tenant)
}

/// SHA-256 of a token, hex encoded: what is stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time comparison of two stored-form hashes.
pub fn hashes_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_tokens_round_trip_and_garbage_is_refused() {
        let id = ApiKeyId::new();
        let token = new_tenant_key(id);
        assert_eq!(parse_token(&token), Some(TokenKind::Tenant(id)));
        assert_eq!(parse_token(&new_platform_key()), Some(TokenKind::Platform));
        for bad in [
            "",
            "lk_",
            "lk_abc_def",
            "Bearer x",
            "lp_",
            &token[..token.len() - 1],
        ] {
            assert_eq!(parse_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn hashes_compare_by_value() {
        let h = hash_token("lp_abc");
        assert!(hashes_match(&h, &hash_token("lp_abc")));
        assert!(!hashes_match(&h, &hash_token("lp_abd")));
        assert!(!hashes_match(&h, "short"));
    }

    #[test]
    fn roles_gate_access() {
        let t = |role| {
            Principal::Tenant(TenantPrincipal {
                tenant_id: TenantId::new(),
                key_id: ApiKeyId::new(),
                role,
            })
        };
        assert!(t(Role::ReadOnly).require_tenant(Access::Read).is_ok());
        assert!(t(Role::ReadOnly).require_tenant(Access::Write).is_err());
        assert!(t(Role::Integration).require_tenant(Access::Write).is_ok());
        assert!(t(Role::Integration).require_tenant(Access::Manage).is_err());
        assert!(t(Role::Admin).require_tenant(Access::Manage).is_ok());
        assert!(t(Role::Admin).require_platform().is_err());
        assert!(Principal::Platform.require_tenant(Access::Read).is_err());
        let admin = t(Role::Admin);
        assert_eq!(
            admin
                .require_key_manager(TenantId::new())
                .map_err(|e| e.code()),
            Err("NOT_FOUND")
        );
    }
}
