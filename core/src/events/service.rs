//! The pipeline's entry points: record a purchase, a return or a custom event, simulate a
//! purchase, and read purchases, statistics and domain events. Each write is one transaction
//! and idempotent by its natural id (order id, return id, event id): the same id with the same
//! request returns the stored answer and writes nothing; with another request it is CONFLICT.

use super::pipeline::{self, Env, PipelineConfig};
use super::writer::Written;
use super::{
    Award, CustomEventRequest, MemberRef, MemberStats, Outcome, Purchase, PurchaseLine,
    PurchaseRequest, PurchaseReturn, ReturnRequest, clawback_target, outbox, repo,
};
use crate::auth::{Access, Principal};
use crate::config::ApiSettings;
use crate::db::{Batch, Db};
use crate::error::{AppError, AppResult};
use crate::ids::{MemberId, TenantId};
use crate::ledger::service::clawback_in;
use crate::members::{self, Member};
use crate::pagination::{Page, PageRequest};
use crate::plugins::runtime::PluginRuntime;
use crate::tenants::{self, Tenant};
use chrono::{DateTime, Utc};
use loyalty_sdk as sdk;
use sea_orm::ConnectionTrait;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

fn request_hash(request: &impl Serialize) -> AppResult<String> {
    let body = serde_json::to_vec(request).map_err(AppError::internal)?;
    Ok(hex::encode(Sha256::digest(&body)))
}

async fn resolve_member(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    who: &MemberRef,
) -> AppResult<Member> {
    match who {
        MemberRef::Id(id) => members::repo::find(conn, tenant, *id).await?,
        MemberRef::External(e) => members::repo::find_by_external_id(conn, tenant, e).await?,
    }
    .ok_or(AppError::not_found("member"))
}

/// A purchase as recorded, with what it earned.
#[derive(Clone, Debug)]
pub struct RecordedPurchase {
    pub purchase: Purchase,
    pub outcome: Outcome,
    /// The member and balances as the purchase's transaction committed them, when known
    /// without a read (not for a replay).
    pub member: Option<(Member, crate::ledger::Balances)>,
}

fn env<'a>(
    db: &'a Db,
    runtime: &'a PluginRuntime,
    tenant: &'a Tenant,
    config: &'a PipelineConfig,
    api: &ApiSettings,
) -> Env<'a> {
    Env {
        db,
        runtime,
        tenant,
        config,
        awards_max: api.plugin_awards_max,
    }
}

fn sdk_purchase(p: &Purchase) -> sdk::EventKind {
    sdk::EventKind::Purchase(sdk::Purchase {
        order_id: p.order_id.clone(),
        currency: p.currency.clone(),
        lines: p
            .lines
            .iter()
            .map(|l| sdk::PurchaseLine {
                line_index: l.line_index as u32,
                sku: l.sku.clone(),
                category: l.category.clone().unwrap_or_default(),
                quantity: l.quantity as u32,
                unit_price_minor: l.unit_price,
            })
            .collect(),
        total_minor: p.total,
    })
}

fn order_ref(order_id: &str) -> String {
    format!("order:{order_id}")
}

fn new_purchase(
    req: &PurchaseRequest,
    member: MemberId,
    hash: String,
    occurred_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Purchase {
    Purchase {
        id: Uuid::now_v7(),
        member_id: member,
        order_id: req.order_id.clone(),
        request_hash: hash,
        occurred_at,
        currency: req.currency.clone(),
        total: req.total,
        channel: req.channel,
        store_id: req.store_id.clone(),
        lines: req
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| PurchaseLine {
                line_index: i as i32,
                sku: l.sku.clone(),
                category: l.category.clone(),
                quantity: l.quantity as i32,
                unit_price: l.unit_price,
                returned_quantity: 0,
            })
            .collect(),
        returned_amount: 0,
        points_earned: 0,
        created_at: now,
    }
}

async fn replay_purchase(
    conn: &impl ConnectionTrait,
    existing: Purchase,
    hash: &str,
) -> AppResult<RecordedPurchase> {
    if existing.request_hash != hash {
        return Err(AppError::Conflict(format!(
            "orderId {:?} was already recorded with different details",
            existing.order_id
        )));
    }
    let awards = repo::awards_of(conn, existing.id).await?;
    Ok(RecordedPurchase {
        purchase: existing,
        outcome: Outcome {
            awards,
            errors: Vec::new(),
            replayed: true,
        },
        member: None,
    })
}

/// `recordPurchase`: the whole pipeline in one transaction (ADMIN or INTEGRATION), shared
/// with the other purchases waiting at the time (group commit, see [`super::writer`]).
///
/// The point rules run before the transaction, on the member as the reader sees them, so the
/// write lock (SQLite's one writer, the member's row on PostgreSQL) is never held while
/// plugins run. Under the lock the snapshot is read again; the rules' answer is used only
/// when it is the same snapshot, and otherwise they run again on the locked one. Rules are
/// pure functions of event, snapshot and config, so the result is what running them under
/// the lock would give. The answer comes after the commit.
pub async fn record_purchase(
    db: &Db,
    runtime: &PluginRuntime,
    api: &ApiSettings,
    principal: &Principal,
    req: PurchaseRequest,
) -> AppResult<RecordedPurchase> {
    let t = principal.require_tenant(Access::Write)?;
    let tenant = tenants::service::get(db, t.tenant_id).await?;
    let now = db.now();
    let req = super::validate_purchase(&req, &tenant.currency, api.purchase_lines_max)?;
    let occurred_at = super::occurred_at(req.occurred_at, now)?;
    let hash = request_hash(&req)?;
    let config = pipeline::config(db, tenant.id).await?;
    let env = env(db, runtime, &tenant, &config, api);

    // Outside the write lock: a replay is answered from the reader, and the rules run.
    let reader = db.reader();
    let (seen_state, seen, recorded) =
        pipeline::read_state(reader, env, &req.member, &req.order_id).await?;
    let member = &seen_state.member;
    if recorded
        && let Some(existing) = repo::find_purchase(reader, tenant.id, &req.order_id).await?
    {
        return replay_purchase(reader, existing, &hash).await;
    }
    pipeline::check_active(member)?;
    let purchase = new_purchase(&req, member.id, hash.clone(), occurred_at, now);
    let event = sdk::MemberEvent {
        id: order_ref(&purchase.order_id),
        occurred_at_ms: occurred_at.timestamp_millis(),
        kind: sdk_purchase(&purchase),
    };
    let lines = purchase.lines.len();
    let early = pipeline::evaluate(env, &event, &seen, lines, occurred_at).await?;

    let tenant_id = tenant.id;
    let mut job = super::writer::Job {
        tenant,
        config,
        runtime: runtime.clone(),
        awards_max: api.plugin_awards_max,
        purchase,
        event,
        seen,
        early,
        now,
        prepared: None,
    };
    // Its writes too, here rather than on the writer's time.
    super::writer::prepare(db, &mut job, seen_state);
    match db.writers().submit(job).await? {
        Written::Recorded {
            purchase,
            awards,
            errors,
            member,
        } => Ok(RecordedPurchase {
            purchase: *purchase,
            outcome: Outcome {
                awards,
                errors,
                replayed: false,
            },
            member: member.map(|m| *m),
        }),
        // The same order id, recorded concurrently (for this member or another).
        Written::Twin => {
            let existing = repo::find_purchase(db.reader(), tenant_id, &req.order_id)
                .await?
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("the twin purchase vanished")))?;
            replay_purchase(db.reader(), existing, &hash).await
        }
    }
}

/// `simulatePurchase`: the same validation, snapshot and rules as `recordPurchase`, on the
/// read connection; nothing is written. Returns the awards and the member.
pub async fn simulate_purchase(
    db: &Db,
    runtime: &PluginRuntime,
    api: &ApiSettings,
    principal: &Principal,
    req: PurchaseRequest,
) -> AppResult<(Outcome, Member)> {
    let t = principal.require_tenant(Access::Write)?;
    let tenant = tenants::service::get(db, t.tenant_id).await?;
    let now = db.now();
    let req = super::validate_purchase(&req, &tenant.currency, api.purchase_lines_max)?;
    let occurred_at = super::occurred_at(req.occurred_at, now)?;
    let config = pipeline::config(db, tenant.id).await?;
    let env = env(db, runtime, &tenant, &config, api);
    let conn = db.reader();
    let member = resolve_member(conn, tenant.id, &req.member).await?;
    pipeline::check_active(&member)?;
    if repo::find_purchase(conn, tenant.id, &req.order_id)
        .await?
        .is_some()
    {
        return Err(AppError::Conflict(format!(
            "orderId {:?} is already recorded; simulate with a new orderId",
            req.order_id
        )));
    }
    let snap = pipeline::read_snapshot_in(conn, env, &member).await?;
    let purchase = new_purchase(&req, member.id, String::new(), occurred_at, now);
    let event = sdk::MemberEvent {
        id: order_ref(&purchase.order_id),
        occurred_at_ms: occurred_at.timestamp_millis(),
        kind: sdk_purchase(&purchase),
    };
    let (proposed, errors) =
        pipeline::evaluate(env, &event, &snap, purchase.lines.len(), occurred_at).await?;
    Ok((
        Outcome {
            awards: pipeline::preview(&proposed),
            errors,
            replayed: false,
        },
        member,
    ))
}

/// What a return protects with its return id.
#[derive(Serialize)]
struct ReturnHashed<'a> {
    order_id: &'a str,
    lines: Option<Vec<(i64, i64)>>,
    amount: Option<i64>,
}

fn replay_return(existing: PurchaseReturn, hash: &str) -> AppResult<(PurchaseReturn, bool)> {
    if existing.request_hash != hash {
        return Err(AppError::Conflict(format!(
            "returnId {:?} was already recorded with different details",
            existing.return_id
        )));
    }
    Ok((existing, true))
}

/// The refunded amount of returned lines: their value, scaled to the order's total when the
/// order was discounted below the sum of its lines.
fn refund_of_lines(p: &Purchase, returned: &[(usize, i64)]) -> i64 {
    let lines_sum: i128 = p.lines.iter().map(|l| i128::from(l.amount())).sum();
    if lines_sum <= 0 {
        return 0;
    }
    let value: i128 = returned
        .iter()
        .map(|(i, q)| i128::from(p.lines[*i].unit_price) * i128::from(*q))
        .sum();
    let scaled = if i128::from(p.total) < lines_sum {
        value * i128::from(p.total) / lines_sum
    } else {
        value
    };
    i64::try_from(scaled).unwrap_or(i64::MAX)
}

/// `recordReturn`: takes back exactly the points the returned goods earned (ADMIN or
/// INTEGRATION). Line awards follow their line's returned quantity; order-level awards follow
/// the refunded share of the order total; what was already spent follows the tenant's
/// shortfall policy.
pub async fn record_return(
    db: &Db,
    principal: &Principal,
    req: ReturnRequest,
) -> AppResult<(PurchaseReturn, bool)> {
    let t = principal.require_tenant(Access::Write)?;
    let tenant = tenants::service::get(db, t.tenant_id).await?;
    let now = db.now();
    let req = super::validate_return(&req)?;
    let hash = request_hash(&ReturnHashed {
        order_id: &req.order_id,
        lines: req
            .lines
            .as_ref()
            .map(|ls| ls.iter().map(|l| (l.line_index, l.quantity)).collect()),
        amount: req.amount,
    })?;

    let txn = db.begin_write().await?;
    if let Some(existing) = repo::find_return(&txn, tenant.id, &req.return_id).await? {
        return replay_return(existing, &hash);
    }
    let mut purchase = repo::find_purchase(&txn, tenant.id, &req.order_id)
        .await?
        .ok_or(AppError::not_found("purchase"))?;
    crate::ledger::repo::lock_balances(&txn, tenant.id, purchase.member_id, now).await?;
    if let Some(existing) = repo::find_return(&txn, tenant.id, &req.return_id).await? {
        return replay_return(existing, &hash);
    }
    // Re-read under the member's lock: a concurrent return of the same order may have landed.
    purchase = repo::find_purchase(&txn, tenant.id, &req.order_id)
        .await?
        .ok_or(AppError::not_found("purchase"))?;
    let remaining = purchase.total - purchase.returned_amount;

    let mut returned_lines: Vec<(usize, i64)> = Vec::new();
    let refund = match (&req.lines, req.amount) {
        (Some(lines), _) => {
            for l in lines {
                let i = usize::try_from(l.line_index)
                    .ok()
                    .filter(|i| *i < purchase.lines.len())
                    .ok_or_else(|| {
                        AppError::validation(
                            "lines",
                            format!(
                                "order {:?} has no line {} (it has {})",
                                purchase.order_id,
                                l.line_index,
                                purchase.lines.len()
                            ),
                        )
                    })?;
                let line = &mut purchase.lines[i];
                let left = i64::from(line.quantity - line.returned_quantity);
                if l.quantity > left {
                    return Err(AppError::validation(
                        "lines",
                        format!(
                            "line {i}: {} units returned but only {left} are left to return",
                            l.quantity
                        ),
                    ));
                }
                line.returned_quantity += l.quantity as i32;
                returned_lines.push((i, l.quantity));
            }
            refund_of_lines(&purchase, &returned_lines).min(remaining)
        }
        (None, Some(amount)) => {
            if amount > remaining {
                return Err(AppError::validation(
                    "amount",
                    format!(
                        "amount {amount} is more than the {remaining} left to refund on order {:?}",
                        purchase.order_id
                    ),
                ));
            }
            amount
        }
        (None, None) => unreachable!("validate_return requires lines or an amount"),
    };
    purchase.returned_amount += refund;
    let everything_back = purchase.returned_amount >= purchase.total
        && purchase
            .lines
            .iter()
            .all(|l| l.returned_quantity >= l.quantity || req.amount.is_some());

    let return_id = Uuid::now_v7();
    let mut clawed = 0i64;
    let mut awards = repo::awards_of(&txn, purchase.id).await?;
    for award in &mut awards {
        let target = match (award.line_index, &req.lines) {
            (Some(li), Some(_)) => {
                let line = &purchase.lines[li as usize];
                clawback_target(
                    award.points,
                    i64::from(line.returned_quantity),
                    i64::from(line.quantity),
                )
            }
            _ if everything_back => award.points,
            _ => clawback_target(award.points, purchase.returned_amount, purchase.total),
        };
        let delta = target - award.clawed_back;
        if delta <= 0 {
            continue;
        }
        let entry_id = award
            .entry_id
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("stored award has no entry")))?;
        let entry = clawback_in(
            &txn,
            &tenant,
            entry_id,
            delta,
            Some(format!("return:{return_id}:{}", award.id)),
            false,
            now,
        )
        .await?;
        award.clawed_back += delta;
        clawed += delta;
        repo::save_award_clawback(&txn, award).await?;
        outbox::append(
            &txn,
            tenant.id,
            Some(purchase.member_id),
            "points.reversed",
            json!({
                "entryId": entry.id,
                "reversesEntryId": entry_id,
                "points": delta,
                "reason": "return",
                "plugin": award.plugin_name,
                "orderId": purchase.order_id,
                "returnId": req.return_id,
            }),
            now,
        )
        .await?;
    }
    repo::save_purchase_progress(&txn, &purchase).await?;
    // The tier metrics lose the refund, the points taken back and, once nothing of the
    // order is left, the purchase itself, in the month the purchase was made.
    crate::tiers::service::record_activity(
        &txn,
        &tenant,
        purchase.member_id,
        purchase.occurred_at,
        crate::tiers::Activity {
            points: -clawed,
            spend: -refund,
            purchases: -i64::from(remaining > 0 && purchase.returned_amount >= purchase.total),
        },
        now,
    )
    .await?;
    let mut stats: MemberStats = repo::stats(&txn, tenant.id, purchase.member_id).await?;
    stats.lifetime_spend = (stats.lifetime_spend - refund).max(0);
    repo::save_stats(&txn, tenant.id, purchase.member_id, &stats, now).await?;
    let ret = PurchaseReturn {
        id: return_id,
        purchase_id: purchase.id,
        member_id: purchase.member_id,
        order_id: purchase.order_id.clone(),
        return_id: req.return_id.clone(),
        request_hash: hash.clone(),
        amount: refund,
        points_clawed_back: clawed,
        created_at: now,
    };
    if let Err(e) = repo::insert_return(&txn, tenant.id, &ret).await {
        drop(txn);
        if !e.is_unique_violation() {
            return Err(e);
        }
        let existing = repo::find_return(db.reader(), tenant.id, &req.return_id)
            .await?
            .ok_or(e)?;
        return replay_return(existing, &hash);
    }
    outbox::append(
        &txn,
        tenant.id,
        Some(purchase.member_id),
        "purchase.returned",
        json!({
            "purchaseId": purchase.id,
            "orderId": purchase.order_id,
            "returnId": ret.return_id,
            "amount": refund,
            "points": clawed,
        }),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok((ret, false))
}

/// A member event other than a purchase or an enrolment ([`enrolled_in`]), run through the
/// point rules inside the caller's transaction: birthday, custom. `event_id` is unique per tenant; when it exists
/// with the same request hash the stored awards come back (`replayed`).
#[allow(clippy::too_many_arguments)]
pub async fn member_event_in(
    conn: &impl ConnectionTrait,
    env: Env<'_>,
    member: &Member,
    event_id: &str,
    kind: sdk::EventKind,
    request_hash: &str,
    occurred_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<Outcome> {
    if let Some(existing) = repo::find_event(conn, env.tenant.id, event_id).await? {
        return replay_event(conn, existing, request_hash).await;
    }
    let (balances, _, snap) = pipeline::lock_member(conn, env, member, now).await?;
    if let Some(existing) = repo::find_event(conn, env.tenant.id, event_id).await? {
        return replay_event(conn, existing, request_hash).await;
    }
    let mut kind = kind;
    if let sdk::EventKind::Custom(c) = &mut kind {
        // Counted under the member's lock, so two events at once see each other.
        c.prior = repo::prior_counts(
            conn,
            env.tenant.timezone,
            env.tenant.id,
            member.id,
            &c.name,
            occurred_at,
        )
        .await?;
    }
    let (kind_name, name, properties) = match &kind {
        sdk::EventKind::Birthday(b) => ("birthday", None, json!({"year": b.year}).to_string()),
        sdk::EventKind::Custom(c) => ("custom", Some(c.name.clone()), c.properties_json.clone()),
        sdk::EventKind::Purchase(_) | sdk::EventKind::Return(_) | sdk::EventKind::Enrollment(_) => {
            return Err(AppError::internal(anyhow::anyhow!(
                "purchases, returns and enrolments have their own pipeline"
            )));
        }
    };
    let id = Uuid::now_v7();
    let event = sdk::MemberEvent {
        id: event_id.to_string(),
        occurred_at_ms: occurred_at.timestamp_millis(),
        kind,
    };
    let (proposed, errors) = pipeline::evaluate(env, &event, &snap, 0, occurred_at).await?;
    let awards =
        pipeline::apply(conn, env, member.id, balances, id, event_id, proposed, now).await?;
    let mut batch = Batch::on(conn);
    repo::insert_event_into(
        &mut batch,
        env.tenant.id,
        id,
        member.id,
        event_id,
        kind_name,
        name.as_deref(),
        request_hash,
        occurred_at,
        &properties,
        now,
    );
    batch.run(conn).await?;
    let points: i64 = awards.iter().map(|a| a.points).sum();
    let (cause, payload) = match kind_name {
        "custom" => (
            "event.recorded",
            json!({"eventId": event_id, "type": name, "occurredAt": occurred_at, "points": points}),
        ),
        _ => (
            "member.birthday",
            json!({"eventId": event_id, "points": points}),
        ),
    };
    outbox::append(conn, env.tenant.id, Some(member.id), cause, payload, now).await?;
    pipeline::announce(conn, env, member.id, event_id, &awards, &errors, now).await?;
    crate::tiers::service::record_activity_on(
        conn,
        env.tenant,
        env.config.ladder.as_ref(),
        member.id,
        occurred_at,
        crate::tiers::Activity {
            points,
            ..Default::default()
        },
        now,
    )
    .await?;
    let mut errors = errors;
    if kind_name == "custom" {
        let referral_errors = crate::referrals::service::qualify_in(
            conn,
            env,
            member,
            &snap,
            &event,
            occurred_at,
            now,
        )
        .await?;
        pipeline::announce(conn, env, member.id, event_id, &[], &referral_errors, now).await?;
        errors.extend(referral_errors);
    }
    Ok(Outcome {
        awards,
        errors,
        replayed: false,
    })
}

fn channel_of(event: &sdk::MemberEvent) -> Option<&str> {
    match &event.kind {
        sdk::EventKind::Enrollment(e) if !e.channel.is_empty() => Some(&e.channel),
        _ => None,
    }
}

async fn replay_event(
    conn: &impl ConnectionTrait,
    existing: repo::StoredEvent,
    hash: &str,
) -> AppResult<Outcome> {
    if existing.request_hash != hash {
        return Err(AppError::Conflict(
            "this eventId was already recorded with different details".into(),
        ));
    }
    Ok(Outcome {
        awards: repo::awards_of(conn, existing.id).await?,
        errors: Vec::new(),
        replayed: true,
    })
}

/// The event id under which a member's enrolment runs through the point rules.
pub fn enrollment_event_id(member: MemberId) -> String {
    format!("enrollment:{member}")
}

/// The event id of a member's birthday in `year`.
pub fn birthday_event_id(member: MemberId, year: i32) -> String {
    format!("birthday:{member}:{year}")
}

/// What a new member's enrolment earns, worked out before its write transaction.
///
/// The member is new (its id was made by this request), so the snapshot the point rules see
/// (no points, no purchases, the ladder's lowest tier) is known without a read and nothing can
/// change it before the transaction: the rules (welcome bonuses) run outside the write lock,
/// as a purchase's do.
pub struct EnrollmentRules {
    event: sdk::MemberEvent,
    proposed: Vec<pipeline::Proposed>,
    errors: Vec<super::PluginError>,
}

pub async fn enrollment_rules(
    env: Env<'_>,
    member: &Member,
    channel: Option<&str>,
) -> AppResult<EnrollmentRules> {
    let event = sdk::MemberEvent {
        id: enrollment_event_id(member.id),
        occurred_at_ms: member.enrolled_at.timestamp_millis(),
        kind: sdk::EventKind::Enrollment(sdk::Enrollment {
            channel: channel.unwrap_or_default().to_string(),
        }),
    };
    let tier = crate::tiers::service::snapshot_tier_of(env.config.ladder.as_ref(), None);
    let snap = pipeline::snapshot(
        member,
        &crate::ledger::Balances::default(),
        &MemberStats::default(),
        &env.tenant.currency,
        tier,
    );
    let (proposed, errors) = pipeline::evaluate(env, &event, &snap, 0, member.enrolled_at).await?;
    Ok(EnrollmentRules {
        event,
        proposed,
        errors,
    })
}

/// A new member's enrolment as part of its transaction's batch, after the member row: the
/// event, what [`enrollment_rules`] earned, `member.enrolled` with the awards' announcements
/// and the tier activity. Also returns whether activity was recorded: the tier the points
/// reach is then the caller's to lift, once the batch ran (`tiers::service::metric_reads`).
pub fn enrolled_into(
    batch: &mut Batch,
    env: Env<'_>,
    member: &Member,
    rules: EnrollmentRules,
    now: DateTime<Utc>,
) -> AppResult<(Outcome, bool)> {
    let EnrollmentRules {
        event,
        proposed,
        errors,
    } = rules;
    let id = Uuid::now_v7();
    let tenant = env.tenant;
    repo::insert_event_into(
        batch,
        tenant.id,
        id,
        member.id,
        &event.id,
        "enrollment",
        None,
        "",
        member.enrolled_at,
        "{}",
        now,
    );
    let balances = crate::ledger::Balances::default();
    let (awards, _) = pipeline::apply_into(
        batch, env, member.id, balances, id, &event.id, proposed, now,
    )?;
    let points: i64 = awards.iter().map(|a| a.points).sum();
    let mut announced = vec![(
        "member.enrolled",
        json!({
            "memberId": member.id.to_string(),
            "externalId": member.external_id,
            "channel": channel_of(&event),
            "points": points,
        }),
    )];
    announced.extend(pipeline::announcements(&event.id, &awards, &errors));
    outbox::append_all_into(batch, tenant.id, Some(member.id), announced, now);
    let activity = crate::tiers::Activity {
        points,
        ..Default::default()
    };
    let active = crate::tiers::service::record_activity_into(
        batch,
        tenant,
        member.id,
        member.enrolled_at,
        activity,
    );
    let outcome = Outcome {
        awards,
        errors,
        replayed: false,
    };
    Ok((outcome, active))
}

/// `recordEvent`: a custom action (review written, survey answered) through the point rules.
pub async fn record_event(
    db: &Db,
    runtime: &PluginRuntime,
    api: &ApiSettings,
    principal: &Principal,
    req: CustomEventRequest,
) -> AppResult<(Outcome, MemberId)> {
    let t = principal.require_tenant(Access::Write)?;
    let tenant = tenants::service::get(db, t.tenant_id).await?;
    let now = db.now();
    let event_type = super::event_type(&req.event_type)?;
    let event_id = super::external_id("eventId", &req.event_id)?;
    let properties = super::properties(req.properties.as_ref(), api.event_properties_bytes_max)?;
    let occurred_at = super::occurred_at(req.occurred_at, now)?;
    let hash = request_hash(&(&req.member, &event_type, &req.occurred_at, &properties))?;
    let config = pipeline::config(db, tenant.id).await?;
    let env = env(db, runtime, &tenant, &config, api);

    let txn = db.begin_write().await?;
    let member = resolve_member(&txn, tenant.id, &req.member).await?;
    let stored_id = format!("custom:{event_id}");
    if let Some(existing) = repo::find_event(&txn, tenant.id, &stored_id).await? {
        if existing.member_id != member.id {
            return Err(AppError::Conflict(format!(
                "eventId {event_id:?} was already recorded for another member"
            )));
        }
        return Ok((replay_event(&txn, existing, &hash).await?, member.id));
    }
    pipeline::check_active(&member)?;
    let outcome = member_event_in(
        &txn,
        env,
        &member,
        &stored_id,
        sdk::EventKind::Custom(sdk::CustomEvent {
            name: event_type,
            properties_json: properties,
            prior: sdk::EventCounts::default(),
        }),
        &hash,
        occurred_at,
        now,
    )
    .await;
    let outcome = match outcome {
        Err(e) if e.is_unique_violation() => {
            drop(txn);
            let existing = repo::find_event(db.reader(), tenant.id, &stored_id)
                .await?
                .ok_or(e)?;
            return Ok((replay_event(db.reader(), existing, &hash).await?, member.id));
        }
        other => other?,
    };
    txn.commit().await?;
    Ok((outcome, member.id))
}

// ---- reads ------------------------------------------------------------------------------

pub async fn purchases(
    db: &Db,
    principal: &Principal,
    member: MemberId,
    page: PageRequest,
) -> AppResult<Page<Purchase>> {
    let t = principal.require_tenant(Access::Read)?;
    repo::list_purchases(db.reader(), t.tenant_id, member, page).await
}

pub async fn stats(db: &Db, principal: &Principal, member: MemberId) -> AppResult<MemberStats> {
    let t = principal.require_tenant(Access::Read)?;
    repo::stats(db.reader(), t.tenant_id, member).await
}

pub async fn awards(db: &Db, principal: &Principal, purchase: Uuid) -> AppResult<Vec<Award>> {
    principal.require_tenant(Access::Read)?;
    repo::awards_of(db.reader(), purchase).await
}

pub async fn domain_events(
    db: &Db,
    principal: &Principal,
    kind: Option<&str>,
    member: Option<MemberId>,
    page: PageRequest,
) -> AppResult<Page<outbox::DomainEvent>> {
    let t = principal.require_tenant(Access::Read)?;
    outbox::list(db.reader(), t.tenant_id, kind, member, page).await
}
