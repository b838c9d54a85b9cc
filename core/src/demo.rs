//! The demo club that `loyalty serve --demo` sets up, so a new user has something to query.

use crate::AppState;
use crate::auth::{self, Principal, Role};
use crate::members::{self, Consents, EnrollRequest, MemberLimits};
use crate::tenants::{self, Branding, NewTenant};
use std::net::SocketAddr;

pub const DEMO_SLUG: &str = "demo-coffee";
/// The club template the demo tenant is made from.
pub const DEMO_TEMPLATE: &str = "coffee-stars";
const DEMO_KEY_NAME: &str = "demo console";

/// The request the demo prints: a purchase by the demo member, with the awards and balance.
pub const DEMO_PURCHASE: &str = "mutation { recordPurchase(input: {orderId: \"demo-order-1\", \
    externalId: \"demo-ann\", currency: \"EUR\", total: 1250, channel: STORE, lines: [\
    {sku: \"LATTE\", category: \"coffee\", quantity: 2, unitPrice: 425}, \
    {sku: \"CROISSANT\", category: \"bakery\", quantity: 1, unitPrice: 400}]}) { \
    awards { points reason plugin } member { balance { available pending } } replayed } }";

/// Creates the demo tenant and a member when missing, issues a fresh ADMIN key (revoking the
/// previous demo key), and prints how to use it.
pub async fn ensure_demo(app: &AppState, addr: SocketAddr) -> anyhow::Result<()> {
    let platform = Principal::Platform;
    let tenant = match tenants::service::find_by_slug(&app.db, DEMO_SLUG).await? {
        Some(t) => t,
        None => {
            crate::templates::create_tenant(
                &app.db,
                &app.plugins,
                &platform,
                NewTenant {
                    slug: DEMO_SLUG.into(),
                    name: "Demo Coffee Club".into(),
                    timezone: chrono_tz::Europe::Amsterdam,
                    points_name: "stars".into(),
                    currency: "EUR".into(),
                    branding: Branding {
                        primary_color: Some("#00704a".into()),
                        logo_url: None,
                    },
                },
                DEMO_TEMPLATE,
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
    let limits = MemberLimits::from_api(&app.settings.api);
    members::service::enroll(
        &app.db,
        &app.plugins,
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

    let body = serde_json::json!({ "query": DEMO_PURCHASE }).to_string();
    println!(
        "Demo club:    {} ({}, from the {DEMO_TEMPLATE} template)",
        tenant.name, tenant.slug
    );
    println!("Demo key:     {secret}\n              (ADMIN; a new one on every --demo start)");
    println!(
        "Record a purchase for the demo member and see the stars (run it twice: the same \
         order never earns twice):\n  curl -s http://{addr}/graphql -H 'Authorization: Bearer {secret}' \
         -H 'Content-Type: application/json' -d '{body}'"
    );
    Ok(())
}
