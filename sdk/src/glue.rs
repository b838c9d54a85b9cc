//! Component glue, compiled for `wasm32` only.
//!
//! The generated bindings (one crate per world, `sdk/bindings/*`) and `From`
//! impls between the generated types and the SDK's plain types. The adapters
//! (`PointRuleAdapter<T>`, ...) implement the generated `Guest` traits for any
//! implementation of the SDK traits; [`export_plugin!`](crate::export_plugin)
//! hands one of them to the generated export macro.
//!
//! With `pub_export_macro`, wit-bindgen puts the custom section that describes
//! the world's exports into the export macro, i.e. into the plugin crate. So a
//! plugin that exports one world carries only that world, even though the SDK
//! links the bindings of all three.

use core::marker::PhantomData;

pub use loyalty_sdk_bindings_point_rule as point_rule;
pub use loyalty_sdk_bindings_referral_scheme as referral_scheme;
pub use loyalty_sdk_bindings_reward_type as reward_type;

/// Conversions for the `types` interface; every world crate has its own copy of
/// it. Inputs convert WIT -> SDK, outputs SDK -> WIT. Expects `wit` to name the
/// world's generated `types` module.
macro_rules! shared_conversions {
    () => {
        impl From<wit::Money> for crate::Money {
            fn from(v: wit::Money) -> Self {
                Self {
                    amount_minor: v.amount_minor,
                    currency: v.currency,
                }
            }
        }

        impl From<crate::Money> for wit::Money {
            fn from(v: crate::Money) -> Self {
                Self {
                    amount_minor: v.amount_minor,
                    currency: v.currency,
                }
            }
        }

        impl From<wit::PurchaseLine> for crate::PurchaseLine {
            fn from(v: wit::PurchaseLine) -> Self {
                Self {
                    line_index: v.line_index,
                    sku: v.sku,
                    category: v.category,
                    quantity: v.quantity,
                    unit_price_minor: v.unit_price_minor,
                }
            }
        }

        impl From<wit::MemberEvent> for crate::MemberEvent {
            fn from(v: wit::MemberEvent) -> Self {
                let kind = match v.kind {
                    wit::EventKind::Purchase(p) => crate::EventKind::Purchase(crate::Purchase {
                        order_id: p.order_id,
                        currency: p.currency,
                        lines: p.lines.into_iter().map(Into::into).collect(),
                        total_minor: p.total_minor,
                    }),
                    wit::EventKind::Return(r) => crate::EventKind::Return(crate::PurchaseReturn {
                        order_id: r.order_id,
                        currency: r.currency,
                        lines: r.lines.into_iter().map(Into::into).collect(),
                        total_minor: r.total_minor,
                    }),
                    wit::EventKind::Enrollment(e) => {
                        crate::EventKind::Enrollment(crate::Enrollment { channel: e.channel })
                    }
                    wit::EventKind::Birthday(b) => {
                        crate::EventKind::Birthday(crate::Birthday { year: b.year })
                    }
                    wit::EventKind::Custom(c) => crate::EventKind::Custom(crate::CustomEvent {
                        name: c.name,
                        properties_json: c.properties_json,
                        prior: crate::EventCounts {
                            day: c.prior.day,
                            week: c.prior.week,
                            month: c.prior.month,
                            year: c.prior.year,
                            total: c.prior.total,
                        },
                    }),
                };
                Self {
                    id: v.id,
                    occurred_at_ms: v.occurred_at_ms,
                    kind,
                }
            }
        }

        impl From<wit::MemberSnapshot> for crate::MemberSnapshot {
            fn from(v: wit::MemberSnapshot) -> Self {
                Self {
                    id: v.id,
                    tier: crate::Tier {
                        name: v.tier.name,
                        multiplier_bp: v.tier.multiplier_bp,
                    },
                    balances: crate::Balances {
                        available: v.balances.available,
                        pending: v.balances.pending,
                        held: v.balances.held,
                    },
                    lifetime_spend: v.lifetime_spend.into(),
                    purchase_count: v.purchase_count,
                    tags: v.tags,
                    attributes_json: v.attributes_json,
                    enrolled_at_ms: v.enrolled_at_ms,
                    birthday: v.birthday.map(|d| crate::CalendarDate {
                        year: d.year,
                        month: d.month,
                        day: d.day,
                    }),
                }
            }
        }

        impl From<crate::Award> for wit::Award {
            fn from(v: crate::Award) -> Self {
                Self {
                    points: v.points,
                    reason_code: v.reason_code,
                    line_index: v.line_index,
                    expiry: v.expiry.map(|e| match e {
                        crate::Expiry::Never => wit::Expiry::Never,
                        crate::Expiry::AfterDays(d) => wit::Expiry::AfterDays(d),
                        crate::Expiry::AtMs(t) => wit::Expiry::AtMs(t),
                    }),
                }
            }
        }

        impl From<crate::PluginMetadata> for wit::PluginMetadata {
            fn from(v: crate::PluginMetadata) -> Self {
                Self {
                    name: v.name,
                    version: v.version,
                    description: v.description,
                    config_schema: v.config_schema,
                    config_example: v.config_example,
                }
            }
        }
    };
}

mod point_rule_conversions {
    use super::point_rule::exports::loyalty::plugin::types as wit;

    shared_conversions!();
}

mod reward_type_conversions {
    use super::reward_type::exports::loyalty::plugin::types as wit;

    shared_conversions!();
}

mod referral_scheme_conversions {
    use super::referral_scheme::exports::loyalty::plugin::types as wit;

    shared_conversions!();
}

/// Implements the generated `point-rule` guest for any [`crate::PointRule`].
pub struct PointRuleAdapter<T>(PhantomData<T>);

impl<T: crate::PointRule> point_rule::exports::loyalty::plugin::point_rule_api::Guest
    for PointRuleAdapter<T>
{
    fn metadata() -> point_rule::exports::loyalty::plugin::types::PluginMetadata {
        T::metadata().into()
    }

    fn validate_config(config: String) -> Result<(), String> {
        T::validate_config(&config)
    }

    fn evaluate(
        input: point_rule::exports::loyalty::plugin::point_rule_api::PointRuleInput,
    ) -> Result<Vec<point_rule::exports::loyalty::plugin::types::Award>, String> {
        let input = crate::PointRuleInput {
            event: input.event.into(),
            member: input.member.into(),
            config: input.config,
        };
        T::evaluate(input).map(|awards| awards.into_iter().map(Into::into).collect())
    }
}

/// Implements the generated `reward-type` guest for any [`crate::RewardType`].
pub struct RewardTypeAdapter<T>(PhantomData<T>);

impl<T: crate::RewardType> reward_type::exports::loyalty::plugin::reward_type_api::Guest
    for RewardTypeAdapter<T>
{
    fn metadata() -> reward_type::exports::loyalty::plugin::types::PluginMetadata {
        T::metadata().into()
    }

    fn validate_config(config: String) -> Result<(), String> {
        T::validate_config(&config)
    }

    fn quote(
        input: reward_type::exports::loyalty::plugin::reward_type_api::RewardInput,
    ) -> Result<
        reward_type::exports::loyalty::plugin::reward_type_api::RedemptionQuote,
        reward_type::exports::loyalty::plugin::reward_type_api::Rejection,
    > {
        use reward_type::exports::loyalty::plugin::reward_type_api as wit;

        let input = crate::RewardInput {
            reward: crate::RewardDefinition {
                id: input.reward.id,
                name: input.reward.name,
                base_points_cost: input.reward.base_points_cost,
            },
            config: input.config,
            member: input.member.into(),
            request: crate::RedemptionRequest {
                quantity: input.request.quantity,
                cart: input.request.cart.map(|c| crate::Cart {
                    lines: c.lines.into_iter().map(Into::into).collect(),
                    total_minor: c.total_minor,
                }),
                currency: input.request.currency,
            },
            requested_at_ms: input.requested_at_ms,
        };
        match T::quote(input) {
            Ok(quote) => Ok(wit::RedemptionQuote {
                points_cost: quote.points_cost,
                effects: quote
                    .effects
                    .into_iter()
                    .map(|e| match e {
                        crate::Effect::FixedDiscount(m) => wit::Effect::FixedDiscount(m.into()),
                        crate::Effect::PercentDiscount(p) => {
                            wit::Effect::PercentDiscount(wit::PercentDiscount {
                                basis_points: p.basis_points,
                                cap: p.cap.map(Into::into),
                            })
                        }
                        crate::Effect::FreeItem(sku) => wit::Effect::FreeItem(sku),
                        crate::Effect::FreeShipping => wit::Effect::FreeShipping,
                        crate::Effect::Coupon(code) => wit::Effect::Coupon(code),
                        crate::Effect::CustomPerk(p) => wit::Effect::CustomPerk(wit::CustomPerk {
                            name: p.name,
                            details_json: p.details_json,
                        }),
                    })
                    .collect(),
            }),
            Err(r) => Err(wit::Rejection {
                reason_code: r.reason_code,
                message: r.message,
            }),
        }
    }
}

/// Implements the generated `referral-scheme` guest for any
/// [`crate::ReferralScheme`].
pub struct ReferralSchemeAdapter<T>(PhantomData<T>);

impl<T: crate::ReferralScheme> referral_scheme::exports::loyalty::plugin::referral_scheme_api::Guest
    for ReferralSchemeAdapter<T>
{
    fn metadata() -> referral_scheme::exports::loyalty::plugin::types::PluginMetadata {
        T::metadata().into()
    }

    fn validate_config(config: String) -> Result<(), String> {
        T::validate_config(&config)
    }

    fn evaluate(
        input: referral_scheme::exports::loyalty::plugin::referral_scheme_api::ReferralInput,
    ) -> Result<
        Option<referral_scheme::exports::loyalty::plugin::referral_scheme_api::ReferralAwards>,
        String,
    > {
        use referral_scheme::exports::loyalty::plugin::referral_scheme_api as wit;

        let input = crate::ReferralInput {
            referrer: input.referrer.into(),
            referee: input.referee.into(),
            event: input.event.into(),
            config: input.config,
            upline: input.upline.into_iter().map(Into::into).collect(),
        };
        let awards = T::evaluate(input)?;
        Ok(awards.map(|a| wit::ReferralAwards {
            referrer: a.referrer.into_iter().map(Into::into).collect(),
            referee: a.referee.into_iter().map(Into::into).collect(),
            upline: a
                .upline
                .into_iter()
                .map(|level| level.into_iter().map(Into::into).collect())
                .collect(),
        }))
    }
}
