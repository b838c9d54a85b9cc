//! The first-party plugins (`plugins/*`), built to WebAssembly components by `build.rs` and
//! embedded in the binary, so every tenant can bind them without uploading anything.
//!
//! The list of crates lives in `build.rs` (`PLUGINS`). A plugin's name, version and kind come
//! from the component itself (its `metadata()` export), read by the host when it loads it.

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

#[cfg(test)]
mod tests {
    #[test]
    fn every_bundled_plugin_is_a_component() {
        assert!(!super::COMPONENTS.is_empty());
        for (name, bytes) in super::COMPONENTS {
            // The component-model preamble: magic, then layer 1 (component), version 0x0d.
            assert_eq!(&bytes[..4], b"\0asm", "{name}");
            assert_eq!(
                &bytes[6..8],
                &[1, 0],
                "{name} is a core module, not a component"
            );
        }
    }
}
