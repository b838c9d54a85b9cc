//! Rebuilds the bindings when the WIT changes: `wit_bindgen::generate!` reads the files at
//! compile time, but cargo only knows to re-run it through this script.
fn main() {
    println!("cargo:rerun-if-changed=../../wit/v1");
    for entry in std::fs::read_dir("../../wit/v1")
        .into_iter()
        .flatten()
        .flatten()
    {
        println!("cargo:rerun-if-changed={}", entry.path().display());
    }
}
