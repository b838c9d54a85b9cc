//! Club templates: a ready-made club in one `createTenant(input: {template})`.
//!
//! A template is a list of first-party (bundled) plugins with their configs. Creating a tenant
//! from it binds them in the same transaction as the tenant row, after each plugin accepted its
//! config, so a tenant never exists half set up. Templates are data in the binary: they change
//! with the first-party plugins they name.

use crate::auth::Principal;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::ids::{PluginBindingId, TenantId};
use crate::plugins::runtime::PluginRuntime;
use crate::plugins::{
    self, Binding, PluginVersion, repo as plugin_repo, service as plugin_service,
};
use crate::tenants::{self, NewTenant, Tenant};
use crate::tiers::{Downgrade, LadderRequest, Metric, TierDef, Window};
use serde_json::{Value, json};

/// One plugin of a template: a bundled plugin's name and its config.
#[derive(Clone, Debug)]
pub struct TemplatePlugin {
    pub name: &'static str,
    pub config: Value,
}

/// A reward of a template's catalogue, priced and described by a bundled reward type.
#[derive(Clone, Debug)]
pub struct TemplateReward {
    pub name: &'static str,
    pub description: &'static str,
    pub points_cost: i64,
    pub plugin: &'static str,
    pub config: Value,
}

/// A ready-made club.
#[derive(Clone, Debug)]
pub struct ClubTemplate {
    pub slug: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// In run order: the first has priority 0, the next 10, and so on.
    pub plugins: Vec<TemplatePlugin>,
    /// The starting catalogue.
    pub rewards: Vec<TemplateReward>,
    /// The tier ladder, if the club has tiers.
    pub tiers: Option<crate::tiers::LadderRequest>,
}

fn tier(name: &str, threshold: Option<i64>, multiplier_bp: u32, benefits: &[&str]) -> TierDef {
    TierDef {
        name: name.into(),
        threshold,
        benefits: benefits.iter().map(|b| (*b).to_string()).collect(),
        multiplier_bp,
    }
}

/// A config string replaced by the new tenant's currency.
const CURRENCY: &str = "{currency}";

/// `config` with every `"{currency}"` string replaced by `currency`.
fn with_currency(config: &Value, currency: &str) -> Value {
    match config {
        Value::String(s) if s == CURRENCY => Value::String(currency.into()),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| with_currency(v, currency)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), with_currency(v, currency)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn plugin(name: &'static str, config: Value) -> TemplatePlugin {
    TemplatePlugin { name, config }
}

/// Every template, in the order `clubTemplates` lists them.
pub fn all() -> Vec<ClubTemplate> {
    vec![
        ClubTemplate {
            slug: "coffee-stars",
            name: "Coffee Stars",
            description: "A café club: one star per currency unit spent, a welcome gift of 25 \
                          stars, 50 on the member's birthday, 10 per review (3 a month), 50 \
                          for installing the app, and 100 for bringing a friend (50 for the \
                          friend) whose first order of 5.00 or more comes within 60 days.",
            plugins: vec![
                plugin(
                    "base-rate",
                    json!({"points_per_unit": 1, "unit_minor": 100, "rounding": "floor"}),
                ),
                plugin("welcome-bonus", json!({"points": 25})),
                plugin(
                    "birthday-bonus",
                    json!({"points": 50, "expiry_days": 30, "min_member_days": 7}),
                ),
                plugin(
                    "event-bonus",
                    json!({"events": [
                        {"type": "review.written", "points": 10,
                         "cap": {"per": "month", "max": 3}},
                        {"type": "app.installed", "points": 50, "cap": {"per": "ever", "max": 1}}
                    ]}),
                ),
                plugin(
                    "double-sided",
                    json!({"referrer_points": 100, "referee_points": 50,
                           "min_order_minor": 500, "within_days": 60}),
                ),
            ],
            rewards: vec![TemplateReward {
                name: "Free drink",
                description: "Any handcrafted drink, any size, on the house.",
                points_cost: 150,
                plugin: "free-product",
                config: json!({"sku": "DRINK-ANY", "quantity": 1, "max_quantity": 2}),
            }],
            tiers: None,
        },
        ClubTemplate {
            slug: "fashion-tiers",
            name: "Fashion Tiers",
            description: "A fashion retailer's club: one point per currency unit, more for \
                          members in higher tiers (bronze, silver from 500.00 and gold from \
                          1,500.00 spent over the last 12 months, and VIP by invitation), a \
                          bonus for large baskets, 100 points to start and 250 on the \
                          birthday.",
            plugins: vec![
                plugin(
                    "base-rate",
                    json!({"points_per_unit": 1, "unit_minor": 100, "rounding": "floor"}),
                ),
                plugin(
                    "tier-multiplier",
                    json!({"points_per_unit": 1, "unit_minor": 100, "max_multiplier_bp": 30000}),
                ),
                plugin(
                    "spend-threshold-bonus",
                    json!({"basis": "total", "thresholds": [
                        {"min_spend_minor": 15000, "points": 150},
                        {"min_spend_minor": 30000, "points": 400}
                    ]}),
                ),
                plugin("welcome-bonus", json!({"points": 100})),
                plugin("birthday-bonus", json!({"points": 250, "expiry_days": 60})),
            ],
            rewards: vec![
                TemplateReward {
                    name: "10.00 off",
                    description: "10.00 off an order of 50.00 or more.",
                    points_cost: 500,
                    plugin: "fixed-discount",
                    config: json!({"amount_minor": 1000, "currency": CURRENCY,
                                   "min_cart_total_minor": 5000}),
                },
                TemplateReward {
                    name: "Free shipping",
                    description: "Free delivery on your next online order.",
                    points_cost: 200,
                    plugin: "free-shipping",
                    config: json!({}),
                },
            ],
            // Spend in minor units over the current month and the 11 before it; a member
            // who falls short keeps the tier 30 days past the month's end, then goes down
            // one step.
            tiers: Some(LadderRequest {
                metric: Metric::Spend,
                window: Window::RollingMonths(12),
                downgrade: Downgrade {
                    grace_days: 30,
                    steps_max: 1,
                },
                tiers: vec![
                    tier("bronze", Some(0), 10_000, &["1 point per 1.00 spent"]),
                    tier(
                        "silver",
                        Some(50_000),
                        12_500,
                        &["1.25 points per 1.00 spent", "Free shipping on every order"],
                    ),
                    tier(
                        "gold",
                        Some(150_000),
                        15_000,
                        &[
                            "1.5 points per 1.00 spent",
                            "Free shipping and returns",
                            "Early access to sales",
                        ],
                    ),
                    tier(
                        "vip",
                        None,
                        20_000,
                        &[
                            "2 points per 1.00 spent",
                            "A personal stylist",
                            "Invitations to private events",
                        ],
                    ),
                ],
            }),
        },
    ]
}

pub fn find(slug: &str) -> AppResult<ClubTemplate> {
    all().into_iter().find(|t| t.slug == slug).ok_or_else(|| {
        let known: Vec<_> = all().iter().map(|t| t.slug).collect();
        AppError::validation(
            "template",
            format!(
                "unknown club template {slug:?}; known: {}",
                known.join(", ")
            ),
        )
    })
}

/// The newest bundled version of `name`.
async fn bundled_version(db: &Db, name: &str) -> AppResult<PluginVersion> {
    // A tenant id that owns nothing lists exactly the bundled versions.
    plugin_repo::list_versions(db.reader(), TenantId(uuid::Uuid::nil()), None)
        .await?
        .into_iter()
        .filter(|v| v.bundled() && v.name == name)
        .max_by(|a, b| a.created_at.cmp(&b.created_at))
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "template plugin {name:?} is not bundled in this binary"
            ))
        })
}

/// Creates a tenant with the template's plugins bound (platform key).
pub async fn create_tenant(
    db: &Db,
    runtime: &PluginRuntime,
    principal: &Principal,
    new: NewTenant,
    template: &str,
) -> AppResult<Tenant> {
    principal.require_platform()?;
    let template = find(template)?;
    let id = TenantId::new();
    let now = db.now();
    let mut bindings = Vec::with_capacity(template.plugins.len());
    for (i, p) in template.plugins.iter().enumerate() {
        let version = bundled_version(db, p.name).await?;
        let config = plugins::config_text(
            Some(&with_currency(&p.config, &new.currency)),
            runtime.limits().config_bytes_max,
        )?;
        plugin_service::check_config(db, runtime, &version, &config).await?;
        bindings.push(Binding {
            id: PluginBindingId::new(),
            tenant_id: id,
            plugin_version_id: version.id,
            config,
            priority: i32::try_from(i * 10).unwrap_or(plugins::PRIORITY_ABS_MAX),
            enabled: true,
            created_at: now,
            updated_at: now,
            removed_at: None,
        });
    }
    let mut rewards = Vec::with_capacity(template.rewards.len());
    for r in &template.rewards {
        let version = bundled_version(db, r.plugin).await?;
        let config = plugins::config_text(
            Some(&with_currency(&r.config, &new.currency)),
            runtime.limits().config_bytes_max,
        )?;
        plugin_service::check_config(db, runtime, &version, &config).await?;
        rewards.push(crate::rewards::Reward {
            id: uuid::Uuid::now_v7(),
            tenant_id: id,
            name: r.name.into(),
            description: Some(r.description.into()),
            image_url: None,
            points_cost: r.points_cost,
            plugin_version_id: version.id,
            config,
            stock: None,
            per_member_limit: None,
            valid_from: None,
            valid_until: None,
            min_tier: None,
            active: true,
            code_valid_days: crate::rewards::CODE_VALID_DAYS_DEFAULT,
            created_at: now,
            updated_at: now,
        });
    }
    let ladder = template
        .tiers
        .map(|l| crate::tiers::service::new_ladder(id, 1, l, u32::MAX as usize, now))
        .transpose()?;
    let txn = db.begin_write().await?;
    let tenant = tenants::service::create_in(&txn, id, &new).await?;
    if let Some(l) = &ladder {
        crate::tiers::repo::insert_ladder(&txn, l).await?;
    }
    for b in &bindings {
        plugin_repo::insert_binding(&txn, b).await?;
    }
    for r in &rewards {
        crate::rewards::repo::insert_reward(&txn, r).await?;
    }
    txn.commit().await?;
    Ok(tenant)
}
