//! The one error type of the service layer.
//!
//! Every fallible domain or service function returns [`AppError`]. The GraphQL edge maps it
//! once to `extensions.code` (see `graphql::error`); internal details are logged there, once,
//! and never reach the client.

use sea_orm::{DbErr, SqlErr};

/// An error a caller can act on, or an internal one that it cannot.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No key, or a key that is unknown or revoked.
    #[error("authentication required: send `Authorization: Bearer <api key>`")]
    Unauthenticated,
    /// The key is valid but its role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The object does not exist in the caller's tenant (another tenant's object included).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// Input that breaks a rule; `field` names the input field in the API's spelling.
    #[error("{message}")]
    Validation { field: String, message: String },
    /// A uniqueness rule or an idempotency key reused with a different request.
    #[error("{0}")]
    Conflict(String),
    /// A debit larger than the available balance.
    #[error("{0}")]
    InsufficientPoints(String),
    /// A reward cannot be redeemed now; `reason` is machine-readable (`OUT_OF_STOCK`,
    /// `LIMIT_REACHED`, `OUTSIDE_DATES`, `TIER_TOO_LOW`, `INACTIVE`, `REJECTED`).
    #[error("{message}")]
    RewardUnavailable {
        reason: &'static str,
        message: String,
    },
    /// A plugin failed (trapped, ran out of fuel or memory, returned invalid output) where its
    /// answer was needed, e.g. validating a config. The message names the failure kind.
    #[error("{0}")]
    Plugin(String),
    /// Anything the caller cannot fix. The detail is logged, not shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(what: &'static str) -> Self {
        Self::NotFound { what }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    /// True for a database unique violation (a natural key or id taken concurrently).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Internal(inner)
            if inner.downcast_ref::<DbErr>().is_some_and(is_unique_violation))
    }

    /// The stable code clients switch on (`extensions.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::Validation { .. } => "VALIDATION",
            Self::Conflict(_) => "CONFLICT",
            Self::InsufficientPoints(_) => "INSUFFICIENT_POINTS",
            Self::RewardUnavailable { .. } => "REWARD_UNAVAILABLE",
            Self::Plugin(_) => "PLUGIN_ERROR",
            Self::Internal(_) => "INTERNAL",
        }
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        Self::Internal(err.into())
    }
}

/// True when the error is a violated UNIQUE constraint (both backends).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
