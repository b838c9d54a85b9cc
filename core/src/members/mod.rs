//! Members: the people in a tenant's club.
//!
//! A member is identified by the brand's own `externalId` (their CRM or shop customer id) and
//! by our id. `email` is unique per tenant when present. Erasing a member removes personal data
//! and keeps the row, so points history and statistics stay whole and anonymous.
//!
//! This file holds the plain types and the input rules (no I/O).

pub mod repo;
pub mod service;

use crate::error::{AppError, AppResult};
use crate::ids::{MemberId, TenantId};
use crate::validate::{self, Patch};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum MemberStatus {
    Active,
    Deactivated,
    Erased,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Deactivated => "DEACTIVATED",
            Self::Erased => "ERASED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(Self::Active),
            "DEACTIVATED" => Some(Self::Deactivated),
            "ERASED" => Some(Self::Erased),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Consents {
    pub email: bool,
    pub sms: bool,
}

/// A member as the service layer returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub id: MemberId,
    pub tenant_id: TenantId,
    pub external_id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub birthday: Option<NaiveDate>,
    pub locale: Option<String>,
    pub tags: Vec<String>,
    pub consents: Consents,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub status: MemberStatus,
    pub enrolled_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub erased_at: Option<DateTime<Utc>>,
}

/// `enrollMember`'s input as received. It is also what an idempotency key protects.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EnrollRequest {
    pub external_id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub birthday: Option<NaiveDate>,
    pub locale: Option<String>,
    pub tags: Vec<String>,
    pub consents: Consents,
    pub attributes: Option<serde_json::Value>,
    /// Where the member joined ("web", "pos", "app"); point rules see it.
    pub channel: Option<String>,
    /// Another member's referral code: attributes the new member to them.
    pub referral_code: Option<String>,
}

/// `updateMember`'s input: absent fields stay, explicit nulls clear.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemberPatch {
    pub external_id: Option<String>,
    pub email: Patch<String>,
    pub phone: Patch<String>,
    pub first_name: Patch<String>,
    pub last_name: Patch<String>,
    pub birthday: Patch<NaiveDate>,
    pub locale: Patch<String>,
    pub tags: Option<Vec<String>>,
    pub consent_email: Option<bool>,
    pub consent_sms: Option<bool>,
    pub attributes: Option<serde_json::Value>,
}

/// Filters of the `members` connection; all given ones must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberFilter {
    pub tag: Option<String>,
    pub email: Option<String>,
    pub enrolled_from: Option<DateTime<Utc>>,
    pub enrolled_before: Option<DateTime<Utc>>,
    pub status: Option<MemberStatus>,
}

/// Limits on member data, from `api.*` settings.
#[derive(Clone, Copy, Debug)]
pub struct MemberLimits {
    pub attributes_bytes_max: usize,
    pub tags_max: usize,
    /// `api.plugin_awards_max`, for the enrolment's point rules.
    pub plugin_awards_max: usize,
}

impl MemberLimits {
    pub fn from_api(api: &crate::config::ApiSettings) -> Self {
        Self {
            attributes_bytes_max: api.member_attributes_bytes_max,
            tags_max: api.member_tags_max,
            plugin_awards_max: api.plugin_awards_max,
        }
    }
}

/// Where a member joined: 1 to 32 characters, e.g. "web", "pos", "app".
pub fn channel(value: &str) -> AppResult<String> {
    validate::text("channel", value, 32)
}

/// Checks and normalises an enrolment. `today` is the date in the tenant's time zone.
pub fn validate_enroll(
    req: &EnrollRequest,
    now: DateTime<Utc>,
    today: NaiveDate,
    limits: MemberLimits,
) -> AppResult<Member> {
    Ok(Member {
        id: MemberId::new(),
        tenant_id: TenantId(uuid::Uuid::nil()),
        external_id: external_id(&req.external_id)?,
        email: req
            .email
            .as_deref()
            .map(|e| validate::email("email", e))
            .transpose()?,
        phone: req
            .phone
            .as_deref()
            .map(|p| validate::phone("phone", p))
            .transpose()?,
        first_name: req
            .first_name
            .as_deref()
            .map(|n| validate::text("firstName", n, 100))
            .transpose()?,
        last_name: req
            .last_name
            .as_deref()
            .map(|n| validate::text("lastName", n, 100))
            .transpose()?,
        birthday: req.birthday.map(|b| birthday(b, today)).transpose()?,
        locale: req
            .locale
            .as_deref()
            .map(|l| validate::locale("locale", l))
            .transpose()?,
        tags: tags(&req.tags, limits)?,
        consents: req.consents,
        attributes: attributes(req.attributes.clone(), limits)?,
        status: MemberStatus::Active,
        enrolled_at: now,
        updated_at: now,
        erased_at: None,
    })
}

/// Applies a validated patch to a member (pure; the caller stores the result).
pub fn apply_patch(
    mut m: Member,
    patch: MemberPatch,
    now: DateTime<Utc>,
    today: NaiveDate,
    limits: MemberLimits,
) -> AppResult<Member> {
    if m.status == MemberStatus::Erased {
        return Err(AppError::validation(
            "id",
            "an erased member cannot be changed",
        ));
    }
    if let Some(e) = patch.external_id {
        m.external_id = external_id(&e)?;
    }
    m.email = patch
        .email
        .try_map(|e| validate::email("email", &e))?
        .apply(m.email);
    m.phone = patch
        .phone
        .try_map(|p| validate::phone("phone", &p))?
        .apply(m.phone);
    m.first_name = patch
        .first_name
        .try_map(|n| validate::text("firstName", &n, 100))?
        .apply(m.first_name);
    m.last_name = patch
        .last_name
        .try_map(|n| validate::text("lastName", &n, 100))?
        .apply(m.last_name);
    m.birthday = patch
        .birthday
        .try_map(|b| birthday(b, today))?
        .apply(m.birthday);
    m.locale = patch
        .locale
        .try_map(|l| validate::locale("locale", &l))?
        .apply(m.locale);
    if let Some(t) = patch.tags {
        m.tags = tags(&t, limits)?;
    }
    if let Some(v) = patch.consent_email {
        m.consents.email = v;
    }
    if let Some(v) = patch.consent_sms {
        m.consents.sms = v;
    }
    if let Some(a) = patch.attributes {
        m.attributes = attributes(Some(a), limits)?;
    }
    m.updated_at = now;
    Ok(m)
}

/// The member with every piece of personal data removed.
pub fn erased(mut m: Member, now: DateTime<Utc>) -> Member {
    m.external_id = format!("erased:{}", m.id);
    m.email = None;
    m.phone = None;
    m.first_name = None;
    m.last_name = None;
    m.birthday = None;
    m.locale = None;
    m.tags = Vec::new();
    m.consents = Consents::default();
    m.attributes = serde_json::Map::new();
    m.status = MemberStatus::Erased;
    m.updated_at = now;
    m.erased_at = Some(now);
    m
}

fn external_id(value: &str) -> AppResult<String> {
    let v = validate::text("externalId", value, 128)?;
    if v.starts_with("erased:") {
        return Err(AppError::validation(
            "externalId",
            "externalId must not start with `erased:` (reserved for erased members)",
        ));
    }
    Ok(v)
}

fn birthday(b: NaiveDate, today: NaiveDate) -> AppResult<NaiveDate> {
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    if b > today {
        return Err(AppError::validation(
            "birthday",
            format!("birthday {b} is in the future (today is {today} in the tenant's time zone)"),
        ));
    }
    if b < earliest {
        return Err(AppError::validation(
            "birthday",
            "birthday must be in 1900 or later",
        ));
    }
    Ok(b)
}

fn tags(input: &[String], limits: MemberLimits) -> AppResult<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(input.len());
    for t in input {
        let t = validate::text("tags", t, 64)?;
        if !t
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        {
            return Err(AppError::validation(
                "tags",
                format!("tag {t:?} may only hold letters, digits and - _ : ."),
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > limits.tags_max {
        return Err(AppError::validation(
            "tags",
            format!(
                "a member may carry at most {} tags (api.member_tags_max)",
                limits.tags_max
            ),
        ));
    }
    Ok(out)
}

fn attributes(
    value: Option<serde_json::Value>,
    limits: MemberLimits,
) -> AppResult<serde_json::Map<String, serde_json::Value>> {
    let map = match value {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(map)) => map,
        Some(_) => {
            return Err(AppError::validation(
                "attributes",
                "attributes must be a JSON object",
            ));
        }
    };
    let size = serde_json::to_vec(&map)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > limits.attributes_bytes_max {
        return Err(AppError::validation(
            "attributes",
            format!(
                "attributes are {size} bytes; at most {} are allowed (api.member_attributes_bytes_max)",
                limits.attributes_bytes_max
            ),
        ));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: MemberLimits = MemberLimits {
        attributes_bytes_max: 64,
        tags_max: 2,
        plugin_awards_max: 10,
    };

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 1).expect("date")
    }

    fn req() -> EnrollRequest {
        EnrollRequest {
            external_id: "c-1".into(),
            ..Default::default()
        }
    }

    fn field_of(r: AppResult<Member>) -> String {
        match r {
            Err(AppError::Validation { field, .. }) => field,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(&str, EnrollRequest)> = vec![
            (
                "externalId",
                EnrollRequest {
                    external_id: " ".into(),
                    ..req()
                },
            ),
            (
                "externalId",
                EnrollRequest {
                    external_id: "erased:x".into(),
                    ..req()
                },
            ),
            (
                "email",
                EnrollRequest {
                    email: Some("nope".into()),
                    ..req()
                },
            ),
            (
                "phone",
                EnrollRequest {
                    phone: Some("0612".into()),
                    ..req()
                },
            ),
            (
                "birthday",
                EnrollRequest {
                    birthday: NaiveDate::from_ymd_opt(2026, 6, 2),
                    ..req()
                },
            ),
            (
                "birthday",
                EnrollRequest {
                    birthday: NaiveDate::from_ymd_opt(1850, 1, 1),
                    ..req()
                },
            ),
            (
                "locale",
                EnrollRequest {
                    locale: Some("!!".into()),
                    ..req()
                },
            ),
            (
                "tags",
                EnrollRequest {
                    tags: vec!["a".into(), "b".into(), "c".into()],
                    ..req()
                },
            ),
            (
                "tags",
                EnrollRequest {
                    tags: vec!["no spaces".into()],
                    ..req()
                },
            ),
            (
                "attributes",
                EnrollRequest {
                    attributes: Some(serde_json::json!([1])),
                    ..req()
                },
            ),
            (
                "attributes",
                EnrollRequest {
                    attributes: Some(serde_json::json!({"k": "x".repeat(100)})),
                    ..req()
                },
            ),
        ];
        for (field, r) in cases {
            assert_eq!(
                field_of(validate_enroll(&r, Utc::now(), today(), LIMITS)),
                field,
                "{r:?}"
            );
        }
    }

    #[test]
    fn birthday_today_is_fine_and_tags_dedupe() {
        let r = EnrollRequest {
            birthday: Some(today()),
            tags: vec!["vip".into(), "vip".into()],
            ..req()
        };
        let m = validate_enroll(&r, Utc::now(), today(), LIMITS).expect("valid");
        assert_eq!(m.tags, vec!["vip".to_string()]);
    }

    #[test]
    fn erase_removes_personal_data_and_patches_are_refused_after() {
        let r = EnrollRequest {
            email: Some("a@b.co".into()),
            first_name: Some("Ann".into()),
            ..req()
        };
        let m = erased(
            validate_enroll(&r, Utc::now(), today(), LIMITS).expect("valid"),
            Utc::now(),
        );
        assert_eq!(m.email, None);
        assert_eq!(m.first_name, None);
        assert!(m.external_id.starts_with("erased:"));
        assert_eq!(m.status, MemberStatus::Erased);
        assert!(apply_patch(m, MemberPatch::default(), Utc::now(), today(), LIMITS).is_err());
    }
}
