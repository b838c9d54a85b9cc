//! Member operations: enrol, change, deactivate, erase, read.

use super::{EnrollRequest, Member, MemberFilter, MemberLimits, MemberPatch, MemberStatus, repo};
use crate::auth::{Access, Principal, TenantPrincipal};
use crate::db::{Batch, Db};
use crate::error::{AppError, AppResult, is_unique_violation};
use crate::idempotency::{self, IdempotencyKey};
use crate::ids::{MemberId, TenantId};
use crate::pagination::{Page, PageRequest};
use crate::tenants;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::ConnectionTrait;

/// Now, and today's date in the tenant's time zone.
async fn now_for(db: &Db, tenant: TenantId) -> AppResult<(DateTime<Utc>, NaiveDate)> {
    let t = tenants::service::get(db, tenant).await?;
    let now = db.now();
    Ok((now, now.with_timezone(&t.timezone).date_naive()))
}

/// Maps a unique violation of the member table to the CONFLICT a client can act on.
async fn conflict_for(
    conn: &impl ConnectionTrait,
    tenant: TenantId,
    m: &Member,
) -> AppResult<AppError> {
    if let Some(other) = repo::find_by_external_id(conn, tenant, &m.external_id).await?
        && other.id != m.id
    {
        return Ok(AppError::Conflict(format!(
            "a member with externalId {:?} already exists",
            m.external_id
        )));
    }
    if let Some(email) = &m.email
        && let Some(other) = repo::find_by_email(conn, tenant, email).await?
        && other.id != m.id
    {
        return Ok(AppError::Conflict(format!(
            "a member with email {email:?} already exists"
        )));
    }
    Ok(AppError::Conflict(
        "a member with this externalId or email already exists".into(),
    ))
}

/// Enrols a member and runs the enrolment through the tenant's point rules (welcome bonuses),
/// in one transaction.
pub async fn enroll(
    db: &Db,
    runtime: &crate::plugins::runtime::PluginRuntime,
    principal: &Principal,
    req: EnrollRequest,
    idempotency_key: Option<&str>,
    limits: MemberLimits,
) -> AppResult<Member> {
    let t = principal.require_tenant(Access::Write)?;
    let key = idempotency_key
        .map(|k| IdempotencyKey::new(t.tenant_id.to_string(), k, "enrollMember", &req))
        .transpose()?;
    let tenant = tenants::service::get(db, t.tenant_id).await?;
    let now = db.now();
    let today = now.with_timezone(&tenant.timezone).date_naive();
    let mut member = super::validate_enroll(&req, now, today, limits)?;
    member.tenant_id = t.tenant_id;
    let channel = req.channel.as_deref().map(super::channel).transpose()?;
    let referral_code = req
        .referral_code
        .as_deref()
        .map(crate::referrals::normalize_code)
        .transpose()?;
    let config = crate::events::pipeline::config(db, tenant.id).await?;
    let env = crate::events::pipeline::Env {
        db,
        runtime,
        tenant: &tenant,
        config: &config,
        awards_max: limits.plugin_awards_max,
    };
    // Outside the write lock: the welcome rules see a new member, known without a read.
    let rules = crate::events::service::enrollment_rules(env, &member, channel.as_deref()).await?;

    // A key used before answers with its member, without the write lock. A request with the
    // same key that gets there first is caught by the key's row: its insert fails the batch.
    if let Some(k) = &key
        && let Some(id) = idempotency::lookup(db.reader(), k).await?
    {
        return stored_result(db, t, &id).await;
    }

    // Under the write lock, on SQLite's write thread: one batch (the key, the member, what the
    // enrolment earned, the referral code) with the tier metric read after it, the tier the
    // points reach, an attribution when the member came with a referral code.
    let (db, runtime) = (db.clone(), runtime.clone());
    let awards_max = limits.plugin_awards_max;
    db.clone()
        .on_writer(async move {
            let env = crate::events::pipeline::Env {
                db: &db,
                runtime: &runtime,
                tenant: &tenant,
                config: &config,
                awards_max,
            };
            let txn = db.begin_write().await?;
            let mut batch = Batch::on(&txn);
            if let Some(k) = &key {
                idempotency::record_into(&mut batch, k, &member.id.to_string());
            }
            repo::insert_into(&mut batch, &member);
            let (_, active) =
                crate::events::service::enrolled_into(&mut batch, env, &member, rules, now)?;
            crate::referrals::service::code_into(&mut batch, &tenant, &member);
            let ladder = config.ladder.as_ref();
            let lifts = match active {
                true => vec![(member.id, None, now)],
                false => Vec::new(),
            };
            let reads = crate::tiers::service::metric_reads(db.backend(), &tenant, ladder, &lifts);
            let metrics = match batch.run_then_read(&txn, reads).await {
                Ok(rows) => rows,
                Err(e) if is_unique_violation(&e) => {
                    drop(txn);
                    return taken(&db, t, key.as_ref(), &member).await;
                }
                Err(e) => return Err(e.into()),
            };
            crate::tiers::service::upgrade_all_with(&txn, &tenant, ladder, lifts, &metrics).await?;
            if let Some(code) = referral_code.as_deref() {
                crate::referrals::service::attributed_in(&txn, &tenant, &member, code, now).await?;
            }
            txn.commit().await?;
            Ok(member)
        })
        .await
}

/// The answer to an enrolment whose batch hit a unique row (rolled back): the member of a
/// request with the same idempotency key that committed first, or the CONFLICT of a taken
/// externalId or email.
async fn taken(
    db: &Db,
    t: TenantPrincipal,
    key: Option<&IdempotencyKey>,
    member: &Member,
) -> AppResult<Member> {
    if let Some(k) = key
        && let Some(id) = idempotency::lookup(db.reader(), k).await?
    {
        return stored_result(db, t, &id).await;
    }
    Err(conflict_for(db.reader(), t.tenant_id, member).await?)
}

async fn stored_result(db: &Db, t: TenantPrincipal, id: &str) -> AppResult<Member> {
    let id = MemberId::parse(id).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!("idempotency record holds bad id {id:?}"))
    })?;
    repo::find(db.reader(), t.tenant_id, id)
        .await?
        .ok_or(AppError::not_found("member"))
}

pub async fn update(
    db: &Db,
    principal: &Principal,
    id: MemberId,
    patch: MemberPatch,
    limits: MemberLimits,
) -> AppResult<Member> {
    let t = principal.require_tenant(Access::Write)?;
    let (now, today) = now_for(db, t.tenant_id).await?;
    let txn = db.begin_write().await?;
    let current = repo::find(&txn, t.tenant_id, id)
        .await?
        .ok_or(AppError::not_found("member"))?;
    let updated = super::apply_patch(current, patch, now, today, limits)?;
    if let Err(e) = repo::save(&txn, &updated).await {
        if !e.is_unique_violation() {
            return Err(e);
        }
        drop(txn);
        return Err(conflict_for(db.reader(), t.tenant_id, &updated).await?);
    }
    txn.commit().await?;
    Ok(updated)
}

/// Sets the status; doing it twice is the same as once. An erased member stays erased.
pub async fn set_status(
    db: &Db,
    principal: &Principal,
    id: MemberId,
    status: MemberStatus,
) -> AppResult<Member> {
    let t = principal.require_tenant(Access::Write)?;
    let txn = db.begin_write().await?;
    let mut m = repo::find(&txn, t.tenant_id, id)
        .await?
        .ok_or(AppError::not_found("member"))?;
    if m.status == MemberStatus::Erased {
        return Err(AppError::validation(
            "id",
            "an erased member cannot be changed",
        ));
    }
    if m.status != status {
        m.status = status;
        m.updated_at = db.now();
        repo::save(&txn, &m).await?;
        txn.commit().await?;
    }
    Ok(m)
}

/// Removes personal data for good; history stays, anonymous. Idempotent.
pub async fn erase(db: &Db, principal: &Principal, id: MemberId) -> AppResult<Member> {
    let t = principal.require_tenant(Access::Write)?;
    let txn = db.begin_write().await?;
    let m = repo::find(&txn, t.tenant_id, id)
        .await?
        .ok_or(AppError::not_found("member"))?;
    if m.status == MemberStatus::Erased {
        return Ok(m);
    }
    let m = super::erased(m, db.now());
    repo::save(&txn, &m).await?;
    txn.commit().await?;
    tracing::info!(tenant = %t.tenant_id, member = %m.id, "member erased");
    Ok(m)
}

pub async fn get(db: &Db, principal: &Principal, id: MemberId) -> AppResult<Member> {
    let t = principal.require_tenant(Access::Read)?;
    repo::find(db.reader(), t.tenant_id, id)
        .await?
        .ok_or(AppError::not_found("member"))
}

/// [`get`] with the member's balances, in one statement.
pub async fn get_with_balances(
    db: &Db,
    principal: &Principal,
    id: MemberId,
) -> AppResult<(Member, crate::ledger::Balances)> {
    let t = principal.require_tenant(Access::Read)?;
    let (member, balances) = crate::events::repo::member_and_balances(db.reader(), t.tenant_id, id)
        .await?
        .ok_or(AppError::not_found("member"))?;
    Ok((member, balances.unwrap_or_default()))
}

pub async fn get_by_external_id(
    db: &Db,
    principal: &Principal,
    external_id: &str,
) -> AppResult<Member> {
    let t = principal.require_tenant(Access::Read)?;
    repo::find_by_external_id(db.reader(), t.tenant_id, external_id.trim())
        .await?
        .ok_or(AppError::not_found("member"))
}

pub async fn list(
    db: &Db,
    principal: &Principal,
    filter: MemberFilter,
    page: PageRequest,
) -> AppResult<Page<Member>> {
    let t = principal.require_tenant(Access::Read)?;
    repo::list(db.reader(), t.tenant_id, &filter, page).await
}
