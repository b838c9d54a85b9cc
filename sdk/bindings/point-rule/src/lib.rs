//! Generated bindings of the `loyalty:plugin@1.0.0` world `point-rule`. Not for direct
//! use: `loyalty-sdk` wraps them behind plain traits and `export_plugin!`.
//!
//! Each world lives in its own crate because wit-bindgen's export macros are
//! `#[macro_export]` and the shared `types` interface would define the same macro
//! name once per world in a single crate.
#![doc(hidden)]

wit_bindgen::generate!({
    path: "../../wit/v1",
    world: "point-rule",
    pub_export_macro: true,
    export_macro_name: "export",
});
