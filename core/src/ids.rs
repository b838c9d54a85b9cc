//! Newtypes for identifiers, so a member id is never passed where a tenant id belongs.
//!
//! Ids are UUIDv7: unique across replicas without coordination, and ordered by creation time,
//! which makes them a stable keyset cursor for pagination.

use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the API's spelling of the id (a UUID string).
            pub fn parse(s: &str) -> Option<Self> {
                Uuid::parse_str(s).ok().map(Self)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A brand: the unit of isolation. Every query is scoped by it.
    TenantId
);
id_type!(
    /// A member of one tenant's club.
    MemberId
);
id_type!(
    /// An API key (its secret is never stored).
    ApiKeyId
);
id_type!(
    /// One uploaded or bundled plugin component (name, version, code).
    PluginVersionId
);
id_type!(
    /// A tenant's use of a plugin version, with its config.
    PluginBindingId
);
