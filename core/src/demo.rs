//! The demo club that `loyalty serve --demo` sets up, so a new user has something to query.

use crate::AppState;
use crate::auth::{self, Principal, Role};
use crate::members::{self, Consents, EnrollRequest, MemberLimits};
use crate::tenants::{self, Branding, NewTenant};
use std::net::SocketAddr;

pub const DEMO_SLUG: &str = "demo-coffee";
const DEMO_KEY_NAME: &str = "demo console";

/// Creates the demo tenant and a member when missing, issues a fresh ADMIN key (revoking the
/// previous demo key), and prints how to use it.
pub async fn ensure_demo(app: &AppState, addr: SocketAddr) -> anyhow::Result<()> {
    let platform = Principal::Platform;
    let tenant = match tenants::service::find_by_slug(&app.db, DEMO_SLUG).await? {
        Some(t) => t,
        None => {
            tenants::service::create(
                &app.db,
                &platform,
                NewTenant {
                    slug: DEMO_SLUG.into(),
                    name: "Demo Coffee Club".into(),
                    timezone: chrono_tz::Europe::Amsterdam,
                    points_name: "stars".into(),
                    branding: Branding {
                        primary_color: Some("#00704a".into()),
                        logo_url: None,
                    },
                },
            )
            .await?
        }
    };
    for old in auth::service::list_api_keys(&app.db, &platform, tenant.id).await? {
        if old.name == DEMO_KEY_NAME && old.revoked_at.is_none() {
            auth::service::revoke_api_key(&app.db, &platform, old.id).await?;
        }
    }
    let (_, secret) =
        auth::service::create_api_key(&app.db, &platform, tenant.id, Role::Admin, DEMO_KEY_NAME)
            .await?;
    let admin = auth::service::authenticate(&app.db, &app.platform_key_hash, &secret).await?;
    let limits = MemberLimits {
        attributes_bytes_max: app.settings.api.member_attributes_bytes_max,
        tags_max: app.settings.api.member_tags_max,
    };
    members::service::enroll(
        &app.db,
        &admin,
        EnrollRequest {
            external_id: "demo-ann".into(),
            email: Some("ann@example.com".into()),
            first_name: Some("Ann".into()),
            tags: vec!["demo".into()],
            consents: Consents {
                email: true,
                sms: false,
            },
            ..Default::default()
        },
        Some("demo-ann"),
        limits,
    )
    .await?;

    let query = r#"{"query":"{ memberByExternalId(externalId: \"demo-ann\") { id firstName email tags enrolledAt } }"}"#;
    println!("Demo club:    {} ({})", tenant.name, tenant.slug);
    println!("Demo key:     {secret}\n              (ADMIN; a new one on every --demo start)");
    println!(
        "Try it:\n  curl -s http://{addr}/graphql -H 'Authorization: Bearer {secret}' -H 'Content-Type: application/json' -d '{query}'"
    );
    Ok(())
}
