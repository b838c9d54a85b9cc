//! Referral schemes: what a referrer and the member they referred earn
//! (WIT world `referral-scheme`).

use serde::{Deserialize, Serialize};

use crate::{Award, MemberEvent, MemberSnapshot, PluginMetadata};

/// Everything a referral scheme sees for one call.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReferralInput {
    /// The member who referred.
    pub referrer: MemberSnapshot,
    /// The member who was referred.
    pub referee: MemberSnapshot,
    /// The referee's event that may qualify the referral.
    pub event: MemberEvent,
    /// Who referred the referrer, and so on up: nearest first, at most the host's number of
    /// levels.
    #[serde(default)]
    pub upline: Vec<MemberSnapshot>,
    /// The plugin's config as JSON text, already accepted by
    /// [`ReferralScheme::validate_config`].
    pub config: String,
}

/// Awards for both sides of a referral.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReferralAwards {
    /// Credited to the referrer.
    pub referrer: Vec<Award>,
    /// Credited to the referee.
    pub referee: Vec<Award>,
    /// Credited to the upline, in the order of [`ReferralInput::upline`].
    #[serde(default)]
    pub upline: Vec<Vec<Award>>,
}

/// A referral scheme decides what both members earn when the referee does
/// something. Export it with
/// [`export_plugin!(MyScheme: referral_scheme)`](crate::export_plugin).
pub trait ReferralScheme {
    /// Describes the plugin.
    fn metadata() -> PluginMetadata;

    /// Checks a config before the host stores it; the error is shown to the admin.
    fn validate_config(config: &str) -> Result<(), String>;

    /// Awards for both members, or `None` when the event does not qualify the
    /// referral.
    fn evaluate(input: ReferralInput) -> Result<Option<ReferralAwards>, String>;
}
