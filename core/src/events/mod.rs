//! The events pipeline: purchases, returns, custom events, enrolments and birthdays.
//!
//! Every event runs the same steps in one database transaction (DESIGN.md section 6):
//! idempotency check -> member snapshot -> the tenant's point rules in order -> ledger entries
//! -> member statistics -> domain events appended to the outbox. A point rule that fails (trap,
//! fuel, deadline, bad output) is recorded and skipped; the event and the other rules' awards
//! still commit.
//!
//! This file holds the plain types and the input rules (no I/O).

pub mod birthdays;
pub mod outbox;
pub mod pipeline;
pub mod repo;
pub mod service;
pub mod writer;

use crate::error::{AppError, AppResult};
use crate::ids::MemberId;
use chrono::{DateTime, Duration, Utc};
use regex::Regex;
use serde::Serialize;
use std::sync::LazyLock;
use uuid::Uuid;

/// Longest order, return and event id accepted.
pub const ID_CHARS_MAX: usize = 128;
/// Largest quantity of one line.
pub const QUANTITY_MAX: i64 = 1_000_000;
/// Largest amount (minor units) of a unit price or an order total: 10^13, far above any basket.
pub const AMOUNT_MAX: i64 = 10_000_000_000_000;
/// How far in the future `occurredAt` may be (clock skew between a till and the server).
pub const FUTURE_SKEW_MINUTES: i64 = 5;

/// Where a purchase happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Channel {
    Online,
    Store,
    App,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "ONLINE",
            Self::Store => "STORE",
            Self::App => "APP",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ONLINE" => Some(Self::Online),
            "STORE" => Some(Self::Store),
            "APP" => Some(Self::App),
            _ => None,
        }
    }
}

/// Which member an event is about: our id or the brand's external id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum MemberRef {
    Id(MemberId),
    External(String),
}

impl MemberRef {
    /// Exactly one of the two must be given.
    pub fn from_input(id: Option<MemberId>, external_id: Option<String>) -> AppResult<Self> {
        match (id, external_id) {
            (Some(id), None) => Ok(Self::Id(id)),
            (None, Some(e)) if !e.trim().is_empty() => Ok(Self::External(e.trim().to_string())),
            _ => Err(AppError::validation(
                "memberId",
                "give exactly one of memberId and externalId",
            )),
        }
    }
}

/// One line of a purchase as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineInput {
    pub sku: String,
    pub category: Option<String>,
    pub quantity: i64,
    pub unit_price: i64,
}

/// `recordPurchase`'s input. Its canonical JSON is what the order id protects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PurchaseRequest {
    pub order_id: String,
    pub member: MemberRef,
    pub occurred_at: Option<DateTime<Utc>>,
    pub currency: String,
    pub total: i64,
    pub channel: Channel,
    pub store_id: Option<String>,
    pub lines: Vec<LineInput>,
}

/// One returned line: which line of the order, how many units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ReturnLine {
    pub line_index: i64,
    pub quantity: i64,
}

/// `recordReturn`'s input: returned lines, or a refunded amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReturnRequest {
    pub order_id: String,
    pub return_id: String,
    pub lines: Option<Vec<ReturnLine>>,
    pub amount: Option<i64>,
}

/// `recordEvent`'s input.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CustomEventRequest {
    pub member: MemberRef,
    pub event_type: String,
    pub event_id: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub properties: Option<serde_json::Value>,
}

/// A stored purchase line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PurchaseLine {
    pub line_index: i32,
    pub sku: String,
    pub category: Option<String>,
    pub quantity: i32,
    pub unit_price: i64,
    pub returned_quantity: i32,
}

impl PurchaseLine {
    pub fn amount(&self) -> i64 {
        self.unit_price.saturating_mul(i64::from(self.quantity))
    }
}

/// A stored purchase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purchase {
    pub id: Uuid,
    pub member_id: MemberId,
    pub order_id: String,
    pub request_hash: String,
    pub occurred_at: DateTime<Utc>,
    pub currency: String,
    pub total: i64,
    pub channel: Channel,
    pub store_id: Option<String>,
    pub lines: Vec<PurchaseLine>,
    pub returned_amount: i64,
    pub points_earned: i64,
    pub created_at: DateTime<Utc>,
}

/// A stored return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurchaseReturn {
    pub id: Uuid,
    pub purchase_id: Uuid,
    pub member_id: MemberId,
    pub order_id: String,
    pub return_id: String,
    pub request_hash: String,
    pub amount: i64,
    pub points_clawed_back: i64,
    pub created_at: DateTime<Utc>,
}

/// Points one rule gave for one event, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Award {
    pub id: Uuid,
    pub points: i64,
    pub reason_code: String,
    pub plugin_name: String,
    pub plugin_version: String,
    pub binding_id: Uuid,
    pub line_index: Option<i32>,
    /// The ledger entry that credited the points (none in a simulation's answer).
    pub entry_id: Option<Uuid>,
    pub clawed_back: i64,
}

/// A point rule that gave no answer for an event; the event went on without it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PluginError {
    pub plugin_name: String,
    pub plugin_version: String,
    /// `trap`, `out-of-fuel`, `deadline`, `out-of-memory`, `invalid-output`, `plugin-error`...
    pub code: String,
    pub message: String,
}

/// A member's purchase statistics, kept with every purchase and return.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberStats {
    /// Net of refunds, in the tenant's currency.
    pub lifetime_spend: i64,
    pub purchase_count: i64,
    pub first_purchase_at: Option<DateTime<Utc>>,
    pub last_purchase_at: Option<DateTime<Utc>>,
}

impl MemberStats {
    /// Lifetime spend over purchase count, rounded down; 0 before the first purchase.
    pub fn average_order_value(&self) -> i64 {
        if self.purchase_count == 0 {
            0
        } else {
            self.lifetime_spend / self.purchase_count
        }
    }
}

/// What an event did (or, simulated, would do).
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub awards: Vec<Award>,
    pub errors: Vec<PluginError>,
    /// True when the event was recorded before and this answer is the stored one.
    pub replayed: bool,
}

/// An order, return or event id: 1 to 128 characters, no control characters.
pub fn external_id(field: &'static str, value: &str) -> AppResult<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > ID_CHARS_MAX || v.chars().any(char::is_control) {
        return Err(AppError::validation(
            field,
            format!("{field} must be 1 to {ID_CHARS_MAX} characters without control characters"),
        ));
    }
    Ok(v.to_string())
}

fn short_text(field: &'static str, value: &str, max: usize) -> AppResult<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(AppError::validation(
            field,
            format!("{field} must be 1 to {max} characters"),
        ));
    }
    Ok(v.to_string())
}

/// `occurredAt`, defaulting to now, at most a few minutes ahead of the server's clock.
pub fn occurred_at(value: Option<DateTime<Utc>>, now: DateTime<Utc>) -> AppResult<DateTime<Utc>> {
    let at = value.unwrap_or(now);
    if at > now + Duration::minutes(FUTURE_SKEW_MINUTES) {
        return Err(AppError::validation(
            "occurredAt",
            format!("occurredAt is in the future (more than {FUTURE_SKEW_MINUTES} minutes ahead)"),
        ));
    }
    Ok(chrono::SubsecRound::trunc_subsecs(at, 6))
}

/// Checks and normalises a purchase for `currency` (the tenant's).
pub fn validate_purchase(
    req: &PurchaseRequest,
    currency: &str,
    lines_max: usize,
) -> AppResult<PurchaseRequest> {
    let mut out = req.clone();
    out.order_id = external_id("orderId", &req.order_id)?;
    if req.currency.trim() != currency {
        return Err(AppError::validation(
            "currency",
            format!(
                "this club's purchases are in {currency}; got {:?}",
                req.currency
            ),
        ));
    }
    out.currency = currency.to_string();
    if !(0..=AMOUNT_MAX).contains(&req.total) {
        return Err(AppError::validation(
            "total",
            format!("total must be between 0 and {AMOUNT_MAX} minor units"),
        ));
    }
    if req.lines.len() > lines_max {
        return Err(AppError::validation(
            "lines",
            format!(
                "a purchase has at most {lines_max} lines (api.purchase_lines_max); got {}",
                req.lines.len()
            ),
        ));
    }
    out.store_id = req
        .store_id
        .as_deref()
        .map(|s| short_text("storeId", s, ID_CHARS_MAX))
        .transpose()?;
    for (i, line) in out.lines.iter_mut().enumerate() {
        line.sku = short_text("lines.sku", &line.sku, ID_CHARS_MAX)
            .map_err(|_| line_error(i, "sku must be 1 to 128 characters"))?;
        line.category = match line.category.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(c) => Some(
                short_text("lines.category", c, ID_CHARS_MAX)
                    .map_err(|_| line_error(i, "category must be at most 128 characters"))?,
            ),
        };
        if !(1..=QUANTITY_MAX).contains(&line.quantity) {
            return Err(line_error(
                i,
                &format!("quantity must be between 1 and {QUANTITY_MAX}"),
            ));
        }
        if !(0..=AMOUNT_MAX).contains(&line.unit_price) {
            return Err(line_error(
                i,
                &format!("unitPrice must be between 0 and {AMOUNT_MAX} minor units"),
            ));
        }
    }
    Ok(out)
}

fn line_error(i: usize, message: &str) -> AppError {
    AppError::validation("lines", format!("line {i}: {message}"))
}

static EVENT_TYPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9_.-]{0,63}$").expect("static regex"));

/// A custom event type: lower-case, e.g. `review.written`, `survey_answered`.
pub fn event_type(value: &str) -> AppResult<String> {
    let v = value.trim();
    if !EVENT_TYPE.is_match(v) {
        return Err(AppError::validation(
            "type",
            format!(
                "type must be 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with \
                 a letter (e.g. \"review.written\"); got {value:?}"
            ),
        ));
    }
    Ok(v.to_string())
}

/// Custom event properties: a JSON object of at most `bytes_max` bytes.
pub fn properties(value: Option<&serde_json::Value>, bytes_max: usize) -> AppResult<String> {
    let v = match value {
        None | Some(serde_json::Value::Null) => return Ok("{}".into()),
        Some(v @ serde_json::Value::Object(_)) => v,
        Some(_) => {
            return Err(AppError::validation(
                "properties",
                "properties must be a JSON object",
            ));
        }
    };
    let text = serde_json::to_string(v).map_err(AppError::internal)?;
    if text.len() > bytes_max {
        return Err(AppError::validation(
            "properties",
            format!(
                "properties are {} bytes, over the limit of {bytes_max} \
                 (api.event_properties_bytes_max)",
                text.len()
            ),
        ));
    }
    Ok(text)
}

/// Checks a return's shape: an id, and either lines or an amount.
pub fn validate_return(req: &ReturnRequest) -> AppResult<ReturnRequest> {
    let mut out = req.clone();
    out.order_id = external_id("orderId", &req.order_id)?;
    out.return_id = external_id("returnId", &req.return_id)?;
    match (&req.lines, req.amount) {
        (Some(lines), None) => {
            if lines.is_empty() {
                return Err(AppError::validation("lines", "lines must not be empty"));
            }
            for l in lines {
                if l.quantity < 1 || l.line_index < 0 {
                    return Err(AppError::validation(
                        "lines",
                        "each returned line needs a lineIndex >= 0 and a quantity >= 1",
                    ));
                }
            }
        }
        (None, Some(amount)) => {
            if !(1..=AMOUNT_MAX).contains(&amount) {
                return Err(AppError::validation(
                    "amount",
                    format!("amount must be between 1 and {AMOUNT_MAX} minor units"),
                ));
            }
        }
        _ => {
            return Err(AppError::validation(
                "lines",
                "give exactly one of lines and amount",
            ));
        }
    }
    Ok(out)
}

/// The points of an award that `returned / of` of its basis takes back, over all returns so
/// far: proportional, rounded down, and all of it when everything came back.
pub fn clawback_target(points: i64, returned: i64, of: i64) -> i64 {
    if of <= 0 || returned >= of {
        return points;
    }
    let share = i128::from(points) * i128::from(returned.max(0)) / i128::from(of);
    i64::try_from(share).unwrap_or(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purchase() -> PurchaseRequest {
        PurchaseRequest {
            order_id: " o-1 ".into(),
            member: MemberRef::External("m".into()),
            occurred_at: None,
            currency: "EUR".into(),
            total: 1000,
            channel: Channel::Online,
            store_id: None,
            lines: vec![LineInput {
                sku: "A".into(),
                category: Some(" ".into()),
                quantity: 2,
                unit_price: 500,
            }],
        }
    }

    #[test]
    fn purchases_are_checked_and_normalised() {
        let ok = validate_purchase(&purchase(), "EUR", 10).expect("valid");
        assert_eq!(ok.order_id, "o-1");
        assert_eq!(ok.lines[0].category, None);
        let bad = |f: &dyn Fn(&mut PurchaseRequest)| {
            let mut p = purchase();
            f(&mut p);
            validate_purchase(&p, "EUR", 1).expect_err("invalid").code()
        };
        assert_eq!(bad(&|p| p.currency = "USD".into()), "VALIDATION");
        assert_eq!(bad(&|p| p.total = -1), "VALIDATION");
        assert_eq!(bad(&|p| p.order_id = "".into()), "VALIDATION");
        assert_eq!(bad(&|p| p.lines[0].quantity = 0), "VALIDATION");
        assert_eq!(bad(&|p| p.lines[0].unit_price = -5), "VALIDATION");
        assert_eq!(bad(&|p| p.lines.push(p.lines[0].clone())), "VALIDATION");
    }

    #[test]
    fn clawback_is_proportional_and_complete_at_the_end() {
        assert_eq!(clawback_target(25, 0, 2599), 0);
        assert_eq!(clawback_target(25, 1000, 2599), 9);
        assert_eq!(clawback_target(25, 2599, 2599), 25);
        assert_eq!(clawback_target(7, 1, 3), 2);
        assert_eq!(clawback_target(7, 2, 3), 4);
        assert_eq!(clawback_target(7, 3, 3), 7);
        assert_eq!(clawback_target(10, 5, 0), 10);
    }

    #[test]
    fn event_types_and_properties() {
        assert!(event_type("review.written").is_ok());
        assert!(event_type("Has Spaces").is_err());
        assert_eq!(properties(None, 10).expect("none"), "{}");
        assert!(properties(Some(&serde_json::json!([1])), 100).is_err());
        assert!(properties(Some(&serde_json::json!({"k": "vvvvvvvvvvvv"})), 10).is_err());
    }
}
