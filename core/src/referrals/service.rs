//! Referral operations: a code for every new member, attribution at enrolment with its guards,
//! qualification by the bound referral scheme inside the referee's event, reads.

use super::{CapPeriod, Referral, Refusal, Status, repo};
use crate::auth::{Access, Principal};
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::events::pipeline::Env;
use crate::events::{PluginError, outbox, pipeline};
use crate::ids::MemberId;
use crate::ledger::service::{EarnSpec, Source, earn_in};
use crate::members::{self, Member, MemberStatus};
use crate::pagination::{Page, PageRequest};
use crate::plugins::{PluginKind, PluginVersion, repo as plugin_repo};
use crate::tenants::{self, Tenant};
use chrono::{DateTime, Utc};
use loyalty_sdk as sdk;
use sea_orm::ConnectionTrait;
use serde_json::json;
use std::collections::HashMap;

#[allow(clippy::too_many_arguments)]
async fn refuse(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    referrer: Option<MemberId>,
    referee: MemberId,
    code: &str,
    reason: &str,
    stage: &'static str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    repo::insert_refusal(
        conn,
        tenant.id,
        &Refusal {
            id: repo::new_id(),
            referrer_id: referrer,
            referee_id: referee,
            code: code.into(),
            reason: reason.into(),
            stage,
            created_at: now,
        },
    )
    .await?;
    tracing::info!(tenant = %tenant.id, referee = %referee, reason, stage, "referral refused");
    Ok(())
}

fn same(a: Option<&String>, b: Option<&String>) -> bool {
    matches!((a, b), (Some(x), Some(y)) if x.eq_ignore_ascii_case(y))
}

/// A new member's own referral code, as part of the enrolment's batch.
pub fn code_into(batch: &mut crate::db::Batch, tenant: &Tenant, member: &Member) {
    repo::insert_code_into(batch, tenant.id, member.id, &super::new_code());
}

/// Inside the enrolment's transaction, when the new member came with a referral code:
/// attributes them to its owner unless a guard refuses (recorded, not raised: the enrolment
/// goes on).
pub async fn attributed_in(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    member: &Member,
    code: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let refused = |referrer, reason| {
        refuse(
            conn,
            tenant,
            referrer,
            member.id,
            code,
            reason,
            "ATTRIBUTION",
            now,
        )
    };
    let Some(referrer_id) = repo::owner_of(conn, tenant.id, code).await? else {
        return refused(None, "unknown-code").await;
    };
    let referrer = members::repo::find(conn, tenant.id, referrer_id)
        .await?
        .ok_or(AppError::not_found("member"))?;
    if referrer.id == member.id
        || same(referrer.email.as_ref(), member.email.as_ref())
        || same(referrer.phone.as_ref(), member.phone.as_ref())
    {
        return refused(Some(referrer.id), "self-referral").await;
    }
    if referrer.status != MemberStatus::Active {
        return refused(Some(referrer.id), "referrer-inactive").await;
    }
    if let Some(phone) = &member.phone
        && repo::phone_was_referred(conn, tenant.id, phone).await?
    {
        return refused(Some(referrer.id), "already-referred").await;
    }
    let referral = Referral {
        id: repo::new_id(),
        referrer_id: referrer.id,
        referee_id: member.id,
        status: Status::Pending,
        created_at: now,
        qualified_at: None,
        referrer_points: 0,
        referee_points: 0,
        event_id: None,
    };
    repo::insert_referral(conn, tenant.id, &referral).await?;
    outbox::append(
        conn,
        tenant.id,
        Some(member.id),
        "referral.attributed",
        json!({"referralId": referral.id, "referrerId": referrer.id.to_string(),
               "refereeId": member.id.to_string()}),
        now,
    )
    .await
}

fn plugin_error(v: &PluginVersion, code: &str, message: impl Into<String>) -> PluginError {
    PluginError {
        plugin_name: v.name.clone(),
        plugin_version: v.version.clone(),
        code: code.into(),
        message: message.into(),
    }
}

/// The member and their snapshot (balances and statistics now).
async fn snapshot_of(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    id: MemberId,
) -> AppResult<Option<(Member, sdk::MemberSnapshot)>> {
    let Some(m) = members::repo::find(conn, tenant.id, id).await? else {
        return Ok(None);
    };
    let (_, snap) = pipeline::read_snapshot(conn, tenant, &m).await?;
    Ok(Some((m, snap)))
}

/// Inside the referee's event transaction, after the point rules: when the referee's referral
/// is pending, the tenant's referral schemes (in binding order) may qualify it with this
/// event. Returns the schemes that failed (the event goes on without them).
#[allow(clippy::too_many_arguments)]
pub async fn qualify_in(
    conn: &impl ConnectionTrait,
    env: Env<'_>,
    referee: &Member,
    referee_snapshot: &sdk::MemberSnapshot,
    event: &sdk::MemberEvent,
    occurred_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<Vec<PluginError>> {
    let referral = repo::of_referee(conn, env.tenant.id, referee.id).await?;
    qualify_with(
        conn,
        env,
        referee,
        referral,
        referee_snapshot,
        event,
        occurred_at,
        now,
    )
    .await
}

/// [`qualify_in`] with the referee's referral as the caller read it under the referee's lock
/// in this transaction (`None`: the referee was not referred).
#[allow(clippy::too_many_arguments)]
pub async fn qualify_with(
    conn: &impl ConnectionTrait,
    env: Env<'_>,
    referee: &Member,
    referral: Option<Referral>,
    referee_snapshot: &sdk::MemberSnapshot,
    event: &sdk::MemberEvent,
    occurred_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<Vec<PluginError>> {
    let tenant = env.tenant;
    let Some(mut referral) = referral else {
        return Ok(Vec::new());
    };
    if referral.status != Status::Pending {
        return Ok(Vec::new());
    }
    let schemes: Vec<_> =
        plugin_repo::bound_versions(conn, tenant.id, Some(PluginKind::ReferralScheme))
            .await?
            .into_iter()
            .filter(|(b, _)| b.enabled)
            .collect();
    if schemes.is_empty() {
        return Ok(Vec::new());
    }
    let Some((referrer, referrer_snap)) = snapshot_of(conn, tenant, referral.referrer_id).await?
    else {
        return Ok(Vec::new());
    };
    // The referrer's own referrer, and so on up (the referral graph is a forest: each member
    // is referred at most once, by someone who joined before).
    let mut upline: Vec<(Member, sdk::MemberSnapshot)> = Vec::new();
    let mut at = referrer.id;
    while upline.len() < super::UPLINE_MAX {
        let Some(up) = repo::of_referee(conn, tenant.id, at).await? else {
            break;
        };
        let Some(found) = snapshot_of(conn, tenant, up.referrer_id).await? else {
            break;
        };
        at = found.0.id;
        upline.push(found);
    }

    let mut errors = Vec::new();
    for (binding, version) in &schemes {
        let plugin = env.runtime.version(env.db, version.id).await?;
        let input = sdk::ReferralInput {
            referrer: referrer_snap.clone(),
            referee: referee_snapshot.clone(),
            event: event.clone(),
            config: binding.config.clone(),
            upline: upline.iter().map(|(_, s)| s.clone()).collect(),
        };
        let awards = match env.runtime.evaluate_referral(&plugin, input).await? {
            Err(f) => {
                errors.push(plugin_error(version, f.kind.code(), f.kind.to_string()));
                continue;
            }
            Ok(outcome) => match outcome.output {
                Err(m) => {
                    errors.push(plugin_error(version, "plugin-error", m));
                    continue;
                }
                Ok(None) => continue,
                Ok(Some(a)) => a,
            },
        };
        // The same checks as a point rule's awards; referral awards belong to no line.
        let check = |list: &[sdk::Award]| {
            pipeline::check_awards(list.to_vec(), 0, occurred_at, env.awards_max)
        };
        let checked = (|| {
            let mut paid = vec![
                (referee.id, "referee", check(&awards.referee)?),
                (referrer.id, "referrer", check(&awards.referrer)?),
            ];
            let labels = ["level-2", "level-3", "level-4", "level-5", "level-6"];
            for (i, level) in awards.upline.iter().enumerate().take(upline.len()) {
                paid.push((upline[i].0.id, labels[i], check(level)?));
            }
            Ok::<_, String>(paid)
        })();
        let paid = match checked {
            Ok(paid) => paid,
            Err(m) => {
                errors.push(plugin_error(version, "invalid-output", m));
                continue;
            }
        };
        if let Some((cap, period)) = tenant.referral_cap {
            let range = match period {
                CapPeriod::Ever => None,
                p => {
                    let periods = crate::events::repo::periods(tenant.timezone, now);
                    Some(match p {
                        CapPeriod::Day => periods[0],
                        CapPeriod::Week => periods[1],
                        CapPeriod::Month => periods[2],
                        _ => periods[3],
                    })
                }
            };
            if repo::count_qualified(conn, referrer.id, range).await? >= cap as u64 {
                referral.status = Status::Refused;
                repo::save_referral(conn, &referral).await?;
                let code = repo::code_of(conn, referrer.id).await?.unwrap_or_default();
                refuse(
                    conn,
                    tenant,
                    Some(referrer.id),
                    referee.id,
                    &code,
                    "referrer-cap-reached",
                    "QUALIFICATION",
                    now,
                )
                .await?;
                outbox::append(
                    conn,
                    tenant.id,
                    Some(referee.id),
                    "referral.refused",
                    json!({"referralId": referral.id, "reason": "referrer-cap-reached"}),
                    now,
                )
                .await?;
                return Ok(errors);
            }
        }
        let source = |a: &sdk::Award| Source {
            reason: None,
            reason_code: Some(a.reason_code.trim().to_string()),
            event_id: Some(format!("referral:{}", referral.id)),
            plugin_id: Some(version.name.clone()),
            plugin_version: Some(version.version.chars().take(32).collect()),
        };
        let mut totals: HashMap<&str, i64> = HashMap::new();
        let earned: Vec<(MemberId, i64)> = paid
            .iter()
            .map(|(who, _, list)| (*who, list.iter().map(|(a, _)| a.points).sum()))
            .collect();
        for (who, side, list) in paid {
            for (i, (a, expires_at)) in list.iter().enumerate() {
                let (entry, _) = earn_in(
                    conn,
                    tenant,
                    who,
                    EarnSpec {
                        points: a.points,
                        pending_until: None,
                        expires_at: *expires_at,
                        natural_key: Some(format!("referral:{}:{side}:{i}", referral.id)),
                        source: source(a),
                    },
                    now,
                )
                .await?;
                *totals.entry(side).or_default() += a.points;
                outbox::append(
                    conn,
                    tenant.id,
                    Some(who),
                    "points.earned",
                    json!({"entryId": entry.id, "points": a.points, "reason": a.reason_code,
                           "plugin": version.name, "pluginVersion": version.version,
                           "eventId": format!("referral:{}", referral.id),
                           "awards": [{"lineIndex": null, "points": a.points}]}),
                    now,
                )
                .await?;
            }
        }
        for (who, points) in earned {
            crate::tiers::service::record_activity(
                conn,
                tenant,
                who,
                occurred_at,
                crate::tiers::Activity {
                    points,
                    ..Default::default()
                },
                now,
            )
            .await?;
        }
        referral.status = Status::Qualified;
        referral.qualified_at = Some(now);
        referral.referrer_points = totals.get("referrer").copied().unwrap_or(0);
        referral.referee_points = totals.get("referee").copied().unwrap_or(0);
        referral.event_id = Some(event.id.clone());
        repo::save_referral(conn, &referral).await?;
        outbox::append(
            conn,
            tenant.id,
            Some(referee.id),
            "referral.qualified",
            json!({
                "referralId": referral.id,
                "referrerId": referrer.id.to_string(),
                "refereeId": referee.id.to_string(),
                "referrerPoints": referral.referrer_points,
                "refereePoints": referral.referee_points,
                "uplinePoints": totals.iter().filter(|(k, _)| k.starts_with("level")).map(|(_, v)| v).sum::<i64>(),
                "plugin": version.name,
                "eventId": event.id,
            }),
            now,
        )
        .await?;
        return Ok(errors);
    }
    Ok(errors)
}

// ---- reads and settings ---------------------------------------------------------------

pub async fn code_of(db: &Db, principal: &Principal, member: MemberId) -> AppResult<String> {
    principal.require_tenant(Access::Read)?;
    repo::code_of(db.reader(), member)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("member {member} has no referral code")))
}

pub async fn referred_by(
    db: &Db,
    principal: &Principal,
    member: MemberId,
) -> AppResult<Option<Referral>> {
    let t = principal.require_tenant(Access::Read)?;
    repo::of_referee(db.reader(), t.tenant_id, member).await
}

pub async fn referrals(
    db: &Db,
    principal: &Principal,
    referrer: MemberId,
    page: PageRequest,
) -> AppResult<Page<Referral>> {
    let t = principal.require_tenant(Access::Read)?;
    repo::list_of_referrer(db.reader(), t.tenant_id, referrer, page).await
}

pub async fn refusals(
    db: &Db,
    principal: &Principal,
    page: PageRequest,
) -> AppResult<Page<Refusal>> {
    let t = principal.require_tenant(Access::Read)?;
    repo::list_refusals(db.reader(), t.tenant_id, page).await
}

/// `setReferralPolicy` (ADMIN): the cap of qualified referrals per referrer per period.
pub async fn set_policy(
    db: &Db,
    principal: &Principal,
    cap: Option<(i64, CapPeriod)>,
) -> AppResult<Tenant> {
    let t = principal.require_tenant(Access::Manage)?;
    let cap = cap
        .map(|(n, p)| super::cap(n).map(|n| (n, p)))
        .transpose()?;
    let txn = db.begin_write().await?;
    let tenant = tenants::repo::set_referral_cap(&txn, t.tenant_id, cap)
        .await?
        .ok_or(AppError::not_found("tenant"))?;
    txn.commit().await?;
    db.caches().forget_tenant(t.tenant_id);
    Ok(tenant)
}
