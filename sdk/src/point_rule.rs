//! Point rules: one member event in, point awards out (WIT world `point-rule`).

use serde::{Deserialize, Serialize};

use crate::{Award, MemberEvent, MemberSnapshot, PluginMetadata};

/// Everything a point rule sees for one call.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PointRuleInput {
    /// The event to score.
    pub event: MemberEvent,
    /// The member as they were just before the event.
    pub member: MemberSnapshot,
    /// The plugin's config as JSON text, already accepted by
    /// [`PointRule::validate_config`].
    pub config: String,
}

/// A point rule turns one member event into point awards.
///
/// Implement it on a unit struct and export it with
/// [`export_plugin!(MyRule: point_rule)`](crate::export_plugin). The host makes a
/// fresh instance for every call, so there is no state to keep: every function is
/// an associated function.
pub trait PointRule {
    /// Describes the plugin.
    fn metadata() -> PluginMetadata;

    /// Checks a config before the host stores it. The error message is shown to the
    /// tenant's admin, so say what is wrong and what is expected.
    fn validate_config(config: &str) -> Result<(), String>;

    /// Awards for one event; an empty list when the rule does not apply. An error
    /// skips the rule for this event and is recorded by the host.
    fn evaluate(input: PointRuleInput) -> Result<Vec<Award>, String>;
}
