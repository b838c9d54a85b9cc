//! Bindings of `loyalty:plugin@1.0.0` and the conversions to and from the SDK's
//! plain types.
//!
//! One host world includes the three plugin worlds, so the shared `types`
//! interface is generated once and each conversion is written once. A future
//! `loyalty:plugin@2.0.0` gets its own world and module beside this one, with
//! `From` impls that bring its types up to the latest SDK types.
//!
//! Inputs convert SDK -> WIT (by reference: the caller keeps its input), outputs
//! WIT -> SDK.

use loyalty_sdk as sdk;

mod generated {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit/v1",
        inline: "
            package loyalty:host;

            world plugins-v1 {
                include loyalty:plugin/point-rule@1.0.0;
                include loyalty:plugin/reward-type@1.0.0;
                include loyalty:plugin/referral-scheme@1.0.0;
            }
        ",
        world: "loyalty:host/plugins-v1",
    });
}

use generated::exports::loyalty::plugin::types as wit;
pub(crate) use generated::exports::loyalty::plugin::{
    point_rule_api, referral_scheme_api, reward_type_api,
};

// ---- inputs: SDK -> WIT --------------------------------------------------------

impl From<&sdk::Money> for wit::Money {
    fn from(v: &sdk::Money) -> Self {
        Self {
            amount_minor: v.amount_minor,
            currency: v.currency.clone(),
        }
    }
}

impl From<&sdk::PurchaseLine> for wit::PurchaseLine {
    fn from(v: &sdk::PurchaseLine) -> Self {
        Self {
            line_index: v.line_index,
            sku: v.sku.clone(),
            category: v.category.clone(),
            quantity: v.quantity,
            unit_price_minor: v.unit_price_minor,
        }
    }
}

fn lines(lines: &[sdk::PurchaseLine]) -> Vec<wit::PurchaseLine> {
    lines.iter().map(Into::into).collect()
}

impl From<&sdk::MemberEvent> for wit::MemberEvent {
    fn from(v: &sdk::MemberEvent) -> Self {
        let kind = match &v.kind {
            sdk::EventKind::Purchase(p) => wit::EventKind::Purchase(wit::Purchase {
                order_id: p.order_id.clone(),
                currency: p.currency.clone(),
                lines: lines(&p.lines),
                total_minor: p.total_minor,
            }),
            sdk::EventKind::Return(r) => wit::EventKind::Return(wit::PurchaseReturn {
                order_id: r.order_id.clone(),
                currency: r.currency.clone(),
                lines: lines(&r.lines),
                total_minor: r.total_minor,
            }),
            sdk::EventKind::Enrollment(e) => wit::EventKind::Enrollment(wit::Enrollment {
                channel: e.channel.clone(),
            }),
            sdk::EventKind::Birthday(b) => wit::EventKind::Birthday(wit::Birthday { year: b.year }),
            sdk::EventKind::Custom(c) => wit::EventKind::Custom(wit::CustomEvent {
                name: c.name.clone(),
                properties_json: c.properties_json.clone(),
                prior: wit::EventCounts {
                    day: c.prior.day,
                    week: c.prior.week,
                    month: c.prior.month,
                    year: c.prior.year,
                    total: c.prior.total,
                },
            }),
        };
        Self {
            id: v.id.clone(),
            occurred_at_ms: v.occurred_at_ms,
            kind,
        }
    }
}

impl From<&sdk::MemberSnapshot> for wit::MemberSnapshot {
    fn from(v: &sdk::MemberSnapshot) -> Self {
        Self {
            id: v.id.clone(),
            tier: wit::Tier {
                name: v.tier.name.clone(),
                multiplier_bp: v.tier.multiplier_bp,
            },
            balances: wit::Balances {
                available: v.balances.available,
                pending: v.balances.pending,
                held: v.balances.held,
            },
            lifetime_spend: (&v.lifetime_spend).into(),
            purchase_count: v.purchase_count,
            tags: v.tags.clone(),
            attributes_json: v.attributes_json.clone(),
            enrolled_at_ms: v.enrolled_at_ms,
            birthday: v.birthday.map(|d| wit::CalendarDate {
                year: d.year,
                month: d.month,
                day: d.day,
            }),
        }
    }
}

impl From<&sdk::PointRuleInput> for point_rule_api::PointRuleInput {
    fn from(v: &sdk::PointRuleInput) -> Self {
        Self {
            event: (&v.event).into(),
            member: (&v.member).into(),
            config: v.config.clone(),
        }
    }
}

impl From<&sdk::RewardInput> for reward_type_api::RewardInput {
    fn from(v: &sdk::RewardInput) -> Self {
        Self {
            reward: reward_type_api::RewardDefinition {
                id: v.reward.id.clone(),
                name: v.reward.name.clone(),
                base_points_cost: v.reward.base_points_cost,
            },
            config: v.config.clone(),
            member: (&v.member).into(),
            request: reward_type_api::RedemptionRequest {
                quantity: v.request.quantity,
                cart: v.request.cart.as_ref().map(|c| reward_type_api::Cart {
                    lines: lines(&c.lines),
                    total_minor: c.total_minor,
                }),
                currency: v.request.currency.clone(),
            },
            requested_at_ms: v.requested_at_ms,
        }
    }
}

impl From<&sdk::ReferralInput> for referral_scheme_api::ReferralInput {
    fn from(v: &sdk::ReferralInput) -> Self {
        Self {
            referrer: (&v.referrer).into(),
            referee: (&v.referee).into(),
            event: (&v.event).into(),
            config: v.config.clone(),
            upline: v.upline.iter().map(Into::into).collect(),
        }
    }
}

// ---- outputs: WIT -> SDK -------------------------------------------------------

impl From<wit::Money> for sdk::Money {
    fn from(v: wit::Money) -> Self {
        Self {
            amount_minor: v.amount_minor,
            currency: v.currency,
        }
    }
}

impl From<wit::Award> for sdk::Award {
    fn from(v: wit::Award) -> Self {
        Self {
            points: v.points,
            reason_code: v.reason_code,
            line_index: v.line_index,
            expiry: v.expiry.map(|e| match e {
                wit::Expiry::Never => sdk::Expiry::Never,
                wit::Expiry::AfterDays(days) => sdk::Expiry::AfterDays(days),
                wit::Expiry::AtMs(ms) => sdk::Expiry::AtMs(ms),
            }),
        }
    }
}

/// Converts a list of awards.
pub(crate) fn awards(v: Vec<wit::Award>) -> Vec<sdk::Award> {
    v.into_iter().map(Into::into).collect()
}

impl From<wit::PluginMetadata> for sdk::PluginMetadata {
    fn from(v: wit::PluginMetadata) -> Self {
        Self {
            name: v.name,
            version: v.version,
            description: v.description,
            config_schema: v.config_schema,
            config_example: v.config_example,
        }
    }
}

impl From<reward_type_api::Effect> for sdk::Effect {
    fn from(v: reward_type_api::Effect) -> Self {
        use reward_type_api::Effect as E;
        match v {
            E::FixedDiscount(money) => Self::FixedDiscount(money.into()),
            E::PercentDiscount(p) => Self::PercentDiscount(sdk::PercentDiscount {
                basis_points: p.basis_points,
                cap: p.cap.map(Into::into),
            }),
            E::FreeItem(sku) => Self::FreeItem(sku),
            E::FreeShipping => Self::FreeShipping,
            E::Coupon(prefix) => Self::Coupon(prefix),
            E::CustomPerk(perk) => Self::CustomPerk(sdk::CustomPerk {
                name: perk.name,
                details_json: perk.details_json,
            }),
        }
    }
}

impl From<reward_type_api::RedemptionQuote> for sdk::RedemptionQuote {
    fn from(v: reward_type_api::RedemptionQuote) -> Self {
        Self {
            points_cost: v.points_cost,
            effects: v.effects.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<reward_type_api::Rejection> for sdk::Rejection {
    fn from(v: reward_type_api::Rejection) -> Self {
        Self {
            reason_code: v.reason_code,
            message: v.message,
        }
    }
}

impl From<referral_scheme_api::ReferralAwards> for sdk::ReferralAwards {
    fn from(v: referral_scheme_api::ReferralAwards) -> Self {
        Self {
            referrer: awards(v.referrer),
            referee: awards(v.referee),
            upline: v.upline.into_iter().map(awards).collect(),
        }
    }
}
