//! Tenants and API keys.

use super::{patch, principal, state};
use crate::auth::{self, Role};
use crate::error::AppError;
use crate::ids::{ApiKeyId, TenantId};
use crate::pagination::{PageRequest, encode_cursor};
use crate::tenants::{self, Branding, NewTenant, Tenant, TenantPatch};
use crate::validate::{self, Patch};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

pub(super) fn parse_tenant_id(id: &ID) -> Result<TenantId, AppError> {
    TenantId::parse(id).ok_or_else(|| AppError::validation("tenantId", "not a tenant id"))
}

pub(crate) struct TenantObject(pub(crate) Tenant);

#[Object(name = "Tenant")]
impl TenantObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// IANA time zone: every calendar rule of this club (birthdays, periods, expiry) uses it.
    async fn timezone(&self) -> &str {
        self.0.timezone.name()
    }
    /// What this brand calls its points ("stars", "beans").
    async fn points_name(&self) -> &str {
        &self.0.points_name
    }
    /// ISO 4217 code of the programme: purchases must use it.
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    async fn branding(&self) -> BrandingObject {
        BrandingObject {
            primary_color: self.0.branding.primary_color.clone(),
            logo_url: self.0.branding.logo_url.clone(),
        }
    }
    /// When points expire and what returns do to spent points.
    async fn points_policy(&self) -> super::ledger::PolicyObject {
        self.0.points_policy.into()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Branding")]
struct BrandingObject {
    primary_color: Option<String>,
    logo_url: Option<String>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ApiKeyRole")]
enum RoleEnum {
    /// Everything within the tenant, including keys, plugins and the catalogue.
    Admin,
    /// Day-to-day writes from shops, POS and CRMs; no keys, plugins or catalogue.
    Integration,
    /// Reads only.
    ReadOnly,
}

impl From<RoleEnum> for Role {
    fn from(r: RoleEnum) -> Self {
        match r {
            RoleEnum::Admin => Role::Admin,
            RoleEnum::Integration => Role::Integration,
            RoleEnum::ReadOnly => Role::ReadOnly,
        }
    }
}

impl From<Role> for RoleEnum {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => RoleEnum::Admin,
            Role::Integration => RoleEnum::Integration,
            Role::ReadOnly => RoleEnum::ReadOnly,
        }
    }
}

struct ApiKeyObject(auth::service::ApiKey);

#[Object(name = "ApiKey")]
impl ApiKeyObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn tenant_id(&self) -> ID {
        ID(self.0.tenant_id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn role(&self) -> RoleEnum {
        self.0.role.into()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}

#[derive(InputObject)]
struct BrandingInput {
    /// `#RRGGBB`.
    primary_color: Option<String>,
    /// Absolute http(s) URL.
    logo_url: Option<String>,
}

#[derive(InputObject)]
struct CreateTenantInput {
    /// 3 to 64 lower-case letters, digits and dashes; permanent.
    slug: String,
    name: String,
    /// IANA time zone name, e.g. `Europe/Amsterdam`.
    timezone: String,
    /// Defaults to "points".
    points_name: Option<String>,
    /// ISO 4217 code of the programme's purchases and spend; defaults to "EUR". Permanent.
    currency: Option<String>,
    branding: Option<BrandingInput>,
    /// A club template's slug (see `clubTemplates`): its plugins are bound and configured.
    template: Option<String>,
}

#[derive(SimpleObject)]
struct CreateTenantPayload {
    tenant: TenantObject,
}

#[derive(InputObject)]
struct BrandingPatchInput {
    /// Absent: unchanged; null: removed.
    primary_color: MaybeUndefined<String>,
    /// Absent: unchanged; null: removed.
    logo_url: MaybeUndefined<String>,
}

#[derive(InputObject)]
struct UpdateTenantInput {
    id: ID,
    name: Option<String>,
    timezone: Option<String>,
    points_name: Option<String>,
    branding: Option<BrandingPatchInput>,
}

#[derive(SimpleObject)]
struct UpdateTenantPayload {
    tenant: TenantObject,
}

#[derive(InputObject)]
struct CreateApiKeyInput {
    tenant_id: ID,
    role: RoleEnum,
    /// What the key is for ("POS Amsterdam"), to recognise it when revoking.
    name: String,
}

#[derive(SimpleObject)]
struct CreateApiKeyPayload {
    /// The bearer token. Shown once: only its hash is stored.
    secret: String,
    api_key: ApiKeyObject,
}

#[derive(InputObject)]
struct RevokeApiKeyInput {
    id: ID,
}

#[derive(SimpleObject)]
struct RevokeApiKeyPayload {
    api_key: ApiKeyObject,
}

#[derive(Default)]
pub(super) struct TenantQuery;

#[Object]
impl TenantQuery {
    /// Every tenant (platform key).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn tenants(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, TenantObject>> {
        let st = state(ctx);
        let page = PageRequest::new(first, after.as_deref(), &st.settings.api)?;
        let p = principal(ctx)?;
        let result = tenants::service::list(&st.db, &p, page).await?;
        let mut conn = Connection::new(page.after.is_some(), result.has_next_page);
        conn.edges.extend(
            result
                .items
                .into_iter()
                .map(|t| Edge::new(encode_cursor(t.id.0), TenantObject(t))),
        );
        Ok(conn)
    }

    /// One tenant: any with the platform key; a tenant key sees its own (id optional).
    async fn tenant(&self, ctx: &Context<'_>, id: Option<ID>) -> Result<TenantObject> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let id = match (id, p) {
            (Some(id), _) => parse_tenant_id(&id)?,
            (None, auth::Principal::Tenant(t)) => t.tenant_id,
            (None, auth::Principal::Platform) => {
                return Err(
                    AppError::validation("id", "id is required with the platform key").into(),
                );
            }
        };
        Ok(TenantObject(
            tenants::service::get_visible(&st.db, &p, id).await?,
        ))
    }

    /// The keys of a tenant, without secrets (platform key, or the tenant's ADMIN key).
    async fn api_keys(&self, ctx: &Context<'_>, tenant_id: ID) -> Result<Vec<ApiKeyObject>> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let tenant = parse_tenant_id(&tenant_id)?;
        let keys = auth::service::list_api_keys(&st.db, &p, tenant).await?;
        Ok(keys.into_iter().map(ApiKeyObject).collect())
    }
}

#[derive(Default)]
pub(super) struct TenantMutation;

#[Object]
impl TenantMutation {
    /// Creates a brand (platform key).
    async fn create_tenant(
        &self,
        ctx: &Context<'_>,
        input: CreateTenantInput,
    ) -> Result<CreateTenantPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        p.require_platform()?;
        let branding = input.branding.unwrap_or(BrandingInput {
            primary_color: None,
            logo_url: None,
        });
        let new = NewTenant {
            slug: tenants::slug(&input.slug)?,
            name: tenants::tenant_name(&input.name)?,
            timezone: validate::timezone("timezone", &input.timezone)?,
            points_name: tenants::points_name(
                input
                    .points_name
                    .as_deref()
                    .unwrap_or(tenants::DEFAULT_POINTS_NAME),
            )?,
            currency: tenants::currency(
                input
                    .currency
                    .as_deref()
                    .unwrap_or(tenants::DEFAULT_CURRENCY),
            )?,
            branding: Branding {
                primary_color: branding
                    .primary_color
                    .as_deref()
                    .map(|c| validate::color("branding.primaryColor", c))
                    .transpose()?,
                logo_url: branding
                    .logo_url
                    .as_deref()
                    .map(|u| validate::url("branding.logoUrl", u))
                    .transpose()?,
            },
        };
        let tenant = match input.template.as_deref() {
            Some(template) => {
                crate::templates::create_tenant(&st.db, &st.plugins, &p, new, template).await?
            }
            None => tenants::service::create(&st.db, &p, new).await?,
        };
        Ok(CreateTenantPayload {
            tenant: TenantObject(tenant),
        })
    }

    /// Changes a brand's name, time zone, points name or branding (platform key).
    async fn update_tenant(
        &self,
        ctx: &Context<'_>,
        input: UpdateTenantInput,
    ) -> Result<UpdateTenantPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        p.require_platform()?;
        let id = TenantId::parse(&input.id).ok_or_else(|| AppError::not_found("tenant"))?;
        let (color, logo) = match input.branding {
            Some(b) => (patch(b.primary_color), patch(b.logo_url)),
            None => (Patch::Keep, Patch::Keep),
        };
        let patch = TenantPatch {
            name: input
                .name
                .as_deref()
                .map(tenants::tenant_name)
                .transpose()?,
            timezone: input
                .timezone
                .as_deref()
                .map(|t| validate::timezone("timezone", t))
                .transpose()?,
            points_name: input
                .points_name
                .as_deref()
                .map(tenants::points_name)
                .transpose()?,
            primary_color: color.try_map(|c| validate::color("branding.primaryColor", &c))?,
            logo_url: logo.try_map(|u| validate::url("branding.logoUrl", &u))?,
        };
        let tenant = tenants::service::update(&st.db, &p, id, patch).await?;
        Ok(UpdateTenantPayload {
            tenant: TenantObject(tenant),
        })
    }

    /// Issues an API key for a tenant (platform key, or the tenant's ADMIN key).
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> Result<CreateApiKeyPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let tenant =
            TenantId::parse(&input.tenant_id).ok_or_else(|| AppError::not_found("tenant"))?;
        let (key, secret) =
            auth::service::create_api_key(&st.db, &p, tenant, input.role.into(), &input.name)
                .await?;
        Ok(CreateApiKeyPayload {
            secret,
            api_key: ApiKeyObject(key),
        })
    }

    /// Revokes a key at once; requests with it fail with UNAUTHENTICATED from then on.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiKeyInput,
    ) -> Result<RevokeApiKeyPayload> {
        let st = state(ctx);
        let p = principal(ctx)?;
        let id = ApiKeyId::parse(&input.id).ok_or_else(|| AppError::not_found("API key"))?;
        let key = auth::service::revoke_api_key(&st.db, &p, id).await?;
        Ok(RevokeApiKeyPayload {
            api_key: ApiKeyObject(key),
        })
    }
}
