//! Authoring helpers behind the `loyalty plugin` commands: [`scaffold`] a plugin
//! crate, [`build`] its component, [`run`] it locally with a usage report (like
//! Shopify's function runner).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use loyalty_sdk as sdk;
use serde::Serialize;

use crate::call::json_bytes;
use crate::{FailureKind, Limits, LoadError, PluginHost, PluginKind, Usage};

mod templates;

/// The target plugins are built for.
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// Longest plugin name; it becomes a crate name and a ledger reason code.
const NAME_BYTES_MAX: usize = 64;
/// Tail of cargo's output kept in an error.
const CARGO_OUTPUT_BYTES_MAX: usize = 4000;

/// Why an authoring step failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    /// The plugin name is not a valid crate name.
    #[error("invalid plugin name `{0}`: use 1 to 64 of a-z, 0-9 and -, starting with a letter")]
    Name(String),
    /// The directory already holds a Cargo.toml or a src/lib.rs.
    #[error("{0} already holds a crate")]
    Exists(PathBuf),
    /// Reading or writing a file, or starting a program, failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// cargo or rustup failed; the tail of their output.
    #[error("{command} failed:\n{output}")]
    Command {
        /// The command line.
        command: String,
        /// The tail of its output.
        output: String,
    },
    /// The core module could not be turned into a component (e.g. it imports
    /// WASI).
    #[error("cannot encode the component: {0}")]
    Encode(String),
    /// The host refused the component.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The input JSON does not fit the plugin's kind.
    #[error("invalid input for a {kind} plugin: {message}")]
    Input {
        /// The plugin's kind.
        kind: PluginKind,
        /// What is wrong.
        message: String,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> AuthorError {
    let context = context.into();
    move |source| AuthorError::Io { context, source }
}

/// Writes a new plugin crate of `kind` into `dir` (created if missing): a
/// Cargo.toml depending on the SDK at `sdk_path`, and a `src/lib.rs` that
/// implements the kind's trait with native unit tests. Returns the path of the
/// Cargo.toml. The crate is its own workspace, wherever it is written.
pub fn scaffold(
    name: &str,
    kind: PluginKind,
    dir: &Path,
    sdk_path: &Path,
) -> Result<PathBuf, AuthorError> {
    let valid = !name.is_empty()
        && name.len() <= NAME_BYTES_MAX
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        return Err(AuthorError::Name(name.to_owned()));
    }
    let manifest = dir.join("Cargo.toml");
    let lib = dir.join("src").join("lib.rs");
    if manifest.exists() || lib.exists() {
        return Err(AuthorError::Exists(dir.to_owned()));
    }
    let sdk_path = std::fs::canonicalize(sdk_path)
        .map_err(io(format!("cannot find the SDK at {}", sdk_path.display())))?;
    std::fs::create_dir_all(dir.join("src"))
        .map_err(io(format!("cannot create {}", dir.display())))?;
    std::fs::write(&manifest, templates::cargo_toml(name, &sdk_path))
        .map_err(io(format!("cannot write {}", manifest.display())))?;
    std::fs::write(&lib, templates::lib_rs(name, kind))
        .map_err(io(format!("cannot write {}", lib.display())))?;
    Ok(manifest)
}

/// Builds the plugin crate in `dir` for wasm32 (adding the target with rustup
/// if needed) and encodes the component; returns the component's path, next to
/// the core module in cargo's target directory.
pub fn build(dir: &Path) -> Result<PathBuf, AuthorError> {
    build_in(dir, None)
}

/// [`build`] with an explicit cargo target directory.
pub fn build_in(dir: &Path, target_dir: Option<&Path>) -> Result<PathBuf, AuthorError> {
    ensure_wasm_target()?;
    let manifest = dir.join("Cargo.toml");
    let (package, lib_name, metadata_target_dir) = package_of(&manifest)?;
    let target_dir = target_dir.map_or(metadata_target_dir, Path::to_owned);
    let mut cargo = Command::new(cargo_program());
    cargo
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--package",
            &package,
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir);
    run_command(&mut cargo)?;
    let release = target_dir.join(WASM_TARGET).join("release");
    let module_path = release.join(format!("{lib_name}.wasm"));
    let module = std::fs::read(&module_path)
        .map_err(io(format!("cannot read {}", module_path.display())))?;
    let component = encode_component(&module)?;
    let component_path = release.join(format!("{lib_name}.component.wasm"));
    std::fs::write(&component_path, component)
        .map_err(io(format!("cannot write {}", component_path.display())))?;
    Ok(component_path)
}

/// Encodes a core module built with the SDK into a component, validating it.
pub fn encode_component(module: &[u8]) -> Result<Vec<u8>, AuthorError> {
    wit_component::ComponentEncoder::default()
        .module(module)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| AuthorError::Encode(format!("{e:#}")))
}

fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Adds the wasm32 target with rustup when it is missing. Without rustup the
/// toolchain is assumed to have it; cargo says so otherwise.
fn ensure_wasm_target() -> Result<(), AuthorError> {
    let listed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match listed {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("cannot run rustup")(e)),
        Ok(out)
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == WASM_TARGET) =>
        {
            Ok(())
        }
        Ok(_) => run_command(Command::new("rustup").args(["target", "add", WASM_TARGET])),
    }
}

/// The package name, the library's file stem and cargo's target directory of
/// the crate at `manifest`.
fn package_of(manifest: &Path) -> Result<(String, String, PathBuf), AuthorError> {
    let mut cargo = Command::new(cargo_program());
    cargo
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(manifest);
    let stdout = run_command_stdout(&mut cargo)?;
    let bad = |message: &str| AuthorError::Command {
        command: format!("cargo metadata --manifest-path {}", manifest.display()),
        output: message.to_owned(),
    };
    let metadata: serde_json::Value =
        serde_json::from_slice(&stdout).map_err(|e| bad(&e.to_string()))?;
    let wanted = std::fs::canonicalize(manifest)
        .map_err(io(format!("cannot find {}", manifest.display())))?;
    let package = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["manifest_path"]
                .as_str()
                .and_then(|m| std::fs::canonicalize(m).ok())
                .is_some_and(|m| m == wanted)
        })
        .ok_or_else(|| bad("the manifest's package is not in cargo metadata"))?;
    let name = package["name"]
        .as_str()
        .ok_or_else(|| bad("package without a name"))?;
    let lib = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        })
        .and_then(|t| t["name"].as_str())
        .ok_or_else(|| {
            bad("the package has no cdylib target; add crate-type = [\"cdylib\", \"rlib\"]")
        })?;
    let target_dir = metadata["target_directory"]
        .as_str()
        .ok_or_else(|| bad("no target_directory"))?;
    Ok((
        name.to_owned(),
        lib.replace('-', "_"),
        PathBuf::from(target_dir),
    ))
}

fn run_command(command: &mut Command) -> Result<(), AuthorError> {
    run_command_stdout(command).map(drop)
}

fn run_command_stdout(command: &mut Command) -> Result<Vec<u8>, AuthorError> {
    let line = format!("{command:?}");
    let out = command.output().map_err(io(format!("cannot run {line}")))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let start = text
        .char_indices()
        .map(|(i, _)| i)
        .find(|&i| text.len() - i <= CARGO_OUTPUT_BYTES_MAX)
        .unwrap_or(0);
    Err(AuthorError::Command {
        command: line,
        output: text[start..].to_owned(),
    })
}

/// The result of [`run`]: the plugin's output and what the call cost.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// What the plugin says about itself.
    pub plugin: sdk::PluginMetadata,
    /// Its world.
    pub kind: PluginKind,
    /// SHA-256 of the component.
    pub digest: String,
    /// The function whose usage is reported: `validate-config` when the config
    /// was refused, else `evaluate` or `quote`.
    pub function: &'static str,
    /// The plugin's answer as JSON (`{"Ok": ...}` or `{"Err": ...}`), unless
    /// the call failed.
    pub output: Option<serde_json::Value>,
    /// Why the call failed, if it did.
    pub failure: Option<FailureKind>,
    /// What the call cost.
    pub usage: Usage,
    /// Size of `output` as JSON.
    pub output_bytes: usize,
    /// The limits of the run.
    pub limits: Limits,
}

/// Loads `wasm_bytes`, validates `config_json` and calls the plugin once with
/// `input_json` (the input record of the plugin's kind as JSON; its `config`
/// field is set from `config_json`).
pub fn run(
    host: &PluginHost,
    wasm_bytes: &[u8],
    input_json: &str,
    config_json: &str,
) -> Result<Report, AuthorError> {
    let plugin = host.load(wasm_bytes)?;
    let kind = plugin.kind();
    let mut report = Report {
        plugin: plugin.metadata().clone(),
        kind,
        digest: plugin.digest().to_owned(),
        function: "validate-config",
        output: None,
        failure: None,
        usage: Usage::default(),
        output_bytes: 0,
        limits: host.limits().clone(),
    };
    if let Err(failure) = host.validate_config(&plugin, config_json) {
        report.failure = Some(failure.kind);
        report.usage = failure.usage;
        return Ok(report);
    }
    let input_error = |message: String| AuthorError::Input { kind, message };
    let mut input: serde_json::Value =
        serde_json::from_str(input_json).map_err(|e| input_error(e.to_string()))?;
    input
        .as_object_mut()
        .ok_or_else(|| input_error("the input must be a JSON object".into()))?
        .insert("config".into(), config_json.into());
    let parse = |what| move |e: serde_json::Error| input_error(format!("not a {what}: {e}"));
    let result = match kind {
        PluginKind::PointRule => {
            report.function = "evaluate";
            let input: sdk::PointRuleInput =
                serde_json::from_value(input).map_err(parse("PointRuleInput"))?;
            host.evaluate_point_rule(&plugin, &input).map(to_json)
        }
        PluginKind::RewardType => {
            report.function = "quote";
            let input: sdk::RewardInput =
                serde_json::from_value(input).map_err(parse("RewardInput"))?;
            host.quote_reward(&plugin, &input).map(to_json)
        }
        PluginKind::ReferralScheme => {
            report.function = "evaluate";
            let input: sdk::ReferralInput =
                serde_json::from_value(input).map_err(parse("ReferralInput"))?;
            host.evaluate_referral(&plugin, &input).map(to_json)
        }
    };
    match result {
        Ok((output, usage)) => {
            report.output_bytes = json_bytes(&output);
            report.output = Some(output);
            report.usage = usage;
        }
        Err(failure) => {
            report.failure = Some(failure.kind);
            report.usage = failure.usage;
        }
    }
    Ok(report)
}

fn to_json<T: Serialize>(outcome: crate::Outcome<T>) -> (serde_json::Value, Usage) {
    let value = serde_json::to_value(&outcome.output).unwrap_or(serde_json::Value::Null);
    (value, outcome.usage)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = |used: f64, max: f64| if max > 0.0 { 100.0 * used / max } else { 0.0 };
        writeln!(
            f,
            "plugin   {} {} ({}, sha256 {})",
            self.plugin.name, self.plugin.version, self.kind, self.digest
        )?;
        match (&self.output, &self.failure) {
            (_, Some(failure)) => writeln!(
                f,
                "FAILED   {} in {}: {failure}",
                failure.code(),
                self.function
            )?,
            (Some(output), None) => writeln!(f, "output   {output}")?,
            (None, None) => writeln!(f, "output   (none)")?,
        }
        let u = &self.usage;
        let l = &self.limits;
        #[allow(clippy::cast_precision_loss)] // percentages for humans
        {
            writeln!(
                f,
                "fuel     {} / {} ({:.1} %)",
                u.fuel_used,
                l.fuel_max,
                percent(u.fuel_used as f64, l.fuel_max as f64)
            )?;
            writeln!(
                f,
                "memory   {} / {} bytes peak ({:.1} %), grown {} times in the call",
                u.memory_peak_bytes,
                l.memory_bytes_max,
                percent(u.memory_peak_bytes as f64, l.memory_bytes_max as f64),
                u.memory_grows
            )?;
            writeln!(
                f,
                "time     {:.3} ms / {} ms",
                u.duration.as_secs_f64() * 1000.0,
                l.deadline_ms
            )?;
            write!(
                f,
                "output   {} / {} bytes",
                self.output_bytes, l.output_bytes_max
            )
        }
    }
}
